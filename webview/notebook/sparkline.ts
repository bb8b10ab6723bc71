// Sparkline and small-chart scaling (pure, unit-tested): values → points in a w × h box with a pad,
// robust to NaN/∞ (gaps), flat series (a line through the middle) and outliers (the y range can be
// clipped to quantiles, so one early spike does not flatten the rest of a loss curve).

export interface Scale {
  min: number;
  max: number;
}

/** The y range of the finite values; with `clip` (e.g. 0.02) the clip and 1 − clip quantiles. */
export function yRange(values: ArrayLike<number | null>, clip = 0): Scale | undefined {
  const fin: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v !== null && Number.isFinite(v)) fin.push(v);
  }
  if (fin.length === 0) return undefined;
  fin.sort((a, b) => a - b);
  const q = (p: number) => fin[Math.min(fin.length - 1, Math.max(0, Math.round(p * (fin.length - 1))))];
  return clip > 0 ? { min: q(clip), max: q(1 - clip) } : { min: fin[0], max: fin[fin.length - 1] };
}

/** x, y of each value (null for gaps), x evenly spread over the width, y clamped into the box. */
export function sparkPoints(values: ArrayLike<number | null>, w: number, h: number, pad = 2, range = yRange(values, values.length > 20 ? 0.02 : 0)): ({ x: number; y: number } | null)[] {
  const n = values.length;
  const out: ({ x: number; y: number } | null)[] = [];
  if (!range) return Array.from({ length: n }, () => null);
  const span = range.max - range.min;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null || !Number.isFinite(v)) {
      out.push(null);
      continue;
    }
    const x = n === 1 ? w / 2 : pad + (i / (n - 1)) * (w - 2 * pad);
    const t = span > 0 ? (Math.min(range.max, Math.max(range.min, v)) - range.min) / span : 0.5;
    out.push({ x: round(x), y: round(h - pad - t * (h - 2 * pad)) });
  }
  return out;
}

/** An SVG path through the points (M at the start of each run of points, L within). */
export function sparkPath(points: ({ x: number; y: number } | null)[]): string {
  let d = '';
  let pen = false;
  for (const p of points) {
    if (!p) {
      pen = false;
      continue;
    }
    d += `${pen ? 'L' : 'M'}${p.x} ${p.y}`;
    pen = true;
  }
  return d;
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
