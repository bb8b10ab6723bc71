// The key-query task (src/engine/tasks/keyQuery.ts): the sequences it generates, the model-file
// checks, and an LSTM that learns to answer the query far above chance.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { keyQueryBatch, keyQueryVocab } from '../../src/engine/tasks/keyQuery';
import { Rng } from '../../src/engine/util/rng';

const CLI = path.resolve(__dirname, '../../dist/cli.js');

describe('key-query task', () => {
  it('each sequence: noise, one KEY followed by a value, one later QUERY; the only non-blank target is the value at the QUERY', () => {
    const [T, values, B] = [12, 5, 200];
    const vocab = keyQueryVocab(values);
    expect(vocab).toEqual(['_', 'A', 'B', 'C', 'D', 'E', 'a', 'b', 'c', 'd', 'K', 'Q']);
    const KEY = vocab.indexOf('K');
    const QUERY = vocab.indexOf('Q');
    const { x, y, query } = keyQueryBatch(new Rng(3), T, values, B);
    const seen = new Set<number>();
    for (let b = 0; b < B; b++) {
      const xs = Array.from({ length: T }, (_, t) => x[t * B + b]);
      const ys = Array.from({ length: T }, (_, t) => y[t * B + b]);
      const k = xs.indexOf(KEY);
      const q = xs.indexOf(QUERY);
      expect(xs.filter((v) => v === KEY)).toHaveLength(1);
      expect(xs.filter((v) => v === QUERY)).toHaveLength(1);
      expect(k).toBeLessThanOrEqual(T / 2 - 2);
      expect(q).toBeGreaterThanOrEqual(k + 2);
      expect(q).toBe(query[b]);
      const v = xs[k + 1];
      expect(v).toBeGreaterThanOrEqual(1);
      expect(v).toBeLessThanOrEqual(values);
      seen.add(v);
      expect(ys).toEqual(xs.map((_, t) => (t === q ? v : 0)));
      // every other input is noise
      xs.forEach((s, t) => {
        if (t !== k && t !== k + 1 && t !== q) expect(vocab[s]).toMatch(/^[a-d]$/);
      });
    }
    expect(seen.size).toBe(values);
  });

  it('an LSTM learns to answer the query (accuracy ≥ 0.95 against chance 0.25); a sequence too short is an error at its key', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-kq-'));
    const model = (T: number) =>
      `name: kq\ntask: key-query\ndata: { sequenceLength: ${T}, values: 4 }\nmodel: { embedding: 8, layers: [{ type: lstm, hidden: 32 }] }\ntrain: { steps: 3000, batchSize: 32, evaluateEvery: 500, seed: 1, clipNorm: 1, optimizer: { type: adam, learningRate: 0.01 } }\n`;
    fs.writeFileSync(path.join(dir, 'kq.gatelab.yaml'), model(20));
    const r = spawnSync(process.execPath, [CLI, 'train', 'kq.gatelab.yaml', '--no-record', '--quiet'], { cwd: dir, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.chanceAccuracy).toBe(0.25);
    expect(s.accuracy).toBeGreaterThanOrEqual(0.95);
    fs.writeFileSync(path.join(dir, 'kq.gatelab.yaml'), model(3));
    const bad = spawnSync(process.execPath, [CLI, 'train', 'kq.gatelab.yaml', '--no-record'], { cwd: dir, encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/kq\.gatelab\.yaml:3:\d+: data\.sequenceLength: a key-query sequence of 3 steps has no room/);
  });
});

describe('key-query: gatelab probe --input', () => {
  it('the answer at the QUERY back through the sequence, with the gates; symbols outside the task and a missing Q are errors', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-kq-probe-'));
    fs.writeFileSync(path.join(dir, 'kq.gatelab.yaml'), 'name: kq\ntask: key-query\ndata: { sequenceLength: 10, values: 3 }\nmodel: { embedding: 4, layers: [{ type: lstm, hidden: 6 }] }\ntrain: { steps: 20, batchSize: 8, evaluateEvery: 10 }\n');
    const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8' });
    expect(cli(['train', 'kq.gatelab.yaml', '--quiet', '--no-record', '--save', 'w.safetensors']).status).toBe(0);
    const r = cli(['probe', 'kq.gatelab.yaml', '--init', 'w.safetensors', '--input', 'abKBcdabQa', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.tokens.join('')).toBe('abKBcdabQa');
    expect(out.connectivity).toHaveLength(1);
    // nothing after the query reaches its answer
    expect(out.connectivity[0][9]).toBe(0);
    expect(out.connectivity[0].slice(0, 9).every((v: number) => v > 0)).toBe(true);
    expect(out.layers[0].values.o).toHaveLength(10 * 6);
    expect(cli(['probe', 'kq.gatelab.yaml', '--init', 'w.safetensors', '--input', 'abKBzQ']).stderr).toMatch(/--input: "z" at position 4 is not a symbol of this task/);
    expect(cli(['probe', 'kq.gatelab.yaml', '--init', 'w.safetensors', '--input', 'abKBcd']).stderr).toMatch(/--input has no QUERY/);
  });
});
