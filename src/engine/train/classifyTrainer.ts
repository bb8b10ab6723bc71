// The trainer of `task: classification`: labelled sentences (TSV), a vocabulary from the training
// examples only, a seeded random (or tail) validation split, minibatches of B sentences padded to
// T = data.sequenceLength (longer ones are cut), and after each epoch the validation accuracy and
// confusion matrix. Messages, metrics, checkpoints and the run record as the other trainers.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelConfig } from '../config/types';
import { whereOf } from '../config/load';
import { UserError } from '../errors';
import { Example, loadLabelled, vocabOf } from '../data/labelled';
import { Vocab } from '../data/text';
import { initParams } from '../nn/init';
import { Rng } from '../util/rng';
import { appendLine } from '../util/fsx';
import { chooseDevice, createSession } from '../runtime/device';
import { Checkpoint, loadCheckpoint, saveCheckpoint } from './checkpoint';
import { asDtype, cellOf, checkCheckpointFits, textOptionsOf } from './lmsetup';
import { buildClassifyPredictProgram, buildClassifyTrainProgram, classifyDropShapes, ClassifySpec } from './classify';
import { learningRateAt } from './schedule';
import { RUN_FILES, RunRecord, writeRunRecord } from './runrecord';
import type { Summary } from '../../shared/protocol';
import type { TrainHooks, TrainRequest } from './trainer';
import { TrainingFailure } from './trainer';
import { gateRecorder, SeqGateProbe } from './probe';
import { dropoutMasks } from '../nn/dropout';

const DTYPE = 'float32' as const;

export function classifySpecOf(cfg: ModelConfig, vocab: number, classes: number): ClassifySpec {
  return {
    vocab,
    embedding: cfg.model.embedding,
    hidden: cfg.model.layers.map((l) => l.hidden),
    classes,
    pooling: cfg.data.pooling,
    dtype: DTYPE,
    gates: cfg.model.layers.map(cellOf),
    bidirectional: cfg.model.layers.map((l) => l.bidirectional),
    dropout: cfg.model.dropout,
  };
}

/** Padded, time-major batch tensors for examples. */
export function encodeBatch(ex: Example[], vocab: Vocab, classes: string[], T: number, H: number) {
  const B = ex.length;
  const x = new BigInt64Array(T * B);
  const m = new Float32Array(T * B);
  const y = new BigInt64Array(B);
  const last = new BigInt64Array(B * H);
  ex.forEach((e, b) => {
    const n = Math.min(T, e.tokens.length);
    for (let t = 0; t < n; t++) {
      x[t * B + b] = BigInt(vocab.id(e.tokens[t]));
      m[t * B + b] = 1;
    }
    y[b] = BigInt(Math.max(0, classes.indexOf(e.label)));
    last.fill(BigInt(n - 1), b * H, (b + 1) * H);
  });
  return { x, m, y, last };
}

export async function runClassifyTraining(cfg: ModelConfig, job: TrainRequest, hooks: TrainHooks): Promise<Summary> {
  const t0 = Date.now();
  const log = (level: 'debug' | 'info' | 'warn' | 'error', message: string) => hooks.emit({ type: 'log', level, message });
  const opts = textOptionsOf(cfg);
  const { examples, classes } = loadLabelled(cfg.data.sources, opts, { ...whereOf(cfg, 'data.source'), file: cfg.file, key: 'data.source' }, {
    text: cfg.data.textColumn,
    label: cfg.data.labelColumn,
    whereText: whereOf(cfg, 'data.textColumn'),
    whereLabel: whereOf(cfg, 'data.labelColumn'),
  });
  const rng = new Rng(cfg.train.seed);
  const order = examples.map((_, i) => i);
  if (cfg.data.split === 'random') rng.shuffle(order);
  const nValid = Math.round(examples.length * cfg.data.validation);
  const train = order.slice(0, examples.length - nValid).map((i) => examples[i]);
  const valid = order.slice(examples.length - nValid).map((i) => examples[i]);
  const vocab = vocabOf(train, cfg.data.minFrequency);
  const T = cfg.data.sequenceLength;
  const B = Math.min(cfg.train.batchSize, train.length);
  const perEpoch = Math.floor(train.length / B);
  const spec = classifySpecOf(cfg, vocab.size, classes.length);
  const Hl = spec.hidden[spec.hidden.length - 1];
  const prog = buildClassifyTrainProgram({ spec, B, T, optimizer: cfg.train.optimizer, clipNorm: cfg.train.clipNorm });
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
  const predictSession = valid.length ? (await createSession(buildClassifyPredictProgram({ spec, N: valid.length, T }).graph.encode(), choice, { threads: job.threads })).session : undefined;
  const validBatch = valid.length ? encodeBatch(valid, vocab, classes, T, Hl) : undefined;

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
  hooks.emit({ type: 'started', model: cfg.name, task: cfg.task, device: choice.device, deviceReason: choice.reason, parameters: numParams, vocabulary: vocab.size, totalSteps, stepsPerEpoch: perEpoch, epochs, tokensPerStep: B * T, stepsPerRun: K, trainTokens: train.length, validTokens: valid.length });
  log('info', `${train.length} training and ${valid.length} validation examples, ${classes.length} classes (${classes.join(', ')}), vocabulary ${vocab.size}`);

  const feeds: Record<string, ort.Tensor> = {};
  for (const p of prog.params) feeds[`p.${p.name}`] = new ort.Tensor(DTYPE, params.get(p.name)!.data as Float32Array, p.shape);
  for (const st of prog.state) feeds[`s.${st.name}`] = new ort.Tensor(DTYPE, new Float32Array(st.shape.reduce((a, b) => a * b, 1)), st.shape);
  const current = () => new Map(prog.params.map((p) => [p.name, { shape: p.shape, data: feeds[`p.${p.name}`].data as Float32Array }]));
  let savedFile: string | undefined;
  let step = 0;
  const save = () => {
    if (!ckFiles.length) return;
    const ck: Checkpoint = {
      params: current(),
      metadata: { 'gatelab.model': cfg.name, 'gatelab.task': 'classification', 'gatelab.vocab': JSON.stringify(vocab.tokens), 'gatelab.classes': JSON.stringify(classes), 'gatelab.tokens': cfg.data.tokens, 'gatelab.preprocess': cfg.data.preprocess, 'gatelab.step': String(step) },
    };
    for (const f of ckFiles) saveCheckpoint(f, ck);
    savedFile = ckFiles[0];
    hooks.emit({ type: 'checkpoint', step, file: savedFile });
  };
  const evaluate = async () => {
    if (!predictSession || !validBatch) return undefined;
    const pf: Record<string, ort.Tensor> = {
      x: new ort.Tensor('int64', validBatch.x, [T, valid.length]),
      mask: new ort.Tensor(DTYPE, validBatch.m, [T, valid.length]),
      last: new ort.Tensor('int64', validBatch.last, [valid.length, 1, Hl]),
    };
    for (const p of prog.params) pf[`p.${p.name}`] = feeds[`p.${p.name}`];
    const probs = (await predictSession.run(pf)).probs.data as Float32Array;
    const C = classes.length;
    const confusion = classes.map(() => new Array(C).fill(0));
    let correct = 0;
    let nll = 0;
    valid.forEach((e, b) => {
      const row = probs.subarray(b * C, (b + 1) * C);
      let arg = 0;
      for (let c = 1; c < C; c++) if (row[c] > row[arg]) arg = c;
      const truth = classes.indexOf(e.label);
      confusion[truth][arg]++;
      if (arg === truth) correct++;
      nll -= Math.log(Math.max(row[truth], 1e-12));
    });
    return { accuracy: correct / valid.length, loss: nll / valid.length, confusion };
  };

  // gate views: the first validation sentence (or the first training one)
  const probeEx = valid[0] ?? train[0];
  const probeToks = probeEx.tokens.slice(0, T);
  const probe = new SeqGateProbe({ type: 'tokens', vocab: vocab.size, embedding: spec.embedding }, spec.hidden, spec.gates, BigInt64Array.from(probeToks, (t) => BigInt(vocab.id(t))), probeToks, spec.bidirectional);
  const dropRng = new Rng(cfg.train.seed ^ 0x5eed);
  const dropShapes = spec.dropout ? classifyDropShapes(spec, B, T) : [];
  const gates = gateRecorder((m) => hooks.emit(m), runDir, job.gatesEveryMs ?? 3000);
  let epoch = 0;
  let trainMs = 0;
  let lastTrain = NaN;
  let scores: Awaited<ReturnType<typeof evaluate>>;
  let stopped = false;
  try {
    outer: for (epoch = 1; epoch <= epochs; epoch++) {
      const idx = train.map((_, i) => i);
      rng.shuffle(idx);
      const nb = Math.min(perEpoch, totalSteps - step);
      const losses: number[] = [];
      for (let i = 0; i < nb; i += K) {
        if (hooks.shouldStop()) {
          stopped = true;
          break outer;
        }
        const k = Math.min(K, nb - i);
        const x = new BigInt64Array(k * T * B);
        const m = new Float32Array(k * T * B);
        const y = new BigInt64Array(k * B);
        const last = new BigInt64Array(k * B * Hl);
        for (let j = 0; j < k; j++) {
          const e = encodeBatch(idx.slice((i + j) * B, (i + j + 1) * B).map((n) => train[n]), vocab, classes, T, Hl);
          x.set(e.x, j * T * B);
          m.set(e.m, j * T * B);
          y.set(e.y, j * B);
          last.set(e.last, j * B * Hl);
        }
        feeds.x = new ort.Tensor('int64', x, [k, T, B]);
        feeds.mask = new ort.Tensor(DTYPE, m, [k, T, B]);
        feeds.y = new ort.Tensor('int64', y, [k, B]);
        feeds.last = new ort.Tensor('int64', last, [k, B, 1, Hl]);
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
        hooks.emit({ type: 'progress', step, epoch, losses: ls, gradNorms: gn, learningRate: lrs[k - 1], tokensPerSecond: (step * B * T) / Math.max(trainMs / 1000, 1e-9), elapsedMs: Date.now() - t0, remainingMs: ((totalSteps - step) * (Date.now() - t0)) / step });
      }
      lastTrain = losses.reduce((a, b) => a + b, 0) / Math.max(1, losses.length);
      scores = await evaluate();
      await gates(probe, feeds, step, epoch === 1);
      hooks.emit({ type: 'epoch', epoch, step, trainLoss: lastTrain, ...(scores ? { validLoss: scores.loss, accuracy: scores.accuracy } : {}), elapsedMs: Date.now() - t0 });
      metric({ epoch, step, trainLoss: lastTrain, ...(scores ? { validLoss: scores.loss, accuracy: scores.accuracy } : {}) });
      if (step >= totalSteps) break;
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
  if (!scores && valid.length === 0) log('warn', 'no validation examples: set data.validation to measure accuracy');
  const summary: Summary = {
    model: cfg.name,
    device: choice.device,
    steps: step,
    epochs: Math.min(epoch, epochs),
    trainLoss: lastTrain,
    validLoss: scores ? scores.loss : null,
    ...(scores ? { accuracy: scores.accuracy, confusion: scores.confusion, classes } : {}),
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


/** Class probabilities of one or more sentences with a trained checkpoint. */
export async function predictClassification(o: { cfg: ModelConfig; init: string; texts: string[] }): Promise<{ classes: string[]; predictions: { text: string; label: string; probabilities: Record<string, number> }[] }> {
  const { cfg } = o;
  const ck = loadCheckpoint(o.init);
  let vocabTokens: unknown;
  let classes: unknown;
  try {
    vocabTokens = JSON.parse(ck.metadata['gatelab.vocab'] ?? 'null');
    classes = JSON.parse(ck.metadata['gatelab.classes'] ?? 'null');
  } catch {
    vocabTokens = null;
  }
  if (!Array.isArray(vocabTokens) || !Array.isArray(classes))
    throw new UserError('the checkpoint has no vocabulary or classes in its metadata', { file: o.init, key: 'gatelab.classes' }, 'use a checkpoint saved by a classification run');
  const vocab = new Vocab(vocabTokens as string[]);
  const spec = classifySpecOf(cfg, vocab.size, (classes as string[]).length);
  const { classifyParams } = await import('./classify');
  checkCheckpointFits(ck, classifyParams(spec), o.init, cfg);
  const opts = textOptionsOf(cfg);
  const { tokenize } = await import('../data/text');
  const examples = o.texts.map((t) => ({ tokens: tokenize(t, opts), label: (classes as string[])[0] }));
  if (examples.some((e) => e.tokens.length === 0)) throw new UserError('an input has no tokens after preprocessing', { key: '--input' }, 'give a sentence with words');
  const T = cfg.data.sequenceLength;
  const N = examples.length;
  const Hl = spec.hidden[spec.hidden.length - 1];
  const session = await ort.InferenceSession.create(buildClassifyPredictProgram({ spec, N, T }).graph.encode(), { logSeverityLevel: 3 });
  const b = encodeBatch(examples, vocab, classes as string[], T, Hl);
  const feeds: Record<string, ort.Tensor> = {
    x: new ort.Tensor('int64', b.x, [T, N]),
    mask: new ort.Tensor(DTYPE, b.m, [T, N]),
    last: new ort.Tensor('int64', b.last, [N, 1, Hl]),
  };
  for (const p of classifyParams(spec)) feeds[`p.${p.name}`] = new ort.Tensor(DTYPE, asDtype(ck.params.get(p.name)!.data, DTYPE) as Float32Array, p.shape);
  const probs = (await session.run(feeds)).probs.data as Float32Array;
  await session.release();
  const C = (classes as string[]).length;
  return {
    classes: classes as string[],
    predictions: o.texts.map((text, n) => {
      const row = Array.from(probs.subarray(n * C, (n + 1) * C));
      const arg = row.indexOf(Math.max(...row));
      return { text, label: (classes as string[])[arg], probabilities: Object.fromEntries((classes as string[]).map((c, k) => [c, row[k]])) };
    }),
  };
}
