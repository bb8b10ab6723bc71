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
