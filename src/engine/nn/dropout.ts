// Inverted dropout masks (PyTorch's nn.Dropout in training mode): each entry is 0 with probability
// p, else 1/(1 − p), so the expected activation is unchanged and nothing needs rescaling at
// validation or prediction, where no mask is applied. The trainers draw the masks on the host from
// a generator seeded by the run's seed, so a run is reproducible, and feed them to the training
// program with the minibatches.

import * as ort from 'onnxruntime-node';
import { Rng } from '../util/rng';

/** Masks for k steps: `name` → float32 [k, ...shape]. Nothing when p is 0 or there are no shapes. */
export function dropoutMasks(shapes: { name: string; shape: number[] }[], k: number, p: number, rng: Rng): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  if (!(p > 0)) return out;
  const scale = 1 / (1 - p);
  for (const { name, shape } of shapes) {
    const m = new Float32Array(k * shape.reduce((a, b) => a * b, 1));
    for (let n = 0; n < m.length; n++) m[n] = rng.next() < p ? 0 : scale;
    out[name] = new ort.Tensor('float32', m, [k, ...shape]);
  }
  return out;
}
