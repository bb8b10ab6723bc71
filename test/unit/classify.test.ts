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
import { loadLabelled } from '../../src/engine/data/labelled';
import { allRecords } from '../../src/engine/data/csv';
import { isUserError } from '../../src/engine/errors';

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/cli.js');
const DATA = path.resolve(ROOT, 'examples/data/sentiment');

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

  it('CSV files: RFC 4180 records (quoted commas, quotes, line breaks), columns by header name', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-csv-'));
    fs.writeFileSync(path.join(tmp, 'r.csv'), '\uFEFFid,review,label\r\n1,"Good, really ""good""",1\n\n2,"two\nlines",0\n  \n3,plain,1');
    expect(await allRecords(path.join(tmp, 'r.csv'), {}, { missing: '' })).toEqual([
      { fields: ['id', 'review', 'label'], line: 1 },
      { fields: ['1', 'Good, really "good"', '1'], line: 2 },
      { fields: ['2', 'two\nlines', '0'], line: 4 },
      { fields: ['3', 'plain', '1'], line: 7 },
    ]);
    // the UCI files as one CSV (sentences quoted, some with commas and quotes, a column between):
    // the same examples as reading the TSV files
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-csv-'));
    const files = ['amazon_cells_labelled.txt', 'imdb_labelled.txt', 'yelp_labelled.txt'].map((f) => path.join(DATA, f));
    const rows = ['"review text",source,sentiment'];
    for (const f of files)
      for (const line of fs.readFileSync(f, 'utf8').split(/\r?\n/)) {
        const tab = line.lastIndexOf('\t');
        if (tab >= 0) rows.push(`"${line.slice(0, tab).replace(/"/g, '""')}",${path.basename(f, '.txt')},${line.slice(tab + 1)}`);
      }
    fs.writeFileSync(path.join(dir, 'all.csv'), rows.join('\r\n') + '\r\n');
    const opts = { tokens: 'word', preprocess: 'letters', minFrequency: 0 } as const;
    const where = { file: 'm.gatelab.yaml', line: 1, key: 'data.source' };
    const tsv = await loadLabelled(files, opts, where);
    const csv = await loadLabelled([path.join(dir, 'all.csv')], opts, where, { text: 'review text', label: 'sentiment' });
    expect(csv.classes).toEqual(tsv.classes);
    expect(csv.examples).toEqual(tsv.examples);
    expect(csv.examples.length).toBeGreaterThan(2900);
    // a misspelt column: named at its key, with the nearest header and all of them
    let err: unknown;
    try {
      await loadLabelled([path.join(dir, 'all.csv')], opts, where, { text: 'review text', label: 'sentimnt', whereLabel: { file: 'm.gatelab.yaml', line: 7, key: 'data.labelColumn' } });
    } catch (e) {
      err = e;
    }
    expect(isUserError(err)).toBe(true);
    expect((err as Error).message).toMatch(/all\.csv has no column "sentimnt" \(did you mean "sentiment"\?\)/);
    expect((err as { where: { line: number; key: string } }).where).toMatchObject({ line: 7, key: 'data.labelColumn' });
    expect((err as { hint?: string }).hint).toBe('its columns: "review text", "source", "sentiment"');
  });

  it('CSV through the CLI: trains from the named columns; missing column keys and a short row are errors at their place', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-csv-'));
    const pos = ['a wonderful film', 'great acting, great story', 'I loved it', 'superb and moving', 'a joy to watch'];
    const neg = ['a dull film', 'terrible acting, no story', 'I hated it', 'boring and slow', 'a waste of time'];
    const rows = ['text,label', ...[...pos.map((t) => `"${t}",pos`), ...neg.map((t) => `"${t}",neg`)].flatMap((r) => [r, r, r, r])];
    fs.writeFileSync(path.join(dir, 'd.csv'), rows.join('\n') + '\n');
    const file = model(dir, ['d.csv']);
    const yaml = fs.readFileSync(file, 'utf8');
    // without the column keys: the loader says what to add, at data
    let r = run(dir, ['train', file, '--quiet', '--no-record']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/s\.gatelab\.yaml:3:\d+: .*a classifier reading CSV files needs data\.textColumn/);
    fs.writeFileSync(file, yaml.replace('  tokens: word\n', '  textColumn: text\n  labelColumn: label\n  tokens: word\n').replace('epochs: 4', 'epochs: 2').replace('minFrequency: 2', 'minFrequency: 0'));
    r = run(dir, ['train', file, '--quiet', '--no-record']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).classes).toEqual(['neg', 'pos']);
    fs.appendFileSync(path.join(dir, 'd.csv'), 'only one field\n');
    r = run(dir, ['train', file, '--quiet', '--no-record']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`d.csv:${rows.length + 1}: the row has 1 field, the header 2`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

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
