// What a language-model run needs besides the graph: the architecture resolved from the model file
// (rejecting variants the engine does not have yet, at their key), the checkpoint metadata that
// carries the vocabulary, and the check that a checkpoint fits the model file.

import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelConfig } from '../config/types';
import { whereOf } from '../config/load';
import { UserError, UserErrors } from '../errors';
import { LmSpec, ParamInfo } from '../nn/lm';
import type { GateActivation } from '../nn/lstm';
import { checkCell, type CellSpec } from '../nn/cellspec';
import { DType } from '../onnx/proto';
import { Vocab, TextOptions } from '../data/text';
import { Checkpoint, FloatData } from './checkpoint';

/** Rejects layer options this engine cannot train yet, naming the key. */
export function checkSupported(cfg: ModelConfig): void {
  const no = (key: string, what: string, hint?: string): never => {
    throw new UserError(`${what} is not supported yet`, whereOf(cfg, key), hint);
  };
  cfg.model.layers.forEach((l, k) => {
    const at = `model.layers.${k}`;
    if (l.type !== 'lstm' && l.type !== 'gru' && l.type !== 'rnn' && l.type !== 'cell') no(`${at}.type`, `layer type "${l.type}"`, 'use type: lstm, gru, rnn or cell');
    if (l.type !== 'lstm') checkGruLayer(cfg, l, at);
    if (l.activation === 'relu' && l.type !== 'rnn')
      throw new UserError(
        `activation applies to rnn layers only: ${l.type === 'lstm' ? "an LSTM layer's nonlinearities are fixed (sigmoid gates, tanh)" : l.type === 'gru' ? "a GRU layer's nonlinearities are fixed (sigmoid gates, tanh)" : "a cell layer's functions are written in its equations"}`,
        whereOf(cfg, `${at}.activation`),
        l.type === 'cell' ? 'remove activation and write relu(...) in the equation' : 'remove activation from this layer, or use type: rnn',
      );
  });
  // what a task cannot train (bidirectional layers, dropout) its plug-in checks (tasks/registry.ts: checkModel)
}

/**
 * A GRU layer takes the gate nonlinearity (for r and z) but none of the LSTM's variants; an RNN layer
 * has no gates at all: each one set on such a layer is an error at its key.
 */
function checkGruLayer(cfg: ModelConfig, l: ModelConfig['model']['layers'][number], at: string): void {
  const rnn = l.type === 'rnn';
  const lstmOnly = (key: string, what: string) => {
    if (l.type === 'cell')
      throw new UserError(`${key} applies to LSTM layers only: a cell layer is what its equations say`, whereOf(cfg, `${at}.${key}`), `remove ${key} and write the variant in the equations${key === 'forgetBias' ? ' (a forget bias: init: { f.b: 1 })' : key === 'peepholes' ? ' (a peephole: + p * c)' : ''}`);
    throw new UserError(
      `${key} applies to LSTM layers only: ${what}`,
      whereOf(cfg, `${at}.${key}`),
      `remove ${key} from this layer, or use type: lstm`,
    );
  };
  if (l.type === 'cell' && l.gateActivation !== 'sigmoid')
    throw new UserError('gateActivation applies to built-in gated layers: a cell layer writes its functions in its equations', whereOf(cfg, `${at}.gateActivation`), 'remove gateActivation and write hardsigmoid(...) in the equations');
  if (l.forgetBias !== 0) lstmOnly('forgetBias', rnn ? 'an RNN layer has no gates' : 'a GRU layer has no forget gate (its update gate z keeps the state)');
  if (l.peepholes) lstmOnly('peepholes', rnn ? 'an RNN layer has no gates' : 'a GRU layer has no cell state for the gates to look at');
  if (l.coupledGates) lstmOnly('coupledGates', rnn ? 'an RNN layer has no gates' : 'a GRU layer has no input and forget gates to couple (its update gate z already does both)');
  if (l.cellClip > 0) lstmOnly('cellClip', rnn ? "PyTorch's nn.RNN and the ONNX RNN operator have no clipping of this kind" : 'the ONNX GRU operator and PyTorch\'s nn.GRU have no cell clipping');
  if (rnn && l.gateActivation !== 'sigmoid')
    throw new UserError('gateActivation applies to gated layers: an RNN layer has no gates', whereOf(cfg, `${at}.gateActivation`), 'remove gateActivation from this layer, or use type: lstm or gru; an RNN layer takes activation: tanh | relu');
}

/** The cell options of a layer: cell type, gate nonlinearity and the LSTM variants. */
export function cellOf(l: ModelConfig['model']['layers'][number]): GateActivation {
  if (l.type === 'cell') return { kind: 'sigmoid', cell: 'cell', equations: cellSpecOf(l) };
  const act: GateActivation = l.gateActivation === 'hard-sigmoid' ? { kind: 'hard-sigmoid', alpha: l.hardSigmoidSlope, beta: l.hardSigmoidOffset } : { kind: 'sigmoid' };
  if (l.type === 'gru') return { ...act, cell: 'gru' };
  if (l.type === 'rnn') return { kind: 'sigmoid', cell: 'rnn', activation: l.activation ?? 'tanh' };
  return { ...act, ...(l.coupledGates ? { coupled: true } : {}), ...(l.peepholes ? { peepholes: true } : {}), ...(l.cellClip > 0 ? { clip: l.cellClip } : {}) };
}

const cellSpecs = new WeakMap<object, CellSpec>();

/** The checked equations of a cell layer (the loader has reported every problem at its token already). */
function cellSpecOf(l: ModelConfig['model']['layers'][number]): CellSpec {
  const hit = cellSpecs.get(l);
  if (hit) return hit;
  const r = checkCell(Object.entries(l.equations ?? {}), l.state ?? ['h'], l.init ?? {});
  if (!r.spec) throw new UserError(`cell layer: ${r.problems[0].message}`, {}, r.problems[0].hint);
  cellSpecs.set(l, r.spec);
  return r.spec;
}

/** For the language-model-only commands (grad, sample, export, gate views). */
export function checkLanguageModel(cfg: ModelConfig, what: string): void {
  if (cfg.task !== 'language-model')
    throw new UserError(`${what} works on language models; model "${cfg.name}" is a ${cfg.task} model`, whereOf(cfg, 'task'), 'use a language model');
}

export function lmSpecOf(cfg: ModelConfig, vocab: number, dtype: DType): LmSpec {
  return {
    vocab,
    embedding: cfg.model.embedding,
    hidden: cfg.model.layers.map((l) => l.hidden),
    dtype,
    gates: cfg.model.layers.map(cellOf),
  };
}

export function textOptionsOf(cfg: ModelConfig): TextOptions {
  return { tokens: cfg.data.tokens, preprocess: cfg.data.preprocess, minFrequency: cfg.data.minFrequency };
}

// ---- checkpoint metadata ------------------------------------------------------------------------

export const META = {
  vocab: 'gatelab.vocab',
  tokens: 'gatelab.tokens',
  preprocess: 'gatelab.preprocess',
  model: 'gatelab.model',
  task: 'gatelab.task',
  step: 'gatelab.step',
  architecture: 'gatelab.architecture',
} as const;

export function lmMetadata(cfg: ModelConfig, vocab: Vocab, step: number): Record<string, string> {
  return {
    [META.model]: cfg.name,
    [META.task]: cfg.task,
    [META.vocab]: JSON.stringify(vocab.tokens),
    [META.tokens]: cfg.data.tokens,
    [META.preprocess]: cfg.data.preprocess,
    [META.step]: String(step),
    [META.architecture]: JSON.stringify(cfg.model),
  };
}

/** The vocabulary stored in a checkpoint, if it has one. */
export function vocabFromMetadata(meta: Record<string, string>, file: string): Vocab | undefined {
  const raw = meta[META.vocab];
  if (raw === undefined) return undefined;
  let tokens: unknown;
  try {
    tokens = JSON.parse(raw);
  } catch {
    tokens = undefined;
  }
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string'))
    throw new UserError(`metadata "${META.vocab}" is not a JSON list of strings`, { file, key: META.vocab }, 'remove the entry or save the checkpoint again');
  return new Vocab(tokens as string[]);
}

/**
 * Checks that a checkpoint holds exactly the parameters the model file describes, with their
 * shapes; a mismatch names both files, the tensor and the model-file key that sets the size.
 */
export function checkCheckpointFits(ck: Checkpoint, expected: ParamInfo[], ckFile: string, cfg: ModelConfig): void {
  const rel = (f: string) => path.relative(process.cwd(), f) || f;
  const keyFor = (name: string): string => {
    const m = /_l(\d+)(_reverse)?$/.exec(name);
    if (m) return `model.layers.${m[1]}.${m[2] ? 'bidirectional' : 'hidden'}`; // a reverse direction's tensor: the layer's bidirectional
    if (name.startsWith('embedding')) return 'model.embedding';
    return 'model';
  };
  const problems: UserError[] = [];
  for (const p of expected) {
    const t = ck.params.get(p.name);
    if (!t) {
      const why =
        p.name === 'embedding.weight'
          ? ' (the model file asks for an embedding; the checkpoint has one-hot input)'
          : '';
      problems.push(
        new UserError(
          `checkpoint ${rel(ckFile)} has no tensor ${p.name}, which model "${cfg.name}" needs${why}`,
          whereOf(cfg, keyFor(p.name)),
          'use a checkpoint saved from this model file, or change the model file to match it',
        ),
      );
    } else if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      problems.push(
        new UserError(
          `checkpoint ${rel(ckFile)}: ${p.name} has shape [${t.shape.join(', ')}] but model "${cfg.name}" expects [${p.shape.join(', ')}]`,
          whereOf(cfg, keyFor(p.name)),
          'the hidden sizes, layer count, embedding and vocabulary must match the checkpoint',
        ),
      );
    }
  }
  const known = new Set(expected.map((p) => p.name));
  // a layer of another cell type (lstm.*, gru.*, rnn.*) at the same index: say so at its type key
  const article = { lstm: 'an LSTM', gru: 'a GRU', rnn: 'an RNN' } as const;
  const cellMismatch = (name: string): UserError | undefined => {
    const m = /^(lstm|gru|rnn)\.\w+_l(\d+)$/.exec(name) as (RegExpExecArray & { 1: keyof typeof article }) | null;
    if (!m) return undefined;
    const other = (['lstm', 'gru', 'rnn'] as const).find((c) => c !== m[1] && expected.some((p) => p.name.startsWith(`${c}.`) && p.name.endsWith(`_l${m[2]}`)));
    if (!other) return undefined;
    return new UserError(
      `checkpoint ${rel(ckFile)} has ${article[m[1]]} layer ${m[2]} (${name}) but model "${cfg.name}" has ${article[other]} layer there`,
      whereOf(cfg, `model.layers.${m[2]}.type`),
      `set type: ${m[1]} on layer ${m[2]}, or use a checkpoint saved from this model file`,
    );
  };
  const mismatched = [...ck.params.keys()].map(cellMismatch).filter((e): e is UserError => !!e);
  if (mismatched.length) {
    // one error per layer, instead of one per missing and unexpected tensor
    const perLayer = [...new Map(mismatched.map((e) => [e.where.key, e])).values()];
    if (perLayer.length === 1) throw perLayer[0];
    throw new UserErrors(perLayer);
  }
  for (const name of ck.params.keys()) {
    if (!known.has(name))
      problems.push(
        new UserError(
          `checkpoint ${rel(ckFile)} has tensor ${name}, which model "${cfg.name}" does not have`,
          whereOf(cfg, keyFor(name)),
          name.startsWith('embedding') ? 'set model.embedding to the checkpoint\'s embedding size' : 'the layer count must match the checkpoint',
        ),
      );
  }
  if (problems.length === 1) throw problems[0];
  if (problems.length > 1) throw new UserErrors(problems);
}

/** Vocabulary size of a language-model checkpoint: the rows of fc.weight (DESIGN §3). */
export function checkpointVocabSize(ck: Checkpoint, ckFile: string): number {
  const fc = ck.params.get('fc.weight');
  if (!fc || fc.shape.length !== 2)
    throw new UserError(`checkpoint has no 2-d tensor fc.weight`, { file: ckFile, key: 'fc.weight' }, 'a language-model checkpoint needs fc.weight [vocabulary, hidden]');
  return fc.shape[0];
}

/** Converts checkpoint tensors to the dtype a program runs in. */
export function asDtype(data: FloatData, dtype: 'float32' | 'float64'): FloatData {
  if (dtype === 'float32') return data instanceof Float32Array ? data : Float32Array.from(data);
  return data instanceof Float64Array ? data : Float64Array.from(data);
}

/** Feeds `p.<name>` of a checkpoint's parameters as float32 tensors (inference and gate programs). */
export function float32Feeds(params: readonly { name: string; shape: number[] }[], ck: Checkpoint): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const p of params) feeds[`p.${p.name}`] = new ort.Tensor('float32', asDtype(ck.params.get(p.name)!.data, 'float32') as Float32Array, p.shape);
  return feeds;
}
