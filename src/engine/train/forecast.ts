// Forecasting: a window of W past values → stacked LSTM → the last hidden state → Linear → the next
// `horizon` values; loss = mean squared error over every predicted value (PyTorch's MSELoss
// default). Values are normalised with the mean and standard deviation of the training part only.
//
// Legend: K = steps per run, T = window, B = batch, N = horizon, H = hidden, G = 4H.

import { Graph, Value } from '../onnx/builder';
import { Ops } from '../onnx/ops';
import { DType } from '../onnx/proto';
import { gradients } from '../onnx/grad';
import { GateActivation, lstmRecurrence } from '../nn/lstm';
import { ParamInfo } from '../nn/lm';
import { clipByGlobalNorm, optimizerState, optimizerStep } from '../nn/optim';
import { OptimizerConfig } from '../config/types';
import type { Program } from './program';

export interface ForecastSpec {
  hidden: number[];
  horizon: number;
  /** input features per step (1 for a series; 2 for the adding task) */
  inputs?: number;
  dtype: DType;
  gates?: (GateActivation | undefined)[];
}

export function forecastParams(spec: ForecastSpec): ParamInfo[] {
  const ps: ParamInfo[] = [];
  let inSize = spec.inputs ?? 1;
  spec.hidden.forEach((H, k) => {
    ps.push({ name: `lstm.weight_ih_l${k}`, shape: [4 * H, inSize] });
    ps.push({ name: `lstm.weight_hh_l${k}`, shape: [4 * H, H] });
    ps.push({ name: `lstm.bias_ih_l${k}`, shape: [4 * H] });
    ps.push({ name: `lstm.bias_hh_l${k}`, shape: [4 * H] });
    if (spec.gates?.[k]?.peepholes) ps.push({ name: `lstm.weight_peephole_l${k}`, shape: [3, H] });
    inSize = H;
  });
  const Hl = spec.hidden[spec.hidden.length - 1];
  ps.push({ name: 'fc.weight', shape: [spec.horizon, Hl] });
  ps.push({ name: 'fc.bias', shape: [spec.horizon] });
  return ps;
}

/** x [T, B, 1] → predictions [B, N] from the last step's hidden state. */
export function forecastForward(g: Graph, spec: ForecastSpec, P: Record<string, Value>, x: Value): Value {
  const op = new Ops(g);
  const [T, B] = x.shape as number[];
  let inp = x;
  spec.hidden.forEach((H, k) => {
    g.scope(`lstm${k}`, () => {
      const I = inp.shape[2] as number;
      const bias = op.Add(P[`lstm.bias_ih_l${k}`], P[`lstm.bias_hh_l${k}`]);
      const xw = op.Reshape(op.Gemm(op.Reshape(inp, [T * B, I]), P[`lstm.weight_ih_l${k}`], bias, { transB: 1 }), [T, B, 4 * H]);
      const zeros = g.const(new Array(B * H).fill(0), spec.dtype, [B, H]);
      inp = lstmRecurrence(g, xw, P[`lstm.weight_hh_l${k}`], zeros, zeros, spec.gates?.[k], P[`lstm.weight_peephole_l${k}`] ?? null).hs;
    });
  });
  const Hl = spec.hidden[spec.hidden.length - 1];
  const last = op.Reshape(op.Slice(inp, [T - 1], [T], [0]), [B, Hl]);
  return g.scope('fc', () => op.Gemm(last, P['fc.weight'], P['fc.bias'], { transB: 1 }));
}

export function mse(g: Graph, pred: Value, y: Value): Value {
  const op = new Ops(g);
  return g.scope('loss', () => {
    const d = op.Sub(pred, y);
    return op.ReduceMean(op.Mul(d, d));
  });
}

/** K training steps per run: inputs p.*, s.*, x [K, T, B, 1], y [K, B, N], lr [K]; outputs p_out.*, s_out.*, loss, gnorm. */
export function buildForecastTrainProgram(o: { spec: ForecastSpec; B: number; T: number; optimizer: OptimizerConfig; clipNorm: number }): Program {
  const { spec, B, T } = o;
  const dt = spec.dtype;
  const params = forecastParams(spec);
  const opt = optimizerState(o.optimizer, params);
  const g = new Graph('gatelab_forecast_train');
  const op = new Ops(g);
  const pIn = params.map((p) => g.input(`p.${p.name}`, dt, p.shape));
  const sIn = opt.map((s) => g.input(`s.${s.name}`, dt, s.shape));
  const x = g.input('x', dt, ['K', T, B, spec.inputs ?? 1]);
  const y = g.input('y', dt, ['K', B, spec.horizon]);
  const lr = g.input('lr', dt, ['K']);
  const body = g.subgraph('forecast_step');
  const bp = params.map((p) => body.input(body.freshName(`p.${p.name}`), dt, p.shape));
  const bs = opt.map((s) => body.input(body.freshName(`s.${s.name}`), dt, s.shape));
  const bx = body.input(body.freshName('x_t'), dt, [T, B, spec.inputs ?? 1]);
  const by = body.input(body.freshName('y_t'), dt, [B, spec.horizon]);
  const blr = body.input(body.freshName('lr_t'), dt, []);
  const P = Object.fromEntries(params.map((p, i) => [p.name, bp[i]]));
  const loss = mse(body, forecastForward(body, spec, P, bx), by);
  const grads = gradients(body, loss, bp);
  const clipped = clipByGlobalNorm(body, grads, o.clipNorm);
  const upd = optimizerStep(body, o.optimizer, bp, clipped.grads, bs, blr);
  upd.params.forEach((v) => body.output(v));
  upd.state.forEach((v) => body.output(v));
  body.output(loss);
  body.output(clipped.norm);
  const outs = op.Scan(body, [...pIn, ...sIn], [x, y, lr]);
  let k = 0;
  params.forEach((p) => g.output(outs[k++], `p_out.${p.name}`));
  opt.forEach((s) => g.output(outs[k++], `s_out.${s.name}`));
  g.output(outs[k++], 'loss');
  g.output(outs[k++], 'gnorm');
  return { graph: g, params, state: opt };
}

/** Predictions of N windows: x [T, N, 1] → pred [N, horizon]. */
export function buildForecastPredictProgram(o: { spec: ForecastSpec; N: number; T: number }): Program {
  const params = forecastParams(o.spec);
  const g = new Graph('gatelab_forecast_predict');
  const pIn = params.map((p) => g.input(`p.${p.name}`, o.spec.dtype, p.shape));
  const x = g.input('x', o.spec.dtype, [o.T, o.N, o.spec.inputs ?? 1]);
  const P = Object.fromEntries(params.map((p, i) => [p.name, pIn[i]]));
  g.output(forecastForward(g, o.spec, P, x), 'pred');
  return { graph: g, params, state: [] };
}

/** Loss and gradients for the FD tests: x [T, B, 1], y [B, N]. */
export function buildForecastGradProgram(o: { spec: ForecastSpec; B: number; T: number }): Program {
  const params = forecastParams(o.spec);
  const g = new Graph('gatelab_forecast_grad');
  const pIn = params.map((p) => g.input(`p.${p.name}`, o.spec.dtype, p.shape));
  const x = g.input('x', o.spec.dtype, [o.T, o.B, o.spec.inputs ?? 1]);
  const y = g.input('y', o.spec.dtype, [o.B, o.spec.horizon]);
  const P = Object.fromEntries(params.map((p, i) => [p.name, pIn[i]]));
  const loss = mse(g, forecastForward(g, o.spec, P, x), y);
  const grads = gradients(g, loss, pIn);
  g.output(loss, 'loss');
  params.forEach((p, i) => g.output(grads[i], `d.${p.name}`));
  return { graph: g, params, state: [] };
}
