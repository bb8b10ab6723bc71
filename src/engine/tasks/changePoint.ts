// task: change-point, the cell as an adaptive leaky integrator: a piecewise-constant mean plus
// Gaussian noise (data.noise), the mean jumping to a new N(0, 1) draw at random steps (each step with
// probability data.rate); the target at every step is the current mean. A model that averages all it
// has seen is wrong after every jump, one that repeats the last value keeps all the noise; a good one
// averages since the last jump, so its forget gate must drop at a change point. The network reads one
// value per step and predicts the mean at every step (Linear on each h_t); the loss and the metric are
// the MSE over every step of the validation sequences, beside the running-mean and last-value
// baselines. `gatelab grad` takes inputs [batch][time] and targets [batch][time].

import * as fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import type { ModelConfig } from '../config/types';
import { Graph, Value } from '../onnx/builder';
import { Ops } from '../onnx/ops';
import { gradients } from '../onnx/grad';
import { cellDef } from '../nn/cells';
import type { ParamInfo } from '../nn/lm';
import { stackParams, StackSpec } from '../nn/stack';
import { Rng } from '../util/rng';
import { readStepBatch } from '../data/batchjson';
import { cellOf, checkCheckpointFits, float32Feeds } from '../train/lmsetup';
import { loadCheckpoint } from '../train/checkpoint';
import { allRecords } from '../data/csv';
import { UserError } from '../errors';
import { seqConnectivityOf } from '../train/connectivity';
import { buildStepsProgram, Program } from '../train/program';
import { SeqGateProbe } from '../train/probe';
import type { OptimizerConfig } from '../config/types';
import type { Checkpoint } from '../train/checkpoint';
import type { Task, TaskRun } from './task';
import { fixedProbe, forwardOnly } from './common';

const DTYPE = 'float32' as const;
const VALIDATION = 500;

/** B sequences of T steps, time-major: x [T, B, 1] the noisy values, y [T, B] the current means. */
export function changePointBatch(rng: Rng, T: number, B: number, rate: number, noise: number): { x: Float32Array; y: Float32Array } {
  const x = new Float32Array(T * B);
  const y = new Float32Array(T * B);
  for (let b = 0; b < B; b++) {
    let mu = rng.normal();
    for (let t = 0; t < T; t++) {
      if (t > 0 && rng.next() < rate) mu = rng.normal();
      y[t * B + b] = mu;
      x[t * B + b] = mu + noise * rng.normal();
    }
  }
  return { x, y };
}

/** The MSE of the two baselines on a batch: the mean of every value so far, and the last value. */
export function changePointBaselines(v: { x: Float32Array; y: Float32Array }, T: number, B: number): { runningMeanMse: number; lastValueMse: number } {
  let run = 0;
  let last = 0;
  for (let b = 0; b < B; b++) {
    let sum = 0;
    for (let t = 0; t < T; t++) {
      const xv = v.x[t * B + b];
      const mu = v.y[t * B + b];
      sum += xv;
      run += (sum / (t + 1) - mu) ** 2;
      last += (xv - mu) ** 2;
    }
  }
  return { runningMeanMse: run / (T * B), lastValueMse: last / (T * B) };
}

export function changePointParams(spec: StackSpec): ParamInfo[] {
  return [...stackParams(spec, 1), { name: 'fc.weight', shape: [1, spec.hidden[spec.hidden.length - 1]] }, { name: 'fc.bias', shape: [1] }];
}

/** x [T, B, 1] → the predicted mean at every step [T, B]. */
export function changePointForward(g: Graph, spec: StackSpec & { dtype: 'float32' | 'float64' }, P: Record<string, Value>, x: Value): Value {
  const op = new Ops(g);
  const [T, B] = x.shape as number[];
  let inp = x;
  spec.hidden.forEach((H, k) => {
    const zeros = g.const(new Array(B * H).fill(0), spec.dtype, [B, H]);
    inp = cellDef(spec.gates?.[k]).layer(g, P, k, { x: inp }, { h0: zeros, c0: zeros }, spec.gates?.[k], '').hs;
  });
  const H = spec.hidden[spec.hidden.length - 1];
  return g.scope('fc', () => op.Reshape(op.Gemm(op.Reshape(inp, [T * B, H]), P['fc.weight'], P['fc.bias'], { transB: 1 }), [T, B]));
}

function mse(g: Graph, pred: Value, y: Value): Value {
  const op = new Ops(g);
  const d = op.Sub(pred, y);
  return op.ReduceMean(op.Mul(d, d));
}

function trainProgram(spec: StackSpec & { dtype: 'float32' }, B: number, T: number, optimizer: OptimizerConfig, clipNorm: number): Program {
  return buildStepsProgram({
    name: 'gatelab_change_point_train',
    bodyName: 'change_point_step',
    dtype: spec.dtype,
    params: changePointParams(spec),
    optimizer,
    clipNorm,
    inputs: [
      { name: 'x', dtype: spec.dtype, shape: [T, B, 1] },
      { name: 'y', dtype: spec.dtype, shape: [T, B] },
    ],
    loss: (body, P, _c, [bx, by]) => ({ loss: mse(body, changePointForward(body, spec, P, bx), by) }),
  });
}

function predictProgram(spec: StackSpec & { dtype: 'float32' }, N: number, T: number): Graph {
  const params = changePointParams(spec);
  const g = new Graph('gatelab_change_point_predict');
  const P = Object.fromEntries(params.map((p) => [p.name, g.input(`p.${p.name}`, spec.dtype, p.shape)]));
  g.output(changePointForward(g, spec, P, g.input('x', spec.dtype, [T, N, 1])), 'pred');
  return g;
}

function specOf(cfg: ModelConfig): StackSpec {
  return { hidden: cfg.model.layers.map((l) => l.hidden), gates: cfg.model.layers.map(cellOf) };
}

export const changePoint: Task = {
  kind: 'change-point',
  sweepMetric: 'mse',
  generated: true,

  check: forwardOnly,

  async setup({ cfg, session }): Promise<TaskRun> {
    const T = cfg.data.sequenceLength;
    const B = cfg.train.batchSize;
    const { rate, noise } = cfg.data;
    const spec = { ...specOf(cfg), dtype: DTYPE };
    const program = trainProgram(spec, B, T, cfg.train.optimizer, cfg.train.clipNorm);
    const valid = changePointBatch(new Rng(cfg.train.seed + 7_000_005), T, VALIDATION, rate, noise);
    const baselines = changePointBaselines(valid, T, VALIDATION);
    // gate views: the first validation sequence; steps where the mean jumps are marked ●
    const px = new Float32Array(T);
    const labels: string[] = [];
    for (let t = 0; t < T; t++) {
      px[t] = valid.x[t * VALIDATION];
      const jump = t > 0 && valid.y[t * VALIDATION] !== valid.y[(t - 1) * VALIDATION];
      labels.push(`${jump ? '●' : ''}${px[t].toFixed(1)}`);
    }
    return {
      program,
      stepsPerEpoch: cfg.train.evaluateEvery,
      started: { tokensPerStep: B * T, trainTokens: 0, validTokens: VALIDATION * T },
      describe: `sequences of ${T} steps, the mean jumping with probability ${rate} per step, noise ${noise}; ${VALIDATION} validation sequences (running mean: MSE ${baselines.runningMeanMse.toFixed(3)}, last value: ${baselines.lastValueMse.toFixed(3)})`,
      epoch: (rng) => ({
        steps: cfg.train.evaluateEvery,
        chunk(_i, k) {
          const x = new Float32Array(k * T * B);
          const y = new Float32Array(k * T * B);
          for (let j = 0; j < k; j++) {
            const b = changePointBatch(rng, T, B, rate, noise);
            x.set(b.x, j * T * B);
            y.set(b.y, j * T * B);
          }
          return { x: new ort.Tensor(DTYPE, x, [k, T, B, 1]), y: new ort.Tensor(DTYPE, y, [k, T, B]) };
        },
      }),
      async evaluate(params) {
        const s = await session('predict', () => predictProgram(spec, VALIDATION, T).encode());
        const pred = (await s.run({ ...params, x: new ort.Tensor(DTYPE, valid.x, [T, VALIDATION, 1]) })).pred.data as Float32Array;
        let se = 0;
        for (let i = 0; i < T * VALIDATION; i++) se += (pred[i] - valid.y[i]) ** 2;
        return { loss: se / (T * VALIDATION), metrics: { mse: se / (T * VALIDATION) } };
      },
      baselines,
      metadata: (step) => ({ 'gatelab.model': cfg.name, 'gatelab.task': 'change-point', 'gatelab.step': String(step) }),
      probe: fixedProbe(new SeqGateProbe({ type: 'dense', features: 1 }, spec.hidden, spec.gates, px, labels)),
    };
  },

  // `gatelab probe --input "0.1, 0.3, -0.2, …"` (or a CSV file, its first column): the gradient of the
  // prediction at the last step back through the values, and the gates (the forget gate at the jumps)
  async through({ cfg, init, input }) {
    let values: number[];
    if (fs.existsSync(input)) {
      const rows = await allRecords(input, { key: '--input' }, { trim: true, missing: '' });
      values = rows.slice(1).map((r) => {
        const v = Number(r.fields[0]);
        if (r.fields[0] === '' || !Number.isFinite(v)) throw new UserError(`${input}:${r.line}: "${r.fields[0]}" is not a number`, { key: '--input' }, 'one value per row under a header line');
        return v;
      });
    } else values = input.split(/[\s,]+/).filter(Boolean).map(Number);
    if (values.length < 2 || values.some((v) => !Number.isFinite(v)))
      throw new UserError('--input needs at least two numbers (comma-separated, or a CSV file with one column)', { key: '--input' }, 'e.g. --input "0.1, 0.2, 1.4, 1.5"');
    const ck = loadCheckpoint(init);
    const spec = { ...specOf(cfg), dtype: 'float64' as const };
    const params = changePointParams(spec);
    checkCheckpointFits(ck, params, init, cfg);
    const x = Float64Array.from(values);
    const r = await seqConnectivityOf({ I: 1, hidden: spec.hidden, gates: spec.gates, head: { kind: 'forecast', horizon: 1 }, params }, ck.params, x);
    const labels = values.map((v) => String(+v.toPrecision(3)));
    const probe = new SeqGateProbe({ type: 'dense', features: 1 }, spec.hidden, spec.gates, Float32Array.from(values), labels);
    const feeds = float32Feeds(params, ck);
    const gates = await probe.run(feeds, 0);
    await probe.release();
    return { tokens: labels, ...r, layers: gates.layers };
  },

  grad(cfg: ModelConfig, ck: Checkpoint, ckFile: string, batchFile: string) {
    const spec = { ...specOf(cfg), dtype: 'float64' as const };
    const params = changePointParams(spec);
    checkCheckpointFits(ck, params, ckFile, cfg);
    const b = readStepBatch(batchFile);
    const x = new Float64Array(b.T * b.B);
    const y = new Float64Array(b.T * b.B);
    b.inputs.forEach((row, n) => row.forEach((v, t) => (x[t * b.B + n] = v)));
    b.targets.forEach((row, n) => row.forEach((v, t) => (y[t * b.B + n] = v)));
    const g = new Graph('gatelab_change_point_grad');
    const pIn = params.map((p) => g.input(`p.${p.name}`, 'float64', p.shape));
    const P = Object.fromEntries(params.map((p, i) => [p.name, pIn[i]]));
    const loss = mse(g, changePointForward(g, spec, P, g.input('x', 'float64', [b.T, b.B, 1])), g.input('y', 'float64', [b.T, b.B]));
    const grads = gradients(g, loss, pIn);
    g.output(loss, 'loss');
    params.forEach((p, i) => g.output(grads[i], `d.${p.name}`));
    return { params, program: { graph: g, params, state: [] }, feeds: { x: new ort.Tensor('float64', x, [b.T, b.B, 1]), y: new ort.Tensor('float64', y, [b.T, b.B]) }, shape: `${b.B}x${b.T}` };
  },
};
