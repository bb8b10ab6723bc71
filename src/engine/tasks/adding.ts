// task: adding (Hochreiter & Schmidhuber 1997, as in Le et al. 2015): a sequence of T steps with two
// inputs per step, a value uniform in [0, 1] and a marker; exactly two steps are marked, one in each
// half; the target is the sum of the two marked values. A model that cannot remember answers the
// mean, 1.0, with a mean squared error of about 0.167 (the baseline). Training draws fresh sequences
// every step (seeded); the validation set is a fixed 1000 sequences; `gatelab grad` takes the
// forecast layout with two features and a horizon of 1.

import * as ort from 'onnxruntime-node';
import { Rng } from '../util/rng';
import { cellOf, checkCheckpointFits, float32Feeds } from '../train/lmsetup';
import { loadCheckpoint } from '../train/checkpoint';
import { UserError } from '../errors';
import { seqConnectivityOf } from '../train/connectivity';
import { buildForecastPredictProgram, buildForecastTrainProgram, forecastParams, ForecastSpec } from '../train/forecast';
import { SeqGateProbe } from '../train/probe';
import type { Task, TaskRun } from './task';
import { fixedProbe, forwardOnly } from './common';
import { seriesGrad } from './forecast';

const DTYPE = 'float32' as const;
const VALIDATION = 1000;

/** B sequences: x [T, B, 2] (value, marker), y [B, 1]. */
export function addingBatch(rng: Rng, T: number, B: number): { x: Float32Array; y: Float32Array } {
  const x = new Float32Array(T * B * 2);
  const y = new Float32Array(B);
  const half = Math.floor(T / 2);
  for (let b = 0; b < B; b++) {
    const m1 = rng.int(0, half - 1);
    const m2 = rng.int(half, T - 1);
    for (let t = 0; t < T; t++) {
      const v = rng.next();
      x[(t * B + b) * 2] = v;
      if (t === m1 || t === m2) {
        x[(t * B + b) * 2 + 1] = 1;
        y[b] += v;
      }
    }
  }
  return { x, y };
}

export const adding: Task = {
  kind: 'adding',
  sweepMetric: 'mse',
  generated: true,

  check: forwardOnly,

  async setup({ cfg, session }): Promise<TaskRun> {
    const T = cfg.data.sequenceLength;
    const B = cfg.train.batchSize;
    const spec: ForecastSpec = { hidden: cfg.model.layers.map((l) => l.hidden), horizon: 1, inputs: 2, dtype: DTYPE, gates: cfg.model.layers.map(cellOf) };
    const program = buildForecastTrainProgram({ spec, B, T, optimizer: cfg.train.optimizer, clipNorm: cfg.train.clipNorm });
    const valid = addingBatch(new Rng(cfg.train.seed + 1_000_003), T, VALIDATION);
    let baseline = 0;
    for (let i = 0; i < VALIDATION; i++) baseline += (1 - valid.y[i]) ** 2;
    baseline /= VALIDATION;
    // gate views: the first validation sequence; marked steps are labelled ●
    const px = new Float32Array(T * 2);
    const labels: string[] = [];
    for (let t = 0; t < T; t++) {
      px[t * 2] = valid.x[t * VALIDATION * 2];
      px[t * 2 + 1] = valid.x[t * VALIDATION * 2 + 1];
      labels.push(px[t * 2 + 1] === 1 ? `●${px[t * 2].toFixed(2)}` : px[t * 2].toFixed(2));
    }
    return {
      program,
      stepsPerEpoch: cfg.train.evaluateEvery,
      started: { tokensPerStep: B * T, trainTokens: 0, validTokens: VALIDATION * T },
      describe: `sequences of ${T} steps, ${VALIDATION} validation sequences (always answering 1.0: MSE ${baseline.toFixed(3)})`,
      epoch: (rng) => ({
        steps: cfg.train.evaluateEvery,
        chunk(_i, k) {
          const x = new Float32Array(k * T * B * 2);
          const y = new Float32Array(k * B);
          for (let j = 0; j < k; j++) {
            const b = addingBatch(rng, T, B);
            x.set(b.x, j * T * B * 2);
            y.set(b.y, j * B);
          }
          return { x: new ort.Tensor(DTYPE, x, [k, T, B, 2]), y: new ort.Tensor(DTYPE, y, [k, B, 1]) };
        },
      }),
      async evaluate(params) {
        const s = await session('predict', () => buildForecastPredictProgram({ spec, N: VALIDATION, T }).graph.encode());
        const pred = (await s.run({ ...params, x: new ort.Tensor(DTYPE, valid.x, [T, VALIDATION, 2]) })).pred.data as Float32Array;
        let se = 0;
        for (let i = 0; i < VALIDATION; i++) se += (pred[i] - valid.y[i]) ** 2;
        return { loss: se / VALIDATION, metrics: { mse: se / VALIDATION } };
      },
      baselines: { baselineMse: baseline },
      metadata: (step) => ({ 'gatelab.model': cfg.name, 'gatelab.task': 'adding', 'gatelab.step': String(step) }),
      probe: fixedProbe(new SeqGateProbe({ type: 'dense', features: 2 }, spec.hidden, spec.gates, px, labels)),
    };
  },

  grad: seriesGrad,

  // `gatelab probe --input "0.31 0.52* 0.11 0.77* 0.40"` (values, * marking the two to add): the
  // gradient of the predicted sum back through the sequence, with the gates
  async through({ cfg, init, input }) {
    const items = input.split(/[\s,]+/).filter(Boolean);
    const x = new Float64Array(items.length * 2);
    items.forEach((it, t) => {
      const v = Number(it.replace(/\*$/, ''));
      if (!Number.isFinite(v)) throw new UserError(`--input: "${it}" (item ${t + 1}) is not a number`, { key: '--input' }, 'values separated by spaces or commas, the two to add marked with *, e.g. "0.3 0.5* 0.1 0.8*"');
      x[t * 2] = v;
      x[t * 2 + 1] = it.endsWith('*') ? 1 : 0;
    });
    if (items.length < 2) throw new UserError('--input needs at least two values', { key: '--input' }, 'e.g. "0.3 0.5* 0.1 0.8*"');
    const ck = loadCheckpoint(init);
    const spec: ForecastSpec = { hidden: cfg.model.layers.map((l) => l.hidden), horizon: 1, inputs: 2, dtype: 'float64', gates: cfg.model.layers.map(cellOf) };
    checkCheckpointFits(ck, forecastParams(spec), init, cfg);
    const r = await seqConnectivityOf({ I: 2, hidden: spec.hidden, gates: spec.gates, head: { kind: 'forecast', horizon: 1 }, params: forecastParams(spec) }, ck.params, x);
    const probe = new SeqGateProbe({ type: 'dense', features: 2 }, spec.hidden, spec.gates, Float32Array.from(x), items);
    const feeds = float32Feeds(forecastParams(spec), ck);
    const gates = await probe.run(feeds, 0);
    await probe.release();
    return { tokens: items, ...r, layers: gates.layers };
  },
};
