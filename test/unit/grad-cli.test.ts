// `gatelab grad` for every task (DESIGN §3's batch layout), against PyTorch autograd: a bidirectional
// LSTM classifier with one-hot input and sentences of different lengths, a 2-layer bidirectional GRU
// classifier with an embedding, a 2-layer LSTM forecaster with horizon 3 (golden values from
// test/fixtures/golden/gen_golden.py `gradcli`: nn.LSTM / nn.GRU over pack_padded_sequence, h_n
// pooling). Plus the adding task (the forecast layout with two features) against finite differences,
// and bad batches named at their element.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensors, StTensor, writeSafetensors } from '../../src/engine/util/safetensors';

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/cli.js');
const GOLDEN = path.join(ROOT, 'test/fixtures/golden');

function gatelab(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-gradcli-'));
}

const ints = (t: StTensor) => Array.from(t.data as BigInt64Array, Number);
const floats = (t: StTensor) => Array.from(t.data as Float64Array);

/** Writes the golden's parameters as a user's PyTorch checkpoint, runs grad, compares every tensor. */
function checkAgainstGolden(fixture: string, modelYaml: string, batch: (g: Record<string, StTensor>) => object) {
  const g = readSafetensors(path.join(GOLDEN, `${fixture}.safetensors`)).tensors;
  const dir = tmpdir();
  const params = Object.fromEntries(Object.entries(g).filter(([k]) => /^(lstm|gru|fc|embedding)\./.test(k)));
  writeSafetensors(path.join(dir, 'w.safetensors'), params);
  fs.writeFileSync(path.join(dir, 'm.gatelab.yaml'), modelYaml);
  fs.writeFileSync(path.join(dir, 'b.json'), JSON.stringify(batch(g)));
  const r = gatelab(['grad', 'm.gatelab.yaml', '--init', 'w.safetensors', '--batch', 'b.json', '--out', 'g.safetensors'], dir);
  expect(r.code, r.stderr).toBe(0);
  const out = readSafetensors(path.join(dir, 'g.safetensors')).tensors;
  expect(Object.keys(out).sort()).toEqual([...Object.keys(params), 'loss'].sort());
  const loss = floats(out.loss)[0];
  const want = floats(g.loss)[0];
  expect(Math.abs(loss - want) / Math.abs(want)).toBeLessThan(1e-9);
  let worst = 0;
  for (const name of Object.keys(params)) {
    const a = floats(out[name]);
    const b = floats(g[`grad.${name}`]);
    expect(out[name].shape).toEqual(params[name].shape);
    const scale = Math.max(...b.map(Math.abs), 1e-300);
    for (let i = 0; i < a.length; i++) {
      const rel = Math.abs(a[i] - b[i]) / scale;
      worst = Math.max(worst, rel);
      expect(rel, `${name}[${i}]`).toBeLessThanOrEqual(1e-4);
    }
  }
  return { worst, dir };
}

/** Batch-major [B, T] ids cut to each row's length. */
function sentences(g: Record<string, StTensor>) {
  const [B, T] = g.x.shape;
  const x = ints(g.x);
  const lens = ints(g.lens);
  return { inputs: Array.from({ length: B }, (_, b) => x.slice(b * T, b * T + lens[b])), targets: ints(g.y) };
}

describe('gatelab grad: every task, against PyTorch', () => {
  it('a bidirectional LSTM classifier, one-hot input, pooling last, sentences of different lengths', () => {
    const { worst } = checkAgainstGolden(
      'cli_bilstm_onehot_cls',
      'name: c\ntask: classification\ndata: { source: d.tsv, pooling: last }\nmodel:\n  embedding: 0\n  layers:\n    - { type: lstm, hidden: 5, bidirectional: true }\n',
      sentences,
    );
    expect(worst).toBeLessThan(1e-9);
  });

  it('a 2-layer bidirectional GRU classifier with an embedding', () => {
    const { worst } = checkAgainstGolden(
      'cli_bigru2_embed_cls',
      'name: c\ntask: classification\ndata: { source: d.tsv, pooling: last }\nmodel:\n  embedding: 4\n  layers:\n    - { type: gru, hidden: 4, bidirectional: true }\n    - { type: gru, hidden: 4, bidirectional: true }\n',
      sentences,
    );
    expect(worst).toBeLessThan(1e-9);
  });

  it('a 2-layer LSTM forecaster with horizon 3, inputs as [batch][time] and as [batch][time][features]', () => {
    const yaml = 'name: f\ntask: forecast\ndata: { source: s.csv, column: v, window: 9, horizon: 3 }\nmodel:\n  layers:\n    - { type: lstm, hidden: 5 }\n    - { type: lstm, hidden: 5 }\n';
    const rows = (g: Record<string, StTensor>) => {
      const [B, T] = g.x.shape;
      const x = floats(g.x);
      const N = g.y.shape[1];
      const y = floats(g.y);
      return { x: Array.from({ length: B }, (_, b) => x.slice(b * T, (b + 1) * T)), y: Array.from({ length: B }, (_, b) => y.slice(b * N, (b + 1) * N)) };
    };
    const flat = checkAgainstGolden('cli_lstm2_forecast_h3', yaml, (g) => ({ inputs: rows(g).x, targets: rows(g).y }));
    const nested = checkAgainstGolden('cli_lstm2_forecast_h3', yaml, (g) => ({ inputs: rows(g).x.map((r) => r.map((v) => [v])), targets: rows(g).y }));
    expect(flat.worst).toBeLessThan(1e-9);
    expect(nested.worst).toBe(flat.worst);
  });
});

describe('gatelab grad: the adding task and bad batches', () => {
  it('adding: [batch][time][2] inputs, [batch][1] targets; the gradient matches central differences of the loss', () => {
    const dir = tmpdir();
    fs.writeFileSync(path.join(dir, 'a.gatelab.yaml'), 'name: a\ntask: adding\ndata: { sequenceLength: 6 }\nmodel: { layers: [{ hidden: 4 }] }\ntrain: { steps: 3, batchSize: 4 }\n');
    expect(gatelab(['train', 'a.gatelab.yaml', '--save', 'w.safetensors', '--quiet', '--no-record'], dir).code).toBe(0);
    const inputs = [
      [[0.2, 1], [0.5, 0], [0.9, 0], [0.1, 1], [0.4, 0], [0.3, 0]],
      [[0.7, 0], [0.6, 1], [0.2, 0], [0.8, 0], [0.5, 1], [0.1, 0]],
    ];
    const targets = [[0.3], [1.1]];
    fs.writeFileSync(path.join(dir, 'b.json'), JSON.stringify({ inputs, targets }));
    const grad = () => {
      const r = gatelab(['grad', 'a.gatelab.yaml', '--init', 'w.safetensors', '--batch', 'b.json', '--out', 'g.safetensors'], dir);
      expect(r.code, r.stderr).toBe(0);
      return readSafetensors(path.join(dir, 'g.safetensors')).tensors;
    };
    const g = grad();
    // one parameter at a time through the command: loss(w ± h) from the same batch
    const w = readSafetensors(path.join(dir, 'w.safetensors'));
    const name = 'fc.weight';
    const h = 1e-3;
    const base = w.tensors[name].data as Float32Array;
    const lossAt = (i: number, d: number) => {
      const data = Float64Array.from(base);
      data[i] += d;
      const tensors = Object.fromEntries(Object.entries(w.tensors).map(([k, t]) => [k, { ...t, dtype: 'F64' as const, data: k === name ? data : Float64Array.from(t.data as Float32Array) }]));
      writeSafetensors(path.join(dir, 'w64.safetensors'), tensors, w.metadata);
      const r = gatelab(['grad', 'a.gatelab.yaml', '--init', 'w64.safetensors', '--batch', 'b.json', '--out', 'g64.safetensors'], dir);
      expect(r.code, r.stderr).toBe(0);
      return (readSafetensors(path.join(dir, 'g64.safetensors')).tensors.loss.data as Float64Array)[0];
    };
    const analytic = Array.from(g[name].data as Float32Array);
    for (const i of [0, 2]) {
      const fd = (lossAt(i, h) - lossAt(i, -h)) / (2 * h);
      expect(Math.abs(fd - analytic[i])).toBeLessThanOrEqual(1e-4 + 1e-3 * Math.abs(fd));
    }
  });

  it('a classification batch: a class outside the checkpoint, a missing target, a token id too large', () => {
    const g = readSafetensors(path.join(GOLDEN, 'cli_bilstm_onehot_cls.safetensors')).tensors;
    const dir = tmpdir();
    writeSafetensors(path.join(dir, 'w.safetensors'), Object.fromEntries(Object.entries(g).filter(([k]) => /^(lstm|fc)\./.test(k))));
    fs.writeFileSync(path.join(dir, 'm.gatelab.yaml'), 'name: c\ntask: classification\ndata: { source: d.tsv }\nmodel:\n  layers:\n    - { type: lstm, hidden: 5, bidirectional: true }\n');
    const grad = (batch: string) => {
      fs.writeFileSync(path.join(dir, 'b.json'), batch);
      return gatelab(['grad', 'm.gatelab.yaml', '--init', 'w.safetensors', '--batch', 'b.json', '--out', 'g.safetensors'], dir);
    };
    let r = grad('{"inputs": [[1, 2], [3]],\n "targets": [0, 3]}');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/b\.json:2:\d+: targets\[1\]: class index 3 is outside the classes \[0, 3\)/);
    r = grad('{"inputs": [[1, 2], [3]], "targets": [0]}');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/targets.*has 1 entries but "inputs" has 2 sentences/);
    r = grad('{"inputs": [[1, 7]], "targets": [0]}');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/inputs\[0\]\[1\]: token id 7 is outside the vocabulary \[0, 7\)/);
    expect(fs.existsSync(path.join(dir, 'g.safetensors'))).toBe(false);
  });
});
