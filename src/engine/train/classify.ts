// Classification: tokens → one-hot or embedding → stacked LSTM → a sentence vector → Linear →
// softmax cross-entropy (mean over the batch). Sentences are right-padded to T; padding never
// counts: the vector is the hidden state at each sentence's last real step (`last`), or the mean
// of the hidden states over its real steps (`mean`), so what follows a sentence cannot change it.
//
// Legend: K = steps per run, T = padded length, B = batch, E = embedding, H = hidden, C = classes.

import { Graph, Value } from '../onnx/builder';
import { Ops } from '../onnx/ops';
import { DType } from '../onnx/proto';
import { gradients } from '../onnx/grad';
import { GateActivation, lstmRecurrence } from '../nn/lstm';
import { ParamInfo } from '../nn/lm';
import { clipByGlobalNorm, optimizerState, optimizerStep } from '../nn/optim';
import { OptimizerConfig } from '../config/types';
import type { Program } from './program';

export interface ClassifySpec {
  vocab: number;
  embedding: number;
  hidden: number[];
  classes: number;
  pooling: 'last' | 'mean';
  dtype: DType;
  gates?: (GateActivation | undefined)[];
}

export function classifyParams(spec: ClassifySpec): ParamInfo[] {
  const ps: ParamInfo[] = [];
  if (spec.embedding > 0) ps.push({ name: 'embedding.weight', shape: [spec.vocab, spec.embedding] });
  let inSize = spec.embedding > 0 ? spec.embedding : spec.vocab;
  spec.hidden.forEach((H, k) => {
    ps.push({ name: `lstm.weight_ih_l${k}`, shape: [4 * H, inSize] });
    ps.push({ name: `lstm.weight_hh_l${k}`, shape: [4 * H, H] });
    ps.push({ name: `lstm.bias_ih_l${k}`, shape: [4 * H] });
    ps.push({ name: `lstm.bias_hh_l${k}`, shape: [4 * H] });
    if (spec.gates?.[k]?.peepholes) ps.push({ name: `lstm.weight_peephole_l${k}`, shape: [3, H] });
    inSize = H;
  });
  const Hl = spec.hidden[spec.hidden.length - 1];
  ps.push({ name: 'fc.weight', shape: [spec.classes, Hl] });
  ps.push({ name: 'fc.bias', shape: [spec.classes] });
  return ps;
}

/**
 * @param x [T, B] int64 token ids (padded)
 * @param mask [T, B] 1 for real steps, 0 for padding
 * @param last [B, 1, H] int64: each sentence's last real step, repeated over H (GatherElements)
 * @returns logits [B, C]
 */
export function classifyForward(g: Graph, spec: ClassifySpec, P: Record<string, Value>, x: Value, mask: Value, last: Value): Value {
  const op = new Ops(g);
  const [T, B] = x.shape as number[];
  let hs: Value | null = null;
  spec.hidden.forEach((H, k) => {
    g.scope(`lstm${k}`, () => {
      const wih = P[`lstm.weight_ih_l${k}`];
      const bias = op.Add(P[`lstm.bias_ih_l${k}`], P[`lstm.bias_hh_l${k}`]);
      let xw: Value;
      if (k === 0 && spec.embedding === 0) xw = op.Add(op.Gather(op.Transpose(wih, [1, 0]), x, 0), bias);
      else {
        const inp: Value = k === 0 ? op.Gather(P['embedding.weight'], x, 0) : hs!;
        const I = inp.shape[2] as number;
        xw = op.Reshape(op.Gemm(op.Reshape(inp, [T * B, I]), wih, bias, { transB: 1 }), [T, B, 4 * H]);
      }
      const zeros = g.const(new Array(B * H).fill(0), spec.dtype, [B, H]);
      hs = lstmRecurrence(g, xw, P[`lstm.weight_hh_l${k}`], zeros, zeros, spec.gates?.[k], P[`lstm.weight_peephole_l${k}`] ?? null).hs;
    });
  });
  const Hl = spec.hidden[spec.hidden.length - 1];
  const pooled = g.scope('pool', () => {
    if (spec.pooling === 'last') return op.Reshape(op.GatherElements(op.Transpose(hs!, [1, 0, 2]), last, 1), [B, Hl]);
    const m3 = op.Unsqueeze(mask, [2]); // [T, B, 1]
    const sum = op.ReduceSum(op.Mul(hs!, m3), [0]); // [B, H]
    const len = op.ReduceSum(m3, [0]); // [B, 1]
    return op.Div(sum, len);
  });
  return g.scope('fc', () => op.Gemm(pooled, P['fc.weight'], P['fc.bias'], { transB: 1 }));
}

export function classLoss(g: Graph, logits: Value, y: Value): Value {
  const op = new Ops(g);
  return g.scope('loss', () => {
    const B = logits.shape[0] as number;
    return op.Neg(op.ReduceMean(op.GatherElements(op.LogSoftmax(logits, 1), op.Reshape(y, [B, 1]), 1)));
  });
}

export function buildClassifyTrainProgram(o: { spec: ClassifySpec; B: number; T: number; optimizer: OptimizerConfig; clipNorm: number }): Program {
  const { spec, B, T } = o;
  const dt = spec.dtype;
  const Hl = spec.hidden[spec.hidden.length - 1];
  const params = classifyParams(spec);
  const opt = optimizerState(o.optimizer, params);
  const g = new Graph('gatelab_classify_train');
  const op = new Ops(g);
  const pIn = params.map((p) => g.input(`p.${p.name}`, dt, p.shape));
  const sIn = opt.map((s) => g.input(`s.${s.name}`, dt, s.shape));
  const x = g.input('x', 'int64', ['K', T, B]);
  const y = g.input('y', 'int64', ['K', B]);
  const m = g.input('mask', dt, ['K', T, B]);
  const last = g.input('last', 'int64', ['K', B, 1, Hl]);
  const lr = g.input('lr', dt, ['K']);
  const body = g.subgraph('classify_step');
  const bp = params.map((p) => body.input(body.freshName(`p.${p.name}`), dt, p.shape));
  const bs = opt.map((s) => body.input(body.freshName(`s.${s.name}`), dt, s.shape));
  const bx = body.input(body.freshName('x_t'), 'int64', [T, B]);
  const by = body.input(body.freshName('y_t'), 'int64', [B]);
  const bm = body.input(body.freshName('m_t'), dt, [T, B]);
  const bl = body.input(body.freshName('last_t'), 'int64', [B, 1, Hl]);
  const blr = body.input(body.freshName('lr_t'), dt, []);
  const P = Object.fromEntries(params.map((p, i) => [p.name, bp[i]]));
  const logits = classifyForward(body, spec, P, bx, bm, bl);
  const loss = classLoss(body, logits, by);
  const grads = gradients(body, loss, bp);
  const clipped = clipByGlobalNorm(body, grads, o.clipNorm);
  const upd = optimizerStep(body, o.optimizer, bp, clipped.grads, bs, blr);
  upd.params.forEach((v) => body.output(v));
  upd.state.forEach((v) => body.output(v));
  body.output(loss);
  body.output(clipped.norm);
  const outs = op.Scan(body, [...pIn, ...sIn], [x, y, m, last, lr]);
  let k = 0;
  params.forEach((p) => g.output(outs[k++], `p_out.${p.name}`));
  opt.forEach((s) => g.output(outs[k++], `s_out.${s.name}`));
  g.output(outs[k++], 'loss');
  g.output(outs[k++], 'gnorm');
  return { graph: g, params, state: opt };
}

/** Class probabilities of N padded sentences. */
export function buildClassifyPredictProgram(o: { spec: ClassifySpec; N: number; T: number }): Program {
  const params = classifyParams(o.spec);
  const Hl = o.spec.hidden[o.spec.hidden.length - 1];
  const g = new Graph('gatelab_classify_predict');
  const op = new Ops(g);
  const pIn = params.map((p) => g.input(`p.${p.name}`, o.spec.dtype, p.shape));
  const x = g.input('x', 'int64', [o.T, o.N]);
  const m = g.input('mask', o.spec.dtype, [o.T, o.N]);
  const last = g.input('last', 'int64', [o.N, 1, Hl]);
  const P = Object.fromEntries(params.map((p, i) => [p.name, pIn[i]]));
  g.output(op.Softmax(classifyForward(g, o.spec, P, x, m, last), 1), 'probs');
  return { graph: g, params, state: [] };
}

/** Loss and gradients for the FD tests. */
export function buildClassifyGradProgram(o: { spec: ClassifySpec; B: number; T: number }): Program {
  const params = classifyParams(o.spec);
  const Hl = o.spec.hidden[o.spec.hidden.length - 1];
  const g = new Graph('gatelab_classify_grad');
  const pIn = params.map((p) => g.input(`p.${p.name}`, o.spec.dtype, p.shape));
  const x = g.input('x', 'int64', [o.T, o.B]);
  const y = g.input('y', 'int64', [o.B]);
  const m = g.input('mask', o.spec.dtype, [o.T, o.B]);
  const last = g.input('last', 'int64', [o.B, 1, Hl]);
  const P = Object.fromEntries(params.map((p, i) => [p.name, pIn[i]]));
  const loss = classLoss(g, classifyForward(g, o.spec, P, x, m, last), y);
  const grads = gradients(g, loss, pIn);
  g.output(loss, 'loss');
  params.forEach((p, i) => g.output(grads[i], `d.${p.name}`));
  return { graph: g, params, state: [] };
}
