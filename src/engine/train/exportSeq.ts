// `gatelab export` for classification and forecast models: an inference model with the standard ONNX
// `LSTM` operator (opset 18), one node per layer; a bidirectional layer is one node with
// direction = bidirectional, its W, R, B (and P) holding the forward direction's weights then the
// reverse one's, as the operator wants ([2, 4H, I], [2, 4H, H], [2, 8H], [2, 3H]); its output
// Y [T, 2, B, H] becomes the next layer's input [T, B, 2H] = [h_fwd, h_bwd]. Dropout is a training
// matter and is not in the model. Gate orders convert as in export.ts (ONNX i, o, f, c).
//
// Classification: inputs `tokens` int64 [T, B] (time-major, padded, any T and B) and `lengths` int64
// [B] (each sentence's real length, the operator's sequence_lens, so each reverse direction starts at
// its sentence's last real token); outputs `logits` and `probs` [B, C]. `last` pooling reads the top
// layer's Y_h ([h_fwd at the last real step, h_bwd at the first]); `mean` averages its Y over the
// real steps. Forecast: input `x` float32 [T, B, 1] (normalised as the checkpoint's gatelab.mean and
// gatelab.std say), output `pred` [B, horizon] from the top layer's Y_h.
// GRU layers are `GRU` nodes (linear_before_reset = 1, gate order z, r, h; see export.ts), W [D, 3H, I],
// R [D, 3H, H], B [D, 6H], with the same sequence_lens, directions and outputs; RNN layers `RNN` nodes
// (rnnNode), W [D, H, I], R [D, H, H], B [D, 2H], activations Tanh or Relu.

import { cellDef } from '../nn/cells';
import { attr, Graph, Value } from '../onnx/builder';
import type { AttrValue } from '../onnx/proto';
import { Ops } from '../onnx/ops';
import { ModelConfig } from '../config/types';
import { whereOf } from '../config/load';
import { UserError } from '../errors';
import { cellKind, type GateActivation } from '../nn/lstm';
import { DIRECTION_SUFFIX, directionsOf } from '../nn/direction';
import { Checkpoint, FloatData, GATE_ORDERS, permuteGateBlocks } from './checkpoint';
import { asDtype, cellOf, checkCheckpointFits } from './lmsetup';
import { classifyParams, ClassifySpec } from './classify';
import { forecastParams, ForecastSpec } from './forecast';
import { GRU_ONNX_FROM_INTERNAL, isGru } from '../nn/gru';
import { eqCellExport, eqCellParams } from '../nn/eqcell';
import { isNumericClassification } from '../tasks/numericClassification';

/** ONNX_FROM_INTERNAL[k] = the internal gate block that becomes ONNX block k. */
const ONNX_FROM_INTERNAL = GATE_ORDERS.onnx.map((g) => GATE_ORDERS.internal.indexOf(g as never));

export interface SeqExportSpec {
  input: { kind: 'tokens'; vocab: number; embedding: number } | { kind: 'dense'; features: number };
  hidden: number[];
  gates?: (GateActivation | undefined)[];
  bidirectional?: boolean[];
  head: { kind: 'classify'; classes: number; pooling: 'last' | 'mean' } | { kind: 'forecast'; horizon: number };
}

/** The operator's attributes for a cell variant, repeated for each direction. */
function cellAttrs(gate: GateActivation | undefined, D: number): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = { ...(gate?.coupled ? { input_forget: attr.i(1) } : {}), ...(gate?.clip ? { clip: attr.f(gate.clip) } : {}) };
  if (!gate || gate.kind === 'sigmoid') return out;
  // f = HardSigmoid (alpha, beta), g = h = Tanh, per direction; alpha/beta are consumed only by the
  // activations that take them
  return {
    ...out,
    activations: attr.strings(Array.from({ length: D }, () => ['HardSigmoid', 'Tanh', 'Tanh']).flat()),
    activation_alpha: attr.floats(Array(D).fill(gate.alpha)),
    activation_beta: attr.floats(Array(D).fill(gate.beta)),
  };
}

/**
 * An RNN layer as the ONNX `RNN` operator: W [D, H, I], R [D, H, H], B [D, 2H] (Wb then Rb per
 * direction), the activation per direction; no gate order to convert.
 * @returns Y [T, D, B, H] and Y_h [D, B, H]
 */
export function rnnNode(g: Graph, x: Value, w: (name: string) => Float32Array, k: number, H: number, sfxs: string[], gate: GateActivation | undefined, seqLens: Value | null): [Value, Value] {
  const D = sfxs.length;
  const I = x.shape[2] as number;
  const cat = (parts: Float32Array[]) => {
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) (out.set(p, o), (o += p.length));
    return out;
  };
  const c = (data: Float32Array, dims: number[]) => g.const({ dtype: 'float32', dims, data }, 'float32', dims);
  const W = c(cat(sfxs.map((s) => w(`rnn.weight_ih_l${k}${s}`))), [D, H, I]);
  const R = c(cat(sfxs.map((s) => w(`rnn.weight_hh_l${k}${s}`))), [D, H, H]);
  const B = c(cat(sfxs.flatMap((s) => [w(`rnn.bias_ih_l${k}${s}`), w(`rnn.bias_hh_l${k}${s}`)])), [D, 2 * H]);
  const act = gate?.activation === 'relu' ? 'Relu' : 'Tanh';
  const [Y, Yh] = g.scope(`rnn${k}`, () =>
    g.node('RNN', seqLens ? [x, W, R, B, seqLens] : [x, W, R, B], { hidden_size: attr.i(H), direction: attr.s(D === 2 ? 'bidirectional' : 'forward'), activations: attr.strings(Array(D).fill(act)) }, [
      { dtype: 'float32', shape: ['T', D, 'B', H] },
      { dtype: 'float32', shape: [D, 'B', H] },
    ]),
  );
  return [Y, Yh];
}

export function buildSeqExportModel(ck: Checkpoint, spec: SeqExportSpec): Graph {
  const g = new Graph(spec.head.kind === 'classify' ? 'gatelab_classify' : 'gatelab_forecast');
  const op = new Ops(g);
  const w = (name: string): FloatData => asDtype(ck.params.get(name)!.data, 'float32');
  const shape = (name: string) => ck.params.get(name)!.shape;
  const c = (data: FloatData, dims: number[]) => g.const({ dtype: 'float32', dims, data }, 'float32', dims);
  let x: Value;
  let lengths: Value | null = null;
  if (spec.input.kind === 'tokens') {
    const tokens = g.input('tokens', 'int64', ['T', 'B']);
    lengths = g.input('lengths', 'int64', ['B']);
    const V = spec.input.vocab;
    x = spec.input.embedding > 0
      ? op.Gather(c(w('embedding.weight'), shape('embedding.weight')), tokens, 0) // [T, B, E]
      : op.Gather(c(Float32Array.from({ length: V * V }, (_, i) => (Math.floor(i / V) === i % V ? 1 : 0)), [V, V]), tokens, 0); // one-hot [T, B, V]
  } else {
    x = g.input('x', 'float32', ['T', 'B', spec.input.features]);
    // numeric sequences of a classifier: their real lengths, as sentences have
    if (spec.head.kind === 'classify') lengths = g.input('lengths', 'int64', ['B']);
  }

  const seqLens = lengths ? op.Cast(lengths, 'int32') : null; // the operator takes int32 lengths
  let Y!: Value; // the top layer's outputs [T, B, D·H]
  let Yh!: Value; // its final states [B, D·H]
  spec.hidden.forEach((H, k) => {
    const I = x.shape[2] as number;
    const sfxs = directionsOf(spec.bidirectional?.[k]).map((d) => DIRECTION_SUFFIX[d]);
    const D = sfxs.length;
    const gate = spec.gates?.[k];
    const perm = (name: string) => permuteGateBlocks(w(name), shape(name), ONNX_FROM_INTERNAL) as Float32Array;
    const stack = (parts: Float32Array[]) => {
      const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
      let o = 0;
      for (const p of parts) (out.set(p, o), (o += p.length));
      return out;
    };
    if (cellKind(gate) === 'cell') {
      // an equation cell: its Scan per direction, with the weights as initializers
      const P = Object.fromEntries(sfxs.flatMap((s) => eqCellParams(gate!.equations!, k, H, I, s)).map((p) => [p.name, c(w(p.name), p.shape)]));
      const r = eqCellExport(g, gate!.equations!, P, k, H, x, sfxs, lengths);
      x = r.Y;
      Y = x;
      Yh = r.Yh;
      return;
    }
    if (cellKind(gate) === 'rnn') {
      const [Yk, Yhk] = rnnNode(g, x, (name) => asDtype(ck.params.get(name)!.data, 'float32') as Float32Array, k, H, sfxs, gate, seqLens);
      x = op.Reshape(op.Transpose(Yk, [0, 2, 1, 3]), [0, 0, D * H]);
      Y = x;
      Yh = op.Reshape(op.Transpose(Yhk, [1, 0, 2]), [0, D * H]);
      return;
    }
    if (isGru(gate)) {
      const gp = (name: string) => permuteGateBlocks(w(name), shape(name), GRU_ONNX_FROM_INTERNAL) as Float32Array;
      const Wg = c(stack(sfxs.map((s) => gp(`gru.weight_ih_l${k}${s}`))), [D, 3 * H, I]);
      const Rg = c(stack(sfxs.map((s) => gp(`gru.weight_hh_l${k}${s}`))), [D, 3 * H, H]);
      const Bg = c(stack(sfxs.flatMap((s) => [gp(`gru.bias_ih_l${k}${s}`), gp(`gru.bias_hh_l${k}${s}`)])), [D, 6 * H]);
      // r and z = f (HardSigmoid with alpha, beta), n = g (Tanh), per direction
      const act: Record<string, AttrValue> =
        gate?.kind === 'hard-sigmoid'
          ? { activations: attr.strings(Array.from({ length: D }, () => ['HardSigmoid', 'Tanh']).flat()), activation_alpha: attr.floats(Array(D).fill(gate.alpha)), activation_beta: attr.floats(Array(D).fill(gate.beta)) }
          : {};
      const [Yk, Yhk] = g.scope(`gru${k}`, () =>
        g.node('GRU', seqLens ? [x, Wg, Rg, Bg, seqLens] : [x, Wg, Rg, Bg], { hidden_size: attr.i(H), direction: attr.s(D === 2 ? 'bidirectional' : 'forward'), linear_before_reset: attr.i(1), ...act }, [
          { dtype: 'float32', shape: ['T', D, 'B', H] },
          { dtype: 'float32', shape: [D, 'B', H] },
        ]),
      );
      x = op.Reshape(op.Transpose(Yk, [0, 2, 1, 3]), [0, 0, D * H]);
      Y = x;
      Yh = op.Reshape(op.Transpose(Yhk, [1, 0, 2]), [0, D * H]);
      return;
    }
    const W = c(stack(sfxs.map((s) => perm(`lstm.weight_ih_l${k}${s}`))), [D, 4 * H, I]);
    const R = c(stack(sfxs.map((s) => perm(`lstm.weight_hh_l${k}${s}`))), [D, 4 * H, H]);
    const Bv = c(stack(sfxs.flatMap((s) => [perm(`lstm.bias_ih_l${k}${s}`), perm(`lstm.bias_hh_l${k}${s}`)])), [D, 8 * H]);
    // peepholes: Gatelab stores [3, H] as i, f, o; the operator's P is [D, 3H] as i, o, f
    const Pv = gate?.peepholes ? c(stack(sfxs.map((s) => permuteGateBlocks(w(`lstm.weight_peephole_l${k}${s}`), [3, H], [0, 2, 1]) as Float32Array)), [D, 3 * H]) : null;
    const inputs: (Value | null)[] = [x, W, R, Bv, seqLens, null, null];
    if (Pv) inputs.push(Pv);
    while (inputs.length > 4 && inputs[inputs.length - 1] === null) inputs.pop();
    const [Yk, Yhk] = g.scope(`lstm${k}`, () =>
      g.node('LSTM', inputs, { hidden_size: attr.i(H), direction: attr.s(D === 2 ? 'bidirectional' : 'forward'), ...cellAttrs(gate, D) }, [
        { dtype: 'float32', shape: ['T', D, 'B', H] },
        { dtype: 'float32', shape: [D, 'B', H] },
      ]),
    );
    // [T, D, B, H] → [T, B, D·H]; [D, B, H] → [B, D·H]
    x = op.Reshape(op.Transpose(Yk, [0, 2, 1, 3]), [0, 0, D * H]);
    Y = x;
    Yh = op.Reshape(op.Transpose(Yhk, [1, 0, 2]), [0, D * H]);
  });
  const fcW = ck.params.get('fc.weight')!.shape;
  const fcT = c(transpose(w('fc.weight'), fcW), [fcW[1], fcW[0]]);
  const head = (v: Value) => op.Add(op.MatMul(v, fcT), c(w('fc.bias'), [fcW[0]]));
  if (spec.head.kind === 'forecast') {
    g.output(head(Yh), 'pred');
    return g;
  }
  let vec = Yh;
  if (spec.head.pooling === 'mean') {
    // mean over the real steps: mask[t, b] = t < lengths[b]
    const T = op.Gather(op.Shape(Y), g.const([0], 'int64', []), 0); // scalar
    const [steps] = g.node('Range', [g.const([0], 'int64', []), T, g.const([1], 'int64', [])], {}, [{ dtype: 'int64', shape: ['T'] }]);
    const mask = op.Cast(op.Less(op.Unsqueeze(steps, [1]), op.Unsqueeze(lengths!, [0])), 'float32'); // [T, B]
    const m3 = op.Unsqueeze(mask, [2]);
    vec = op.Div(op.ReduceSum(op.Mul(Y, m3), [0]), op.ReduceSum(m3, [0]));
  }
  const logits = head(vec);
  g.output(logits, 'logits');
  g.output(op.Softmax(logits, 1), 'probs');
  return g;
}

function transpose(d: FloatData, [r, cols]: number[]): Float32Array {
  const out = new Float32Array(r * cols);
  for (let i = 0; i < r; i++) for (let j = 0; j < cols; j++) out[j * r + i] = d[i * cols + j];
  return out;
}

/** The export spec of a classification or forecast model file, checked against the checkpoint. */
export function seqExportSpecOf(cfg: ModelConfig, ck: Checkpoint, ckFile: string): { spec: SeqExportSpec; meta: Record<string, string> } {
  const hidden = cfg.model.layers.map((l) => l.hidden);
  const gates = cfg.model.layers.map(cellOf);
  const bidirectional = cfg.model.layers.map((l) => l.bidirectional);
  const meta: Record<string, string> = { 'gatelab.model': cfg.name, 'gatelab.task': cfg.task, 'gatelab.gateOrder': 'onnx i,o,f,c' };
  if (gates.some(isGru)) meta['gatelab.gruGateOrder'] = 'onnx z,r,h';
  const fc = ck.params.get('fc.weight');
  if (!fc || fc.shape.length !== 2)
    throw new UserError('checkpoint has no 2-d tensor fc.weight', { file: ckFile, key: 'fc.weight' }, `a ${cfg.task} checkpoint needs fc.weight`);
  if (cfg.task === 'forecast') {
    // the input features from the first layer's input weights (several columns: gatelab.features says which)
    const F = ck.params.get(cellDef(gates[0]).inputWeight(0, ''))?.shape[1] ?? 1;
    const fspec: ForecastSpec = { hidden, horizon: cfg.data.horizon, inputs: F, dtype: 'float32', gates, bidirectional };
    checkCheckpointFits(ck, forecastParams(fspec), ckFile, cfg);
    for (const k of ['gatelab.mean', 'gatelab.std', 'gatelab.transform', 'gatelab.window', 'gatelab.horizon', 'gatelab.column', 'gatelab.features']) if (ck.metadata[k] !== undefined) meta[k] = ck.metadata[k];
    return { spec: { input: { kind: 'dense', features: F }, hidden, gates, bidirectional, head: { kind: 'forecast', horizon: cfg.data.horizon } }, meta };
  }
  if (isNumericClassification(cfg)) {
    // numeric sequences: the features from the first layer's input weights
    const F = ck.params.get(cellDef(gates[0]).inputWeight(0, ''))?.shape[1] ?? 1;
    checkCheckpointFits(ck, classifyParams({ vocab: 0, embedding: 0, features: F, hidden, classes: fc.shape[0], pooling: cfg.data.pooling, dtype: 'float32', gates, bidirectional }), ckFile, cfg);
    for (const k of ['gatelab.classes', 'gatelab.features', 'gatelab.input']) if (ck.metadata[k] !== undefined) meta[k] = ck.metadata[k];
    return { spec: { input: { kind: 'dense', features: F }, hidden, gates, bidirectional, head: { kind: 'classify', classes: fc.shape[0], pooling: cfg.data.pooling } }, meta };
  }
  // classification: the vocabulary size from the embedding or the one-hot input weights
  const E = cfg.model.embedding;
  const firstName = E > 0 ? 'embedding.weight' : cellDef(cellOf(cfg.model.layers[0])).inputWeight(0, '');
  const first = ck.params.get(firstName);
  if (!first)
    throw new UserError(`checkpoint ${ckFile} has no ${firstName}`, whereOf(cfg, E > 0 ? 'model.embedding' : 'model.layers.0.hidden'), 'use a checkpoint saved from this model file');
  const V = E > 0 ? first.shape[0] : first.shape[1];
  const cspec: ClassifySpec = { vocab: V, embedding: E, hidden, classes: fc.shape[0], pooling: cfg.data.pooling, dtype: 'float32', gates, bidirectional };
  checkCheckpointFits(ck, classifyParams(cspec), ckFile, cfg);
  for (const k of ['gatelab.vocab', 'gatelab.classes', 'gatelab.tokens', 'gatelab.preprocess']) if (ck.metadata[k] !== undefined) meta[k] = ck.metadata[k];
  return { spec: { input: { kind: 'tokens', vocab: V, embedding: E }, hidden, gates, bidirectional, head: { kind: 'classify', classes: fc.shape[0], pooling: cfg.data.pooling } }, meta };
}
