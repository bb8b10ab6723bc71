// The one training loop of every task. A task plug-in (../tasks/) supplies its data, its K-step
// program, its minibatches as chunk feeds, its evaluation and its checkpoint metadata; this loop
// owns everything else, the same for every task:
//   - the device (auto: CUDA when it loads, then calibrated against the CPU) and the sessions;
//   - K-step chunks that never cross an epoch; learning-rate schedule; dropout masks per step;
//   - a non-finite loss or gradient norm stops the run naming the step, keeping the weights from
//     before the failing chunk as a checkpoint named by its absolute path;
//   - progress at a bounded rate, periodic checkpoints, gate snapshots;
//   - evaluation after every epoch (generated data: every train.evaluateEvery steps), best weights
//     in best.safetensors, early stopping that restores them;
//   - stop requests: checkpoint first, then the record says `stopped`, then a last evaluation;
//   - resume (`job.resume`): the run's snapshot, checkpoint and training state (./state.ts);
//   - the run record (run.json is never left "running" by a failure) and the summary.
// It runs inside the trainer process (runtime/worker.ts) and talks to its parent only through
// `hooks` (protocol messages out; stop requests and probe texts in).

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { parseModelFile, pickModel, readModel, whereOf } from '../config/load';
import type { ModelConfig } from '../config/types';
import { Cancelled, UserError } from '../errors';
import type { CorpusIO } from '../data/text';
import { cacheDirFor, DEFAULT_CACHE_BYTES } from '../data/tokencache';
import { initParams } from '../nn/init';
import { dropoutMasks } from '../nn/dropout';
import { Rng } from '../util/rng';
import { appendLine, processStartTime, sameProcess, writeFileAtomic } from '../util/fsx';
import { chooseDevice, createSession, DeviceChoice } from '../runtime/device';
import { calibrate } from '../runtime/calibrate';
import { checkModel } from '../tasks/registry';
import type { Feeds, Params, Scores, TaskRun } from '../tasks/task';
import { mean } from '../tasks/common';
import { Checkpoint, loadCheckpoint, saveCheckpoint } from './checkpoint';
import { asDtype, checkCheckpointFits } from './lmsetup';
import { learningRateAt } from './schedule';
import { appendSteps, readJsonLines, readRunRecord, RUN_FILES, RunRecord, snapshotName, snapshotPath, writeRunRecord } from './runrecord';
import { loadState, Position, SavedState, saveState, stateFile, TrainState } from './state';
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

const DTYPE = 'float32' as const;

/** What to train: the model, its text (kept as the run's snapshot), where to record, and what to resume from. */
interface Plan {
  cfg: ModelConfig;
  text: string;
  runDir?: string;
  overrides: { steps?: number; epochs?: number; device?: TrainJob['device']; init?: string };
  resume?: { record: RunRecord; saved: SavedState; checkpoint: string };
}

function given<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function planOf(job: TrainRequest): Plan {
  const asked = given({ steps: job.steps, epochs: job.epochs, device: job.device });
  const length = asked.steps !== undefined ? { steps: asked.steps, epochs: undefined } : asked.epochs !== undefined ? { epochs: asked.epochs, steps: undefined } : {};
  if (!job.resume) {
    const { cfg, text } =
      job.modelText !== undefined ? { cfg: pickModel(parseModelFile(job.modelText, path.resolve(job.modelFile)), job.modelName, path.resolve(job.modelFile)), text: job.modelText } : readModel(job.modelFile, job.modelName);
    return { cfg, text, runDir: job.runDir, overrides: { ...asked, ...length, ...(job.init ? { init: job.init } : {}) } };
  }
  const dir = path.resolve(job.resume);
  const where = { file: dir, key: '--resume' };
  const record = readRunRecord(dir);
  if (!record) throw new UserError(`no run record (run.json) in ${dir}`, where, 'give a run folder, e.g. .gatelab/runs/<id>');
  if (record.status === 'running' && sameProcess(record.pid, record.pidStart)) throw new UserError(`the run ${record.id} is still training (process ${record.pid})`, where, 'stop it first');
  if (record.summary?.stoppedEarly) throw new UserError(`the run ${record.id} ended by early stopping; its checkpoint holds the best weights, not the last ones`, where, 'train a new run with --init on its checkpoint');
  const text = readFileOr(snapshotPath(dir), where, 'the run folder lacks its model snapshot');
  const cfg = pickModel(parseModelFile(text, record.modelFile), record.model, record.modelFile);
  const checkpoint = path.join(dir, RUN_FILES.checkpoint);
  if (!fs.existsSync(checkpoint)) throw new UserError(`the run ${record.id} saved no checkpoint`, where, 'it stopped before it could save; train it again');
  if (!fs.existsSync(stateFile(dir))) throw new UserError(`the run ${record.id} has no training state (${path.basename(stateFile(dir))})`, where, 'runs recorded by an older Gatelab cannot be resumed; use --init with its checkpoint');
  const saved = loadState(stateFile(dir));
  const ckStep = Number(loadCheckpoint(checkpoint).metadata['gatelab.step']);
  if (ckStep !== saved.state.step)
    throw new UserError(`the checkpoint (step ${ckStep}) and the training state (step ${saved.state.step}) of run ${record.id} differ: the trainer was killed while saving`, where, 'train a new run with --init on its checkpoint');
  const overrides = { ...given(record.overrides ?? {}), ...asked, ...length };
  delete (overrides as { init?: string }).init;
  return { cfg, text, runDir: dir, overrides, resume: { record, saved, checkpoint } };
}

function readFileOr(file: string, where: { file: string; key: string }, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    throw new UserError(`${what}: ${file}`, where);
  }
}

/** The train-section overrides of the command line or host, applied to the model. */
function applyOverrides(cfg: ModelConfig, o: Plan['overrides']): void {
  if (o.steps !== undefined) {
    cfg.train.steps = o.steps;
    cfg.train.epochs = undefined;
  } else if (o.epochs !== undefined) {
    cfg.train.epochs = o.epochs;
    cfg.train.steps = undefined;
  }
  if (o.device) cfg.train.device = o.device;
}

export async function runTraining(job: TrainRequest, hooks: TrainHooks): Promise<Summary> {
  const t0 = Date.now();
  const log = (level: 'debug' | 'info' | 'warn' | 'error', message: string) => hooks.emit({ type: 'log', level, message });
  const plan = planOf(job);
  const { cfg, runDir } = plan;
  applyOverrides(cfg, plan.overrides);

  // ---- the run record, before anything else can fail ----
  const record: RunRecord | undefined = runDir
    ? plan.resume
      ? { ...plan.resume.record, status: 'running', finished: undefined, error: undefined, summary: undefined, pid: process.pid, pidStart: processStartTime(process.pid), overrides: plan.overrides, resumed: [...(plan.resume.record.resumed ?? []), { step: plan.resume.saved.state.step, at: new Date(t0).toISOString() }] }
      : {
          id: path.basename(runDir),
          model: cfg.name,
          modelFile: cfg.file,
          modelLine: cfg.line,
          task: cfg.task,
          status: 'running',
          started: new Date(t0).toISOString(),
          pid: process.pid,
          pidStart: processStartTime(process.pid),
          overrides: plan.overrides,
          ...(job.sweep ? { sweep: job.sweep } : {}),
        }
    : undefined;
  const metricsFiles = [job.metrics, runDir && path.join(runDir, RUN_FILES.metrics)].filter((f): f is string => !!f);
  // a new run is recorded at once; a resumed run's record changes only once the resume is sure to go ahead
  let recorded = false;
  const writeRecord = () => {
    if (!runDir || !record) return;
    fs.mkdirSync(runDir, { recursive: true });
    if (!recorded && !plan.resume) writeFileAtomic(path.join(runDir, snapshotName(cfg.file)), plan.text);
    writeRunRecord(runDir, record);
    recorded = true;
  };
  if (!plan.resume) writeRecord();
  const loop = new Loop(job, plan, hooks, log, record, metricsFiles, t0);
  try {
    await loop.setup();
    writeRecord();
    // a --metrics file holds this run only; a resumed run's own metrics keep the steps up to its checkpoint
    if (job.metrics) writeFileAtomic(job.metrics, '');
    if (plan.resume && runDir) {
      const upTo = plan.resume.saved.state.step;
      const kept = readJsonLines<{ step?: number; loss?: number; gradNorm?: number; lr?: number; time?: number; trainLoss?: number }>(path.join(runDir, RUN_FILES.metrics)).filter((m) => (m.step ?? 0) <= upTo);
      writeFileAtomic(path.join(runDir, RUN_FILES.metrics), kept.map((m) => JSON.stringify(m) + '\n').join(''));
      // steps.bin: the same step records
      fs.rmSync(path.join(runDir, RUN_FILES.steps), { force: true });
      const steps = kept.filter((m) => m.loss !== undefined && m.trainLoss === undefined).map((m) => ({ step: m.step!, loss: m.loss ?? NaN, gradNorm: m.gradNorm ?? NaN, lr: m.lr ?? NaN, time: m.time ?? NaN }));
      if (steps.length) appendSteps(path.join(runDir, RUN_FILES.steps), steps);
    }
    const summary = await loop.train();
    if (record && runDir) {
      record.status = summary.stopped ? 'stopped' : 'done';
      record.finished = new Date().toISOString();
      record.summary = summary;
      record.checkpoint = summary.checkpoint;
      writeRunRecord(runDir, record);
    }
    return summary;
  } catch (e) {
    if (e instanceof Cancelled) {
      // a stop while the data was read: nothing was trained, nothing is lost; the run is stopped, not failed
      log('info', e.message);
      const summary: Summary = { model: cfg.name, device: loop.device, steps: 0, epochs: 0, trainLoss: NaN, validLoss: null, tokensPerSecond: 0, elapsedSeconds: (Date.now() - t0) / 1000, stopped: true };
      if (record && runDir && recorded) {
        Object.assign(record, { status: 'stopped', finished: new Date().toISOString(), summary });
        writeRunRecord(runDir, record);
      }
      return summary;
    }
    const failure =
      e instanceof TrainingFailure || e instanceof UserError || !loop.training ? (e as Error) : new TrainingFailure(`training failed at step ${loop.step + 1}: ${(e as Error).message}`, loop.step + 1, loop.savedFile);
    if (record && runDir && recorded) {
      record.status = 'failed';
      record.finished = new Date().toISOString();
      record.error = failure.message;
      record.checkpoint = loop.savedFile;
      writeRunRecord(runDir, record);
    }
    throw failure;
  } finally {
    await loop.release();
  }
}

/** One run of the loop: its sessions, weights, position and what it has seen. */
class Loop {
  step = 0;
  savedFile?: string;
  private feeds: Feeds = {};
  private lastCheckpointStep = -1;
  private lastCheckpointAt = Date.now();
  private trainMs = 0;
  private lastTrainLoss = NaN;
  private lastScores: Scores | undefined;
  private lastEvalStep = -1;
  private best: TrainState['best'] = null;
  private bestParams?: Params;
  private waited = 0;
  private lastGates = 0;
  private readonly rng: Rng;
  private readonly dropRng: Rng;
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();
  private trainSession?: ort.InferenceSession;
  private choice!: DeviceChoice;
  private run!: TaskRun;
  private totalSteps = 0;
  private epochs = 0;

  /** the summary key sweeps compare this task by */
  private sweepMetric?: string;
  /** the loop has begun training (failures from here on name their step) */
  training = false;

  constructor(
    private readonly job: TrainRequest,
    private readonly plan: Plan,
    private readonly hooks: TrainHooks,
    private readonly log: (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void,
    private readonly record: RunRecord | undefined,
    private readonly metricsFiles: string[],
    private readonly t0: number,
  ) {
    this.rng = new Rng(plan.cfg.train.seed);
    this.dropRng = new Rng(plan.cfg.train.seed ^ 0x5eed);
  }

  /** the device chosen (the CPU until setup has chosen) */
  get device(): 'cpu' | 'cuda' {
    return this.choice?.device ?? 'cpu';
  }

  private get cfg(): ModelConfig {
    return this.plan.cfg;
  }

  private get runDir(): string | undefined {
    return this.plan.runDir;
  }

  /** What a task's data reading may do: report progress (from progressEveryMs on, at most that often, and each pass's end), stop, cache. */
  private dataIO(): CorpusIO {
    const { job, cfg, hooks } = this;
    const every = job.progressEveryMs ?? 250;
    const start = Date.now();
    let last = 0;
    return {
      shouldStop: () => hooks.shouldStop(),
      progress: (p) => {
        const now = Date.now();
        if (now - start < every) return; // a read shorter than that is not reported
        if (now - last < every && p.bytes < p.size) return;
        last = now;
        const fraction = (p.pass - 1 + p.bytes / Math.max(p.size, 1)) / p.passes;
        const elapsedMs = now - start;
        hooks.emit({ type: 'reading', ...p, fraction, elapsedMs, remainingMs: fraction > 0 ? (elapsedMs * (1 - fraction)) / fraction : NaN });
      },
      cache: job.cache === false ? undefined : { dir: cacheDirFor(cfg.file), maxBytes: job.cacheMaxBytes ?? DEFAULT_CACHE_BYTES },
    };
  }

  async setup(): Promise<void> {
    const { cfg, job, plan } = this;
    const task = checkModel(cfg);
    // a sweep's run names the summary key its sweep compares by
    if (this.record?.sweep) this.record.sweep.metric = task.sweepMetric;
    this.sweepMetric = task.sweepMetric;
    const initFile = plan.resume?.checkpoint ?? job.init;
    const init = initFile ? { ck: loadCheckpoint(initFile), file: initFile } : undefined;
    this.choice = chooseDevice(cfg.train.device);
    this.run = await task.setup({
      cfg,
      job,
      init,
      rng: this.rng,
      log: this.log,
      io: this.dataIO(),
      session: (key, model) => {
        let s = this.sessions.get(key);
        if (!s) {
          s = createSession(model(), this.choice, { threads: job.threads }).then((r) => r.session);
          this.sessions.set(key, s);
        }
        return s;
      },
    });
    const { program } = this.run;

    // ---- weights ----
    let params: Params;
    if (init) {
      checkCheckpointFits(init.ck, program.params, init.file, cfg);
      params = new Map([...init.ck.params].map(([k, v]) => [k, { shape: v.shape, data: asDtype(v.data, DTYPE) }]));
    } else params = initParams(program.params, cfg.model.layers, cfg.train.seed, DTYPE, cfg.model.init);
    for (const p of program.params) this.feeds[`p.${p.name}`] = new ort.Tensor(DTYPE, params.get(p.name)!.data as Float32Array, p.shape);
    const saved = plan.resume?.saved.tensors;
    for (const s of program.state) this.feeds[`s.${s.name}`] = tensorOr(saved?.get(`s.${s.name}`), s.shape);
    for (const c of this.run.carried ?? []) this.feeds[c.name] = tensorOr(saved?.get(c.name), c.shape);

    // ---- device and the training session ----
    const model = program.graph.encode();
    const created = await createSession(model, this.choice, { threads: job.threads, fallback: cfg.train.device === 'auto' });
    this.choice = created.choice;
    this.trainSession = created.session;
    if (cfg.train.device === 'auto' && this.choice.device === 'cuda' && process.env.GATELAB_CALIBRATE !== '0') {
      // small models often train faster on the CPU: time the program on both and keep the faster
      const cal = await calibrate(model, this.trainSession, { threads: job.threads, stepsPerRun: cfg.train.stepsPerRun });
      this.trainSession = cal.session;
      this.choice = cal.choice;
      if (cal.calibration && this.choice.device === 'cuda') this.log('info', `device auto: ${cal.calibration.reason}`);
    }
    if (this.choice.reason) this.log('info', `device auto: using the CPU because ${this.choice.reason}`);
    if (this.record) {
      this.record.device = this.choice.device;
      this.record.deviceReason = this.choice.reason;
    }

    // ---- the length of the run ----
    const perEpoch = this.run.stepsPerEpoch;
    if (perEpoch < 1) throw new UserError('the training data is too short for one minibatch', whereOf(cfg, 'train.batchSize'), 'lower train.batchSize, or use more data');
    this.totalSteps = cfg.train.steps ?? cfg.train.epochs! * perEpoch;
    this.epochs = cfg.train.steps !== undefined ? Math.ceil(this.totalSteps / perEpoch) : cfg.train.epochs!;

    // ---- resume: the position and what evaluation had seen ----
    const st = plan.resume?.saved.state;
    if (st) {
      if (st.step >= this.totalSteps)
        throw new UserError(`the run ${plan.resume!.record.id} has already trained ${st.step} of its ${this.totalSteps} steps`, { key: '--resume' }, 'give --steps or --epochs beyond that to train on');
      this.step = st.step;
      this.lastCheckpointStep = st.step;
      this.savedFile = plan.resume!.checkpoint;
      this.lastTrainLoss = st.lastTrainLoss ?? NaN;
      this.lastScores = st.lastScores ?? undefined;
      this.lastEvalStep = st.epochComplete ? st.step : -1;
      this.best = st.best;
      this.waited = st.waited;
      this.trainMs = st.trainMs;
      this.dropRng.setState(st.dropRng);
      const bestFile = path.join(this.runDir!, RUN_FILES.best);
      if (st.best && fs.existsSync(bestFile)) this.bestParams = loadCheckpoint(bestFile).params as Params;
      this.log('info', `resuming run ${plan.resume!.record.id} at step ${st.step} of ${this.totalSteps} (epoch ${st.epochComplete ? st.epoch + 1 : st.epoch})`);
    }

    const numParams = program.params.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
    this.hooks.emit({
      type: 'started',
      model: cfg.name,
      task: cfg.task,
      device: this.choice.device,
      deviceReason: this.choice.reason,
      parameters: numParams,
      ...this.run.started,
      totalSteps: this.totalSteps,
      stepsPerEpoch: perEpoch,
      epochs: this.epochs,
      stepsPerRun: cfg.train.stepsPerRun,
      sweepMetric: this.sweepMetric,
    });
    this.log('debug', `model ${cfg.name}: ${numParams.toLocaleString('en-US')} parameters, ${perEpoch} steps per epoch on ${this.choice.device}`);
    if (this.run.describe) this.log('info', this.run.describe);
  }

  // ---- the weights ----

  private params(): Params {
    return new Map(this.run.program.params.map((p) => [p.name, { shape: p.shape, data: this.feeds[`p.${p.name}`].data as Float32Array }]));
  }

  private paramFeeds(): Feeds {
    const out: Feeds = {};
    for (const p of this.run.program.params) out[`p.${p.name}`] = this.feeds[`p.${p.name}`];
    return out;
  }

  private get checkpointFiles(): string[] {
    return [this.job.save, this.runDir && path.join(this.runDir, RUN_FILES.checkpoint)].filter((f): f is string => !!f).map((f) => path.resolve(f));
  }

  /** Saves the current weights (and, in a run folder, the training state at `pos`); `final` saves even when this step was saved. */
  private save(pos: Position, reason: string, o: { withState?: boolean; final?: boolean } = {}): void {
    const files = this.checkpointFiles;
    const withState = o.withState ?? true;
    if (files.length === 0 || (this.lastCheckpointStep === pos.step && !o.final)) return;
    if (this.runDir && withState) {
      const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
      for (const s of this.run.program.state) tensors.set(`s.${s.name}`, { shape: s.shape, data: this.feeds[`s.${s.name}`].data as Float32Array });
      for (const c of this.run.carried ?? []) tensors.set(c.name, { shape: c.shape, data: this.feeds[c.name].data as Float32Array });
      saveState(stateFile(this.runDir), this.state(pos), tensors);
    }
    const ck: Checkpoint = { params: this.params(), metadata: this.run.metadata(pos.step) };
    for (const f of files) saveCheckpoint(f, ck);
    this.lastCheckpointStep = pos.step;
    this.lastCheckpointAt = Date.now();
    this.savedFile = files[0];
    this.hooks.emit({ type: 'checkpoint', step: pos.step, file: files[0] });
    this.log('debug', `checkpoint (${reason}) at step ${pos.step}: ${files.join(', ')}`);
  }

  private state(pos: Position): TrainState {
    return {
      version: 1,
      ...pos,
      totalSteps: this.totalSteps,
      lastTrainLoss: Number.isFinite(this.lastTrainLoss) ? this.lastTrainLoss : null,
      lastScores: this.lastScores ?? null,
      best: this.best,
      waited: this.waited,
      trainMs: this.trainMs,
    };
  }

  /** The step lines again as binary records in the run folder (what a dashboard of a long run reads). */
  private stepRecords(rows: { step: number; loss: number; gradNorm: number; lr: number; time: number }[]): void {
    if (this.runDir) appendSteps(path.join(this.runDir, RUN_FILES.steps), rows);
  }

  private metric(o: Record<string, unknown>): void {
    const line = JSON.stringify(o);
    for (const f of this.metricsFiles) appendLine(f, line);
  }

  // ---- gate views, evaluation ----

  private async gates(force: boolean): Promise<void> {
    const probe = (this.job.gatesEveryMs ?? 3000) > 0 ? this.run.probe : undefined;
    if (!probe) return;
    const asked = this.hooks.takeProbe?.();
    if (asked !== undefined) probe.setText?.(asked);
    if (!force && asked === undefined && Date.now() - this.lastGates < (this.job.gatesEveryMs ?? 3000)) return;
    try {
      const m = await probe.run(this.paramFeeds(), this.step);
      this.lastGates = Date.now();
      this.hooks.emit(m);
      if (this.runDir) {
        writeFileAtomic(path.join(this.runDir, RUN_FILES.gates), JSON.stringify(m));
        appendLine(path.join(this.runDir, RUN_FILES.gateHistory), JSON.stringify({ step: this.step, layers: m.layers.map((l) => ({ layer: l.layer, direction: l.direction, histograms: l.histograms, saturation: l.saturation })) }));
      }
    } catch (e) {
      this.log('warn', `gate snapshot: ${(e as Error).message}`);
    }
  }

  private async evaluate(): Promise<Scores | undefined> {
    const s = await this.run.evaluate(this.paramFeeds());
    this.lastEvalStep = this.step;
    if (s) this.lastScores = s;
    return s;
  }

  /** Best weights (by the validation loss) and early stopping; true when the run should end now. */
  private judge(scores: Scores | undefined, epoch: number): boolean {
    if (!scores || !Number.isFinite(scores.loss)) return false;
    const es = this.cfg.train.earlyStopping;
    if (!this.best || scores.loss < this.best.loss - (es?.minDelta ?? 0)) {
      this.best = { loss: scores.loss, epoch, step: this.step, scores };
      this.bestParams = new Map([...this.params()].map(([k, v]) => [k, { shape: v.shape, data: Float32Array.from(v.data) }]));
      if (this.runDir) saveCheckpoint(path.join(this.runDir, RUN_FILES.best), { params: this.bestParams, metadata: { ...this.run.metadata(this.step), 'gatelab.validLoss': String(scores.loss) } });
      this.waited = 0;
      return false;
    }
    if (es && ++this.waited >= es.patience) {
      this.log('info', `early stopping after epoch ${epoch}: no improvement of the validation loss for ${es.patience} evaluations; restoring the weights of epoch ${this.best.epoch}`);
      return true;
    }
    return false;
  }

  private view() {
    return {
      step: this.step,
      params: () => this.params(),
      device: this.choice,
      emitSample: (m: { step: number; prefix: string; text: string }, temperature: number) => {
        this.hooks.emit({ type: 'sample', ...m });
        if (this.runDir) appendLine(path.join(this.runDir, RUN_FILES.samples), JSON.stringify({ ...m, temperature }));
      },
    };
  }

  // ---- the loop ----

  async train(): Promise<Summary> {
    const { cfg, run, hooks } = this;
    const K = cfg.train.stepsPerRun;
    const lr = cfg.train.optimizer.learningRate;
    const progressEvery = this.job.progressEveryMs ?? 250;
    const checkpointEveryMs = (this.job.checkpointEvery ?? 60) * 1000;
    const tokensPerStep = run.started.tokensPerStep;
    const st = this.plan.resume?.saved.state;
    let epoch = st ? (st.epochComplete ? st.epoch + 1 : st.epoch) : 1;
    let resumeInside = st && !st.epochComplete ? st : undefined;
    let lastProgress = 0;
    let pendingLosses: number[] = [];
    let pendingNorms: number[] = [];
    let stopped = false;
    let stoppedEarly = false;
    let firstChunk = true;
    let pos: Position | undefined;
    let lastLr = lr;
    this.training = true;

    outer: for (; epoch <= this.epochs && this.step < this.totalSteps; epoch++) {
      // the epoch's minibatches, drawn from the data generator as it was at the epoch's start
      if (resumeInside) this.rng.setState(resumeInside.rngEpoch);
      const rngEpoch = this.rng.getState();
      const epochPlan = run.epoch(this.rng);
      let i = 0;
      let epochLosses: number[] = [];
      if (resumeInside) {
        this.rng.setState(resumeInside.rng);
        i = resumeInside.stepInEpoch;
        epochLosses = [...resumeInside.epochLosses];
        resumeInside = undefined;
      }
      const epochStart = this.step - i;
      const n = Math.min(epochPlan.steps, this.totalSteps - epochStart);
      const position = (): Position => ({ step: this.step, epoch, stepInEpoch: i, epochComplete: false, rngEpoch, rng: this.rng.getState(), dropRng: this.dropRng.getState(), epochLosses: [...epochLosses] });
      pos = position();
      for (; i < n; ) {
        if (hooks.shouldStop()) {
          stopped = true;
          break outer;
        }
        const before = position();
        const k = Math.min(K, n - i);
        const feeds = this.feeds;
        Object.assign(feeds, epochPlan.chunk(i, k));
        if (run.dropout) Object.assign(feeds, dropoutMasks(run.dropout.shapes, k, run.dropout.p, this.dropRng));
        const lrs = Float32Array.from({ length: k }, (_, j) => learningRateAt(this.step + j, this.totalSteps, lr, cfg.train.schedule));
        feeds.lr = new ort.Tensor(DTYPE, lrs, [k]);
        lastLr = lrs[k - 1];
        const tRun = Date.now();
        const r = await this.trainSession!.run(feeds);
        this.trainMs += Date.now() - tRun;
        const losses = Array.from(r.loss.data as Float32Array);
        const norms = Array.from(r.gnorm.data as Float32Array);
        const bad = losses.findIndex((l, j) => !Number.isFinite(l) || !Number.isFinite(norms[j]));
        if (bad >= 0) {
          // the weights before this chunk are the last good ones
          this.save(before, 'last good weights before a non-finite value');
          const failStep = this.step + bad + 1;
          const what = Number.isFinite(losses[bad]) ? `the gradient norm became ${norms[bad]}` : `the loss became ${losses[bad]}`;
          this.metric({ step: failStep, epoch, loss: losses[bad], gradNorm: norms[bad], error: 'non-finite' });
          this.stepRecords([{ step: failStep, loss: losses[bad], gradNorm: norms[bad], lr: lrs[bad], time: (Date.now() - this.t0) / 1000 }]);
          throw new TrainingFailure(
            `${what} at step ${failStep} (epoch ${epoch}); training stopped` +
              (this.savedFile ? `; the last good weights (step ${this.lastCheckpointStep}) are in ${this.savedFile}` : '') +
              ' — lower train.optimizer.learningRate or set train.clipNorm',
            failStep,
            this.savedFile,
          );
        }
        for (const p of run.program.params) feeds[`p.${p.name}`] = r[`p_out.${p.name}`];
        for (const s of run.program.state) feeds[`s.${s.name}`] = r[`s_out.${s.name}`];
        for (const c of run.carried ?? []) feeds[c.name] = r[c.out];
        const now = Date.now();
        const rows = losses.map((loss, j) => {
          this.step++;
          epochLosses.push(loss);
          const row = { step: this.step, loss, gradNorm: norms[j], lr: lrs[j], time: (now - this.t0) / 1000 };
          this.metric({ step: row.step, epoch, loss, gradNorm: row.gradNorm, lr: row.lr, time: row.time });
          return row;
        });
        this.stepRecords(rows);
        i += k;
        pos = position();
        pendingLosses.push(...losses);
        pendingNorms.push(...norms);
        if (now - lastProgress >= progressEvery || this.step === this.totalSteps) {
          hooks.emit({
            type: 'progress',
            step: this.step,
            epoch,
            losses: pendingLosses,
            gradNorms: pendingNorms,
            learningRate: lrs[k - 1],
            tokensPerSecond: (this.step * tokensPerStep) / Math.max(this.trainMs / 1000, 1e-9),
            elapsedMs: now - this.t0,
            remainingMs: ((this.totalSteps - this.step) * (now - this.t0)) / Math.max(1, this.step - (st?.step ?? 0)),
          });
          pendingLosses = [];
          pendingNorms = [];
          lastProgress = now;
        }
        if (checkpointEveryMs > 0 && now - this.lastCheckpointAt >= checkpointEveryMs) this.save(pos, 'periodic');
        await this.gates(firstChunk);
        firstChunk = false;
      }
      // ---- the epoch's end: evaluation, best weights, early stopping ----
      this.lastTrainLoss = mean(epochLosses);
      const scores = await this.evaluate();
      const em = {
        epoch,
        step: this.step,
        trainLoss: this.lastTrainLoss,
        ...run.trainMetrics?.(this.lastTrainLoss).epoch,
        ...(scores ? { validLoss: scores.loss, ...scores.metrics } : {}),
        elapsedMs: Date.now() - this.t0,
      };
      hooks.emit({ type: 'epoch', ...em });
      this.metric({ ...em, ...run.baselines });
      // an epoch cut short by the end of the run is not complete: a resumed run continues it
      pos = { ...position(), epochComplete: i >= epochPlan.steps };
      if (this.judge(scores, epoch)) {
        stoppedEarly = true;
        break;
      }
      await run.afterEvaluation?.(this.view(), this.step >= this.totalSteps);
    }
    if (pendingLosses.length) hooks.emit({ type: 'progress', step: this.step, epoch: Math.min(epoch, this.epochs), losses: pendingLosses, gradNorms: pendingNorms, learningRate: lastLr, tokensPerSecond: (this.step * tokensPerStep) / Math.max(this.trainMs / 1000, 1e-9), elapsedMs: Date.now() - this.t0, remainingMs: 0 });
    pos ??= { step: this.step, epoch, stepInEpoch: 0, epochComplete: false, rngEpoch: this.rng.getState(), rng: this.rng.getState(), dropRng: this.dropRng.getState(), epochLosses: [] };

    if (stopped) {
      // checkpoint first (a slow last evaluation must not cost it), then the record says so
      this.save(pos, 'stopped', { final: true });
      if (this.record && this.runDir) {
        this.record.status = 'stopped';
        this.record.checkpoint = this.savedFile;
        writeRunRecord(this.runDir, this.record);
      }
      if (pos.epochLosses.length) this.lastTrainLoss = mean(pos.epochLosses);
      if (this.step > 0 && this.step !== this.lastEvalStep) await this.evaluate();
    } else if (stoppedEarly && this.best && this.bestParams) {
      // the run's result is the model of the best epoch
      for (const p of run.program.params) this.feeds[`p.${p.name}`] = new ort.Tensor(DTYPE, this.bestParams.get(p.name)!.data as Float32Array, p.shape);
      this.lastScores = this.best.scores;
      this.lastCheckpointStep = -1;
      this.save({ ...pos, step: this.best.step }, 'best weights after early stopping', { withState: false, final: true });
    } else this.save(pos, 'end of run', { final: true });
    if (this.step > 0) await this.gates(true);
    const extra = this.step > 0 && run.finish ? await run.finish(this.view()) : {};

    const scores = this.lastScores;
    const best = this.best;
    return {
      model: cfg.name,
      device: this.choice.device,
      steps: this.step,
      epochs: Math.min(epoch, this.epochs),
      trainLoss: this.lastTrainLoss,
      validLoss: scores ? scores.loss : null,
      ...run.trainMetrics?.(this.lastTrainLoss).summary,
      ...scores?.metrics,
      ...scores?.summary,
      ...run.baselines,
      tokensPerSecond: (this.step * tokensPerStep) / Math.max(this.trainMs / 1000, 1e-9),
      elapsedSeconds: (Date.now() - this.t0) / 1000,
      ...(this.savedFile ? { checkpoint: this.savedFile } : {}),
      ...extra,
      ...(stopped ? { stopped: true } : {}),
      ...(stoppedEarly && best ? { stoppedEarly: true, bestEpoch: best.epoch, bestStep: best.step } : best ? { bestEpoch: best.epoch } : {}),
    } as Summary;
  }

  async release(): Promise<void> {
    await this.trainSession?.release().catch(() => undefined);
    for (const s of this.sessions.values()) await s.then((x) => x.release()).catch(() => undefined);
    await this.run?.probe?.release().catch(() => undefined);
    await this.run?.release?.().catch(() => undefined);
  }
}

/** A saved state tensor (resume), else zeros. */
function tensorOr(saved: { shape: number[]; data: Float32Array } | undefined, shape: number[]): ort.Tensor {
  if (saved) {
    if (saved.shape.length !== shape.length || saved.shape.some((d, i) => d !== shape[i])) throw new Error(`the training state holds [${saved.shape.join(', ')}] where the program needs [${shape.join(', ')}]`);
    return new ort.Tensor(DTYPE, saved.data, shape);
  }
  return new ort.Tensor(DTYPE, new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
}
