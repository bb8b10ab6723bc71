// Text corpora for language models: preprocessing, character or word tokens, a vocabulary ordered
// as d2l's Vocab (<unk> first, then by descending frequency, ties in order of first appearance),
// and the token stream as a typed array (8, 16 or 32 bits per id, the narrowest that fits). The file
// is read in chunks, twice (count, then encode), so a corpus of about a gigabyte never exists as one
// JS string or as one object per token; the token cache keeps the ids for the next run.

import * as fs from 'node:fs';
import { Cancelled, UserError, Where } from '../errors';
import { cacheKey, readCache, TokenCacheOptions, writeCache } from './tokencache';

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
  ids: TokenIds;
  vocab: Vocab;
  options: TextOptions;
  /** read from the token cache */
  cached?: boolean;
}

/** d2l's read_time_machine rule for one line: runs of non-letters → one space, strip, lower-case. */
export function lettersOnly(line: string): string {
  return line.replace(/[^A-Za-z]+/g, ' ').trim().toLowerCase();
}

/** Where a tokenizer puts its tokens: a run of character tokens at once (the fast path), or one word. */
export interface TokenSink {
  chars(s: string): void;
  word(w: string): void;
}

const WHITESPACE = /\s/;

/**
 * Splits a text given in chunks of any size (cut anywhere, even inside a word or a line) into the
 * tokens of the whole text. `letters` cleans each line as lettersOnly does and joins the lines
 * without a separator (d2l); for `none` newlines are ordinary characters (char tokens) or separators
 * (word tokens). Nothing but a word cut at a chunk's edge is held back, so a file without line breaks
 * is read in bounded memory too.
 */
export class Tokenizer {
  private readonly sink: TokenSink;
  private wordTail = ''; // the start of a word cut at a chunk's edge
  private held = ''; // the first half of a surrogate pair cut at a chunk's edge
  private lineHasLetters = false; // letters: this line has given letters already
  private space = false; // letters: a run of non-letters waits (one space if letters follow on this line)

  constructor(
    private readonly opts: TextOptions,
    emit: TokenSink | ((token: string) => void),
  ) {
    this.sink =
      typeof emit === 'function'
        ? {
            chars(s) {
              for (const ch of s) emit(ch); // by code point
            },
            word: emit,
          }
        : emit;
  }

  /** Feed a chunk of text. */
  push(chunk: string): void {
    let raw = this.held + chunk;
    this.held = '';
    // a character beyond the BMP cut between its two UTF-16 halves waits for its second half
    const last = raw.charCodeAt(raw.length - 1);
    if (last >= 0xd800 && last < 0xdc00) {
      this.held = raw.slice(-1);
      raw = raw.slice(0, -1);
    }
    this.feed(raw);
  }

  /** The end of the text. */
  end(): void {
    if (this.held) this.feed(this.held);
    if (this.opts.tokens === 'word') this.words('', true);
    this.held = '';
    this.wordTail = '';
    this.lineHasLetters = false;
    this.space = false;
  }

  private feed(raw: string): void {
    const text = this.opts.preprocess === 'letters' ? this.letters(raw) : raw;
    if (this.opts.tokens === 'char') {
      if (text) this.sink.chars(text);
    } else this.words(text, false);
  }

  /** The cleaned text of a chunk: letters and single spaces; at line ends a newline for word tokens. */
  private letters(chunk: string): string {
    const segments = chunk.replace(/[^A-Za-z\n]+/g, ' ').toLowerCase().split('\n');
    const out: string[] = [];
    for (let i = 0; i < segments.length; i++) {
      const s = segments[i];
      const core = s.trim();
      if (core) {
        if (this.lineHasLetters && (this.space || s.charCodeAt(0) === 32)) out.push(' ');
        out.push(core);
        this.lineHasLetters = true;
        this.space = s.charCodeAt(s.length - 1) === 32;
      } else if (s) this.space = true;
      if (i < segments.length - 1) {
        // a line ends: its trailing non-letters are dropped
        this.lineHasLetters = false;
        this.space = false;
        if (this.opts.tokens === 'word') out.push('\n');
      }
    }
    return out.join('');
  }

  private words(text: string, final: boolean): void {
    const s = this.wordTail + text;
    let cut = s.length;
    if (!final) while (cut > 0 && !WHITESPACE.test(s[cut - 1])) cut--;
    this.wordTail = s.slice(cut);
    for (const w of (cut === s.length ? s : s.slice(0, cut)).split(/\s+/)) if (w) this.sink.word(w);
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

/** The ids of a token stream in the narrowest unsigned array that holds every id of the vocabulary. */
export type TokenIds = Uint8Array | Uint16Array | Uint32Array;

export function tokenIdArray(vocabSize: number, length: number): TokenIds {
  return vocabSize <= 0x100 ? new Uint8Array(length) : vocabSize <= 0x10000 ? new Uint16Array(length) : new Uint32Array(length);
}

/** How far the reading of a corpus is (two passes over the file: counting, then encoding). */
export interface ReadProgress {
  file: string;
  /** bytes of this pass read, of `size` */
  bytes: number;
  size: number;
  pass: number;
  passes: number;
}

/** What loadTextCorpus may do besides reading: report progress, give up on a stop, use the token cache. */
export interface CorpusIO {
  progress?(p: ReadProgress): void;
  /** checked between chunks: true ends the read with Cancelled */
  shouldStop?(): boolean;
  /** the token cache (tokencache.ts); absent: tokenise every time */
  cache?: TokenCacheOptions;
  /** bytes read at a time (default 4 MiB) */
  chunkBytes?: number;
}

const CHUNK = 1 << 22;

async function scan(file: string, sink: TokenSink, opts: TextOptions, io: CorpusIO, pass: number, check?: TextCheck): Promise<void> {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.allocUnsafe(io.chunkBytes ?? CHUNK);
    const dec = new TextDecoder('utf-8');
    const tok = new Tokenizer(opts, sink);
    let bytes = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      check?.push(buf.subarray(0, n));
      tok.push(dec.decode(buf.subarray(0, n), { stream: true }));
      bytes += n;
      io.progress?.({ file, bytes, size, pass, passes: 2 });
      if (io.shouldStop && bytes < size) {
        // let a stop message in (the trainer's IPC) between chunks; a read about to end is not given up
        await new Promise((r) => setImmediate(r));
        if (io.shouldStop()) throw new Cancelled(`stopped while reading ${file} (${Math.round((100 * bytes) / Math.max(size, 1))}% of pass ${pass} of 2)`);
      }
    }
    check?.end();
    tok.push(dec.decode());
    tok.end();
  } finally {
    fs.closeSync(fd);
  }
}

/** First pass: token counts in order of first appearance (characters through a table, not a Map). */
class Counts implements TokenSink {
  total = 0;
  private readonly bmp = new Float64Array(0x10000);
  private readonly order: (number | string)[] = [];
  private readonly other = new Map<string, number>(); // words, and characters beyond the BMP

  chars(s: string): void {
    const bmp = this.bmp;
    let n = 0;
    for (let i = 0; i < s.length; i++, n++) {
      const u = s.charCodeAt(i);
      if (u >= 0xd800 && u < 0xdc00 && i + 1 < s.length) {
        const v = s.charCodeAt(i + 1);
        if (v >= 0xdc00 && v < 0xe000) {
          this.word(s.slice(i, i + 2));
          this.total--;
          i++;
          continue;
        }
      }
      if (bmp[u]++ === 0) this.order.push(u);
    }
    this.total += n;
  }

  word(w: string): void {
    const c = this.other.get(w);
    if (c === undefined) {
      this.other.set(w, 1);
      this.order.push(w);
    } else this.other.set(w, c + 1);
    this.total++;
  }

  /** token → count, in order of first appearance */
  map(): Map<string, number> {
    const m = new Map<string, number>();
    for (const t of this.order) {
      if (typeof t === 'number') m.set(String.fromCharCode(t), this.bmp[t]);
      else m.set(t, this.other.get(t)!);
    }
    return m;
  }
}

/** Second pass: the ids, written into a preallocated array. */
class Encoder implements TokenSink {
  k = 0;
  private readonly bmp = new Uint32Array(0x10000); // 0 = <unk>
  constructor(
    private readonly vocab: Vocab,
    readonly ids: TokenIds,
  ) {
    vocab.tokens.forEach((t, id) => {
      if (id > 0 && t.length === 1) this.bmp[t.charCodeAt(0)] = id;
    });
  }

  chars(s: string): void {
    const { bmp, ids } = this;
    let k = this.k;
    for (let i = 0; i < s.length; i++) {
      // (a typed array ignores writes past its end: a file that grew is caught by the count)
      const u = s.charCodeAt(i);
      if (u >= 0xd800 && u < 0xdc00 && i + 1 < s.length) {
        const v = s.charCodeAt(i + 1);
        if (v >= 0xdc00 && v < 0xe000) {
          ids[k++] = this.vocab.id(s.slice(i, i + 2));
          i++;
          continue;
        }
      }
      ids[k++] = bmp[u];
    }
    this.k = k;
  }

  word(w: string): void {
    this.ids[this.k++] = this.vocab.id(w);
  }
}

/** Builds a d2l-ordered vocabulary from token counts (Map insertion order = first appearance). */
export function buildVocab(counts: Map<string, number>, minFrequency: number): Vocab {
  const entries = [...counts.entries()].filter(([t, c]) => c >= minFrequency && t !== UNK);
  entries.sort((a, b) => b[1] - a[1]); // stable: ties keep first-appearance order
  return new Vocab([UNK, ...entries.map(([t]) => t)]);
}

/**
 * Loads a corpus file: read in chunks, twice (count, then encode), so a corpus of about a gigabyte
 * never exists as one JS string or as one object per token; the ids in the narrowest array. With the
 * token cache, a file read before (same size, time, head and tail, tokenizer settings) is mapped back
 * in without tokenising. `where` names the model file and key for error messages. With `vocab` given
 * (e.g. from a checkpoint), tokens are encoded with it instead of a new one.
 */
export async function loadTextCorpus(
  file: string,
  opts: TextOptions,
  where: { file: string; line?: number; key: string },
  vocab?: Vocab,
  io: CorpusIO = {},
): Promise<Corpus> {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new UserError(`data file not found: ${file}`, where, 'the path is relative to the model file; fix data.source or create the file');
  }
  if (!stat.isFile()) throw new UserError(`data source is not a file: ${file}`, where, 'point data.source at a text file');
  const key = io.cache ? cacheKey(file, stat, opts, vocab) : undefined;
  if (io.cache && key) {
    const hit = readCache(io.cache, key);
    if (hit) return { ids: hit.ids, vocab: new Vocab(hit.tokens), options: opts, cached: true };
  }
  const counts = new Counts();
  await scan(file, counts, opts, io, 1, new TextCheck(file, where));
  if (counts.total === 0) {
    throw new UserError(
      `the corpus ${file} has no tokens${opts.preprocess === 'letters' ? ' after preprocessing (letters only)' : ''}`,
      where,
      'use a text file with content, or change data.preprocess',
    );
  }
  const v = vocab ?? buildVocab(counts.map(), opts.minFrequency);
  const enc = new Encoder(v, tokenIdArray(v.size, counts.total));
  await scan(file, enc, opts, io, 2);
  if (enc.k !== counts.total) throw new UserError(`the corpus ${file} changed while it was read (${counts.total} tokens, then ${enc.k})`, where, 'train again once the file is complete');
  if (io.cache && key) writeCache(io.cache, key, { file, size: stat.size, mtimeMs: stat.mtimeMs, options: opts }, enc.ids, v.tokens);
  return { ids: enc.ids, vocab: v, options: opts, cached: false };
}

/** Joins generated tokens back into text. */
export function detokenize(tokens: readonly string[], kind: TokenKind): string {
  return kind === 'char' ? tokens.join('') : tokens.join(' ');
}
