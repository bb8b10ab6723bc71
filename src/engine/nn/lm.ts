// Character / word language model: tokens → one-hot or embedding → stacked LSTM / GRU / RNN layers → Linear → logits,
// and the softmax cross-entropy loss (mean over every position, as PyTorch's default).
//
// Legend: T = time, B = batch, V = vocabulary, E = embedding, H = hidden, G = 4H, L = layers.
// Everything is time-major ([T, B, ...]) inside the graph.

import { Graph, Value } from '../onnx/builder';
import { Ops } from '../onnx/ops';
import { DType } from '../onnx/proto';
import type { GateActivation } from './lstm';
import { cellDef, LayerForward } from './cells';

export interface LmSpec {
  vocab: number;
  /** 0 = one-hot input */
  embedding: number;
  hidden: number[];
  dtype: DType;
  /** per layer: the gate nonlinearity (default sigmoid) */
  gates?: (GateActivation | undefined)[];
}

export interface ParamInfo {
  /** PyTorch name (`lstm.weight_ih_l0`) */
  name: string;
  shape: number[];
}

/** Parameters in a fixed order, with PyTorch names and shapes (rows in internal gate order). */
export function lmParams(spec: LmSpec): ParamInfo[] {
  const ps: ParamInfo[] = [];
  if (spec.embedding > 0) ps.push({ name: 'embedding.weight', shape: [spec.vocab, spec.embedding] });
  let inSize = spec.embedding > 0 ? spec.embedding : spec.vocab;
  spec.hidden.forEach((H, k) => {
    ps.push(...cellDef(spec.gates?.[k]).params(k, H, inSize, '', spec.gates?.[k]));
    inSize = H;
  });
  const Hl = spec.hidden[spec.hidden.length - 1];
  ps.push({ name: 'fc.weight', shape: [spec.vocab, Hl] });
  ps.push({ name: 'fc.bias', shape: [spec.vocab] });
  return ps;
}

export interface LmForward {
  /** [T·B, V] */
  logits: Value;
  /** per layer: an LSTM layer's insides, or a GRU's or RNN's (kind 'gru', 'rnn') */
  layers: LayerForward[];
}

/**
 * @param x [T, B] int64 token ids
 * @param state per layer (h0 [B, H], c0 [B, H]; GRU layers have no c0)
 */
export function lmForward(
  g: Graph,
  spec: LmSpec,
  P: Record<string, Value>,
  x: Value,
  state: { h0: Value; c0?: Value }[],
  /** inverted-dropout masks per layer output [T, B, H_k] (0 or 1/(1−p)), training only */
  dropMasks?: Value[],
): LmForward {
  const op = new Ops(g);
  const [T, B] = x.shape as number[];
  const layers: LayerForward[] = [];
  let hs: Value | null = null;
  spec.hidden.forEach((H, k) => {
    // layer 0 reads the token ids (one-hot: a row lookup of W_ihᵀ) or their embedding rows
    const input = k === 0 && spec.embedding === 0 ? { ids: x } : { x: k === 0 ? op.Gather(P['embedding.weight'], x, 0) : hs! };
    const f = cellDef(spec.gates?.[k]).layer(g, P, k, input, state[k], spec.gates?.[k], '');
    layers.push(f);
    // dropout between stacked layers and before the output layer
    hs = dropMasks ? op.Mul(f.hs, dropMasks[k]) : f.hs;
  });
  const Hl = spec.hidden[spec.hidden.length - 1];
  const logits = g.scope('fc', () => op.Gemm(op.Reshape(hs!, [T * B, Hl]), P['fc.weight'], P['fc.bias'], { transB: 1 }));
  return { logits, layers };
}

/** Mean softmax cross-entropy of logits [N, V] against targets y (int64, N positions). */
export function crossEntropy(g: Graph, logits: Value, y: Value): Value {
  const op = new Ops(g);
  return g.scope('loss', () => {
    const N = logits.shape[0] as number;
    const logp = op.LogSoftmax(logits, 1);
    const picked = op.GatherElements(logp, op.Reshape(y, [N, 1]), 1); // [N, 1]
    return op.Neg(op.ReduceMean(picked));
  });
}
