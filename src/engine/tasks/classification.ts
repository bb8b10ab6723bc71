// task: classification — labelled sentences (TSV, or CSV with named columns), a vocabulary from the
// training examples only, a seeded random (or tail) validation split, minibatches of B sentences
// padded to T = data.sequenceLength (longer ones are cut), the validation accuracy and confusion
// matrix, and `gatelab predict` with a sentence.

import { cellDef } from '../nn/cells';
import * as ort from 'onnxruntime-node';
import type { ModelConfig } from '../config/types';
import { whereOf } from '../config/load';
import { UserError } from '../errors';
import { Example, loadLabelled, vocabOf } from '../data/labelled';
import { tokenize, Vocab } from '../data/text';
import { readClassBatch } from '../data/batchjson';
import { Checkpoint, loadCheckpoint } from '../train/checkpoint';
import { cellOf, checkCheckpointFits, textOptionsOf, float32Feeds } from '../train/lmsetup';
import { buildClassifyGradProgram, buildClassifyPredictProgram, buildClassifyTrainProgram, classifyDropShapes, classifyParams, ClassifySpec } from '../train/classify';
import { SeqGateProbe } from '../train/probe';
import type { DType } from '../onnx/proto';
import type { Task, TaskRun } from './task';
import { fixedProbe, noBidirectional, stackBatches } from './common';
import { seqConnectivityOf } from '../train/connectivity';
import { isNumericClassification, numericGrad, numericSetup, numericThrough, predictSequence } from './numericClassification';
import * as path from 'node:path';

const DTYPE = 'float32' as const;

export function classifySpecOf(cfg: ModelConfig, vocab: number, classes: number, dtype: DType = DTYPE): ClassifySpec {
  return {
    vocab,
    embedding: cfg.model.embedding,
    hidden: cfg.model.layers.map((l) => l.hidden),
    classes,
    pooling: cfg.data.pooling,
    dtype,
    gates: cfg.model.layers.map(cellOf),
    bidirectional: cfg.model.layers.map((l) => l.bidirectional),
    dropout: cfg.model.dropout,
  };
}

/**
 * Padded, time-major tensors of sentences given as token ids: x and mask [T, B], y [B], and `last`
 * [B, H] (each sentence's last real step, repeated over H for GatherElements). Rows longer than T are cut.
 */
export function encodeIds(rows: number[][], labels: number[], T: number, H: number) {
  const B = rows.length;
  const x = new BigInt64Array(T * B);
  const m = new Float32Array(T * B);
  const y = new BigInt64Array(B);
  const last = new BigInt64Array(B * H);
  rows.forEach((ids, b) => {
    const n = Math.min(T, ids.length);
    for (let t = 0; t < n; t++) {
      x[t * B + b] = BigInt(ids[t]);
      m[t * B + b] = 1;
    }
    y[b] = BigInt(labels[b]);
    last.fill(BigInt(n - 1), b * H, (b + 1) * H);
  });
  return { x, m, y, last };
}

/** Padded, time-major batch tensors for examples. */
export function encodeBatch(ex: Example[], vocab: Vocab, classes: string[], T: number, H: number) {
  return encodeIds(
    ex.map((e) => e.tokens.map((t) => vocab.id(t))),
    ex.map((e) => Math.max(0, classes.indexOf(e.label))),
    T,
    H,
  );
}

/** Feeds of a padded batch for the predict and grad programs ([T, N] and [N, 1, H]). */
function batchFeeds(e: ReturnType<typeof encodeIds>, T: number, N: number, H: number, dtype: DType): Record<string, ort.Tensor> {
  return {
    x: new ort.Tensor('int64', e.x, [T, N]),
    mask: new ort.Tensor(dtype, dtype === 'float64' ? Float64Array.from(e.m) : e.m, [T, N]),
    last: new ort.Tensor('int64', e.last, [N, 1, H]),
  };
}

/** The validation loss (mean NLL), accuracy and confusion matrix (rows: truth) of class probabilities [N, C]. */
export function classScores(probs: Float32Array, truth: number[], classes: string[]) {
  const C = classes.length;
  const confusion = classes.map(() => new Array<number>(C).fill(0));
  let correct = 0;
  let nll = 0;
  truth.forEach((t, b) => {
    const row = probs.subarray(b * C, (b + 1) * C);
    let arg = 0;
    for (let c = 1; c < C; c++) if (row[c] > row[arg]) arg = c;
    confusion[t][arg]++;
    if (arg === t) correct++;
    nll -= Math.log(Math.max(row[t], 1e-12));
  });
  return { loss: nll / truth.length, metrics: { accuracy: correct / truth.length }, summary: { confusion, classes } };
}

export const classification: Task = {
  kind: 'classification',
  sweepMetric: 'accuracy',

  async setup(ctx): Promise<TaskRun> {
    if (isNumericClassification(ctx.cfg)) return numericSetup(ctx);
    const { cfg, rng, session } = ctx;
    const opts = textOptionsOf(cfg);
    const { examples, classes } = await loadLabelled(cfg.data.sources, opts, { ...whereOf(cfg, 'data.source'), file: cfg.file, key: 'data.source' }, {
      text: cfg.data.textColumn,
      label: cfg.data.labelColumn,
      whereText: whereOf(cfg, 'data.textColumn'),
      whereLabel: whereOf(cfg, 'data.labelColumn'),
    });
    const order = examples.map((_, i) => i);
    if (cfg.data.split === 'random') rng.shuffle(order);
    const nValid = Math.round(examples.length * cfg.data.validation);
    const train = order.slice(0, examples.length - nValid).map((i) => examples[i]);
    const valid = order.slice(examples.length - nValid).map((i) => examples[i]);
    const vocab = vocabOf(train, cfg.data.minFrequency);
    const T = cfg.data.sequenceLength;
    const B = Math.min(cfg.train.batchSize, train.length);
    const spec = classifySpecOf(cfg, vocab.size, classes.length);
    const Hl = spec.hidden[spec.hidden.length - 1];
    const program = buildClassifyTrainProgram({ spec, B, T, optimizer: cfg.train.optimizer, clipNorm: cfg.train.clipNorm });
    const validBatch = valid.length ? encodeBatch(valid, vocab, classes, T, Hl) : undefined;
    // gate views: the first validation sentence (or the first training one)
    const probeEx = valid[0] ?? train[0];
    const probeToks = probeEx.tokens.slice(0, T);
    const probe = new SeqGateProbe({ type: 'tokens', vocab: vocab.size, embedding: spec.embedding }, spec.hidden, spec.gates, BigInt64Array.from(probeToks, (t) => BigInt(vocab.id(t))), probeToks, spec.bidirectional);
    return {
      program,
      dropout: spec.dropout ? { p: spec.dropout, shapes: classifyDropShapes(spec, B, T) } : undefined,
      stepsPerEpoch: Math.floor(train.length / B),
      started: { vocabulary: vocab.size, tokensPerStep: B * T, trainTokens: train.length, validTokens: valid.length },
      describe: `${train.length} training and ${valid.length} validation examples, ${classes.length} classes (${classes.join(', ')}), vocabulary ${vocab.size}`,
      epoch(r) {
        const idx = train.map((_, i) => i);
        r.shuffle(idx);
        return {
          steps: Math.floor(train.length / B),
          chunk(i, k) {
            const c = stackBatches(k, (j) => encodeBatch(idx.slice((i + j) * B, (i + j + 1) * B).map((n) => train[n]), vocab, classes, T, Hl));
            return {
              x: new ort.Tensor('int64', c.x, [k, T, B]),
              mask: new ort.Tensor(DTYPE, c.m, [k, T, B]),
              y: new ort.Tensor('int64', c.y, [k, B]),
              last: new ort.Tensor('int64', c.last, [k, B, 1, Hl]),
            };
          },
        };
      },
      async evaluate(params) {
        if (!validBatch) return undefined;
        const s = await session('predict', () => buildClassifyPredictProgram({ spec, N: valid.length, T }).graph.encode());
        const probs = (await s.run({ ...params, ...batchFeeds(validBatch, T, valid.length, Hl, DTYPE) })).probs.data as Float32Array;
        return classScores(probs, valid.map((e) => classes.indexOf(e.label)), classes);
      },
      metadata: (step) => ({
        'gatelab.model': cfg.name,
        'gatelab.task': 'classification',
        'gatelab.vocab': JSON.stringify(vocab.tokens),
        'gatelab.classes': JSON.stringify(classes),
        'gatelab.tokens': cfg.data.tokens,
        'gatelab.preprocess': cfg.data.preprocess,
        'gatelab.step': String(step),
      }),
      probe: fixedProbe(probe),
    };
  },

  grad(cfg, ck, ckFile, batchFile) {
    if (isNumericClassification(cfg)) return numericGrad(cfg, ck, ckFile, batchFile);
    const fc = ck.params.get('fc.weight');
    const first = cfg.model.embedding > 0 ? ck.params.get('embedding.weight') : ck.params.get(cellDef(cellOf(cfg.model.layers[0])).inputWeight(0, ''));
    if (!fc || fc.shape.length !== 2 || !first || first.shape.length !== 2)
      throw new UserError('the checkpoint lacks fc.weight or the first layer\'s input weights', { file: ckFile, key: 'fc.weight' }, 'use a checkpoint saved from this classification model');
    const V = cfg.model.embedding > 0 ? first.shape[0] : first.shape[1];
    const spec = classifySpecOf(cfg, V, fc.shape[0], 'float64');
    const params = classifyParams(spec);
    checkCheckpointFits(ck, params, ckFile, cfg);
    const b = readClassBatch(batchFile, V, fc.shape[0]);
    const Hl = spec.hidden[spec.hidden.length - 1];
    const e = encodeIds(b.inputs, b.targets, b.T, Hl);
    const feeds = { ...batchFeeds(e, b.T, b.B, Hl, 'float64'), y: new ort.Tensor('int64', e.y, [b.B]) };
    return { params, program: buildClassifyGradProgram({ spec: { ...spec, dropout: 0 }, B: b.B, T: b.T }), feeds, shape: `${b.B}x${b.T}` };
  },

  async predict({ cfg, init, input }) {
    if (isNumericClassification(cfg)) return { model: cfg.name, ...(await predictSequence(cfg, init, path.resolve(input))) };
    const p = (await predictClassification({ cfg, init, texts: [input] })).predictions[0];
    return { model: cfg.name, label: p.label, probabilities: p.probabilities };
  },

  // `gatelab probe`: the gradient of the predicted class's loss back to each word of the sentence
  async through({ cfg, init, input }) {
    if (isNumericClassification(cfg)) return numericThrough(cfg, init, path.resolve(input));
    noBidirectional(cfg, '`gatelab probe` of a bidirectional classifier');
    const { ck, vocab, labels, spec } = loadClassifier(cfg, init);
    const tokens = tokenize(input, textOptionsOf(cfg)).slice(0, cfg.data.sequenceLength);
    if (tokens.length === 0) throw new UserError('--input has no tokens after preprocessing', { key: '--input' }, 'give a sentence with words');
    const ids = tokens.map((t) => vocab.id(t));
    const E = spec.embedding;
    const I = E > 0 ? E : spec.vocab;
    const x = new Float64Array(ids.length * I);
    const emb = ck.params.get('embedding.weight');
    ids.forEach((id, t) => {
      if (emb) for (let i = 0; i < I; i++) x[t * I + i] = emb.data[id * I + i];
      else x[t * I + id] = 1;
    });
    const params = classifyParams(spec).filter((p) => p.name !== 'embedding.weight');
    const r = await seqConnectivityOf({ I, hidden: spec.hidden, gates: spec.gates, head: { kind: 'classify', classes: labels.length, pooling: spec.pooling }, params }, ck.params, x);
    const probe = new SeqGateProbe({ type: 'tokens', vocab: spec.vocab, embedding: E }, spec.hidden, spec.gates, BigInt64Array.from(ids, BigInt), tokens);
    const feeds = float32Feeds(classifyParams(spec), ck);
    const gates = await probe.run(feeds, 0);
    await probe.release();
    return { tokens: ids.map((i) => vocab.tokens[i]), ...r, layers: gates.layers };
  },
};

/** A classifier's checkpoint with its vocabulary and classes (from its metadata), checked against the model file. */
function loadClassifier(cfg: ModelConfig, init: string): { ck: Checkpoint; vocab: Vocab; labels: string[]; spec: ClassifySpec } {
  const ck: Checkpoint = loadCheckpoint(init);
  let vocabTokens: unknown;
  let classes: unknown;
  try {
    vocabTokens = JSON.parse(ck.metadata['gatelab.vocab'] ?? 'null');
    classes = JSON.parse(ck.metadata['gatelab.classes'] ?? 'null');
  } catch {
    vocabTokens = null;
  }
  if (!Array.isArray(vocabTokens) || !Array.isArray(classes))
    throw new UserError('the checkpoint has no vocabulary or classes in its metadata', { file: init, key: 'gatelab.classes' }, 'use a checkpoint saved by a classification run');
  const labels = classes as string[];
  const vocab = new Vocab(vocabTokens as string[]);
  const spec = classifySpecOf(cfg, vocab.size, labels.length);
  checkCheckpointFits(ck, classifyParams(spec), init, cfg);
  return { ck, vocab, labels, spec };
}

/** Class probabilities of one or more sentences with a trained checkpoint. */
export async function predictClassification(o: { cfg: ModelConfig; init: string; texts: string[] }): Promise<{ classes: string[]; predictions: { text: string; label: string; probabilities: Record<string, number> }[] }> {
  const { cfg } = o;
  const { ck, vocab, labels, spec } = loadClassifier(cfg, o.init);
  const opts = textOptionsOf(cfg);
  const examples = o.texts.map((t) => ({ tokens: tokenize(t, opts), label: labels[0] }));
  if (examples.some((e) => e.tokens.length === 0)) throw new UserError('an input has no tokens after preprocessing', { key: '--input' }, 'give a sentence with words');
  const T = cfg.data.sequenceLength;
  const N = examples.length;
  const Hl = spec.hidden[spec.hidden.length - 1];
  const session = await ort.InferenceSession.create(buildClassifyPredictProgram({ spec, N, T }).graph.encode(), { logSeverityLevel: 3 });
  const feeds = batchFeeds(encodeBatch(examples, vocab, labels, T, Hl), T, N, Hl, DTYPE);
  Object.assign(feeds, float32Feeds(classifyParams(spec), ck));
  const probs = (await session.run(feeds)).probs.data as Float32Array;
  await session.release();
  const C = labels.length;
  return {
    classes: labels,
    predictions: o.texts.map((text, n) => {
      const row = Array.from(probs.subarray(n * C, (n + 1) * C));
      const arg = row.indexOf(Math.max(...row));
      return { text, label: labels[arg], probabilities: Object.fromEntries(labels.map((c, k) => [c, row[k]])) };
    }),
  };
}
