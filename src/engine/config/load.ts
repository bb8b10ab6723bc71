// Reading model files (DESIGN §2): YAML (several models as `---` documents) or JSON (one model or a
// list of models; JSON is read by the same YAML parser, JSON being a subset of YAML).
//
// Why a hand-written validator instead of a JSON Schema library: every problem must carry the exact
// 1-based line and column of the key or value at fault, a dotted key path (`model.layers.0.hidden`),
// a hint, and where it is obvious a quick fix, so validation walks the YAML syntax tree (with a
// LineCounter) against MODEL_SCHEMA (./schema.ts) and knows only the keywords that schema uses.
// Nothing unknown is ignored: an unknown key is an error with the nearest valid key suggested.
// All problems are collected; the CLI prints them together, the editor shows them as diagnostics.
//
// After validation, defaults (the schema's `default`s plus the few that depend on other keys) are
// resolved into a full ModelConfig, with the position of every written key kept in `positions` so
// that later stages (data loading, training) can raise UserErrors pointing at a key (whereOf).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Document, isAlias, isMap, isPair, isScalar, isSeq, LineCounter, Node as YNode, parseAllDocuments, Scalar, YAMLMap } from 'yaml';
import { UserError, UserErrors, Where } from '../errors';
import { JsonSchema, JsonType, MODEL_SCHEMA, schemaAt, SWEEP_KEYS } from './schema';
import { GENERATED_TASKS, ModelConfig, OptimizerConfig, TaskKind } from './types';
import { checkCell, explainCellToken } from '../nn/cellspec';

/** A span of text: 1-based lines and columns, end exclusive. */
export interface Range {
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
}

/** One problem of a model file, for the editor: the error, the span at fault, and maybe a quick fix. */
export interface Problem {
  error: UserError;
  /** the text span at fault (1-based, end exclusive) */
  range: Range;
  /** replace `range` with `replacement` (title: the code action's label) */
  fix?: { range: Range; replacement: string; title: string };
}

export interface ModelAnchor {
  name: string | undefined;
  /** 1-based line of the document's first key */
  line: number;
  column: number;
}

type Position = { line: number; column: number };

// ---- suggestions ------------------------------------------------------------------------------

/** Damerau–Levenshtein (optimal string alignment) distance. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
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

/**
 * The closest candidate, compared case-insensitively: a case-only difference, a prefix either way
 * (of at least 3 characters: `learning` → `learningRate`), or at most 2 edits (3 for words of 9+
 * characters); undefined when nothing is that close.
 */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const w = word.toLowerCase();
  for (const c of candidates) {
    const cl = c.toLowerCase();
    const prefix = Math.min(w.length, cl.length) >= 3 && (cl.startsWith(w) || w.startsWith(cl));
    const dist = cl === w ? 0 : prefix ? 1 : editDistance(w, cl);
    if (dist < bestD) {
      bestD = dist;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

// ---- validation -------------------------------------------------------------------------------

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

const isIndex = (s: string) => /^\d+$/.test(s);

/** Values people write for an enum value that spelling distance would map wrongly (GPU → cpu). */
const ENUM_ALIASES: Record<string, string> = { gpu: 'cuda', lm: 'language-model' };

/** Validates one model node against MODEL_SCHEMA, collecting problems and the position of every key. */
class Validator {
  readonly problems: Problem[] = [];
  /** dotted key path → range of the key as written (list items: the item) */
  readonly keys: Record<string, Range> = {};
  /** alias targets being checked (guards against `&a [*a]`) */
  private readonly active = new Set<YNode>();

  constructor(
    private readonly file: string,
    private readonly lc: LineCounter,
    private readonly doc: Document,
  ) {}

  range(node: YNode | null | undefined, fallback?: Range): Range {
    const r = node?.range;
    if (!r) return fallback ?? { line: 1, column: 1, endLine: 1, endColumn: 1 };
    const a = this.lc.linePos(r[0]);
    const b = this.lc.linePos(r[1]);
    return { line: a.line, column: a.col, endLine: b.line, endColumn: b.col };
  }

  add(message: string, key: string, range: Range, hint?: string, fix?: Problem['fix']): void {
    this.problems.push({ error: new UserError(message, { file: this.file, line: range.line, column: range.column, key: key || undefined }, hint), range, fix });
  }

  positions(): Record<string, Position> {
    const out: Record<string, Position> = {};
    for (const [k, r] of Object.entries(this.keys)) out[k] = { line: r.line, column: r.column };
    return out;
  }

  /** Validates `node` against `schema`; `at` is the range to blame when the value is missing. */
  check(node: YNode | null | undefined, schema: JsonSchema, key: string, at: Range): void {
    // an alias (`*name`) is checked as the node it refers to, but blamed where it is written
    if (isAlias(node)) {
      const target = node.resolve(this.doc) as YNode | undefined;
      if (!target || this.active.has(target)) {
        this.add(`the alias *${node.source} cannot be used here`, key, this.range(node, at));
        return;
      }
      this.active.add(target);
      this.check(target, schema, key, this.range(node, at));
      this.active.delete(target);
      return;
    }
    const range = node ? this.range(node, at) : at;
    const json = (n: YNode | null | undefined): unknown => (isScalar(n) ? n.value : n ? n.toJSON() : null);
    if (schema.anyOf) {
      // one of several shapes (a string or a mapping): checked as the member of the node's kind
      const member = schema.anyOf.find((m) => (isMap(node) ? m.type === 'object' : isSeq(node) ? m.type === 'array' : m.type !== 'object' && m.type !== 'array'));
      if (!member) {
        this.add(`expected ${schema.anyOf.map((m) => TYPE_WORD[m.type as string] ?? 'a value').join(' or ')}, got ${describe(json(node))}`, key, range);
        return;
      }
      this.check(node, member, key, at);
      return;
    }
    if (Array.isArray(schema.type)) {
      // a union such as `string | list of strings`: a list is checked as the list member, else the scalar
      const list = schema.type.includes('array') && isSeq(node);
      // the scalar member the value is (a number among string | number), else the first
      const v = isScalar(node) ? node.value : undefined;
      const scalars = schema.type.filter((t) => t !== 'array' && t !== 'object');
      const scalar = scalars.find((t) => (t === 'number' || t === 'integer' ? typeof v === 'number' : t === 'boolean' ? typeof v === 'boolean' : typeof v === 'string')) ?? scalars[0] ?? 'string';
      if (!list && !isScalar(node)) {
        const words = schema.type.map((t) => (t === 'array' ? `a list of ${TYPE_WORD[schema.items?.type as string] ?? 'values'}` : TYPE_WORD[t])).join(' or ');
        this.add(`expected ${words}, got ${describe(json(node))}`, key, range);
        return;
      }
      this.check(node, { ...schema, type: list ? 'array' : scalar }, key, at);
      return;
    }
    if (schema.type === 'object') {
      if (!isMap(node)) this.add(`expected ${TYPE_WORD.object}, got ${describe(json(node))}`, key, range);
      else this.checkMap(node, schema, key);
      return;
    }
    if (schema.type === 'array') {
      if (!isSeq(node)) {
        this.add(`expected ${TYPE_WORD.array}, got ${describe(json(node))}`, key, range);
        return;
      }
      if (schema.minItems !== undefined && node.items.length < schema.minItems)
        this.add(`needs at least ${schema.minItems} item${schema.minItems === 1 ? '' : 's'}`, key, range);
      node.items.forEach((item, i) => {
        const k = `${key}.${i}`;
        const r = this.range(item as YNode, range);
        this.keys[k] = r;
        this.check(item as YNode, schema.items!, k, r);
      });
      return;
    }
    this.checkScalar(node, json(node), schema, key, range);
  }

  private checkScalar(node: YNode | null | undefined, value: unknown, schema: JsonSchema, key: string, range: Range): void {
    const want = schema.type as JsonType; // a single scalar type here (unions are split in check)
    const ok =
      (want === 'string' && typeof value === 'string') ||
      (want === 'boolean' && typeof value === 'boolean') ||
      (want === 'number' && typeof value === 'number' && Number.isFinite(value)) ||
      (want === 'integer' && typeof value === 'number' && Number.isInteger(value));
    if (!ok) {
      if (schema.enum && typeof value === 'string') return this.checkEnum(value, schema, key, range);
      let hint: string | undefined = schema.enum ? `one of ${schema.enum.join(', ')}` : undefined;
      let fix: Problem['fix'];
      const change = (to: string) => ({ range, replacement: to, title: `Change to ${to}` });
      if (want === 'integer' && typeof value === 'number' && Number.isFinite(value)) {
        const n = Math.max(Math.round(value), schema.minimum ?? -Infinity);
        hint = 'use a whole number';
        fix = change(String(n));
      } else if ((want === 'number' || want === 'integer') && typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) {
        const n = Number(value);
        if (want === 'number' || Number.isInteger(n)) {
          hint = 'write the number without quotes';
          fix = change(String(n));
        }
      } else if (want === 'boolean' && typeof value === 'string' && /^(yes|no|on|off|true|false|y|n)$/i.test(value)) {
        const b = /^(yes|on|true|y)$/i.test(value) ? 'true' : 'false';
        hint = `write ${b}`;
        fix = change(b);
      }
      this.add(`expected ${TYPE_WORD[want]}, got ${node ? describe(value) : 'nothing'}`, key, range, hint, fix);
      return;
    }
    if (schema.enum && !schema.enum.includes(value as string)) return this.checkEnum(String(value), schema, key, range);
    if (typeof value === 'number') this.checkRange(value, schema, key, range);
    if (typeof value === 'string') {
      if (schema.minLength !== undefined && value.length < schema.minLength) this.add(value === '' ? 'must not be empty' : `needs at least ${schema.minLength} characters`, key, range);
      else if (schema.pattern && !new RegExp(schema.pattern).test(value)) {
        const what = key.split('.').filter((p) => !isIndex(p)).pop() ?? 'value';
        this.add(`"${value}" is not a valid ${what}`, key, range, schema.patternErrorMessage ?? `it must match ${schema.pattern}`);
      }
    }
  }

  private checkEnum(value: string, schema: JsonSchema, key: string, range: Range): void {
    const options = schema.enum!.map(String);
    const alias = ENUM_ALIASES[value.toLowerCase()];
    const guess = alias !== undefined && options.includes(alias) ? alias : didYouMean(value, options);
    this.add(
      `"${value}" must be one of ${options.join(', ')}`,
      key,
      range,
      guess ? `did you mean "${guess}"?` : undefined,
      guess ? { range, replacement: guess, title: `Change to "${guess}"` } : undefined,
    );
  }

  /** Bounds; the quick fix is the nearest valid value where there is one (an inclusive bound). */
  private checkRange(v: number, s: JsonSchema, key: string, range: Range): void {
    const fix = (n: number) => ({ range, replacement: String(n), title: `Change to ${n}` });
    if (s.minimum !== undefined && v < s.minimum) this.add(`${v} is below the minimum ${s.minimum}`, key, range, `use a value ≥ ${s.minimum}`, fix(s.minimum));
    else if (s.maximum !== undefined && v > s.maximum) this.add(`${v} is above the maximum ${s.maximum}`, key, range, `use a value ≤ ${s.maximum}`, fix(s.maximum));
    else if (s.exclusiveMinimum !== undefined && v <= s.exclusiveMinimum) this.add(`${v} must be greater than ${s.exclusiveMinimum}`, key, range);
    else if (s.exclusiveMaximum !== undefined && v >= s.exclusiveMaximum) this.add(`${v} must be less than ${s.exclusiveMaximum}`, key, range);
  }

  private checkMap(node: YAMLMap, schema: JsonSchema, key: string): void {
    const props = schema.properties ?? {};
    const mapRange = this.range(node);
    const nameOf = (k: unknown) => (isScalar(k) ? String(k.value) : String((k as YNode | null)?.toJSON?.() ?? ''));
    const written = new Set(node.items.filter(isPair).map((p) => nameOf(p.key)));
    const seen = new Set<string>();
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const kNode = pair.key as YNode | null;
      const name = nameOf(kNode);
      const kRange = this.range(kNode, mapRange);
      const full = key ? `${key}.${name}` : name;
      if (seen.has(name)) {
        this.add(`duplicate key "${name}"`, full, kRange, 'remove one of them');
        continue;
      }
      seen.add(name);
      const sub = props[name];
      if (!sub && schema.additionalProperties === true) {
        // a free-form map (sweep): its entries are checked by crossKeyRules; remember their places
        this.keys[full] = kRange;
        continue;
      }
      if (!sub && typeof schema.additionalProperties === 'object') {
        // a map of free keys whose values share a schema (a cell's equations, its init)
        this.keys[full] = kRange;
        const vNode = pair.value as YNode | null;
        this.check(vNode, schema.additionalProperties, full, vNode ? this.range(vNode, kRange) : kRange);
        continue;
      }
      if (!sub) {
        const guess = didYouMean(name, Object.keys(props));
        // no quick fix when the suggested key is already there (it would only make a duplicate)
        const fixable = guess !== undefined && !written.has(guess);
        this.add(
          `unknown key "${name}"`,
          full,
          kRange,
          guess ? `did you mean "${guess}"?` : `valid keys here: ${Object.keys(props).join(', ')}`,
          fixable ? { range: kRange, replacement: guess, title: `Change to "${guess}"` } : undefined,
        );
        continue;
      }
      this.keys[full] = kRange;
      // `key:` with nothing after it: blame the key (the parser places the empty value after the colon)
      const vNode = pair.value as YNode | null;
      const empty = !vNode || (isScalar(vNode) && vNode.value === null && (!vNode.range || vNode.range[0] === vNode.range[1]));
      this.check(empty ? null : vNode, sub, full, empty ? kRange : this.range(vNode, kRange));
    }
    // a missing key is blamed on the start of the mapping (the span: up to the end of its first key)
    const firstKey = (node.items[0]?.key ?? undefined) as YNode | undefined;
    const firstEnd = firstKey?.range ? this.range(firstKey) : mapRange;
    const blame: Range = { line: mapRange.line, column: mapRange.column, endLine: firstEnd.endLine, endColumn: firstEnd.endColumn };
    for (const req of schema.required ?? []) {
      if (!seen.has(req)) this.add(`missing required key "${req}"`, key ? `${key}.${req}` : req, blame, `add ${req}: …${key ? ` under ${key}` : ''}`);
    }
    // mutually exclusive keys: dependencies { a: { not: { required: [b] } } }
    for (const [dep, sub] of Object.entries(schema.dependencies ?? {})) {
      const others = sub.not?.required ?? [];
      if (seen.has(dep) && others.length > 0 && others.every((o) => seen.has(o))) {
        const full = key ? `${key}.${dep}` : dep;
        this.add(sub.errorMessage ?? `"${dep}" cannot be given with ${others.join(', ')}`, full, this.keys[full], 'remove one of them');
      }
    }
  }
}

// ---- defaults ---------------------------------------------------------------------------------

type Json = Record<string, unknown>;

function obj(v: unknown): Json {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {};
}

/** The written keys of `raw` plus the schema's defaults for the others. */
function withDefaults(schema: JsonSchema, raw: unknown): Json {
  const r = obj(raw);
  const out: Json = {};
  for (const [k, s] of Object.entries(schema.properties ?? {})) {
    if (r[k] !== undefined) out[k] = r[k];
    else if (s.default !== undefined) out[k] = s.default;
  }
  return out;
}

/** A validated model document → the full ModelConfig the engine consumes. */
function resolve(raw: Json, file: string, line: number, positions: Record<string, Position>): ModelConfig {
  const P = MODEL_SCHEMA.properties!;
  const top = withDefaults(MODEL_SCHEMA, raw);
  const data = withDefaults(P.data, raw.data);
  const model = withDefaults(P.model, raw.model);
  const rawTrain = obj(raw.train);
  const train = withDefaults(P.train, rawTrain);
  // defaults that depend on the optimizer type
  const opt = withDefaults(P.train.properties!.optimizer, rawTrain.optimizer) as unknown as OptimizerConfig;
  opt.learningRate ??= opt.type === 'adam' || opt.type === 'adamw' ? 0.001 : 1;
  opt.weightDecay ??= opt.type === 'adamw' ? 0.01 : 0;
  const layerSchema = P.model.properties!.layers.items!;
  const layers = ((obj(raw.model).layers as unknown[] | undefined) ?? []).map((l) => withDefaults(layerSchema, l));
  // data sources: relative to the model file's folder, `builtin:<name>` kept as is; a model without
  // one (copy, adding) gets the folder itself, so that `source` is always an absolute path
  const written = (Array.isArray(data.source) ? data.source : [data.source ?? '']).map(String);
  const resolveSrc = (src: string) => (src.startsWith('builtin:') ? src : path.resolve(path.dirname(file), src));
  // epochs xor steps (validation rejects both); neither → 10 epochs
  const steps = train.steps as number | undefined;
  const epochs = steps === undefined ? ((train.epochs as number | undefined) ?? 10) : undefined;
  return {
    name: String(top.name),
    task: top.task as TaskKind,
    data: {
      source: resolveSrc(written[0]),
      sources: written.map(resolveSrc),
      sourceAsWritten: written[0],
      split: (typeof data.split === 'object' && data.split ? { ...(data.split as object), file: resolveSrc(String((data.split as { file: string }).file)) } : data.split) as ModelConfig['data']['split'],
      pooling: data.pooling as 'last' | 'mean',
      tokens: data.tokens as 'char' | 'word',
      preprocess: data.preprocess as 'none' | 'letters',
      minFrequency: data.minFrequency as number,
      sequenceLength: data.sequenceLength as number,
      validation: data.validation as number,
      validationTokens: data.validationTokens as number,
      partition: data.partition as 'sequential' | 'random',
      column: data.column as string | undefined,
      columns: data.columns as string[] | undefined,
      target: data.target as string | undefined,
      categorical: (data.categorical as string[] | undefined) ?? [],
      missing: data.missing as ModelConfig['data']['missing'],
      sequences: data.sequences === undefined ? undefined : resolveSrc(String(data.sequences)),
      labels: data.labels === undefined ? undefined : { ...(data.labels as { id?: string; label?: string }), file: resolveSrc(String((data.labels as { file: string }).file)) },
      idColumn: data.idColumn as string | undefined,
      probe: data.probe === undefined ? undefined : String(data.probe),
      scale: data.scale as 'standard' | 'none',
      sequenceLengthGiven: obj(raw.data).sequenceLength !== undefined,
      textColumn: data.textColumn as string | undefined,
      labelColumn: data.labelColumn as string | undefined,
      window: data.window as number,
      horizon: data.horizon as number,
      transform: data.transform as ModelConfig['data']['transform'],
      copyLength: data.copyLength as number,
      values: data.values as number,
      rate: data.rate as number,
      noise: data.noise as number,
      season: data.season as number | undefined,
    },
    model: {
      embedding: model.embedding as number,
      dropout: model.dropout as number,
      init: withDefaults(P.model.properties!.init, obj(raw.model).init) as unknown as ModelConfig['model']['init'],
      layers: layers as unknown as ModelConfig['model']['layers'],
    },
    train: {
      epochs,
      steps,
      batchSize: train.batchSize as number,
      optimizer: opt,
      clipNorm: train.clipNorm as number,
      seed: train.seed as number,
      device: train.device as 'auto' | 'cuda' | 'cpu',
      carryState: train.carryState as boolean,
      stepsPerRun: train.stepsPerRun as number,
      evaluateEvery: train.evaluateEvery as number,
      schedule: withDefaults(P.train.properties!.schedule, rawTrain.schedule) as unknown as ModelConfig['train']['schedule'],
      ...(rawTrain.earlyStopping !== undefined
        ? { earlyStopping: withDefaults(P.train.properties!.earlyStopping, rawTrain.earlyStopping) as unknown as { patience: number; minDelta: number } }
        : {}),
    },
    file,
    line,
    positions,
    ...(raw.sweep && typeof raw.sweep === 'object' && !Array.isArray(raw.sweep) ? { sweep: raw.sweep as ModelConfig['sweep'] } : {}),
  };
}

// ---- documents --------------------------------------------------------------------------------

interface ParsedModel {
  raw: Json;
  line: number;
  positions: Record<string, Position>;
}

const TASKS = MODEL_SCHEMA.properties!.task.enum as readonly TaskKind[];

/** Rules across keys that the schema does not state. */
function crossKeyRules(v: Validator, raw: Json, whole: Range): void {
  const keyRange = (k: string) => v.keys[k] ?? whole;
  const task = (raw.task ?? 'language-model') as TaskKind;
  const data = raw.data;
  const dataIsMap = data === undefined || (typeof data === 'object' && data !== null && !Array.isArray(data));
  if (TASKS.includes(task) && !GENERATED_TASKS.includes(task) && dataIsMap && obj(data).source === undefined && obj(data).sequences === undefined) {
    const missing = data === undefined ? 'data' : 'source';
    v.add(`missing required key "${missing}"`, data === undefined ? 'data' : 'data.source', keyRange('data'), `a ${task} model reads its data from data.source`);
  }
  // a sweep: known, settable key paths, each with a non-empty list of plain values
  if (raw.sweep !== undefined && typeof raw.sweep === 'object' && raw.sweep !== null && !Array.isArray(raw.sweep)) {
    for (const [key, values] of Object.entries(raw.sweep as Record<string, unknown>)) {
      const at = keyRange(`sweep.${key}`) ?? keyRange('sweep');
      const target = schemaAt(key);
      if (!target || ['name', 'task', 'sweep'].includes(key.split('.')[0]) || target.type === 'object' || target.type === 'array') {
        const guess = didYouMean(key.replace(/\.\d+\./g, '.0.'), [...SWEEP_KEYS]);
        v.add(`sweep: "${key}" is not a key a sweep can set`, `sweep.${key}`, at, guess ? `did you mean "${guess}"?` : 'use the dotted path of a value under data, model or train, e.g. model.layers.0.hidden or train.seed');
      } else if (!Array.isArray(values) || values.length === 0 || !values.every((x) => ['number', 'string', 'boolean'].includes(typeof x)))
        v.add(`sweep: ${key} needs a list of the values to try`, `sweep.${key}`, at, `e.g. ${key}: [1, 2]`);
    }
  }
  const d = obj(data);
  if (task === 'forecast' && dataIsMap && data !== undefined) {
    const cols = Array.isArray(d.columns) ? (d.columns as unknown[]).map(String) : undefined;
    if (d.column === undefined && cols === undefined)
      v.add('a forecast needs data.column (the CSV column to forecast) or data.columns (its input columns)', 'data.column', keyRange('data'), 'add column: <header name> under data');
    if (d.column !== undefined && cols !== undefined) v.add('data.column is the short form of columns: [X], target: X; give one of them', 'data.columns', keyRange('data.columns'), 'remove data.column, or data.columns');
    if (cols && cols.length > 1 && d.target === undefined) v.add(`data.columns lists ${cols.length} columns: name the one to predict with data.target`, 'data.target', keyRange('data.columns'), `add target: ${cols[0]} (or another column) under data`);
    const cat = Array.isArray(d.categorical) ? (d.categorical as unknown[]).map(String) : [];
    cat.forEach((c, i) => {
      if (!(cols ?? [String(d.column)]).includes(c)) v.add(`categorical column "${c}" is not among data.columns`, `data.categorical.${i}`, keyRange(`data.categorical.${i}`), `add ${c} to data.columns, or remove it here`);
    });
    const target = d.target !== undefined ? String(d.target) : d.column !== undefined ? String(d.column) : cols?.length === 1 ? cols[0] : undefined;
    if (target !== undefined && cat.includes(target)) v.add(`the target "${target}" cannot be categorical`, 'data.target', keyRange(d.target !== undefined ? 'data.target' : 'data.categorical'), 'forecast a numeric column');
  }
  if (task !== 'forecast' && dataIsMap)
    for (const k of ['target', 'categorical'] as const) if (d[k] !== undefined) v.add(`data.${k} applies to forecasts`, `data.${k}`, keyRange(`data.${k}`), `remove ${k}, or use task: forecast`);
  const numericSeq = d.sequences !== undefined || d.idColumn !== undefined;
  if (task !== 'classification' && dataIsMap)
    for (const k of ['sequences', 'labels', 'idColumn', 'scale', 'probe'] as const) if (d[k] !== undefined) v.add(`data.${k} applies to classification of numeric sequences`, `data.${k}`, keyRange(`data.${k}`), `remove ${k}, or use task: classification`);
  if (task === 'classification' && dataIsMap) {
    if (d.sequences !== undefined && d.idColumn !== undefined) v.add('data.sequences (one CSV per sequence) and data.idColumn (one long CSV) exclude each other', 'data.idColumn', keyRange('data.idColumn'), 'remove one of them');
    if (d.sequences !== undefined && d.labels === undefined) v.add('numeric sequences need data.labels, the table of their labels', 'data.labels', keyRange('data.sequences'), 'add labels: { file: labels.csv, id: <id column>, label: <label column> } under data');
    if (d.sequences !== undefined && d.source !== undefined) v.add('data.sequences names the data files: data.source is not read with it', 'data.source', keyRange('data.source'), 'remove data.source');
    if (d.idColumn !== undefined && d.labels === undefined && d.labelColumn === undefined) v.add('sequences of one long CSV need their labels: data.labels (a table) or data.labelColumn (a column of the CSV)', 'data.labels', keyRange('data.idColumn'), 'add labelColumn: <column> under data');
    if (numericSeq && d.textColumn !== undefined) v.add('data.textColumn is for sentences; numeric sequences read data.columns', 'data.textColumn', keyRange('data.textColumn'), 'remove textColumn');
  }
  if (typeof d.split === 'object' && d.split !== null && !(task === 'classification' && numericSeq))
    v.add('a split by a group table applies to classification of numeric sequences', 'data.split', keyRange('data.split'), 'use split: tail or random');
  if (task === 'classification' && dataIsMap && data !== undefined) {
    const src = obj(data).source;
    const csv = obj(data).sequences === undefined && obj(data).idColumn === undefined && (Array.isArray(src) ? src : [src]).some((f) => typeof f === 'string' && /\.csv$/i.test(f));
    for (const k of ['textColumn', 'labelColumn'] as const)
      if (csv && obj(data)[k] === undefined)
        v.add(`a classifier reading CSV files needs data.${k}, the header name of its ${k === 'textColumn' ? 'sentence' : 'label'} column`, `data.${k}`, keyRange('data'), `add ${k}: <header name> under data`);
  }
  if (obj(raw.train).earlyStopping !== undefined && !(Number(obj(data).validation ?? 0.1) > 0))
    v.add('train.earlyStopping needs a validation split', 'train.earlyStopping', keyRange('train.earlyStopping'), 'set data.validation above 0 (e.g. 0.1)');
}

/**
 * The equations of `type: cell` layers (../nn/cellspec.ts): every problem at the token inside the
 * equation string (its line and column in the file), at the state item, or at the init key; and the
 * keys of cell layers on other layer types.
 */
function cellRules(v: Validator, root: YAMLMap, lc: LineCounter, text: string): void {
  const layers = root.getIn(['model', 'layers'], true) as YNode | undefined;
  if (!isSeq(layers)) return;
  layers.items.forEach((item, i) => {
    if (!isMap(item)) return;
    const at = `model.layers.${i}`;
    const pairOf = (k: string) => item.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === k);
    const type = (item.get('type') as string | undefined) ?? 'lstm';
    const eqPair = pairOf('equations');
    if (type !== 'cell') {
      for (const k of ['equations', 'state', 'init']) {
        const p = pairOf(k);
        if (p) v.add(`${k} applies to type: cell layers`, `${at}.${k}`, v.range(p.key as YNode), type === 'lstm' && !item.has('type') ? 'add type: cell to write your own cell' : `remove ${k}, or use type: cell`);
      }
      return;
    }
    if (!eqPair || !isMap(eqPair.value)) {
      v.add('a cell layer needs its equations', `${at}.equations`, v.range(item), 'add equations: with one line per equation, e.g. h: tanh(W x + U h + b)');
      return;
    }
    const eqMap = eqPair.value;
    const eqs: [string, string][] = [];
    const nodes = new Map<string, { key: YNode; value: Scalar }>();
    for (const p of eqMap.items) {
      if (!isPair(p) || !isScalar(p.key) || !isScalar(p.value)) continue;
      const name = String(p.key.value);
      eqs.push([name, String(p.value.value)]);
      nodes.set(name, { key: p.key as YNode, value: p.value });
    }
    const statePair = pairOf('state');
    const stateSeq = statePair && isSeq(statePair.value) ? statePair.value : undefined;
    const states = stateSeq ? stateSeq.items.map((s) => String(isScalar(s) ? s.value : '')) : ['h'];
    const initPair = pairOf('init');
    const init = initPair && isMap(initPair.value) ? Object.fromEntries(initPair.value.items.filter(isPair).map((p) => [String(isScalar(p.key) ? p.key.value : ''), isScalar(p.value) ? p.value.value : undefined])) : {};
    const { problems } = checkCell(eqs, states, init as Record<string, number>);
    for (const p of problems) {
      const full = `${at}.${p.key}`;
      const [head, rest] = [p.key.split('.')[0], p.key.slice(p.key.indexOf('.') + 1)];
      let range: Range;
      if (head === 'equations') {
        const n = nodes.get(rest)!;
        if (p.atKey || !p.span) range = v.range(p.atKey ? n.key : n.value);
        else {
          // the token's place in the file: the scalar's start (after its quote) plus the offset,
          // where the source holds the string as written; else the whole value
          const src = String(n.value.value);
          const start = n.value.range![0] + (n.value.type === 'QUOTE_DOUBLE' || n.value.type === 'QUOTE_SINGLE' ? 1 : 0);
          const token = src.slice(p.span.at, p.span.at + p.span.len);
          const exact = text.slice(start + p.span.at, start + p.span.at + p.span.len) === token && text.slice(start, start + src.length) === src;
          if (exact) {
            const a = lc.linePos(start + p.span.at);
            const b = lc.linePos(start + p.span.at + Math.max(1, p.span.len));
            range = { line: a.line, column: a.col, endLine: b.line, endColumn: b.col };
          } else range = v.range(n.value);
        }
      } else if (head === 'state') {
        const idx = Number(rest);
        range = stateSeq && Number.isInteger(idx) && p.key !== 'state' ? v.range(stateSeq.items[idx] as YNode) : v.range((statePair?.key as YNode) ?? eqPair.key);
      } else {
        const ip = initPair && isMap(initPair.value) ? initPair.value.items.find((q) => isPair(q) && isScalar(q.key) && String(q.key.value) === rest) : undefined;
        range = v.range((ip?.key as YNode) ?? initPair?.key);
      }
      v.add(p.message, full, range, p.hint);
    }
  });
}

/** Deeper nesting than any model file needs: refused before parsing (a parser or validator would overflow its stack). */
export const MAX_NESTING = 64;

/**
 * The first place where the text nests deeper than MAX_NESTING levels (flow brackets, indented
 * blocks and `- ` list items together), or undefined. A cheap scan that ignores quoted strings and comments.
 */
export function nestingTooDeep(text: string): { line: number; column: number; depth: number } | undefined {
  const indents: number[] = [];
  let flow = 0;
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const l = lines[n];
    const body = l.trimStart();
    const indent = l.length - body.length;
    if (flow === 0 && body && !body.startsWith('#')) {
      while (indents.length && indents[indents.length - 1] >= indent) indents.pop();
      indents.push(indent);
    }
    let dashes = 0;
    let quote = '';
    for (let i = indent; i < l.length; i++) {
      const ch = l[i];
      if (quote) {
        if (ch === '\\' && quote === '"') i++;
        else if (ch === quote) quote = '';
        continue;
      }
      if (ch === '"' || ch === "'") quote = ch;
      else if (ch === '#' && (i === 0 || /\s/.test(l[i - 1]))) break;
      else if (ch === '[' || ch === '{') flow++;
      else if (ch === ']' || ch === '}') flow = Math.max(0, flow - 1);
      else if (ch === '-' && flow === 0 && (l[i + 1] === ' ' || i + 1 === l.length) && /^[\s-]*$/.test(l.slice(indent, i))) dashes++;
      const depth = flow + indents.length + dashes;
      if (depth > MAX_NESTING) return { line: n + 1, column: i + 1, depth };
    }
  }
  return undefined;
}

/** Parses and validates every model of a file; problems are sorted by position, one per spot. */
function parseDocs(text: string, file: string): { models: ParsedModel[]; problems: Problem[] } {
  const deep = nestingTooDeep(text);
  if (deep)
    return {
      models: [],
      problems: [
        {
          error: new UserError(`the document nests deeper than ${MAX_NESTING} levels here`, { file, line: deep.line, column: deep.column }, 'a model file needs a few levels; this is not a model file, or it was generated wrongly'),
          range: { line: deep.line, column: deep.column, endLine: deep.line, endColumn: deep.column + 1 },
        },
      ],
    };
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false });
  const problems: Problem[] = [];
  const models: ParsedModel[] = [];
  const isJson = /\.json$/i.test(file);
  const names = new Map<string, number>(); // model name → line of its `name` key
  for (const doc of docs) {
    // syntax errors: report them and do not validate the (partial) document, whose other problems
    // would mostly be consequences of the syntax error
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const p = lc.linePos(e.pos[0]);
        const q = lc.linePos(e.pos[1]);
        const range = { line: p.line, column: p.col, endLine: q.line, endColumn: q.col };
        const msg = e.message.split('\n')[0].replace(/ at line \d+, column \d+.*$/, '');
        problems.push({ error: new UserError(`syntax error: ${msg}`, { file, line: p.line, column: p.col }, `the file must be valid ${isJson ? 'JSON' : 'YAML'}`), range });
      }
      continue;
    }
    const root = doc.contents as YNode | null;
    if (root === null || (isScalar(root) && root.value === null)) continue; // empty document (or only comments)
    let js: unknown;
    try {
      js = doc.toJS({ maxAliasCount: 1000 });
    } catch (e) {
      const p = lc.linePos(root.range?.[0] ?? 0);
      problems.push({ error: new UserError(`cannot read the document: ${(e as Error).message}`, { file, line: p.line, column: p.col }), range: { line: p.line, column: p.col, endLine: p.line, endColumn: p.col + 1 } });
      continue;
    }
    // a list at the top (a JSON array, or a YAML sequence) holds several models
    const nodes: YNode[] = isSeq(root) ? (root.items as YNode[]) : [root];
    const raws: unknown[] = isSeq(root) ? (js as unknown[]) : [js];
    nodes.forEach((node, i) => {
      const v = new Validator(file, lc, doc);
      const whole = v.range(node);
      v.check(node, MODEL_SCHEMA, '', whole);
      const raw = obj(raws[i]);
      if (isMap(node)) {
        crossKeyRules(v, raw, whole);
        if (v.problems.length === 0) cellRules(v, node, lc, text);
      }
      // model names are unique within a file
      const nameAt = v.keys.name;
      if (typeof raw.name === 'string' && nameAt) {
        const prev = names.get(raw.name);
        if (prev !== undefined) v.add(`a model named "${raw.name}" is already defined on line ${prev}`, 'name', nameAt, 'give each model in a file its own name');
        else names.set(raw.name, nameAt.line);
      }
      problems.push(...v.problems);
      if (v.problems.length === 0 && isMap(node)) {
        const first = (node.items[0]?.key ?? node) as YNode;
        models.push({ raw, line: v.range(first).line, positions: v.positions() });
      }
    });
  }
  return { models, problems: tidy(problems) };
}

/** In order of position, without repeats at one spot (YAML often reports one mistake several ways). */
function tidy(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  const out: Problem[] = [];
  for (const p of problems) {
    const w = p.error.where;
    const syntax = p.error.message.startsWith('syntax error');
    const k = syntax ? `${w.line}:${w.column}:syntax` : `${w.line}:${w.column}:${w.key}:${p.error.message}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(p);
  }
  // stable sort: problems at one position keep the order the validator found them in
  return out.map((p, i) => [p, i] as const).sort(([a, i], [b, j]) => a.range.line - b.range.line || a.range.column - b.range.column || i - j).map(([p]) => p);
}

// ---- public API -------------------------------------------------------------------------------

/** Every problem of a model file's text, without throwing (editor diagnostics with quick fixes). */
export function diagnoseModelText(text: string, file: string): Problem[] {
  return parseDocs(text, file).problems;
}

/** The same problems as UserErrors, without throwing. */
export function validateModelText(text: string, file: string): UserError[] {
  return diagnoseModelText(text, file).map((p) => p.error);
}

/**
 * All models of a file's text, with defaults resolved and `data.source` made absolute against the
 * file's folder. Throws the UserError when there is one problem, UserErrors listing all of them when
 * there are several, and a UserError when the file holds no model.
 */
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
    const message = code === 'ENOENT' ? `model file not found: ${file}` : `cannot read the model file ${file}: ${(e as Error).message}`;
    throw new UserError(message, { file }, 'check the path');
  }
}

/** Every model of a model file (path relative to the working directory or absolute). */
export function loadModelFiles(file: string): ModelConfig[] {
  const abs = path.resolve(file);
  return parseModelFile(readModelText(abs), abs);
}

/**
 * One model of a model file: the one named `modelName`; without a name, the first model of the file
 * (even when the file holds several). An unknown name is a UserError listing the names there are.
 */
export function loadModelFile(file: string, modelName?: string): ModelConfig {
  return readModel(file, modelName).cfg;
}

/** As loadModelFile, with the text it was parsed from (a run keeps exactly that text as its snapshot). */
export function readModel(file: string, modelName?: string): { cfg: ModelConfig; text: string } {
  const abs = path.resolve(file);
  const text = readModelText(abs);
  return { cfg: pickModel(parseModelFile(text, abs), modelName, abs), text };
}

/** The model named `modelName` of a parsed file (the first without a name). */
export function pickModel(models: ModelConfig[], modelName: string | undefined, file: string): ModelConfig {
  if (modelName === undefined) return models[0];
  const m = models.find((c) => c.name === modelName);
  if (!m) {
    const names = models.map((c) => c.name);
    const guess = didYouMean(modelName, names);
    throw new UserError(
      `no model named "${modelName}" in this file`,
      { file, key: '--model' },
      guess ? `did you mean "${guess}"? (models: ${names.join(', ')})` : `models: ${names.join(', ')}`,
    );
  }
  return m;
}

/**
 * Where a key of a loaded model is written: the key itself, else its nearest written parent key
 * (a default value is blamed on its section), else the model's first line. `key` is always the
 * path asked for.
 */
export function whereOf(cfg: ModelConfig, keyPath: string): Where {
  for (let k = keyPath; k; k = k.includes('.') ? k.slice(0, k.lastIndexOf('.')) : '') {
    const pos = cfg.positions?.[k];
    if (pos) return { file: cfg.file, line: pos.line, column: pos.column, key: keyPath };
  }
  return { file: cfg.file, line: cfg.line, key: keyPath };
}

/**
 * The model documents of a file's text and the line of each one's first key, for CodeLens. Cheap
 * and tolerant: no validation, broken text gives whatever models can still be seen, never throws.
 */
export function modelAnchors(text: string): ModelAnchor[] {
  const out: ModelAnchor[] = [];
  try {
    const lc = new LineCounter();
    for (const doc of parseAllDocuments(text, { lineCounter: lc, uniqueKeys: false })) {
      const root = doc.contents as YNode | null;
      if (!root) continue;
      const nodes: YNode[] = isSeq(root) ? (root.items as YNode[]) : [root];
      for (const node of nodes) {
        if (!isMap(node) || node.items.length === 0) continue;
        const first = node.items[0].key as YNode | undefined;
        const p = lc.linePos(first?.range?.[0] ?? node.range?.[0] ?? 0);
        const nameNode = node.get('name', true) as Scalar | undefined;
        out.push({ name: typeof nameNode?.value === 'string' ? nameNode.value : undefined, line: p.line, column: p.col });
      }
    }
  } catch {
    // broken beyond reading: no anchors
  }
  return out;
}

/**
 * The hover text at a place of a model file (1-based line and column): a key's documentation from
 * the schema, and inside a cell layer's equation what the token there means. Never throws.
 */
export function hoverAt(text: string, line: number, column: number): { markdown: string; range: Range } | undefined {
  try {
    const lc = new LineCounter();
    const docs = parseAllDocuments(text, { lineCounter: lc, uniqueKeys: false });
    const offset = (lc.lineStarts[line - 1] ?? 0) + column - 1;
    const span = (a: number, b: number): Range => {
      const p = lc.linePos(a);
      const q = lc.linePos(b);
      return { line: p.line, column: p.col, endLine: q.line, endColumn: q.col };
    };
    const inside = (n: YNode | null | undefined) => !!n?.range && offset >= n.range[0] && offset <= n.range[1];
    const walk = (node: YNode | null | undefined, at: string, layer?: YAMLMap): { markdown: string; range: Range } | undefined => {
      if (isSeq(node)) {
        const i = node.items.findIndex((it) => inside(it as YNode));
        return i < 0 ? undefined : walk(node.items[i] as YNode, at ? `${at}.${i}` : String(i), /^model\.layers$/.test(at) && isMap(node.items[i]) ? (node.items[i] as YAMLMap) : layer);
      }
      if (!isMap(node)) return undefined;
      for (const pair of node.items) {
        if (!isPair(pair) || !isScalar(pair.key)) continue;
        const key = String(pair.key.value);
        const full = at ? `${at}.${key}` : key;
        const k = pair.key as YNode;
        if (inside(k)) {
          const s = schemaAt(full) ?? (/\.equations\.[^.]+$/.test(full) ? schemaAt(full.replace(/\.[^.]+$/, ''))?.additionalProperties : undefined);
          const doc = s && typeof s === 'object' ? (s.markdownDescription ?? s.description) : undefined;
          return doc ? { markdown: `**${full}**\n\n${doc}`, range: span(k.range![0], k.range![1]) } : undefined;
        }
        const v = pair.value as YNode | null;
        if (!inside(v)) continue;
        // a token inside an equation of a cell layer
        const m = /^model\.layers\.(\d+)\.equations$/.exec(at);
        if (m && layer && isScalar(v) && v.range) {
          const eqNode = layer.get('equations', true) as YAMLMap | undefined;
          const eqs: [string, string][] = (eqNode?.items ?? []).filter(isPair).map((p) => [String((p.key as Scalar).value), String((p.value as Scalar | null)?.value ?? '')]);
          const st = layer.get('state', true);
          const states = isSeq(st) ? st.items.map((x) => String(isScalar(x) ? x.value : '')) : ['h'];
          const start = v.range[0] + (v.type === 'QUOTE_DOUBLE' || v.type === 'QUOTE_SINGLE' ? 1 : 0);
          const r = explainCellToken(eqs, states, key, offset - start, Number(m[1]));
          return r ? { markdown: r.text, range: span(start + r.span.at, start + r.span.at + r.span.len) } : undefined;
        }
        return walk(v, full, layer);
      }
      return undefined;
    };
    for (const doc of docs) {
      const root = doc.contents as YNode | null;
      if (!inside(root)) continue;
      // a list of models: each item is a model
      return walk(isSeq(root) ? (root.items.find((it) => inside(it as YNode)) as YNode | undefined) : root, '');
    }
  } catch {
    // no hover for text the parser cannot read
  }
  return undefined;
}
