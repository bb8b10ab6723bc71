// Equation-defined cells (`type: cell`; src/engine/nn/cellspec.ts, eqcell.ts).

import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { checkCell, CellSpec } from '../../src/engine/nn/cellspec';
import { LmSpec, lmParams } from '../../src/engine/nn/lm';
import type { GateActivation } from '../../src/engine/nn/lstm';
import { buildGradProgram } from '../../src/engine/train/program';
import { fdAll } from '../reference/fd';
import { Rng } from '../../src/engine/util/rng';
import { readSafetensors } from '../../src/engine/util/safetensors';

const GOLDEN = path.resolve(__dirname, '../fixtures/golden');

const SESSION_OPTS: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3 };

export const MGU_EQUATIONS: [string, string][] = [
  ['f', 'sigmoid(W x + U h + b)'],
  ['n', 'tanh(W x + U (f * h) + b)'],
  ['h', '(1 - f) * h + f * n'],
];
export const JANET_EQUATIONS: [string, string][] = [
  ['s', 'W x + U h + b'],
  ['g', 'tanh(W x + U h + b)'],
  ['h', 'sigmoid(s) * h + (1 - sigmoid(s - 1)) * g'],
];

export const LSTM_EQUATIONS: [string, string][] = [
  ['i', 'sigmoid(W x + U h + b)'],
  ['f', 'sigmoid(W x + U h + b)'],
  ['g', 'tanh(W x + U h + b)'],
  ['o', 'sigmoid(W x + U h + b)'],
  ['c', 'f * c + i * g'],
  ['h', 'o * tanh(c)'],
];

function spec(eqs: [string, string][], states: string[], init: Record<string, number> = {}): CellSpec {
  const r = checkCell(eqs, states, init);
  if (!r.spec) throw new Error(r.problems.map((p) => p.message).join('; '));
  return r.spec;
}
const cellGate = (s: CellSpec): GateActivation => ({ kind: 'sigmoid', cell: 'cell', equations: s });

/** grad program feeds: random parameters, tokens, targets, states. */
function feedsOf(lm: LmSpec, B: number, T: number, seed: number) {
  const rng = new Rng(seed);
  const feeds: Record<string, ort.Tensor> = {};
  for (const p of lmParams(lm)) feeds[`p.${p.name}`] = new ort.Tensor('float64', Float64Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-0.5, 0.5)), p.shape);
  const tok = () => BigInt64Array.from({ length: T * B }, () => BigInt(Math.floor(rng.uniform(0, lm.vocab))));
  feeds.x = new ort.Tensor('int64', tok(), [T, B]);
  feeds.y = new ort.Tensor('int64', tok(), [T, B]);
  lm.hidden.forEach((H, k) => {
    feeds[`h.l${k}`] = new ort.Tensor('float64', Float64Array.from({ length: B * H }, () => rng.uniform(-0.5, 0.5)), [B, H]);
  });
  return feeds;
}

describe('equation cells', () => {
  it('the LSTM as equations has the gradients of the built-in LSTM (weights mapped)', async () => {
    const V = 5, H = 3, B = 2, T = 4;
    const s = spec(LSTM_EQUATIONS, ['h', 'c']);
    const lmC: LmSpec = { vocab: V, embedding: 0, hidden: [H], dtype: 'float64', gates: [cellGate(s)] };
    const lmL: LmSpec = { vocab: V, embedding: 0, hidden: [H], dtype: 'float64', gates: [{ kind: 'sigmoid' }] };
    const fC = feedsOf(lmC, B, T, 1);
    fC['c.l0'] = new ort.Tensor('float64', Float64Array.from({ length: B * H }, (_, i) => 0.1 * Math.sin(i + 1)), [B, H]);
    const fL: Record<string, ort.Tensor> = { x: fC.x, y: fC.y, 'h.l0': fC['h.l0'], 'c.l0': fC['c.l0'] };
    const order = ['i', 'f', 'o', 'g'];
    const rows = (name: string, cols: number) => {
      const out = new Float64Array(4 * H * cols);
      order.forEach((gname, j) => out.set(fC[`p.cell.l0.${gname}.${name}`].data as Float64Array, j * H * cols));
      return out;
    };
    fL['p.lstm.weight_ih_l0'] = new ort.Tensor('float64', rows('W', V), [4 * H, V]);
    fL['p.lstm.weight_hh_l0'] = new ort.Tensor('float64', rows('U', H), [4 * H, H]);
    fL['p.lstm.bias_ih_l0'] = new ort.Tensor('float64', rows('b', 1), [4 * H]);
    fL['p.lstm.bias_hh_l0'] = new ort.Tensor('float64', new Float64Array(4 * H), [4 * H]);
    for (const n of ['fc.weight', 'fc.bias']) fL[`p.${n}`] = fC[`p.${n}`];
    const pC = buildGradProgram({ lm: lmC, B, T });
    const pL = buildGradProgram({ lm: lmL, B, T });
    const sC = await ort.InferenceSession.create(pC.graph.encode(), SESSION_OPTS);
    const sL = await ort.InferenceSession.create(pL.graph.encode(), SESSION_OPTS);
    const rC = await sC.run(fC);
    const rL = await sL.run(fL);
    expect((rC.loss.data as Float64Array)[0]).toBeCloseTo((rL.loss.data as Float64Array)[0], 12);
    const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
      expect(a.length, what).toBe(b.length);
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i]), `${what}[${i}] ${a[i]} vs ${b[i]}`).toBeLessThan(1e-12);
    };
    const dL = (n: string) => rL[`d.lstm.${n}`].data as Float64Array;
    order.forEach((gname, j) => {
      close(rC[`d.cell.l0.${gname}.W`].data as Float64Array, dL('weight_ih_l0').subarray(j * H * V, (j + 1) * H * V), `${gname}.W`);
      close(rC[`d.cell.l0.${gname}.U`].data as Float64Array, dL('weight_hh_l0').subarray(j * H * H, (j + 1) * H * H), `${gname}.U`);
      close(rC[`d.cell.l0.${gname}.b`].data as Float64Array, dL('bias_ih_l0').subarray(j * H, (j + 1) * H), `${gname}.b`);
    });
    close(rC['d.h.l0'].data as Float64Array, rL['d.h.l0'].data as Float64Array, 'h0');
    close(rC['d.c.l0'].data as Float64Array, rL['d.c.l0'].data as Float64Array, 'c0');
    close(rC['d.fc.weight'].data as Float64Array, rL['d.fc.weight'].data as Float64Array, 'fc');
    await fdAll(sC, fC, pC.params, 'lstm-as-equations');
  });

  /** A golden's tensors as float64 / time-major int64 feeds. */
  function golden(name: string) {
    const { tensors } = readSafetensors(path.join(GOLDEN, `${name}.safetensors`), 'golden fixture');
    const f64 = (n: string) => tensors[n].data as Float64Array;
    const tokens = (n: string) => {
      const [B, T] = tensors[n].shape;
      const d = tensors[n].data as BigInt64Array;
      return new ort.Tensor('int64', BigInt64Array.from({ length: T * B }, (_, i) => d[(i % B) * T + Math.floor(i / B)]), [T, B]);
    };
    return { tensors, f64, tokens };
  }
  const rel = (a: ArrayLike<number>, b: ArrayLike<number>, what: string, tol = 1e-4) => {
    expect(a.length, what).toBe(b.length);
    let m = 0;
    for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(b[i]));
    for (let i = 0; i < b.length; i++) expect(Math.abs(a[i] - b[i]), `${what}[${i}] ${a[i]} vs PyTorch ${b[i]}`).toBeLessThanOrEqual(tol * Math.max(Math.abs(b[i]), 1e-3 * m));
  };

  for (const [name, layers] of [['lm1_T35', 1], ['lm2_carried', 2]] as const)
    it(`the LSTM as equations matches PyTorch nn.LSTM (${name}, ${layers} layer${layers > 1 ? 's' : ''}; bias = b_ih + b_hh)`, async () => {
      const { tensors, f64, tokens } = golden(name);
      const s = spec(LSTM_EQUATIONS, ['h', 'c']);
      const hidden = Array.from({ length: layers }, (_, k) => tensors[`h0.l${k}`].shape[1]);
      const V = tensors['fc.bias'].shape[0];
      const lm: LmSpec = { vocab: V, embedding: 0, hidden, dtype: 'float64', gates: hidden.map(() => cellGate(s)) };
      const [T, B] = [tensors.x.shape[1], tensors.x.shape[0]];
      const feeds: Record<string, ort.Tensor> = { x: tokens('x'), y: tokens('y') };
      const torchOrder = ['i', 'f', 'g', 'o'];
      const block = (a: Float64Array, j: number, n: number) => a.subarray(j * n, (j + 1) * n);
      hidden.forEach((H, k) => {
        const I = k === 0 ? V : hidden[k - 1];
        torchOrder.forEach((gname, j) => {
          feeds[`p.cell.l${k}.${gname}.W`] = new ort.Tensor('float64', Float64Array.from(block(f64(`lstm.weight_ih_l${k}`), j, H * I)), [H, I]);
          feeds[`p.cell.l${k}.${gname}.U`] = new ort.Tensor('float64', Float64Array.from(block(f64(`lstm.weight_hh_l${k}`), j, H * H)), [H, H]);
          const bi = block(f64(`lstm.bias_ih_l${k}`), j, H);
          const bh = block(f64(`lstm.bias_hh_l${k}`), j, H);
          feeds[`p.cell.l${k}.${gname}.b`] = new ort.Tensor('float64', Float64Array.from(bi, (v, u) => v + bh[u]), [H]);
        });
        feeds[`h.l${k}`] = new ort.Tensor('float64', f64(`h0.l${k}`), [B, H]);
        feeds[`c.l${k}`] = new ort.Tensor('float64', f64(`c0.l${k}`), [B, H]);
      });
      for (const n of ['fc.weight', 'fc.bias']) feeds[`p.${n}`] = new ort.Tensor('float64', f64(n), tensors[n].shape);
      const prog = buildGradProgram({ lm, B, T });
      const sess = await ort.InferenceSession.create(prog.graph.encode(), SESSION_OPTS);
      const r = await sess.run(feeds);
      rel(r.loss.data as Float64Array, f64('loss'), 'loss', 1e-12);
      hidden.forEach((H, k) => {
        const I = k === 0 ? V : hidden[k - 1];
        torchOrder.forEach((gname, j) => {
          rel(r[`d.cell.l${k}.${gname}.W`].data as Float64Array, block(f64(`grad.lstm.weight_ih_l${k}`), j, H * I), `l${k} ${gname}.W`);
          rel(r[`d.cell.l${k}.${gname}.U`].data as Float64Array, block(f64(`grad.lstm.weight_hh_l${k}`), j, H * H), `l${k} ${gname}.U`);
          rel(r[`d.cell.l${k}.${gname}.b`].data as Float64Array, block(f64(`grad.lstm.bias_ih_l${k}`), j, H), `l${k} ${gname}.b`);
        });
        rel(r[`d.h.l${k}`].data as Float64Array, f64(`grad.h0.l${k}`), `h0.l${k}`);
        rel(r[`d.c.l${k}`].data as Float64Array, f64(`grad.c0.l${k}`), `c0.l${k}`);
      });
      rel(r['d.fc.weight'].data as Float64Array, f64('grad.fc.weight'), 'fc.weight');
    });

  for (const [kind, eqs] of [['mgu', MGU_EQUATIONS], ['janet', JANET_EQUATIONS]] as const)
    it(`${kind.toUpperCase()} as equations has the gradients of the same equations written in PyTorch, and of finite differences`, async () => {
      const { tensors, f64, tokens } = golden(`cell_${kind}`);
      const s = spec(eqs, ['h']);
      const H = tensors['h0.l0'].shape[1];
      const V = tensors['fc.bias'].shape[0];
      const lm: LmSpec = { vocab: V, embedding: 0, hidden: [H], dtype: 'float64', gates: [cellGate(s)] };
      const [T, B] = [tensors.x.shape[1], tensors.x.shape[0]];
      const prog = buildGradProgram({ lm, B, T });
      const feeds: Record<string, ort.Tensor> = { x: tokens('x'), y: tokens('y'), 'h.l0': new ort.Tensor('float64', Float64Array.from(f64('h0.l0')), [B, H]) };
      for (const p of prog.params) feeds[`p.${p.name}`] = new ort.Tensor('float64', Float64Array.from(f64(p.name)), p.shape);
      const sess = await ort.InferenceSession.create(prog.graph.encode(), SESSION_OPTS);
      const r = await sess.run(feeds);
      rel(r.loss.data as Float64Array, f64('loss'), 'loss', 1e-12);
      for (const p of prog.params) rel(r[`d.${p.name}`].data as Float64Array, f64(`grad.${p.name}`), p.name);
      rel(r['d.h.l0'].data as Float64Array, f64('grad.h0.l0'), 'h0');
      await fdAll(sess, feeds, prog.params, kind, [...prog.params.map((p): [string, string] => [`p.${p.name}`, `d.${p.name}`]), ['h.l0', 'd.h.l0']]);
    });
});
