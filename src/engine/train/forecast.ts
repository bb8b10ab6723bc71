// Forecasting: a window of W past values → stacked LSTM → the last hidden state → Linear → the next
// `horizon` values; loss = mean squared error over every predicted value (PyTorch's MSELoss
// default). Values are normalised with the mean and standard deviation of the training part only.
// A bidirectional last layer gives [h_fwd at the last step, h_bwd at the first step] (PyTorch's
// h_n; see ../nn/direction.ts). Dropout (training only) multiplies by masks fed as inputs:
// `drop.l<k>` [T, B, D·H_k] on the output of every layer but the last, `drop.head` [B, D·H_L] on
// the vector the head reads.
//
// Legend: K = steps per run, T = window, B = batch, N = horizon, H = hidden, G = 4H, D = directions.

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

export interface ForecastSpec {
  hidden: number[];
  horizon: number;
  /** input features per step (1 for a series; 2 for the adding task) */
  inputs?: number;
  dtype: DType;
  gates?: (GateActivation | undefined)[];
  /** per layer: a forward and a reverse direction */
  bidirectional?: boolean[];
  /** dropout probability between layers and before the head (train program inputs `drop.*`) */
  dropout?: number;
}

/** Width of the vector the head reads: the last layer's hidden size times its directions. */
export function forecastFeatures(spec: ForecastSpec): number {
  return stackFeatures(spec);
}

/** Shapes of the dropout masks of one step: `drop.l<k>` for every layer but the last, then `drop.head`. */
export function forecastDropShapes(spec: ForecastSpec, B: number, T: number): { name: string; shape: number[] }[] {
  return stackDropShapes(spec, B, T);
}

export function forecastParams(spec: ForecastSpec): ParamInfo[] {
  return [...stackParams(spec, spec.inputs ?? 1), { name: 'fc.weight', shape: [spec.horizon, forecastFeatures(spec)] }, { name: 'fc.bias', shape: [spec.horizon] }];
}

/**
 * x [T, B, F] → predictions [B, N] from the last step's hidden state (bidirectional: and the
 * reverse direction's state after reading back to the first step).
 * @param drop dropout masks (training only), as forecastDropShapes: per layer but the last, and the head
 */
export function forecastForward(g: Graph, spec: ForecastSpec, P: Record<string, Value>, x: Value, drop?: { layers: Value[]; head: Value }): Value {
  const op = new Ops(g);
  const [T, B] = x.shape as number[];
  const L = spec.hidden.length;
  let inp = x;
  let top!: ReturnType<typeof runDirections>;
  spec.hidden.forEach((H, k) => {
    g.scope(`lstm${k}`, () => {
      // one direction of the layer over its input in reading order
      const direction = (src: Value, sfx: string): LayerForward => {
        const zeros = g.const(new Array(B * H).fill(0), spec.dtype, [B, H]);
        return cellDef(spec.gates?.[k]).layer(g, P, k, { x: src }, { h0: zeros, c0: zeros }, spec.gates?.[k], sfx);
      };
      top = runDirections(g, inp, null, spec.bidirectional?.[k], direction);
      // dropout between stacked layers
      inp = drop && k < L - 1 ? op.Mul(top.hs, drop.layers[k]) : top.hs;
    });
  });
  let last = finalStates(g, top, null); // [B, D·H]
  if (drop) last = op.Mul(last, drop.head); // dropout before the head
  return g.scope('fc', () => op.Gemm(last, P['fc.weight'], P['fc.bias'], { transB: 1 }));
}

export function mse(g: Graph, pred: Value, y: Value): Value {
  const op = new Ops(g);
  return g.scope('loss', () => {
    const d = op.Sub(pred, y);
    return op.ReduceMean(op.Mul(d, d));
  });
}

/** K training steps per run: inputs p.*, s.*, x [K, T, B, F], y [K, B, N], lr [K]; outputs p_out.*, s_out.*, loss, gnorm. */
/** With spec.dropout also the masks `drop.*` [K, ...] (forecastDropShapes). */
export function buildForecastTrainProgram(o: { spec: ForecastSpec; B: number; T: number; optimizer: OptimizerConfig; clipNorm: number }): Program {
  const { spec, B, T } = o;
  const dt = spec.dtype;
  return buildStepsProgram({
    name: 'gatelab_forecast_train',
    bodyName: 'forecast_step',
    dtype: dt,
    params: forecastParams(spec),
    optimizer: o.optimizer,
    clipNorm: o.clipNorm,
    inputs: [
      { name: 'x', dtype: dt, shape: [T, B, spec.inputs ?? 1] },
      { name: 'y', dtype: dt, shape: [B, spec.horizon] },
    ],
    extra: (spec.dropout ? forecastDropShapes(spec, B, T) : []).map((d) => ({ ...d, dtype: dt })),
    loss: (body, P, _c, [bx, by], bdrop) => ({
      loss: mse(body, forecastForward(body, spec, P, bx, bdrop.length ? { layers: bdrop.slice(0, -1), head: bdrop[bdrop.length - 1] } : undefined), by),
    }),
  });
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

/** Loss and gradients for the FD tests: x [T, B, 1], y [B, N]; with `dropout`, fixed masks as inputs `drop.*`. */
export function buildForecastGradProgram(o: { spec: ForecastSpec; B: number; T: number; dropout?: boolean }): Program {
  const params = forecastParams(o.spec);
  const g = new Graph('gatelab_forecast_grad');
  const pIn = params.map((p) => g.input(`p.${p.name}`, o.spec.dtype, p.shape));
  const x = g.input('x', o.spec.dtype, [o.T, o.B, o.spec.inputs ?? 1]);
  const y = g.input('y', o.spec.dtype, [o.B, o.spec.horizon]);
  const drops = o.dropout ? forecastDropShapes(o.spec, o.B, o.T).map((d) => g.input(d.name, o.spec.dtype, d.shape)) : [];
  const P = Object.fromEntries(params.map((p, i) => [p.name, pIn[i]]));
  const loss = mse(g, forecastForward(g, o.spec, P, x, drops.length ? { layers: drops.slice(0, -1), head: drops[drops.length - 1] } : undefined), y);
  const grads = gradients(g, loss, pIn);
  g.output(loss, 'loss');
  params.forEach((p, i) => g.output(grads[i], `d.${p.name}`));
  return { graph: g, params, state: [] };
}
