// Classification: tokens → one-hot or embedding → stacked LSTM → a sentence vector → Linear →
// softmax cross-entropy (mean over the batch). Sentences are right-padded to T; padding never
// counts: the vector is the hidden state at each sentence's last real step (`last`), or the mean
// of the hidden states over its real steps (`mean`), so what follows a sentence cannot change it.
// A bidirectional layer's reverse direction starts at each sentence's own last real step (see
// ../nn/direction.ts); its `last` vector is [h_fwd at the last real step, h_bwd at the first step]
// (PyTorch's h_n), its `mean` the mean of [h_fwd, h_bwd] over the real steps. Dropout (training
// only) multiplies by masks fed as inputs: `drop.l<k>` [T, B, D·H_k] on the output of every layer
// but the last, `drop.head` [B, D·H_L] on the sentence vector.
//
// Legend: K = steps per run, T = padded length, B = batch, E = embedding, H = hidden, C = classes,
// D = directions of a layer (1, or 2 when bidirectional).

import { Graph, Value } from '../onnx/builder';
import { Ops } from '../onnx/ops';
import { DType } from '../onnx/proto';
import { gradients } from '../onnx/grad';
import type { GateActivation } from '../nn/lstm';
import { cellDef, LayerForward } from '../nn/cells';
import { finalStates, runDirections } from '../nn/direction';
import { ParamInfo } from '../nn/lm';
import { stackDropShapes, stackFeatures, stackParams } from '../nn/stack';
import { OptimizerConfig } from '../config/types';
import { buildStepsProgram, Program } from './program';

export interface ClassifySpec {
  vocab: number;
  embedding: number;
  /** numeric sequences: the features per step (the input x is float [T, B, F]; vocab and embedding unused) */
  features?: number;
  hidden: number[];
  classes: number;
  pooling: 'last' | 'mean';
  dtype: DType;
  gates?: (GateActivation | undefined)[];
  /** per layer: a forward and a reverse direction */
  bidirectional?: boolean[];
  /** dropout probability between layers and before the head (train program inputs `drop.*`) */
  dropout?: number;
}

/** Width of the vector the head reads: the last layer's hidden size times its directions. */
export function classifyFeatures(spec: ClassifySpec): number {
  return stackFeatures(spec);
}

/** Shapes of the dropout masks of one step: `drop.l<k>` for every layer but the last, then `drop.head`. */
export function classifyDropShapes(spec: ClassifySpec, B: number, T: number): { name: string; shape: number[] }[] {
  return stackDropShapes(spec, B, T);
}

export function classifyParams(spec: ClassifySpec): ParamInfo[] {
  const ps: ParamInfo[] = [];
  if (!spec.features && spec.embedding > 0) ps.push({ name: 'embedding.weight', shape: [spec.vocab, spec.embedding] });
  ps.push(...stackParams(spec, spec.features ?? (spec.embedding > 0 ? spec.embedding : spec.vocab)));
  ps.push({ name: 'fc.weight', shape: [spec.classes, classifyFeatures(spec)] });
  ps.push({ name: 'fc.bias', shape: [spec.classes] });
  return ps;
}

/** The input x of a classifier's programs: token ids [T, B], or numeric steps [T, B, F]. */
export function classifyInput(spec: ClassifySpec, T: number, B: number): { dtype: DType; shape: number[] } {
  return spec.features ? { dtype: spec.dtype, shape: [T, B, spec.features] } : { dtype: 'int64', shape: [T, B] };
}

/**
 * @param x [T, B] int64 token ids (padded), or [T, B, F] numeric steps (spec.features)
 * @param mask [T, B] 1 for real steps, 0 for padding
 * @param last [B, 1, H] int64: each sentence's last real step, repeated over H (GatherElements)
 * @param drop dropout masks (training only), as classifyDropShapes: per layer but the last, and the head
 * @returns logits [B, C]
 */
export function classifyForward(
  g: Graph,
  spec: ClassifySpec,
  P: Record<string, Value>,
  x: Value,
  mask: Value,
  last: Value,
  drop?: { layers: Value[]; head: Value },
): Value {
  const op = new Ops(g);
  const [T, B] = x.shape as number[];
  const L = spec.hidden.length;
  // each sentence's real length, for the reverse directions
  const lens = spec.bidirectional?.some((b) => b) ? g.scope('lengths', () => op.Cast(op.ReduceSum(mask, [0]), 'int64')) : null;
  let inp: Value = x; // the layer input: token ids for layer 0, then [T, B, D·H] states
  let top!: ReturnType<typeof runDirections>;
  spec.hidden.forEach((H, k) => {
    g.scope(`lstm${k}`, () => {
      // one direction of the layer over its input in reading order (ids or states)
      const direction = (src: Value, sfx: string): LayerForward => {
        const input = k === 0 && spec.features ? { x: src } : k === 0 && spec.embedding === 0 ? { ids: src } : { x: k === 0 ? op.Gather(P['embedding.weight'], src, 0) : src };
        const zeros = g.const(new Array(B * H).fill(0), spec.dtype, [B, H]);
        return cellDef(spec.gates?.[k]).layer(g, P, k, input, { h0: zeros, c0: zeros }, spec.gates?.[k], sfx);
      };
      top = runDirections(g, inp, lens, spec.bidirectional?.[k], direction);
      // dropout between stacked layers
      inp = drop && k < L - 1 ? op.Mul(top.hs, drop.layers[k]) : top.hs;
    });
  });
  let pooled = g.scope('pool', () => {
    if (spec.pooling === 'last') return finalStates(g, top, last);
    const m3 = op.Unsqueeze(mask, [2]); // [T, B, 1]
    const sum = op.ReduceSum(op.Mul(top.hs, m3), [0]); // [B, D·H]
    const len = op.ReduceSum(m3, [0]); // [B, 1]
    return op.Div(sum, len);
  });
  if (drop) pooled = op.Mul(pooled, drop.head); // dropout before the head
  return g.scope('fc', () => op.Gemm(pooled, P['fc.weight'], P['fc.bias'], { transB: 1 }));
}

export function classLoss(g: Graph, logits: Value, y: Value): Value {
  const op = new Ops(g);
  return g.scope('loss', () => {
    const B = logits.shape[0] as number;
    return op.Neg(op.ReduceMean(op.GatherElements(op.LogSoftmax(logits, 1), op.Reshape(y, [B, 1]), 1)));
  });
}

/** K training steps per run; with spec.dropout also the masks `drop.*` [K, ...] (classifyDropShapes). */
export function buildClassifyTrainProgram(o: { spec: ClassifySpec; B: number; T: number; optimizer: OptimizerConfig; clipNorm: number }): Program {
  const { spec, B, T } = o;
  const dt = spec.dtype;
  const Hl = spec.hidden[spec.hidden.length - 1];
  return buildStepsProgram({
    name: 'gatelab_classify_train',
    bodyName: 'classify_step',
    dtype: dt,
    params: classifyParams(spec),
    optimizer: o.optimizer,
    clipNorm: o.clipNorm,
    inputs: [
      { name: 'x', ...classifyInput(spec, T, B) },
      { name: 'y', dtype: 'int64', shape: [B] },
      { name: 'mask', bodyName: 'm_t', dtype: dt, shape: [T, B] },
      { name: 'last', dtype: 'int64', shape: [B, 1, Hl] },
    ],
    extra: (spec.dropout ? classifyDropShapes(spec, B, T) : []).map((d) => ({ ...d, dtype: dt })),
    loss: (body, P, _c, [bx, by, bm, bl], bdrop) => ({
      loss: classLoss(body, classifyForward(body, spec, P, bx, bm, bl, bdrop.length ? { layers: bdrop.slice(0, -1), head: bdrop[bdrop.length - 1] } : undefined), by),
    }),
  });
}

/** Class probabilities of N padded sentences. */
export function buildClassifyPredictProgram(o: { spec: ClassifySpec; N: number; T: number }): Program {
  const params = classifyParams(o.spec);
  const Hl = o.spec.hidden[o.spec.hidden.length - 1];
  const g = new Graph('gatelab_classify_predict');
  const op = new Ops(g);
  const pIn = params.map((p) => g.input(`p.${p.name}`, o.spec.dtype, p.shape));
  const xi = classifyInput(o.spec, o.T, o.N);
  const x = g.input('x', xi.dtype, xi.shape);
  const m = g.input('mask', o.spec.dtype, [o.T, o.N]);
  const last = g.input('last', 'int64', [o.N, 1, Hl]);
  const P = Object.fromEntries(params.map((p, i) => [p.name, pIn[i]]));
  g.output(op.Softmax(classifyForward(g, o.spec, P, x, m, last), 1), 'probs');
  return { graph: g, params, state: [] };
}

/** Loss and gradients for the FD tests; with `dropout`, fixed masks as inputs `drop.*` (classifyDropShapes). */
export function buildClassifyGradProgram(o: { spec: ClassifySpec; B: number; T: number; dropout?: boolean }): Program {
  const params = classifyParams(o.spec);
  const Hl = o.spec.hidden[o.spec.hidden.length - 1];
  const g = new Graph('gatelab_classify_grad');
  const pIn = params.map((p) => g.input(`p.${p.name}`, o.spec.dtype, p.shape));
  const xi = classifyInput(o.spec, o.T, o.B);
  const x = g.input('x', xi.dtype, xi.shape);
  const y = g.input('y', 'int64', [o.B]);
  const m = g.input('mask', o.spec.dtype, [o.T, o.B]);
  const last = g.input('last', 'int64', [o.B, 1, Hl]);
  const drops = o.dropout ? classifyDropShapes(o.spec, o.B, o.T).map((d) => g.input(d.name, o.spec.dtype, d.shape)) : [];
  const P = Object.fromEntries(params.map((p, i) => [p.name, pIn[i]]));
  const loss = classLoss(g, classifyForward(g, o.spec, P, x, m, last, drops.length ? { layers: drops.slice(0, -1), head: drops[drops.length - 1] } : undefined), y);
  const grads = gradients(g, loss, pIn);
  g.output(loss, 'loss');
  params.forEach((p, i) => g.output(grads[i], `d.${p.name}`));
  return { graph: g, params, state: [] };
}
