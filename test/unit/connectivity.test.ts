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

describe('gatelab probe', () => {
  const run = (dir: string, args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8' });

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
