// Central finite differences of a grad program's loss (float64), the check every gradient of the
// engine gets beside the PyTorch goldens.

import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';

export const FD_EPS = 1e-6;
export const FD_ATOL = 1e-8;
export const FD_RTOL = 1e-5;

/**
 * Gradients of a grad program against central differences of its loss, at every coordinate:
 * `targets` pairs an input with the output holding its gradient (default: every parameter, p.<name> → d.<name>).
 */
export async function fdAll(s: ort.InferenceSession, feeds: Record<string, ort.Tensor>, params: { name: string }[], label: string, targets: [string, string][] = params.map((p) => [`p.${p.name}`, `d.${p.name}`])) {
  const r = await s.run(feeds);
  const loss = async () => ((await s.run(feeds)).loss.data as Float64Array)[0];
  for (const [input, out] of targets) {
    const t = feeds[input].data as Float64Array;
    const d = r[out].data as Float64Array;
    for (let i = 0; i < t.length; i++) {
      const old = t[i];
      t[i] = old + FD_EPS;
      const up = await loss();
      t[i] = old - FD_EPS;
      const down = await loss();
      t[i] = old;
      const fd = (up - down) / (2 * FD_EPS);
      expect(Math.abs(fd - d[i]), `${label} ${out}[${i}]: ${d[i]} vs FD ${fd}`).toBeLessThanOrEqual(FD_ATOL + FD_RTOL * Math.abs(fd));
    }
  }
}

