// A run's record on disk: `.gatelab/runs/<id>/` beside the model file (or where the parent says).
//
//   run.json            what ran and how it ended (rewritten atomically on every change of status)
//   model.gatelab.yaml  the model file's text as it was read when the run started (model.gatelab.json for JSON)
//   metrics.jsonl       one JSON object per step ({"step",...}) and per epoch ({"epoch",...}), appended
//   samples.jsonl       generated samples, appended
//   steps.bin           the step lines again as float64 [step, loss, gradNorm, lr, time] records (readers may ignore it)
//   model.safetensors   the latest good checkpoint (atomic)
//   train-state.safetensors  beside it: what resuming the run needs (optimizer state, data position)
//   best.safetensors    the weights of the best evaluation so far
//   gates.json          the latest gate snapshot for the probe text (atomic)
//   gates.jsonl         gate histograms and saturation of every snapshot, appended
//
// Readers skip a torn last line of a .jsonl file, so a killed trainer never corrupts a record.

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../util/fsx';
import type { Summary } from '../../shared/protocol';

export type RunStatus = 'queued' | 'running' | 'done' | 'failed' | 'stopped';

export interface RunRecord {
  id: string;
  model: string;
  modelFile: string;
  modelLine: number;
  task: string;
  status: RunStatus;
  started: string;
  finished?: string;
  device?: string;
  deviceReason?: string;
  pid?: number;
  /** when the trainer process started (processStartTime), so a reused pid is not taken for it */
  pidStart?: string;
  checkpoint?: string;
  summary?: Summary;
  error?: string;
  /** the train-section overrides given on the command line or by the host */
  overrides?: Record<string, unknown>;
  /** each time the run was resumed: the step it continued from */
  resumed?: { step: number; at: string }[];
  /** `gatelab sweep`: the sweep (its model's name) and this run's setting, key path → value */
  sweep?: { name: string; setting: Record<string, unknown>; metric?: string };
}

export const RUN_FILES = {
  record: 'run.json',
  model: 'model.gatelab.yaml',
  metrics: 'metrics.jsonl',
  samples: 'samples.jsonl',
  checkpoint: 'model.safetensors',
  /** the weights with the lowest validation loss so far (atomic) */
  best: 'best.safetensors',
  /** the latest gate snapshot (GatesMessage), atomic */
  gates: 'gates.json',
  /** per snapshot: histograms and saturation per layer, appended */
  gateHistory: 'gates.jsonl',
  /** the step lines of metrics.jsonl as binary columns: float64 step, loss, gradNorm, lr, time per step, appended (fast dashboards) */
  steps: 'steps.bin',
  /** beside each checkpoint: optimizer state, data position, generators (resume; train/state.ts) */
  state: 'train-state.safetensors',
} as const;

/**
 * `20261124-153012-123-timemachine-char-3f9a0c1e`: local time to the millisecond, the model's name
 * and 32 random bits, so runs started together (a sweep, two windows, a cluster) never share an id.
 */
export function newRunId(model: string, now = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const stamp = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}-${p(now.getMilliseconds(), 3)}`;
  const safe = model.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 40);
  return `${stamp}-${safe}-${randomBytes(4).toString('hex')}`;
}

/** The name of a run's model snapshot: a JSON model file is kept as JSON, a YAML one as YAML. */
export function snapshotName(modelFile: string): string {
  return /\.json$/i.test(modelFile) ? 'model.gatelab.json' : RUN_FILES.model;
}

/** The model snapshot of a run folder (YAML or JSON), whichever it has. */
export function snapshotPath(dir: string): string {
  const json = path.join(dir, 'model.gatelab.json');
  return fs.existsSync(json) ? json : path.join(dir, RUN_FILES.model);
}

/** The default runs folder for a model file. */
export function defaultRunsDir(modelFile: string): string {
  return path.join(path.dirname(modelFile), '.gatelab', 'runs');
}

export function writeRunRecord(dir: string, rec: RunRecord): void {
  writeFileAtomic(path.join(dir, RUN_FILES.record), JSON.stringify(rec, null, 2) + '\n');
}

/**
 * A trainer that was killed cannot finish its record: says how it ended, with the last complete
 * checkpoint, when the record still says "running". Returns the record as written (or undefined).
 */
export function settleRecord(dir: string, status: 'stopped' | 'failed', error: string): RunRecord | undefined {
  const rec = readRunRecord(dir);
  if (!rec || rec.status !== 'running') return undefined;
  rec.status = status;
  rec.finished = new Date().toISOString();
  rec.error ??= error;
  const ck = path.join(dir, RUN_FILES.checkpoint);
  if (!rec.checkpoint && fs.existsSync(ck)) rec.checkpoint = ck;
  try {
    writeRunRecord(dir, rec);
  } catch {
    return undefined; // the folder may be gone
  }
  return rec;
}

export function readRunRecord(dir: string): RunRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, RUN_FILES.record), 'utf8')) as RunRecord;
  } catch {
    return undefined;
  }
}

/** The fields of a step record of steps.bin, in order (float64 little-endian each). */
export const STEP_FIELDS = ['step', 'loss', 'gradNorm', 'lr', 'time'] as const;

/** Appends step records to steps.bin (a torn last record is ignored by readers: they read whole records). */
export function appendSteps(file: string, rows: { step: number; loss: number; gradNorm: number; lr: number; time: number }[]): void {
  const f = new Float64Array(rows.length * STEP_FIELDS.length);
  rows.forEach((r, i) => STEP_FIELDS.forEach((k, j) => (f[i * STEP_FIELDS.length + j] = r[k] ?? NaN)));
  fs.appendFileSync(file, new Uint8Array(f.buffer));
}

/** Parses a .jsonl file, skipping blank and torn lines. */
export function readJsonLines<T = unknown>(file: string): T[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: T[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      // a torn last line from a killed writer
    }
  }
  return out;
}
