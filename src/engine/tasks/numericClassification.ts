// task: classification of numeric sequences (data.sequences or data.idColumn; ../data/sequences.ts):
// each sequence is steps × features, z-scored with the training sequences' steps (data.scale:
// standard) or fed as it is; padded to T = data.sequenceLength (default: the longest sequence;
// longer ones are cut) and masked as sentences are, so the `last` and `mean` pooling read the real
// steps only; the validation split seeded random, the tail, or the groups of a group table. The same
// network, loss, accuracy and confusion matrix as the sentence classifier (./classification.ts).

import * as ort from 'onnxruntime-node';
import type { ModelConfig } from '../config/types';
import { whereOf } from '../config/load';
import { UserError } from '../errors';
import { groupTable, loadNumericSequences } from '../data/sequences';
import { loadFrame } from '../data/frame';
import { Checkpoint, loadCheckpoint } from '../train/checkpoint';
import { checkCheckpointFits, float32Feeds } from '../train/lmsetup';
import { buildClassifyPredictProgram, buildClassifyTrainProgram, classifyDropShapes, classifyParams, ClassifySpec } from '../train/classify';
import { SeqGateProbe } from '../train/probe';
import type { DType } from '../onnx/proto';
import type { GradPlan, TaskContext, TaskRun, ThroughResult } from './task';
import { fixedProbe, noBidirectional, stackBatches } from './common';
import { cellDef } from '../nn/cells';
import { cellOf } from '../train/lmsetup';
import { readNumericClassBatch } from '../data/batchjson';
import { buildClassifyGradProgram } from '../train/classify';
import { seqConnectivityOf } from '../train/connectivity';
import { classifySpecOf, classScores } from './classification';

const DTYPE = 'float32' as const;

/** Whether a classification model reads numeric sequences (rather than sentences). */
export function isNumericClassification(cfg: ModelConfig): boolean {
  return cfg.task === 'classification' && (cfg.data.sequences !== undefined || cfg.data.idColumn !== undefined);
}

/** How the features are scaled: saved in checkpoints (`gatelab.features`), applied to new sequences. */
export interface SequenceLayout {
  columns: string[];
  mean: number[];
  std: number[];
  /** the padded length T */
  T: number;
}

/** Padded, time-major tensors of numeric sequences: x [T, B, F], mask [T, B], last [B, H], y [B]. */
export function encodeSequences(seqs: Float64Array[], lengths: number[], labels: number[], l: SequenceLayout, H: number, dtype: DType = DTYPE) {
  const B = seqs.length;
  const F = l.columns.length;
  const T = l.T;
  const x = dtype === 'float64' ? new Float64Array(T * B * F) : new Float32Array(T * B * F);
  const m = dtype === 'float64' ? new Float64Array(T * B) : new Float32Array(T * B);
  const y = new BigInt64Array(B);
  const last = new BigInt64Array(B * H);
  seqs.forEach((s, b) => {
    const n = Math.min(T, lengths[b]);
    for (let t = 0; t < n; t++) {
      m[t * B + b] = 1;
      for (let f = 0; f < F; f++) x[(t * B + b) * F + f] = (s[t * F + f] - l.mean[f]) / l.std[f];
    }
    y[b] = BigInt(labels[b]);
    last.fill(BigInt(Math.max(0, n - 1)), b * H, (b + 1) * H);
  });
  return { x, m, y, last, T, B, F };
}

function feedsOf(e: ReturnType<typeof encodeSequences>, H: number, dtype: DType): Record<string, ort.Tensor> {
  return {
    x: new ort.Tensor(dtype, e.x, [e.T, e.B, e.F]),
    mask: new ort.Tensor(dtype, e.m, [e.T, e.B]),
    last: new ort.Tensor('int64', e.last, [e.B, 1, H]),
  };
}

export function numericSpecOf(cfg: ModelConfig, F: number, classes: number, dtype: DType = DTYPE): ClassifySpec {
  return { ...classifySpecOf(cfg, 0, classes, dtype), embedding: 0, features: F };
}

export async function numericSetup({ cfg, rng, session }: TaskContext): Promise<TaskRun> {
  const data = await loadNumericSequences(cfg);
  const n = data.ids.length;
  const classes = [...new Set(data.labels)].sort((a, b) => (Number.isFinite(+a) && Number.isFinite(+b) ? +a - +b : a < b ? -1 : a > b ? 1 : 0));
  const labelOf = data.labels.map((l) => classes.indexOf(l));
  // the validation split: a group table, a seeded random sample, or the tail
  let trainIdx: number[];
  let validIdx: number[];
  let splitText: string;
  if (typeof cfg.data.split === 'object') {
    const groups = await groupTable(cfg);
    const valid = new Set(cfg.data.split.valid.map(String));
    const groupOf = data.ids.map((id, i) => {
      const g = groups.get(id);
      if (g === undefined) throw new UserError(`sequence ${id} (${data.origin[i]}) has no group in ${(cfg.data.split as { file: string }).file}`, whereOf(cfg, 'data.split'), 'add its row to the group table');
      return g;
    });
    const known = new Set(groupOf);
    cfg.data.split.valid.forEach((v, i) => {
      if (!known.has(String(v))) throw new UserError(`no sequence is in group ${v}`, whereOf(cfg, `data.split.valid.${i}`), `the groups: ${[...known].join(', ')}`);
    });
    trainIdx = data.ids.map((_, i) => i).filter((i) => !valid.has(groupOf[i]));
    validIdx = data.ids.map((_, i) => i).filter((i) => valid.has(groupOf[i]));
    splitText = `validation: group${valid.size > 1 ? 's' : ''} ${[...valid].join(', ')}`;
  } else {
    const order = data.ids.map((_, i) => i);
    if (cfg.data.split === 'random') rng.shuffle(order);
    const nValid = Math.round(n * cfg.data.validation);
    trainIdx = order.slice(0, n - nValid);
    validIdx = order.slice(n - nValid);
    splitText = `validation: ${cfg.data.split} ${cfg.data.validation}`;
  }
  if (trainIdx.length === 0) throw new UserError('no sequence is left for training', whereOf(cfg, 'data.split'), 'validate on fewer groups, or a smaller fraction');
  // z-scores of every feature over the training sequences' steps
  const F = data.columns.length;
  const mean = new Array<number>(F).fill(0);
  const std = new Array<number>(F).fill(1);
  if (cfg.data.scale === 'standard') {
    let count = 0;
    const sq = new Array<number>(F).fill(0);
    for (const i of trainIdx) {
      const s = data.steps[i];
      for (let t = 0; t < data.lengths[i]; t++) for (let f = 0; f < F; f++) mean[f] += s[t * F + f];
      count += data.lengths[i];
    }
    for (let f = 0; f < F; f++) mean[f] /= count;
    for (const i of trainIdx) {
      const s = data.steps[i];
      for (let t = 0; t < data.lengths[i]; t++) for (let f = 0; f < F; f++) sq[f] += (s[t * F + f] - mean[f]) ** 2;
    }
    for (let f = 0; f < F; f++) std[f] = Math.sqrt(sq[f] / count) || 1;
  }
  const longest = Math.max(...data.lengths);
  const T = cfg.data.sequenceLengthGiven ? cfg.data.sequenceLength : longest;
  const layout: SequenceLayout = { columns: data.columns, mean, std, T };
  const spec = numericSpecOf(cfg, F, classes.length);
  const Hl = spec.hidden[spec.hidden.length - 1];
  const B = Math.min(cfg.train.batchSize, trainIdx.length);
  const program = buildClassifyTrainProgram({ spec, B, T, optimizer: cfg.train.optimizer, clipNorm: cfg.train.clipNorm });
  const enc = (idx: number[]) => encodeSequences(idx.map((i) => data.steps[i]), idx.map((i) => data.lengths[i]), idx.map((i) => labelOf[i]), layout, Hl);
  const validBatch = validIdx.length ? enc(validIdx) : undefined;
  // gate views: the chosen sequence (data.probe) or the first validation one, its channels drawn above the heatmaps
  let p = validIdx[0] ?? trainIdx[0];
  if (cfg.data.probe !== undefined) {
    p = data.ids.indexOf(cfg.data.probe);
    if (p < 0) {
      const near = data.ids.filter((id) => id.startsWith(cfg.data.probe!.slice(0, 1))).slice(0, 5);
      throw new UserError(`no sequence has the id ${cfg.data.probe}`, whereOf(cfg, 'data.probe'), `ids such as ${(near.length ? near : data.ids.slice(0, 5)).join(', ')}`);
    }
  }
  const pn = Math.min(T, data.lengths[p]);
  const probeX = enc([p]).x.slice(0, pn * F) as Float32Array;
  const signals = { names: data.columns, values: Array.from(data.steps[p].subarray(0, pn * F), (v) => +v.toPrecision(5)) };
  const probe = new SeqGateProbe({ type: 'dense', features: F }, spec.hidden, spec.gates, probeX, Array.from({ length: pn }, (_, t) => String(t)), spec.bidirectional, signals);
  const perEpoch = Math.floor(trainIdx.length / B);
  return {
    program,
    dropout: spec.dropout ? { p: spec.dropout, shapes: classifyDropShapes(spec, B, T) } : undefined,
    stepsPerEpoch: perEpoch,
    started: { tokensPerStep: B * T, trainTokens: trainIdx.length, validTokens: validIdx.length },
    describe: `gate views: sequence ${data.ids[p]}${validIdx.includes(p) ? '' : ' (a training sequence)'}; ${trainIdx.length} training and ${validIdx.length} validation sequences of ${F} features (${data.columns.join(', ')}), ${Math.min(...data.lengths)}–${longest} steps${T < longest ? `, cut at ${T}` : ''}; ${classes.length} classes (${classes.join(', ')}); ${splitText}`,
    epoch(r) {
      const order = [...trainIdx];
      r.shuffle(order);
      return {
        steps: perEpoch,
        chunk(i, k) {
          const c = stackBatches(k, (j) => {
            const e = enc(order.slice((i + j) * B, (i + j + 1) * B));
            return { x: e.x, m: e.m, y: e.y, last: e.last };
          });
          return {
            x: new ort.Tensor(DTYPE, c.x, [k, T, B, F]),
            mask: new ort.Tensor(DTYPE, c.m, [k, T, B]),
            y: new ort.Tensor('int64', c.y, [k, B]),
            last: new ort.Tensor('int64', c.last, [k, B, 1, Hl]),
          };
        },
      };
    },
    async evaluate(params) {
      if (!validBatch) return undefined;
      const s = await session('predict', () => buildClassifyPredictProgram({ spec, N: validIdx.length, T }).graph.encode());
      const probs = (await s.run({ ...params, ...feedsOf(validBatch, Hl, DTYPE) })).probs.data as Float32Array;
      return classScores(probs, validIdx.map((i) => labelOf[i]), classes);
    },
    metadata: (step) => ({
      'gatelab.model': cfg.name,
      'gatelab.task': 'classification',
      'gatelab.input': 'numeric',
      'gatelab.classes': JSON.stringify(classes),
      'gatelab.features': JSON.stringify(layout),
      'gatelab.step': String(step),
    }),
    probe: fixedProbe(probe),
  };
}

/** A numeric classifier's checkpoint with its classes and scaling, checked against the model file. */
export function loadNumericClassifier(cfg: ModelConfig, init: string): { ck: Checkpoint; classes: string[]; layout: SequenceLayout; spec: ClassifySpec } {
  const ck = loadCheckpoint(init);
  let classes: unknown;
  let layout: unknown;
  try {
    classes = JSON.parse(ck.metadata['gatelab.classes'] ?? 'null');
    layout = JSON.parse(ck.metadata['gatelab.features'] ?? 'null');
  } catch {
    classes = null;
  }
  if (!Array.isArray(classes) || !layout || !Array.isArray((layout as SequenceLayout).columns))
    throw new UserError('the checkpoint has no classes or feature scaling in its metadata', { file: init, key: 'gatelab.features' }, 'use a checkpoint saved by a run of this numeric classifier');
  const l = layout as SequenceLayout;
  const spec = numericSpecOf(cfg, l.columns.length, classes.length);
  checkCheckpointFits(ck, classifyParams(spec), init, cfg);
  return { ck, classes: classes as string[], layout: l, spec };
}

/** One sequence from a CSV with the model's columns (`--input`), as steps × features. */
export async function readSequence(cfg: ModelConfig, file: string, l: SequenceLayout): Promise<{ x: Float64Array; n: number }> {
  const f = await loadFrame(file, { key: '--input' }, { columns: l.columns, missing: cfg.data.missing, whereColumn: () => ({ key: '--input' }), whereMissing: { key: '--input' } });
  if (f.rows === 0) throw new UserError(`--input ${file} has no rows`, { key: '--input' }, 'give a CSV with a header line and one row per step');
  const F = l.columns.length;
  const x = new Float64Array(f.rows * F);
  l.columns.forEach((c, j) => f.numeric.get(c)!.forEach((v, t) => (x[t * F + j] = v)));
  return { x, n: f.rows };
}

/** Class probabilities of one sequence (a CSV with the model's columns) with a trained checkpoint. */
export async function predictSequence(cfg: ModelConfig, init: string, file: string): Promise<{ label: string; probabilities: Record<string, number> }> {
  const { ck, classes, layout, spec } = loadNumericClassifier(cfg, init);
  const seq = await readSequence(cfg, file, layout);
  const Hl = spec.hidden[spec.hidden.length - 1];
  const e = encodeSequences([seq.x], [seq.n], [0], layout, Hl);
  const s = await ort.InferenceSession.create(buildClassifyPredictProgram({ spec, N: 1, T: layout.T }).graph.encode(), { logSeverityLevel: 3 });
  const probs = Array.from((await s.run({ ...float32Feeds(classifyParams(spec), ck), ...feedsOf(e, Hl, DTYPE) })).probs.data as Float32Array);
  await s.release();
  const arg = probs.indexOf(Math.max(...probs));
  return { label: classes[arg], probabilities: Object.fromEntries(classes.map((c, k) => [c, probs[k]])) };
}

/**
 * `gatelab grad` of a numeric classifier: inputs [batch][time][features] as the network sees them
 * (no scaling; sequences of different lengths are padded and masked), targets [batch] class indices;
 * the features and classes from the checkpoint's shapes.
 */
export function numericGrad(cfg: ModelConfig, ck: Checkpoint, ckFile: string, batchFile: string): GradPlan {
  const fc = ck.params.get('fc.weight');
  const first = ck.params.get(cellDef(cellOf(cfg.model.layers[0])).inputWeight(0, ''));
  if (!fc || fc.shape.length !== 2 || !first || first.shape.length !== 2)
    throw new UserError("the checkpoint lacks fc.weight or the first layer's input weights", { file: ckFile, key: 'fc.weight' }, 'use a checkpoint saved from this classification model');
  const F = first.shape[1];
  const spec = numericSpecOf(cfg, F, fc.shape[0], 'float64');
  const params = classifyParams(spec);
  checkCheckpointFits(ck, params, ckFile, cfg);
  const b = readNumericClassBatch(batchFile, F, fc.shape[0]);
  const Hl = spec.hidden[spec.hidden.length - 1];
  const identity: SequenceLayout = { columns: Array.from({ length: F }, (_, f) => String(f)), mean: new Array(F).fill(0), std: new Array(F).fill(1), T: b.T };
  const e = encodeSequences(b.inputs.map((s) => Float64Array.from(s.flat())), b.inputs.map((s) => s.length), b.targets, identity, Hl, 'float64');
  const feeds = { ...feedsOf(e, Hl, 'float64'), y: new ort.Tensor('int64', e.y, [b.B]) };
  return { params, program: buildClassifyGradProgram({ spec: { ...spec, dropout: 0 }, B: b.B, T: b.T }), feeds, shape: `${b.B}x${b.T}x${F}` };
}

/** `gatelab probe --input CSV`: the gradient of the predicted class's loss back to each step of one sequence, and its gates. */
export async function numericThrough(cfg: ModelConfig, init: string, input: string): Promise<ThroughResult> {
  noBidirectional(cfg, '`gatelab probe` of a bidirectional classifier');
  const { ck, classes, layout, spec } = loadNumericClassifier(cfg, init);
  const seq = await readSequence(cfg, input, layout);
  const n = Math.min(seq.n, layout.T);
  const F = layout.columns.length;
  const x = new Float64Array(n * F);
  for (let t = 0; t < n; t++) for (let f = 0; f < F; f++) x[t * F + f] = (seq.x[t * F + f] - layout.mean[f]) / layout.std[f];
  const params = classifyParams(spec);
  const r = await seqConnectivityOf({ I: F, hidden: spec.hidden, gates: spec.gates, head: { kind: 'classify', classes: classes.length, pooling: spec.pooling }, params }, ck.params, x);
  const labels = Array.from({ length: n }, (_, t) => String(t));
  const probe = new SeqGateProbe({ type: 'dense', features: F }, spec.hidden, spec.gates, Float32Array.from(x), labels, undefined, { names: layout.columns, values: Array.from(seq.x.subarray(0, n * F), (v) => +v.toPrecision(5)) });
  const gates = await probe.run(float32Feeds(params, ck), 0);
  await probe.release();
  return { tokens: labels, ...r, layers: gates.layers };
}
