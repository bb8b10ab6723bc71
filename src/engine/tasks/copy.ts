// task: copy (Hochreiter & Schmidhuber 1997; the formulation of Arjovsky et al. 2016): S symbols
// from an alphabet of 8 (tokens 1–8), then D blanks (token 0) whose last is the delimiter (token 9),
// then S more blanks; the targets are blanks for S + D steps and then the S symbols. The loss is
// the cross-entropy over every step, so a memoryless model that outputs blanks and then guesses
// scores S·ln 8 / (D + 2S), the baseline beside the validation loss. The model is the language
// model's network (one-hot input, LSTM/GRU, Linear), trained on fresh sequences every step; the
// validation set is a fixed 1000 sequences; `gatelab grad` takes the language model's layout.

import { Rng } from '../util/rng';
import type { Task, TaskRun } from './task';
import { forwardOnly, sequenceChunk, sequenceEvalProgram, sequenceScores, tokenSequenceSetup } from './common';
import { languageModel } from './languageModel';

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

export const copy: Task = {
  kind: 'copy',
  sweepMetric: 'accuracy',
  generated: true,

  check: forwardOnly,

  async setup({ cfg, session }): Promise<TaskRun> {
    const S = cfg.data.copyLength;
    const D = cfg.data.sequenceLength;
    const T = D + 2 * S;
    const valid = copyBatch(new Rng(cfg.train.seed + 7_000_001), S, D, VALIDATION);
    const { B, lm, program, carried, vx, gates } = tokenSequenceSetup(cfg, ['_', '1', '2', '3', '4', '5', '6', '7', '8', '|'], T, valid, VALIDATION);
    return {
      program,
      carried,
      stepsPerEpoch: cfg.train.evaluateEvery,
      started: { vocabulary: COPY_VOCAB, tokensPerStep: B * T, trainTokens: 0, validTokens: VALIDATION * T },
      describe: `${S} symbols to copy after a delay of ${D}: sequences of ${T} steps, ${VALIDATION} validation sequences`,
      epoch: (rng) => ({ steps: cfg.train.evaluateEvery, chunk: (_i, k) => sequenceChunk(k, T, B, () => copyBatch(rng, S, D, B)) }),
      async evaluate(params) {
        const s = await session('eval', () => sequenceEvalProgram(lm, T, VALIDATION).encode());
        const logits = (await s.run({ ...params, x: vx })).logits.data as Float32Array;
        // accuracy over the S steps that repeat the symbols
        const r = sequenceScores(logits, valid.y, COPY_VOCAB, T, VALIDATION, (t) => t >= S + D);
        return { loss: r.nll / (T * VALIDATION), metrics: { accuracy: r.correct / (S * VALIDATION) } };
      },
      baselines: { baselineLoss: (S * Math.log(8)) / T },
      // the first validation sequence, its symbols as digits, blanks as _ and the delimiter as |
      probe: gates,
      metadata: (step) => ({ 'gatelab.model': cfg.name, 'gatelab.task': 'copy', 'gatelab.step': String(step) }),
    };
  },

  // the network is a language model's: the same batch layout, the vocabulary from fc.weight
  grad: (cfg, ck, ckFile, batchFile) => languageModel.grad(cfg, ck, ckFile, batchFile),
};
