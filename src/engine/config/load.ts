// Reading model files (DESIGN §2): YAML (several models as `---` documents) or JSON (one model or a
// list). Validation walks the YAML syntax tree against MODEL_SCHEMA so every problem carries the
// exact line and column of the key or value at fault, a dotted key path, a hint, and where it is
// obvious a quick fix (the editor shows them as diagnostics with code actions). Nothing unknown is
// ignored: an unknown key is an error with the nearest valid key suggested.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Document, isMap, isPair, isScalar, isSeq, LineCounter, Node as YNode, parseAllDocuments, Scalar, YAMLMap } from 'yaml';
import { UserError, UserErrors, Where } from '../errors';
import { JsonSchema, MODEL_SCHEMA } from './schema';
import { ModelConfig, OptimizerConfig } from './types';

export interface Range {
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
}

export interface Problem {
  error: UserError;
  /** the text span at fault (1-based, end exclusive) */
  range: Range;
  fix?: { range: Range; replacement: string; title: string };
}

export interface ModelAnchor {
  name: string | undefined;
  /** 1-based line of the document's first key */
  line: number;
  column: number;
}

// ---- small helpers --------------------------------------------------------------------------------

/** Damerau–Levenshtein (optimal string alignment) distance. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The closest candidate within a small edit distance (case-insensitive), if any. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const w = word.toLowerCase();
  for (const c of candidates) {
    const cl = c.toLowerCase();
    const dist = cl === w ? 0 : cl.startsWith(w) || w.startsWith(cl) ? 1 : editDistance(w, cl);
    if (dist < bestD) {
      bestD = dist;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (typeof v === 'string') return `string "${v}"`;
  if (typeof v === 'number') return `number ${v}`;
  if (typeof v === 'boolean') return `boolean ${v}`;
  if (Array.isArray(v)) return 'a list';
  return 'a mapping';
}

const TYPE_WORD: Record<string, string> = {
  object: 'a mapping of keys',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  boolean: 'true or false',
};

// ---- validation ---------------------------------------------------------------------------------

class Validator {
  readonly problems: Problem[] = [];
  readonly positions: Record<string, { line: number; column: number }> = {};

  constructor(
    private readonly file: string,
    private readonly lc: LineCounter,
  ) {}

  range(node: YNode | null | undefined, fallback?: Range): Range {
    const r = node?.range;
    if (!r) return fallback ?? { line: 1, column: 1, endLine: 1, endColumn: 1 };
    const a = this.lc.linePos(r[0]);
    const b = this.lc.linePos(r[1]);
    return { line: a.line, column: a.col, endLine: b.line, endColumn: b.col };
  }

  add(message: string, key: string, range: Range, hint?: string, fix?: Problem['fix']): void {
    this.problems.push({ error: new UserError(message, { file: this.file, line: range.line, column: range.column, key }, hint), range, fix });
  }

  /** Validates `node` against `schema`; `at` is the range to blame for a missing value. */
  check(node: YNode | null | undefined, schema: JsonSchema, key: string, at: Range): void {
    const range = node ? this.range(node, at) : at;
    if (Array.isArray(schema.type)) {
      // a union such as string | list of strings: a list is checked as the array member, else the scalar
      const arr = schema.type.includes('array') && isSeq(node);
      const scalar = schema.type.find((t) => t !== 'array' && t !== 'object') ?? 'string';
      const words = schema.type.map((t) => (t === 'array' ? `a list of ${TYPE_WORD[schema.items?.type as string] ?? 'values'}` : TYPE_WORD[t])).join(' or ');
      if (!arr && !isScalar(node)) {
        this.add(`expected ${words}, got ${describe(node ? (node as YNode).toJSON() : null)}`, key, range);
        return;
      }
      this.check(node, { ...schema, type: arr ? 'array' : scalar }, key, at);
      return;
    }
    if (schema.type === 'object') {
      if (!isMap(node)) {
        this.add(`expected ${TYPE_WORD.object}, got ${describe(node ? (node as YNode).toJSON() : null)}`, key, range);
        return;
      }
      this.checkMap(node, schema, key, range);
      return;
    }
    if (schema.type === 'array') {
      if (!isSeq(node)) {
        this.add(`expected ${TYPE_WORD.array}, got ${describe(node ? (node as YNode).toJSON() : null)}`, key, range);
        return;
      }
      if (schema.minItems !== undefined && node.items.length < schema.minItems)
        this.add(`needs at least ${schema.minItems} item${schema.minItems === 1 ? '' : 's'}`, key, range);
      node.items.forEach((item, i) => {
        const k = `${key}.${i}`;
        const r = this.range(item as YNode, range);
        this.positions[k] = { line: r.line, column: r.column };
        this.check(item as YNode, schema.items!, k, r);
      });
      return;
    }
    // scalars
    const value = isScalar(node) ? node.value : node ? (node as YNode).toJSON() : null;
    const got = describe(value);
    const want = schema.type!;
    const ok =
      (want === 'string' && typeof value === 'string') ||
      (want === 'boolean' && typeof value === 'boolean') ||
      (want === 'number' && typeof value === 'number' && Number.isFinite(value)) ||
      (want === 'integer' && typeof value === 'number' && Number.isInteger(value));
    if (!ok) {
      let hint: string | undefined;
      let fix: Problem['fix'];
      if (want === 'integer' && typeof value === 'number') hint = 'use a whole number';
      if (want === 'boolean' && typeof value === 'string' && /^(yes|no|on|off|true|false)$/i.test(value)) {
        const b = /^(yes|on|true)$/i.test(value) ? 'true' : 'false';
        hint = `write ${b}`;
        fix = { range, replacement: b, title: `Change to ${b}` };
      }
      if (schema.enum && typeof value === 'string') {
        this.checkEnum(value, schema, key, range);
        return;
      }
      this.add(`expected ${TYPE_WORD[want]}, got ${got}`, key, range, hint ?? (schema.enum ? `one of ${schema.enum.join(', ')}` : undefined), fix);
      return;
    }
    if (schema.enum && !schema.enum.includes(value as string)) {
      this.checkEnum(String(value), schema, key, range);
      return;
    }
    if (typeof value === 'number') this.checkRange(value, schema, key, range);
    if (schema.pattern && typeof value === 'string' && !new RegExp(schema.pattern).test(value))
      this.add(`"${value}" is not a valid value`, key, range, 'use letters, digits, ".", "_" and "-", starting with a letter or digit');
  }

  private checkEnum(value: string, schema: JsonSchema, key: string, range: Range): void {
    const options = schema.enum!.map(String);
    const guess = didYouMean(value, options);
    this.add(
      `"${value}" must be one of ${options.join(', ')}`,
      key,
      range,
      guess ? `did you mean "${guess}"?` : undefined,
      guess ? { range, replacement: guess, title: `Change to "${guess}"` } : undefined,
    );
  }

  private checkRange(v: number, s: JsonSchema, key: string, range: Range): void {
    const fix = (n: number) => ({ range, replacement: String(n), title: `Change to ${n}` });
    if (s.minimum !== undefined && v < s.minimum) this.add(`${v} is below the minimum ${s.minimum}`, key, range, `use a value ≥ ${s.minimum}`, fix(s.minimum));
    else if (s.maximum !== undefined && v > s.maximum) this.add(`${v} is above the maximum ${s.maximum}`, key, range, `use a value ≤ ${s.maximum}`, fix(s.maximum));
    else if (s.exclusiveMinimum !== undefined && v <= s.exclusiveMinimum) this.add(`${v} must be greater than ${s.exclusiveMinimum}`, key, range);
    else if (s.exclusiveMaximum !== undefined && v >= s.exclusiveMaximum) this.add(`${v} must be less than ${s.exclusiveMaximum}`, key, range);
  }

  private checkMap(node: YAMLMap, schema: JsonSchema, key: string, range: Range): void {
    const props = schema.properties ?? {};
    const seen = new Set<string>();
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const kNode = pair.key as YNode | null;
      const name = isScalar(kNode) ? String(kNode.value) : String((kNode as YNode | null)?.toJSON?.() ?? '');
      const kRange = this.range(kNode, range);
      const full = key ? `${key}.${name}` : name;
      if (seen.has(name)) {
        this.add(`duplicate key "${name}"`, full, kRange, 'remove one of them');
        continue;
      }
      seen.add(name);
      const sub = props[name];
      if (!sub) {
        const guess = didYouMean(name, Object.keys(props));
        this.add(
          `unknown key "${name}"`,
          full,
          kRange,
          guess ? `did you mean "${guess}"?` : `valid keys here: ${Object.keys(props).join(', ')}`,
          guess ? { range: kRange, replacement: guess, title: `Change to "${guess}"` } : undefined,
        );
        continue;
      }
      this.positions[full] = { line: kRange.line, column: kRange.column };
      const vNode = pair.value as YNode | null;
      this.check(vNode, sub, full, vNode ? this.range(vNode, kRange) : kRange);
    }
    for (const req of schema.required ?? []) {
      if (!seen.has(req)) {
        const full = key ? `${key}.${req}` : req;
        this.add(`missing required key "${req}"`, full, range, `add ${req}: …${key ? ` under ${key}` : ''}`);
      }
    }
  }
}

// ---- defaults -----------------------------------------------------------------------------------

type Json = Record<string, unknown>;

function obj(v: unknown): Json {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {};
}

function defaultsOf(schema: JsonSchema, raw: Json): Json {
  const out: Json = {};
  for (const [k, s] of Object.entries(schema.properties ?? {})) {
    if (raw[k] !== undefined) out[k] = raw[k];
    else if (s.default !== undefined) out[k] = s.default;
  }
  return out;
}

function resolve(raw: Json, file: string, line: number, positions: ModelConfig['positions']): ModelConfig {
  const P = MODEL_SCHEMA.properties!;
  const top = defaultsOf(MODEL_SCHEMA, raw);
  const data = defaultsOf(P.data, obj(raw.data));
  const model = defaultsOf(P.model, obj(raw.model));
  const train = defaultsOf(P.train, obj(raw.train));
  const optRaw = obj(obj(raw.train).optimizer);
  const opt = defaultsOf(P.train.properties!.optimizer, optRaw) as unknown as OptimizerConfig;
  const adamish = opt.type === 'adam' || opt.type === 'adamw';
  opt.learningRate ??= adamish ? 0.001 : 1;
  opt.weightDecay ??= opt.type === 'adamw' ? 0.01 : 0;
  const layerSchema = P.model.properties!.layers.items!;
  const layers = ((raw.model as Json | undefined)?.layers as Json[] | undefined ?? []).map((l) => defaultsOf(layerSchema, obj(l)));
  const sources = (Array.isArray(data.source) ? data.source : [data.source ?? '']).map(String);
  const source = sources[0];
  const resolveSrc = (src: string) => (src.startsWith('builtin:') ? src : path.resolve(path.dirname(file), src));
  const epochs = train.epochs as number | undefined;
  const steps = train.steps as number | undefined;
  return {
    name: String(top.name),
    task: top.task as ModelConfig['task'],
    data: {
      source: resolveSrc(source),
      sources: sources.map(resolveSrc),
      sourceAsWritten: source,
      split: data.split as 'tail' | 'random',
      pooling: data.pooling as 'last' | 'mean',
      tokens: data.tokens as 'char' | 'word',
      preprocess: data.preprocess as 'none' | 'letters',
      minFrequency: data.minFrequency as number,
      sequenceLength: data.sequenceLength as number,
      validation: data.validation as number,
      partition: data.partition as 'sequential' | 'random',
      column: data.column as string | undefined,
      window: data.window as number,
      horizon: data.horizon as number,
      transform: data.transform as ModelConfig['data']['transform'],
      copyLength: data.copyLength as number,
      season: data.season as number | undefined,
    },
    model: {
      embedding: model.embedding as number,
      dropout: model.dropout as number,
      init: defaultsOf(P.model.properties!.init, obj(obj(raw.model).init)) as unknown as ModelConfig['model']['init'],
      layers: layers as unknown as ModelConfig['model']['layers'],
    },
    train: {
      epochs: steps === undefined ? (epochs ?? 10) : undefined,
      steps,
      batchSize: train.batchSize as number,
      optimizer: opt,
      clipNorm: train.clipNorm as number,
      seed: train.seed as number,
      device: train.device as 'auto' | 'cuda' | 'cpu',
      carryState: train.carryState as boolean,
      stepsPerRun: train.stepsPerRun as number,
      schedule: defaultsOf(P.train.properties!.schedule, obj(obj(raw.train).schedule)) as unknown as ModelConfig['train']['schedule'],
      ...(obj(raw.train).earlyStopping
        ? { earlyStopping: defaultsOf(P.train.properties!.earlyStopping, obj(obj(raw.train).earlyStopping)) as unknown as { patience: number; minDelta: number } }
        : {}),
    },
    file,
    line,
    positions,
  };
}

// ---- documents ----------------------------------------------------------------------------------

interface ParsedModel {
  node: YNode;
  raw: Json;
  line: number;
  column: number;
  positions: Record<string, { line: number; column: number }>;
}

function parseDocs(text: string, file: string): { models: ParsedModel[]; problems: Problem[] } {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false }) as Document[] | { errors: unknown[] };
  const problems: Problem[] = [];
  const models: ParsedModel[] = [];
  if (!Array.isArray(docs)) return { models, problems };
  const isJson = /\.json$/i.test(file);
  const names = new Map<string, number>();
  for (const doc of docs) {
    let syntax = false;
    for (const e of doc.errors) {
      const [a, b] = e.pos;
      const p = lc.linePos(a);
      const q = lc.linePos(b);
      const range = { line: p.line, column: p.col, endLine: q.line, endColumn: q.col };
      problems.push({
        error: new UserError(`syntax error: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+.*$/, '')}`, { file, line: p.line, column: p.col }, isJson ? 'the file must be valid JSON' : 'the file must be valid YAML'),
        range,
      });
      syntax = true;
    }
    if (syntax) continue;
    const root = doc.contents as YNode | null;
    if (root === null || (isScalar(root) && root.value === null)) continue; // empty document
    const items: YNode[] = isSeq(root) ? (root.items as YNode[]) : [root];
    for (const node of items) {
      const v = new Validator(file, lc);
      const r = v.range(node);
      v.check(node, MODEL_SCHEMA, '', r);
      const raw = (node.toJSON?.() ?? {}) as Json;
      // cross-key rules the schema cannot say
      const tr = obj(raw.train);
      if (tr.epochs !== undefined && tr.steps !== undefined) {
        const pos = v.positions['train.steps'];
        const rr = pos ? { line: pos.line, column: pos.column, endLine: pos.line, endColumn: pos.column + 5 } : r;
        v.add('give train.epochs or train.steps, not both', 'train.steps', rr, 'remove one of them');
      }
      const task = (raw.task as string | undefined) ?? 'language-model';
      if (task !== 'copy' && task !== 'adding' && (raw.data === undefined || obj(raw.data).source === undefined)) {
        const pos = v.positions.data;
        const rr = pos ? { line: pos.line, column: pos.column, endLine: pos.line, endColumn: pos.column + 4 } : r;
        v.add(`missing required key "${raw.data === undefined ? 'data' : 'source'}"`, raw.data === undefined ? 'data' : 'data.source', rr, `a ${task} model reads its data from data.source`);
      }
      if (raw.task === 'forecast' && obj(raw.data).column === undefined) {
        const pos = v.positions.data;
        const rr = pos ? { line: pos.line, column: pos.column, endLine: pos.line, endColumn: pos.column + 4 } : r;
        v.add('a forecast needs data.column, the CSV column to forecast', 'data.column', rr, 'add column: <header name> under data');
      }
      if (tr.earlyStopping !== undefined && !(Number(obj(raw.data).validation ?? 0.1) > 0)) {
        const pos = v.positions['train.earlyStopping'];
        const rr = pos ? { line: pos.line, column: pos.column, endLine: pos.line, endColumn: pos.column + 13 } : r;
        v.add('train.earlyStopping needs a validation split', 'train.earlyStopping', rr, 'set data.validation above 0 (e.g. 0.1)');
      }
      if (typeof raw.name === 'string') {
        const prev = names.get(raw.name);
        const pos = v.positions.name;
        if (prev !== undefined && pos) {
          v.add(`a model named "${raw.name}" is already defined on line ${prev}`, 'name', { line: pos.line, column: pos.column, endLine: pos.line, endColumn: pos.column + 4 }, 'give each model in a file its own name');
        } else if (pos) names.set(raw.name, pos.line);
      }
      problems.push(...v.problems);
      if (isMap(node)) {
        const first = node.items[0]?.key as YNode | undefined;
        const fr = v.range(first ?? node);
        if (v.problems.length === 0) models.push({ node, raw, line: fr.line, column: fr.column, positions: v.positions });
      }
    }
  }
  return { models, problems };
}

/** Every problem of a model file, without throwing (editor diagnostics). */
export function diagnoseModelText(text: string, file: string): Problem[] {
  const { problems } = parseDocs(text, file);
  const known = new Set<string>();
  return problems.filter((p) => {
    const k = `${p.error.where.line}:${p.error.where.column}:${p.error.message}`;
    if (known.has(k)) return false;
    known.add(k);
    return true;
  });
}

/** The same problems as UserErrors. */
export function validateModelText(text: string, file: string): UserError[] {
  return diagnoseModelText(text, file).map((p) => p.error);
}

/** All models of a file; throws UserErrors listing every problem. */
export function parseModelFile(text: string, file: string): ModelConfig[] {
  const { models, problems } = parseDocs(text, file);
  if (problems.length === 1) throw problems[0].error;
  if (problems.length > 1) throw new UserErrors(problems.map((p) => p.error));
  if (models.length === 0) throw new UserError('the file holds no model', { file, line: 1 }, 'add a model: name, data, model, train');
  return models.map((m) => resolve(m.raw, file, m.line, m.positions));
}

function readModelText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `model file not found: ${file}` : `cannot read the model file ${file}: ${(e as Error).message}`, { file }, 'check the path');
  }
}

export function loadModelFiles(file: string): ModelConfig[] {
  const abs = path.resolve(file);
  return parseModelFile(readModelText(abs), abs);
}

/** One model of a file: the one named `modelName`, else the first. */
export function loadModelFile(file: string, modelName?: string): ModelConfig {
  const models = loadModelFiles(file);
  if (modelName === undefined) return models[0];
  const m = models.find((c) => c.name === modelName);
  if (!m) {
    const guess = didYouMean(modelName, models.map((c) => c.name));
    throw new UserError(
      `no model named "${modelName}" in this file`,
      { file: path.resolve(file), key: '--model' },
      guess ? `did you mean "${guess}"? (models: ${models.map((c) => c.name).join(', ')})` : `models: ${models.map((c) => c.name).join(', ')}`,
    );
  }
  return m;
}

/** Where a key of a loaded model is (falls back to the nearest parent key, then the model). */
export function whereOf(cfg: ModelConfig, keyPath: string): Where {
  let k = keyPath;
  for (;;) {
    const pos = cfg.positions?.[k];
    if (pos) return { file: cfg.file, line: pos.line, column: pos.column, key: keyPath };
    const dot = k.lastIndexOf('.');
    if (dot < 0) break;
    k = k.slice(0, dot);
  }
  return { file: cfg.file, line: cfg.line, key: keyPath };
}

/** Model documents and their first line, for CodeLens; tolerant of broken text, never throws. */
export function modelAnchors(text: string): ModelAnchor[] {
  const out: ModelAnchor[] = [];
  try {
    const lc = new LineCounter();
    const docs = parseAllDocuments(text, { lineCounter: lc, uniqueKeys: false });
    if (!Array.isArray(docs)) return out;
    for (const doc of docs) {
      const root = doc.contents as YNode | null;
      if (!root) continue;
      const items: YNode[] = isSeq(root) ? (root.items as YNode[]) : [root];
      for (const node of items) {
        if (!isMap(node) || node.items.length === 0) continue;
        const first = node.items[0].key as YNode | undefined;
        const off = first?.range?.[0] ?? node.range?.[0] ?? 0;
        const p = lc.linePos(off);
        const nameNode = node.get('name', true) as Scalar | undefined;
        out.push({ name: typeof nameNode?.value === 'string' ? nameNode.value : undefined, line: p.line, column: p.col });
      }
    }
  } catch {
    // broken text: no anchors
  }
  return out;
}
