// Classification of numeric sequences (src/engine/tasks/numericClassification.ts, data/sequences.ts):
// one CSV per sequence with a label table, or one long CSV with an id column; masks, scaling, the
// random and group-table splits; errors at their keys; predict, probe, grad (FD) and export.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { parseModelFile, diagnoseModelText } from '../../src/engine/config/load';
import { loadNumericSequences } from '../../src/engine/data/sequences';
import { encodeSequences, numericGrad, numericSpecOf, SequenceLayout } from '../../src/engine/tasks/numericClassification';
import { buildClassifyPredictProgram, classifyParams } from '../../src/engine/train/classify';
import { initParams } from '../../src/engine/nn/init';
import { saveCheckpoint, loadCheckpoint } from '../../src/engine/train/checkpoint';
import { Rng } from '../../src/engine/util/rng';
import { fdAll } from '../reference/fd';

const CLI = path.resolve(__dirname, '../../dist/cli.js');

/** 24 sequences of 2 channels, 3–10 steps; label 1 when channel 0 drifts up; three groups. */
function writeData(dir: string) {
  const rng = new Rng(5);
  fs.mkdirSync(path.join(dir, 'seq'));
  const labels = ['#sequence_ID, class_label'];
  const groups = ['#sequence_ID, dataset_ID'];
  const long = ['id,a,b,label'];
  for (let i = 1; i <= 24; i++) {
    const up = i % 2 === 0;
    const n = 3 + (i % 8);
    const rows = Array.from({ length: n }, (_, t) => [((up ? 1 : -1) * t) / n + 0.1 * rng.normal(), 5 + rng.normal()]);
    fs.writeFileSync(path.join(dir, 'seq', `S_${i}.csv`), '#a, b\n' + rows.map((r) => r.map((v) => v.toFixed(4)).join(',')).join('\n') + '\n');
    labels.push(`${i},${up ? 1 : -1}`);
    groups.push(`${i},${1 + (i % 3)}`);
    for (const r of rows) long.push(`${i},${r.map((v) => v.toFixed(4)).join(',')},${up ? 1 : -1}`);
  }
  fs.writeFileSync(path.join(dir, 'labels.csv'), labels.join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'groups.csv'), groups.join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'long.csv'), long.join('\n') + '\n');
}
const model = (data: string, extra = '') => `name: m\ntask: classification\ndata: { ${data} }\nmodel: { layers: [{ hidden: 6 }] }\ntrain: { epochs: 3, batchSize: 4, optimizer: { type: adam, learningRate: 0.01 }${extra} }\n`;
const PER_FILE = 'sequences: "seq/S_{id}.csv", labels: { file: labels.csv, id: sequence_ID, label: class_label }';

describe('numeric sequence classification', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-numcls-'));
  writeData(dir);
  const cfgOf = (data: string) => parseModelFile(model(data), path.join(dir, 'm.gatelab.yaml'))[0];
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8' });

  it('one CSV per sequence and one long CSV give the same sequences; header names trimmed, # ignored', async () => {
    const a = await loadNumericSequences(cfgOf(PER_FILE));
    const b = await loadNumericSequences(cfgOf('source: long.csv, idColumn: id, labelColumn: label'));
    expect(a.columns).toEqual(['a', 'b']);
    expect(b.columns).toEqual(['a', 'b']);
    expect(a.ids).toEqual(Array.from({ length: 24 }, (_, i) => String(i + 1)));
    expect(b.ids).toEqual(a.ids);
    expect(b.labels).toEqual(a.labels);
    expect(b.lengths).toEqual(a.lengths);
    b.steps.forEach((s, i) => expect(Array.from(s)).toEqual(Array.from(a.steps[i])));
    const c = await loadNumericSequences(cfgOf('source: long.csv, idColumn: id, labels: { file: labels.csv }, columns: [b]'));
    expect(c.columns).toEqual(['b']);
    expect(c.labels).toEqual(a.labels);
  });

  it('padding never counts: a sequence in a batch with longer ones gets the probabilities it gets alone (last and mean pooling)', async () => {
    for (const pooling of ['last', 'mean'] as const) {
      const cfg = cfgOf(`${PER_FILE}, pooling: ${pooling}`);
      const spec = numericSpecOf(cfg, 2, 2);
      const params = classifyParams(spec);
      const w = initParams(params, cfg.model.layers, 3, 'float32');
      const feeds = Object.fromEntries(params.map((p) => [`p.${p.name}`, new ort.Tensor('float32', w.get(p.name)!.data as Float32Array, p.shape)]));
      const rng = new Rng(1);
      const short = Float64Array.from({ length: 3 * 2 }, () => rng.normal());
      const long = Float64Array.from({ length: 9 * 2 }, () => rng.normal());
      const probs = async (seqs: Float64Array[], lens: number[], T: number) => {
        const l: SequenceLayout = { columns: ['a', 'b'], mean: [0, 0], std: [1, 1], T };
        const e = encodeSequences(seqs, lens, lens.map(() => 0), l, 6);
        const s = await ort.InferenceSession.create(buildClassifyPredictProgram({ spec, N: seqs.length, T }).graph.encode(), { logSeverityLevel: 3 });
        const r = (await s.run({ ...feeds, x: new ort.Tensor('float32', e.x as Float32Array, [T, seqs.length, 2]), mask: new ort.Tensor('float32', e.m as Float32Array, [T, seqs.length]), last: new ort.Tensor('int64', e.last, [seqs.length, 1, 6]) })).probs.data as Float32Array;
        await s.release();
        return Array.from(r);
      };
      const alone = await probs([short], [3], 3);
      const together = await probs([long, short], [9, 3], 9);
      for (let c = 0; c < 2; c++) expect(together[2 + c]).toBeCloseTo(alone[c], 6);
    }
  });

  it('trains from the CLI with a random and a group-table split: accuracy, confusion, the split described', () => {
    let r = run('train', writeModel(dir, PER_FILE + ', split: random, validation: 0.25'), '--no-record');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/18 training and 6 validation sequences of 2 features \(a, b\), 3–10 steps; 2 classes \(-1, 1\); validation: random 0\.25/);
    let sum = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(sum.classes).toEqual(['-1', '1']);
    expect(sum.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(6);
    r = run('train', writeModel(dir, PER_FILE + ', split: { file: groups.csv, id: sequence_ID, group: dataset_ID, valid: [3] }'), '--no-record', '--save', 'w.safetensors');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/16 training and 8 validation sequences .*validation: group 3/);
    sum = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(sum.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(8);
    expect(typeof sum.accuracy).toBe('number');
    // predict and probe one sequence from its CSV; export with the lengths as input
    r = run('predict', 'm.gatelab.yaml', '--init', 'w.safetensors', '--input', 'seq/S_4.csv');
    expect(r.status, r.stderr).toBe(0);
    const p = JSON.parse(r.stdout);
    expect(Object.keys(p.probabilities).sort()).toEqual(['-1', '1']);
    r = run('probe', 'm.gatelab.yaml', '--init', 'w.safetensors', '--input', 'seq/S_4.csv', '--json');
    expect(r.status, r.stderr).toBe(0);
    const probe = JSON.parse(r.stdout);
    expect(probe.tokens).toEqual(['0', '1', '2', '3', '4', '5', '6']);
    r = run('export', 'm.gatelab.yaml', '--init', 'w.safetensors', '--onnx', 'm.onnx');
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).inputs).toEqual(['x', 'lengths']);
  });

  it('the exported model gives the predict program\'s probabilities for sequences of different lengths', async () => {
    const cfg = cfgOf(PER_FILE);
    const ck = loadCheckpoint(path.join(dir, 'w.safetensors'));
    const spec = numericSpecOf(cfg, 2, 2);
    const params = classifyParams(spec);
    const feeds = Object.fromEntries(params.map((p) => [`p.${p.name}`, new ort.Tensor('float32', Float32Array.from(ck.params.get(p.name)!.data), p.shape)]));
    const rng = new Rng(2);
    const T = 8;
    const lens = [8, 3, 5];
    const seqs = lens.map((n) => Float64Array.from({ length: n * 2 }, () => rng.normal()));
    const e = encodeSequences(seqs, lens, [0, 0, 0], { columns: ['a', 'b'], mean: [0, 0], std: [1, 1], T }, 6);
    const ours = await ort.InferenceSession.create(buildClassifyPredictProgram({ spec, N: 3, T }).graph.encode(), { logSeverityLevel: 3 });
    const a = (await ours.run({ ...feeds, x: new ort.Tensor('float32', e.x as Float32Array, [T, 3, 2]), mask: new ort.Tensor('float32', e.m as Float32Array, [T, 3]), last: new ort.Tensor('int64', e.last, [3, 1, 6]) })).probs.data as Float32Array;
    const theirs = await ort.InferenceSession.create(path.join(dir, 'm.onnx'));
    const b = (await theirs.run({ x: new ort.Tensor('float32', e.x as Float32Array, [T, 3, 2]), lengths: new ort.Tensor('int64', BigInt64Array.from(lens, BigInt), [3]) })).probs.data as Float32Array;
    for (let i = 0; i < a.length; i++) expect(b[i]).toBeCloseTo(a[i], 5);
  });

  it('gatelab grad: inputs [batch][time][features] of different lengths; the gradients match central finite differences', async () => {
    const cfg = cfgOf(PER_FILE);
    const ck = loadCheckpoint(path.join(dir, 'w.safetensors'));
    fs.writeFileSync(path.join(dir, 'batch.json'), JSON.stringify({ inputs: [[[0.1, 5], [0.3, 4.5], [0.2, 5.2]], [[-0.4, 5.1], [0.1, 4.9]]], targets: [1, 0] }));
    const plan = numericGrad(cfg, ck, path.join(dir, 'w.safetensors'), path.join(dir, 'batch.json'));
    expect(plan.shape).toBe('2x3x2');
    const s = await ort.InferenceSession.create(plan.program.graph.encode(), { logSeverityLevel: 3 });
    const feeds: Record<string, ort.Tensor> = { ...plan.feeds };
    for (const p of plan.params) feeds[`p.${p.name}`] = new ort.Tensor('float64', Float64Array.from(ck.params.get(p.name)!.data), p.shape);
    await fdAll(s, feeds, plan.params, 'numeric classifier');
    const r = run('grad', 'm.gatelab.yaml', '--init', 'w.safetensors', '--batch', 'batch.json', '--out', 'g.safetensors');
    expect(r.status, r.stderr).toBe(0);
  });

  it('each new key gives its error at the key; tables give file:line; a sequence with no label is named', () => {
    const keyErrors = (data: string) => diagnoseModelText(model(data), '/m/m.gatelab.yaml').map((p) => [p.error.where.key, p.error.message]);
    expect(keyErrors('sequences: "seq/S.csv", labels: { file: labels.csv }')[0]).toEqual(['data.sequences', '"seq/S.csv" is not a valid sequences']);
    expect(keyErrors('sequences: "seq/S_{id}.csv"')).toEqual([['data.labels', 'numeric sequences need data.labels, the table of their labels']]);
    expect(keyErrors('source: long.csv, idColumn: id')).toEqual([['data.labels', 'sequences of one long CSV need their labels: data.labels (a table) or data.labelColumn (a column of the CSV)']]);
    expect(keyErrors('source: a.txt, split: { file: g.csv, group: g, valid: [1] }')).toEqual([['data.split', 'a split by a group table applies to classification of numeric sequences']]);
    const err = (data: string) => {
      const r = run('train', writeModel(dir, data, 'bad.gatelab.yaml'), '--no-record');
      expect(r.status).toBe(2);
      return r.stderr;
    };
    expect(err('sequences: "seq/S_{id}.csv", labels: { file: labels.csv, id: seq }')).toMatch(/data\.labels\.id: the table .*labels\.csv has no column "seq" \(its columns: "sequence_ID", "class_label"\)/);
    expect(err('sequences: "seq/S_{id}.csv", labels: { file: labels.csv }, columns: [a, c]')).toMatch(/data\.columns\.1: the CSV .*S_1\.csv has no column "c" \(its columns: "a", "b"\)/);
    fs.writeFileSync(path.join(dir, 'labels2.csv'), fs.readFileSync(path.join(dir, 'labels.csv'), 'utf8').replace('\n7,', '\n,'));
    expect(err('sequences: "seq/S_{id}.csv", labels: { file: labels2.csv }')).toMatch(/labels2\.csv:8: data\.labels\.id: a row without an id/);
    fs.writeFileSync(path.join(dir, 'labels3.csv'), fs.readFileSync(path.join(dir, 'labels.csv'), 'utf8').replace(/\n24,.*\n$/, '\n'));
    expect(err('sequences: "seq/S_{id}.csv", labels: { file: labels3.csv }')).toMatch(/data\.labels: sequence 24 \(.*S_24\.csv\) has no label in .*labels3\.csv/);
    expect(err(PER_FILE + ', split: { file: groups.csv, group: dataset_ID, valid: [7] }')).toMatch(/data\.split\.valid\.0: no sequence is in group 7 \(the groups: /);
    expect(err(PER_FILE + ', probe: 99')).toMatch(/data\.probe: no sequence has the id 99/);
    const r = run('train', writeModel(dir, PER_FILE + ', probe: 4, split: random', 'probe.gatelab.yaml'), '--no-record', '--steps', '1');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/gate views: sequence 4( \(a training sequence\))?; /);
  });
});

function writeModel(dir: string, data: string, name = 'm.gatelab.yaml'): string {
  fs.writeFileSync(path.join(dir, name), model(data));
  return name;
}
void saveCheckpoint;
