// The engine's generated ONNX programs (src/engine/train/program.ts), run in onnxruntime-node,
// against three independent references:
//  - PyTorch golden values (test/fixtures/golden/*.safetensors, made by gen_golden.py; no Python
//    needed here): loss, final state and the gradient of every parameter and of the initial state,
//    for 1 and 2 layers, T = 1 and 35, carried-in state, saturated gates and embedding input; and
//    fixed-seed 10-step trajectories (SGD with and without active clipping, Adam, momentum and AdamW
//    with weight decay), all K = 10 steps in ONE session.run of the train program;
//  - the float64 TypeScript reference with hand-written BPTT (test/reference/lstm_ref.ts) and its
//    optimizer/clipping counterpart (test/reference/optim_ref.ts, itself checked against the PyTorch
//    trajectories), on shapes and train-program settings the fixtures do not cover (T = 1 in the
//    train program, 3 layers, B = 1, mid-run resets, per-step lr, L2 vs decoupled decay, no clip);
//  - central finite differences of the eval program's loss at a few coordinates per tensor.
//
// Criteria. Against PyTorch: |a − b| ≤ 1e-4·max(|b|, scale), scale = 1e-3·max|b| over that tensor
// (so entries far below the tensor's scale are judged absolutely). Against the TS reference (same
// math in float64, different summation order): the same form at 1e-9. Against FD (ε = 1e-6):
// |a − fd| ≤ 1e-8 + 1e-5·|fd| (FD noise is ~1e-10 for losses of order 1).
//
// Set GRADIENTS_REPORT=1 to print the worst errors measured (the tests print nothing otherwise).

import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { errorReport, toInternal, toTorch } from '../reference/report';
import { OptimizerConfig } from '../../src/engine/config/types';
import { LmSpec } from '../../src/engine/nn/lm';
import { buildEvalProgram, buildGradProgram, buildTrainProgram } from '../../src/engine/train/program';
import { readSafetensors, StTensor } from '../../src/engine/util/safetensors';
import { handCase, HAND_EXPECTED } from '../reference/hand_case';
import {
  lcg,
  lmBackward,
  lmForward,
  randomParams,
  randomTokens,
  RefParams,
  RefSpec,
  RefState,
  Tokens,
  transposeTokens,
} from '../reference/lstm_ref';
import { trainSteps } from '../reference/optim_ref';

const GOLDEN = path.resolve(__dirname, '../fixtures/golden');
const SESSION_OPTS: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3 };

const { record, expectRel } = errorReport();

const FD_EPS = 1e-6;
const FD_ATOL = 1e-8;
const FD_RTOL = 1e-5;

/** time-major [T][B] → int64 [T, B] */
function int64(x: Tokens): BigInt64Array {
  return BigInt64Array.from(x.flat(), (v) => BigInt(v));
}

/** I64 [B, T] tensor (batch-major, as the fixtures store it) → time-major [T][B] */
function tokensOf(t: StTensor): Tokens {
  const [B, T] = t.shape;
  const d = t.data as BigInt64Array;
  return transposeTokens(Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, s) => Number(d[b * T + s]))));
}

const f64 = (t: StTensor) => t.data as Float64Array;

// ---- engine programs, float64, PyTorch gate order in and out ------------------------------------
interface EngineGrad {
  loss: number;
  params: Record<string, Float64Array>;
  h0: Float64Array[];
  c0: Float64Array[];
}

class Engine {
  private constructor(
    readonly spec: RefSpec,
    readonly B: number,
    readonly T: number,
    private grad: ort.InferenceSession,
    private evalS: ort.InferenceSession,
    private params: { name: string; shape: number[] }[],
  ) {}

  static async create(spec: RefSpec, B: number, T: number): Promise<Engine> {
    const lm: LmSpec = { ...spec, dtype: 'float64' };
    const gp = buildGradProgram({ lm, B, T });
    const ep = buildEvalProgram({ lm, B, T });
    const [g, e] = await Promise.all([
      ort.InferenceSession.create(gp.graph.encode(), SESSION_OPTS),
      ort.InferenceSession.create(ep.graph.encode(), SESSION_OPTS),
    ]);
    return new Engine(spec, B, T, g, e, gp.params);
  }

  private feeds(p: RefParams, x: Tokens, y: Tokens, state: RefState) {
    const { B, T } = this;
    const feeds: Record<string, ort.Tensor> = {};
    for (const q of this.params) {
      expect(p[q.name]?.shape, `parameter ${q.name}`).toEqual(q.shape);
      feeds[`p.${q.name}`] = new ort.Tensor('float64', toInternal(q.name, q.shape, p[q.name].data), q.shape);
    }
    this.spec.hidden.forEach((H, k) => {
      feeds[`h.l${k}`] = new ort.Tensor('float64', Float64Array.from(state.h[k]), [B, H]);
      feeds[`c.l${k}`] = new ort.Tensor('float64', Float64Array.from(state.c[k]), [B, H]);
    });
    feeds.x = new ort.Tensor('int64', int64(x), [T, B]);
    feeds.y = new ort.Tensor('int64', int64(y), [T, B]);
    return feeds;
  }

  async gradients(p: RefParams, x: Tokens, y: Tokens, state: RefState): Promise<EngineGrad> {
    const r = await this.grad.run(this.feeds(p, x, y, state));
    const params: Record<string, Float64Array> = {};
    for (const q of this.params) params[q.name] = toTorch(q.name, q.shape, r[`d.${q.name}`].data as Float64Array);
    return {
      loss: (r.loss.data as Float64Array)[0],
      params,
      h0: this.spec.hidden.map((_, k) => r[`d.h.l${k}`].data as Float64Array),
      c0: this.spec.hidden.map((_, k) => r[`d.c.l${k}`].data as Float64Array),
    };
  }

  async evaluate(p: RefParams, x: Tokens, y: Tokens, state: RefState) {
    const r = await this.evalS.run(this.feeds(p, x, y, state));
    return {
      loss: (r.loss.data as Float64Array)[0],
      hT: this.spec.hidden.map((_, k) => r[`h_out.l${k}`].data as Float64Array),
      cT: this.spec.hidden.map((_, k) => r[`c_out.l${k}`].data as Float64Array),
    };
  }

  async release() {
    await Promise.all([this.grad.release(), this.evalS.release()]);
  }
}

/**
 * The engine's gradients against central differences of the eval program's loss, at a few random
 * coordinates of every tensor plus the coordinate of its largest gradient.
 */
async function checkFdThroughEval(engine: Engine, p: RefParams, x: Tokens, y: Tokens, state: RefState, g: EngineGrad, label: string, seed: number) {
  const rng = lcg(seed);
  const loss = async () => (await engine.evaluate(p, x, y, state)).loss;
  const targets: [string, Float64Array, Float64Array][] = Object.entries(p).map(([k, t]) => [k, t.data, g.params[k]]);
  engine.spec.hidden.forEach((_, k) => {
    targets.push([`h0.l${k}`, state.h[k], g.h0[k]]);
    targets.push([`c0.l${k}`, state.c[k], g.c0[k]]);
  });
  for (const [name, data, grad] of targets) {
    const idx = new Set<number>();
    let arg = 0;
    for (let i = 1; i < grad.length; i++) if (Math.abs(grad[i]) > Math.abs(grad[arg])) arg = i;
    idx.add(arg);
    for (let n = 0; n < Math.min(4, data.length - 1); n++) idx.add(Math.floor(rng() * data.length));
    for (const i of idx) {
      const old = data[i];
      data[i] = old + FD_EPS;
      const up = await loss();
      data[i] = old - FD_EPS;
      const down = await loss();
      data[i] = old;
      const fd = (up - down) / (2 * FD_EPS);
      const ratio = Math.abs(grad[i] - fd) / (FD_ATOL + FD_RTOL * Math.abs(fd));
      record('engine grad vs FD of eval program (ratio to 1e-8 + 1e-5·|fd|)', ratio, `${label} ${name}[${i}]`);
      expect(ratio, `${label} ${name}[${i}]: grad program ${grad[i]} vs central FD of eval program ${fd}`).toBeLessThanOrEqual(1);
    }
  }
}

// ---- golden fixtures ---------------------------------------------------------------------------
interface GoldenGrad {
  spec: RefSpec;
  params: RefParams;
  x: Tokens;
  y: Tokens;
  state: RefState;
  loss: number;
  grads: RefGradsLike;
  hT: Float64Array[];
  cT: Float64Array[];
  maxPreact: number;
}
interface RefGradsLike {
  params: Record<string, Float64Array>;
  h0: Float64Array[];
  c0: Float64Array[];
}

function loadGolden(name: string): GoldenGrad {
  const { tensors, metadata } = readSafetensors(path.join(GOLDEN, `${name}.safetensors`), 'golden fixture');
  const spec: RefSpec = { vocab: Number(metadata.vocab), embedding: Number(metadata.embedding), hidden: JSON.parse(metadata.hidden) };
  const params: RefParams = {};
  const gp: Record<string, Float64Array> = {};
  for (const [k, t] of Object.entries(tensors)) {
    if (/^(lstm|fc|embedding)\./.test(k)) params[k] = { shape: t.shape, data: f64(t) };
    if (/^grad\.(lstm|fc|embedding)\./.test(k)) gp[k.slice(5)] = f64(t);
  }
  const per = (prefix: string) => spec.hidden.map((_, k) => f64(tensors[`${prefix}.l${k}`]));
  return {
    spec,
    params,
    x: tokensOf(tensors.x),
    y: tokensOf(tensors.y),
    state: { h: per('h0'), c: per('c0') },
    loss: f64(tensors.loss)[0],
    grads: { params: gp, h0: per('grad.h0'), c0: per('grad.c0') },
    hT: per('hT'),
    cT: per('cT'),
    maxPreact: Number(metadata.max_abs_preact),
  };
}

/** Every gradient of `got` against `want` (PyTorch names; h0/c0 per layer). */
function expectGrads(got: RefGradsLike, want: RefGradsLike, tol: number, label: string, kind: string) {
  expect(Object.keys(got.params).sort(), `${label}: gradient names`).toEqual(Object.keys(want.params).sort());
  for (const k of Object.keys(want.params)) expectRel(got.params[k], want.params[k], tol, `${label} grad ${k}`, kind);
  want.h0.forEach((_, k) => {
    expectRel(got.h0[k], want.h0[k], tol, `${label} grad h0.l${k}`, kind);
    expectRel(got.c0[k], want.c0[k], tol, `${label} grad c0.l${k}`, kind);
  });
}

const GRAD_CASES = ['lm1_T1', 'lm1_T35', 'lm2_T35', 'lm2_carried', 'lm1_saturated', 'lm_embed'];

describe('grad program vs PyTorch golden values, TS reference and FD (float64)', () => {
  for (const [n, name] of GRAD_CASES.entries()) {
    it(name, async () => {
      const gd = loadGolden(name);
      const B = gd.x[0].length;
      const T = gd.x.length;
      if (name === 'lm1_saturated') expect(gd.maxPreact, 'the saturated case saturates').toBeGreaterThan(25);
      if (name === 'lm2_carried') expect(gd.state.h[0].some((v) => v !== 0), 'the carried case carries state').toBe(true);

      // the TS reference agrees with PyTorch (validates the reference on these cases too)
      const ref = lmForward(gd.params, gd.spec, gd.x, gd.y, gd.state);
      const refGrads = lmBackward(gd.params, gd.spec, ref);
      expectRel([ref.loss], [gd.loss], 1e-12, `${name} reference loss vs PyTorch`, 'loss vs PyTorch (relative)');
      expectGrads(refGrads, gd.grads, 1e-9, `${name} reference vs PyTorch`, 'TS reference grads vs PyTorch');

      const engine = await Engine.create(gd.spec, B, T);
      try {
        const e = await engine.gradients(gd.params, gd.x, gd.y, gd.state);
        expectRel([e.loss], [gd.loss], 1e-12, `${name} engine loss vs PyTorch`, 'loss vs PyTorch (relative)');
        expectGrads(e, gd.grads, 1e-4, `${name} engine vs PyTorch`, 'engine grads vs PyTorch');
        expectGrads(e, refGrads, 1e-9, `${name} engine vs TS reference`, 'engine grads vs TS reference');

        const ev = await engine.evaluate(gd.params, gd.x, gd.y, gd.state);
        expectRel([ev.loss], [gd.loss], 1e-12, `${name} eval loss vs PyTorch`, 'loss vs PyTorch (relative)');
        gd.spec.hidden.forEach((_, k) => {
          expectRel(ev.hT[k], gd.hT[k], 1e-9, `${name} eval h_out.l${k} vs PyTorch`, 'final state vs PyTorch');
          expectRel(ev.cT[k], gd.cT[k], 1e-9, `${name} eval c_out.l${k} vs PyTorch`, 'final state vs PyTorch');
        });

        await checkFdThroughEval(engine, gd.params, gd.x, gd.y, gd.state, e, name, 100 + n);
      } finally {
        await engine.release();
      }
    });
  }
});

describe('grad program vs the TS reference and FD on shapes the fixtures do not cover', () => {
  const cases: [string, RefSpec, number, number, { carried?: boolean; lstmScale?: number }][] = [
    ['B = 1, T = 1, two layers, embedding', { vocab: 6, embedding: 2, hidden: [3, 2] }, 1, 1, { carried: true }],
    ['B = 1, T = 2, three layers', { vocab: 4, embedding: 0, hidden: [2, 3, 2] }, 1, 2, { carried: true }],
    ['B = 4, T = 3, one-hot, H = 1', { vocab: 3, embedding: 0, hidden: [1] }, 4, 3, {}],
    ['saturated, two layers, T = 12', { vocab: 5, embedding: 0, hidden: [3, 3] }, 2, 12, { carried: true, lstmScale: 20 }],
  ];
  for (const [n, [label, spec, B, T, o]] of cases.entries()) {
    it(label, async () => {
      const rng = lcg(200 + n);
      const p = randomParams(spec, rng, o.lstmScale ?? 1);
      const x = randomTokens(T, B, spec.vocab, rng);
      const y = randomTokens(T, B, spec.vocab, rng);
      const state: RefState = {
        h: spec.hidden.map((H) => Float64Array.from({ length: B * H }, () => (o.carried ? 2 * rng() - 1 : 0))),
        c: spec.hidden.map((H) => Float64Array.from({ length: B * H }, () => (o.carried ? 4 * rng() - 2 : 0))),
      };
      const ref = lmForward(p, spec, x, y, state);
      const refGrads = lmBackward(p, spec, ref);
      const engine = await Engine.create(spec, B, T);
      try {
        const e = await engine.gradients(p, x, y, state);
        expectRel([e.loss], [ref.loss], 1e-12, `${label} loss`, 'loss vs TS reference (relative)');
        expectGrads(e, refGrads, 1e-9, label, 'engine grads vs TS reference');
        await checkFdThroughEval(engine, p, x, y, state, e, label, 300 + n);
      } finally {
        await engine.release();
      }
    });
  }

  it('the hand-computed case (test/reference/hand_case.ts)', async () => {
    const h = handCase();
    const engine = await Engine.create(h.spec, 1, 1);
    try {
      const e = await engine.gradients(h.params, h.x, h.y, h.state);
      expect(Math.abs(e.loss - HAND_EXPECTED.loss), `loss ${e.loss}`).toBeLessThan(1e-15);
      for (const [k, want] of Object.entries(HAND_EXPECTED.grads))
        for (let i = 0; i < want.length; i++) expect(Math.abs(e.params[k][i] - want[i]), `${k}[${i}]: ${e.params[k][i]} vs ${want[i]}`).toBeLessThan(1e-15);
      expect(Math.abs(e.h0[0][0] - HAND_EXPECTED.dh0), `dh0 ${e.h0[0][0]}`).toBeLessThan(1e-15);
      expect(Math.abs(e.c0[0][0] - HAND_EXPECTED.dc0), `dc0 ${e.c0[0][0]}`).toBeLessThan(1e-15);
    } finally {
      await engine.release();
    }
  });
});

// ---- the train program -------------------------------------------------------------------------
const OPT_BASE = { momentum: 0, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 };

function optimizerOf(meta: Record<string, string>): OptimizerConfig {
  return {
    ...OPT_BASE,
    type: meta.optimizer as OptimizerConfig['type'],
    learningRate: Number(meta.lr),
    momentum: Number(meta.momentum),
    weightDecay: Number(meta.weight_decay),
  };
}

interface TrainRun {
  spec: RefSpec;
  optimizer: OptimizerConfig;
  clip: number;
  /** initial parameters, PyTorch order */
  params: RefParams;
  /** K batches, each time-major [T][B] */
  xs: Tokens[];
  ys: Tokens[];
  keep: number[];
  lr: number[];
  /** state fed to the program (before keep[0] applies) */
  state: RefState;
}

/** All K steps in one session.run of the train program; results back in PyTorch order, as float64. */
async function runTrainProgram(o: TrainRun, dtype: 'float64' | 'float32') {
  const K = o.xs.length;
  const T = o.xs[0].length;
  const B = o.xs[0][0].length;
  const prog = buildTrainProgram({ lm: { ...o.spec, dtype }, B, T, optimizer: o.optimizer, clipNorm: o.clip });
  const session = await ort.InferenceSession.create(prog.graph.encode(), SESSION_OPTS);
  try {
    const F = dtype === 'float64' ? Float64Array : Float32Array;
    const feeds: Record<string, ort.Tensor> = {};
    for (const q of prog.params) feeds[`p.${q.name}`] = new ort.Tensor(dtype, F.from(toInternal(q.name, q.shape, o.params[q.name].data)), q.shape);
    for (const s of prog.state) feeds[`s.${s.name}`] = new ort.Tensor(dtype, new F(s.shape.reduce((a, b) => a * b, 1)), s.shape);
    o.spec.hidden.forEach((H, k) => {
      feeds[`h.l${k}`] = new ort.Tensor(dtype, F.from(o.state.h[k]), [B, H]);
      feeds[`c.l${k}`] = new ort.Tensor(dtype, F.from(o.state.c[k]), [B, H]);
    });
    feeds.x = new ort.Tensor('int64', BigInt64Array.from(o.xs.flat(2), (v) => BigInt(v)), [K, T, B]);
    feeds.y = new ort.Tensor('int64', BigInt64Array.from(o.ys.flat(2), (v) => BigInt(v)), [K, T, B]);
    feeds.keep = new ort.Tensor(dtype, F.from(o.keep), [K]);
    feeds.lr = new ort.Tensor(dtype, F.from(o.lr), [K]);
    const r = await session.run(feeds);
    const num = (v: ort.Tensor) => Float64Array.from(v.data as Float64Array | Float32Array);
    // optimizer state: per-parameter buffers are gated like their parameters
    const optState: Record<string, Float64Array> = {};
    for (const s of prog.state) {
      const pname = s.name.replace(/^(momentum_buffer|exp_avg|exp_avg_sq)\./, '');
      optState[s.name] = toTorch(pname, s.shape, num(r[`s_out.${s.name}`]));
    }
    return {
      losses: num(r.loss),
      gnorms: num(r.gnorm),
      final: Object.fromEntries(prog.params.map((q) => [q.name, toTorch(q.name, q.shape, num(r[`p_out.${q.name}`]))])) as Record<string, Float64Array>,
      hT: o.spec.hidden.map((_, k) => num(r[`h_out.l${k}`])),
      cT: o.spec.hidden.map((_, k) => num(r[`c_out.l${k}`])),
      optState,
    };
  } finally {
    await session.release();
  }
}

/** A golden trajectory as a TrainRun (state fed as garbage, which keep[0] = 0 must reset). */
function loadTrajectory(name: string) {
  const { tensors, metadata } = readSafetensors(path.join(GOLDEN, `${name}.safetensors`), 'golden fixture');
  const spec: RefSpec = { vocab: Number(metadata.vocab), embedding: 0, hidden: JSON.parse(metadata.hidden) };
  const [K, B, T] = tensors.xs.shape;
  const batches = (t: StTensor) => {
    const d = t.data as BigInt64Array;
    return Array.from({ length: K }, (_, k) =>
      Array.from({ length: T }, (_, s) => Array.from({ length: B }, (_, b) => Number(d[(k * B + b) * T + s]))),
    );
  };
  const params: RefParams = {};
  for (const { name, shape } of buildTrainProgram({ lm: { ...spec, dtype: 'float64' }, B, T, optimizer: optimizerOf(metadata), clipNorm: 0 }).params)
    params[name] = { shape, data: Float64Array.from(f64(tensors[name])) };
  const optimizer = optimizerOf(metadata);
  const run: TrainRun = {
    spec,
    optimizer,
    clip: Number(metadata.clip),
    params,
    xs: batches(tensors.xs),
    ys: batches(tensors.ys),
    keep: Array.from({ length: K }, (_, k) => (k === 0 ? 0 : 1)),
    lr: new Array(K).fill(optimizer.learningRate),
    state: { h: spec.hidden.map((H) => new Float64Array(B * H).fill(0.5)), c: spec.hidden.map((H) => new Float64Array(B * H).fill(-3)) },
  };
  const want = {
    losses: f64(tensors.losses),
    gnorms: f64(tensors.gnorms),
    final: Object.fromEntries(Object.keys(params).map((k) => [k, f64(tensors[`final.${k}`])])) as Record<string, Float64Array>,
    hT: spec.hidden.map((_, k) => f64(tensors[`hT.l${k}`])),
    cT: spec.hidden.map((_, k) => f64(tensors[`cT.l${k}`])),
  };
  return { run, want };
}

interface TrajectoryResult {
  losses: ArrayLike<number>;
  gnorms: ArrayLike<number>;
  final: Record<string, ArrayLike<number>>;
  hT: ArrayLike<number>[];
  cT: ArrayLike<number>[];
}

function expectTrajectory(got: TrajectoryResult, want: TrajectoryResult, tol: number, label: string, kind: string) {
  expectRel(got.losses, want.losses, tol, `${label} losses`, kind);
  expectRel(got.gnorms, want.gnorms, tol, `${label} gradient norms`, kind);
  for (const k of Object.keys(want.final)) expectRel(got.final[k], want.final[k], tol, `${label} final ${k}`, kind);
  want.hT.forEach((_, k) => {
    expectRel(got.hT[k], want.hT[k], tol, `${label} h_out.l${k}`, kind);
    expectRel(got.cT[k], want.cT[k], tol, `${label} c_out.l${k}`, kind);
  });
}

/** The TS reference's trajectory for a TrainRun (on a copy of the parameters). */
function referenceTrajectory(o: TrainRun) {
  const p: RefParams = Object.fromEntries(Object.entries(o.params).map(([k, t]) => [k, { shape: t.shape, data: Float64Array.from(t.data) }]));
  const r = trainSteps(p, o.spec, o.xs, o.ys, { opt: o.optimizer, clip: o.clip, keep: o.keep, lr: o.lr, state: o.state });
  return {
    losses: Float64Array.from(r.losses),
    gnorms: Float64Array.from(r.gnorms),
    final: Object.fromEntries(Object.entries(p).map(([k, t]) => [k, t.data])) as Record<string, Float64Array>,
    hT: r.state.h,
    cT: r.state.c,
    opt: r.opt,
  };
}

// sgd10 clips at 1.0, above every gradient norm of this model (~0.1–0.4); the others clip inside
// that range, so min(1, clip/‖g‖) takes both branches
const TRAJECTORIES = [
  ['sgd10', 0],
  ['sgd10_clip', 9],
  ['adam10', 6],
  ['momentum10', 4],
  ['adamw10', 6],
] as const;

describe('10-step trajectories vs PyTorch (train program, K = 10 steps in one session.run)', () => {
  for (const [name, clippedSteps] of TRAJECTORIES) {
    it(`${name}, float64: losses, gradient norms, final parameters and state within 1e-6`, async () => {
      const { run, want } = loadTrajectory(name);
      expect(Array.from(want.gnorms).filter((g) => g > run.clip).length, `${name}: steps where clipping acts`).toBe(clippedSteps);
      const got = await runTrainProgram(run, 'float64');
      expect(got.losses.length).toBe(10);
      expectTrajectory(got, want, 1e-6, `${name} engine`, 'trajectory float64 vs PyTorch');
      // and the TS optimizer reference reproduces PyTorch too (it is used below)
      expectTrajectory(referenceTrajectory(run), want, 1e-9, `${name} TS reference`, 'TS reference trajectory vs PyTorch');
    });
  }
  for (const [name] of TRAJECTORIES) {
    it(`${name}, float32 (the training dtype): losses within 1e-3`, async () => {
      const { run, want } = loadTrajectory(name);
      const got = await runTrainProgram(run, 'float32');
      expectRel(got.losses, want.losses, 1e-3, `${name} float32 losses`, 'trajectory float32 losses vs PyTorch');
    });
  }
});

describe('train program vs the TS reference on configurations the fixtures do not cover (float64)', () => {
  const base = { momentum: 0.9, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 };
  const cases: [string, RefSpec, number, number, OptimizerConfig, number, number[], number[], boolean][] = [
    // label, spec, B, T, optimizer, clip, keep, lr, carried-in state
    ['embedding, 2 layers, T = 1, AdamW, resets mid-run, lr schedule', { vocab: 6, embedding: 3, hidden: [4, 3] }, 2, 1,
      { ...base, type: 'adamw', learningRate: 0.02, weightDecay: 0.01 }, 0.5, [0, 1, 1, 0, 1, 1], [0.02, 0.015, 0.01, 0.02, 0.005, 0.001], false],
    ['3 layers, momentum + L2, carried-in state kept at step 0', { vocab: 5, embedding: 0, hidden: [3, 2, 2] }, 3, 4,
      { ...base, type: 'momentum', learningRate: 0.1, weightDecay: 1e-3 }, 0.3, [1, 1, 0, 1, 1], [0.1, 0.2, 0.1, 0.05, 0.1], true],
    ['Adam with L2 weight decay, no clipping, B = 1', { vocab: 4, embedding: 2, hidden: [5] }, 1, 3,
      { ...base, type: 'adam', learningRate: 0.05, weightDecay: 0.01 }, 0, [0, 1, 1, 1], [0.05, 0.05, 0.05, 0.05], false],
    ['SGD, one step, no clipping', { vocab: 7, embedding: 0, hidden: [2] }, 2, 5,
      { ...base, type: 'sgd', learningRate: 1 }, 0, [1], [1], true],
  ];
  for (const [n, [label, spec, B, T, optimizer, clip, keep, lr, carried]] of cases.entries()) {
    it(label, async () => {
      const rng = lcg(400 + n);
      const K = keep.length;
      const run: TrainRun = {
        spec,
        optimizer,
        clip,
        params: randomParams(spec, rng),
        xs: Array.from({ length: K }, () => randomTokens(T, B, spec.vocab, rng)),
        ys: Array.from({ length: K }, () => randomTokens(T, B, spec.vocab, rng)),
        keep,
        lr,
        state: {
          h: spec.hidden.map((H) => Float64Array.from({ length: B * H }, () => (carried ? 2 * rng() - 1 : 0.5))),
          c: spec.hidden.map((H) => Float64Array.from({ length: B * H }, () => (carried ? 4 * rng() - 2 : -3))),
        },
      };
      const want = referenceTrajectory(run);
      const got = await runTrainProgram(run, 'float64');
      if (clip > 0) expect(Array.from(want.gnorms).some((g) => g > clip), `${label}: clipping acts somewhere`).toBe(true);
      expectTrajectory(got, want, 1e-9, label, 'train program vs TS reference trajectory');
      // optimizer state out
      const names = Object.keys(run.params);
      for (const k of names) {
        if (optimizer.type === 'momentum') expectRel(got.optState[`momentum_buffer.${k}`], want.opt.m[k], 1e-9, `${label} momentum_buffer.${k}`, 'train program vs TS reference trajectory');
        if (optimizer.type === 'adam' || optimizer.type === 'adamw') {
          expectRel(got.optState[`exp_avg.${k}`], want.opt.m[k], 1e-9, `${label} exp_avg.${k}`, 'train program vs TS reference trajectory');
          expectRel(got.optState[`exp_avg_sq.${k}`], want.opt.v[k], 1e-9, `${label} exp_avg_sq.${k}`, 'train program vs TS reference trajectory');
        }
      }
      if (optimizer.type === 'adam' || optimizer.type === 'adamw') expect(got.optState.step[0], `${label} step`).toBe(K);
    });
  }
});
