// The copy task (Hochreiter & Schmidhuber 1997; the formulation of Arjovsky et al. 2016): S symbols
// from an alphabet of 8 (tokens 1–8), then D blanks (token 0) whose last is the delimiter (token 9),
// then S more blanks; the targets are blanks for S + D steps and then the S symbols. The loss is
// the cross-entropy over every step, so a memoryless model that outputs blanks and then guesses
// scores S·ln 8 / (D + 2S) — the baseline beside which the summary puts the validation loss. The
// model is the language model's network (one-hot input, LSTM, Linear), trained on fresh sequences
// each step; the validation set is a fixed 1000 sequences; an epoch is 100 steps.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelConfig } from '../config/types';
import { Graph } from '../onnx/builder';
import { initParams } from '../nn/init';
import { lmForward, lmParams, LmSpec } from '../nn/lm';
import { hasCellState } from '../nn/gru';
import { Rng } from '../util/rng';
import { appendLine } from '../util/fsx';
import { chooseDevice, createSession } from '../runtime/device';
import { saveCheckpoint } from './checkpoint';
import { cellOf } from './lmsetup';
import { buildTrainProgram } from './program';
import { learningRateAt } from './schedule';
import { RUN_FILES, RunRecord, writeRunRecord } from './runrecord';
import type { Summary } from '../../shared/protocol';
import type { TrainHooks, TrainRequest } from './trainer';
import { TrainingFailure } from './trainer';

const DTYPE = 'float32' as const;
const STEPS_PER_EPOCH = 100;
export const COPY_VOCAB = 10; // 0 blank, 1–8 symbols, 9 delimiter

/** B copy sequences, time-major [T, B] with T = D + 2S. */
export function copyBatch(rng: Rng, S: number, D: number, B: number): { x: Int32Array; y: Int32Array; T: number } {
  const T = D + 2 * S;
  const x = new Int32Array(T * B);
  const y = new Int32Array(T * B);
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      const sym = rng.int(1, 8);
      x[s * B + b] = sym;
      y[(S + D + s) * B + b] = sym;
    }
    x[(S + D - 1) * B + b] = 9;
  }
  return { x, y, T };
}

export async function runCopyTraining(cfg: ModelConfig, job: TrainRequest, hooks: TrainHooks): Promise<Summary> {
  const t0 = Date.now();
  const S = cfg.data.copyLength;
  const D = cfg.data.sequenceLength;
  const T = D + 2 * S;
  const B = cfg.train.batchSize;
  const lm: LmSpec = { vocab: COPY_VOCAB, embedding: cfg.model.embedding, hidden: cfg.model.layers.map((l) => l.hidden), dtype: DTYPE, gates: cfg.model.layers.map(cellOf) };
  const prog = buildTrainProgram({ lm, B, T, optimizer: cfg.train.optimizer, clipNorm: cfg.train.clipNorm });
  const params = initParams(prog.params, cfg.model.layers, cfg.train.seed, DTYPE, cfg.model.init);
  let choice = chooseDevice(job.device ?? cfg.train.device);
  const created = await createSession(prog.graph.encode(), choice, { threads: job.threads, fallback: (job.device ?? cfg.train.device) === 'auto' });
  choice = created.choice;
  const session = created.session;
  // validation: loss and the accuracy on the copied symbols
  const NV = 1000;
  const vg = new Graph('gatelab_copy_eval');
  const pIn = lmParams(lm).map((p) => vg.input(`p.${p.name}`, DTYPE, p.shape));
  const vx = vg.input('x', 'int64', [T, NV]);
  const zeros = (H: number) => vg.const(new Array(NV * H).fill(0), DTYPE, [NV, H]);
  const fwd = lmForward(vg, lm, Object.fromEntries(lmParams(lm).map((p, i) => [p.name, pIn[i]])), vx, lm.hidden.map((H, k) => (hasCellState(lm, k) ? { h0: zeros(H), c0: zeros(H) } : { h0: zeros(H) })));
  vg.output(fwd.logits, 'logits');
  const validSession = (await createSession(vg.encode(), choice, { threads: job.threads })).session;
  const valid = copyBatch(new Rng(cfg.train.seed + 7_000_001), S, D, NV);
  const baseline = (S * Math.log(8)) / T;

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
  hooks.emit({ type: 'started', model: cfg.name, task: cfg.task, device: choice.device, parameters: numParams, vocabulary: COPY_VOCAB, totalSteps, stepsPerEpoch: STEPS_PER_EPOCH, epochs, tokensPerStep: B * T, stepsPerRun: K, trainTokens: 0, validTokens: NV * T });
  const feeds: Record<string, ort.Tensor> = {};
  for (const p of prog.params) feeds[`p.${p.name}`] = new ort.Tensor(DTYPE, params.get(p.name)!.data as Float32Array, p.shape);
  for (const st of prog.state) feeds[`s.${st.name}`] = new ort.Tensor(DTYPE, new Float32Array(st.shape.reduce((a, b) => a * b, 1)), st.shape);
  lm.hidden.forEach((H, k) => {
    feeds[`h.l${k}`] = new ort.Tensor(DTYPE, new Float32Array(B * H), [B, H]);
    if (hasCellState(lm, k)) feeds[`c.l${k}`] = new ort.Tensor(DTYPE, new Float32Array(B * H), [B, H]);
  });
  const evaluate = async () => {
    const pf: Record<string, ort.Tensor> = { x: new ort.Tensor('int64', BigInt64Array.from(valid.x, (v) => BigInt(v)), [T, NV]) };
    for (const p of prog.params) pf[`p.${p.name}`] = feeds[`p.${p.name}`];
    const logits = (await validSession.run(pf)).logits.data as Float32Array;
    let nll = 0;
    let correct = 0;
    for (let n = 0; n < T * NV; n++) {
      const row = logits.subarray(n * COPY_VOCAB, (n + 1) * COPY_VOCAB);
      let m = -Infinity;
      let arg = 0;
      for (let v = 0; v < COPY_VOCAB; v++) if (row[v] > m) [m, arg] = [row[v], v];
      let z = 0;
      for (let v = 0; v < COPY_VOCAB; v++) z += Math.exp(row[v] - m);
      nll += m + Math.log(z) - row[valid.y[n]];
      if (Math.floor(n / NV) >= S + D && arg === valid.y[n]) correct++;
    }
    return { loss: nll / (T * NV), accuracy: correct / (S * NV) };
  };
  const rng = new Rng(cfg.train.seed);
  let step = 0;
  let epoch = 0;
  let trainMs = 0;
  let lastTrain = NaN;
  let scores = { loss: NaN, accuracy: NaN };
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
        const x = new BigInt64Array(k * T * B);
        const y = new BigInt64Array(k * T * B);
        for (let j = 0; j < k; j++) {
          const b = copyBatch(rng, S, D, B);
          for (let n = 0; n < T * B; n++) {
            x[j * T * B + n] = BigInt(b.x[n]);
            y[j * T * B + n] = BigInt(b.y[n]);
          }
        }
        feeds.x = new ort.Tensor('int64', x, [k, T, B]);
        feeds.y = new ort.Tensor('int64', y, [k, T, B]);
        feeds.keep = new ort.Tensor(DTYPE, new Float32Array(k), [k]); // every sequence starts afresh
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
      scores = await evaluate();
      hooks.emit({ type: 'epoch', epoch, step, trainLoss: lastTrain, validLoss: scores.loss, accuracy: scores.accuracy, elapsedMs: Date.now() - t0 });
      metric({ epoch, step, trainLoss: lastTrain, validLoss: scores.loss, accuracy: scores.accuracy, baselineLoss: baseline });
      if (step >= totalSteps) break;
    }
    if (ckFiles.length) {
      const ck = { params: new Map(prog.params.map((p) => [p.name, { shape: p.shape, data: feeds[`p.${p.name}`].data as Float32Array }])), metadata: { 'gatelab.model': cfg.name, 'gatelab.task': 'copy' } };
      for (const f of ckFiles) saveCheckpoint(f, ck);
      savedFile = ckFiles[0];
    }
  } finally {
    await session.release().catch(() => undefined);
    await validSession.release().catch(() => undefined);
  }
  const summary: Summary = {
    model: cfg.name,
    device: choice.device,
    steps: step,
    epochs: Math.min(epoch, epochs),
    trainLoss: lastTrain,
    validLoss: scores.loss,
    accuracy: scores.accuracy,
    baselineLoss: baseline,
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
