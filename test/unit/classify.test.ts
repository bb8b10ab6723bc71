// task: classification — the UCI sentiment sentences, padding that changes nothing, gradients,
// bad input.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildClassifyGradProgram, classifyParams, ClassifySpec } from '../../src/engine/train/classify';
import { Rng } from '../../src/engine/util/rng';

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/cli.js');
const DATA = path.resolve(ROOT, '../shared/data/sentiment');

function run(dir: string, args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function model(dir: string, sources: string[]): string {
  const f = path.join(dir, 's.gatelab.yaml');
  fs.writeFileSync(
    f,
    `name: s\ntask: classification\ndata:\n  source:\n${sources.map((s) => `    - ${s}`).join('\n')}\n  tokens: word\n  minFrequency: 2\n  preprocess: letters\n  sequenceLength: 40\n  validation: 0.2\n  split: random\n  pooling: mean\nmodel:\n  embedding: 64\n  layers:\n    - { type: lstm, hidden: 64 }\ntrain:\n  epochs: 4\n  batchSize: 32\n  optimizer: { type: adam, learningRate: 0.005 }\n  clipNorm: 1\n  seed: 42\n`,
  );
  return f;
}

describe('classification', () => {
  it('sentiment: trained on a random 80% of the three UCI files, at least 78% accuracy on the rest', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-cls-'));
    const r = run(dir, ['train', model(dir, ['amazon_cells_labelled.txt', 'imdb_labelled.txt', 'yelp_labelled.txt'].map((f) => path.join(DATA, f))), '--quiet', '--no-record', '--save', 'w.safetensors']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    const pos = JSON.parse(run(dir, ['predict', 's.gatelab.yaml', '--init', 'w.safetensors', '--input', 'The food was wonderful and the staff were friendly']).stdout);
    const neg = JSON.parse(run(dir, ['predict', 's.gatelab.yaml', '--init', 'w.safetensors', '--input', 'Terrible service, I will never come back']).stdout);
    expect([pos.label, neg.label]).toEqual(['1', '0']);
    expect(pos.probabilities['0'] + pos.probabilities['1']).toBeCloseTo(1, 5);
    expect(Object.keys(s).slice(0, 6)).toEqual(['model', 'device', 'steps', 'trainLoss', 'validLoss', 'accuracy']);
    expect(s.accuracy).toBeGreaterThanOrEqual(0.78);
    expect(s.classes).toEqual(['0', '1']);
    const n = s.confusion.flat().reduce((a: number, b: number) => a + b, 0);
    expect(n).toBe(600);
    expect((s.confusion[0][0] + s.confusion[1][1]) / n).toBeCloseTo(s.accuracy, 12);
  });

  for (const pooling of ['last', 'mean'] as const) {
    it(`${pooling} pooling: gradients match finite differences, and padded steps change nothing`, async () => {
      const spec: ClassifySpec = { vocab: 7, embedding: 3, hidden: [4, 3], classes: 3, pooling, dtype: 'float64' };
      const [B, T] = [3, 6];
      const lens = [6, 2, 4];
      const prog = buildClassifyGradProgram({ spec, B, T });
      const s = await ort.InferenceSession.create(prog.graph.encode(), { logSeverityLevel: 3 });
      const rng = new Rng(9);
      const x = BigInt64Array.from({ length: T * B }, () => BigInt(rng.int(1, 6)));
      const mask = new Float64Array(T * B);
      const last = new BigInt64Array(B * 3);
      lens.forEach((n, b) => {
        for (let t = 0; t < n; t++) mask[t * B + b] = 1;
        last.fill(BigInt(n - 1), b * 3, (b + 1) * 3);
      });
      const feeds: Record<string, ort.Tensor> = {
        x: new ort.Tensor('int64', x, [T, B]),
        y: new ort.Tensor('int64', BigInt64Array.of(0n, 2n, 1n), [B]),
        mask: new ort.Tensor('float64', mask, [T, B]),
        last: new ort.Tensor('int64', last, [B, 1, 3]),
      };
      for (const p of classifyParams(spec)) feeds[`p.${p.name}`] = new ort.Tensor('float64', Float64Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-0.9, 0.9)), p.shape);
      const r = await s.run(feeds);
      const loss = async () => ((await s.run(feeds)).loss.data as Float64Array)[0];
      for (const p of classifyParams(spec)) {
        const t = feeds[`p.${p.name}`].data as Float64Array;
        const d = r[`d.${p.name}`].data as Float64Array;
        for (let i = 0; i < t.length; i++) {
          const old = t[i];
          t[i] = old + 1e-6;
          const up = await loss();
          t[i] = old - 1e-6;
          const down = await loss();
          t[i] = old;
          const fd = (up - down) / 2e-6;
          expect(Math.abs(fd - d[i]), `${p.name}[${i}]`).toBeLessThanOrEqual(1e-8 + 1e-5 * Math.abs(fd));
        }
      }
      // change every padded token: the loss stays the same
      const before = await loss();
      lens.forEach((n, b) => {
        for (let t = n; t < T; t++) x[t * B + b] = BigInt((Number(x[t * B + b]) % 6) + 1);
      });
      expect(await loss()).toBe(before);
      await s.release();
    });
  }

  it('bad input: a line without a label, a label column with one class', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-cls-'));
    fs.writeFileSync(path.join(dir, 'a.tsv'), 'good film\t1\nno label here\n');
    let r = run(dir, ['train', model(dir, ['a.tsv'])]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/a\.tsv:2: no tab between the sentence and its label/);
    expect(r.stderr).toMatch(/s\.gatelab\.yaml:\d+:\d+: data\.source/);
    fs.writeFileSync(path.join(dir, 'b.tsv'), 'good film\t1\ngreat film\t1\n');
    r = run(dir, ['train', model(dir, ['b.tsv'])]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/every example has the label "1": a classifier needs at least two classes/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
