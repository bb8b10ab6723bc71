// Gradients through time: how much each earlier input still matters to a prediction (connectivity,
// as Madsen, "Visualizing memorization in RNNs", Distill 2019) and how the gradient of the last
// prediction's loss flows back through each layer's states (‖∂ℓ/∂h_s‖, ‖∂ℓ/∂c_s‖), computed by the
// engine's own gradient graph in float64.
//
// The model is unrolled step by step (each layer's cell applied to one step at a time, from
// primitives that the rule table differentiates), so that every state after a step is one value of
// the graph and its gradient is the total derivative (through the next step, the layer above and,
// for c_s, the h_s computed from it). The batch holds R = T − 1 copies of the
// sequence and row r's loss is ℓ_r alone (weights w [T, R] = [s = r]), so one backward pass gives every
// row of the connectivity matrix at once.
//
// Legend: T = probe length, R = T − 1 predictions that have a target, I = input width (V one-hot, or
// E for the embedding rows), H = hidden units of a layer.

import * as ort from 'onnxruntime-node';
import { Graph, Value } from '../onnx/builder';
import { Ops } from '../onnx/ops';
import { gradients } from '../onnx/grad';
import { LmSpec, lmParams } from '../nn/lm';
import { cellDef } from '../nn/cells';

/** The longest probe the unrolled program is built for. */
export const MAX_CONNECTIVITY_TOKENS = 200;

export interface GradientFlow {
  /** as in model.layers, from 0 */
  layer: number;
  /** ‖∂ℓ_{T−2}/∂h_s‖₂ for every s (h_s the state after step s) */
  h: number[];
  /** the same for the cell state c_s (LSTM layers only) */
  c?: number[];
}

export interface Connectivity {
  /** connectivity[t][s] = ‖∂ℓ_t/∂x_s‖₂ (0 for s > t), t < T − 1 */
  connectivity: number[][];
  gradientFlow: GradientFlow[];
}

/**
 * The layers unrolled over the steps' input vectors xs[s] [R, I], each layer's cell one step at a time
 * from primitives: the state after a step is one value, which the next step and the layer above both
 * read (and h_s is computed from c_s), so its gradient is the total derivative. Returns every layer's
 * h_s and (LSTM) c_s.
 */
function unrolled(g: Graph, P: Record<string, Value>, hidden: number[], gates: LmSpec['gates'], xs: Value[], R: number): { hs: Value[][]; cs: Value[][] } {
  const zeros = (H: number) => g.const(new Array(R * H).fill(0), 'float64', [R, H]);
  let state: { h: Value; c?: Value }[] = hidden.map((H, k) => (cellDef(gates?.[k]).hasCellState ? { h: zeros(H), c: zeros(H) } : { h: zeros(H) }));
  const hs: Value[][] = hidden.map(() => []);
  const cs: Value[][] = hidden.map(() => []);
  for (const xt of xs) {
    let inp = xt;
    state = hidden.map((_, k) => {
      const next = cellDef(gates?.[k]).step(g, P, k, inp, state[k], gates?.[k], '');
      inp = next.h;
      hs[k].push(next.h);
      if (next.c) cs[k].push(next.c);
      return next;
    });
  }
  return { hs, cs };
}

/**
 * The unrolled program. Inputs: `p.<name>` (every parameter but the embedding, whose rows are the
 * input), `x` [T, R, I] the input vectors, `y` int64 [T, R] the next tokens, `w` [T, R] the weight of
 * each position's loss. Outputs: `loss`, `conn` [T, R] = ‖∂L/∂x_s‖ per row, `flow_h.l<k>` and (LSTM
 * layers) `flow_c.l<k>` [T, R].
 */
export function buildConnectivityProgram(lm: LmSpec, T: number): { graph: Graph; params: { name: string; shape: number[] }[] } {
  if (lm.dtype !== 'float64') throw new Error('connectivity: a float64 model');
  const R = Math.max(1, T - 1);
  const g = new Graph('gatelab_connectivity');
  const op = new Ops(g);
  const params = lmParams(lm).filter((p) => p.name !== 'embedding.weight');
  const P = Object.fromEntries(params.map((p) => [p.name, g.input(`p.${p.name}`, 'float64', p.shape)]));
  const I = lm.embedding > 0 ? lm.embedding : lm.vocab;
  const x = g.input('x', 'float64', [T, R, I]);
  const y = g.input('y', 'int64', [T, R]);
  const w = g.input('w', 'float64', [T, R]);
  const xs = Array.from({ length: T }, (_, s) => op.Reshape(op.Slice(x, [s], [s + 1], [0]), [R, I]));
  const { hs, cs } = unrolled(g, P, lm.hidden, lm.gates, xs, R);
  const top = hs[lm.hidden.length - 1];
  // the cross-entropy of each step's prediction for each row [R], weighted by w
  const losses = top.map((h, s) => {
    const logits = op.Gemm(h, P['fc.weight'], P['fc.bias'], { transB: 1 }); // [R, V]
    const picked = op.GatherElements(op.LogSoftmax(logits, 1), op.Reshape(op.Slice(y, [s], [s + 1], [0]), [R, 1]), 1); // [R, 1]
    return op.Mul(op.Neg(op.Reshape(picked, [1, R])), op.Slice(w, [s], [s + 1], [0]));
  });
  const loss = op.ReduceSum(op.Concat(losses, 0), [0, 1]);
  const d = gradients(g, loss, [...xs, ...hs.flat(), ...cs.flat()]);
  let at = 0;
  const take = (n: number) => d.slice(at, (at += n));
  const dx = take(T);
  const dh = lm.hidden.map(() => take(T));
  const dc = lm.hidden.map((_, k) => take(cs[k].length));
  // row norms: [R, n] → [1, R], stacked over the steps → [T, R]
  const norms = (vs: Value[]) => op.Concat(vs.map((v) => op.Reshape(op.Sqrt(op.ReduceSumSquare(v, [1])), [1, R])), 0);
  g.output(loss, 'loss');
  g.output(norms(dx), 'conn');
  lm.hidden.forEach((_, k) => {
    g.output(norms(dh[k]), `flow_h.l${k}`);
    if (dc[k].length) g.output(norms(dc[k]), `flow_c.l${k}`);
  });
  return { graph: g, params };
}

/**
 * Connectivity and gradient flow of a language model for one token sequence (T ≥ 2), float64.
 * @param weights the model's parameters (any float type), by PyTorch name
 */
export async function connectivityOf(lm: LmSpec, weights: Map<string, { shape: number[]; data: ArrayLike<number> }>, ids: number[]): Promise<Connectivity> {
  const T = ids.length;
  if (T < 2) throw new Error('connectivity needs at least two tokens (one prediction with a target)');
  if (T > MAX_CONNECTIVITY_TOKENS) throw new Error(`connectivity: at most ${MAX_CONNECTIVITY_TOKENS} tokens`);
  const spec: LmSpec = { ...lm, dtype: 'float64' };
  const { graph, params } = buildConnectivityProgram(spec, T);
  const R = T - 1;
  const I = spec.embedding > 0 ? spec.embedding : spec.vocab;
  const x = new Float64Array(T * R * I);
  const emb = weights.get('embedding.weight');
  for (let s = 0; s < T; s++)
    for (let r = 0; r < R; r++) {
      const at = (s * R + r) * I;
      if (emb) for (let i = 0; i < I; i++) x[at + i] = emb.data[ids[s] * I + i];
      else x[at + ids[s]] = 1;
    }
  const y = new BigInt64Array(T * R);
  const wt = new Float64Array(T * R);
  for (let s = 0; s < T; s++)
    for (let r = 0; r < R; r++) {
      y[s * R + r] = BigInt(s + 1 < T ? ids[s + 1] : 0);
      wt[s * R + r] = s === r ? 1 : 0;
    }
  const feeds: Record<string, ort.Tensor> = {
    x: new ort.Tensor('float64', x, [T, R, I]),
    y: new ort.Tensor('int64', y, [T, R]),
    w: new ort.Tensor('float64', wt, [T, R]),
  };
  for (const p of params) feeds[`p.${p.name}`] = new ort.Tensor('float64', Float64Array.from(weights.get(p.name)!.data), p.shape);
  const session = await ort.InferenceSession.create(graph.encode(), { executionProviders: ['cpu'], logSeverityLevel: 3 });
  try {
    const out = await session.run(feeds);
    const conn = out.conn.data as Float64Array; // [T, R]: conn[s, r] = ‖∂ℓ_r/∂x_s‖
    const connectivity = Array.from({ length: R }, (_, t) => Array.from({ length: T }, (_, s) => (s <= t ? conn[s * R + t] : 0)));
    const last = R - 1; // ℓ_{T−2}
    const column = (d: Float64Array) => Array.from({ length: T }, (_, s) => d[s * R + last]);
    const gradientFlow = spec.hidden.map((_, k): GradientFlow => {
      const f: GradientFlow = { layer: k, h: column(out[`flow_h.l${k}`].data as Float64Array) };
      if (out[`flow_c.l${k}`]) f.c = column(out[`flow_c.l${k}`].data as Float64Array);
      return f;
    });
    return { connectivity, gradientFlow };
  } finally {
    await session.release();
  }
}

/** What the one prediction of a sequence model is (the loss whose gradient is followed back). */
export type SeqHead =
  /** the class predicted from the pooled states (or from the state at step `at`: key-query's QUERY step) */
  | { kind: 'classify'; classes: number; pooling: 'last' | 'mean'; at?: number }
  /** the first value predicted from the last state (or from the state at step `at`) */
  | { kind: 'forecast'; horizon: number; at?: number };

/**
 * The unrolled program of a classifier or forecaster over one sequence: inputs `p.<name>` (every
 * parameter but the embedding), `x` [T, I] the input vectors; the loss is the cross-entropy of the
 * predicted class (classification) or the first forecast value (forecast); outputs `conn` [T] and
 * `flow_h.l<k>`, `flow_c.l<k>` [T].
 */
export function buildSeqConnectivityProgram(o: { I: number; hidden: number[]; gates?: LmSpec['gates']; head: SeqHead; params: { name: string; shape: number[] }[] }, T: number): Graph {
  const g = new Graph('gatelab_seq_connectivity');
  const op = new Ops(g);
  const P = Object.fromEntries(o.params.map((p) => [p.name, g.input(`p.${p.name}`, 'float64', p.shape)]));
  const x = g.input('x', 'float64', [T, o.I]);
  const xs = Array.from({ length: T }, (_, s) => op.Slice(x, [s], [s + 1], [0])); // [1, I] each
  const { hs, cs } = unrolled(g, P, o.hidden, o.gates, xs, 1);
  const top = hs[o.hidden.length - 1];
  let loss: Value;
  if (o.head.kind === 'classify') {
    const pooled = o.head.at !== undefined ? top[o.head.at] : o.head.pooling === 'last' ? top[T - 1] : op.Mul(op.Sum(...top), op.c('float64', 1 / T));
    const logp = op.LogSoftmax(op.Gemm(pooled, P['fc.weight'], P['fc.bias'], { transB: 1 }), 1); // [1, C]
    loss = op.Neg(op.ReduceSum(op.GatherElements(logp, op.ArgMax(logp, 1, true), 1), [0, 1]));
  } else {
    const pred = op.Gemm(top[o.head.at ?? T - 1], P['fc.weight'], P['fc.bias'], { transB: 1 }); // [1, N]
    loss = op.ReduceSum(op.Slice(pred, [0], [1], [1]), [0, 1]);
  }
  const d = gradients(g, loss, [...xs, ...hs.flat(), ...cs.flat()]);
  let at = 0;
  const take = (n: number) => d.slice(at, (at += n));
  const norms = (vs: Value[]) => op.Concat(vs.map((v) => op.Reshape(op.Sqrt(op.ReduceSumSquare(v, [1])), [1])), 0); // [T]
  g.output(loss, 'loss');
  g.output(norms(take(T)), 'conn');
  const dh = o.hidden.map(() => take(T));
  const dc = o.hidden.map((_, k) => take(cs[k].length));
  o.hidden.forEach((_, k) => {
    g.output(norms(dh[k]), `flow_h.l${k}`);
    if (dc[k].length) g.output(norms(dc[k]), `flow_c.l${k}`);
  });
  return g;
}

/**
 * Gradients through time of a classifier's predicted class or a forecaster's first value for one
 * sequence of input vectors `x` [T·I] (float64): one connectivity row and the flow through every layer.
 */
export async function seqConnectivityOf(o: { I: number; hidden: number[]; gates?: LmSpec['gates']; head: SeqHead; params: { name: string; shape: number[] }[] }, weights: Map<string, { shape: number[]; data: ArrayLike<number> }>, x: Float64Array): Promise<Connectivity> {
  const T = x.length / o.I;
  if (T > MAX_CONNECTIVITY_TOKENS) throw new Error(`connectivity: at most ${MAX_CONNECTIVITY_TOKENS} steps`);
  const graph = buildSeqConnectivityProgram(o, T);
  const feeds: Record<string, ort.Tensor> = { x: new ort.Tensor('float64', x, [T, o.I]) };
  for (const p of o.params) feeds[`p.${p.name}`] = new ort.Tensor('float64', Float64Array.from(weights.get(p.name)!.data), p.shape);
  const session = await ort.InferenceSession.create(graph.encode(), { executionProviders: ['cpu'], logSeverityLevel: 3 });
  try {
    const out = await session.run(feeds);
    const row = Array.from(out.conn.data as Float64Array);
    const gradientFlow = o.hidden.map((_, k): GradientFlow => {
      const f: GradientFlow = { layer: k, h: Array.from(out[`flow_h.l${k}`].data as Float64Array) };
      if (out[`flow_c.l${k}`]) f.c = Array.from(out[`flow_c.l${k}`].data as Float64Array);
      return f;
    });
    return { connectivity: [row], gradientFlow };
  } finally {
    await session.release();
  }
}
