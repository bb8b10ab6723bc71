// task: forecast — a numeric CSV column, optionally transformed (log, differences) and normalised
// with the training part's mean and standard deviation; every window of `window` values followed by
// `horizon` targets is an example; the last `validation` fraction of the series is held out (its
// windows may start in the training part, their targets never do). Evaluation: the validation MSE
// (normalised) and, in the series' units, the RMSE and MAE of the forecasts beside the persistence
// baseline (the last seen value repeated) and, with data.season, the seasonal-naive baseline.

import { cellDef } from '../nn/cells';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelConfig } from '../config/types';
import { whereOf } from '../config/load';
import { UserError } from '../errors';
import { loadSeries } from '../data/series';
import { readSeriesBatch } from '../data/batchjson';
import { Checkpoint, loadCheckpoint } from '../train/checkpoint';
import { cellOf, checkCheckpointFits, float32Feeds } from '../train/lmsetup';
import { buildForecastGradProgram, buildForecastPredictProgram, buildForecastTrainProgram, forecastDropShapes, forecastParams, ForecastSpec } from '../train/forecast';
import { SeqGateProbe } from '../train/probe';
import type { DType } from '../onnx/proto';
import type { GradPlan, Task, TaskRun } from './task';
import { fixedProbe, noBidirectional } from './common';
import { seqConnectivityOf } from '../train/connectivity';

const DTYPE = 'float32' as const;

export function forecastSpecOf(cfg: ModelConfig, o: { horizon?: number; inputs?: number; dtype?: DType } = {}): ForecastSpec {
  return {
    hidden: cfg.model.layers.map((l) => l.hidden),
    horizon: o.horizon ?? cfg.data.horizon,
    ...(o.inputs !== undefined ? { inputs: o.inputs } : {}),
    dtype: o.dtype ?? DTYPE,
    gates: cfg.model.layers.map(cellOf),
    bidirectional: cfg.model.layers.map((l) => l.bidirectional),
    dropout: cfg.model.dropout,
  };
}

export interface SeriesSplit {
  /** the series as read */
  series: Float64Array;
  /** the transformed series the model sees (u[0] is undefined for the differencing transforms) */
  u: Float64Array;
  transform: ModelConfig['data']['transform'];
  /** first position a window may start at */
  first: number;
  nTrain: number;
  mean: number;
  std: number;
}

export function splitSeries(cfg: ModelConfig, series: Float64Array): SeriesSplit {
  const n = series.length;
  const W = cfg.data.window;
  const N = cfg.data.horizon;
  const nValid = Math.round(n * cfg.data.validation);
  const nTrain = n - nValid;
  if (nTrain < W + N)
    throw new UserError(
      `the series has ${n} values (${nTrain} for training) but a window of ${W} plus a horizon of ${N} needs at least ${W + N}`,
      whereOf(cfg, 'data.window'),
      'use a shorter window, a smaller validation fraction, or a longer series',
    );
  const tf = cfg.data.transform;
  if ((tf === 'log' || tf === 'log-difference') && series.some((x) => !(x > 0)))
    throw new UserError(`data.transform ${tf} needs positive values, and the series has some ≤ 0`, whereOf(cfg, 'data.transform'), 'use none or difference');
  const { u, first } = transformed(series, tf);
  let mean = 0;
  for (let i = first; i < nTrain; i++) mean += u[i];
  mean /= nTrain - first;
  let v = 0;
  for (let i = first; i < nTrain; i++) v += (u[i] - mean) ** 2;
  const std = Math.sqrt(v / (nTrain - first)) || 1;
  return { series, u, transform: tf, first, nTrain, mean, std };
}

/** The series the model sees before normalisation, and the first position that has a value. */
function transformed(series: Float64Array, transform: ModelConfig['data']['transform']): { u: Float64Array; first: number } {
  const lg = transform === 'log' || transform === 'log-difference' ? series.map(Math.log) : series;
  const diff = transform === 'difference' || transform === 'log-difference';
  return { u: diff ? lg.map((x, i) => (i === 0 ? 0 : x - lg[i - 1])) : lg, first: diff ? 1 : 0 };
}

type SplitLike = Pick<SeriesSplit, 'series' | 'transform' | 'mean' | 'std'>;

/** Forecasts in the series' units: predictions of u (normalised) for targets t..t+N−1. */
export function inverse(s: SplitLike, zPred: ArrayLike<number>, t: number): number[] {
  const out: number[] = [];
  let acc = 0;
  for (let h = 0; h < zPred.length; h++) {
    const uh = zPred[h] * s.std + s.mean;
    switch (s.transform) {
      case 'none':
        out.push(uh);
        break;
      case 'log':
        out.push(Math.exp(uh));
        break;
      case 'difference':
        acc += uh;
        out.push(s.series[t - 1] + acc);
        break;
      case 'log-difference':
        acc += uh;
        out.push(s.series[t - 1] * Math.exp(acc));
        break;
    }
  }
  return out;
}

/** Windows whose targets start at the given positions: x [T, count, 1], y [count, N] (normalised). */
export function windows(s: SeriesSplit, W: number, N: number, starts: number[]): { x: Float32Array; y: Float32Array } {
  const x = new Float32Array(W * starts.length);
  const y = new Float32Array(N * starts.length);
  const z = (i: number) => (s.u[i] - s.mean) / s.std;
  starts.forEach((t, b) => {
    for (let w = 0; w < W; w++) x[w * starts.length + b] = z(t - W + w);
    for (let h = 0; h < N; h++) y[b * N + h] = z(t + h);
  });
  return { x, y };
}

export interface ForecastScores {
  mse: number;
  rmse: number;
  mae: number;
  baselineRmse: number;
  seasonalBaselineRmse?: number;
}

/** Scores of predictions (normalised [count, N]) against the series, in the original units. */
export function score(s: SeriesSplit, pred: Float32Array, starts: number[], N: number, season?: number): ForecastScores {
  let se = 0;
  let ae = 0;
  let bse = 0;
  let sse = 0;
  let zse = 0;
  let n = 0;
  starts.forEach((t, b) => {
    const ps = inverse(s, pred.subarray(b * N, (b + 1) * N), t);
    const zt = windows(s, 0, N, [t]).y;
    for (let h = 0; h < N; h++) {
      const truth = s.series[t + h];
      const p = ps[h];
      se += (p - truth) ** 2;
      zse += (pred[b * N + h] - zt[h]) ** 2;
      ae += Math.abs(p - truth);
      bse += (s.series[t - 1] - truth) ** 2;
      if (season) sse += (s.series[t + h - season * Math.ceil((h + 1) / season)] - truth) ** 2;
      n++;
    }
  });
  return { mse: zse / n, rmse: Math.sqrt(se / n), mae: ae / n, baselineRmse: Math.sqrt(bse / n), ...(season ? { seasonalBaselineRmse: Math.sqrt(sse / n) } : {}) };
}

/**
 * `gatelab grad` of a model that reads numeric steps (forecast, adding): inputs [batch][time] or
 * [batch][time][features] as the network sees them (no normalisation), targets [batch][horizon];
 * the features and the horizon come from the checkpoint's shapes.
 */
export function seriesGrad(cfg: ModelConfig, ck: Checkpoint, ckFile: string, batchFile: string): GradPlan {
  const fc = ck.params.get('fc.weight');
  const first = ck.params.get(cellDef(cellOf(cfg.model.layers[0])).inputWeight(0, ''));
  if (!fc || fc.shape.length !== 2 || !first || first.shape.length !== 2)
    throw new UserError('the checkpoint lacks fc.weight or the first layer\'s input weights', { file: ckFile, key: 'fc.weight' }, `use a checkpoint saved from this ${cfg.task} model`);
  const F = first.shape[1];
  const spec = forecastSpecOf(cfg, { horizon: fc.shape[0], inputs: F, dtype: 'float64' });
  const params = forecastParams(spec);
  checkCheckpointFits(ck, params, ckFile, cfg);
  const b = readSeriesBatch(batchFile, F, spec.horizon);
  const x = new Float64Array(b.T * b.B * F);
  b.inputs.forEach((row, n) => row.forEach((step, t) => step.forEach((v, f) => (x[(t * b.B + n) * F + f] = v))));
  const feeds = { x: new ort.Tensor('float64', x, [b.T, b.B, F]), y: new ort.Tensor('float64', Float64Array.from(b.targets.flat()), [b.B, spec.horizon]) };
  return { params, program: buildForecastGradProgram({ spec: { ...spec, dropout: 0 }, B: b.B, T: b.T }), feeds, shape: `${b.B}x${b.T}x${F}` };
}

export const forecast: Task = {
  kind: 'forecast',
  sweepMetric: 'rmse',

  async setup({ cfg, log, session }): Promise<TaskRun> {
    const W = cfg.data.window;
    const N = cfg.data.horizon;
    const series = await loadSeries(cfg.data.source, cfg.data.column!, { ...whereOf(cfg, 'data.source'), file: cfg.file, key: 'data.source' });
    const s = splitSeries(cfg, series);
    if (cfg.data.season && cfg.data.season > W) log('warn', `data.season ${cfg.data.season} is longer than the window ${W}: the model cannot see a whole season`);
    const trainStarts = Array.from({ length: s.nTrain - W - N + 1 - s.first }, (_, i) => i + W + s.first);
    if (trainStarts.length < 1)
      throw new UserError(`the training part is too short for one window of ${W} and a horizon of ${N}`, whereOf(cfg, 'data.window'), 'use a shorter window');
    const validStarts: number[] = [];
    for (let t = Math.max(s.nTrain, W + s.first); t + N <= series.length; t++) validStarts.push(t);
    const B = Math.min(cfg.train.batchSize, trainStarts.length);
    const spec = forecastSpecOf(cfg);
    const program = buildForecastTrainProgram({ spec, B, T: W, optimizer: cfg.train.optimizer, clipNorm: cfg.train.clipNorm });
    // gate views: the first validation window (or the first training window)
    const probeStart = validStarts[0] ?? trainStarts[0];
    const pw = windows(s, W, N, [probeStart]);
    const probe = new SeqGateProbe({ type: 'dense', features: 1 }, spec.hidden, spec.gates, pw.x, Array.from({ length: W }, (_, w) => String(+series[probeStart - W + w].toPrecision(4))), spec.bidirectional);
    const perEpoch = Math.floor(trainStarts.length / B);
    return {
      program,
      dropout: spec.dropout ? { p: spec.dropout, shapes: forecastDropShapes(spec, B, W) } : undefined,
      stepsPerEpoch: perEpoch,
      started: { tokensPerStep: B * W, trainTokens: s.nTrain, validTokens: series.length - s.nTrain },
      describe: `${trainStarts.length} training and ${validStarts.length} validation windows of ${W} values, horizon ${N}`,
      epoch(rng) {
        const order = [...trainStarts];
        rng.shuffle(order);
        return {
          steps: perEpoch,
          chunk(i, k) {
            const x = new Float32Array(k * W * B);
            const y = new Float32Array(k * B * N);
            for (let j = 0; j < k; j++) {
              const w = windows(s, W, N, order.slice((i + j) * B, (i + j + 1) * B));
              x.set(w.x, j * W * B);
              y.set(w.y, j * B * N);
            }
            return { x: new ort.Tensor(DTYPE, x, [k, W, B, 1]), y: new ort.Tensor(DTYPE, y, [k, B, N]) };
          },
        };
      },
      async evaluate(params) {
        if (!validStarts.length) return undefined;
        const sess = await session('predict', () => buildForecastPredictProgram({ spec, N: validStarts.length, T: W }).graph.encode());
        const { x } = windows(s, W, N, validStarts);
        const r = await sess.run({ ...params, x: new ort.Tensor(DTYPE, x, [W, validStarts.length, 1]) });
        const { mse, ...metrics } = score(s, r.pred.data as Float32Array, validStarts, N, cfg.data.season);
        return { loss: mse, metrics };
      },
      metadata: (step) => ({
        'gatelab.model': cfg.name,
        'gatelab.task': 'forecast',
        'gatelab.transform': s.transform,
        'gatelab.mean': String(s.mean),
        'gatelab.std': String(s.std),
        'gatelab.window': String(W),
        'gatelab.horizon': String(N),
        'gatelab.column': cfg.data.column!,
        'gatelab.step': String(step),
      }),
      probe: fixedProbe(probe),
    };
  },

  grad: seriesGrad,

  async predict({ cfg, init, input, steps }) {
    // the input is a CSV file (relative to the working directory)
    const r = await predictForecast({ cfg, init, input: path.resolve(input), steps });
    return { model: cfg.name, forecast: r.forecast, after: r.last };
  },
  // `gatelab probe`: the gradient of the first forecast value back to each value of the last window
  async through({ cfg, init, input }) {
    noBidirectional(cfg, '`gatelab probe` of a bidirectional forecaster');
    const { ck, spec, series, W, windowOf } = await loadForecaster(cfg, init, input);
    const x = windowOf(series);
    const r = await seqConnectivityOf({ I: 1, hidden: spec.hidden, gates: spec.gates, head: { kind: 'forecast', horizon: spec.horizon }, params: forecastParams(spec) }, ck.params, Float64Array.from(x));
    const labels = series.slice(-W).map((v) => String(+v.toPrecision(4)));
    const probe = new SeqGateProbe({ type: 'dense', features: 1 }, spec.hidden, spec.gates, x, labels);
    const feeds = float32Feeds(forecastParams(spec), ck);
    const gates = await probe.run(feeds, 0);
    await probe.release();
    return { tokens: labels, ...r, layers: gates.layers };
  },
};

/**
 * Forecasts after the end of a CSV series with a trained checkpoint: the next `steps` values
 * (autoregressive when steps exceed the horizon: each forecast is appended to the inputs).
 */
/** A forecaster's checkpoint with its normalisation, and the series of `--input` (long enough for one window). */
async function loadForecaster(cfg: ModelConfig, init: string, input: string) {
  const ck = loadCheckpoint(init);
  const spec = forecastSpecOf(cfg);
  checkCheckpointFits(ck, forecastParams(spec), init, cfg);
  const meta = ck.metadata;
  const mean = Number(meta['gatelab.mean']);
  const std = Number(meta['gatelab.std']);
  const transform = (meta['gatelab.transform'] ?? cfg.data.transform) as ModelConfig['data']['transform'];
  if (!Number.isFinite(mean) || !Number.isFinite(std))
    throw new UserError('the checkpoint has no normalisation (gatelab.mean, gatelab.std)', { file: init, key: 'gatelab.mean' }, 'use a checkpoint saved by a forecast run');
  const series = Array.from(await loadSeries(input, cfg.data.column!, { key: '--input' }));
  const W = cfg.data.window;
  const need = W + (transform === 'difference' || transform === 'log-difference' ? 1 : 0);
  if (series.length < need) throw new UserError(`--input has ${series.length} values; the model needs the last ${need}`, { key: '--input' });
  /** the network's input for the window ending at the end of `all`: W transformed, normalised values */
  const windowOf = (all: number[]) => {
    const { u } = transformed(Float64Array.from(all), transform);
    const t = all.length;
    return Float32Array.from({ length: W }, (_, w) => (u[t - W + w] - mean) / std);
  };
  return { ck, spec, mean, std, transform, series, W, windowOf };
}

export async function predictForecast(o: { cfg: ModelConfig; init: string; input: string; steps?: number }): Promise<{ forecast: number[]; last: number }> {
  const { cfg } = o;
  const { ck, spec, mean, std, transform, series, W, windowOf } = await loadForecaster(cfg, o.init, o.input);
  const N = cfg.data.horizon;
  const steps = o.steps ?? N;
  const session = await ort.InferenceSession.create(buildForecastPredictProgram({ spec, N: 1, T: W }).graph.encode(), { logSeverityLevel: 3 });
  const feeds = float32Feeds(forecastParams(spec), ck);
  const out: number[] = [];
  const all = [...series];
  while (out.length < steps) {
    const arr = Float64Array.from(all);
    const t = all.length;
    const r = await session.run({ ...feeds, x: new ort.Tensor(DTYPE, windowOf(all), [W, 1, 1]) });
    for (const v of inverse({ series: arr, transform, mean, std }, r.pred.data as Float32Array, t)) {
      if (out.length < steps) {
        out.push(v);
        all.push(v);
      }
    }
  }
  await session.release();
  return { forecast: out, last: series[series.length - 1] };
}
