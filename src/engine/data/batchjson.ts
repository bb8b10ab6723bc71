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

/** Reads and validates a language-model batch whose token ids must lie in [0, vocab). */
export function readTokenBatch(file: string, vocab: number): TokenBatch {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new UserError(`batch file not found: ${file}`, { key: '--batch' }, 'give a JSON file {"inputs": [[...]], "targets": [[...]]}');
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
  const at = (node: YNode | null | undefined, key: string) => {
    const off = node?.range?.[0];
    const pos = off !== undefined ? lc.linePos(off) : { line: 1, col: 1 };
    return { file, line: pos.line, column: pos.col, key };
  };
  const root = doc.contents;
  if (!isMap(root)) throw new UserError('the batch must be a JSON object {"inputs": [...], "targets": [...]}', at(root, '(top level)'));
  let inputsNode: YNode | undefined;
  let targetsNode: YNode | undefined;
  for (const pair of root.items) {
    const k = isScalar(pair.key) ? String(pair.key.value) : '';
    if (k === 'inputs') inputsNode = pair.value as YNode;
    else if (k === 'targets') targetsNode = pair.value as YNode;
    else throw new UserError(`unknown key "${k}"`, at(pair.key as YNode, k), 'a language-model batch has only "inputs" and "targets"');
  }
  if (!inputsNode) throw new UserError('missing key "inputs"', at(root, 'inputs'), 'add "inputs": [[token ids of sequence 1], ...]');
  if (!targetsNode) throw new UserError('missing key "targets"', at(root, 'targets'), 'add "targets": [[next-token ids of sequence 1], ...]');

  const matrix = (node: YNode, name: string, shape?: { B: number; T: number }): number[][] => {
    if (!isSeq(node) || node.items.length === 0)
      throw new UserError(`"${name}" must be a non-empty list of sequences ([batch][time])`, at(node, name));
    if (shape && node.items.length !== shape.B)
      throw new UserError(`"${name}" has ${node.items.length} sequences but "inputs" has ${shape.B}`, at(node, name), 'inputs and targets must both be [batch][time]');
    let T = shape?.T;
    return node.items.map((row, b) => {
      const rn = row as YNode;
      if (!isSeq(rn) || rn.items.length === 0)
        throw new UserError(`expected a non-empty list of token ids`, at(rn, `${name}[${b}]`), 'the layout is [batch][time]');
      if (T === undefined) T = rn.items.length;
      if (rn.items.length !== T)
        throw new UserError(`sequence ${b} has ${rn.items.length} steps but the others have ${T}`, at(rn, `${name}[${b}]`), 'every sequence of a batch has the same length');
      return rn.items.map((v, t) => {
        const vn = v as YNode;
        const val = isScalar(vn) ? vn.value : undefined;
        if (typeof val !== 'number' || !Number.isInteger(val))
          throw new UserError(`expected an integer token id, got ${isScalar(vn) ? JSON.stringify(val) : 'a list or object'}`, at(vn, `${name}[${b}][${t}]`));
        if (val < 0 || val >= vocab)
          throw new UserError(`token id ${val} is outside the vocabulary [0, ${vocab})`, at(vn, `${name}[${b}][${t}]`), `the checkpoint's fc.weight has ${vocab} rows`);
        return val;
      });
    });
  };
  const inputs = matrix(inputsNode, 'inputs');
  const B = inputs.length;
  const T = inputs[0].length;
  const targets = matrix(targetsNode, 'targets', { B, T });
  return { B, T, inputs, targets };
}

/** [B][T] → time-major int64 [T·B]. */
export function timeMajor(m: number[][]): BigInt64Array {
  const B = m.length;
  const T = m[0].length;
  const out = new BigInt64Array(T * B);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) out[t * B + b] = BigInt(m[b][t]);
  return out;
}
