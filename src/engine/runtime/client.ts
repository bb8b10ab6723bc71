// Parent side of the trainer process: forks dist/worker.js, sends the job, delivers the worker's
// messages to a callback, and stops it (a `stop` message, then SIGKILL after a grace period). A
// worker that dies without a final message is reported as a runtime error, never thrown at the
// parent, so the extension host survives any trainer crash.

import { ChildProcess, fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ortEnv } from './ortload';
import type { DoneMessage, ErrorMessage, FromWorker, GatesJob, GatesMessage, ThroughMessage, ToWorker, TrainJob } from '../../shared/protocol';

export interface WorkerOptions {
  /** path of the bundled worker (default: worker.js next to this bundle) */
  workerScript?: string;
  /** ms between the stop message and SIGKILL (default 10 s) */
  graceMs?: number;
  env?: NodeJS.ProcessEnv;
  /** extra arguments to node (e.g. --max-old-space-size) */
  execArgv?: string[];
  /** the trainer writes its run record here */
  runDir?: string;
  /** send this instead of a train message (one-shot jobs) */
  first?: ToWorker;
}

export type Outcome = DoneMessage | ErrorMessage;

/** Locates dist/worker.js from a bundle in dist/ or from the sources in src/engine/runtime. */
export function defaultWorkerScript(): string {
  const candidates = [path.join(__dirname, 'worker.js'), path.resolve(__dirname, '../../../dist/worker.js')];
  return candidates.find((f) => fs.existsSync(f)) ?? candidates[0];
}

export class TrainerProcess {
  readonly child: ChildProcess;
  readonly finished: Promise<Outcome>;
  private outcome?: Outcome;
  private killTimer?: NodeJS.Timeout;
  private stderr = '';

  constructor(job: TrainJob & { runDir?: string }, onMessage: (m: FromWorker) => void, o: WorkerOptions = {}) {
    const script = o.workerScript ?? defaultWorkerScript();
    this.child = fork(script, [], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      // the CUDA folders on the loader path (runtime/ortload.ts): the loader reads it only at start
      env: ortEnv(o.env ?? process.env),
      execArgv: o.execArgv ?? [],
      serialization: 'json',
    });
    this.child.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-8000);
    });
    this.finished = new Promise<Outcome>((resolve) => {
      this.child.on('message', (m: FromWorker) => {
        if (m.type === 'done' || m.type === 'error') this.outcome = m;
        if ((m.type === 'gates' && o.first?.type === 'gates') || (m.type === 'through' && o.first?.type === 'through')) this.outcome = { type: 'done', summary: undefined as never };
        onMessage(m);
      });
      this.child.on('error', (e) => {
        if (!this.outcome) this.outcome = { type: 'error', kind: 'runtime', message: `trainer process: ${e.message}` };
      });
      this.child.on('exit', (code, signal) => {
        if (this.killTimer) clearTimeout(this.killTimer);
        if (!this.outcome) {
          const why = signal ? `was killed by ${signal}` : `exited with code ${code}`;
          const tail = this.stderr.trim().split('\n').slice(-5).join('\n');
          this.outcome = { type: 'error', kind: 'runtime', message: `the trainer process ${why} before finishing${tail ? `:\n${tail}` : ''}` };
          onMessage(this.outcome);
        }
        resolve(this.outcome);
      });
    });
    this.send(o.first ?? { type: 'train', job: { ...job, ...(o.runDir ? { runDir: o.runDir } : {}) } as TrainJob });
    this.graceMs = o.graceMs ?? 10_000;
  }

  private readonly graceMs: number;

  private send(m: ToWorker): void {
    if (this.child.connected) this.child.send(m);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Asks the trainer to stop with a checkpoint (after the K steps it is running); kills it if it has
   * not exited after the grace period (null: never, the caller kills when it wants, as a second Ctrl+C).
   */
  stop(graceMs: number | null = this.graceMs): Promise<Outcome> {
    if (this.running) {
      this.send({ type: 'stop' });
      if (!this.killTimer && graceMs !== null) this.killTimer = setTimeout(() => this.kill(), graceMs);
    }
    return this.finished;
  }

  /** A new probe text for the gate views (applied after the current K steps). */
  probe(text: string): void {
    this.send({ type: 'probe', text });
  }

  /** Ends the trainer at once (checkpoints are atomic: the last complete one survives). */
  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }
}

/**
 * Runs a one-shot job (a finished run's checkpoint and a probe text) in a worker process, killed
 * after `timeoutMs` (default 120 s) or when `signal` aborts (its panel closed); `what` names it in errors.
 */
async function oneShotInWorker<M extends FromWorker>(first: Extract<ToWorker, { type: 'gates' | 'through' }>, type: M['type'], what: string, o: WorkerOptions & { timeoutMs?: number; signal?: AbortSignal }): Promise<M> {
  let result: M | undefined;
  const p = new TrainerProcess(first.job as unknown as TrainJob, (m) => {
    if (m.type === type) result = m as M;
  }, { ...o, first });
  let why: string | undefined;
  const end = (reason: string) => {
    why ??= reason;
    p.kill();
  };
  const timer = setTimeout(() => end(`${what} took longer than ${Math.round((o.timeoutMs ?? 120_000) / 1000)} s`), o.timeoutMs ?? 120_000);
  const onAbort = () => end(`${what} was cancelled`);
  if (o.signal?.aborted) onAbort();
  o.signal?.addEventListener('abort', onAbort);
  const outcome = await p.finished;
  clearTimeout(timer);
  o.signal?.removeEventListener('abort', onAbort);
  if (result) return result;
  throw Object.assign(new Error(why ?? (outcome.type === 'error' ? outcome.message : `${what} ended without a result`)), { outcome });
}

/** The gate views of a finished run's checkpoint for a probe text, in a worker process. */
export function gatesInWorker(job: GatesJob, o: WorkerOptions & { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<GatesMessage> {
  return oneShotInWorker<GatesMessage>({ type: 'gates', job }, 'gates', 'the gate probe', o);
}

/** A language model's gradients through time for a probe text, in a worker process. */
export function throughInWorker(job: GatesJob, o: WorkerOptions & { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<ThroughMessage> {
  return oneShotInWorker<ThroughMessage>({ type: 'through', job }, 'through', 'the gradients through time', o);
}
