// task: copy (Hochreiter & Schmidhuber 1997; the formulation of Arjovsky et al. 2016): S symbols
// from an alphabet of 8 (tokens 1–8), then D blanks (token 0) whose last is the delimiter (token 9),
// then S more blanks; the targets are blanks for S + D steps and then the S symbols. The loss is
// the cross-entropy over every step, so a memoryless model that outputs blanks and then guesses
// scores S·ln 8 / (D + 2S), the baseline beside the validation loss. The model is the language
// model's network (one-hot input, LSTM/GRU, Linear), trained on fresh sequences every step; the
// validation set is a fixed 1000 sequences; `gatelab grad` takes the language model's layout.

import * as ort from 'onnxruntime-node';
import { Graph } from '../onnx/builder';
import { lmForward, lmParams, LmSpec } from '../nn/lm';
import { hasCellState } from '../nn/gru';
import { Rng } from '../util/rng';
import { cellOf } from '../train/lmsetup';
import { buildTrainProgram, carriedState } from '../train/program';
import { GateProbe } from '../train/probe';
import type { Task, TaskRun } from './task';
import { forwardOnly } from './common';
import { languageModel } from './languageModel';

const DTYPE = 'float32' as const;
export const COPY_VOCAB = 10; // 0 blank, 1–8 symbols, 9 delimiter
const VALIDATION = 1000;

/** B copy sequences, time-major [T, B] with T = D + 2S. */
export function copyBatch(rng: Rng, S: number, D: number, B: number): { x: Int32Array; y: Int32Array; T: number } {
  const T = D + 2 * S;
  const x = new Int32Array(T * B);
  const y = new Int32Array(T * B);
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      const sym = rng.int(1, 8);
      x[s * B + b] = sym;
      y[(S + D + s) * B + b] = sym;
    }
    x[(S + D - 1) * B + b] = 9;
  }
  return { x, y, T };
}

/** Validation: logits of N sequences from the zero state. */
function buildCopyEvalProgram(lm: LmSpec, T: number, N: number): Graph {
  const g = new Graph('gatelab_copy_eval');
  const pIn = lmParams(lm).map((p) => g.input(`p.${p.name}`, DTYPE, p.shape));
  const x = g.input('x', 'int64', [T, N]);
  const zeros = (H: number) => g.const(new Array(N * H).fill(0), DTYPE, [N, H]);
  const fwd = lmForward(g, lm, Object.fromEntries(lmParams(lm).map((p, i) => [p.name, pIn[i]])), x, lm.hidden.map((H, k) => (hasCellState(lm, k) ? { h0: zeros(H), c0: zeros(H) } : { h0: zeros(H) })));
  g.output(fwd.logits, 'logits');
  return g;
}

export const copy: Task = {
  kind: 'copy',
  generated: true,

  check: forwardOnly,

  async setup({ cfg, session }): Promise<TaskRun> {
    const S = cfg.data.copyLength;
    const D = cfg.data.sequenceLength;
    const T = D + 2 * S;
    const B = cfg.train.batchSize;
    const lm: LmSpec = { vocab: COPY_VOCAB, embedding: cfg.model.embedding, hidden: cfg.model.layers.map((l) => l.hidden), dtype: DTYPE, gates: cfg.model.layers.map(cellOf) };
    const program = buildTrainProgram({ lm, B, T, optimizer: cfg.train.optimizer, clipNorm: cfg.train.clipNorm });
    const valid = copyBatch(new Rng(cfg.train.seed + 7_000_001), S, D, VALIDATION);
    const probe = new GateProbe(lm, ['_', '1', '2', '3', '4', '5', '6', '7', '8', '|']);
    const probeIds = Array.from({ length: T }, (_, t) => valid.x[t * VALIDATION]);
    const vx = new ort.Tensor('int64', BigInt64Array.from(valid.x, (v) => BigInt(v)), [T, VALIDATION]);
    return {
      program,
      carried: carriedState(lm, B),
      stepsPerEpoch: cfg.train.evaluateEvery,
      started: { vocabulary: COPY_VOCAB, tokensPerStep: B * T, trainTokens: 0, validTokens: VALIDATION * T },
      describe: `${S} symbols to copy after a delay of ${D}: sequences of ${T} steps, ${VALIDATION} validation sequences`,
      epoch: (rng) => ({
        steps: cfg.train.evaluateEvery,
        chunk(_i, k) {
          const x = new BigInt64Array(k * T * B);
          const y = new BigInt64Array(k * T * B);
          for (let j = 0; j < k; j++) {
            const b = copyBatch(rng, S, D, B);
            for (let n = 0; n < T * B; n++) {
              x[j * T * B + n] = BigInt(b.x[n]);
              y[j * T * B + n] = BigInt(b.y[n]);
            }
          }
          // every sequence starts afresh
          return { x: new ort.Tensor('int64', x, [k, T, B]), y: new ort.Tensor('int64', y, [k, T, B]), keep: new ort.Tensor(DTYPE, new Float32Array(k), [k]) };
        },
      }),
      async evaluate(params) {
        const s = await session('eval', () => buildCopyEvalProgram(lm, T, VALIDATION).encode());
        const logits = (await s.run({ ...params, x: vx })).logits.data as Float32Array;
        let nll = 0;
        let correct = 0;
        for (let n = 0; n < T * VALIDATION; n++) {
          const row = logits.subarray(n * COPY_VOCAB, (n + 1) * COPY_VOCAB);
          let m = -Infinity;
          let arg = 0;
          for (let v = 0; v < COPY_VOCAB; v++) if (row[v] > m) [m, arg] = [row[v], v];
          let z = 0;
          for (let v = 0; v < COPY_VOCAB; v++) z += Math.exp(row[v] - m);
          nll += m + Math.log(z) - row[valid.y[n]];
          if (Math.floor(n / VALIDATION) >= S + D && arg === valid.y[n]) correct++;
        }
        return { loss: nll / (T * VALIDATION), metrics: { accuracy: correct / (S * VALIDATION) } };
      },
      baselines: { baselineLoss: (S * Math.log(8)) / T },
      probe: {
        // the first validation sequence, its symbols as digits, blanks as _ and the delimiter as |
        run: async (params, step) => ({ ...(await probe.run(params, probeIds, step)), editable: false }),
        release: () => probe.release(),
      },
      metadata: (step) => ({ 'gatelab.model': cfg.name, 'gatelab.task': 'copy', 'gatelab.step': String(step) }),
    };
  },

  // the network is a language model's: the same batch layout, the vocabulary from fc.weight
  grad: (cfg, ck, ckFile, batchFile) => languageModel.grad(cfg, ck, ckFile, batchFile),
};
