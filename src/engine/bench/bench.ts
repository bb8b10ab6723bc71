// `gatelab bench` (DESIGN §6): training steps of C1–C3 and per-token generation of C4, each timed
// against a ceiling measured in the same run on the same device and threads:
//  - training (C1–C3): the time onnxruntime's own MatMul needs for the GEMMs the algorithm cannot
//    avoid on its shapes (forward input projection and recurrence, backward recurrence and weight
//    gradients, the output layer for C1); ratio = ceiling / our step time (1 = at the ceiling);
//  - inference (C4): onnxruntime's fused LSTM operator stepping one token at a time; ratio =
//    our per-token latency / the fused op's (≤ 1.2 is the target).
// G1 and G4 (only with --only) are C1 and C4 with a GRU layer, against the GRU's GEMMs and the fused
// ONNX GRU operator.
//
// Legend: K = steps per run, T = time, B = batch, I = input, H = hidden, G = 4H, V = vocabulary.

import * as ort from 'onnxruntime-node';
import { Graph, attr } from '../onnx/builder';
import { Ops } from '../onnx/ops';
import { gradients } from '../onnx/grad';
import { lstmRecurrence, type GateActivation } from '../nn/lstm';
import { checkCell, LSTM_AS_EQUATIONS, type CellSpec } from '../nn/cellspec';
import { clipByGlobalNorm, optimizerStep } from '../nn/optim';
import { OptimizerConfig } from '../config/types';
import { buildStepProgram, buildTrainProgram } from '../train/program';
import { lmParams } from '../nn/lm';
import { Rng } from '../util/rng';
import { createSession, DeviceChoice } from '../runtime/device';
import { measurePlacement, Placement } from '../runtime/placement';

export interface BenchResult {
  id: string;
  device: 'cpu' | 'cuda';
  config: string;
  msPerStep?: number;
  tokensPerSecond?: number;
  msPerToken?: number;
  /** training: ceiling time / step time; inference: our latency / fused LSTM latency */
  ceilingRatio: number;
  ceilingMs: number;
  /** high-water mark of the process's resident memory right after the timed runs */
  peakRssMB: number;
  /** C2, C3: parameters, gradients, input and activations a step must hold */
  mustHoldMB?: number;
  /** C1–C3 on CUDA (or with `placement`): where the training program's nodes ran */
  placement?: Pick<Placement, 'nodesByProvider' | 'elsewhere'>;
}

const SGD: OptimizerConfig = { type: 'sgd', learningRate: 0.1, momentum: 0.9, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 };

function randn(n: number, rng: Rng, scale: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rng.next() * 2 - 1) * scale;
  return a;
}

async function timeRuns(run: () => Promise<unknown>, minRuns: number, minMs: number): Promise<number> {
  await run(); // warm-up (allocations, kernel choice)
  const times: number[] = [];
  const t0 = performance.now();
  while (times.length < minRuns || performance.now() - t0 < minMs) {
    const t = performance.now();
    await run();
    times.push(performance.now() - t);
    if (times.length >= 200) break;
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** K training steps of one dense-input LSTM layer (C2, C3): loss = mean(h ⊙ r), SGD, clipping. */
function denseTrainProgram(I: number, H: number, B: number, T: number): Graph {
  const g = new Graph('bench_dense');
  const op = new Ops(g);
  const G = 4 * H;
  const pIn = [g.input('p.wih', 'float32', [G, I]), g.input('p.whh', 'float32', [G, H]), g.input('p.b', 'float32', [G])];
  const x = g.input('x', 'float32', ['K', T, B, I]);
  const r = g.input('r', 'float32', [T, B, H]);
  const lr = g.input('lr', 'float32', ['K']);
  const body = g.subgraph('step');
  const bo = new Ops(body);
  const bp = pIn.map((p) => body.input(body.freshName(p.name), 'float32', p.shape));
  const bx = body.input(body.freshName('x_t'), 'float32', [T, B, I]);
  const blr = body.input(body.freshName('lr_t'), 'float32', []);
  const [wih, whh, b] = bp;
  const xw = bo.Reshape(bo.Gemm(bo.Reshape(bx, [T * B, I]), wih, b, { transB: 1 }), [T, B, G]);
  const zeros = body.const(new Array(B * H).fill(0), 'float32', [B, H]);
  const f = lstmRecurrence(body, xw, whh, zeros, zeros);
  const loss = bo.ReduceMean(bo.Mul(f.hs, r));
  const grads = gradients(body, loss, bp);
  const clipped = clipByGlobalNorm(body, grads, 1);
  const upd = optimizerStep(body, SGD, bp, clipped.grads, [], blr);
  upd.params.forEach((v) => body.output(v));
  body.output(loss);
  const outs = op.Scan(body, pIn, [x, lr]);
  pIn.forEach((p, i) => g.output(outs[i], `p_out.${p.name.slice(2)}`));
  g.output(outs[3], 'loss');
  return g;
}

interface Gemm {
  M: number;
  K: number;
  N: number;
  count: number;
}

/** Time of onnxruntime's MatMul on these shapes (each `count` times), summed. */
async function matmulCeiling(gemms: Gemm[], choice: DeviceChoice, threads?: number): Promise<number> {
  let total = 0;
  const rng = new Rng(1);
  for (const { M, K, N, count } of gemms) {
    const g = new Graph('ceiling');
    const op = new Ops(g);
    // one distinct left operand per product, so that no optimizer can merge repeated MatMuls
    const as = Array.from({ length: count }, (_, k) => g.input(`a${k}`, 'float32', [M, K]));
    const b = g.input('b', 'float32', [K, N]);
    const sums = as.map((a) => op.ReduceSum(op.MatMul(a, b)));
    g.output(sums.length === 1 ? sums[0] : op.Sum(...sums), 'y');
    const { session } = await createSession(g.encode(), choice, { threads });
    const feeds: Record<string, ort.Tensor> = { b: new ort.Tensor('float32', randn(K * N, rng, 1), [K, N]) };
    as.forEach((_, k) => (feeds[`a${k}`] = new ort.Tensor('float32', randn(M * K, rng, 1), [M, K])));
    total += await timeRuns(() => session.run(feeds), 5, 300);
    await session.release();
  }
  return total;
}

function rssMB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

export interface BenchOptions {
  device: DeviceChoice;
  threads?: number;
  only?: string[];
  /** smaller shapes and fewer runs (tests) */
  quick?: boolean;
  /** profile one run of each training program and report where its nodes ran (always on CUDA) */
  placement?: boolean;
  log?: (s: string) => void;
}

/** The LSTM written as equations (i, f, g, o, c, h; one bias each): C1-cell's layer. */
export function lstmAsEquations(): CellSpec {
  const r = checkCell([...LSTM_AS_EQUATIONS], ['h', 'c']);
  return r.spec!;
}

export async function runBench(o: BenchOptions): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  // C1–C4 by default (DESIGN §6); the GRU configurations G1 and G4 when asked for
  const want = (id: string) => (o.only ? o.only.includes(id) : id.startsWith('C'));
  const q = o.quick ? 4 : 1;
  const log = o.log ?? (() => undefined);
  const placementOf = async (model: Uint8Array, choice: DeviceChoice, feeds: Record<string, ort.Tensor>): Promise<BenchResult['placement']> => {
    if (!(o.placement || choice.device === 'cuda')) return undefined;
    const p = await measurePlacement(model, choice.device, { feeds, threads: o.threads });
    log(p.allOnDevice ? `placement: all ${Object.values(p.nodesByProvider)[0]} nodes on ${Object.keys(p.nodesByProvider)[0]}` : `placement: ${JSON.stringify(p.nodesByProvider)}; elsewhere: ${p.elsewhere.join(', ')}`);
    return { nodesByProvider: p.nodesByProvider, elsewhere: p.elsewhere };
  };

  // C1; G1: the same char-LM with a GRU layer (3 gate blocks instead of 4; no cell state); C1-cell:
  // C1 with the LSTM written as equations (`type: cell`), against the same ceiling
  for (const [id, cell] of [
    ['C1', 'lstm'],
    ['C1-cell', 'cell'],
    ['G1', 'gru'],
  ] as const) {
    if (!want(id)) continue;
    const [V, H, B, T, K] = [28, 256 / q, 32, 35, 16];
    const gate: GateActivation | undefined = cell === 'gru' ? { kind: 'sigmoid', cell: 'gru' } : cell === 'cell' ? { kind: 'sigmoid', cell: 'cell', equations: lstmAsEquations() } : undefined;
    const lm = { vocab: V, embedding: 0, hidden: [H], dtype: 'float32' as const, ...(gate ? { gates: [gate] } : {}) };
    const prog = buildTrainProgram({ lm, B, T, optimizer: { ...SGD, learningRate: 1 }, clipNorm: 1 });
    const { session, choice } = await createSession(prog.graph.encode(), o.device, { threads: o.threads });
    const rng = new Rng(2);
    const feeds: Record<string, ort.Tensor> = {};
    for (const p of prog.params) feeds[`p.${p.name}`] = new ort.Tensor('float32', randn(p.shape.reduce((a, b) => a * b, 1), rng, 0.06), p.shape);
    feeds['h.l0'] = new ort.Tensor('float32', new Float32Array(B * H), [B, H]);
    if (cell !== 'gru') feeds['c.l0'] = new ort.Tensor('float32', new Float32Array(B * H), [B, H]);
    const ids = () => BigInt64Array.from({ length: K * T * B }, () => BigInt(rng.int(0, V - 1)));
    feeds.x = new ort.Tensor('int64', ids(), [K, T, B]);
    feeds.y = new ort.Tensor('int64', ids(), [K, T, B]);
    feeds.keep = new ort.Tensor('float32', new Float32Array(K).fill(1), [K]);
    feeds.lr = new ort.Tensor('float32', new Float32Array(K).fill(0.01), [K]);
    const ms = (await timeRuns(() => session.run(feeds), 3, o.quick ? 200 : 2000)) / K;
    await session.release();
    const placement = await placementOf(prog.graph.encode(), choice, feeds);
    const G = (cell === 'gru' ? 3 : 4) * H;
    const ceiling = await matmulCeiling(
      [
        { M: B, K: H, N: G, count: T }, // h·W_hhᵀ per step
        { M: B, K: G, N: H, count: T }, // dpre·W_hh per step
        { M: G, K: T * B, N: H, count: 1 }, // dW_hh
        { M: T * B, K: H, N: V, count: 1 }, // fc forward
        { M: V, K: T * B, N: H, count: 1 }, // d fc.weight
        { M: T * B, K: V, N: H, count: 1 }, // dH from the output layer
      ],
      choice,
      o.threads,
    );
    results.push({ id, device: choice.device, config: `char-LM V=${V} ${cell === 'cell' ? 'LSTM as equations' : cell.toUpperCase()} H=${H} B=${B} T=${T}, SGD + clip, K=${K}`, msPerStep: ms, tokensPerSecond: (B * T * 1000) / ms, ceilingRatio: ceiling / ms, ceilingMs: ceiling, peakRssMB: rssMB(), ...(placement ? { placement } : {}) });
    log(`${id} ${ms.toFixed(2)} ms/step`);
  }

  for (const [id, H] of [
    ['C2', 512 / q],
    ['C3', 1024 / q],
  ] as const) {
    if (!want(id)) continue;
    const [I, B, T, K] = [H, 64, o.quick ? 20 : 100, 2];
    const G = 4 * H;
    const g = denseTrainProgram(I, H, B, T);
    const { session, choice } = await createSession(g.encode(), o.device, { threads: o.threads });
    const rng = new Rng(3);
    const k = 1 / Math.sqrt(H);
    const feeds: Record<string, ort.Tensor> = {
      'p.wih': new ort.Tensor('float32', randn(G * I, rng, k), [G, I]),
      'p.whh': new ort.Tensor('float32', randn(G * H, rng, k), [G, H]),
      'p.b': new ort.Tensor('float32', randn(G, rng, k), [G]),
      x: new ort.Tensor('float32', randn(K * T * B * I, rng, 1), [K, T, B, I]),
      r: new ort.Tensor('float32', randn(T * B * H, rng, 1), [T, B, H]),
      lr: new ort.Tensor('float32', new Float32Array(K).fill(0.01), [K]),
    };
    const ms = (await timeRuns(() => session.run(feeds), 3, o.quick ? 200 : 3000)) / K;
    const rss = rssMB();
    await session.release();
    const placement = await placementOf(g.encode(), choice, feeds);
    // what a step must hold (float32): parameters and their gradients, the K-step input, and the
    // activations backward needs (gates i f o g, cell c, hidden h: 6H per position; the input X)
    const MB = 4 / 1024 / 1024;
    const paramsN = G * I + G * H + G;
    const mustHoldMB = (2 * paramsN + K * T * B * I + T * B * (6 * H + I)) * MB;
    const ceiling = await matmulCeiling(
      [
        { M: T * B, K: I, N: G, count: 1 }, // X·W_ihᵀ
        { M: B, K: H, N: G, count: T }, // h·W_hhᵀ per step
        { M: B, K: G, N: H, count: T }, // dpre·W_hh per step
        { M: G, K: T * B, N: H, count: 1 }, // dW_hh
        { M: G, K: T * B, N: I, count: 1 }, // dW_ih
      ],
      choice,
      o.threads,
    );
    results.push({ id, device: choice.device, config: `LSTM I=${I} H=${H} B=${B} T=${T}, fwd+bwd+SGD, K=${K}`, msPerStep: ms, tokensPerSecond: (B * T * 1000) / ms, ceilingRatio: ceiling / ms, ceilingMs: ceiling, peakRssMB: rss, mustHoldMB, ...(placement ? { placement } : {}) });
    log(`${id} ${ms.toFixed(2)} ms/step`);
  }

  // C4, and G4: one-token generation against the fused ONNX LSTM / GRU operator
  for (const [id, cell] of [
    ['C4', 'lstm'],
    ['G4', 'gru'],
  ] as const) {
    if (!want(id)) continue;
    const gru = cell === 'gru';
    const [V, H] = [28, 256];
    const lm = { vocab: V, embedding: 0, hidden: [H], dtype: 'float32' as const, ...(gru ? { gates: [{ kind: 'sigmoid' as const, cell: 'gru' as const }] } : {}) };
    const rng = new Rng(4);
    const weights = new Map(lmParams(lm).map((p) => [p.name, { shape: p.shape, data: randn(p.shape.reduce((a, b) => a * b, 1), rng, 0.06) }]));
    // the sampler's program: weights baked in as initializers
    const prog = buildStepProgram({ lm, B: 1, weights });
    const { session, choice } = await createSession(prog.graph.encode(), o.device, { threads: o.threads });
    const tokens = o.quick ? 30 : 300;
    const ours = async () => {
      let h: ort.Tensor = new ort.Tensor('float32', new Float32Array(H), [1, H]);
      let c: ort.Tensor = new ort.Tensor('float32', new Float32Array(H), [1, H]);
      for (let t = 0; t < tokens; t++) {
        const r = await session.run({ 'h.l0': h, ...(gru ? {} : { 'c.l0': c }), x: new ort.Tensor('int64', BigInt64Array.of(BigInt(t % V)), [1]) });
        h = r['h_out.l0'];
        if (!gru) c = r['c_out.l0'];
      }
    };
    const msOurs = (await timeRuns(ours, 3, o.quick ? 100 : 1500)) / tokens;
    await session.release();
    // the fused ONNX operator on the same one-hot step, plus the same output layer
    const fg = new Graph('fused');
    const op = new Ops(fg);
    const x = fg.input('x', 'float32', [1, 1, V]);
    // weights baked in as initializers, as in our step program
    const k = (dims: number[]) => fg.const({ dtype: 'float32', dims, data: randn(dims.reduce((a, b) => a * b, 1), rng, 0.06) }, 'float32', dims);
    const nG = gru ? 3 : 4;
    const W = k([1, nG * H, V]);
    const R = k([1, nG * H, H]);
    const Bb = k([1, 2 * nG * H]);
    const h0 = fg.input('h0', 'float32', [1, 1, H]);
    const c0 = gru ? undefined : fg.input('c0', 'float32', [1, 1, H]);
    const fcw = k([V, H]);
    const fcb = k([V]);
    const outs = gru
      ? fg.node('GRU', [x, W, R, Bb, null, h0], { hidden_size: attr.i(H), linear_before_reset: attr.i(1) }, [
          { dtype: 'float32', shape: [1, 1, 1, H] },
          { dtype: 'float32', shape: [1, 1, H] },
        ])
      : fg.node('LSTM', [x, W, R, Bb, null, h0, c0!], { hidden_size: attr.i(H) }, [
          { dtype: 'float32', shape: [1, 1, 1, H] },
          { dtype: 'float32', shape: [1, 1, H] },
          { dtype: 'float32', shape: [1, 1, H] },
        ]);
    fg.output(op.Gemm(op.Reshape(outs[1], [1, H]), fcw, fcb, { transB: 1 }), 'logits');
    fg.output(outs[1], 'h');
    if (!gru) fg.output(outs[2], 'c');
    const fused = (await createSession(fg.encode(), choice, { threads: o.threads })).session;
    const theirs = async () => {
      let h: ort.Tensor = new ort.Tensor('float32', new Float32Array(H), [1, 1, H]);
      let c: ort.Tensor = new ort.Tensor('float32', new Float32Array(H), [1, 1, H]);
      for (let t = 0; t < tokens; t++) {
        const xv = new Float32Array(V);
        xv[t % V] = 1;
        const r = await fused.run({ x: new ort.Tensor('float32', xv, [1, 1, V]), h0: h, ...(gru ? {} : { c0: c }) });
        h = r.h;
        if (!gru) c = r.c;
      }
    };
    const msFused = (await timeRuns(theirs, 3, o.quick ? 100 : 1500)) / tokens;
    await fused.release();
    results.push({ id, device: choice.device, config: `generation B=1 ${cell.toUpperCase()} H=${H} V=${V}, one session.run per token`, msPerToken: msOurs, ceilingRatio: msOurs / msFused, ceilingMs: msFused, peakRssMB: rssMB() });
    log(`${id} ${msOurs.toFixed(3)} ms/token`);
  }
  return results;
}
