// The input projection of a recurrent layer, x·W_ihᵀ + b for every step at once, outside the
// recurrence: for token ids read as one-hot it is a row lookup of W_ihᵀ (Gather), for a float input
// one GEMM over all T·B rows.

import type { Value } from '../onnx/builder';
import { Ops } from '../onnx/ops';

/**
 * @param input `{ ids }` int64 [T, B] or `{ x }` float [T, B, I]
 * @param wih [G, I] input weights; `bias` [G]
 * @returns [T, B, G]
 */
export function inputProjection(op: Ops, input: { ids: Value } | { x: Value }, wih: Value, bias: Value): Value {
  if ('ids' in input) return op.Add(op.Gather(op.Transpose(wih, [1, 0]), input.ids, 0), bias);
  const [T, B, I] = input.x.shape as number[];
  const G = wih.shape[0] as number;
  return op.Reshape(op.Gemm(op.Reshape(input.x, [T * B, I]), wih, bias, { transB: 1 }), [T, B, G]);
}
