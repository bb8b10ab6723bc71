// task: key-query, the output gate's "trapdoor" (Hochreiter & Schmidhuber 1997 §5; Gers et al. 2000):
// a sequence of noise symbols in which, at a random step, a KEY marker is followed by a value (one of
// data.values symbols) and, at a later random step, a QUERY marker asks for it. The target is a blank
// at every step except the QUERY step, where it is the stored value: the model must write the value
// when the key comes, keep it through the noise, and show it only when asked (an LSTM's output gate
// can keep a stored value hidden until then). Validation: the cross-entropy over every step, and the
// accuracy at the query steps against the chance baseline 1 / values. The network is the language
// model's (one-hot or embedded symbols, the layers, Linear), trained on fresh sequences every step;
// `gatelab grad` takes the language model's layout.

import type { ModelConfig } from '../config/types';
import { whereOf } from '../config/load';
import { UserError } from '../errors';
import { Rng } from '../util/rng';
import type { Task, TaskRun } from './task';
import { forwardOnly, sequenceChunk, sequenceEvalProgram, sequenceScores, tokenSequenceSetup } from './common';
import * as ort from 'onnxruntime-node';
import { lmParams, LmSpec } from '../nn/lm';
import { loadCheckpoint } from '../train/checkpoint';
import { cellOf, checkCheckpointFits, float32Feeds } from '../train/lmsetup';
import { GateProbe } from '../train/probe';
import { seqConnectivityOf } from '../train/connectivity';
import { languageModel } from './languageModel';

const NOISE = 4;
const VALIDATION = 1000;

/** The symbols: 0 blank, 1…values the values, then the noise symbols, KEY and QUERY. */
export function keyQueryVocab(values: number): string[] {
  return ['_', ...Array.from({ length: values }, (_, i) => String.fromCharCode(65 + i)), ...Array.from({ length: NOISE }, (_, i) => String.fromCharCode(97 + i)), 'K', 'Q'];
}

/** B sequences of T steps, time-major [T, B], and each sequence's query step. */
export function keyQueryBatch(rng: Rng, T: number, values: number, B: number): { x: Int32Array; y: Int32Array; query: Int32Array } {
  const KEY = values + NOISE + 1;
  const QUERY = KEY + 1;
  const x = new Int32Array(T * B);
  const y = new Int32Array(T * B);
  const query = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) x[t * B + b] = values + 1 + rng.int(0, NOISE - 1);
    const k = rng.int(0, Math.floor(T / 2) - 2);
    const q = rng.int(k + 2, T - 1);
    const v = rng.int(1, values);
    x[k * B + b] = KEY;
    x[(k + 1) * B + b] = v;
    x[q * B + b] = QUERY;
    y[q * B + b] = v;
    query[b] = q;
  }
  return { x, y, query };
}

export const keyQuery: Task = {
  kind: 'key-query',
  sweepMetric: 'accuracy',
  generated: true,

  check(cfg: ModelConfig) {
    forwardOnly(cfg);
    if (cfg.data.sequenceLength < 4)
      throw new UserError(`a key-query sequence of ${cfg.data.sequenceLength} steps has no room for a key, its value and a later query`, whereOf(cfg, 'data.sequenceLength'), 'use sequenceLength: 4 or more (e.g. 50)');
  },

  async setup({ cfg, session }): Promise<TaskRun> {
    const T = cfg.data.sequenceLength;
    const values = cfg.data.values;
    const vocab = keyQueryVocab(values);
    const V = vocab.length;
    const valid = keyQueryBatch(new Rng(cfg.train.seed + 7_000_003), T, values, VALIDATION);
    const { B, lm, program, carried, vx, gates } = tokenSequenceSetup(cfg, vocab, T, valid, VALIDATION);
    return {
      program,
      carried,
      stepsPerEpoch: cfg.train.evaluateEvery,
      started: { vocabulary: V, tokensPerStep: B * T, trainTokens: 0, validTokens: VALIDATION * T },
      describe: `a value (one of ${values}) after KEY, asked for by QUERY in ${T} steps of noise; ${VALIDATION} validation sequences`,
      epoch: (rng) => ({ steps: cfg.train.evaluateEvery, chunk: (_i, k) => sequenceChunk(k, T, B, () => keyQueryBatch(rng, T, values, B)) }),
      async evaluate(params) {
        const s = await session('eval', () => sequenceEvalProgram(lm, T, VALIDATION).encode());
        const logits = (await s.run({ ...params, x: vx })).logits.data as Float32Array;
        const r = sequenceScores(logits, valid.y, V, T, VALIDATION, (t, n) => t === valid.query[n]);
        return { loss: r.nll / (T * VALIDATION), metrics: { accuracy: r.correct / VALIDATION } };
      },
      baselines: { chanceAccuracy: 1 / values },
      // the first validation sequence: values as capitals, noise as small letters, K and Q the markers
      probe: gates,
      metadata: (step) => ({ 'gatelab.model': cfg.name, 'gatelab.task': 'key-query', 'gatelab.step': String(step), 'gatelab.vocab': JSON.stringify(vocab) }),
    };
  },

  // `gatelab probe --input "aaKBcdQ"`: the gradient of the answer at the (last) QUERY back through the sequence
  async through({ cfg, init, input }) {
    const vocab = keyQueryVocab(cfg.data.values);
    const ids = Array.from(input.replace(/\s+/g, ''), (ch, i) => {
      const id = vocab.indexOf(ch);
      if (id < 0) throw new UserError(`--input: "${ch}" at position ${i} is not a symbol of this task`, { key: '--input' }, `use ${vocab.slice(1).join(' ')} (values, noise, K for KEY, Q for QUERY)`);
      return id;
    });
    const q = ids.lastIndexOf(vocab.indexOf('Q'));
    if (q < 0) throw new UserError('--input has no QUERY (Q)', { key: '--input' }, 'e.g. --input "abKBcdabcdQ"');
    const ck = loadCheckpoint(init);
    const lm: LmSpec = { vocab: vocab.length, embedding: cfg.model.embedding, hidden: cfg.model.layers.map((l) => l.hidden), dtype: 'float64', gates: cfg.model.layers.map(cellOf) };
    checkCheckpointFits(ck, lmParams(lm), init, cfg);
    const I = lm.embedding > 0 ? lm.embedding : lm.vocab;
    const emb = ck.params.get('embedding.weight');
    const x = new Float64Array(ids.length * I);
    ids.forEach((id, t) => {
      if (emb) for (let i = 0; i < I; i++) x[t * I + i] = emb.data[id * I + i];
      else x[t * I + id] = 1;
    });
    const params = lmParams(lm).filter((p) => p.name !== 'embedding.weight');
    const r = await seqConnectivityOf({ I, hidden: lm.hidden, gates: lm.gates, head: { kind: 'classify', classes: lm.vocab, pooling: 'last', at: q }, params }, ck.params, x);
    const probe = new GateProbe({ ...lm, dtype: 'float32' }, vocab);
    const feeds = float32Feeds(lmParams(lm), ck);
    const gates = await probe.run(feeds, ids, 0);
    await probe.release();
    return { tokens: ids.map((i) => vocab[i]), ...r, layers: gates.layers };
  },

  // the network is a language model's: the same batch layout, the vocabulary from fc.weight
  grad: (cfg, ck, ckFile, batchFile) => languageModel.grad(cfg, ck, ckFile, batchFile),
};
