// Gradients through time (src/engine/train/connectivity.ts): the connectivity matrix ‖∂ℓ_t/∂x_s‖ and
// the gradient flow ‖∂ℓ_{T−2}/∂h_s‖, ‖∂ℓ_{T−2}/∂c_s‖ of LSTM, GRU, RNN and mixed language models
// against PyTorch autograd on the same weights and tokens (test/fixtures/golden/conn_*.safetensors,
// written by `gen_golden.py connectivity`), to 1e-4 relative; and `gatelab probe` on a checkpoint.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorReport, toInternal } from '../reference/report';
import type { LmSpec } from '../../src/engine/nn/lm';
import type { GateActivation } from '../../src/engine/nn/lstm';
import { connectivityOf } from '../../src/engine/train/connectivity';
import { readSafetensors, writeSafetensors } from '../../src/engine/util/safetensors';

const ROOT = path.resolve(__dirname, '../..');
const GOLDEN = path.join(ROOT, 'test/fixtures/golden');
const CLI = path.join(ROOT, 'dist/cli.js');
const { expectRel } = errorReport();

function gateOf([kind, , act]: [string, number, string?]): GateActivation {
  if (kind === 'gru') return { kind: 'sigmoid', cell: 'gru' };
  if (kind === 'rnn') return { kind: 'sigmoid', cell: 'rnn', activation: act === 'relu' ? 'relu' : 'tanh' };
  return { kind: 'sigmoid' };
}

function loadCase(name: string) {
  const { tensors, metadata } = readSafetensors(path.join(GOLDEN, `${name}.safetensors`), 'golden fixture');
  const cells = JSON.parse(metadata.cells) as [string, number, string?][];
  const lm: LmSpec = { vocab: Number(metadata.vocab), embedding: Number(metadata.embedding), hidden: cells.map((c) => c[1]), dtype: 'float64', gates: cells.map(gateOf) };
  const weights = new Map<string, { shape: number[]; data: Float64Array }>();
  for (const [k, t] of Object.entries(tensors)) if (/^(lstm|gru|rnn|fc|embedding)\./.test(k)) weights.set(k, { shape: t.shape, data: toInternal(k, t.shape, t.data as Float64Array) });
  const ids = Array.from(tensors.ids.data as BigInt64Array, Number);
  return { lm, weights, ids, cells, tensors };
}

describe('gradients through time against PyTorch autograd (float64)', () => {
  for (const name of ['conn_lstm', 'conn_gru', 'conn_rnn', 'conn_mixed']) {
    it(name, async () => {
      const { lm, weights, ids, cells, tensors } = loadCase(name);
      const T = ids.length;
      const r = await connectivityOf(lm, weights, ids);
      expect(r.connectivity).toHaveLength(T - 1);
      const want = tensors.connectivity.data as Float64Array;
      r.connectivity.forEach((row, t) => {
        expect(row.slice(t + 1).every((v) => v === 0), `row ${t} is causal`).toBe(true);
        expectRel(Float64Array.from(row), want.subarray(t * T, (t + 1) * T), 1e-4, `${name} connectivity[${t}]`, 'connectivity vs PyTorch');
      });
      expect(r.gradientFlow.map((f) => [f.layer, !!f.c])).toEqual(cells.map((c, k) => [k, c[0] === 'lstm']));
      for (const f of r.gradientFlow) {
        expectRel(Float64Array.from(f.h), tensors[`flow_h.l${f.layer}`].data as Float64Array, 1e-4, `${name} flow h.l${f.layer}`, 'gradient flow vs PyTorch');
        if (f.c) expectRel(Float64Array.from(f.c), tensors[`flow_c.l${f.layer}`].data as Float64Array, 1e-4, `${name} flow c.l${f.layer}`, 'gradient flow vs PyTorch');
        // nothing after the last prediction's input reaches its loss
        expect(f.h[T - 1]).toBe(0);
      }
    });
  }
});

const run = (dir: string, args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8' });

/** A language-model checkpoint and model file (the conn_lstm fixture). */
function setupLm() {
  const { tensors, metadata } = readSafetensors(path.join(GOLDEN, 'conn_lstm.safetensors'), 'golden fixture');
  const V = Number(metadata.vocab);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-probe-lm-'));
  writeSafetensors(path.join(dir, 'w.safetensors'), Object.fromEntries(Object.entries(tensors).filter(([k]) => /^(lstm|fc)\./.test(k))), { 'gatelab.vocab': JSON.stringify(['<unk>', ...Array.from({ length: V - 1 }, (_, i) => String.fromCharCode(97 + i))]) });
  fs.writeFileSync(path.join(dir, 'c.txt'), 'abc');
  fs.writeFileSync(path.join(dir, 'm.gatelab.yaml'), `name: m\ndata: { source: c.txt }\nmodel: { layers: [{ hidden: ${JSON.parse(metadata.hidden)[0]} }] }\n`);
  return { dir };
}

describe('gatelab probe', () => {

  /** The conn_mixed fixture as a checkpoint of a character model (tokens: <unk>, a, b, …) and the text of its ids. */
  function setup(name: string) {
    const { tensors, metadata } = readSafetensors(path.join(GOLDEN, `${name}.safetensors`), 'golden fixture');
    const V = Number(metadata.vocab);
    const tokens = ['<unk>', ...Array.from({ length: V - 1 }, (_, i) => String.fromCharCode(97 + i))];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-probe-'));
    writeSafetensors(path.join(dir, 'w.safetensors'), Object.fromEntries(Object.entries(tensors).filter(([k]) => /^(lstm|gru|rnn|fc|embedding)\./.test(k))), { 'gatelab.vocab': JSON.stringify(tokens) });
    const cells = JSON.parse(metadata.cells) as [string, number, string?][];
    const layers = cells.map(([type, hidden, act]) => `{ type: ${type}, hidden: ${hidden}${act ? `, activation: ${act}` : ''} }`).join(', ');
    fs.writeFileSync(path.join(dir, 'c.txt'), tokens.slice(1).join(''));
    fs.writeFileSync(path.join(dir, 'm.gatelab.yaml'), `name: m\ndata: { source: c.txt }\nmodel:\n  embedding: ${metadata.embedding}\n  layers: [${layers}]\n`);
    // id 0 (<unk>) is any character outside the vocabulary
    const text = Array.from(tensors.ids.data as BigInt64Array, (i) => (i === 0n ? '#' : tokens[Number(i)])).join('');
    return { dir, text, tensors, T: tensors.ids.shape[0], cells };
  }

  it('--json: one line with the tokens, the connectivity and gradient flow PyTorch gives, and the gate values', () => {
    const { dir, text, tensors, T, cells } = setup('conn_mixed');
    const r = run(dir, ['probe', 'm.gatelab.yaml', '--init', 'w.safetensors', '--text', text, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const out = JSON.parse(lines[0]);
    expect(Object.keys(out)).toEqual(['tokens', 'connectivity', 'gradientFlow', 'layers']);
    expect(out.tokens.join('').replace(/<unk>/g, '#')).toBe(text);
    expect(out.connectivity).toHaveLength(T - 1);
    const want = tensors.connectivity.data as Float64Array;
    // the checkpoint's float32 weights, so a float32-level agreement with the float64 fixture
    out.connectivity.forEach((row: number[], t: number) => expectRel(Float64Array.from(row), want.subarray(t * T, (t + 1) * T), 1e-5, `probe connectivity[${t}]`, 'probe vs PyTorch'));
    expect(out.gradientFlow.map((f: { layer: number; c?: number[] }) => [f.layer, !!f.c])).toEqual(cells.map((c, k) => [k, c[0] === 'lstm']));
    for (const f of out.gradientFlow) {
      expectRel(Float64Array.from(f.h), tensors[`flow_h.l${f.layer}`].data as Float64Array, 1e-5, `probe flow h.l${f.layer}`, 'probe vs PyTorch');
      if (f.c) {
        expectRel(Float64Array.from(f.c), tensors[`flow_c.l${f.layer}`].data as Float64Array, 1e-5, `probe flow c.l${f.layer}`, 'probe vs PyTorch');
        expect(f.c[T - 2], 'c_{T−2} reaches the loss through h_{T−2}').toBeGreaterThan(0);
      }
    }
    expect(out.layers.map((l: { cell: string; gates: string[] }) => [l.cell, l.gates])).toEqual([['rnn', ['h']], ['lstm', ['i', 'f', 'o', 'g', 'c', 'h']]]);
    expect(out.layers[1].values.f).toHaveLength(T * cells[1][1]);
  });

  it('without --json: a table of the last prediction back through time; bad input is exit 2 at its argument', () => {
    const { dir, text, T } = setup('conn_lstm');
    const r = run(dir, ['probe', 'm.gatelab.yaml', '--init', 'w.safetensors', '--text', text]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^the loss of predicting ".*" after ".*" \\(position ${T - 2}\\), back through time:$`));
    expect(lines[1].trim().split(/\s{2,}/)).toEqual(['s', 'token', '‖∂ℓ/∂x_s‖', '‖∂ℓ/∂h_s‖ l0', '‖∂ℓ/∂c_s‖ l0']);
    expect(lines).toHaveLength(2 + T);
    const short = run(dir, ['probe', 'm.gatelab.yaml', '--init', 'w.safetensors', '--text', 'a']);
    expect(short.status).toBe(2);
    expect(short.stderr).toMatch(/--text: --text gives 1 token; the gradients through time need at least two/);
    const none = run(dir, ['probe', 'm.gatelab.yaml', '--init', 'w.safetensors']);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/--text is required/);
  });
});

describe('gradients through time of classifiers and forecasters (`gatelab probe --input`)', () => {
  it('one connectivity row: ‖∂ℓ/∂x_s‖ of the predicted class (mean pooling) or the first forecast value, against central differences', async () => {
    const { buildSeqConnectivityProgram, seqConnectivityOf } = await import('../../src/engine/train/connectivity');
    const { initParams } = await import('../../src/engine/nn/init');
    const { classifyParams } = await import('../../src/engine/train/classify');
    const { forecastParams } = await import('../../src/engine/train/forecast');
    const ort = await import('onnxruntime-node');
    const cases = [
      { label: 'classifier: LSTM under a GRU, one-hot, mean pooling', I: 6, gates: [{ kind: 'sigmoid' as const }, { kind: 'sigmoid' as const, cell: 'gru' as const }], hidden: [4, 3], head: { kind: 'classify' as const, classes: 3, pooling: 'mean' as const }, params: classifyParams({ vocab: 6, embedding: 0, hidden: [4, 3], classes: 3, pooling: 'mean', dtype: 'float64', gates: [{ kind: 'sigmoid' }, { kind: 'sigmoid', cell: 'gru' }] }) },
      { label: 'forecaster: a relu RNN, horizon 2', I: 1, gates: [{ kind: 'sigmoid' as const, cell: 'rnn' as const, activation: 'relu' as const }], hidden: [5], head: { kind: 'forecast' as const, horizon: 2 }, params: forecastParams({ hidden: [5], horizon: 2, dtype: 'float64', gates: [{ kind: 'sigmoid', cell: 'rnn', activation: 'relu' }] }) },
    ];
    for (const c of cases) {
      const T = 5;
      const w = initParams(c.params, c.hidden.map((h) => ({ hidden: h, forgetBias: 0 })), 3, 'float64');
      for (const v of w.values()) for (let i = 0; i < v.data.length; i++) v.data[i] *= 2;
      const x = Float64Array.from({ length: T * c.I }, (_, i) => (c.I === 1 ? Math.sin(i) : i % c.I === (i * 7) % 5 ? 1 : 0));
      const r = await seqConnectivityOf(c, w, x);
      expect(r.connectivity, c.label).toHaveLength(1);
      expect(r.gradientFlow.map((f) => f.layer)).toEqual(c.hidden.map((_, k) => k));
      // the same program's loss, perturbed input by input
      const s = await ort.InferenceSession.create(buildSeqConnectivityProgram(c, T).encode(), { logSeverityLevel: 3 });
      const feeds: Record<string, InstanceType<typeof ort.Tensor>> = { x: new ort.Tensor('float64', Float64Array.from(x), [T, c.I]) };
      for (const p of c.params) feeds[`p.${p.name}`] = new ort.Tensor('float64', Float64Array.from(w.get(p.name)!.data), p.shape);
      const loss = async () => ((await s.run(feeds)).loss.data as Float64Array)[0];
      const xd = feeds.x.data as Float64Array;
      for (let t = 0; t < T; t++) {
        let sq = 0;
        for (let i = 0; i < c.I; i++) {
          const old = xd[t * c.I + i];
          xd[t * c.I + i] = old + 1e-6;
          const up = await loss();
          xd[t * c.I + i] = old - 1e-6;
          const down = await loss();
          xd[t * c.I + i] = old;
          sq += ((up - down) / 2e-6) ** 2;
        }
        expect(Math.abs(Math.sqrt(sq) - r.connectivity[0][t]), `${c.label} step ${t}`).toBeLessThanOrEqual(1e-7 + 1e-5 * Math.sqrt(sq));
      }
      await s.release();
    }
  });

  it('the CLI: a trained classifier probed with a sentence; a forecaster with a CSV; a language model needs --text', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-probe-seq-'));
    fs.writeFileSync(path.join(dir, 'd.tsv'), fs.readFileSync(path.join(ROOT, 'examples/data/sentiment/amazon_cells_labelled.txt'), 'utf8').split('\n').slice(0, 200).join('\n'));
    fs.writeFileSync(path.join(dir, 'c.gatelab.yaml'), 'name: c\ntask: classification\ndata: { source: d.tsv, tokens: word, preprocess: letters, sequenceLength: 20 }\nmodel: { embedding: 8, layers: [{ type: lstm, hidden: 8 }] }\ntrain: { epochs: 1, batchSize: 16 }\n');
    expect(run(dir, ['train', 'c.gatelab.yaml', '--quiet', '--no-record', '--save', 'c.safetensors']).status).toBe(0);
    const r = run(dir, ['probe', 'c.gatelab.yaml', '--init', 'c.safetensors', '--input', 'The food was great, really great', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    // the words as the model sees them (a word outside its vocabulary is <unk>)
    expect(out.tokens).toEqual(['the', '<unk>', 'was', 'great', 'really', 'great']);
    expect(out.connectivity).toHaveLength(1);
    expect(out.connectivity[0]).toHaveLength(6);
    expect(out.connectivity[0].every((v: number) => v > 0)).toBe(true);
    expect(out.gradientFlow[0].c).toHaveLength(6);
    expect(out.layers[0].gates).toEqual(['i', 'f', 'o', 'g', 'c', 'h']);
    const table = run(dir, ['probe', 'c.gatelab.yaml', '--init', 'c.safetensors', '--input', 'bad service']);
    expect(table.stdout.split('\n')[0]).toBe('the loss of the predicted class after 2 steps, back through time:');
    fs.writeFileSync(path.join(dir, 's.csv'), 'Month,Passengers\n' + Array.from({ length: 40 }, (_, i) => `m${i},${100 + 10 * Math.sin(i)}`).join('\n') + '\n');
    fs.writeFileSync(path.join(dir, 'f.gatelab.yaml'), 'name: f\ntask: forecast\ndata: { source: s.csv, column: Passengers, window: 6 }\nmodel: { layers: [{ type: gru, hidden: 6 }] }\ntrain: { epochs: 2, batchSize: 8 }\n');
    expect(run(dir, ['train', 'f.gatelab.yaml', '--quiet', '--no-record', '--save', 'f.safetensors']).status).toBe(0);
    const f = run(dir, ['probe', 'f.gatelab.yaml', '--init', 'f.safetensors', '--input', 's.csv', '--json']);
    expect(f.status, f.stderr).toBe(0);
    const fo = JSON.parse(f.stdout);
    expect(fo.tokens).toHaveLength(6);
    expect(fo.connectivity[0]).toHaveLength(6);
    expect(fo.gradientFlow.map((g: { c?: number[] }) => !!g.c)).toEqual([false]);
    const lm = setupLm();
    const none = run(lm.dir, ['probe', 'm.gatelab.yaml', '--init', 'w.safetensors', '--input', 'x']);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/--text is required/);
  });
});
