// Pure chart data functions (unit-tested): TensorBoard's debiased exponential moving average.

/**
 * TensorBoard's smoothing: last = last·w + (1 − w)·y, divided by the debias factor 1 − w^n, so the
 * curve starts at the data instead of at 0. Non-finite values are passed through and skipped.
 */
export function emaDebiased(ys: ArrayLike<number>, weight: number): (number | null)[] {
  const out: (number | null)[] = new Array(ys.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (!Number.isFinite(y)) {
      out[i] = null;
      continue;
    }
    last = last * weight + (1 - weight) * y;
    n++;
    out[i] = weight === 0 ? y : last / (1 - Math.pow(weight, n));
  }
  return out;
}

/**
 * Downsampling for line charts that keeps each bucket's extremes: the visible x range [x0, x1] is
 * cut into `buckets` equal spans and each span contributes the indices of its minimum and its
 * maximum (in x order), so spikes survive. xs must be ascending. Returns indices into xs (all of
 * the visible ones, plus one neighbour on each side, when there are at most 2·buckets).
 */
export function minMaxIndices(xs: ArrayLike<number>, ys: ArrayLike<number>, buckets: number, x0 = -Infinity, x1 = Infinity): number[] {
  const lower = (v: number, strict: boolean) => {
    let a = 0;
    let b = xs.length;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (strict ? xs[m] <= v : xs[m] < v) a = m + 1;
      else b = m;
    }
    return a;
  };
  const from = Math.max(0, lower(x0, false) - 1);
  const to = Math.min(xs.length, lower(x1, true) + 1);
  const out: number[] = [];
  if (to - from <= 2 * buckets) {
    for (let i = from; i < to; i++) out.push(i);
    return out;
  }
  const start = xs[from];
  const span = (xs[to - 1] - start) / buckets || 1;
  let i = from;
  for (let b = 0; b < buckets && i < to; b++) {
    const end = b === buckets - 1 ? Infinity : start + (b + 1) * span;
    let iMin = -1;
    let iMax = -1;
    for (; i < to && xs[i] < end; i++) {
      const y = ys[i];
      if (!Number.isFinite(y)) continue;
      if (iMin < 0 || y < ys[iMin]) iMin = i;
      if (iMax < 0 || y > ys[iMax]) iMax = i;
    }
    if (iMin < 0) continue;
    out.push(Math.min(iMin, iMax));
    if (iMin !== iMax) out.push(Math.max(iMin, iMax));
  }
  return out;
}

/** The points of `minMaxIndices`. */
export function downsampleMinMax(xs: ArrayLike<number>, ys: ArrayLike<number>, buckets: number, x0 = -Infinity, x1 = Infinity): [number[], number[]] {
  const idx = minMaxIndices(xs, ys, buckets, x0, x1);
  return [idx.map((i) => xs[i]), idx.map((i) => ys[i])];
}

export type Rgb = [number, number, number];

function lerp(a: Rgb, b: Rgb, t: number): Rgb {
  return [Math.round(a[0] + (b[0] - a[0]) * t), Math.round(a[1] + (b[1] - a[1]) * t), Math.round(a[2] + (b[2] - a[2]) * t)];
}

/** Viridis-like sequential scale for values in [0, 1] (gates). */
const SEQ: Rgb[] = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];
export function sequential(v: number): Rgb {
  const t = Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0)) * (SEQ.length - 1);
  const k = Math.min(SEQ.length - 2, Math.floor(t));
  return lerp(SEQ[k], SEQ[k + 1], t - k);
}

/** Blue–white–red diverging scale for values in [−1, 1] (candidate, cell, hidden). */
export function diverging(v: number): Rgb {
  const t = Math.min(1, Math.max(-1, Number.isFinite(v) ? v : 0));
  return t < 0 ? lerp([247, 247, 247], [33, 102, 172], -t) : lerp([247, 247, 247], [178, 24, 43], t);
}

/** The colour of a gate value: sigmoid gates (LSTM i, f, o; GRU r, z) sequential over [0, 1], the others diverging (c over ±3). */
export function gateColor(gate: string, v: number): Rgb {
  if (gate === 'i' || gate === 'f' || gate === 'o' || gate === 'r' || gate === 'z') return sequential(v);
  return diverging(gate === 'c' ? v / 3 : v);
}

export type UnitOrder = 'index' | 'mean' | 'saturated-high' | 'saturated-low' | 'variance';

/** Per-unit statistic of a [T][H] row-major block. */
export function unitStats(values: ArrayLike<number>, T: number, H: number): { mean: number[]; variance: number[]; high: number[]; low: number[] } {
  const mean = new Array(H).fill(0);
  const sq = new Array(H).fill(0);
  const high = new Array(H).fill(0);
  const low = new Array(H).fill(0);
  for (let t = 0; t < T; t++)
    for (let u = 0; u < H; u++) {
      const v = values[t * H + u];
      mean[u] += v;
      sq[u] += v * v;
      if (v > 0.9) high[u]++;
      if (v < 0.1) low[u]++;
    }
  for (let u = 0; u < H; u++) {
    mean[u] /= T;
    sq[u] = sq[u] / T - mean[u] * mean[u];
    high[u] /= T;
    low[u] /= T;
  }
  return { mean, variance: sq, high, low };
}

/** Unit indices in display order (descending by the statistic; ties by index), at most `limit`. */
export function orderUnits(values: ArrayLike<number>, T: number, H: number, order: UnitOrder, limit = H): number[] {
  const idx = Array.from({ length: H }, (_, u) => u);
  if (order !== 'index') {
    const s = unitStats(values, T, H);
    const key = order === 'mean' ? s.mean : order === 'variance' ? s.variance : order === 'saturated-high' ? s.high : s.low;
    idx.sort((a, b) => key[b] - key[a] || a - b);
  }
  return idx.slice(0, limit);
}

/** CSV of columnar series (header from the keys). */
export function toCsv(columns: Record<string, ArrayLike<number | null>>): string {
  const keys = Object.keys(columns);
  const n = Math.max(0, ...keys.map((k) => columns[k].length));
  const lines = [keys.join(',')];
  for (let i = 0; i < n; i++) lines.push(keys.map((k) => (columns[k][i] ?? '') === '' ? '' : String(columns[k][i])).join(','));
  return lines.join('\n') + '\n';
}

/** Values of another series at the given xs (the last point at or before each x; null outside its range). */
export function alignTo(xs: ArrayLike<number>, ox: ArrayLike<number>, oy: ArrayLike<number>): (number | null)[] {
  const out: (number | null)[] = new Array(xs.length).fill(null);
  if (ox.length === 0) return out;
  let j = 0;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    if (x < ox[0] || x > ox[ox.length - 1]) continue;
    while (j + 1 < ox.length && ox[j + 1] <= x) j++;
    out[i] = oy[j];
  }
  return out;
}

/** What the per-epoch chart shows, by task: the metric users read for it, and its series. */
export interface EpochChart {
  kind: 'perplexity' | 'accuracy' | 'rmse' | 'loss';
  /** y-axis label */
  label: string;
  /** one label per y series */
  series: string[];
  /** log y axis (perplexity and losses span decades; accuracy and RMSE do not) */
  log: boolean;
  /** [epochs, ...one array per series], null where a row lacks the value */
  data: (number | null)[][];
}

type EpochLike = { epoch: number; trainLoss: number; validLoss?: number | null; trainPerplexity?: number | null; validPerplexity?: number | null; accuracy?: number | null; rmse?: number | null; baselineRmse?: number | null };

/**
 * Language models: train and validation perplexity; classification and copy: validation accuracy (%);
 * forecasts: validation RMSE in the data's units beside the persistence baseline's; otherwise (and
 * before any validation) train and validation loss.
 */
export function epochChart(rows: readonly EpochLike[]): EpochChart {
  const has = (k: keyof EpochLike) => rows.some((r) => r[k] !== undefined && r[k] !== null);
  const col = (f: (r: EpochLike) => number | null | undefined) => rows.map((r) => { const v = f(r); return v === undefined || v === null || !Number.isFinite(v) ? null : v; });
  const epochs = rows.map((r) => r.epoch);
  if (has('trainPerplexity'))
    return {
      kind: 'perplexity',
      label: 'perplexity',
      series: ['train perplexity', 'valid perplexity'],
      log: true,
      data: [epochs, col((r) => r.trainPerplexity ?? Math.exp(r.trainLoss)), col((r) => r.validPerplexity ?? (r.validLoss != null ? Math.exp(r.validLoss) : null))],
    };
  if (has('accuracy')) return { kind: 'accuracy', label: 'accuracy (%)', series: ['valid accuracy'], log: false, data: [epochs, col((r) => (r.accuracy != null ? 100 * r.accuracy : null))] };
  if (has('rmse')) return { kind: 'rmse', label: 'RMSE', series: ['valid RMSE', 'persistence RMSE'], log: false, data: [epochs, col((r) => r.rmse), col((r) => r.baselineRmse)] };
  return { kind: 'loss', label: 'loss', series: ['train loss', 'valid loss'], log: true, data: [epochs, col((r) => r.trainLoss), col((r) => r.validLoss)] };
}

/** A confusion matrix with each class's recall (row) and precision (column), for the results table. */
export interface ConfusionView {
  classes: string[];
  /** counts, rows = true class, columns = predicted */
  counts: number[][];
  /** each cell's share of its row (how a true class was predicted), 0…1 */
  rowShare: number[][];
  recall: (number | null)[];
  precision: (number | null)[];
  accuracy: number | null;
  total: number;
}

export function confusionView(counts: number[][], classes: string[]): ConfusionView {
  const C = classes.length;
  const rowSum = counts.map((r) => r.reduce((a, b) => a + b, 0));
  const colSum = classes.map((_, j) => counts.reduce((a, r) => a + (r[j] ?? 0), 0));
  const total = rowSum.reduce((a, b) => a + b, 0);
  const diag = classes.reduce((a, _, i) => a + (counts[i]?.[i] ?? 0), 0);
  return {
    classes,
    counts,
    rowShare: counts.map((r, i) => r.map((n) => (rowSum[i] ? n / rowSum[i] : 0))),
    recall: classes.map((_, i) => (rowSum[i] ? counts[i][i] / rowSum[i] : null)),
    precision: classes.map((_, j) => (colSum[j] ? counts[j]?.[j] / colSum[j] : null)),
    accuracy: total ? diag / total : null,
    total: C ? total : 0,
  };
}
