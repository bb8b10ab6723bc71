// Short jobs that need no trainer process: `gatelab grad` (loss and every gradient of one explicit
// batch, float64, no update, any task) and `gatelab sample` (text from a checkpoint).

import type { ModelConfig } from '../config/types';
import * as ort from 'onnxruntime-node';
import { loadModelFile, parseModelFile, pickModel } from '../config/load';
import { UserError } from '../errors';
import { loadTextCorpus, TokenIds, Vocab } from '../data/text';
import { cacheDirFor, DEFAULT_CACHE_BYTES } from '../data/tokencache';
import { LmSpec, lmParams } from '../nn/lm';
import { connectivityOf, GradientFlow, MAX_CONNECTIVITY_TOKENS } from './connectivity';
import { hasCellState } from '../nn/gru';
import { chooseDevice } from '../runtime/device';
import { Checkpoint, FloatData, loadCheckpoint, saveCheckpoint } from './checkpoint';
import { asDtype, float32Feeds, checkLanguageModel, checkCheckpointFits, checkpointVocabSize, lmSpecOf, textOptionsOf, vocabFromMetadata } from './lmsetup';
import { checkModel } from '../tasks/registry';
import { LmSampler, sampleText, encodePrefix } from './sample';
import { GateProbe } from './probe';
import { splitTail } from '../data/batches';
import type { GatesJob, GatesMessage, ThroughMessage } from '../../shared/protocol';
import { cellKind } from '../nn/lstm';
import { whereOf } from '../config/load';

export interface GradRequest {
  modelFile: string;
  modelName?: string;
  init: string;
  batch: string;
  out: string;
}

/**
 * Loss and gradients for one batch, for every task (DESIGN §3's batch layout, read by the task's
 * plug-in). Parameter shapes come from the checkpoint (the vocabulary, classes, features and horizon
 * from its tensors), the architecture from the model file; the data source is not read. The output
 * holds the checkpoint's tensor names (PyTorch gate order) in the checkpoint's dtype, plus `loss`.
 */
export async function computeGradients(req: GradRequest): Promise<{ loss: number; tensors: number }> {
  const cfg = loadModelFile(req.modelFile, req.modelName);
  const task = checkModel(cfg);
  const ck = loadCheckpoint(req.init);
  const plan = task.grad(cfg, ck, req.init, req.batch);
  const session = await ort.InferenceSession.create(plan.program.graph.encode(), { executionProviders: ['cpu'], logSeverityLevel: 3 });
  const feeds: Record<string, ort.Tensor> = { ...plan.feeds };
  for (const p of plan.params) feeds[`p.${p.name}`] = new ort.Tensor('float64', asDtype(ck.params.get(p.name)!.data, 'float64'), p.shape);
  let r: ort.InferenceSession.OnnxValueMapType;
  try {
    r = await session.run(feeds);
  } finally {
    await session.release();
  }
  const f32 = ck.params.get('fc.weight')!.data instanceof Float32Array;
  const conv = (d: Float64Array): FloatData => (f32 ? Float32Array.from(d) : d);
  const loss = (r.loss.data as Float64Array)[0];
  const out: Checkpoint = { params: new Map(), metadata: { 'gatelab.kind': 'gradients', 'gatelab.task': cfg.task, 'gatelab.batch': plan.shape } };
  for (const p of plan.params) out.params.set(p.name, { shape: p.shape, data: conv(r[`d.${p.name}`].data as Float64Array) });
  out.params.set('loss', { shape: [], data: conv(Float64Array.of(loss)) });
  saveCheckpoint(req.out, out);
  return { loss, tensors: plan.params.length };
}

export interface SampleRequest {
  modelFile: string;
  modelName?: string;
  init: string;
  prefix?: string;
  length: number;
  temperature: number;
  seed?: number;
  device?: 'auto' | 'cpu' | 'cuda';
}

/** Generated text from a checkpoint; the vocabulary comes from its metadata, else from the data. */
export async function sampleFromCheckpoint(req: SampleRequest): Promise<string> {
  return sampleWithConfig(loadModelFile(req.modelFile, req.modelName), req);
}

/**
 * As sampleFromCheckpoint, for a model given as its parsed document (e.g. the snapshot a run was
 * trained with). No prefix (or an empty one): the start of the training text.
 */
export async function sampleWithConfig(cfg: ModelConfig, req: Omit<SampleRequest, 'modelFile' | 'modelName'>): Promise<string> {
  checkModel(cfg);
  checkLanguageModel(cfg, 'sampling');
  const ck = loadCheckpoint(req.init);
  const opts = textOptionsOf(cfg);
  let vocab: Vocab | undefined = vocabFromMetadata(ck.metadata, req.init);
  let firstIds: TokenIds | undefined;
  if (!vocab || !req.prefix) {
    const corpus = await loadTextCorpus(cfg.data.source, opts, { ...whereOf(cfg, 'data.source'), file: cfg.file, key: 'data.source' }, vocab, { cache: { dir: cacheDirFor(cfg.file), maxBytes: DEFAULT_CACHE_BYTES } });
    vocab ??= corpus.vocab;
    firstIds = corpus.ids.subarray(0, 15);
  }
  const V = checkpointVocabSize(ck, req.init);
  if (V !== vocab.size)
    throw new UserError(
      `checkpoint ${req.init} has a vocabulary of ${V} tokens (rows of fc.weight) but the model's data gives ${vocab.size}`,
      whereOf(cfg, 'data.source'),
      'sample with the data the checkpoint was trained on',
    );
  const spec = lmSpecOf(cfg, V, 'float32');
  checkCheckpointFits(ck, lmParams(spec), req.init, cfg);
  const params = new Map([...ck.params].map(([k, v]) => [k, { shape: v.shape, data: asDtype(v.data, 'float32') }]));
  const sampler = await LmSampler.create(spec, params, chooseDevice(req.device ?? 'cpu'));
  let prefix = req.prefix;
  if (!prefix) {
    const toks = Array.from(firstIds!, (i) => vocab!.tokens[i]);
    prefix = opts.tokens === 'char' ? toks.join('').replace(/\s+\S*$/, '') || toks.join('') : toks.slice(0, 3).join(' ');
  }
  try {
    return await sampleText(sampler, vocab, opts, { prefix, length: req.length, temperature: req.temperature, seed: req.seed });
  } finally {
    await sampler.release();
  }
}

/**
 * A language-model checkpoint ready for a probe: its model, vocabulary and the probe's token ids
 * (the given text, or the start of the validation text, else of the training text).
 */
async function lmProbeSetup(cfg: ModelConfig, init: string, probe: string | undefined, what: string) {
  checkModel(cfg);
  checkLanguageModel(cfg, what);
  const ck = loadCheckpoint(init);
  const opts = textOptionsOf(cfg);
  let vocab: Vocab | undefined = vocabFromMetadata(ck.metadata, init);
  let ids: number[];
  if (!vocab || probe === undefined) {
    const corpus = await loadTextCorpus(cfg.data.source, opts, { ...whereOf(cfg, 'data.source'), file: cfg.file, key: 'data.source' }, vocab, { cache: { dir: cacheDirFor(cfg.file), maxBytes: DEFAULT_CACHE_BYTES } });
    vocab ??= corpus.vocab;
    const { train, valid } = splitTail(corpus.ids, cfg.data.validation);
    const src = valid.length >= 40 ? valid : train;
    ids = Array.from(src.subarray(0, Math.min(120, src.length)));
  } else ids = [];
  if (probe !== undefined) ids = encodePrefix(probe, vocab, opts).slice(0, 400);
  const V = checkpointVocabSize(ck, init);
  const spec = lmSpecOf(cfg, V, 'float32');
  checkCheckpointFits(ck, lmParams(spec), init, cfg);
  return { ck, vocab, ids, spec };
}

/** The gate views of a checkpoint for token ids (float32, as the dashboard shows them). */
async function gatesOf(spec: LmSpec, ck: Checkpoint, vocab: Vocab, ids: number[]): Promise<GatesMessage> {
  const probe = new GateProbe(spec, vocab.tokens);
  const feeds = float32Feeds(lmParams(spec), ck);
  try {
    return await probe.run(feeds, ids, Number(ck.metadata['gatelab.step'] ?? 0));
  } finally {
    await probe.release();
  }
}

/** Gate views of a checkpoint for a probe text (finished runs); default probe: the data's start. */
export async function gatesFromCheckpoint(job: GatesJob): Promise<GatesMessage> {
  const cfg = job.modelText !== undefined ? pickModel(parseModelFile(job.modelText, job.modelFile), job.modelName, job.modelFile) : loadModelFile(job.modelFile, job.modelName);
  const { ck, vocab, ids, spec } = await lmProbeSetup(cfg, job.init, job.probe, 'the gate view');
  return gatesOf(spec, ck, vocab, ids);
}

export interface ProbeResult {
  tokens: string[];
  /** connectivity[t][s] = ‖∂ℓ_t/∂x_s‖₂ (0 for s > t) */
  connectivity: number[][];
  gradientFlow: GradientFlow[];
  /** the gate values as the dashboard shows them */
  layers: GatesMessage['layers'];
}

/** The probe's ids checked for an unrolled program: 2 … MAX_CONNECTIVITY_TOKENS tokens. */
function throughIds(ids: number[], key: string): number[] {
  if (ids.length < 2) throw new UserError(`${key} gives ${ids.length} token${ids.length === 1 ? '' : 's'}; the gradients through time need at least two (a prediction and its target)`, { key }, 'give a longer text');
  if (ids.length > MAX_CONNECTIVITY_TOKENS)
    throw new UserError(`${key} gives ${ids.length} tokens; the probe unrolls at most ${MAX_CONNECTIVITY_TOKENS}`, { key }, `give at most ${MAX_CONNECTIVITY_TOKENS} tokens`);
  return ids;
}

/**
 * `gatelab probe`: a language model's gradients through time for a text (connectivity and gradient
 * flow, float64), with its gate views.
 */
export async function probeFromCheckpoint(o: { modelFile: string; modelName?: string; init: string; text: string }): Promise<ProbeResult> {
  const cfg = loadModelFile(o.modelFile, o.modelName);
  const { ck, vocab, ids, spec } = await lmProbeSetup(cfg, o.init, o.text, '`gatelab probe`');
  const { connectivity, gradientFlow } = await connectivityOf(spec, ck.params, throughIds(ids, '--text'));
  const gates = await gatesOf(spec, ck, vocab, ids);
  return { tokens: ids.map((i) => vocab.tokens[i]), connectivity, gradientFlow, layers: gates.layers };
}

/** The gradients through time of a checkpoint (a run's, its model as the run trained it) for a probe text: the dashboard's. */
export async function throughFromCheckpoint(job: GatesJob): Promise<ThroughMessage> {
  const cfg = job.modelText !== undefined ? pickModel(parseModelFile(job.modelText, job.modelFile), job.modelName, job.modelFile) : loadModelFile(job.modelFile, job.modelName);
  const cells = cfg.model.layers.map((l) => l.type);
  if (cfg.task !== 'language-model') {
    // the task's own probe of one input (a sentence, a series, a generated sequence)
    const task = checkModel(cfg);
    if (!task.through) throw new UserError(`the gradients through time of a ${cfg.task} model are not available`, { file: cfg.file, line: cfg.line, key: 'task' });
    if (!job.input?.trim()) throw new UserError('give the input to probe', { key: 'input' }, 'as `gatelab probe --input` takes it');
    const r = await task.through({ cfg, init: job.init, input: job.input });
    return { type: 'through', tokens: r.tokens, connectivity: r.connectivity, gradientFlow: r.gradientFlow, cells };
  }
  const { ck, vocab, ids, spec } = await lmProbeSetup(cfg, job.init, job.probe, 'the gradients through time');
  const { connectivity, gradientFlow } = await connectivityOf(spec, ck.params, throughIds(ids, 'the probe text'));
  return { type: 'through', tokens: ids.map((i) => vocab.tokens[i]), connectivity, gradientFlow, cells: spec.hidden.map((_, k) => cellKind(spec.gates?.[k])) };
}
