// task: forecast — the target column of a CSV, optionally transformed (log, differences) and
// normalised with the training part's mean and standard deviation, read with input columns
// (data.columns: each numeric one z-scored with the training part, categorical ones one-hot, the
// target's own input its transformed, normalised values); every window of `window` rows followed by
// `horizon` targets is an example; the last `validation` fraction of the rows is held out (its
// windows may start in the training part, their targets never do). Evaluation: the validation MSE
// (normalised) and, in the target's units, the RMSE and MAE of the forecasts beside the persistence
// baseline (the last seen value repeated) and, with data.season, the seasonal-naive baseline.

import { cellDef } from '../nn/cells';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelConfig } from '../config/types';
import { whereOf } from '../config/load';
import { UserError, Where } from '../errors';
import { Frame, loadFrame } from '../data/frame';
import { readSeriesBatch } from '../data/batchjson';
import { Checkpoint, loadCheckpoint } from '../train/checkpoint';
import { cellOf, checkCheckpointFits, float32Feeds } from '../train/lmsetup';
import { buildForecastGradProgram, buildForecastPredictProgram, buildForecastTrainProgram, forecastDropShapes, forecastParams, ForecastSpec } from '../train/forecast';
import { SeqGateProbe } from '../train/probe';
import type { DType } from '../onnx/proto';
import type { GradPlan, Task, TaskRun } from './task';
import { fixedProbe, noBidirectional, stackBatches } from './common';
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
  /** the network's inputs per row, normalised: F features (the univariate form: the target's z) */
  F: number;
  x: Float64Array;
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
  return { series, u, transform: tf, first, nTrain, mean, std, F: 1, x: u.map((ui) => (ui - mean) / std) };
}

// ---- the columns of a forecaster ---------------------------------------------------------------------

/** The columns a forecaster reads (in order) and the one it predicts; data.column is columns [X], target X. */
export function forecastColumns(cfg: ModelConfig): { columns: string[]; target: string; categorical: string[] } {
  const columns = cfg.data.columns ?? [cfg.data.column!];
  return { columns, target: cfg.data.target ?? cfg.data.column ?? columns[0], categorical: cfg.data.categorical };
}

/** How the input columns become features: saved in checkpoints (`gatelab.features`), applied to new data. */
export interface FeatureLayout {
  columns: string[];
  target: string;
  /** categorical columns: their categories, sorted (a one-hot block each) */
  categories: Record<string, string[]>;
  /** numeric columns other than the target: the training part's mean and standard deviation */
  mean: Record<string, number>;
  std: Record<string, number>;
}

/** Feature names in order: a column, or `column=category` for each category of a categorical one. */
export function featureNames(l: FeatureLayout): string[] {
  return l.columns.flatMap((c) => (l.categories[c] ? l.categories[c].map((k) => `${c}=${k}`) : [c]));
}

/** The layout of a frame's columns, with statistics from its first nTrain rows. */
export function layoutOf(frame: Frame, cols: ReturnType<typeof forecastColumns>, nTrain: number): FeatureLayout {
  const categories: Record<string, string[]> = {};
  const mean: Record<string, number> = {};
  const std: Record<string, number> = {};
  for (const c of cols.columns) {
    if (cols.categorical.includes(c)) categories[c] = [...new Set(frame.text.get(c)!)].filter((k) => k !== '').sort();
    else if (c !== cols.target) {
      const a = frame.numeric.get(c)!;
      let m = 0;
      for (let i = 0; i < nTrain; i++) m += a[i];
      m /= nTrain;
      let v = 0;
      for (let i = 0; i < nTrain; i++) v += (a[i] - m) ** 2;
      mean[c] = m;
      std[c] = Math.sqrt(v / nTrain) || 1;
    }
  }
  return { columns: cols.columns, target: cols.target, categories, mean, std };
}

/** Rows × features (row-major) of a frame; the target's own input is `zTarget` (its transformed z). */
export function featuresOf(frame: Frame, l: FeatureLayout, zTarget: ArrayLike<number>): { F: number; x: Float64Array } {
  const F = featureNames(l).length;
  const n = frame.rows;
  const x = new Float64Array(n * F);
  let f = 0;
  for (const c of l.columns) {
    if (l.categories[c]) {
      const cats = l.categories[c];
      const t = frame.text.get(c)!;
      for (let i = 0; i < n; i++) {
        const k = cats.indexOf(t[i]);
        if (k >= 0) x[i * F + f + k] = 1;
      }
      f += cats.length;
    } else {
      const a = c === l.target ? zTarget : frame.numeric.get(c)!;
      const [m, s] = c === l.target ? [0, 1] : [l.mean[c], l.std[c]];
      for (let i = 0; i < n; i++) x[i * F + f] = (a[i] - m) / s;
      f++;
    }
  }
  return { F, x };
}

/** The frame of a forecaster's CSV: its input columns and its target, as data.missing says. */
export function loadForecastFrame(cfg: ModelConfig, file: string, where: Where): Promise<Frame> {
  const cols = forecastColumns(cfg);
  const keyOf = (c: string) => (cfg.data.columns?.includes(c) ? `data.columns.${cfg.data.columns.indexOf(c)}` : c === cfg.data.target ? 'data.target' : 'data.column');
  return loadFrame(file, where, {
    columns: [...new Set([...cols.columns, cols.target])],
    textColumns: cols.categorical,
    missing: cfg.data.missing,
    whereColumn: (c) => (where.key?.startsWith('--') ? where : whereOf(cfg, keyOf(c))),
    whereMissing: whereOf(cfg, 'data.missing'),
  });
}

/** A forecaster's checkpoint metadata: its normalisation and feature layout (what predict and export read). */
export function forecastMetadata(cfg: ModelConfig, s: Pick<SeriesSplit, 'transform' | 'mean' | 'std'>, layout: FeatureLayout, step: number): Record<string, string> {
  return {
    'gatelab.model': cfg.name,
    'gatelab.task': 'forecast',
    'gatelab.transform': s.transform,
    'gatelab.mean': String(s.mean),
    'gatelab.std': String(s.std),
    'gatelab.window': String(cfg.data.window),
    'gatelab.horizon': String(cfg.data.horizon),
    'gatelab.column': layout.target,
    'gatelab.features': JSON.stringify(layout),
    'gatelab.step': String(step),
  };
}

/** A forecaster's data: the target split and, for several input columns, the features of every row. */
export async function forecastData(cfg: ModelConfig): Promise<{ s: SeriesSplit; layout: FeatureLayout; frame: Frame }> {
  const frame = await loadForecastFrame(cfg, cfg.data.source, { ...whereOf(cfg, 'data.source'), file: cfg.file, key: 'data.source' });
  const cols = forecastColumns(cfg);
  if (frame.rows === 0) throw new UserError(`the CSV ${cfg.data.source} has no rows`, whereOf(cfg, 'data.source'), 'use a CSV with a header line and data rows');
  const s = splitSeries(cfg, frame.numeric.get(cols.target)!);
  const layout = layoutOf(frame, cols, s.nTrain);
  const { F, x } = featuresOf(frame, layout, s.x);
  return { s: { ...s, F, x }, layout, frame };
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

/** Windows whose targets start at the given positions: x [T, count, F], y [count, N] (normalised). */
export function windows(s: Pick<SeriesSplit, 'u' | 'mean' | 'std' | 'F' | 'x'>, W: number, N: number, starts: number[]): { x: Float32Array; y: Float32Array } {
  const F = s.F;
  const B = starts.length;
  const x = new Float32Array(W * B * F);
  const y = new Float32Array(N * B);
  starts.forEach((t, b) => {
    for (let w = 0; w < W; w++) for (let f = 0; f < F; f++) x[(w * B + b) * F + f] = s.x[(t - W + w) * F + f];
    for (let h = 0; h < N; h++) y[b * N + h] = (s.u[t + h] - s.mean) / s.std;
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
    const { s, layout, frame } = await forecastData(cfg);
    const series = s.series;
    if (cfg.data.season && cfg.data.season > W) log('warn', `data.season ${cfg.data.season} is longer than the window ${W}: the model cannot see a whole season`);
    const trainStarts = Array.from({ length: s.nTrain - W - N + 1 - s.first }, (_, i) => i + W + s.first);
    if (trainStarts.length < 1)
      throw new UserError(`the training part is too short for one window of ${W} and a horizon of ${N}`, whereOf(cfg, 'data.window'), 'use a shorter window');
    const validStarts: number[] = [];
    for (let t = Math.max(s.nTrain, W + s.first); t + N <= series.length; t++) validStarts.push(t);
    const B = Math.min(cfg.train.batchSize, trainStarts.length);
    const F = s.F;
    const spec = forecastSpecOf(cfg, { inputs: F });
    const program = buildForecastTrainProgram({ spec, B, T: W, optimizer: cfg.train.optimizer, clipNorm: cfg.train.clipNorm });
    // gate views: the first validation window (or the first training window), its input columns
    // drawn as lines above the heatmaps
    const probeStart = validStarts[0] ?? trainStarts[0];
    const pw = windows(s, W, N, [probeStart]);
    const probe = new SeqGateProbe({ type: 'dense', features: F }, spec.hidden, spec.gates, pw.x, Array.from({ length: W }, (_, w) => String(+series[probeStart - W + w].toPrecision(4))), spec.bidirectional, F > 1 ? signalsOf(frame, layout, probeStart - W, W) : undefined);
    const perEpoch = Math.floor(trainStarts.length / B);
    return {
      program,
      dropout: spec.dropout ? { p: spec.dropout, shapes: forecastDropShapes(spec, B, W) } : undefined,
      stepsPerEpoch: perEpoch,
      started: { tokensPerStep: B * W, trainTokens: s.nTrain, validTokens: series.length - s.nTrain },
      describe: `${trainStarts.length} training and ${validStarts.length} validation windows of ${W} ${F > 1 ? `rows × ${F} features (${featureNames(layout).join(', ')})` : 'values'}, horizon ${N}${F > 1 ? ` of ${layout.target}` : ''}`,
      epoch(rng) {
        const order = [...trainStarts];
        rng.shuffle(order);
        return {
          steps: perEpoch,
          chunk(i, k) {
            const c = stackBatches(k, (j) => windows(s, W, N, order.slice((i + j) * B, (i + j + 1) * B)));
            return { x: new ort.Tensor(DTYPE, c.x, [k, W, B, F]), y: new ort.Tensor(DTYPE, c.y, [k, B, N]) };
          },
        };
      },
      async evaluate(params) {
        if (!validStarts.length) return undefined;
        const sess = await session('predict', () => buildForecastPredictProgram({ spec, N: validStarts.length, T: W }).graph.encode());
        const { x } = windows(s, W, N, validStarts);
        const r = await sess.run({ ...params, x: new ort.Tensor(DTYPE, x, [W, validStarts.length, F]) });
        const { mse, ...metrics } = score(s, r.pred.data as Float32Array, validStarts, N, cfg.data.season);
        return { loss: mse, metrics };
      },
      metadata: (step) => forecastMetadata(cfg, s, layout, step),
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
    const { ck, spec, series, W, windowOf, F, frame, layout } = await loadForecaster(cfg, init, input);
    const x = windowOf(series);
    const r = await seqConnectivityOf({ I: F, hidden: spec.hidden, gates: spec.gates, head: { kind: 'forecast', horizon: spec.horizon }, params: forecastParams(spec) }, ck.params, Float64Array.from(x));
    const labels = series.slice(-W).map((v) => String(+v.toPrecision(4)));
    const probe = new SeqGateProbe({ type: 'dense', features: F }, spec.hidden, spec.gates, x, labels, undefined, F > 1 ? signalsOf(frame, layout, frame.rows - W, W) : undefined);
    const feeds = float32Feeds(forecastParams(spec), ck);
    const gates = await probe.run(feeds, 0);
    await probe.release();
    return { tokens: labels, ...r, layers: gates.layers };
  },
};

/** The input columns of rows start..start+W−1 as the dashboard draws them: the numeric ones, in their units. */
export function signalsOf(frame: Frame, l: FeatureLayout, start: number, W: number): { names: string[]; values: number[] } {
  const names = l.columns.filter((c) => !l.categories[c]);
  const values: number[] = [];
  for (let w = 0; w < W; w++) for (const c of names) values.push(+frame.numeric.get(c)![start + w].toPrecision(5));
  return { names, values };
}

/** A forecaster's checkpoint with its normalisation and feature layout (older checkpoints: the target alone). */
function forecasterOf(cfg: ModelConfig, init: string) {
  const ck = loadCheckpoint(init);
  const meta = ck.metadata;
  const mean = Number(meta['gatelab.mean']);
  const std = Number(meta['gatelab.std']);
  const transform = (meta['gatelab.transform'] ?? cfg.data.transform) as ModelConfig['data']['transform'];
  if (!Number.isFinite(mean) || !Number.isFinite(std))
    throw new UserError('the checkpoint has no normalisation (gatelab.mean, gatelab.std)', { file: init, key: 'gatelab.mean' }, 'use a checkpoint saved by a forecast run');
  const cols = forecastColumns(cfg);
  let layout: FeatureLayout = { columns: cols.columns, target: cols.target, categories: {}, mean: {}, std: {} };
  if (meta['gatelab.features']) {
    try {
      layout = JSON.parse(meta['gatelab.features']) as FeatureLayout;
    } catch {
      throw new UserError('the checkpoint\'s gatelab.features is not JSON', { file: init, key: 'gatelab.features' }, 'use a checkpoint saved by a forecast run');
    }
  }
  if (layout.columns.join() !== cols.columns.join() || layout.target !== cols.target)
    throw new UserError(`the checkpoint was trained on columns ${layout.columns.join(', ')} → ${layout.target}, the model file reads ${cols.columns.join(', ')} → ${cols.target}`, whereOf(cfg, cfg.data.columns ? 'data.columns' : 'data.column'), 'use the model file the checkpoint was trained with');
  const F = featureNames(layout).length;
  const spec = forecastSpecOf(cfg, { inputs: F });
  checkCheckpointFits(ck, forecastParams(spec), init, cfg);
  return { ck, spec, mean, std, transform, layout, F };
}

/**
 * A forecaster's checkpoint and the rows of `--input` (a CSV with the model's columns, at least one
 * window long): `windowOf` gives the network's input for the window ending at the last row.
 */
async function loadForecaster(cfg: ModelConfig, init: string, input: string | Frame) {
  const f = forecasterOf(cfg, init);
  const frame = typeof input === 'string' ? await loadForecastFrame(cfg, input, { key: '--input' }) : input;
  const series = Array.from(frame.numeric.get(f.layout.target)!);
  const W = cfg.data.window;
  const need = W + (f.transform === 'difference' || f.transform === 'log-difference' ? 1 : 0);
  if (series.length < need) throw new UserError(`--input has ${series.length} rows; the model needs the last ${need}`, { key: '--input' });
  /** the network's input for the window ending at the end of `all` (the target's values; the other columns of the frame's last rows) */
  const windowOf = (all: number[]) => {
    const { u } = transformed(Float64Array.from(all), f.transform);
    const z = Array.from(u, (v) => (v - f.mean) / f.std);
    const n = all.length;
    const rowsOf = frame.rows === n ? frame : undefined;
    const feats = rowsOf ? featuresOf(rowsOf, f.layout, z).x : Float64Array.from(z);
    return Float32Array.from(feats.subarray((n - W) * f.F, n * f.F));
  };
  return { ...f, frame, series, W, windowOf };
}

/**
 * Forecasts after the last row of a CSV with a trained checkpoint: the next `steps` values of the
 * target (autoregressive when steps exceed the horizon and the target is the only input: each
 * forecast is appended to the inputs).
 */
export async function predictForecast(o: { cfg: ModelConfig; init: string; input: string | Frame; steps?: number }): Promise<{ forecast: number[]; last: number }> {
  const { cfg } = o;
  const { ck, spec, mean, std, transform, series, W, windowOf, F, layout } = await loadForecaster(cfg, o.init, o.input);
  const N = cfg.data.horizon;
  const steps = o.steps ?? N;
  if (steps > N && (layout.columns.length > 1 || layout.columns[0] !== layout.target))
    throw new UserError(`${steps} steps are more than the horizon ${N}, and the model reads other columns besides ${layout.target}: their future values are unknown`, { key: '--steps' }, `ask for at most ${N} steps`);
  const session = await ort.InferenceSession.create(buildForecastPredictProgram({ spec, N: 1, T: W }).graph.encode(), { logSeverityLevel: 3 });
  const feeds = float32Feeds(forecastParams(spec), ck);
  const out: number[] = [];
  const all = [...series];
  while (out.length < steps) {
    const arr = Float64Array.from(all);
    const t = all.length;
    const r = await session.run({ ...feeds, x: new ort.Tensor(DTYPE, windowOf(all), [W, 1, F]) });
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
