// Checkpoints: safetensors with PyTorch nn parameter names and gate order (DESIGN §4), so a file
// loads into the equivalent PyTorch module with load_state_dict and back. The engine's internal
// gate order differs; the conversion is one permutation table applied here and nowhere else.
//
// Gate orders: PyTorch i,f,g,o · Keras/TF.js i,f,c,o · ONNX LSTM i,o,f,c · Gatelab internal i,f,o,g.

import { UserError } from '../errors';
import { readSafetensors, StData, StTensor, writeSafetensors } from '../util/safetensors';

export const GATE_ORDERS = {
  pytorch: ['i', 'f', 'g', 'o'],
  internal: ['i', 'f', 'o', 'g'],
  onnx: ['i', 'o', 'f', 'g'],
  keras: ['i', 'f', 'g', 'o'],
} as const;

/** INTERNAL_FROM_TORCH[k] = the PyTorch gate block that becomes internal block k. */
export const INTERNAL_FROM_TORCH = GATE_ORDERS.internal.map((gate) => GATE_ORDERS.pytorch.indexOf(gate as never));
/** TORCH_FROM_INTERNAL[k] = the internal gate block that becomes PyTorch block k. */
export const TORCH_FROM_INTERNAL = GATE_ORDERS.pytorch.map((gate) => GATE_ORDERS.internal.indexOf(gate as never));

const GATED = /^lstm\.(weight_ih|weight_hh|bias_ih|bias_hh)_l\d+(_reverse)?$/;

/** Whether a parameter's rows are 4 gate blocks (and so get permuted at the boundary). */
export function isGated(name: string): boolean {
  return GATED.test(name);
}

/** Rows of a [4H, ...] tensor regrouped: block k of the result is block perm[k] of the input. */
export function permuteGateBlocks<T extends StData>(data: T, shape: readonly number[], perm: readonly number[]): T {
  const rows = shape[0];
  const blocks = perm.length;
  if (rows % blocks !== 0) throw new Error(`permuteGateBlocks: ${rows} rows are not ${blocks} gate blocks`);
  const blockLen = (rows / blocks) * (data.length / rows);
  const out = new (data.constructor as new (n: number) => T)(data.length);
  for (let k = 0; k < blocks; k++) {
    out.set(data.subarray(perm[k] * blockLen, (perm[k] + 1) * blockLen) as never, k * blockLen);
  }
  return out;
}

export type FloatData = Float32Array | Float64Array;

export interface Checkpoint {
  /** tensors by PyTorch name, rows in the internal gate order */
  params: Map<string, { shape: number[]; data: FloatData }>;
  metadata: Record<string, string>;
}

/** Writes a checkpoint atomically, converting gate order to PyTorch's. */
export function saveCheckpoint(file: string, ck: Checkpoint): void {
  const tensors: Record<string, StTensor> = {};
  for (const [name, t] of ck.params) {
    const data = isGated(name) ? permuteGateBlocks(t.data, t.shape, TORCH_FROM_INTERNAL) : t.data;
    tensors[name] = { dtype: data instanceof Float64Array ? 'F64' : 'F32', shape: t.shape, data };
  }
  writeSafetensors(file, tensors, { format: 'pt', ...ck.metadata });
}

/** Reads a checkpoint, converting gate order to the internal one. */
export function loadCheckpoint(file: string): Checkpoint {
  const { tensors, metadata } = readSafetensors(file);
  const params = new Map<string, { shape: number[]; data: FloatData }>();
  for (const [name, t] of Object.entries(tensors)) {
    if (t.dtype !== 'F32' && t.dtype !== 'F64')
      throw new UserError(`tensor ${name} has dtype ${t.dtype}; parameters must be F32 or F64`, { file, key: name });
    const data = t.data as FloatData;
    params.set(name, { shape: t.shape, data: isGated(name) ? permuteGateBlocks(data, t.shape, INTERNAL_FROM_TORCH) : data });
  }
  return { params, metadata };
}
