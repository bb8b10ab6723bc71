// The ONNX programs the trainer runs:
//  - train: K optimizer steps per session.run, as an outer Scan over K minibatches that carries the
//    parameters, the optimizer state and the recurrent state; returns the K losses and gradient norms.
//  - eval: loss of one batch without update (validation), carrying the recurrent state.
//  - grad: loss and gradients of every parameter for one batch (the `gatelab grad` command).
//  - step: one token in, logits and state out (sampling, per-token latency).
//
// Legend: K = steps per run, T = time, B = batch, V = vocabulary, H = hidden, L = layers.
// Graph input/output names: `p.<param>`, `s.<opt state>`, `h.l<k>`, `c.l<k>` in; `…_out` out.
// GRU layers have no cell state: no `c.l<k>` / `c_out.l<k>` / `d.c.l<k>` for them (hasCellState).

import { Graph, Value } from '../onnx/builder';
import { gradients } from '../onnx/grad';
import { Ops } from '../onnx/ops';
import { DType } from '../onnx/proto';
import { OptimizerConfig } from '../config/types';
import { crossEntropy, LmSpec, lmForward, lmParams, ParamInfo } from '../nn/lm';
import { clipByGlobalNorm, optimizerState, optimizerStep } from '../nn/optim';
import { GruForward, hasCellState } from '../nn/gru';
import type { LstmForward } from '../nn/lstm';

export interface Program {
  graph: Graph;
  params: ParamInfo[];
  state: ParamInfo[];
}

function stateShapes(lm: LmSpec, B: number): number[][] {
  return lm.hidden.map((H) => [B, H]);
}

/** The layers that carry a cell state c (LSTM layers; GRU layers carry h only). */
function cellLayers(lm: LmSpec): number[] {
  return lm.hidden.map((_, k) => k).filter((k) => hasCellState(lm, k));
}

/** Per layer: h0, and c0 for the layers that have one (cIn lists those of cellLayers in order). */
function layerState(lm: LmSpec, h: Value[], cIn: Value[], f: (v: Value) => Value = (v) => v): { h0: Value; c0?: Value }[] {
  const cells = cellLayers(lm);
  return lm.hidden.map((_, k) => (cells.includes(k) ? { h0: f(h[k]), c0: f(cIn[cells.indexOf(k)]) } : { h0: f(h[k]) }));
}

/** A layer's final cell state (only LSTM layers have one). */
function cellOut(l: LstmForward | GruForward): Value {
  if (!('cT' in l)) throw new Error('a GRU layer has no cell state');
  return l.cT;
}

/** K-step training program (K symbolic: any number of steps per run). */
export function buildTrainProgram(o: {
  lm: LmSpec;
  B: number;
  T: number;
  optimizer: OptimizerConfig;
  clipNorm: number;
  /** dropout probability between layers and before the output layer (inputs `drop.l<k>` [K, T, B, H]) */
  dropout?: number;
}): Program {
  const { lm, B, T } = o;
  const dt = lm.dtype;
  const params = lmParams(lm);
  const opt = optimizerState(o.optimizer, params);
  const g = new Graph('gatelab_train');
  const op = new Ops(g);
  const pIn = params.map((p) => g.input(`p.${p.name}`, dt, p.shape));
  const sIn = opt.map((s) => g.input(`s.${s.name}`, dt, s.shape));
  const hIn = stateShapes(lm, B).map((sh, k) => g.input(`h.l${k}`, dt, sh));
  const cIn = cellLayers(lm).map((k) => g.input(`c.l${k}`, dt, [B, lm.hidden[k]]));
  const x = g.input('x', 'int64', ['K', T, B]);
  const y = g.input('y', 'int64', ['K', T, B]);
  const keep = g.input('keep', dt, ['K']);
  const lr = g.input('lr', dt, ['K']);
  const drops = o.dropout ? lm.hidden.map((H, k) => g.input(`drop.l${k}`, dt, ['K', T, B, H])) : [];

  // body: one optimizer step
  const body = g.subgraph('train_step');
  const bo = new Ops(body);
  const bp = params.map((p) => body.input(body.freshName(`p.${p.name}`), dt, p.shape));
  const bs = opt.map((s) => body.input(body.freshName(`s.${s.name}`), dt, s.shape));
  const bh = hIn.map((v) => body.input(body.freshName('h'), dt, v.shape));
  const bc = cIn.map((v) => body.input(body.freshName('c'), dt, v.shape));
  const bx = body.input(body.freshName('x_t'), 'int64', [T, B]);
  const by = body.input(body.freshName('y_t'), 'int64', [T, B]);
  const bkeep = body.input(body.freshName('keep_t'), dt, []);
  const blr = body.input(body.freshName('lr_t'), dt, []);
  const bdrop = drops.map((d) => body.input(body.freshName('drop_t'), dt, d.shape.slice(1)));

  const P = Object.fromEntries(params.map((p, i) => [p.name, bp[i]]));
  // carried state, zeroed where a sequence starts afresh (keep = 0); no gradient flows into it
  const state = layerState(lm, bh, bc, (v) => bo.Mul(v, bkeep));
  const fwd = lmForward(body, lm, P, bx, state, bdrop.length ? bdrop : undefined);
  const loss = crossEntropy(body, fwd.logits, by);
  const grads = gradients(body, loss, bp);
  const clipped = clipByGlobalNorm(body, grads, o.clipNorm);
  const upd = optimizerStep(body, o.optimizer, bp, clipped.grads, bs, blr);
  upd.params.forEach((v) => body.output(v));
  upd.state.forEach((v) => body.output(v));
  fwd.layers.forEach((l) => body.output(l.hT));
  cellLayers(lm).forEach((k) => body.output(cellOut(fwd.layers[k])));
  body.output(loss);
  body.output(clipped.norm);

  const outs = op.Scan(body, [...pIn, ...sIn, ...hIn, ...cIn], [x, y, keep, lr, ...drops]);
  let k = 0;
  params.forEach((p) => g.output(outs[k++], `p_out.${p.name}`));
  opt.forEach((s) => g.output(outs[k++], `s_out.${s.name}`));
  lm.hidden.forEach((_, l) => g.output(outs[k++], `h_out.l${l}`));
  cellLayers(lm).forEach((l) => g.output(outs[k++], `c_out.l${l}`));
  g.output(outs[k++], 'loss');
  g.output(outs[k++], 'gnorm');
  return { graph: g, params, state: opt };
}

/** Forward-only loss of one [T, B] batch, carrying the recurrent state. */
export function buildEvalProgram(o: { lm: LmSpec; B: number; T: number }): Program {
  const { lm, B, T } = o;
  const dt = lm.dtype;
  const params = lmParams(lm);
  const g = new Graph('gatelab_eval');
  const pIn = params.map((p) => g.input(`p.${p.name}`, dt, p.shape));
  const hIn = stateShapes(lm, B).map((sh, k) => g.input(`h.l${k}`, dt, sh));
  const cIn = cellLayers(lm).map((k) => g.input(`c.l${k}`, dt, [B, lm.hidden[k]]));
  const x = g.input('x', 'int64', [T, B]);
  const y = g.input('y', 'int64', [T, B]);
  const P = Object.fromEntries(params.map((p, i) => [p.name, pIn[i]]));
  const fwd = lmForward(g, lm, P, x, layerState(lm, hIn, cIn));
  g.output(crossEntropy(g, fwd.logits, y), 'loss');
  fwd.layers.forEach((l, k) => g.output(l.hT, `h_out.l${k}`));
  cellLayers(lm).forEach((k) => g.output(cellOut(fwd.layers[k]), `c_out.l${k}`));
  return { graph: g, params, state: [] };
}

/** Loss and gradient of every parameter (and of the initial state) for one batch; no update. */
export function buildGradProgram(o: { lm: LmSpec; B: number; T: number; dropout?: boolean }): Program {
  const { lm, B, T } = o;
  const dt = lm.dtype;
  const params = lmParams(lm);
  const g = new Graph('gatelab_grad');
  const pIn = params.map((p) => g.input(`p.${p.name}`, dt, p.shape));
  const hIn = stateShapes(lm, B).map((sh, k) => g.input(`h.l${k}`, dt, sh));
  const cIn = cellLayers(lm).map((k) => g.input(`c.l${k}`, dt, [B, lm.hidden[k]]));
  const x = g.input('x', 'int64', [T, B]);
  const y = g.input('y', 'int64', [T, B]);
  const drops = o.dropout ? lm.hidden.map((H, k) => g.input(`drop.l${k}`, dt, [T, B, H])) : undefined;
  const P = Object.fromEntries(params.map((p, i) => [p.name, pIn[i]]));
  const fwd = lmForward(g, lm, P, x, layerState(lm, hIn, cIn), drops);
  const loss = crossEntropy(g, fwd.logits, y);
  const grads = gradients(g, loss, [...pIn, ...hIn, ...cIn]);
  g.output(loss, 'loss');
  params.forEach((p, i) => g.output(grads[i], `d.${p.name}`));
  lm.hidden.forEach((_, k) => g.output(grads[params.length + k], `d.h.l${k}`));
  cellLayers(lm).forEach((k, i) => g.output(grads[params.length + lm.hidden.length + i], `d.c.l${k}`));
  return { graph: g, params, state: [] };
}

/**
 * One step of generation: token [B] in, logits [B, V] and the new state out. With `weights` the
 * parameters are baked into the model as initializers (no `p.*` inputs), so onnxruntime folds the
 * weight transposes and pre-packs the GEMM weights once instead of on every token.
 */
export function buildStepProgram(o: { lm: LmSpec; B: number; weights?: Map<string, { shape: number[]; data: Float32Array | Float64Array }> }): Program {
  const { lm, B } = o;
  const dt = lm.dtype;
  const params = lmParams(lm);
  const g = new Graph('gatelab_step');
  const op = new Ops(g);
  const pIn = params.map((p) => {
    const w = o.weights?.get(p.name);
    return w ? g.const({ dtype: dt, dims: p.shape, data: w.data }, dt, p.shape) : g.input(`p.${p.name}`, dt, p.shape);
  });
  const hIn = stateShapes(lm, B).map((sh, k) => g.input(`h.l${k}`, dt, sh));
  const cIn = cellLayers(lm).map((k) => g.input(`c.l${k}`, dt, [B, lm.hidden[k]]));
  const x = g.input('x', 'int64', [B]);
  const P = Object.fromEntries(params.map((p, i) => [p.name, pIn[i]]));
  const fwd = lmForward(g, lm, P, op.Unsqueeze(x, [0]), layerState(lm, hIn, cIn));
  g.output(fwd.logits, 'logits');
  fwd.layers.forEach((l, k) => g.output(l.hT, `h_out.l${k}`));
  cellLayers(lm).forEach((k) => g.output(cellOut(fwd.layers[k]), `c_out.l${k}`));
  return { graph: g, params: o.weights ? [] : params, state: [] };
}

export type { DType };
export { Value };
