// Inverted dropout masks (PyTorch's nn.Dropout in training mode): each entry is 0 with probability
// p, else 1/(1 − p), so the expected activation is unchanged and nothing needs rescaling at
// validation or prediction, where no mask is applied. The trainers draw the masks on the host from
// a generator seeded by the run's seed, so a run is reproducible, and feed them to the training
// program with the minibatches.

import * as ort from 'onnxruntime-node';
import { Rng } from '../util/rng';

/**
 * Masks for k steps: `name` → float32 [k, ...shape], drawn step by step (every mask of step 1, then
 * of step 2, …), so a step's masks do not depend on how the steps are grouped into K-step runs (a
 * resumed run draws the same masks). Nothing when p is 0 or there are no shapes.
 */
export function dropoutMasks(shapes: { name: string; shape: number[] }[], k: number, p: number, rng: Rng): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  if (!(p > 0) || shapes.length === 0) return out;
  const scale = 1 / (1 - p);
  const sizes = shapes.map((s) => s.shape.reduce((a, b) => a * b, 1));
  const masks = sizes.map((n) => new Float32Array(k * n));
  for (let j = 0; j < k; j++)
    masks.forEach((m, s) => {
      for (let n = j * sizes[s]; n < (j + 1) * sizes[s]; n++) m[n] = rng.next() < p ? 0 : scale;
    });
  shapes.forEach(({ name, shape }, s) => (out[name] = new ort.Tensor('float32', masks[s], [k, ...shape])));
  return out;
}
