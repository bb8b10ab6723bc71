// Virtual-list windowing for the notebook (pure, unit-tested): rows of different heights (group
// headers, cells, cells opened with their inference and editor parts), measured once rendered and
// estimated before; only the rows that intersect the viewport, plus an overscan, are in the DOM.

export interface ListWindow {
  /** first row to render */
  start: number;
  /** one past the last row to render */
  end: number;
  /** space above the first rendered row and below the last, in px */
  padTop: number;
  padBottom: number;
  total: number;
}

/** Offsets of each row's top (length n + 1: the last is the total height). */
export function offsets(heights: ArrayLike<number>): Float64Array {
  const out = new Float64Array(heights.length + 1);
  for (let i = 0; i < heights.length; i++) out[i + 1] = out[i] + Math.max(0, heights[i]);
  return out;
}

/** Index of the row at vertical position y (the last row whose top is ≤ y). */
export function rowAt(offs: ArrayLike<number>, y: number): number {
  const n = offs.length - 1;
  if (n <= 0) return 0;
  let a = 0;
  let b = n - 1;
  while (a < b) {
    const m = (a + b + 1) >>> 1;
    if (offs[m] <= y) a = m;
    else b = m - 1;
  }
  return a;
}

/** The rows to render for a viewport [scrollTop, scrollTop + viewport), with `overscan` px beyond each edge. */
export function listWindow(heights: ArrayLike<number>, scrollTop: number, viewport: number, overscan = 400): ListWindow {
  const offs = offsets(heights);
  const total = offs[heights.length];
  if (heights.length === 0) return { start: 0, end: 0, padTop: 0, padBottom: 0, total: 0 };
  const top = Math.max(0, Math.min(scrollTop, Math.max(0, total - viewport)) - overscan);
  const bottom = Math.min(total, Math.max(0, scrollTop) + viewport + overscan);
  const start = rowAt(offs, top);
  let end = rowAt(offs, bottom) + 1;
  if (end <= start) end = Math.min(heights.length, start + 1);
  return { start, end, padTop: offs[start], padBottom: total - offs[end], total };
}

/** The scrollTop that brings row i fully into view (unchanged when it already is). */
export function scrollToRow(heights: ArrayLike<number>, i: number, scrollTop: number, viewport: number): number {
  const offs = offsets(heights);
  const top = offs[i];
  const bottom = offs[i + 1];
  if (top < scrollTop) return top;
  if (bottom > scrollTop + viewport) return Math.max(0, Math.min(top, bottom - viewport));
  return scrollTop;
}
