// Character / word language model: tokens → one-hot or embedding → stacked LSTM / GRU layers → Linear → logits,
// and the softmax cross-entropy loss (mean over every position, as PyTorch's default).
//
// Legend: T = time, B = batch, V = vocabulary, E = embedding, H = hidden, G = 4H, L = layers.
// Everything is time-major ([T, B, ...]) inside the graph.

import { Graph, Value } from '../onnx/builder';
import { Ops } from '../onnx/ops';
import { DType } from '../onnx/proto';
import { GateActivation, LstmForward, lstmRecurrence } from './lstm';
import { GruForward, gruLayer, gruParams, isGru } from './gru';

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
    if (isGru(spec.gates?.[k])) {
      ps.push(...gruParams(k, H, inSize));
      inSize = H;
      return;
    }
    ps.push({ name: `lstm.weight_ih_l${k}`, shape: [4 * H, inSize] });
    ps.push({ name: `lstm.weight_hh_l${k}`, shape: [4 * H, H] });
    ps.push({ name: `lstm.bias_ih_l${k}`, shape: [4 * H] });
    ps.push({ name: `lstm.bias_hh_l${k}`, shape: [4 * H] });
    if (spec.gates?.[k]?.peepholes) ps.push({ name: `lstm.weight_peephole_l${k}`, shape: [3, H] });
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
  /** per layer: an LSTM layer's insides, or a GRU layer's (kind 'gru') */
  layers: (LstmForward | GruForward)[];
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
  const layers: (LstmForward | GruForward)[] = [];
  let hs: Value | null = null;
  spec.hidden.forEach((H, k) => {
    if (isGru(spec.gates?.[k])) {
      const input = k === 0 && spec.embedding === 0 ? { ids: x } : { x: k === 0 ? op.Gather(P['embedding.weight'], x, 0) : hs! };
      const f = gruLayer(g, P, k, input, state[k].h0, spec.gates![k]);
      layers.push(f);
      hs = dropMasks ? op.Mul(f.hs, dropMasks[k]) : f.hs;
      return;
    }
    g.scope(`lstm${k}`, () => {
      const wih = P[`lstm.weight_ih_l${k}`];
      const bias = op.Add(P[`lstm.bias_ih_l${k}`], P[`lstm.bias_hh_l${k}`]); // [G]
      let xw: Value; // [T, B, G]
      if (k === 0 && spec.embedding === 0) {
        // one-hot input: x·W_ihᵀ is a row lookup of W_ihᵀ
        xw = op.Add(op.Gather(op.Transpose(wih, [1, 0]), x, 0), bias);
      } else {
        const inp: Value = k === 0 ? op.Gather(P['embedding.weight'], x, 0) : hs!; // [T, B, I]
        const I = inp.shape[2] as number;
        xw = op.Reshape(op.Gemm(op.Reshape(inp, [T * B, I]), wih, bias, { transB: 1 }), [T, B, 4 * H]);
      }
      const f = lstmRecurrence(g, xw, P[`lstm.weight_hh_l${k}`], state[k].h0, state[k].c0!, spec.gates?.[k], P[`lstm.weight_peephole_l${k}`] ?? null);
      layers.push(f);
      // dropout between stacked layers and before the output layer
      hs = dropMasks ? op.Mul(f.hs, dropMasks[k]) : f.hs;
    });
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
