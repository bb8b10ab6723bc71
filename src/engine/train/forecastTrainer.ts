// The trainer of `task: forecast`: a numeric CSV column, normalised with the training part's mean and
// standard deviation; every window of `window` values followed by `horizon` targets is an example;
// the last `validation` fraction of the series is held out (its windows may start in the training
// part, their targets never do). After each epoch: validation MSE (normalised) and, in the
// original units, the RMSE and MAE of the forecasts, beside the persistence baseline (the last
// seen value repeated) and, with data.season, the seasonal-naive baseline (the value one season
// earlier). Messages, metrics, checkpoints and the run record follow the language-model trainer.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelConfig } from '../config/types';
import { whereOf } from '../config/load';
import { UserError } from '../errors';
import { loadSeries } from '../data/series';
import { initParams } from '../nn/init';
import { Rng } from '../util/rng';
import { appendLine } from '../util/fsx';
import { chooseDevice, createSession } from '../runtime/device';
import { Checkpoint, loadCheckpoint, saveCheckpoint } from './checkpoint';
import { asDtype, cellOf, checkCheckpointFits } from './lmsetup';
import { buildForecastPredictProgram, buildForecastTrainProgram, forecastDropShapes, ForecastSpec } from './forecast';
import { learningRateAt } from './schedule';
import { RUN_FILES, RunRecord, writeRunRecord } from './runrecord';
import type { Summary } from '../../shared/protocol';
import type { TrainHooks, TrainRequest } from './trainer';
import { TrainingFailure } from './trainer';
import { gateRecorder, SeqGateProbe } from './probe';
import { dropoutMasks } from '../nn/dropout';

const DTYPE = 'float32' as const;

export function forecastSpecOf(cfg: ModelConfig): ForecastSpec {
  return {
    hidden: cfg.model.layers.map((l) => l.hidden),
    horizon: cfg.data.horizon,
    dtype: DTYPE,
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
  const lg = tf === 'log' || tf === 'log-difference' ? series.map(Math.log) : series;
  const u = tf === 'difference' || tf === 'log-difference' ? lg.map((x, i) => (i === 0 ? 0 : x - lg[i - 1])) : lg;
  const first = tf === 'difference' || tf === 'log-difference' ? 1 : 0;
  let mean = 0;
  for (let i = first; i < nTrain; i++) mean += u[i];
  mean /= nTrain - first;
  let v = 0;
  for (let i = first; i < nTrain; i++) v += (u[i] - mean) ** 2;
  const std = Math.sqrt(v / (nTrain - first)) || 1;
  return { series, u, transform: tf, first, nTrain, mean, std };
}

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

type SplitLike = Pick<SeriesSplit, 'series' | 'transform' | 'mean' | 'std'>;

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

export async function runForecastTraining(cfg: ModelConfig, job: TrainRequest, hooks: TrainHooks): Promise<Summary> {
  const t0 = Date.now();
  const log = (level: 'debug' | 'info' | 'warn' | 'error', message: string) => hooks.emit({ type: 'log', level, message });
  const W = cfg.data.window;
  const N = cfg.data.horizon;
  const series = loadSeries(cfg.data.source, cfg.data.column!, { ...whereOf(cfg, 'data.source'), file: cfg.file, key: 'data.source' });
  const s = splitSeries(cfg, series);
  if (cfg.data.season && cfg.data.season > W) log('warn', `data.season ${cfg.data.season} is longer than the window ${W}: the model cannot see a whole season`);
  const trainStarts = Array.from({ length: s.nTrain - W - N + 1 - s.first }, (_, i) => i + W + s.first);
  if (trainStarts.length < 1)
    throw new UserError(`the training part is too short for one window of ${W} and a horizon of ${N}`, whereOf(cfg, 'data.window'), 'use a shorter window');
  const validStarts: number[] = [];
  for (let t = Math.max(s.nTrain, W + s.first); t + N <= series.length; t++) validStarts.push(t);
  const B = Math.min(cfg.train.batchSize, trainStarts.length);
  const perEpoch = Math.floor(trainStarts.length / B);
  const spec = forecastSpecOf(cfg);
  const prog = buildForecastTrainProgram({ spec, B, T: W, optimizer: cfg.train.optimizer, clipNorm: cfg.train.clipNorm });
  let params;
  if (job.init) {
    const ck = loadCheckpoint(job.init);
    checkCheckpointFits(ck, prog.params, job.init, cfg);
    params = new Map([...ck.params].map(([k, v]) => [k, { shape: v.shape, data: asDtype(v.data, DTYPE) }]));
  } else params = initParams(prog.params, cfg.model.layers, cfg.train.seed, DTYPE, cfg.model.init);

  let choice = chooseDevice(job.device ?? cfg.train.device);
  const created = await createSession(prog.graph.encode(), choice, { threads: job.threads, fallback: (job.device ?? cfg.train.device) === 'auto' });
  choice = created.choice;
  const session = created.session;
  const predictSession = validStarts.length
    ? (await createSession(buildForecastPredictProgram({ spec, N: validStarts.length, T: W }).graph.encode(), choice, { threads: job.threads })).session
    : undefined;

  const K = cfg.train.stepsPerRun;
  const totalSteps = cfg.train.steps ?? cfg.train.epochs! * perEpoch;
  const epochs = cfg.train.steps !== undefined ? Math.ceil(totalSteps / perEpoch) : cfg.train.epochs!;
  const runDir = job.runDir;
  const metricsFiles = [job.metrics, runDir && path.join(runDir, RUN_FILES.metrics)].filter((f): f is string => !!f);
  const ckFiles = [job.save, runDir && path.join(runDir, RUN_FILES.checkpoint)].filter((f): f is string => !!f);
  const record: RunRecord | undefined = runDir
    ? { id: path.basename(runDir), model: cfg.name, modelFile: cfg.file, modelLine: cfg.line, task: cfg.task, status: 'running', started: new Date(t0).toISOString(), device: choice.device, deviceReason: choice.reason, pid: process.pid }
    : undefined;
  if (runDir && record) {
    fs.mkdirSync(runDir, { recursive: true });
    fs.copyFileSync(cfg.file, path.join(runDir, RUN_FILES.model));
    writeRunRecord(runDir, record);
  }
  const metric = (o: Record<string, unknown>) => metricsFiles.forEach((f) => appendLine(f, JSON.stringify(o)));
  const numParams = prog.params.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
  hooks.emit({ type: 'started', model: cfg.name, task: cfg.task, device: choice.device, deviceReason: choice.reason, parameters: numParams, totalSteps, stepsPerEpoch: perEpoch, epochs, tokensPerStep: B * W, stepsPerRun: K, trainTokens: s.nTrain, validTokens: series.length - s.nTrain });

  const feeds: Record<string, ort.Tensor> = {};
  for (const p of prog.params) feeds[`p.${p.name}`] = new ort.Tensor(DTYPE, params.get(p.name)!.data as Float32Array, p.shape);
  for (const st of prog.state) feeds[`s.${st.name}`] = new ort.Tensor(DTYPE, new Float32Array(st.shape.reduce((a, b) => a * b, 1)), st.shape);
  const current = () => new Map(prog.params.map((p) => [p.name, { shape: p.shape, data: feeds[`p.${p.name}`].data as Float32Array }]));
  const meta = () => ({ 'gatelab.model': cfg.name, 'gatelab.task': 'forecast', 'gatelab.transform': s.transform, 'gatelab.mean': String(s.mean), 'gatelab.std': String(s.std), 'gatelab.window': String(W), 'gatelab.horizon': String(N), 'gatelab.column': cfg.data.column! });
  let savedFile: string | undefined;
  const save = () => {
    if (!ckFiles.length) return;
    const ck: Checkpoint = { params: current(), metadata: meta() };
    for (const f of ckFiles) saveCheckpoint(f, ck);
    savedFile = ckFiles[0];
    hooks.emit({ type: 'checkpoint', step, file: savedFile });
  };
  const evaluate = async (): Promise<ForecastScores | undefined> => {
    if (!predictSession) return undefined;
    const { x } = windows(s, W, N, validStarts);
    const pf: Record<string, ort.Tensor> = { x: new ort.Tensor(DTYPE, x, [W, validStarts.length, 1]) };
    for (const p of prog.params) pf[`p.${p.name}`] = feeds[`p.${p.name}`];
    const r = await predictSession.run(pf);
    return score(s, r.pred.data as Float32Array, validStarts, N, cfg.data.season);
  };

  // gate views: the first validation window (or the first training window)
  const probeStart = validStarts[0] ?? trainStarts[0];
  const pw = windows(s, W, N, [probeStart]);
  const probe = new SeqGateProbe({ type: 'dense', features: 1 }, spec.hidden, spec.gates, pw.x, Array.from({ length: W }, (_, w) => String(+series[probeStart - W + w].toPrecision(4))), spec.bidirectional);
  const gates = gateRecorder((m) => hooks.emit(m), runDir, job.gatesEveryMs ?? 3000);
  const rng = new Rng(cfg.train.seed);
  const dropRng = new Rng(cfg.train.seed ^ 0x5eed);
  const dropShapes = spec.dropout ? forecastDropShapes(spec, B, W) : [];
  let step = 0;
  let trainMs = 0;
  let epoch = 0;
  let lastTrain = NaN;
  let scores: ForecastScores | undefined;
  let best: { mse: number; epoch: number; params: Map<string, { shape: number[]; data: Float32Array }>; scores: ForecastScores } | undefined;
  let waited = 0;
  let stopped = false;
  let stoppedEarly = false;
  try {
    outer: for (epoch = 1; epoch <= epochs; epoch++) {
      const order = [...trainStarts];
      rng.shuffle(order);
      const nb = Math.min(perEpoch, totalSteps - step);
      const losses: number[] = [];
      for (let i = 0; i < nb; i += K) {
        if (hooks.shouldStop()) {
          stopped = true;
          break outer;
        }
        const k = Math.min(K, nb - i);
        const x = new Float32Array(k * W * B);
        const y = new Float32Array(k * B * N);
        for (let j = 0; j < k; j++) {
          const w = windows(s, W, N, order.slice((i + j) * B, (i + j + 1) * B));
          x.set(w.x, j * W * B);
          y.set(w.y, j * B * N);
        }
        feeds.x = new ort.Tensor(DTYPE, x, [k, W, B, 1]);
        feeds.y = new ort.Tensor(DTYPE, y, [k, B, N]);
        Object.assign(feeds, dropoutMasks(dropShapes, k, spec.dropout ?? 0, dropRng));
        const lrs = Float32Array.from({ length: k }, (_, j) => learningRateAt(step + j, totalSteps, cfg.train.optimizer.learningRate, cfg.train.schedule));
        feeds.lr = new ort.Tensor(DTYPE, lrs, [k]);
        const tr = Date.now();
        const r = await session.run(feeds);
        trainMs += Date.now() - tr;
        const ls = Array.from(r.loss.data as Float32Array);
        const gn = Array.from(r.gnorm.data as Float32Array);
        const bad = ls.findIndex((l) => !Number.isFinite(l));
        if (bad >= 0) {
          save();
          throw new TrainingFailure(`the loss became ${ls[bad]} at step ${step + bad + 1} (epoch ${epoch}); training stopped — lower train.optimizer.learningRate`, step + bad + 1, savedFile);
        }
        for (const p of prog.params) feeds[`p.${p.name}`] = r[`p_out.${p.name}`];
        for (const st of prog.state) feeds[`s.${st.name}`] = r[`s_out.${st.name}`];
        ls.forEach((loss, j) => {
          step++;
          losses.push(loss);
          metric({ step, epoch, loss, gradNorm: gn[j], lr: lrs[j], time: (Date.now() - t0) / 1000 });
        });
        hooks.emit({ type: 'progress', step, epoch, losses: ls, gradNorms: gn, learningRate: lrs[k - 1], tokensPerSecond: (step * B * W) / Math.max(trainMs / 1000, 1e-9), elapsedMs: Date.now() - t0, remainingMs: ((totalSteps - step) * (Date.now() - t0)) / step });
      }
      lastTrain = losses.reduce((a, b) => a + b, 0) / Math.max(1, losses.length);
      scores = await evaluate();
      await gates(probe, feeds, step, epoch === 1);
      hooks.emit({ type: 'epoch', epoch, step, trainLoss: lastTrain, ...(scores ? { validLoss: scores.mse, rmse: scores.rmse, mae: scores.mae, baselineRmse: scores.baselineRmse } : {}), elapsedMs: Date.now() - t0 });
      metric({ epoch, step, trainLoss: lastTrain, ...(scores ? { validLoss: scores.mse, rmse: scores.rmse, mae: scores.mae, baselineRmse: scores.baselineRmse, seasonalBaselineRmse: scores.seasonalBaselineRmse } : {}) });
      if (scores) {
        const es = cfg.train.earlyStopping;
        if (!best || scores.mse < best.mse - (es?.minDelta ?? 0)) {
          best = { mse: scores.mse, epoch, params: new Map([...current()].map(([k2, v]) => [k2, { shape: v.shape, data: Float32Array.from(v.data) }])), scores };
          waited = 0;
        } else if (es && ++waited >= es.patience) {
          stoppedEarly = true;
          log('info', `early stopping after epoch ${epoch}; restoring the weights of epoch ${best.epoch}`);
          break;
        }
      }
      if (step >= totalSteps) break;
    }
    if (stoppedEarly && best) {
      for (const p of prog.params) feeds[`p.${p.name}`] = new ort.Tensor(DTYPE, best.params.get(p.name)!.data, p.shape);
      scores = best.scores;
    }
    save();
    if (step > 0) await gates(probe, feeds, step, true);
  } catch (e) {
    if (record && runDir) {
      record.status = 'failed';
      record.error = (e as Error).message;
      record.finished = new Date().toISOString();
      writeRunRecord(runDir, record);
    }
    throw e;
  } finally {
    await session.release().catch(() => undefined);
    await predictSession?.release().catch(() => undefined);
    await probe.release();
  }
  const summary: Summary = {
    model: cfg.name,
    device: choice.device,
    steps: step,
    epochs: Math.min(epoch, epochs),
    trainLoss: lastTrain,
    validLoss: scores ? scores.mse : null,
    ...(scores ? { rmse: scores.rmse, mae: scores.mae, baselineRmse: scores.baselineRmse } : {}),
    ...(scores?.seasonalBaselineRmse !== undefined ? { seasonalBaselineRmse: scores.seasonalBaselineRmse } : {}),
    tokensPerSecond: (step * B * W) / Math.max(trainMs / 1000, 1e-9),
    elapsedSeconds: (Date.now() - t0) / 1000,
    ...(savedFile ? { checkpoint: savedFile } : {}),
    ...(stopped ? { stopped: true } : {}),
    ...(stoppedEarly && best ? { stoppedEarly: true, bestEpoch: best.epoch } : {}),
  };
  if (record && runDir) {
    record.status = stopped ? 'stopped' : 'done';
    record.finished = new Date().toISOString();
    record.summary = summary;
    record.checkpoint = savedFile;
    writeRunRecord(runDir, record);
  }
  return summary;
}

/**
 * Forecasts after the end of a CSV series with a trained checkpoint: the next `steps` values
 * (autoregressive when steps exceed the horizon: each forecast is appended to the inputs).
 */
export async function predictForecast(o: { cfg: ModelConfig; init: string; input: string; steps?: number }): Promise<{ forecast: number[]; last: number }> {
  const { cfg } = o;
  const ck = loadCheckpoint(o.init);
  const spec = forecastSpecOf(cfg);
  const { forecastParams } = await import('./forecast');
  checkCheckpointFits(ck, forecastParams(spec), o.init, cfg);
  const meta = ck.metadata;
  const mean = Number(meta['gatelab.mean']);
  const std = Number(meta['gatelab.std']);
  const transform = (meta['gatelab.transform'] ?? cfg.data.transform) as ModelConfig['data']['transform'];
  if (!Number.isFinite(mean) || !Number.isFinite(std))
    throw new UserError('the checkpoint has no normalisation (gatelab.mean, gatelab.std)', { file: o.init, key: 'gatelab.mean' }, 'use a checkpoint saved by a forecast run');
  const series = Array.from(loadSeries(o.input, cfg.data.column!, { key: '--input' }));
  const W = cfg.data.window;
  const N = cfg.data.horizon;
  const need = W + (transform === 'difference' || transform === 'log-difference' ? 1 : 0);
  if (series.length < need) throw new UserError(`--input has ${series.length} values; the model needs the last ${need}`, { key: '--input' });
  const steps = o.steps ?? N;
  const session = await ort.InferenceSession.create(buildForecastPredictProgram({ spec, N: 1, T: W }).graph.encode(), { logSeverityLevel: 3 });
  const feeds: Record<string, ort.Tensor> = {};
  for (const p of forecastParams(spec)) feeds[`p.${p.name}`] = new ort.Tensor(DTYPE, asDtype(ck.params.get(p.name)!.data, DTYPE) as Float32Array, p.shape);
  const out: number[] = [];
  const all = [...series];
  while (out.length < steps) {
    const s: SeriesSplit = { ...splitLike(Float64Array.from(all), transform), mean, std, nTrain: all.length };
    const t = all.length;
    const x = new Float32Array(W);
    for (let w = 0; w < W; w++) x[w] = (s.u[t - W + w] - mean) / std;
    const r = await session.run({ ...feeds, x: new ort.Tensor(DTYPE, x, [W, 1, 1]) });
    const next = inverse(s, r.pred.data as Float32Array, t);
    for (const v of next) {
      if (out.length < steps) {
        out.push(v);
        all.push(v);
      }
    }
  }
  await session.release();
  return { forecast: out, last: series[series.length - 1] };
}

function splitLike(series: Float64Array, transform: ModelConfig['data']['transform']): Pick<SeriesSplit, 'series' | 'u' | 'transform' | 'first'> {
  const lg = transform === 'log' || transform === 'log-difference' ? series.map(Math.log) : series;
  const diff = transform === 'difference' || transform === 'log-difference';
  return { series, u: diff ? lg.map((x, i) => (i === 0 ? 0 : x - lg[i - 1])) : lg, transform, first: diff ? 1 : 0 };
}
