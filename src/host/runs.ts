// Runs as the extension sees them: one trainer child process per run (runtime/client.ts), a run
// record on disk (`.gatelab/runs/<id>/`, written by the trainer), live state for the CodeLens, the
// status bar and the dashboards, and a queue when runs may not go in parallel.
//
// This module does not import `vscode` (it is unit-tested with real trainer processes); the
// extension wires its events to the UI.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { TrainerProcess } from '../engine/runtime/client';
import { sameProcess } from '../engine/util/fsx';
import { defaultRunsDir, newRunId, readJsonLines, readRunRecord, RunRecord, RunStatus, RUN_FILES, settleRecord } from '../engine/train/runrecord';
import type { EpochMessage, FromWorker, ProgressMessage, ReadingMessage, StartedMessage, Summary, TrainJob } from '../shared/protocol';

export interface RunInfo {
  id: string;
  dir: string;
  modelFile: string;
  model: string;
  /** from the run record or the trainer's started message */
  task?: string;
  status: RunStatus;
  started: number;
  finished?: number;
  startedMsg?: StartedMessage;
  last?: ProgressMessage;
  /** the first read of a big data file, until training starts */
  reading?: ReadingMessage;
  lastEpoch?: EpochMessage;
  summary?: Summary;
  error?: string;
  /** kind of the error: user errors point at the model file */
  errorKind?: 'user' | 'runtime';
  errorWhere?: { file?: string; line?: number; column?: number; key?: string };
  checkpoint?: string;
  /** the sweep the run belongs to (`gatelab sweep`) */
  sweep?: RunRecord['sweep'];
}

export interface RunManagerOptions {
  /** dist/worker.js of the extension */
  workerScript: string;
  /** `.gatelab/runs` beside the model file when empty; several folders: new runs go to the first, runs are read from all */
  runsFolder?: () => string | string[];
  concurrency?: () => 'queue' | 'parallel';
  /** extra fields of every job (device, threads, checkpoint interval) */
  jobDefaults?: () => Partial<TrainJob>;
  env?: () => NodeJS.ProcessEnv;
  graceMs?: number;
  log?: (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void;
}

type Listener<T> = (e: T) => void;

class Emitter<T> {
  private ls = new Set<Listener<T>>();
  on(l: Listener<T>): { dispose(): void } {
    this.ls.add(l);
    return { dispose: () => this.ls.delete(l) };
  }
  fire(e: T): void {
    for (const l of [...this.ls]) {
      try {
        l(e);
      } catch {
        // a listener's failure must not stop the others (or the run)
      }
    }
  }
}

export class RunManager {
  private readonly runs = new Map<string, RunInfo>();
  private readonly procs = new Map<string, TrainerProcess>();
  private readonly queue: { info: RunInfo; job: TrainJob }[] = [];
  /** any change of a run's state */
  readonly changed = new Emitter<RunInfo>();
  /** every message of every run, in order */
  readonly messages = new Emitter<{ run: RunInfo; message: FromWorker }>();
  private disposed = false;

  constructor(private readonly o: RunManagerOptions) {}

  /** The folders of the gatelab.runsFolder setting, in order ([] = .gatelab/runs beside each model file). */
  customRunsFolders(): string[] {
    const v = this.o.runsFolder?.() ?? '';
    return (Array.isArray(v) ? v : [v]).map((f) => String(f).trim()).filter((f) => f !== '');
  }

  /** Where a model file's new runs go: the first runs folder (default: .gatelab/runs beside it). */
  runsDirFor(modelFile: string): string {
    return this.runsDirsFor(modelFile)[0];
  }

  /** Every folder a model file's runs are read from: each of the setting's, resolved against the model file's folder. */
  runsDirsFor(modelFile: string): string[] {
    const custom = this.customRunsFolders();
    if (!custom.length) return [defaultRunsDir(modelFile)];
    return [...new Set(custom.map((c) => (path.isAbsolute(c) ? c : path.resolve(path.dirname(modelFile), c))))];
  }

  get all(): RunInfo[] {
    return [...this.runs.values()].sort((a, b) => a.started - b.started);
  }

  get(id: string): RunInfo | undefined {
    return this.runs.get(id);
  }

  active(): RunInfo[] {
    return this.all.filter((r) => r.status === 'running' || r.status === 'queued');
  }

  /** The newest run of a model (live or recorded). */
  latest(modelFile: string, model: string): RunInfo | undefined {
    this.loadRecords(modelFile);
    const rs = this.all.filter((r) => r.modelFile === modelFile && r.model === model);
    return rs[rs.length - 1];
  }

  runningFor(modelFile: string, model: string): RunInfo | undefined {
    return this.active().find((r) => r.modelFile === modelFile && r.model === model);
  }

  private loadedDirs = new Set<string>();

  /** Reads the run records of a model file's runs folders (each once; live runs win). */
  loadRecords(modelFile: string, force = false): void {
    for (const dir of this.runsDirsFor(modelFile)) {
      if (this.loadedDirs.has(dir) && !force) continue;
      this.loadedDirs.add(dir);
      let ids: string[] = [];
      try {
        ids = fs.readdirSync(dir);
      } catch {
        continue;
      }
      for (const id of ids) {
        if (this.runs.has(id)) continue;
        const rec = readRunRecord(path.join(dir, id));
        if (!rec) continue;
        this.runs.set(id, fromRecord(rec, path.join(dir, id)));
      }
    }
  }

  /** Starts (or queues) a run of one model; returns at once. */
  start(job: TrainJob & { modelName: string }): RunInfo {
    const modelFile = path.resolve(job.modelFile);
    const id = newRunId(job.modelName);
    const dir = path.join(this.runsDirFor(modelFile), id);
    const info: RunInfo = { id, dir, modelFile, model: job.modelName, status: 'queued', started: Date.now(), ...(job.sweep ? { sweep: { ...job.sweep } } : {}) };
    this.runs.set(id, info);
    const full: TrainJob = { ...this.o.jobDefaults?.(), ...job, modelFile };
    if ((this.o.concurrency?.() ?? 'queue') === 'queue' && this.procs.size > 0) {
      this.queue.push({ info, job: full });
      this.o.log?.('info', `run ${id} queued behind ${this.procs.size} running`);
      this.changed.fire(info);
    } else this.launch(info, full);
    return info;
  }

  private launch(info: RunInfo, job: TrainJob): void {
    info.status = 'running';
    info.started = Date.now();
    this.o.log?.('info', `run ${info.id}: training ${info.model} (${path.basename(info.modelFile)})`);
    const proc = new TrainerProcess(job, (m) => this.onMessage(info, m), {
      workerScript: this.o.workerScript,
      runDir: info.dir,
      graceMs: this.o.graceMs,
      env: this.o.env?.(),
    });
    this.procs.set(info.id, proc);
    this.changed.fire(info);
    void proc.finished.then((outcome) => {
      this.procs.delete(info.id);
      const unreported = info.status === 'running';
      if (unreported) {
        // the process ended without a final message it could send (killed, crashed)
        info.status = outcome.type === 'done' ? 'done' : 'failed';
        info.finished = Date.now();
      }
      this.markInterrupted(info);
      if (unreported) this.changed.fire(info);
      this.next();
    });
  }

  /** A killed trainer cannot update its record: say what happened. */
  private markInterrupted(info: RunInfo): void {
    settleRecord(info.dir, info.status === 'stopped' ? 'stopped' : 'failed', info.error ?? 'the trainer process ended unexpectedly');
  }

  private next(): void {
    if (this.disposed) return;
    const parallel = (this.o.concurrency?.() ?? 'queue') === 'parallel';
    while (this.queue.length && (parallel || this.procs.size === 0)) {
      const { info, job } = this.queue.shift()!;
      if (info.status === 'queued') this.launch(info, job);
    }
  }

  private onMessage(info: RunInfo, m: FromWorker): void {
    switch (m.type) {
      case 'started':
        info.startedMsg = m;
        info.task = m.task;
        info.reading = undefined;
        if (info.sweep && m.sweepMetric) info.sweep.metric = m.sweepMetric;
        break;
      case 'reading':
        info.reading = m;
        break;
      case 'progress':
        info.last = m;
        break;
      case 'epoch':
        info.lastEpoch = m;
        break;
      case 'checkpoint':
        info.checkpoint = m.file;
        break;
      case 'done':
        info.summary = m.summary;
        info.status = m.summary.stopped ? 'stopped' : 'done';
        info.finished = Date.now();
        info.checkpoint = m.summary.checkpoint ?? info.checkpoint;
        break;
      case 'error':
        info.status = 'failed';
        info.error = m.message;
        info.errorKind = m.kind;
        info.errorWhere = m.where;
        info.finished = Date.now();
        // a trainer writes its record before reporting; one still "running" means it died
        this.markInterrupted(info);
        this.o.log?.('error', `run ${info.id}: ${m.message}`);
        break;
      case 'log':
        this.o.log?.(m.level, `run ${info.id}: ${m.message}`);
        break;
    }
    this.messages.fire({ run: info, message: m });
    if (m.type !== 'log' && m.type !== 'sample') this.changed.fire(info);
  }

  /** Whether a run can be resumed (canResume). */
  resumable(id: string): boolean {
    const info = this.runs.get(id);
    return !!info && canResume(info);
  }

  /**
   * Continues a stopped or failed run where it stopped, in its own folder (its snapshot, weights,
   * optimizer state and data position); the job's defaults give threads and the checkpoint interval.
   */
  resume(id: string): RunInfo | undefined {
    const info = this.runs.get(id);
    if (!info || !this.resumable(id)) return undefined;
    Object.assign(info, { status: 'queued', error: undefined, errorKind: undefined, errorWhere: undefined, summary: undefined, finished: undefined, last: undefined, reading: undefined, lastEpoch: undefined });
    const { threads, checkpointEvery, gatesEveryMs, progressEveryMs, cache, cacheMaxBytes } = this.o.jobDefaults?.() ?? {};
    const job: TrainJob = { modelFile: info.modelFile, modelName: info.model, resume: info.dir, ...given({ threads, checkpointEvery, gatesEveryMs, progressEveryMs, cache, cacheMaxBytes }) };
    if ((this.o.concurrency?.() ?? 'queue') === 'queue' && this.procs.size > 0) {
      this.queue.push({ info, job });
      this.changed.fire(info);
    } else this.launch(info, job);
    return info;
  }

  /** Stops a run: queued runs are dropped, running ones get a stop message then a kill. */
  async stop(id: string): Promise<void> {
    const info = this.runs.get(id);
    if (!info) return;
    const q = this.queue.findIndex((e) => e.info.id === id);
    if (q >= 0) {
      this.queue.splice(q, 1);
      info.status = 'stopped';
      info.finished = Date.now();
      this.changed.fire(info);
      return;
    }
    const proc = this.procs.get(id);
    if (proc) await proc.stop();
  }

  /** Sends a new probe text to a live run; false when the run is not training. */
  probe(id: string, text: string): boolean {
    const proc = this.procs.get(id);
    if (!proc) return false;
    proc.probe(text);
    return true;
  }

  /**
   * Re-reads the record of a run another process writes (`gatelab train` in a terminal): a new run
   * is added, a changed one updated. Runs this window trains or queues are left alone.
   */
  reloadRecord(dir: string): RunInfo | undefined {
    const rec = readRunRecord(dir);
    if (!rec) return undefined;
    const cur = this.runs.get(rec.id);
    if (this.procs.has(rec.id) || this.queue.some((q) => q.info.id === rec.id)) return cur;
    const info = fromRecord(rec, dir);
    if (cur && cur.status === info.status) return cur;
    if (cur) Object.assign(cur, info);
    else this.runs.set(rec.id, info);
    this.changed.fire(cur ?? info);
    return cur ?? info;
  }

  /** Forgets a run whose folder was removed outside (no files are touched). */
  forget(id: string): void {
    const info = this.runs.get(id);
    if (!info || this.procs.has(id) || fs.existsSync(info.dir)) return;
    this.runs.delete(id);
    this.changed.fire({ ...info, status: 'stopped' });
  }

  /** Deletes a finished run's folder. */
  delete(id: string): void {
    const info = this.runs.get(id);
    if (!info || info.status === 'running') return;
    fs.rmSync(info.dir, { recursive: true, force: true });
    this.runs.delete(id);
    this.changed.fire({ ...info, status: 'stopped' });
  }

  /** Metrics of a run so far (from its record; live runs append to the same file). */
  metrics(id: string): Record<string, unknown>[] {
    const info = this.runs.get(id);
    return info ? readJsonLines(path.join(info.dir, RUN_FILES.metrics)) : [];
  }

  /**
   * Extension shutdown (window closed or reloaded): drops the queue, asks every trainer to stop with
   * a checkpoint and kills the ones still there after `graceMs`; resolves when all have exited.
   */
  shutdown(graceMs = 4000): Promise<void> {
    this.disposed = true;
    this.queue.length = 0;
    return Promise.all([...this.procs.values()].map((p) => p.stop(graceMs))).then(() => undefined);
  }

  dispose(): void {
    void this.shutdown();
  }
}

/** A run stopped or failed after saving a checkpoint with its training state (and did not end by early stopping). */
export function canResume(r: RunInfo): boolean {
  if ((r.status !== 'stopped' && r.status !== 'failed') || r.summary?.stoppedEarly) return false;
  return fs.existsSync(path.join(r.dir, RUN_FILES.state)) && fs.existsSync(path.join(r.dir, RUN_FILES.checkpoint));
}

function given<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function fromRecord(rec: RunRecord, dir: string): RunInfo {
  // a record still "running" whose process is gone was interrupted (window closed, crash)
  let status = rec.status;
  if (status === 'running' && !sameProcess(rec.pid, rec.pidStart)) status = 'failed';
  return {
    id: rec.id,
    dir,
    modelFile: rec.modelFile,
    model: rec.model,
    task: rec.task,
    status,
    started: Date.parse(rec.started),
    finished: rec.finished ? Date.parse(rec.finished) : undefined,
    summary: rec.summary,
    error: rec.error ?? (status !== rec.status ? 'interrupted' : undefined),
    checkpoint: rec.checkpoint,
    ...(rec.sweep ? { sweep: rec.sweep } : {}),
  };
}

/** A figure of a summary that is there: a finite number (NaN and Infinity arrive from JSON as null). */
export function finite(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}

/** `ppl 4.31 · 52k tok/s · cpu · 3 min ago` */
export function describeRun(r: RunInfo, now = Date.now()): string {
  const parts: string[] = [];
  if (r.status === 'running') {
    const total = r.startedMsg?.totalSteps;
    if (r.last) {
      parts.push(`step ${r.last.step}${total ? `/${total}` : ''}`, `loss ${r.last.losses[r.last.losses.length - 1]?.toFixed(3)}`);
      parts.push(`${formatRate(r.last.tokensPerSecond)} tok/s`);
      if (r.last.remainingMs > 0) parts.push(`${formatDuration(r.last.remainingMs)} left`);
    } else if (r.reading && !r.startedMsg) {
      const rd = r.reading;
      parts.push(`reading ${path.basename(rd.file)} ${Math.floor(100 * rd.fraction)}%`);
      if (Number.isFinite(rd.remainingMs) && rd.remainingMs > 0) parts.push(`${formatDuration(rd.remainingMs)} left`);
    } else parts.push('starting…');
    if (r.startedMsg) parts.push(r.startedMsg.device);
    return parts.join(' · ');
  }
  if (r.status === 'queued') return 'queued';
  if (r.status === 'failed') return `failed${r.error ? `: ${firstLine(r.error)}` : ''} · ${ago(r.finished ?? r.started, now)}`;
  const s = r.summary;
  if (s) {
    // any figure may be missing: a run stopped before its first epoch ended has none (NaN arrives as null)
    if (finite(s.perplexity)) parts.push(`ppl ${s.perplexity.toFixed(2)}`);
    else if (finite(s.accuracy)) parts.push(`acc ${(100 * s.accuracy).toFixed(1)}%`);
    else if (finite(s.rmse)) parts.push(`rmse ${s.rmse.toPrecision(3)}`);
    else if (finite(s.mse)) parts.push(`mse ${s.mse.toPrecision(2)}`);
    else if (finite(s.trainLoss)) parts.push(`loss ${s.trainLoss.toFixed(3)}`);
    else parts.push(`${s.steps ?? 0} steps`);
    if (finite(s.tokensPerSecond) && s.tokensPerSecond > 0) parts.push(`${formatRate(s.tokensPerSecond)} tok/s`);
    if (s.device) parts.push(s.device);
  }
  if (r.status === 'stopped') parts.push('stopped');
  parts.push(ago(r.finished ?? r.started, now));
  return parts.join(' · ');
}

function firstLine(s: string): string {
  const l = s.split('\n')[0];
  return l.length > 80 ? l.slice(0, 77) + '…' : l;
}

export function formatRate(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(1)}M` : x >= 1e3 ? `${Math.round(x / 1e3)}k` : `${Math.round(x)}`;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}:${String(s % 60).padStart(2, '0')}`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}`;
}

export function ago(t: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 24) return `${h} h ago`;
  return `${Math.round(h / 24)} d ago`;
}
