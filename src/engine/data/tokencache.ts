// The token cache: the ids and vocabulary of a corpus, kept in `.gatelab/cache/` beside the model
// file so that the next run of a big corpus maps them back in instead of tokenising again. An entry
// is keyed by the file's size, modification time, a hash of its first and last MiB and the tokenizer
// settings (and the vocabulary, when one is given); it is two files, `<key>.ids` (the raw ids) and
// `<key>.json` (the vocabulary and the ids' type), each written atomically, the JSON last. The cache
// keeps at most `maxBytes`: the entries used longest ago go first.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../util/fsx';
import type { TextOptions, TokenIds, Vocab } from './text';

export interface TokenCacheOptions {
  dir: string;
  /** the most the cache may hold, in bytes */
  maxBytes: number;
}

/** The default limit of the cache (its oldest entries are removed beyond it). */
export const DEFAULT_CACHE_BYTES = 8 * 1024 ** 3;

/** `.gatelab/cache` beside a model file. */
export function cacheDirFor(modelFile: string): string {
  return path.join(path.dirname(modelFile), '.gatelab', 'cache');
}

const MIB = 1 << 20;
const VERSION = 1;

interface Entry {
  version: number;
  file: string;
  size: number;
  mtimeMs: number;
  options: TextOptions;
  dtype: 'uint8' | 'uint16' | 'uint32';
  length: number;
  tokens: string[];
}

function hashRange(fd: number, start: number, length: number, h: crypto.Hash): void {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const n = fs.readSync(fd, buf, got, length - got, start + got);
    if (n === 0) break;
    got += n;
  }
  h.update(buf.subarray(0, got));
}

export function cacheKey(file: string, stat: fs.Stats, opts: TextOptions, vocab?: Vocab): string {
  const h = crypto.createHash('sha256');
  h.update(JSON.stringify({ v: VERSION, size: stat.size, mtimeMs: stat.mtimeMs, tokens: opts.tokens, preprocess: opts.preprocess, minFrequency: opts.minFrequency }));
  if (vocab) h.update('\0vocab\0' + vocab.tokens.join('\0'));
  const fd = fs.openSync(file, 'r');
  try {
    hashRange(fd, 0, Math.min(MIB, stat.size), h);
    if (stat.size > MIB) hashRange(fd, Math.max(MIB, stat.size - MIB), Math.min(MIB, stat.size - MIB), h);
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex').slice(0, 32);
}

const ARRAYS = { uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array } as const;

function dtypeOf(ids: TokenIds): Entry['dtype'] {
  return ids instanceof Uint8Array ? 'uint8' : ids instanceof Uint16Array ? 'uint16' : 'uint32';
}

/** The ids and vocabulary of an entry, or undefined (absent, or unreadable: then it is removed). */
export function readCache(o: TokenCacheOptions, key: string): { ids: TokenIds; tokens: string[] } | undefined {
  const json = path.join(o.dir, `${key}.json`);
  const idsFile = path.join(o.dir, `${key}.ids`);
  if (!fs.existsSync(json)) return undefined;
  try {
    const e = JSON.parse(fs.readFileSync(json, 'utf8')) as Entry;
    const A = ARRAYS[e.dtype];
    if (e.version !== VERSION || !A || !Array.isArray(e.tokens)) throw new Error('unknown entry');
    const ids = new A(e.length);
    const bytes = new Uint8Array(ids.buffer);
    const fd = fs.openSync(idsFile, 'r');
    try {
      if (fs.fstatSync(fd).size !== bytes.byteLength) throw new Error('truncated ids');
      for (let at = 0; at < bytes.byteLength; ) {
        const n = fs.readSync(fd, bytes, at, Math.min(bytes.byteLength - at, 1 << 30), at);
        if (n === 0) throw new Error('truncated ids');
        at += n;
      }
    } finally {
      fs.closeSync(fd);
    }
    // the entry was used now: it is the last to go
    const now = new Date();
    fs.utimesSync(json, now, now);
    return { ids, tokens: e.tokens };
  } catch {
    fs.rmSync(json, { force: true });
    fs.rmSync(idsFile, { force: true });
    return undefined;
  }
}

/** Writes an entry, then removes the entries used longest ago while the cache holds more than maxBytes. */
export function writeCache(o: TokenCacheOptions, key: string, meta: Pick<Entry, 'file' | 'size' | 'mtimeMs' | 'options'>, ids: TokenIds, tokens: readonly string[]): void {
  const bytes = ids.byteLength;
  if (bytes > o.maxBytes) return; // larger than the whole cache
  try {
    writeFileAtomic(path.join(o.dir, `${key}.ids`), new Uint8Array(ids.buffer, ids.byteOffset, bytes));
    const entry: Entry = { version: VERSION, ...meta, dtype: dtypeOf(ids), length: ids.length, tokens: [...tokens] };
    writeFileAtomic(path.join(o.dir, `${key}.json`), JSON.stringify(entry));
    prune(o, key);
  } catch {
    // a cache that cannot be written (read-only folder, full disk) only costs the next run its time
  }
}

/** Entries of the cache, the least recently used first, with their sizes. */
export function cacheEntries(dir: string): { key: string; bytes: number; used: number }[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: { key: string; bytes: number; used: number }[] = [];
  for (const n of names) {
    if (!n.endsWith('.json')) continue;
    const key = n.slice(0, -5);
    try {
      const st = fs.statSync(path.join(dir, n));
      const ids = fs.statSync(path.join(dir, `${key}.ids`));
      out.push({ key, bytes: st.size + ids.size, used: st.mtimeMs });
    } catch {
      // half an entry: ignored (readCache removes it)
    }
  }
  return out.sort((a, b) => a.used - b.used);
}

function prune(o: TokenCacheOptions, keep: string): void {
  const entries = cacheEntries(o.dir);
  let total = entries.reduce((s, e) => s + e.bytes, 0);
  for (const e of entries) {
    if (total <= o.maxBytes) break;
    if (e.key === keep) continue;
    fs.rmSync(path.join(o.dir, `${e.key}.json`), { force: true });
    fs.rmSync(path.join(o.dir, `${e.key}.ids`), { force: true });
    total -= e.bytes;
  }
}
