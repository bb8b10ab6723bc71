// The trainer loop of a language model: data → K-step training programs → progress, validation,
// checkpoints, samples. It runs inside the worker process (runtime/worker.ts) and talks to its
// parent only through `emit` (protocol messages) and `shouldStop`.
//
// Per epoch (d2l's train_epoch_ch8): new minibatches (sequential: a random offset and the state
// carried between consecutive batches, reset at the epoch start; random: fresh state per batch),
// run in chunks of K steps that never cross an epoch, then the validation loss of the held-out tail.
// A non-finite loss stops the run naming the step; the last good weights are kept.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadModelFile, whereOf } from '../config/load';
import { ModelConfig } from '../config/types';
import { UserError } from '../errors';
import { loadTextCorpus, Vocab } from '../data/text';
import { Batch, randomEpoch, sequentialEpoch, splitTail, validationBatches, batchesPerEpoch } from '../data/batches';
import { initParams } from '../nn/init';
import { hasCellState } from '../nn/gru';
import { Rng } from '../util/rng';
import { appendLine } from '../util/fsx';
import { chooseDevice, createSession, DeviceChoice } from '../runtime/device';
import { calibrate } from '../runtime/calibrate';
import { buildEvalProgram, buildTrainProgram } from './program';
import { Checkpoint, FloatData, loadCheckpoint, saveCheckpoint } from './checkpoint';
import { checkCheckpointFits, checkSupported, lmMetadata, lmSpecOf, textOptionsOf, vocabFromMetadata, asDtype } from './lmsetup';
import { LmSampler, sampleText, encodePrefix } from './sample';
import { GateProbe } from './probe';
import { learningRateAt } from './schedule';
import { writeFileAtomic } from '../util/fsx';
import { RUN_FILES, RunRecord, writeRunRecord } from './runrecord';
import type { FromWorker, Summary, TrainJob } from '../../shared/protocol';

export interface TrainHooks {
  emit(m: FromWorker): void;
  shouldStop(): boolean;
  /** a probe text the parent asked for since the last call (gate views), once */
  takeProbe?(): string | undefined;
}

export interface TrainRequest extends TrainJob {
  /** write the run record here (run.json, metrics, checkpoint, samples) */
  runDir?: string;
}

/** A failure during training after it started: carries the step and the last good checkpoint. */
export class TrainingFailure extends Error {
  constructor(
    message: string,
    readonly step: number,
    readonly checkpoint?: string,
  ) {
    super(message);
  }
}

type Params = Map<string, { shape: number[]; data: FloatData }>;

const DTYPE = 'float32' as const;

function resolveConfig(job: TrainRequest): ModelConfig {
  const cfg = loadModelFile(job.modelFile, job.modelName);
  if (job.steps !== undefined) {
    cfg.train.steps = job.steps;
    cfg.train.epochs = undefined;
  } else if (job.epochs !== undefined) {
    cfg.train.epochs = job.epochs;
    cfg.train.steps = undefined;
  }
  if (job.device) cfg.train.device = job.device;
  checkSupported(cfg);
  return cfg;
}

export async function runTraining(job: TrainRequest, hooks: TrainHooks): Promise<Summary> {
  const t0 = Date.now();
  const cfg = resolveConfig(job);
  if (cfg.task === 'copy') {
    const { runCopyTraining } = await import('./copyTrainer');
    return runCopyTraining(cfg, job, hooks);
  }
  if (cfg.task === 'adding') {
    const { runAddingTraining } = await import('./addingTrainer');
    return runAddingTraining(cfg, job, hooks);
  }
  if (cfg.task === 'classification') {
    const { runClassifyTraining } = await import('./classifyTrainer');
    return runClassifyTraining(cfg, job, hooks);
  }
  if (cfg.task === 'forecast') {
    const { runForecastTraining } = await import('./forecastTrainer');
    return runForecastTraining(cfg, job, hooks);
  }
  const log = (level: 'debug' | 'info' | 'warn' | 'error', message: string) => hooks.emit({ type: 'log', level, message });

  // ---- weights to start from, and the vocabulary ----
  let init: Checkpoint | undefined;
  let vocab: Vocab | undefined;
  if (job.init) {
    init = loadCheckpoint(job.init);
    vocab = vocabFromMetadata(init.metadata, job.init);
  }
  const opts = textOptionsOf(cfg);
  const corpus = loadTextCorpus(cfg.data.source, opts, { ...whereOf(cfg, 'data.source'), file: cfg.file, key: 'data.source' }, vocab);
  vocab = corpus.vocab;
  const { train: trainIds, valid: validIds } = splitTail(corpus.ids, cfg.data.validation);
  const B = cfg.train.batchSize;
  const T = cfg.data.sequenceLength;
  const partition = cfg.data.partition;
  const perEpoch = batchesPerEpoch(trainIds.length, B, T, partition);
  if (perEpoch < 1) {
    throw new UserError(
      `the training part of the corpus (${trainIds.length} tokens) is too short for one batch of ${B} sequences × ${T} steps`,
      whereOf(cfg, 'train.batchSize'),
      'lower train.batchSize or data.sequenceLength, or use more text',
    );
  }
  const spec = lmSpecOf(cfg, vocab.size, DTYPE);
  const dropout = cfg.model.dropout;
  const trainProg = buildTrainProgram({ lm: spec, B, T, optimizer: cfg.train.optimizer, clipNorm: cfg.train.clipNorm, dropout });

  let params: Params;
  if (init) {
    checkCheckpointFits(init, trainProg.params, job.init!, cfg);
    params = new Map([...init.params].map(([k, v]) => [k, { shape: v.shape, data: asDtype(v.data, DTYPE) }]));
  } else {
    params = initParams(trainProg.params, cfg.model.layers, cfg.train.seed, DTYPE, cfg.model.init);
  }
  const numParams = trainProg.params.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);

  // ---- device and sessions ----
  let choice: DeviceChoice = chooseDevice(cfg.train.device);
  const created = await createSession(trainProg.graph.encode(), choice, { threads: job.threads, fallback: cfg.train.device === 'auto' });
  choice = created.choice;
  let trainSession = created.session;
  if (cfg.train.device === 'auto' && choice.device === 'cuda' && process.env.GATELAB_CALIBRATE !== '0') {
    // small models often train faster on the CPU: time the program on both and keep the faster
    const cal = await calibrate(trainProg.graph.encode(), trainSession, { threads: job.threads, stepsPerRun: cfg.train.stepsPerRun });
    trainSession = cal.session;
    choice = cal.choice;
    if (cal.calibration && choice.device === 'cuda') log('info', `device auto: ${cal.calibration.reason}`);
  }
  if (choice.reason) log('info', `device auto: using the CPU because ${choice.reason}`);
  let evalSession: ort.InferenceSession | undefined;
  let validB = 0;
  let validSet: Batch[] = [];
  if (validIds.length > T + 1) {
    const vb = validationBatches(validIds, B, T);
    validB = vb.B;
    validSet = vb.batches;
    const ev = buildEvalProgram({ lm: spec, B: validB, T });
    evalSession = (await createSession(ev.graph.encode(), choice, { threads: job.threads })).session;
  } else if (cfg.data.validation > 0) {
    log('warn', `the validation part (${validIds.length} tokens) is too short for one sequence of ${T}; no validation loss`);
  }

  // ---- schedule ----
  const K = cfg.train.stepsPerRun;
  const totalSteps = cfg.train.steps ?? cfg.train.epochs! * perEpoch;
  const epochs = cfg.train.steps !== undefined ? Math.ceil(totalSteps / perEpoch) : cfg.train.epochs!;
  const tokensPerStep = B * T;

  // ---- run record ----
  const runDir = job.runDir;
  const metricsFiles = [job.metrics, runDir && path.join(runDir, RUN_FILES.metrics)].filter((f): f is string => !!f);
  const ckFiles = [job.save, runDir && path.join(runDir, RUN_FILES.checkpoint)].filter((f): f is string => !!f);
  for (const f of metricsFiles) fs.mkdirSync(path.dirname(f), { recursive: true });
  const record: RunRecord | undefined = runDir
    ? {
        id: path.basename(runDir),
        model: cfg.name,
        modelFile: cfg.file,
        modelLine: cfg.line,
        task: cfg.task,
        status: 'running',
        started: new Date(t0).toISOString(),
        device: choice.device,
        deviceReason: choice.reason,
        pid: process.pid,
        overrides: { steps: job.steps, epochs: job.epochs, device: job.device, init: job.init },
      }
    : undefined;
  if (runDir && record) {
    fs.mkdirSync(runDir, { recursive: true });
    fs.copyFileSync(cfg.file, path.join(runDir, RUN_FILES.model));
    writeRunRecord(runDir, record);
  }
  const metric = (o: Record<string, unknown>) => {
    const line = JSON.stringify(o);
    for (const f of metricsFiles) appendLine(f, line);
  };

  hooks.emit({
    type: 'started',
    model: cfg.name,
    task: cfg.task,
    device: choice.device,
    deviceReason: choice.reason,
    parameters: numParams,
    vocabulary: vocab.size,
    totalSteps,
    stepsPerEpoch: perEpoch,
    epochs,
    tokensPerStep,
    stepsPerRun: K,
    trainTokens: trainIds.length,
    validTokens: validIds.length,
  });
  log('debug', `model ${cfg.name}: ${numParams.toLocaleString('en-US')} parameters, vocabulary ${vocab.size}, ${trainIds.length} training tokens, ${validIds.length} validation tokens, ${perEpoch} steps per epoch on ${choice.device}`);

  // ---- state fed to the program ----
  const feeds: Record<string, ort.Tensor> = {};
  for (const p of trainProg.params) feeds[`p.${p.name}`] = new ort.Tensor(DTYPE, params.get(p.name)!.data, p.shape);
  for (const s of trainProg.state) feeds[`s.${s.name}`] = new ort.Tensor(DTYPE, new Float32Array(s.shape.reduce((a, b) => a * b, 1)), s.shape);
  const zeroState = () =>
    spec.hidden.forEach((H, k) => {
      feeds[`h.l${k}`] = new ort.Tensor(DTYPE, new Float32Array(B * H), [B, H]);
      if (hasCellState(spec, k)) feeds[`c.l${k}`] = new ort.Tensor(DTYPE, new Float32Array(B * H), [B, H]);
    });
  zeroState();

  const currentParams = (): Params =>
    new Map(trainProg.params.map((p) => [p.name, { shape: p.shape, data: feeds[`p.${p.name}`].data as Float32Array }]));

  let step = 0;
  let lastCheckpointStep = -1;
  let lastCheckpointAt = Date.now();
  let savedFile: string | undefined;
  const save = (reason: string) => {
    if (ckFiles.length === 0 || lastCheckpointStep === step) return;
    const ck: Checkpoint = { params: currentParams(), metadata: lmMetadata(cfg, vocab!, step) };
    for (const f of ckFiles) saveCheckpoint(f, ck);
    lastCheckpointStep = step;
    lastCheckpointAt = Date.now();
    savedFile = ckFiles[0];
    hooks.emit({ type: 'checkpoint', step, file: ckFiles[0] });
    log('debug', `checkpoint (${reason}) at step ${step}: ${ckFiles.join(', ')}`);
  };
  const checkpointEveryMs = (job.checkpointEvery ?? 60) * 1000;

  const rng = new Rng(cfg.train.seed);
  const dropRng = new Rng(cfg.train.seed ^ 0x5eed);
  const lr = cfg.train.optimizer.learningRate;
  const stepLosses: number[] = [];
  let trainMs = 0;
  let lastProgress = 0;
  let pendingLosses: number[] = [];
  let pendingNorms: number[] = [];
  const progressEvery = job.progressEveryMs ?? 250;
  let lastEpochTrainLoss = NaN;
  let lastValidLoss: number | null = null;
  let stopped = false;
  let epoch = 0;
  let bestValid = Infinity;
  let bestEpoch = 0;
  let bestStep = 0;
  let best: Params | undefined;
  let waited = 0;
  let stoppedEarly = false;

  // ---- gate views: a probe sequence run through the current weights at a bounded rate ----
  const gatesEveryMs = job.gatesEveryMs ?? 3000;
  const probe = gatesEveryMs > 0 ? new GateProbe(spec, vocab.tokens) : undefined;
  const probeSource = validIds.length >= 40 ? validIds : trainIds;
  let probeIds = Array.from(probeSource.subarray(0, Math.min(120, probeSource.length)));
  if (job.probe) probeIds = encodePrefix(job.probe, vocab, opts).slice(0, 400);
  let lastGates = 0;
  const gates = async (force = false) => {
    if (!probe) return;
    const asked = hooks.takeProbe?.();
    if (asked !== undefined) {
      try {
        probeIds = encodePrefix(asked, vocab!, opts).slice(0, 400);
      } catch (e) {
        log('warn', `probe text: ${(e as Error).message}`);
      }
    }
    if (!force && asked === undefined && Date.now() - lastGates < gatesEveryMs) return;
    const pf: Record<string, ort.Tensor> = {};
    for (const p of trainProg.params) pf[`p.${p.name}`] = feeds[`p.${p.name}`];
    const m = await probe.run(pf, probeIds, step);
    lastGates = Date.now();
    hooks.emit(m);
    if (runDir) {
      writeFileAtomic(path.join(runDir, RUN_FILES.gates), JSON.stringify(m));
      appendLine(
        path.join(runDir, RUN_FILES.gateHistory),
        JSON.stringify({ step, layers: m.layers.map((l) => ({ layer: l.layer, histograms: l.histograms, saturation: l.saturation })) }),
      );
    }
  };

  // ---- samples at intervals (at epoch ends, at most every 20 s) ----
  let sampler: LmSampler | undefined;
  let lastSampleAt = Date.now();
  const samplePrefix = defaultPrefix(corpus.ids, vocab, cfg.data.tokens);
  const sampleLength = cfg.data.tokens === 'char' ? 100 : 30;
  const sampleNow = async (temperature: number): Promise<string | undefined> => {
    try {
      if (sampler) await sampler.setParams(currentParams());
      else sampler = await LmSampler.create(spec, currentParams(), choice, job.threads);
      const text = await sampleText(sampler, vocab!, opts, { prefix: samplePrefix, length: sampleLength, temperature, seed: step });
      lastSampleAt = Date.now();
      hooks.emit({ type: 'sample', step, prefix: samplePrefix, text });
      if (runDir) appendLine(path.join(runDir, RUN_FILES.samples), JSON.stringify({ step, prefix: samplePrefix, temperature, text }));
      return text;
    } catch (e) {
      log('warn', `could not generate a sample: ${(e as Error).message}`);
      return undefined;
    }
  };

  const validate = async (): Promise<number | null> => {
    if (!evalSession) return null;
    const vfeeds: Record<string, ort.Tensor> = {};
    for (const p of trainProg.params) vfeeds[`p.${p.name}`] = feeds[`p.${p.name}`];
    spec.hidden.forEach((H, k) => {
      vfeeds[`h.l${k}`] = new ort.Tensor(DTYPE, new Float32Array(validB * H), [validB, H]);
      if (hasCellState(spec, k)) vfeeds[`c.l${k}`] = new ort.Tensor(DTYPE, new Float32Array(validB * H), [validB, H]);
    });
    let sum = 0;
    for (const b of validSet) {
      vfeeds.x = new ort.Tensor('int64', BigInt64Array.from(b.x, BigInt), [T, validB]);
      vfeeds.y = new ort.Tensor('int64', BigInt64Array.from(b.y, BigInt), [T, validB]);
      const r = await evalSession.run(vfeeds);
      sum += (r.loss.data as Float32Array)[0];
      spec.hidden.forEach((_, k) => {
        vfeeds[`h.l${k}`] = r[`h_out.l${k}`];
        if (hasCellState(spec, k)) vfeeds[`c.l${k}`] = r[`c_out.l${k}`];
      });
    }
    return sum / validSet.length;
  };

  try {
    outer: for (epoch = 1; epoch <= epochs; epoch++) {
      const ep = partition === 'sequential' ? sequentialEpoch(trainIds, B, T, rng) : randomEpoch(trainIds, B, T, rng);
      const batches = ep.batches.slice(0, Math.min(ep.batches.length, totalSteps - step));
      const epochStart = step;
      const carry = ep.contiguous && cfg.train.carryState;
      for (let i = 0; i < batches.length; i += K) {
        if (hooks.shouldStop()) {
          stopped = true;
          break outer;
        }
        const chunk = batches.slice(i, i + K);
        const k = chunk.length;
        const x = new BigInt64Array(k * T * B);
        const y = new BigInt64Array(k * T * B);
        chunk.forEach((b, j) => {
          for (let n = 0; n < T * B; n++) {
            x[j * T * B + n] = BigInt(b.x[n]);
            y[j * T * B + n] = BigInt(b.y[n]);
          }
        });
        const keep = new Float32Array(k).fill(carry ? 1 : 0);
        if (i === 0) keep[0] = 0;
        feeds.x = new ort.Tensor('int64', x, [k, T, B]);
        feeds.y = new ort.Tensor('int64', y, [k, T, B]);
        feeds.keep = new ort.Tensor(DTYPE, keep, [k]);
        const lrs = Float32Array.from({ length: k }, (_, j) => learningRateAt(step + j, totalSteps, lr, cfg.train.schedule));
        feeds.lr = new ort.Tensor(DTYPE, lrs, [k]);
        if (dropout > 0) {
          // inverted dropout (PyTorch): keep with probability 1 − p, scaled by 1/(1 − p)
          const scale = 1 / (1 - dropout);
          spec.hidden.forEach((H, l) => {
            const m = new Float32Array(k * T * B * H);
            for (let n = 0; n < m.length; n++) m[n] = dropRng.next() < dropout ? 0 : scale;
            feeds[`drop.l${l}`] = new ort.Tensor(DTYPE, m, [k, T, B, H]);
          });
        }
        const tRun = Date.now();
        const r = await trainSession.run(feeds);
        trainMs += Date.now() - tRun;
        const losses = Array.from(r.loss.data as Float32Array);
        const norms = Array.from(r.gnorm.data as Float32Array);
        const bad = losses.findIndex((l, j) => !Number.isFinite(l) || !Number.isFinite(norms[j]));
        if (bad >= 0) {
          // the weights before this chunk are the last good ones
          save('last good weights before a non-finite loss');
          const failStep = step + bad + 1;
          const what = Number.isFinite(losses[bad]) ? `the gradient norm became ${norms[bad]}` : `the loss became ${losses[bad]}`;
          metric({ step: failStep, epoch, loss: losses[bad], gradNorm: norms[bad], error: 'non-finite' });
          throw new TrainingFailure(
            `${what} at step ${failStep} (epoch ${epoch}); training stopped` +
              (savedFile ? `; the last good weights (step ${lastCheckpointStep}) are in ${savedFile}` : '') +
              ' — lower train.optimizer.learningRate or set train.clipNorm',
            failStep,
            savedFile,
          );
        }
        for (const p of trainProg.params) feeds[`p.${p.name}`] = r[`p_out.${p.name}`];
        for (const s of trainProg.state) feeds[`s.${s.name}`] = r[`s_out.${s.name}`];
        spec.hidden.forEach((_, l) => {
          feeds[`h.l${l}`] = r[`h_out.l${l}`];
          if (hasCellState(spec, l)) feeds[`c.l${l}`] = r[`c_out.l${l}`];
        });
        const now = Date.now();
        losses.forEach((loss, j) => {
          step++;
          stepLosses.push(loss);
          metric({ step, epoch, loss, gradNorm: norms[j], lr: lrs[j], time: (now - t0) / 1000 });
        });
        pendingLosses.push(...losses);
        pendingNorms.push(...norms);
        if (now - lastProgress >= progressEvery || step === totalSteps) {
          const tps = (step * tokensPerStep) / Math.max(trainMs / 1000, 1e-9);
          hooks.emit({
            type: 'progress',
            step,
            epoch,
            losses: pendingLosses,
            gradNorms: pendingNorms,
            learningRate: lrs[k - 1],
            tokensPerSecond: tps,
            elapsedMs: now - t0,
            remainingMs: ((totalSteps - step) * (now - t0)) / step,
          });
          pendingLosses = [];
          pendingNorms = [];
          lastProgress = now;
        }
        if (checkpointEveryMs > 0 && now - lastCheckpointAt >= checkpointEveryMs) save('periodic');
        await gates(step === chunk.length);
      }
      const epochLosses = stepLosses.slice(epochStart);
      lastEpochTrainLoss = epochLosses.reduce((a, b) => a + b, 0) / epochLosses.length;
      lastValidLoss = await validate();
      const em = {
        type: 'epoch' as const,
        epoch,
        step,
        trainLoss: lastEpochTrainLoss,
        trainPerplexity: Math.exp(lastEpochTrainLoss),
        ...(lastValidLoss !== null ? { validLoss: lastValidLoss, validPerplexity: Math.exp(lastValidLoss) } : {}),
        elapsedMs: Date.now() - t0,
      };
      hooks.emit(em);
      const { type: _t, ...rest } = em;
      metric(rest);
      // best weights (by validation loss) and early stopping
      if (lastValidLoss !== null && Number.isFinite(lastValidLoss)) {
        const es = cfg.train.earlyStopping;
        if (lastValidLoss < bestValid - (es?.minDelta ?? 0)) {
          bestValid = lastValidLoss;
          bestEpoch = epoch;
          bestStep = step;
          best = new Map([...currentParams()].map(([k2, v]) => [k2, { shape: v.shape, data: Float32Array.from(v.data) }]));
          if (runDir) saveCheckpoint(path.join(runDir, RUN_FILES.best), { params: best, metadata: { ...lmMetadata(cfg, vocab!, step), 'gatelab.validLoss': String(lastValidLoss) } });
          waited = 0;
        } else if (es && ++waited >= es.patience) {
          log('info', `early stopping after epoch ${epoch}: no improvement of the validation loss for ${es.patience} epochs; restoring the weights of epoch ${bestEpoch}`);
          stoppedEarly = true;
          break;
        }
      }
      if (job.sampleAtEnd !== false && step < totalSteps && Date.now() - lastSampleAt >= 20_000) await sampleNow(0.7);
      if (step >= totalSteps) break;
    }
    if (stopped) {
      // a stop in the middle of an epoch: report what the finished steps saw
      const recent = stepLosses.slice(-Math.min(perEpoch, stepLosses.length));
      if (recent.length) lastEpochTrainLoss = recent.reduce((a, b) => a + b, 0) / recent.length;
      if (step > 0) lastValidLoss = await validate();
    }
    if (stoppedEarly && best) {
      // restore the best weights: the run's result is the model of the best epoch
      for (const p of trainProg.params) feeds[`p.${p.name}`] = new ort.Tensor(DTYPE, best.get(p.name)!.data, p.shape);
      lastValidLoss = bestValid;
      lastCheckpointStep = -1;
    }
    save(stopped ? 'stopped' : stoppedEarly ? 'best weights after early stopping' : 'end of run');
    if (step > 0) await gates(true);
  } catch (e) {
    if (record && runDir) {
      record.status = 'failed';
      record.finished = new Date().toISOString();
      record.error = (e as Error).message;
      record.checkpoint = savedFile;
      writeRunRecord(runDir, record);
    }
    if (e instanceof TrainingFailure || e instanceof UserError) throw e;
    throw new TrainingFailure(`training failed at step ${step + 1}: ${(e as Error).message}`, step + 1, savedFile);
  } finally {
    await trainSession.release().catch(() => undefined);
  }

  // ---- sample, summary ----
  let sample: string | undefined;
  if (job.sampleAtEnd !== false && step > 0) sample = await sampleNow(0);
  await sampler?.release();
  await evalSession?.release().catch(() => undefined);
  await probe?.release();

  const elapsed = (Date.now() - t0) / 1000;
  const summary: Summary = {
    model: cfg.name,
    device: choice.device,
    steps: step,
    epochs: Math.min(epoch, epochs),
    trainLoss: lastEpochTrainLoss,
    validLoss: lastValidLoss,
    perplexity: Math.exp(lastEpochTrainLoss),
    ...(lastValidLoss !== null ? { validPerplexity: Math.exp(lastValidLoss) } : {}),
    tokensPerSecond: (step * tokensPerStep) / Math.max(trainMs / 1000, 1e-9),
    elapsedSeconds: elapsed,
    ...(savedFile ? { checkpoint: savedFile } : {}),
    ...(sample !== undefined ? { sample } : {}),
    ...(stopped ? { stopped: true } : {}),
    ...(stoppedEarly ? { stoppedEarly: true, bestEpoch, bestStep } : bestEpoch ? { bestEpoch } : {}),
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

/** The first words of the corpus (d2l samples after "time traveller"). */
function defaultPrefix(ids: Int32Array, vocab: Vocab, tokens: 'char' | 'word'): string {
  const n = tokens === 'char' ? 15 : 3;
  const toks = Array.from(ids.subarray(0, n), (i) => vocab.tokens[i]);
  if (tokens === 'word') return toks.join(' ');
  // end at a word boundary when there is one
  const s = toks.join('');
  const cut = s.lastIndexOf(' ');
  return cut > 3 ? s.slice(0, cut) : s;
}

export type { Params };
