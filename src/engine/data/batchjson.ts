// The explicit batch of `gatelab grad` (DESIGN §3): {"inputs": [[...T...] × B], "targets": [...]},
// laid out [batch][time]. Every problem names the file, the line and column, and the element
// (`inputs[2][7]`), so a malformed batch is as easy to fix as a malformed model file.

import * as fs from 'node:fs';
import { LineCounter, parseDocument, isMap, isSeq, isScalar, Node as YNode } from 'yaml';
import { UserError } from '../errors';

export interface TokenBatch {
  B: number;
  T: number;
  /** [B][T] token ids */
  inputs: number[][];
  /** [B][T] token ids */
  targets: number[][];
}

function lineCol(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let last = -1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      last = i;
    }
  }
  return { line, column: offset - last };
}

type At = (node: YNode | null | undefined, key: string) => { file: string; line: number; column: number; key: string };

/** Parses the JSON batch and returns its "inputs" and "targets" nodes, with positions for errors. */
function openBatch(file: string, what: string, inputsHint: string, targetsHint: string): { inputs: YNode; targets: YNode; at: At } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new UserError(`batch file not found: ${file}`, { key: '--batch' }, `give a JSON file {"inputs": ${inputsHint}, "targets": ${targetsHint}}`);
  }
  try {
    JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const m = /at position (\d+)/.exec(msg);
    const pos = m ? lineCol(text, Number(m[1])) : lineCol(text, text.length);
    throw new UserError(`malformed JSON: ${msg.replace(/ in JSON at position \d+.*$/, '')}`, { file, ...pos }, 'the batch must be valid JSON');
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, keepSourceTokens: false });
  const at: At = (node, key) => {
    const off = node?.range?.[0];
    const pos = off !== undefined ? lc.linePos(off) : { line: 1, col: 1 };
    return { file, line: pos.line, column: pos.col, key };
  };
  const root = doc.contents;
  if (!isMap(root)) throw new UserError('the batch must be a JSON object {"inputs": [...], "targets": [...]}', at(root, '(top level)'));
  let inputs: YNode | undefined;
  let targets: YNode | undefined;
  for (const pair of root.items) {
    const k = isScalar(pair.key) ? String(pair.key.value) : '';
    if (k === 'inputs') inputs = pair.value as YNode;
    else if (k === 'targets') targets = pair.value as YNode;
    else throw new UserError(`unknown key "${k}"`, at(pair.key as YNode, k), `a ${what} batch has only "inputs" and "targets"`);
  }
  if (!inputs) throw new UserError('missing key "inputs"', at(root, 'inputs'), `add "inputs": ${inputsHint}`);
  if (!targets) throw new UserError('missing key "targets"', at(root, 'targets'), `add "targets": ${targetsHint}`);
  return { inputs, targets, at };
}

/** A non-empty list node's items (`what` says what the list holds, for the error). */
function list(node: YNode, name: string, what: string, at: At, count?: { n: number; hint: string }): YNode[] {
  if (!isSeq(node) || node.items.length === 0) throw new UserError(`expected a non-empty list of ${what}`, at(node, name));
  if (count && node.items.length !== count.n) throw new UserError(`"${name}" has ${node.items.length} entries but ${count.hint}`, at(node, name));
  return node.items as YNode[];
}

/** An integer in [0, n) (a token id or a class index), or a finite number when n is undefined. */
function value(node: YNode, name: string, at: At, range?: { n: number; what: string; hint: string }): number {
  const val = isScalar(node) ? node.value : undefined;
  const shown = isScalar(node) ? JSON.stringify(val) : 'a list or object';
  if (!range) {
    if (typeof val !== 'number' || !Number.isFinite(val)) throw new UserError(`expected a number, got ${shown}`, at(node, name));
    return val;
  }
  if (typeof val !== 'number' || !Number.isInteger(val)) throw new UserError(`expected an integer ${range.what}, got ${shown}`, at(node, name));
  if (val < 0 || val >= range.n) throw new UserError(`${range.what} ${val} is outside ${range.what === 'token id' ? 'the vocabulary ' : 'the classes '}[0, ${range.n})`, at(node, name), range.hint);
  return val;
}

/** Reads and validates a language-model batch whose token ids must lie in [0, vocab). */
export function readTokenBatch(file: string, vocab: number): TokenBatch {
  const { inputs: inputsNode, targets: targetsNode, at } = openBatch(file, 'language-model', '[[token ids of sequence 1], ...]', '[[next-token ids of sequence 1], ...]');
  const ids = { n: vocab, what: 'token id', hint: `the checkpoint's fc.weight has ${vocab} rows` };
  const matrix = (node: YNode, name: string, shape?: { B: number; T: number }): number[][] => {
    if (!isSeq(node) || node.items.length === 0)
      throw new UserError(`"${name}" must be a non-empty list of sequences ([batch][time])`, at(node, name));
    if (shape && node.items.length !== shape.B)
      throw new UserError(`"${name}" has ${node.items.length} sequences but "inputs" has ${shape.B}`, at(node, name), 'inputs and targets must both be [batch][time]');
    let T = shape?.T;
    return node.items.map((row, b) => {
      const items = list(row as YNode, `${name}[${b}]`, 'token ids ([batch][time])', at);
      if (T === undefined) T = items.length;
      if (items.length !== T)
        throw new UserError(`sequence ${b} has ${items.length} steps but the others have ${T}`, at(row as YNode, `${name}[${b}]`), 'every sequence of a batch has the same length');
      return items.map((v, t) => value(v, `${name}[${b}][${t}]`, at, ids));
    });
  };
  const inputs = matrix(inputsNode, 'inputs');
  const B = inputs.length;
  const T = inputs[0].length;
  const targets = matrix(targetsNode, 'targets', { B, T });
  return { B, T, inputs, targets };
}

export interface ClassBatch {
  B: number;
  /** the longest sentence */
  T: number;
  /** [B][length of each sentence] token ids */
  inputs: number[][];
  /** [B] class indices */
  targets: number[];
}

/**
 * A classification batch: sentences of token ids of any lengths (each row's length is its sentence
 * length; every id, 0 included, is a real token) and one class index per sentence.
 */
export function readClassBatch(file: string, vocab: number, classes: number): ClassBatch {
  const { inputs: inNode, targets: tNode, at } = openBatch(file, 'classification', '[[token ids of sentence 1], ...]', '[class index of sentence 1, ...]');
  const ids = { n: vocab, what: 'token id', hint: `the checkpoint's input layer has ${vocab} tokens` };
  const inputs = list(inNode, 'inputs', 'sentences ([batch][time] token ids)', at).map((row, b) =>
    list(row, `inputs[${b}]`, 'token ids (a sentence)', at).map((v, t) => value(v, `inputs[${b}][${t}]`, at, ids)),
  );
  const targets = list(tNode, 'targets', 'class indices ([batch])', at, { n: inputs.length, hint: `"inputs" has ${inputs.length} sentences` }).map((v, b) =>
    value(v, `targets[${b}]`, at, { n: classes, what: 'class index', hint: `the checkpoint's fc.weight has ${classes} rows (classes)` }),
  );
  return { B: inputs.length, T: Math.max(...inputs.map((r) => r.length)), inputs, targets };
}

export interface SeriesBatch {
  B: number;
  T: number;
  F: number;
  /** [B][T][F] values as the network sees them */
  inputs: number[][][];
  /** [B][N] */
  targets: number[][];
}

/** A forecast batch: inputs [batch][time] (one feature) or [batch][time][features], targets [batch][horizon]. */
export function readSeriesBatch(file: string, features: number, horizon: number): SeriesBatch {
  const { inputs: inNode, targets: tNode, at } = openBatch(file, 'forecast', '[[values of window 1], ...]', '[[the next values of window 1], ...]');
  let T: number | undefined;
  const inputs = list(inNode, 'inputs', 'windows ([batch][time] or [batch][time][features] numbers)', at).map((row, b) => {
    const steps = list(row, `inputs[${b}]`, 'steps (a window)', at, T === undefined ? undefined : { n: T, hint: `the other windows have ${T} steps` });
    T ??= steps.length;
    return steps.map((v, t) => {
      const name = `inputs[${b}][${t}]`;
      if (isSeq(v)) return list(v, name, 'features', at, { n: features, hint: `the checkpoint's first layer reads ${features} features` }).map((f, j) => value(f, `${name}[${j}]`, at));
      if (features !== 1) throw new UserError(`expected a list of ${features} features`, at(v, name), 'the layout is [batch][time][features]');
      return [value(v, name, at)];
    });
  });
  const targets = list(tNode, 'targets', 'target rows ([batch][horizon])', at, { n: inputs.length, hint: `"inputs" has ${inputs.length} windows` }).map((row, b) =>
    list(row, `targets[${b}]`, 'values (the horizon)', at, { n: horizon, hint: `the checkpoint's fc.weight has ${horizon} rows (the horizon)` }).map((v, h) => value(v, `targets[${b}][${h}]`, at)),
  );
  return { B: inputs.length, T: T!, F: features, inputs, targets };
}

/** A per-step regression batch: inputs [batch][time] numbers, targets [batch][time] (one target per step). */
export function readStepBatch(file: string): { B: number; T: number; inputs: number[][]; targets: number[][] } {
  const { inputs: inNode, targets: tNode, at } = openBatch(file, 'change-point', '[[values of sequence 1], ...]', '[[the mean at every step of sequence 1], ...]');
  let T: number | undefined;
  const inputs = list(inNode, 'inputs', 'sequences ([batch][time] numbers)', at).map((row, b) => {
    const steps = list(row, `inputs[${b}]`, 'steps', at, T === undefined ? undefined : { n: T, hint: `the other sequences have ${T} steps` });
    T ??= steps.length;
    return steps.map((v, t) => value(v, `inputs[${b}][${t}]`, at));
  });
  const targets = list(tNode, 'targets', 'target rows ([batch][time])', at, { n: inputs.length, hint: `"inputs" has ${inputs.length} sequences` }).map((row, b) =>
    list(row, `targets[${b}]`, 'values (one per step)', at, { n: T!, hint: `the sequences have ${T} steps` }).map((v, t) => value(v, `targets[${b}][${t}]`, at)),
  );
  return { B: inputs.length, T: T!, inputs, targets };
}

/** [B][T] → time-major int64 [T·B]. */
export function timeMajor(m: number[][]): BigInt64Array {
  const B = m.length;
  const T = m[0].length;
  const out = new BigInt64Array(T * B);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) out[t * B + b] = BigInt(m[b][t]);
  return out;
}

export interface NumericClassBatch {
  B: number;
  /** the longest sequence */
  T: number;
  /** [batch][time][features]: sequences of their own lengths */
  inputs: number[][][];
  targets: number[];
}

/** A batch of numeric sequences for a classifier: inputs [batch][time][features] (lengths may differ), targets [batch] class indices. */
export function readNumericClassBatch(file: string, features: number, classes: number): NumericClassBatch {
  const { inputs: inNode, targets: tNode, at } = openBatch(file, 'classification', '[[[features of step 1], [features of step 2], ...] of sequence 1, ...]', '[class index of sequence 1, ...]');
  const inputs = list(inNode, 'inputs', 'sequences ([batch][time][features] numbers)', at).map((row, b) =>
    list(row, `inputs[${b}]`, 'steps (a sequence)', at).map((step, t) =>
      list(step, `inputs[${b}][${t}]`, 'features', at, { n: features, hint: `the checkpoint's first layer reads ${features} features` }).map((v, f) => value(v, `inputs[${b}][${t}][${f}]`, at)),
    ),
  );
  const targets = list(tNode, 'targets', 'class indices ([batch])', at, { n: inputs.length, hint: `"inputs" has ${inputs.length} sequences` }).map((v, b) =>
    value(v, `targets[${b}]`, at, { n: classes, what: 'class index', hint: `the checkpoint's fc.weight has ${classes} rows (classes)` }),
  );
  return { B: inputs.length, T: Math.max(...inputs.map((r) => r.length)), inputs, targets };
}
