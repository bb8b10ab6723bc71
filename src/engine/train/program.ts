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
import { hasCellState } from '../nn/gru';
import type { LayerForward } from '../nn/cells';

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
function cellOut(l: LayerForward): Value {
  if (!('cT' in l) || !l.cT) throw new Error('a GRU or RNN layer has no cell state');
  return l.cT;
}

/** A per-step input of a K-step program: fed as [K, ...shape], seen by the step as `shape`. */
export interface StepInput {
  /** graph input name (`x`, `y`, `mask`, `drop.l0`, …) */
  name: string;
  /** name of the step's input inside the Scan body */
  bodyName?: string;
  dtype: DType;
  shape: number[];
}

/** State carried from one step to the next and out of the program (a language model's h and c). */
export interface CarriedInput {
  /** graph input `name` ([B, H]), output `out` */
  name: string;
  out: string;
  bodyName: string;
  shape: number[];
}

/**
 * The one K-step training program of every task: an outer Scan over K minibatches carrying the
 * parameters, the optimizer state and any carried recurrent state; per step the task's loss, its
 * gradients (rule table), global-norm clipping and the optimizer update. Inputs: `p.*`, `s.*`, the
 * carried state, the task's per-step `inputs` [K, ...], `lr` [K], then `extra` [K, ...] (dropout
 * masks); outputs `p_out.*`, `s_out.*`, the carried state's `out` names, `loss` [K], `gnorm` [K].
 */
export function buildStepsProgram(o: {
  name: string;
  bodyName: string;
  dtype: DType;
  params: ParamInfo[];
  optimizer: OptimizerConfig;
  clipNorm: number;
  carried?: CarriedInput[];
  inputs: StepInput[];
  extra?: StepInput[];
  /** the step's loss from its parameters, carried state and inputs; the new carried state in the order of `carried` */
  loss(body: Graph, P: Record<string, Value>, carried: Value[], inputs: Value[], extra: Value[]): { loss: Value; carried?: Value[] };
}): Program {
  const dt = o.dtype;
  const carried = o.carried ?? [];
  const extra = o.extra ?? [];
  const params = o.params;
  const opt = optimizerState(o.optimizer, params);
  const g = new Graph(o.name);
  const op = new Ops(g);
  const pIn = params.map((p) => g.input(`p.${p.name}`, dt, p.shape));
  const sIn = opt.map((s) => g.input(`s.${s.name}`, dt, s.shape));
  const cIn = carried.map((c) => g.input(c.name, dt, c.shape));
  const xs = o.inputs.map((i) => g.input(i.name, i.dtype, ['K', ...i.shape]));
  const lr = g.input('lr', dt, ['K']);
  const es = extra.map((i) => g.input(i.name, i.dtype, ['K', ...i.shape]));

  // body: one optimizer step
  const body = g.subgraph(o.bodyName);
  const bp = params.map((p) => body.input(body.freshName(`p.${p.name}`), dt, p.shape));
  const bs = opt.map((s) => body.input(body.freshName(`s.${s.name}`), dt, s.shape));
  const bc = carried.map((c) => body.input(body.freshName(c.bodyName), dt, c.shape));
  const bx = o.inputs.map((i) => body.input(body.freshName(i.bodyName ?? `${i.name}_t`), i.dtype, i.shape));
  const blr = body.input(body.freshName('lr_t'), dt, []);
  const be = extra.map((i) => body.input(body.freshName(i.bodyName ?? `${i.name}_t`), i.dtype, i.shape));
  const P = Object.fromEntries(params.map((p, i) => [p.name, bp[i]]));
  const step = o.loss(body, P, bc, bx, be);
  const grads = gradients(body, step.loss, bp);
  const clipped = clipByGlobalNorm(body, grads, o.clipNorm);
  const upd = optimizerStep(body, o.optimizer, bp, clipped.grads, bs, blr);
  upd.params.forEach((v) => body.output(v));
  upd.state.forEach((v) => body.output(v));
  (step.carried ?? []).forEach((v) => body.output(v));
  body.output(step.loss);
  body.output(clipped.norm);

  const outs = op.Scan(body, [...pIn, ...sIn, ...cIn], [...xs, lr, ...es]);
  let k = 0;
  params.forEach((p) => g.output(outs[k++], `p_out.${p.name}`));
  opt.forEach((s) => g.output(outs[k++], `s_out.${s.name}`));
  carried.forEach((c) => g.output(outs[k++], c.out));
  g.output(outs[k++], 'loss');
  g.output(outs[k++], 'gnorm');
  return { graph: g, params, state: opt };
}

/** The recurrent state a language model carries between minibatches: h of every layer, then c of its LSTM layers. */
export function carriedState(lm: LmSpec, B: number): CarriedInput[] {
  return [
    ...lm.hidden.map((H, k) => ({ name: `h.l${k}`, out: `h_out.l${k}`, bodyName: 'h', shape: [B, H] })),
    ...cellLayers(lm).map((k) => ({ name: `c.l${k}`, out: `c_out.l${k}`, bodyName: 'c', shape: [B, lm.hidden[k]] })),
  ];
}

/** K-step training program of a language model (K symbolic: any number of steps per run). */
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
  const nh = lm.hidden.length;
  return buildStepsProgram({
    name: 'gatelab_train',
    bodyName: 'train_step',
    dtype: dt,
    params: lmParams(lm),
    optimizer: o.optimizer,
    clipNorm: o.clipNorm,
    carried: carriedState(lm, B),
    inputs: [
      { name: 'x', dtype: 'int64', shape: [T, B] },
      { name: 'y', dtype: 'int64', shape: [T, B] },
      { name: 'keep', dtype: dt, shape: [] },
    ],
    extra: o.dropout ? lm.hidden.map((H, k) => ({ name: `drop.l${k}`, bodyName: 'drop_t', dtype: dt, shape: [T, B, H] })) : [],
    loss(body, P, carried, [bx, by, bkeep], bdrop) {
      const bo = new Ops(body);
      // carried state, zeroed where a sequence starts afresh (keep = 0); no gradient flows into it
      const state = layerState(lm, carried.slice(0, nh), carried.slice(nh), (v) => bo.Mul(v, bkeep));
      const fwd = lmForward(body, lm, P, bx, state, bdrop.length ? bdrop : undefined);
      const loss = crossEntropy(body, fwd.logits, by);
      return { loss, carried: [...fwd.layers.map((l) => l.hT), ...cellLayers(lm).map((k) => cellOut(fwd.layers[k]))] };
    },
  });
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
