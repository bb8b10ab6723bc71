// The generated training graphs against references, in float64:
//  - the float64 TypeScript reference (test/reference) and central finite differences of it;
//  - PyTorch golden values (test/fixtures/golden, made by gen_golden.py): loss and the gradient of
//    every parameter and of the initial state, 1 and 2 layers, T = 1 and 35, carried-in state,
//    saturated gates, embedding input; and fixed-seed 10-step SGD and Adam trajectories.

import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildGradProgram, buildTrainProgram } from '../../src/engine/train/program';
import { INTERNAL_FROM_TORCH, TORCH_FROM_INTERNAL, isGated, permuteGateBlocks } from '../../src/engine/train/checkpoint';
import { readSafetensors } from '../../src/engine/util/safetensors';
import { OptimizerConfig } from '../../src/engine/config/types';
import { compare, finiteDifference, lcg, randomParams, refForward, RefParams, RefSpec, RefState } from '../reference/lstm_ref';

const GOLDEN = path.resolve(__dirname, '../fixtures/golden');

function toInternal(name: string, shape: number[], data: Float64Array): Float64Array {
  return isGated(name) ? permuteGateBlocks(data, shape, INTERNAL_FROM_TORCH) : data;
}
function toTorch(name: string, shape: number[], data: Float64Array): Float64Array {
  return isGated(name) ? permuteGateBlocks(data, shape, TORCH_FROM_INTERNAL) : data;
}

function timeMajor(m: number[][]): BigInt64Array {
  const B = m.length;
  const T = m[0].length;
  const out = new BigInt64Array(T * B);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) out[t * B + b] = BigInt(m[b][t]);
  return out;
}

/** Loss and gradients from the engine's float64 grad program (PyTorch order in and out). */
async function engineGrad(p: RefParams, spec: RefSpec, x: number[][], y: number[][], state?: RefState) {
  const B = x.length;
  const T = x[0].length;
  const prog = buildGradProgram({ lm: { ...spec, dtype: 'float64' }, B, T });
  const session = await ort.InferenceSession.create(prog.graph.encode(), { logSeverityLevel: 3 });
  const feeds: Record<string, ort.Tensor> = {};
  for (const q of prog.params) feeds[`p.${q.name}`] = new ort.Tensor('float64', toInternal(q.name, q.shape, p[q.name].data), q.shape);
  spec.hidden.forEach((H, k) => {
    feeds[`h.l${k}`] = new ort.Tensor('float64', state ? state.h[k] : new Float64Array(B * H), [B, H]);
    feeds[`c.l${k}`] = new ort.Tensor('float64', state ? state.c[k] : new Float64Array(B * H), [B, H]);
  });
  feeds.x = new ort.Tensor('int64', timeMajor(x), [T, B]);
  feeds.y = new ort.Tensor('int64', timeMajor(y), [T, B]);
  const r = await session.run(feeds);
  await session.release();
  const grads: Record<string, Float64Array> = {};
  for (const q of prog.params) grads[q.name] = toTorch(q.name, q.shape, r[`d.${q.name}`].data as Float64Array);
  spec.hidden.forEach((_, k) => {
    grads[`h0.l${k}`] = r[`d.h.l${k}`].data as Float64Array;
    grads[`c0.l${k}`] = r[`d.c.l${k}`].data as Float64Array;
  });
  return { loss: (r.loss.data as Float64Array)[0], grads };
}

function rows(t: { shape: number[]; data: unknown }): number[][] {
  const [B, T] = t.shape;
  const d = t.data as BigInt64Array;
  return Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, s) => Number(d[b * T + s])));
}

interface Golden {
  spec: RefSpec;
  params: RefParams;
  x: number[][];
  y: number[][];
  state?: RefState;
  loss: number;
  grads: Record<string, Float64Array>;
}

function golden(name: string): Golden {
  const { tensors, metadata } = readSafetensors(path.join(GOLDEN, `${name}.safetensors`));
  const spec: RefSpec = { vocab: Number(metadata.vocab), embedding: Number(metadata.embedding ?? 0), hidden: JSON.parse(metadata.hidden) };
  const params: RefParams = {};
  const grads: Record<string, Float64Array> = {};
  for (const [k, t] of Object.entries(tensors)) {
    if (/^(lstm|fc|embedding)\./.test(k)) params[k] = { shape: t.shape, data: t.data as Float64Array };
    if (k.startsWith('grad.')) grads[k.slice(5)] = t.data as Float64Array;
  }
  const carried = spec.hidden.some((_, k) => (tensors[`h0.l${k}`].data as Float64Array).some((v) => v !== 0));
  const state = carried
    ? { h: spec.hidden.map((_, k) => tensors[`h0.l${k}`].data as Float64Array), c: spec.hidden.map((_, k) => tensors[`c0.l${k}`].data as Float64Array) }
    : undefined;
  return { spec, params, x: rows(tensors.x), y: rows(tensors.y), state, loss: (tensors.loss.data as Float64Array)[0], grads };
}

/** |a − b| ≤ 1e-4·|b| + 1e-4·(1e-3·max|b|): 1e-4 relative, with a floor for entries near zero. */
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, rtol = 1e-4, atol?: number) {
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  const c = compare(got, want, atol ?? rtol * 1e-3 * scale + 1e-14, rtol);
  expect(c.worst, `${what}: worst at [${c.at}] got ${c.got} want ${c.want}`).toBeLessThanOrEqual(1);
  return c.worst;
}

const CASES = ['lm1_T1', 'lm1_T35', 'lm2_T35', 'lm2_carried', 'lm1_saturated', 'lm_embed'];

describe('gradients match PyTorch (golden fixtures)', () => {
  for (const name of CASES) {
    it(name, async () => {
      const g = golden(name);
      const ref = refForward(g.params, g.spec, g.x, g.y, g.state);
      expect(Math.abs(ref.loss - g.loss) / g.loss, 'reference loss vs PyTorch').toBeLessThan(1e-12);
      const e = await engineGrad(g.params, g.spec, g.x, g.y, g.state);
      expect(Math.abs(e.loss - g.loss) / g.loss, 'engine loss vs PyTorch').toBeLessThan(1e-12);
      expect(Object.keys(e.grads).sort()).toEqual(Object.keys(g.grads).sort());
      for (const k of Object.keys(g.grads)) expectClose(e.grads[k], g.grads[k], `${name} ${k}`);
    });
  }
});

// central differences (eps 1e-6) of a loss of order 1 carry about 1e-10 of rounding noise
const FD_ATOL = 1e-8;

describe('gradients match central finite differences of the float64 reference', () => {
  const fdCase = async (spec: RefSpec, B: number, T: number, seed: number, o: { scale?: number; carried?: boolean } = {}) => {
    const rand = lcg(seed);
    const p = randomParams(spec, rand, o.scale ?? 1);
    const x = Array.from({ length: B }, () => Array.from({ length: T }, () => Math.floor(rand() * spec.vocab)));
    const y = Array.from({ length: B }, () => Array.from({ length: T }, () => Math.floor(rand() * spec.vocab)));
    const state = o.carried
      ? { h: spec.hidden.map((H) => Float64Array.from({ length: B * H }, () => rand() - 0.5)), c: spec.hidden.map((H) => Float64Array.from({ length: B * H }, () => 2 * rand() - 1)) }
      : undefined;
    const e = await engineGrad(p, spec, x, y, state);
    const f = () => refForward(p, spec, x, y, state).loss;
    expect(Math.abs(e.loss - f())).toBeLessThan(1e-12);
    let worst = 0;
    for (const [k, t] of Object.entries(p)) worst = Math.max(worst, expectClose(e.grads[k], finiteDifference(f, t.data), `FD ${k}`, 1e-5, FD_ATOL));
    if (state) {
      spec.hidden.forEach((_, k) => {
        worst = Math.max(worst, expectClose(e.grads[`h0.l${k}`], finiteDifference(f, state.h[k]), `FD h0.l${k}`, 1e-5, FD_ATOL));
        worst = Math.max(worst, expectClose(e.grads[`c0.l${k}`], finiteDifference(f, state.c[k]), `FD c0.l${k}`, 1e-5, FD_ATOL));
      });
    }
    return { e, worst };
  };

  it('one layer, T = 1', async () => {
    await fdCase({ vocab: 5, embedding: 0, hidden: [4] }, 2, 1, 11);
  });
  it('one layer, T = 35', async () => {
    await fdCase({ vocab: 6, embedding: 0, hidden: [3] }, 2, 35, 12);
  });
  it('two layers of different sizes, T = 35, carried-in state', async () => {
    await fdCase({ vocab: 5, embedding: 0, hidden: [3, 4] }, 2, 35, 13, { carried: true });
  });
  it('embedding input, two layers', async () => {
    await fdCase({ vocab: 7, embedding: 3, hidden: [4, 2] }, 3, 6, 14);
  });
  it('saturated gates (pre-activations of order ±300): gradients through them vanish, and FD agrees', async () => {
    const spec = { vocab: 5, embedding: 0, hidden: [3] };
    const { e } = await fdCase(spec, 2, 8, 15, { scale: 600 });
    // the recurrent weights get (almost) no gradient through saturated gates; the output layer does
    const whh = e.grads['lstm.weight_hh_l0'];
    expect(Math.max(...Array.from(whh, Math.abs))).toBeLessThan(1e-6);
    expect(Math.max(...Array.from(e.grads['fc.bias'], Math.abs))).toBeGreaterThan(1e-3);
  });
  it('a hand-computed case: H = 1, V = 2, T = 1, all weights zero', async () => {
    // With every weight 0: z = 0 for all gates, so i = f = o = ½, g = 0, c = 0, h = 0; logits = fc.bias.
    // fc.bias = (0, ln 3): p = (¼, ¾), target 0 → loss = −ln ¼ = ln 4, ∂loss/∂fc.bias = p − onehot = (−¾, ¾).
    // h = 0 makes ∂loss/∂fc.weight = 0. Through h: ∂loss/∂h = Σ_v (p_v − y_v)·W_v = 0 since W = 0.
    const spec = { vocab: 2, embedding: 0, hidden: [1] };
    const p = randomParams(spec, () => 0.5);
    p['fc.bias'].data.set([0, Math.log(3)]);
    const e = await engineGrad(p, spec, [[1]], [[0]]);
    expect(e.loss).toBeCloseTo(Math.log(4), 14);
    expect(Array.from(e.grads['fc.bias'])).toEqual([expect.closeTo(-0.75, 14), expect.closeTo(0.75, 14)]);
    expect(Array.from(e.grads['fc.weight'])).toEqual([0, 0]);
    for (const k of ['lstm.weight_ih_l0', 'lstm.weight_hh_l0', 'lstm.bias_ih_l0', 'lstm.bias_hh_l0']) expect(Array.from(e.grads[k]).every((v) => v === 0), k).toBe(true);
  });
});

describe('fixed-seed 10-step trajectories match PyTorch (one session.run of K = 10 steps)', () => {
  const run = async (name: string, optimizer: OptimizerConfig, dtype: 'float64' | 'float32') => {
    const { tensors, metadata } = readSafetensors(path.join(GOLDEN, `${name}.safetensors`));
    const hidden: number[] = JSON.parse(metadata.hidden);
    const V = Number(metadata.vocab);
    const [K, B, T] = tensors.xs.shape;
    const lm = { vocab: V, embedding: 0, hidden, dtype };
    const prog = buildTrainProgram({ lm, B, T, optimizer, clipNorm: Number(metadata.clip) });
    const session = await ort.InferenceSession.create(prog.graph.encode(), { logSeverityLevel: 3 });
    const F = dtype === 'float64' ? Float64Array : Float32Array;
    const feeds: Record<string, ort.Tensor> = {};
    for (const q of prog.params) feeds[`p.${q.name}`] = new ort.Tensor(dtype, F.from(toInternal(q.name, q.shape, tensors[q.name].data as Float64Array)), q.shape);
    for (const s of prog.state) feeds[`s.${s.name}`] = new ort.Tensor(dtype, new F(s.shape.reduce((a, b) => a * b, 1)), s.shape);
    hidden.forEach((H, k) => {
      feeds[`h.l${k}`] = new ort.Tensor(dtype, new F(B * H), [B, H]);
      feeds[`c.l${k}`] = new ort.Tensor(dtype, new F(B * H), [B, H]);
    });
    // xs [K, B, T] batch-major → [K, T, B]
    const tm = (t: typeof tensors.xs) => {
      const d = t.data as BigInt64Array;
      const out = new BigInt64Array(K * T * B);
      for (let k = 0; k < K; k++) for (let b = 0; b < B; b++) for (let s = 0; s < T; s++) out[k * T * B + s * B + b] = d[k * B * T + b * T + s];
      return out;
    };
    feeds.x = new ort.Tensor('int64', tm(tensors.xs), [K, T, B]);
    feeds.y = new ort.Tensor('int64', tm(tensors.ys), [K, T, B]);
    const keep = new F(K).fill(1);
    keep[0] = 0;
    feeds.keep = new ort.Tensor(dtype, keep, [K]);
    feeds.lr = new ort.Tensor(dtype, new F(K).fill(optimizer.learningRate), [K]);
    const r = await session.run(feeds);
    await session.release();
    const final: Record<string, Float64Array> = {};
    for (const q of prog.params) final[q.name] = toTorch(q.name, q.shape, Float64Array.from(r[`p_out.${q.name}`].data as Float32Array));
    return { losses: Array.from(r.loss.data as Float64Array), want: Array.from(tensors.losses.data as Float64Array), final, tensors, params: prog.params };
  };
  const base = { momentum: 0.9, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 };

  for (const [name, opt] of [
    ['sgd10', { ...base, type: 'sgd', learningRate: 0.5 }],
    ['adam10', { ...base, type: 'adam', learningRate: 0.01 }],
  ] as [string, OptimizerConfig][]) {
    it(`${name} in float64: losses and final weights`, async () => {
      const r = await run(name, opt, 'float64');
      expectClose(r.losses, r.want, `${name} losses`, 1e-6);
      for (const q of r.params) expectClose(r.final[q.name], r.tensors[`final.${q.name}`].data as Float64Array, `${name} final ${q.name}`, 1e-6);
    });
    it(`${name} in float32 (the training dtype): losses within 1e-4`, async () => {
      const r = await run(name, opt, 'float32');
      expectClose(r.losses, r.want, `${name} float32 losses`, 1e-4);
    });
  }
});
