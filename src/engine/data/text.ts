// Text corpora for language models: preprocessing, character or word tokens, a vocabulary ordered
// as d2l's Vocab (<unk> first, then by descending frequency, ties in order of first appearance),
// and the token stream as an Int32Array. The file is read in chunks, twice (count, then encode),
// so a corpus of about a gigabyte never exists as one JS string or as one object per token.

import * as fs from 'node:fs';
import { UserError, Where } from '../errors';

export type TokenKind = 'char' | 'word';
export type Preprocess = 'none' | 'letters';

export interface TextOptions {
  tokens: TokenKind;
  preprocess: Preprocess;
  /** tokens seen fewer times become <unk>; 0 keeps every token */
  minFrequency: number;
}

export const UNK = '<unk>';

export class Vocab {
  readonly index = new Map<string, number>();
  constructor(readonly tokens: readonly string[]) {
    tokens.forEach((t, i) => this.index.set(t, i));
  }
  get size(): number {
    return this.tokens.length;
  }
  id(token: string): number {
    return this.index.get(token) ?? 0;
  }
}

export interface Corpus {
  ids: Int32Array;
  vocab: Vocab;
  options: TextOptions;
}

/** d2l's read_time_machine rule for one line: runs of non-letters → one space, strip, lower-case. */
export function lettersOnly(line: string): string {
  return line.replace(/[^A-Za-z]+/g, ' ').trim().toLowerCase();
}

/**
 * Splits text into tokens, calling `emit` for each. Lines matter only for `letters` (each line is
 * cleaned on its own and lines are joined without a separator, as d2l does); for `none` newlines
 * are ordinary characters (char tokens) or separators (word tokens).
 */
export class Tokenizer {
  private pending = '';
  constructor(
    private readonly opts: TextOptions,
    private readonly emit: (token: string) => void,
  ) {}

  /** Feed a chunk of text; a partial last line is kept for the next chunk. */
  push(chunk: string): void {
    const text = this.pending + chunk;
    if (this.opts.preprocess === 'letters' || this.opts.tokens === 'word') {
      const cut = text.lastIndexOf('\n');
      if (cut < 0) {
        this.pending = text;
        return;
      }
      this.pending = text.slice(cut + 1);
      this.emitText(text.slice(0, cut + 1));
    } else {
      this.pending = '';
      this.emitText(text);
    }
  }

  end(): void {
    if (this.pending) this.emitText(this.pending);
    this.pending = '';
  }

  private emitText(text: string): void {
    if (this.opts.preprocess === 'letters') {
      const lines = text.split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      for (const line of lines) this.emitTokens(lettersOnly(line));
    } else {
      this.emitTokens(text);
    }
  }

  private emitTokens(s: string): void {
    if (this.opts.tokens === 'char') {
      for (const ch of s) this.emit(ch); // by code point
    } else {
      for (const w of s.split(/\s+/)) if (w) this.emit(w);
    }
  }
}

/** Tokens of a string (prefixes, probes): the same rules as the corpus. */
export function tokenize(text: string, opts: TextOptions): string[] {
  const out: string[] = [];
  const t = new Tokenizer(opts, (tok) => out.push(tok));
  t.push(text);
  t.end();
  return out;
}

/** Reads a file in chunks as UTF-8 and feeds the tokenizer. */
/**
 * Checks that bytes are text: UTF-8 without NUL bytes, across chunks (`state` carries an incomplete
 * character and the position). A binary file (an executable, an archive) given as a corpus is an
 * error naming the first offending byte, instead of training on it without a word.
 */
export class TextCheck {
  private pending = 0; // continuation bytes still expected
  private offset = 0;
  private line = 1;
  private column = 1;
  constructor(
    private readonly file: string,
    private readonly where: Where,
  ) {}

  push(buf: Uint8Array): void {
    for (let i = 0; i < buf.length; i++) {
      const b = buf[i];
      let bad: string | undefined;
      if (this.pending > 0) {
        if ((b & 0xc0) === 0x80) this.pending--;
        else bad = `an incomplete UTF-8 character before byte 0x${b.toString(16).padStart(2, '0')}`;
      } else if (b === 0) bad = 'a NUL byte';
      else if (b < 0x80) this.pending = 0;
      else if (b >= 0xc2 && b <= 0xdf) this.pending = 1;
      else if (b >= 0xe0 && b <= 0xef) this.pending = 2;
      else if (b >= 0xf0 && b <= 0xf4) this.pending = 3;
      else bad = `byte 0x${b.toString(16).padStart(2, '0')}, which is not UTF-8`;
      if (bad)
        throw new UserError(
          `${this.file}:${this.line}:${this.column}: the data holds ${bad} (byte offset ${this.offset}); it does not look like a UTF-8 text file`,
          this.where,
          'give a UTF-8 text file (convert it, e.g. iconv -f latin1 -t utf-8), not a binary file',
        );
      if (b === 10) {
        this.line++;
        this.column = 1;
      } else if (this.pending === 0) this.column++;
      this.offset++;
    }
  }

  end(): void {
    if (this.pending > 0) this.push(Uint8Array.of(0x0a)); // reports the cut character
  }
}

/** Reads a whole (small) text file: UTF-8 without NUL bytes, else an error naming the first offending byte. */
export function readTextFile(file: string, where: Where, missing: string): string {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch {
    throw new UserError(`data file not found: ${file}`, where, missing);
  }
  const check = new TextCheck(file, where);
  check.push(buf);
  check.end();
  return buf.toString('utf8');
}

function scan(file: string, opts: TextOptions, emit: (token: string) => void, check?: TextCheck): void {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 22);
    const dec = new TextDecoder('utf-8');
    const tok = new Tokenizer(opts, emit);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      check?.push(buf.subarray(0, n));
      tok.push(dec.decode(buf.subarray(0, n), { stream: true }));
    }
    check?.end();
    tok.push(dec.decode());
    tok.end();
  } finally {
    fs.closeSync(fd);
  }
}

/** Builds a d2l-ordered vocabulary from token counts (Map insertion order = first appearance). */
export function buildVocab(counts: Map<string, number>, minFrequency: number): Vocab {
  const entries = [...counts.entries()].filter(([t, c]) => c >= minFrequency && t !== UNK);
  entries.sort((a, b) => b[1] - a[1]); // stable: ties keep first-appearance order
  return new Vocab([UNK, ...entries.map(([t]) => t)]);
}

/**
 * Loads a corpus file. `where` names the model file and key for error messages.
 * With `vocab` given (e.g. from a checkpoint), tokens are encoded with it instead of a new one.
 */
export function loadTextCorpus(
  file: string,
  opts: TextOptions,
  where: { file: string; line?: number; key: string },
  vocab?: Vocab,
): Corpus {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new UserError(`data file not found: ${file}`, where, 'the path is relative to the model file; fix data.source or create the file');
  }
  if (!stat.isFile()) throw new UserError(`data source is not a file: ${file}`, where, 'point data.source at a text file');
  const counts = new Map<string, number>();
  let total = 0;
  scan(
    file,
    opts,
    (t) => {
      counts.set(t, (counts.get(t) ?? 0) + 1);
      total++;
    },
    new TextCheck(file, where),
  );
  if (total === 0) {
    throw new UserError(
      `the corpus ${file} has no tokens${opts.preprocess === 'letters' ? ' after preprocessing (letters only)' : ''}`,
      where,
      'use a text file with content, or change data.preprocess',
    );
  }
  const v = vocab ?? buildVocab(counts, opts.minFrequency);
  const ids = new Int32Array(total);
  let k = 0;
  scan(file, opts, (t) => {
    ids[k++] = v.id(t);
  });
  return { ids, vocab: v, options: opts };
}

/** Joins generated tokens back into text. */
export function detokenize(tokens: readonly string[], kind: TokenKind): string {
  return kind === 'char' ? tokens.join('') : tokens.join(' ');
}
