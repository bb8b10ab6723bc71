// Big corpora (issue 13): tokenising in chunks gives the ids of tokenising the whole text, ids in the
// narrowest array, the token cache, the bounded validation, and a read that a stop cancels.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildVocab, lettersOnly, loadTextCorpus, TextOptions, Tokenizer } from '../../src/engine/data/text';
import { cacheEntries } from '../../src/engine/data/tokencache';
import { Cancelled } from '../../src/engine/errors';
import { runTraining } from '../../src/engine/train/loop';
import { readRunRecord } from '../../src/engine/train/runrecord';
import { byteSize } from '../../src/cli/main';
import type { FromWorker } from '../../src/shared/protocol';

const where = { file: '/m.gatelab.yaml', line: 3, key: 'data.source' };
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-corpus-'));
const OPTIONS: TextOptions[] = (['char', 'word'] as const).flatMap((tokens) => (['none', 'letters'] as const).map((preprocess) => ({ tokens, preprocess, minFrequency: 0 })));

/** The tokens of a whole text by the plain rules (what the chunked tokenizer must reproduce). */
function wholeText(text: string, o: TextOptions): string[] {
  const out: string[] = [];
  const emit = (s: string) => {
    if (o.tokens === 'char') out.push(...s);
    else out.push(...s.split(/\s+/).filter(Boolean));
  };
  if (o.preprocess === 'letters') {
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    for (const l of lines) emit(lettersOnly(l));
  } else emit(text);
  return out;
}

// multi-byte characters (2, 3 and 4 bytes: é, 日本, 😀 and 𝄞 beyond the BMP), words cut anywhere,
// CRLF and LF, runs of punctuation, a line of non-letters, and no final newline
const TEXT =
  'Été — the Time Traveller, 日本語の文章 and 😀😀 smiles.\r\n' +
  'A line   with  spaces; 𝄞 music!!\n\n' +
  '12345 ... ---\n' +
  'naïve café résumé: words-with-dashes and tabs\tand more\n' +
  'the end without a newline 😀';

describe('tokenising in chunks', () => {
  it('string chunks cut at every position give the tokens of the whole text, for every option', () => {
    for (const o of OPTIONS) {
      const expected = wholeText(TEXT, o);
      for (const size of [1, 2, 3, 5, 7, 11, 64, TEXT.length]) {
        const got: string[] = [];
        const t = new Tokenizer(o, (tok) => got.push(tok));
        for (let i = 0; i < TEXT.length; i += size) t.push(TEXT.slice(i, i + size));
        t.end();
        expect(got, `${o.tokens}/${o.preprocess}, chunks of ${size}`).toEqual(expected);
      }
    }
  });

  it('files read in chunks of 1–13 bytes (edges inside multi-byte characters and words) give the ids of the whole text', async () => {
    const dir = tmp();
    const file = path.join(dir, 'c.txt');
    fs.writeFileSync(file, TEXT.repeat(3));
    for (const o of OPTIONS) {
      const tokens = wholeText(TEXT.repeat(3), o);
      const counts = new Map<string, number>();
      for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
      const vocab = buildVocab(counts, 0);
      const expected = tokens.map((t) => vocab.id(t));
      for (const chunkBytes of [1, 2, 3, 4, 5, 13, 1 << 22]) {
        const c = await loadTextCorpus(file, o, where, undefined, { chunkBytes });
        expect(c.vocab.tokens, `${o.tokens}/${o.preprocess}, ${chunkBytes} B`).toEqual(vocab.tokens);
        expect(Array.from(c.ids), `${o.tokens}/${o.preprocess}, ${chunkBytes} B`).toEqual(expected);
      }
    }
  });

  it('ids in the narrowest array: 8 bits up to 256 tokens, 16 bits beyond', async () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'small.txt'), 'abc abd\n');
    fs.writeFileSync(path.join(dir, 'big.txt'), Array.from({ length: 300 }, (_, i) => `w${i}`).join(' '));
    const small = await loadTextCorpus(path.join(dir, 'small.txt'), OPTIONS[0], where);
    const big = await loadTextCorpus(path.join(dir, 'big.txt'), { tokens: 'word', preprocess: 'none', minFrequency: 0 }, where);
    expect(small.ids).toBeInstanceOf(Uint8Array);
    expect(big.ids).toBeInstanceOf(Uint16Array);
    expect(big.vocab.size).toBe(301);
    expect(big.vocab.tokens[big.ids[299]]).toBe('w299');
  });
});

describe('the token cache', () => {
  it('a second read maps the ids back in; a changed file, other settings or --no-cache tokenise again; a broken entry is replaced', async () => {
    const dir = tmp();
    const file = path.join(dir, 'c.txt');
    const cacheDir = path.join(dir, '.gatelab', 'cache');
    fs.writeFileSync(file, TEXT.repeat(5));
    const cache = { dir: cacheDir, maxBytes: 1 << 30 };
    const o = OPTIONS[0];
    const first = await loadTextCorpus(file, o, where, undefined, { cache });
    expect(first.cached).toBe(false);
    expect(cacheEntries(cacheDir)).toHaveLength(1);
    const second = await loadTextCorpus(file, o, where, undefined, { cache });
    expect(second.cached).toBe(true);
    expect(Array.from(second.ids)).toEqual(Array.from(first.ids));
    expect(second.ids).toBeInstanceOf(Uint8Array);
    expect(second.vocab.tokens).toEqual(first.vocab.tokens);
    // other tokenizer settings are another entry
    expect((await loadTextCorpus(file, { ...o, tokens: 'word' }, where, undefined, { cache })).cached).toBe(false);
    expect(cacheEntries(cacheDir)).toHaveLength(2);
    // no cache given (--no-cache): tokenised, nothing written
    expect((await loadTextCorpus(file, o, where)).cached).toBe(false);
    expect(cacheEntries(cacheDir)).toHaveLength(2);
    // the file changes (same size, another time and content): tokenised again
    fs.writeFileSync(file, TEXT.repeat(5).replace('Été', 'Eté!'));
    fs.utimesSync(file, new Date(), new Date(Date.now() + 5000));
    const changed = await loadTextCorpus(file, o, where, undefined, { cache });
    expect(changed.cached).toBe(false);
    expect(changed.vocab.tokens).toContain('!');
    // a truncated ids file is removed and replaced
    const broken = cacheEntries(cacheDir).at(-1)!;
    fs.truncateSync(path.join(cacheDir, `${broken.key}.ids`), 3);
    const again = await loadTextCorpus(file, o, where, undefined, { cache });
    expect(again.cached).toBe(false);
    expect(Array.from(again.ids)).toEqual(Array.from(changed.ids));
    expect((await loadTextCorpus(file, o, where, undefined, { cache })).cached).toBe(true);
  });

  it('holds at most its limit: the entries used longest ago go first', async () => {
    const dir = tmp();
    const cacheDir = path.join(dir, 'cache');
    const files = [0, 1, 2].map((i) => {
      const f = path.join(dir, `c${i}.txt`);
      fs.writeFileSync(f, `${i} `.repeat(1000)); // 2000 tokens: about 2.1 KB an entry
      return f;
    });
    const cache = { dir: cacheDir, maxBytes: 5000 }; // two entries of about 2 KB fit, not three
    const keys: string[] = [];
    for (const f of files.slice(0, 2)) {
      await loadTextCorpus(f, OPTIONS[0], where, undefined, { cache });
      keys.push(cacheEntries(cacheDir).map((e) => e.key).find((k) => !keys.includes(k))!);
    }
    // both used a while ago, c0 before c1; then c0 is used again: c1 is the one used longest ago
    keys.forEach((k, i) => fs.utimesSync(path.join(cacheDir, `${k}.json`), new Date(Date.now() - 120_000 + i * 1000), new Date(Date.now() - 120_000 + i * 1000)));
    expect((await loadTextCorpus(files[0], OPTIONS[0], where, undefined, { cache })).cached).toBe(true);
    await loadTextCorpus(files[2], OPTIONS[0], where, undefined, { cache });
    const left = cacheEntries(cacheDir);
    expect(left).toHaveLength(2);
    expect(left.reduce((s, e) => s + e.bytes, 0)).toBeLessThanOrEqual(5000);
    expect(left.map((e) => e.key)).toContain(keys[0]);
    expect(left.map((e) => e.key)).not.toContain(keys[1]);
  });

  it('--cache-max takes sizes such as 8G and 512M', () => {
    expect(byteSize('8G', '--cache-max')).toBe(8 * 1024 ** 3);
    expect(byteSize('512M', '--cache-max')).toBe(512 * 1024 ** 2);
    expect(byteSize('1.5GiB', '--cache-max')).toBe(1.5 * 1024 ** 3);
    expect(byteSize('1000', '--cache-max')).toBe(1000);
    expect(() => byteSize('lots', '--cache-max')).toThrow(/expected a size such as 8G/);
  });
});

describe('a big corpus in the training loop', () => {
  const model = (extra: string) =>
    `name: lm\ntask: language-model\ndata:\n  source: c.txt\n  tokens: char\n  sequenceLength: 8\n  validation: 0.5\n${extra}model:\n  embedding: 0\n  layers:\n    - type: lstm\n      hidden: 4\ntrain:\n  steps: 2\n  batchSize: 2\n`;

  async function train(dir: string, stop: (messages: FromWorker[]) => boolean, job: Record<string, unknown> = {}) {
    const messages: FromWorker[] = [];
    const runDir = path.join(dir, 'runs', String(Math.random()).slice(2));
    const summary = await runTraining({ modelFile: path.join(dir, 'm.gatelab.yaml'), runDir, progressEveryMs: 0, gatesEveryMs: 0, sampleAtEnd: false, ...job }, { emit: (m) => messages.push(m), shouldStop: () => stop(messages) });
    return { summary, messages, runDir };
  }

  it('validation reads at most data.validationTokens of the held-out tail, and says so', async () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'c.txt'), 'abcdefgh '.repeat(200));
    fs.writeFileSync(path.join(dir, 'm.gatelab.yaml'), model('  validationTokens: 100\n'));
    const r = await train(dir, () => false);
    const logs = r.messages.filter((m) => m.type === 'log').map((m) => (m as { message: string }).message);
    expect(logs).toContain('validation: the first 100 of the 900 held-out tokens are evaluated each time (data.validationTokens)');
    expect(r.summary.validLoss).not.toBeNull();
    // the second run maps the ids in from .gatelab/cache beside the model file
    const again = await train(dir, () => false);
    expect(again.messages.some((m) => m.type === 'log' && /tokens of c\.txt from the token cache/.test(m.message))).toBe(true);
    expect(again.summary.trainLoss).toBeCloseTo(r.summary.trainLoss, 5);
    // --no-cache tokenises again
    const fresh = await train(dir, () => false, { cache: false });
    expect(fresh.messages.some((m) => m.type === 'log' && /token cache/.test(m.message))).toBe(false);
  });

  it('the read reports its progress, and a stop while reading ends the run stopped (not failed) at once', async () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'c.txt'), 'abcdefgh '.repeat(1_000_000)); // 9 MB: three chunks
    fs.writeFileSync(path.join(dir, 'm.gatelab.yaml'), model(''));
    // the stop comes once the first chunk is read
    const r = await train(dir, (ms) => ms.some((m) => m.type === 'reading'), { cache: false, progressEveryMs: 0 });
    const reading = r.messages.filter((m) => m.type === 'reading');
    expect(reading).toHaveLength(1);
    expect(reading[0]).toMatchObject({ type: 'reading', pass: 1, passes: 2, size: 9_000_000 });
    expect(r.summary).toMatchObject({ stopped: true, steps: 0 });
    expect(r.messages.some((m) => m.type === 'started')).toBe(false);
    expect(readRunRecord(r.runDir)).toMatchObject({ status: 'stopped' });
    expect(r.messages.some((m) => m.type === 'log' && /stopped while reading .*c\.txt/.test(m.message))).toBe(true);
  });

  it('Cancelled is what a stopped read throws', async () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'c.txt'), 'abc '.repeat(100));
    await expect(loadTextCorpus(path.join(dir, 'c.txt'), OPTIONS[0], where, undefined, { chunkBytes: 16, shouldStop: () => true })).rejects.toBeInstanceOf(Cancelled);
  });
});

describe('CSV and TSV as a stream', () => {
  it('a binary file given as a CSV or TSV is refused at its first offending byte; quoted line breaks keep the line numbers', async () => {
    const { allRecords } = await import('../../src/engine/data/csv');
    const dir = tmp();
    const f = path.join(dir, 'x.csv');
    fs.writeFileSync(f, Buffer.concat([Buffer.from('a,b\n1,2\n3,'), Buffer.from([0]), Buffer.from('\n')]));
    await expect(allRecords(f, { key: 'data.source' }, { missing: '' })).rejects.toThrow(/x\.csv:3:3: the data holds a NUL byte \(byte offset 10\)/);
    fs.writeFileSync(f, 'a,b\n"x\ny\nz",1\n\r\nlast,2');
    expect(await allRecords(f, {}, { missing: '' })).toEqual([
      { fields: ['a', 'b'], line: 1 },
      { fields: ['x\ny\nz', '1'], line: 2 },
      { fields: ['last', '2'], line: 6 },
    ]);
    const t = path.join(dir, 'x.tsv');
    fs.writeFileSync(t, 'he said "hi"\tpos\n\ta\tb\tneg\n');
    expect(await allRecords(t, {}, { delimiter: '\t', quotes: false, missing: '' })).toEqual([
      { fields: ['he said "hi"', 'pos'], line: 1 },
      { fields: ['', 'a', 'b', 'neg'], line: 2 },
    ]);
    await expect(allRecords(path.join(dir, 'none.csv'), { key: 'data.source' }, { missing: 'fix data.source' })).rejects.toThrow(/data file not found/);
  });
});
