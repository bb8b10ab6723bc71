// The data behind the notebook side panel, as pure functions over run records (unit-tested without
// VS Code): the hyper-parameters that differ between two runs' model documents (with the schema's
// defaults, so writing a default is no change), cells built from runs, grouping by model file,
// the duplicate editor's keys and its edits to a model file, and the inference results kept with a
// run (`inference.jsonl`, rewritten atomically).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Document, isMap, isScalar, isSeq, parseAllDocuments, parse as parseYaml, stringify as yamlStringify } from 'yaml';
import { didYouMean, parseModelFile, validateModelText } from '../engine/config/load';
import { JsonSchema, schemaAt, SCHEMA_KEYS } from '../engine/config/schema';
import { readJsonLines, RUN_FILES } from '../engine/train/runrecord';
import { writeFileAtomic } from '../engine/util/fsx';
import type { CellDiff, CellGroup, CellMetric, DuplicateMode, EditableKey, EditProblem, HyperChange, InferenceEntry, NotebookCell } from '../shared/notebook';
import { cellGroupOf } from '../shared/notebook';
import { minMaxIndices } from '../../webview/dashboard/chartdata';
import { canResume, finite, RunInfo } from './runs';

export const INFERENCE_FILE = 'inference.jsonl';
/** inference results kept per run (the oldest are dropped) */
export const INFERENCE_KEEP = 50;
/** points of a cell's loss sparkline (min and max of each of half as many buckets) */
export const SPARK_POINTS = 120;

// ---- model documents ---------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The model document named `model` in a model file's text (YAML documents or JSON), as plain data. */
export function modelDocument(text: string, model: string): Record<string, Json> | undefined {
  try {
    for (const doc of parseAllDocuments(text)) {
      const js = doc.toJS() as Json;
      const items = Array.isArray(js) ? js : [js];
      for (const m of items) if (m && typeof m === 'object' && !Array.isArray(m) && m.name === model) return m;
    }
  } catch {
    // unreadable: no document
  }
  return undefined;
}

/** YAML text of a value, as a user would write it (`1`, `sgd`, `[a.txt, b.txt]`). */
export function valueText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === undefined) return '';
  return yamlStringify(v, { collectionStyle: 'flow' }).trim();
}

/** Leaf values by dotted key path; lists of maps by index (`model.layers.0.hidden`), other lists whole. */
export function flatten(doc: Record<string, Json>, prefix = '', out: Map<string, Json> = new Map()): Map<string, Json> {
  for (const [k, v] of Object.entries(doc)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v, key, out);
    else if (Array.isArray(v) && v.length > 0 && v.every((x) => x && typeof x === 'object' && !Array.isArray(x))) v.forEach((x, i) => flatten(x as Record<string, Json>, `${key}.${i}`, out));
    else out.set(key, v);
  }
  return out;
}

function schemaDefault(key: string): Json | undefined {
  const s = schemaAt(key);
  return s && 'default' in s ? (s.default as Json) : undefined;
}

const same = (a: Json | undefined, b: Json | undefined) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The value a model document gets for a key it does not write: what the loader resolves (the
 * learning rate depends on the optimizer), else the schema's default.
 */
function defaultIn(doc: Record<string, Json>, key: string, resolved: { cfg?: Record<string, unknown> | null }): Json | undefined {
  if (resolved.cfg === undefined) {
    try {
      resolved.cfg = parseModelFile(JSON.stringify(doc), '/defaults.gatelab.json')[0] as unknown as Record<string, unknown>;
    } catch {
      resolved.cfg = null;
    }
  }
  let v: unknown = resolved.cfg;
  for (const p of key.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[p] : undefined;
  if (v !== undefined && (v === null || typeof v !== 'object')) return v as Json;
  return schemaDefault(key);
}

/**
 * The hyper-parameters of `next` that differ from `prev` (the name aside). A key written on one side
 * only is compared with the value the other side gets by default, so `dropout: 0` against no dropout
 * is no change; the missing side is shown as that default. Keys in the order of `next`, then those
 * only in `prev`.
 */
export function diffHyper(prev: Record<string, Json>, next: Record<string, Json>): HyperChange[] {
  const a = flatten(prev);
  const b = flatten(next);
  const ra = {};
  const rb = {};
  const out: HyperChange[] = [];
  const keys = [...b.keys(), ...[...a.keys()].filter((k) => !b.has(k))];
  for (const key of keys) {
    if (key === 'name') continue;
    const from = a.has(key) ? a.get(key) : defaultIn(prev, key, ra);
    const to = b.has(key) ? b.get(key) : defaultIn(next, key, rb);
    if (same(from, to)) continue;
    out.push({ key, from: from === undefined ? undefined : valueText(from), to: to === undefined ? undefined : valueText(to) });
  }
  return out;
}

/** The run a cell is compared with: the previous run of its model, else the previous run of its file. */
export function diffBase<R extends Pick<RunInfo, 'id' | 'model' | 'modelFile' | 'started'>>(run: R, all: readonly R[]): { run: R; sameModel: boolean } | undefined {
  const before = all.filter((r) => r.modelFile === run.modelFile && r.id !== run.id && (r.started < run.started || (r.started === run.started && r.id < run.id)));
  before.sort((x, y) => x.started - y.started || (x.id < y.id ? -1 : 1));
  const sameModel = before.filter((r) => r.model === run.model);
  if (sameModel.length) return { run: sameModel[sameModel.length - 1], sameModel: true };
  return before.length ? { run: before[before.length - 1], sameModel: false } : undefined;
}

// ---- cells -------------------------------------------------------------------------------------

/** Final metrics of a run, most telling first. */
export function cellMetrics(s: RunInfo['summary']): CellMetric[] {
  if (!s) return [];
  const out: CellMetric[] = [];
  const num = (x: number, d = 3) => (Math.abs(x) >= 100 ? x.toFixed(1) : x.toPrecision(d));
  // a value is shown only when it is a number: a run stopped before its first epoch ends has none (NaN arrives as null)
  if (finite(s.perplexity)) out.push({ label: 'ppl', value: s.perplexity.toFixed(2), title: 'training perplexity (exp of the last epoch\'s mean loss)' });
  if (finite(s.validPerplexity)) out.push({ label: 'val ppl', value: s.validPerplexity.toFixed(2), title: 'validation perplexity' });
  if (finite(s.accuracy)) out.push({ label: 'acc', value: `${(100 * s.accuracy).toFixed(1)}%`, title: 'accuracy on the held-out examples' });
  if (finite(s.rmse)) out.push({ label: 'rmse', value: num(s.rmse), title: `RMSE of the forecasts on the held-out part${finite(s.baselineRmse) ? ` (persistence: ${num(s.baselineRmse)})` : ''}` });
  if (finite(s.mae)) out.push({ label: 'mae', value: num(s.mae), title: 'mean absolute error on the held-out part' });
  if (finite(s.baselineRmse)) out.push({ label: 'naive', value: num(s.baselineRmse), title: 'RMSE of persistence (the last seen value)' });
  if (finite(s.mse)) out.push({ label: 'mse', value: s.mse.toPrecision(2), title: `validation mean squared error${finite(s.baselineMse) ? ` (always 1.0: ${s.baselineMse.toPrecision(2)})` : ''}${finite(s.runningMeanMse) && finite(s.lastValueMse) ? ` (the mean so far: ${s.runningMeanMse.toPrecision(2)}, the last value: ${s.lastValueMse.toPrecision(2)})` : ''}` });
  if (finite(s.chanceAccuracy)) out.push({ label: 'chance', value: `${(100 * s.chanceAccuracy).toFixed(0)}%`, title: 'accuracy of guessing the value at the query (1 / values)' });
  if (finite(s.baselineLoss)) out.push({ label: 'baseline', value: s.baselineLoss.toFixed(3), title: 'loss of the memoryless baseline' });
  if (finite(s.trainLoss)) out.push({ label: 'loss', value: s.trainLoss.toFixed(3), title: 'training loss of the last epoch' });
  if (finite(s.validLoss)) out.push({ label: 'val loss', value: s.validLoss.toFixed(3), title: 'validation loss' });
  if (s.tokensPerSecond) out.push({ label: 'tok/s', value: formatRate(s.tokensPerSecond), title: 'training throughput' });
  return out;
}

function formatRate(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(1)}M` : x >= 1e3 ? `${Math.round(x / 1e3)}k` : `${Math.round(x)}`;
}

/** The loss of every recorded step (metrics.jsonl), in step order. */
export function lossSeries(dir: string): { step: number[]; loss: number[] } {
  const step: number[] = [];
  const loss: number[] = [];
  for (const m of readJsonLines<Record<string, number>>(path.join(dir, RUN_FILES.metrics))) {
    if (m.trainLoss === undefined && m.step !== undefined && m.loss !== undefined) {
      step.push(m.step);
      loss.push(m.loss);
    }
  }
  return { step, loss };
}

/** A loss series cut to at most SPARK_POINTS values, keeping each bucket's extremes. */
export function sparkValues(step: ArrayLike<number>, loss: ArrayLike<number>, points = SPARK_POINTS): number[] {
  return minMaxIndices(step, loss, Math.max(1, Math.floor(points / 2))).map((i) => loss[i]);
}

/** Keys a user tunes most, in the order the duplicate editor offers them. */
const PREFERRED = [
  'train.optimizer.learningRate',
  'model.layers.*.hidden',
  'train.epochs',
  'train.steps',
  'train.batchSize',
  'data.sequenceLength',
  'model.dropout',
  'train.clipNorm',
  'train.optimizer.type',
  'model.embedding',
  'train.seed',
];

function schemaInfo(key: string, s: JsonSchema | undefined): EditableKey {
  const out: EditableKey = { key };
  if (!s) return out;
  if (s.type) out.type = Array.isArray(s.type) ? s.type.join(' | ') : s.type;
  if (s.enum) out.enum = s.enum.map(String);
  const min = s.minimum ?? s.exclusiveMinimum;
  const max = s.maximum ?? s.exclusiveMaximum;
  if (min !== undefined) out.minimum = min;
  if (s.minimum === undefined && s.exclusiveMinimum !== undefined) out.exclusiveMinimum = true;
  if (max !== undefined) out.maximum = max;
  if (s.description) out.description = s.description;
  if ('default' in s) out.default = valueText(s.default);
  return out;
}

/** Every settable key of the format (list items as index 0), with its schema summary: the editor's key list. */
export function schemaKeys(): EditableKey[] {
  const out: EditableKey[] = [];
  for (const k of SCHEMA_KEYS) {
    const s = schemaAt(k);
    if (!s || s.properties || k === 'name') continue;
    const key = k.replace(/\*/g, '0');
    if (s.type === 'array' && s.items?.properties) continue;
    out.push(schemaInfo(key, s));
  }
  return out;
}

/** The duplicate editor's starting rows: the keys changed since the compared run, then the usual ones. */
export function editableKeys(doc: Record<string, Json> | undefined, changed: string[], max = 6): EditableKey[] {
  if (!doc) return [];
  const flat = flatten(doc);
  const keys: string[] = [];
  const add = (k: string) => {
    if (!keys.includes(k) && k !== 'name' && schemaAt(k) && !schemaAt(k)!.properties) keys.push(k);
  };
  for (const k of changed) if (flat.has(k) || schemaAt(k)) add(k);
  for (const p of PREFERRED) {
    if (p.includes('*')) {
      for (const k of flat.keys()) if (new RegExp(`^${p.replace(/\./g, '\\.').replace('*', '\\d+')}$`).test(k)) add(k);
    } else if (flat.has(p)) add(p);
  }
  return keys.slice(0, Math.max(max, changed.length)).map((k) => ({ ...schemaInfo(k, schemaAt(k)), value: flat.has(k) ? valueText(flat.get(k)) : undefined }));
}

export interface CellSources {
  /** the model document the run was trained with, as data */
  doc?: Record<string, Json>;
  /** that of the run it is compared with */
  baseDoc?: Record<string, Json>;
  base?: { id: string; model: string; sameModel: boolean };
  loss: number[];
  inference: InferenceEntry[];
  /** the last sample of training */
  lastSample?: { step: number; text: string };
  device?: string;
  fileLabel: string;
}

/** A cell of the notebook from a run and what was read from its folder. */
export function buildCell(r: RunInfo, src: CellSources, now = Date.now()): NotebookCell {
  const changes = src.doc && src.baseDoc ? diffHyper(src.baseDoc, src.doc) : [];
  const diff: CellDiff | undefined = src.base && src.doc && src.baseDoc ? { against: src.base.id, label: src.base.sameModel ? 'vs previous run' : `vs ${src.base.model}`, changes } : undefined;
  const live = r.status === 'running' || r.status === 'queued';
  const total = r.startedMsg?.totalSteps;
  const lastInf = src.inference[src.inference.length - 1];
  let latest: NotebookCell['latest'];
  if (lastInf) latest = { kind: lastInf.kind === 'sample' ? 'sample' : 'prediction', text: inferenceText(lastInf) };
  else if (src.lastSample) latest = { kind: 'sample', text: src.lastSample.text, step: src.lastSample.step };
  else if (r.summary?.sample) latest = { kind: 'sample', text: r.summary.sample };
  const task = r.task ?? r.startedMsg?.task;
  const data = src.doc?.data as Record<string, Json> | undefined;
  return {
    id: r.id,
    model: r.model,
    modelFile: r.modelFile,
    fileLabel: src.fileLabel,
    task,
    status: r.status,
    started: r.started,
    finished: r.finished,
    durationMs: r.finished ? r.finished - r.started : live && r.status === 'running' ? now - r.started : r.summary ? r.summary.elapsedSeconds * 1000 : undefined,
    device: r.startedMsg?.device ?? r.summary?.device ?? src.device,
    progress:
      r.status === 'running' && r.last
        ? { step: r.last.step, totalSteps: total, epoch: r.last.epoch, epochs: r.startedMsg?.epochs, loss: r.last.losses[r.last.losses.length - 1], tokensPerSecond: r.last.tokensPerSecond, remainingMs: r.last.remainingMs }
        : undefined,
    ...(r.sweep ? { sweep: { ...r.sweep, value: finiteOr((r.summary as unknown as Record<string, unknown> | undefined)?.[r.sweep.metric ?? 'validLoss']) } } : {}),
    reading:
      r.status === 'running' && r.reading && !r.startedMsg
        ? { file: path.basename(r.reading.file), fraction: r.reading.fraction, remainingMs: Number.isFinite(r.reading.remainingMs) ? r.reading.remainingMs : undefined }
        : undefined,
    loss: src.loss,
    metrics: cellMetrics(r.summary),
    diff,
    latest,
    error: r.status === 'failed' ? r.error ?? 'failed' : undefined,
    hasCheckpoint: !live && !!(r.checkpoint || r.summary?.checkpoint) && fs.existsSync((r.checkpoint || r.summary?.checkpoint)!),
    resumable: canResume(r),
    inference: src.inference,
    ...(task === 'classification' && (data?.sequences !== undefined || data?.idColumn !== undefined) ? { numericInput: true } : {}),
    forecast: task === 'forecast' ? { window: Number(data?.window ?? schemaDefault('data.window') ?? 1), horizon: Number(data?.horizon ?? schemaDefault('data.horizon') ?? 1) } : undefined,
    editable: editableKeys(src.doc, changes.map((c) => c.key)),
  };
}

/** One line for an inference entry (the cell's "latest"). */
export function inferenceText(e: InferenceEntry): string {
  if (e.kind === 'sample') return e.text;
  if (e.kind === 'classify') return `"${e.text}" → ${e.label} (${(100 * (e.probabilities.find((p) => p.label === e.label)?.p ?? 0)).toFixed(0)}%)`;
  return `${e.steps} values after #${e.at}: ${e.forecast.slice(0, 6).map((v) => +v.toPrecision(4)).join(', ')}${e.forecast.length > 6 ? ', …' : ''}${e.rmse !== undefined ? ` (rmse ${e.rmse.toPrecision(3)})` : ''}`;
}

const finiteOr = (x: unknown): number | undefined => (finite(x) ? x : undefined);

/**
 * Cells grouped by model file (a sweep's runs in a group of their own; the side panel tabulates its
 * settings), runs oldest first; the group with the newest run last.
 */
export function groupCells(cells: readonly NotebookCell[]): CellGroup[] {
  const by = new Map<string, CellGroup>();
  for (const c of cells) {
    const at = cellGroupOf(c);
    let g = by.get(at.modelFile);
    if (!g) by.set(at.modelFile, (g = { ...at, cells: [] }));
    g.cells.push(c);
  }
  const order = (c: NotebookCell) => c.started;
  for (const g of by.values()) g.cells.sort((a, b) => order(a) - order(b) || (a.id < b.id ? -1 : 1));
  return [...by.values()].sort((a, b) => order(a.cells[a.cells.length - 1]) - order(b.cells[b.cells.length - 1]) || (a.modelFile < b.modelFile ? -1 : 1));
}

// ---- inference results ---------------------------------------------------------------------------

export function readInference(dir: string): InferenceEntry[] {
  return readJsonLines<InferenceEntry>(path.join(dir, INFERENCE_FILE)).filter((e) => e && typeof e.id === 'string' && typeof e.kind === 'string');
}

/** Adds an entry to the run's inference.jsonl (the whole file rewritten atomically; the newest kept). */
export function appendInference(dir: string, entry: InferenceEntry, keep = INFERENCE_KEEP): InferenceEntry[] {
  const all = [...readInference(dir), entry].slice(-keep);
  writeInference(dir, all);
  return all;
}

export function removeInference(dir: string, id: string): InferenceEntry[] {
  const all = readInference(dir).filter((e) => e.id !== id);
  writeInference(dir, all);
  return all;
}

function writeInference(dir: string, all: InferenceEntry[]): void {
  writeFileAtomic(path.join(dir, INFERENCE_FILE), all.map((e) => JSON.stringify(e)).join('\n') + (all.length ? '\n' : ''));
}

/** Forecast entry fields from the series and the forecast: context before `at`, the actual values, RMSE. */
export function forecastEntry(series: ArrayLike<number>, at: number, forecast: number[], window: number): { from: number; history: number[]; actual: (number | null)[]; rmse?: number } {
  const from = Math.max(0, at - Math.max(window, 2 * forecast.length, 12));
  const history = Array.from({ length: at - from }, (_, i) => series[from + i]);
  const actual = forecast.map((_, i) => (at + i < series.length ? series[at + i] : null));
  let se = 0;
  let n = 0;
  actual.forEach((a, i) => {
    if (a !== null) {
      se += (forecast[i] - a) ** 2;
      n++;
    }
  });
  return { from, history, actual, rmse: n ? Math.sqrt(se / n) : undefined };
}

// ---- duplicate with edited hyper-parameters ------------------------------------------------------

function keyPath(key: string): (string | number)[] {
  return key.split('.').map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}

/** Parses edited values (YAML text; empty = remove the key) and checks the keys exist in the format. */
export function parseChanges(changes: Record<string, string>): { values: Map<string, unknown>; problems: EditProblem[] } {
  const values = new Map<string, unknown>();
  const problems: EditProblem[] = [];
  const known = SCHEMA_KEYS.map((k) => k.replace(/\*/g, '0'));
  for (const [key, text] of Object.entries(changes)) {
    const s = schemaAt(key);
    if (!s || key === 'name') {
      const guess = didYouMean(key, known);
      problems.push({ key, message: key === 'name' ? 'the name is set by the copy' : `unknown key "${key}"${guess ? ` (did you mean "${guess}"?)` : ''}` });
      continue;
    }
    if (s.properties) {
      problems.push({ key, message: `"${key}" is a section; give one of its keys (${Object.keys(s.properties).slice(0, 4).join(', ')}…)` });
      continue;
    }
    if (text.trim() === '') {
      values.set(key, undefined);
      continue;
    }
    try {
      values.set(key, parseYaml(text));
    } catch (e) {
      problems.push({ key, message: `not a value: ${(e as Error).message.split('\n')[0]}` });
    }
  }
  return { values, problems };
}

/** Problems of one model document's text, each attributed to the changed key it is about ('' if none). */
function documentProblems(docText: string, file: string, keys: string[]): EditProblem[] {
  return validateModelText(docText, file).map((e) => {
    const k = e.where.key ?? '';
    const key = keys.find((c) => k === c || k.startsWith(`${c}.`) || c.startsWith(`${k}.`)) ?? '';
    return { key, message: e.hint ? `${e.message} (${e.hint})` : e.message };
  });
}

function unusedName(base: string, taken: Set<string>): string {
  const stem = base.replace(/-\d+$/, '');
  for (let i = 2; ; i++) if (!taken.has(`${stem}-${i}`)) return `${stem}-${i}`;
}

export interface DuplicateInput {
  /** the model file's current text */
  fileText: string;
  file: string;
  model: string;
  /** the run's model document text (the snapshot), the base of a copy */
  snapshotText: string;
  runId: string;
  changes: Record<string, string>;
  mode: DuplicateMode;
}

export interface DuplicateOutput {
  problems: EditProblem[];
  /** the model file's new text (absent when there are problems) */
  text?: string;
  /** the model to train: the copy's name, or the model itself (in place) */
  model?: string;
}

/**
 * A model file with the edits: a new model document (a copy of the run's document, named
 * `<model>-2`, `-3`, … with the changes and a comment saying where it came from) appended to the
 * file, or the model's own document changed in place (scalars replaced where they are, keeping the
 * file's layout). The edited document is validated against the schema first.
 */
export function duplicateModel(o: DuplicateInput): DuplicateOutput {
  const { values, problems } = parseChanges(o.changes);
  if (problems.length) return { problems };
  if (values.size === 0) return { problems: [{ key: '', message: 'change a value first' }] };
  const keys = [...values.keys()];
  const json = /\.json$/i.test(o.file);
  const taken = new Set<string>();
  for (const d of parseAllDocuments(o.fileText)) {
    const js = d.toJS() as Json;
    for (const m of Array.isArray(js) ? js : [js]) if (m && typeof m === 'object' && !Array.isArray(m) && typeof m.name === 'string') taken.add(m.name);
  }
  const summary = keys.map((k) => `${k}: ${values.get(k) === undefined ? '(removed)' : valueText(values.get(k))}`).join(', ');

  if (json) return duplicateJson(o, values, keys, taken);

  if (o.mode === 'new-model') {
    const src = parseAllDocuments(o.snapshotText).find((d) => (d.toJS() as { name?: string } | null)?.name === o.model);
    if (!src) return { problems: [{ key: '', message: `the run's model document has no model "${o.model}"` }] };
    const doc = src.clone();
    const name = unusedName(o.model, taken);
    for (const [k, v] of values) {
      if (v === undefined) doc.deleteIn(keyPath(k));
      else doc.setIn(keyPath(k), v);
    }
    doc.set('name', name);
    if (doc.directives) doc.directives.docStart = null;
    doc.commentBefore = ` ${name}: a copy of ${o.model} (run ${o.runId}) with ${summary}`;
    if (doc.contents && (isMap(doc.contents) || isSeq(doc.contents))) doc.contents.commentBefore = undefined;
    const docText = doc.toString();
    const bad = documentProblems(docText, o.file, keys);
    if (bad.length) return { problems: bad };
    const sep = o.fileText.length === 0 || o.fileText.endsWith('\n') ? '' : '\n';
    return { problems: [], text: `${o.fileText}${sep}---\n${docText}`, model: name };
  }

  // in place: edit the model's current document
  const docs = parseAllDocuments(o.fileText);
  const target = docs.find((d) => (d.toJS() as { name?: string } | null)?.name === o.model);
  if (!target) return { problems: [{ key: '', message: `${path.basename(o.file)} has no model "${o.model}" any more` }] };
  const edited = target.clone();
  for (const [k, v] of values) {
    if (v === undefined) edited.deleteIn(keyPath(k));
    else edited.setIn(keyPath(k), v);
  }
  const bad = documentProblems(edited.toString(), o.file, keys);
  if (bad.length) return { problems: bad };
  // scalars that exist are replaced in the text; anything structural reprints the documents
  const spans: { from: number; to: number; text: string }[] = [];
  let structural = false;
  for (const [k, v] of values) {
    const node = target.getIn(keyPath(k), true);
    if (v === undefined || v === null || typeof v === 'object' || !isScalar(node) || !node.range) {
      structural = true;
      break;
    }
    spans.push({ from: node.range[0], to: node.range[1], text: typeof v === 'string' ? scalarText(v) : String(v) });
  }
  if (!structural) {
    let text = o.fileText;
    for (const s of spans.sort((a, b) => b.from - a.from)) text = text.slice(0, s.from) + s.text + text.slice(s.to);
    return { problems: [], text, model: o.model };
  }
  const i = docs.findIndex((d) => d === (target as unknown));
  return { problems: [], text: docs.map((d, j) => (j === i ? edited.toString() : d.toString())).join(''), model: o.model };
}

function scalarText(v: string): string {
  const t = yamlStringify(v).trim();
  return t;
}

function duplicateJson(o: DuplicateInput, values: Map<string, unknown>, keys: string[], taken: Set<string>): DuplicateOutput {
  let file: Json;
  try {
    file = JSON.parse(o.fileText) as Json;
  } catch (e) {
    return { problems: [{ key: '', message: `${path.basename(o.file)} is not valid JSON: ${(e as Error).message}` }] };
  }
  const list = Array.isArray(file) ? file : [file];
  const pick = (text: string) => {
    try {
      const js = JSON.parse(text) as Json;
      return (Array.isArray(js) ? js : [js]).find((m) => m && typeof m === 'object' && !Array.isArray(m) && m.name === o.model) as Record<string, Json> | undefined;
    } catch {
      return modelDocument(text, o.model);
    }
  };
  const base = o.mode === 'new-model' ? pick(o.snapshotText) : (list.find((m) => m && typeof m === 'object' && !Array.isArray(m) && m.name === o.model) as Record<string, Json> | undefined);
  if (!base) return { problems: [{ key: '', message: `no model "${o.model}"` }] };
  const doc = new Document(JSON.parse(JSON.stringify(base)));
  for (const [k, v] of values) {
    if (v === undefined) doc.deleteIn(keyPath(k));
    else doc.setIn(keyPath(k), v);
  }
  const name = o.mode === 'new-model' ? unusedName(o.model, taken) : o.model;
  doc.set('name', name);
  const obj = doc.toJS() as Record<string, Json>;
  const bad = documentProblems(JSON.stringify(obj, null, 2), o.file, keys);
  if (bad.length) return { problems: bad };
  const out = o.mode === 'new-model' ? [...list, obj] : list.map((m) => (m && typeof m === 'object' && !Array.isArray(m) && m.name === o.model ? obj : m));
  return { problems: [], text: JSON.stringify(Array.isArray(file) || out.length > 1 ? out : out[0], null, 2) + '\n', model: name };
}
