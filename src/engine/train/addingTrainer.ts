// The adding problem (Hochreiter & Schmidhuber 1997, as in Le et al. 2015): a sequence of T steps
// with two inputs per step, a value uniform in [0, 1] and a marker; exactly two steps are marked,
// one in each half; the target is the sum of the two marked values. A model that cannot remember
// answers the mean, 1.0, with a mean squared error of about 0.167. Training draws fresh sequences
// every step (seeded); the validation set is a fixed 1000 sequences. An epoch is 100 steps.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelConfig } from '../config/types';
import { initParams } from '../nn/init';
import { Rng } from '../util/rng';
import { appendLine } from '../util/fsx';
import { chooseDevice, createSession } from '../runtime/device';
import { saveCheckpoint } from './checkpoint';
import { cellOf } from './lmsetup';
import { buildForecastPredictProgram, buildForecastTrainProgram, ForecastSpec } from './forecast';
import { learningRateAt } from './schedule';
import { RUN_FILES, RunRecord, writeRunRecord } from './runrecord';
import type { Summary } from '../../shared/protocol';
import type { TrainHooks, TrainRequest } from './trainer';
import { TrainingFailure } from './trainer';
import { gateRecorder, SeqGateProbe } from './probe';

const DTYPE = 'float32' as const;
const STEPS_PER_EPOCH = 100;

/** B sequences: x [T, B, 2] (value, marker), y [B, 1]. */
export function addingBatch(rng: Rng, T: number, B: number): { x: Float32Array; y: Float32Array } {
  const x = new Float32Array(T * B * 2);
  const y = new Float32Array(B);
  const half = Math.floor(T / 2);
  for (let b = 0; b < B; b++) {
    const m1 = rng.int(0, half - 1);
    const m2 = rng.int(half, T - 1);
    for (let t = 0; t < T; t++) {
      const v = rng.next();
      x[(t * B + b) * 2] = v;
      if (t === m1 || t === m2) {
        x[(t * B + b) * 2 + 1] = 1;
        y[b] += v;
      }
    }
  }
  return { x, y };
}

export async function runAddingTraining(cfg: ModelConfig, job: TrainRequest, hooks: TrainHooks): Promise<Summary> {
  const t0 = Date.now();
  const T = cfg.data.sequenceLength;
  const B = cfg.train.batchSize;
  const spec: ForecastSpec = { hidden: cfg.model.layers.map((l) => l.hidden), horizon: 1, inputs: 2, dtype: DTYPE, gates: cfg.model.layers.map(cellOf) };
  const prog = buildForecastTrainProgram({ spec, B, T, optimizer: cfg.train.optimizer, clipNorm: cfg.train.clipNorm });
  const params = initParams(prog.params, cfg.model.layers, cfg.train.seed, DTYPE, cfg.model.init);
  let choice = chooseDevice(job.device ?? cfg.train.device);
  const created = await createSession(prog.graph.encode(), choice, { threads: job.threads, fallback: (job.device ?? cfg.train.device) === 'auto' });
  choice = created.choice;
  const session = created.session;
  const NV = 1000;
  const validSession = (await createSession(buildForecastPredictProgram({ spec, N: NV, T }).graph.encode(), choice, { threads: job.threads })).session;
  const valid = addingBatch(new Rng(cfg.train.seed + 1_000_003), T, NV);
  const K = cfg.train.stepsPerRun;
  const totalSteps = cfg.train.steps ?? cfg.train.epochs! * STEPS_PER_EPOCH;
  const epochs = Math.ceil(totalSteps / STEPS_PER_EPOCH);
  const runDir = job.runDir;
  const metricsFiles = [job.metrics, runDir && path.join(runDir, RUN_FILES.metrics)].filter((f): f is string => !!f);
  const ckFiles = [job.save, runDir && path.join(runDir, RUN_FILES.checkpoint)].filter((f): f is string => !!f);
  const record: RunRecord | undefined = runDir
    ? { id: path.basename(runDir), model: cfg.name, modelFile: cfg.file, modelLine: cfg.line, task: cfg.task, status: 'running', started: new Date(t0).toISOString(), device: choice.device, pid: process.pid }
    : undefined;
  if (runDir && record) {
    fs.mkdirSync(runDir, { recursive: true });
    fs.copyFileSync(cfg.file, path.join(runDir, RUN_FILES.model));
    writeRunRecord(runDir, record);
  }
  const metric = (o: Record<string, unknown>) => metricsFiles.forEach((f) => appendLine(f, JSON.stringify(o)));
  const numParams = prog.params.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
  hooks.emit({ type: 'started', model: cfg.name, task: cfg.task, device: choice.device, parameters: numParams, totalSteps, stepsPerEpoch: STEPS_PER_EPOCH, epochs, tokensPerStep: B * T, stepsPerRun: K, trainTokens: 0, validTokens: NV * T });
  const feeds: Record<string, ort.Tensor> = {};
  for (const p of prog.params) feeds[`p.${p.name}`] = new ort.Tensor(DTYPE, params.get(p.name)!.data as Float32Array, p.shape);
  for (const st of prog.state) feeds[`s.${st.name}`] = new ort.Tensor(DTYPE, new Float32Array(st.shape.reduce((a, b) => a * b, 1)), st.shape);
  const rng = new Rng(cfg.train.seed);
  const evaluate = async () => {
    const pf: Record<string, ort.Tensor> = { x: new ort.Tensor(DTYPE, valid.x, [T, NV, 2]) };
    for (const p of prog.params) pf[`p.${p.name}`] = feeds[`p.${p.name}`];
    const pred = (await validSession.run(pf)).pred.data as Float32Array;
    let se = 0;
    for (let i = 0; i < NV; i++) se += (pred[i] - valid.y[i]) ** 2;
    return se / NV;
  };
  // gate views: the first validation sequence; marked steps are labelled ●
  const px = new Float32Array(T * 2);
  const labels: string[] = [];
  for (let t = 0; t < T; t++) {
    px[t * 2] = valid.x[(t * NV) * 2];
    px[t * 2 + 1] = valid.x[(t * NV) * 2 + 1];
    labels.push(px[t * 2 + 1] === 1 ? `●${px[t * 2].toFixed(2)}` : px[t * 2].toFixed(2));
  }
  const probe = new SeqGateProbe({ type: 'dense', features: 2 }, spec.hidden, spec.gates, px, labels);
  const gates = gateRecorder((m) => hooks.emit(m), runDir, job.gatesEveryMs ?? 3000);
  let baseline = 0;
  for (let i = 0; i < NV; i++) baseline += (1 - valid.y[i]) ** 2;
  baseline /= NV;
  let step = 0;
  let epoch = 0;
  let trainMs = 0;
  let lastTrain = NaN;
  let validMse = NaN;
  let stopped = false;
  let savedFile: string | undefined;
  try {
    outer: for (epoch = 1; epoch <= epochs; epoch++) {
      const losses: number[] = [];
      const nb = Math.min(STEPS_PER_EPOCH, totalSteps - step);
      for (let i = 0; i < nb; i += K) {
        if (hooks.shouldStop()) {
          stopped = true;
          break outer;
        }
        const k = Math.min(K, nb - i);
        const x = new Float32Array(k * T * B * 2);
        const y = new Float32Array(k * B);
        for (let j = 0; j < k; j++) {
          const b = addingBatch(rng, T, B);
          x.set(b.x, j * T * B * 2);
          y.set(b.y, j * B);
        }
        feeds.x = new ort.Tensor(DTYPE, x, [k, T, B, 2]);
        feeds.y = new ort.Tensor(DTYPE, y, [k, B, 1]);
        const lrs = Float32Array.from({ length: k }, (_, j) => learningRateAt(step + j, totalSteps, cfg.train.optimizer.learningRate, cfg.train.schedule));
        feeds.lr = new ort.Tensor(DTYPE, lrs, [k]);
        const tr = Date.now();
        const r = await session.run(feeds);
        trainMs += Date.now() - tr;
        const ls = Array.from(r.loss.data as Float32Array);
        const gn = Array.from(r.gnorm.data as Float32Array);
        const bad = ls.findIndex((l) => !Number.isFinite(l));
        if (bad >= 0) throw new TrainingFailure(`the loss became ${ls[bad]} at step ${step + bad + 1}; training stopped — lower train.optimizer.learningRate`, step + bad + 1, savedFile);
        for (const p of prog.params) feeds[`p.${p.name}`] = r[`p_out.${p.name}`];
        for (const st of prog.state) feeds[`s.${st.name}`] = r[`s_out.${st.name}`];
        ls.forEach((loss, j) => {
          step++;
          losses.push(loss);
          metric({ step, epoch, loss, gradNorm: gn[j], lr: lrs[j], time: (Date.now() - t0) / 1000 });
        });
        hooks.emit({ type: 'progress', step, epoch, losses: ls, gradNorms: gn, learningRate: lrs[k - 1], tokensPerSecond: (step * B * T) / Math.max(trainMs / 1000, 1e-9), elapsedMs: Date.now() - t0, remainingMs: ((totalSteps - step) * (Date.now() - t0)) / step });
      }
      lastTrain = losses.reduce((a, b) => a + b, 0) / Math.max(1, losses.length);
      validMse = await evaluate();
      await gates(probe, feeds, step, epoch === 1);
      hooks.emit({ type: 'epoch', epoch, step, trainLoss: lastTrain, validLoss: validMse, elapsedMs: Date.now() - t0 });
      metric({ epoch, step, trainLoss: lastTrain, validLoss: validMse, baselineMse: baseline });
      if (step >= totalSteps) break;
    }
    if (step > 0) await gates(probe, feeds, step, true);
    if (ckFiles.length) {
      const ck = { params: new Map(prog.params.map((p) => [p.name, { shape: p.shape, data: feeds[`p.${p.name}`].data as Float32Array }])), metadata: { 'gatelab.model': cfg.name, 'gatelab.task': 'adding' } };
      for (const f of ckFiles) saveCheckpoint(f, ck);
      savedFile = ckFiles[0];
    }
  } finally {
    await session.release().catch(() => undefined);
    await validSession.release().catch(() => undefined);
    await probe.release();
  }
  const summary: Summary = {
    model: cfg.name,
    device: choice.device,
    steps: step,
    epochs: Math.min(epoch, epochs),
    trainLoss: lastTrain,
    validLoss: validMse,
    mse: validMse,
    baselineMse: baseline,
    tokensPerSecond: (step * B * T) / Math.max(trainMs / 1000, 1e-9),
    elapsedSeconds: (Date.now() - t0) / 1000,
    ...(savedFile ? { checkpoint: savedFile } : {}),
    ...(stopped ? { stopped: true } : {}),
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
