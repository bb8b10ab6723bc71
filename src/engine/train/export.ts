// `gatelab export`: an inference model with the standard ONNX `LSTM` operator (opset 18), for any
// ONNX runtime. Input `tokens` int64 [T, B] (time-major, any T and B); outputs `logits` [T, B, V]
// and the final states `h.l<k>`, `c.l<k>` [B, H]. The initial state is zero, as in training.
//
// Gate order: the ONNX operator uses i, o, f, c; Gatelab's internal order is i, f, o, g; the
// conversion is one permutation of the gate blocks (checkpoint.ts's tables), applied to W, R and B.
// B is [W_b, R_b] = [bias_ih, bias_hh], as the operator adds both.
// GRU layers use the standard `GRU` operator with linear_before_reset = 1 (PyTorch's n = tanh(W_in x
// + b_in + r ⊙ (W_hn h + b_hn))); its gate order is z, r, h against Gatelab's (and PyTorch's) r, z, n
// (GRU_GATE_ORDERS in ../nn/gru.ts); a GRU layer has no cell state, so only `h.l<k>` for it.


import { Graph, attr } from '../onnx/builder';
import type { AttrValue } from '../onnx/proto';
import { Ops } from '../onnx/ops';
import { loadModelFile } from '../config/load';
import { LmSpec, lmParams } from '../nn/lm';
import { Checkpoint, FloatData, GATE_ORDERS, loadCheckpoint, permuteGateBlocks } from './checkpoint';
import { asDtype, checkLanguageModel, checkCheckpointFits, checkpointVocabSize, lmSpecOf, META } from './lmsetup';
import { checkModel } from '../tasks/registry';
import { writeFileAtomic } from '../util/fsx';
import { buildSeqExportModel, rnnNode, seqExportSpecOf } from './exportSeq';
import { cellKind } from '../nn/lstm';
import { GRU_ONNX_FROM_INTERNAL, isGru } from '../nn/gru';
import { eqCellExport, eqCellParams } from '../nn/eqcell';

/** ONNX_FROM_INTERNAL[k] = the internal gate block that becomes ONNX block k. */
export const ONNX_FROM_INTERNAL = GATE_ORDERS.onnx.map((g) => GATE_ORDERS.internal.indexOf(g as never));

export function buildExportModel(ck: Checkpoint, spec: { vocab: number; embedding: number; hidden: number[]; gates?: LmSpec['gates'] }): Graph {
  const g = new Graph('gatelab_lm');
  const op = new Ops(g);
  const w = (name: string): FloatData => asDtype(ck.params.get(name)!.data, 'float32');
  const shape = (name: string) => ck.params.get(name)!.shape;
  const c = (data: FloatData, dims: number[]) => g.const({ dtype: 'float32', dims, data }, 'float32', dims);
  const tokens = g.input('tokens', 'int64', ['T', 'B']);
  const V = spec.vocab;
  let x = spec.embedding > 0
    ? op.Gather(c(w('embedding.weight'), shape('embedding.weight')), tokens, 0) // [T, B, E]
    : op.Gather(c(Float32Array.from({ length: V * V }, (_, i) => (Math.floor(i / V) === i % V ? 1 : 0)), [V, V]), tokens, 0); // one-hot [T, B, V]
  const finals: { h: ReturnType<Ops['Squeeze']>; c?: ReturnType<Ops['Squeeze']> }[] = [];
  spec.hidden.forEach((H, k) => {
    const I = x.shape[2] as number;
    if (cellKind(spec.gates?.[k]) === 'cell') {
      // an equation cell: its Scan, with the weights as initializers
      const cellSpec = spec.gates![k]!.equations!;
      const P = Object.fromEntries(eqCellParams(cellSpec, k, H, I).map((p) => [p.name, c(w(p.name), p.shape)]));
      const r = eqCellExport(g, cellSpec, P, k, H, x, [''], null);
      x = r.Y;
      finals.push({ h: r.Yh, ...(r.cT ? { c: r.cT } : {}) });
      return;
    }
    if (cellKind(spec.gates?.[k]) === 'rnn') {
      const [Y, Yh] = rnnNode(g, x, w as (name: string) => Float32Array, k, H, [''], spec.gates?.[k], null);
      x = op.Squeeze(Y, [1]); // [T, B, H]
      finals.push({ h: op.Squeeze(Yh, [0]) });
      return;
    }
    if (isGru(spec.gates?.[k])) {
      const perm = (name: string) => permuteGateBlocks(w(name), shape(name), GRU_ONNX_FROM_INTERNAL) as Float32Array;
      const W = c(perm(`gru.weight_ih_l${k}`), [1, 3 * H, I]);
      const R = c(perm(`gru.weight_hh_l${k}`), [1, 3 * H, H]);
      const bias = new Float32Array(6 * H);
      bias.set(perm(`gru.bias_ih_l${k}`), 0);
      bias.set(perm(`gru.bias_hh_l${k}`), 3 * H);
      const gate = spec.gates?.[k];
      const act: Record<string, AttrValue> =
        gate?.kind === 'hard-sigmoid'
          ? { activations: attr.strings(['HardSigmoid', 'Tanh']), activation_alpha: attr.floats([gate.alpha]), activation_beta: attr.floats([gate.beta]) }
          : {};
      const [Y, Yh] = g.scope(`gru${k}`, () =>
        g.node('GRU', [x, W, R, c(bias, [1, 6 * H])], { hidden_size: attr.i(H), direction: attr.s('forward'), linear_before_reset: attr.i(1), ...act }, [
          { dtype: 'float32', shape: ['T', 1, 'B', H] },
          { dtype: 'float32', shape: [1, 'B', H] },
        ]),
      );
      x = op.Squeeze(Y, [1]); // [T, B, H]
      finals.push({ h: op.Squeeze(Yh, [0]) });
      return;
    }
    const perm = (name: string) => permuteGateBlocks(w(name), shape(name), ONNX_FROM_INTERNAL) as Float32Array;
    const W = c(perm(`lstm.weight_ih_l${k}`), [1, 4 * H, I]);
    const R = c(perm(`lstm.weight_hh_l${k}`), [1, 4 * H, H]);
    const bias = new Float32Array(8 * H);
    bias.set(perm(`lstm.bias_ih_l${k}`), 0);
    bias.set(perm(`lstm.bias_hh_l${k}`), 4 * H);
    const Bv = c(bias, [1, 8 * H]);
    // peepholes: Gatelab stores [3, H] as i, f, o; the operator's P is [1, 3H] as i, o, f
    const pName = `lstm.weight_peephole_l${k}`;
    const Pv = ck.params.has(pName) ? c(permuteGateBlocks(w(pName), [3, H], [0, 2, 1]) as Float32Array, [1, 3 * H]) : null;
    const [Y, Yh, Yc] = g.scope(`lstm${k}`, () =>
      g.node('LSTM', Pv ? [x, W, R, Bv, null, null, null, Pv] : [x, W, R, Bv], { hidden_size: attr.i(H), direction: attr.s('forward'), ...activations(spec.gates?.[k]) }, [
        { dtype: 'float32', shape: ['T', 1, 'B', H] },
        { dtype: 'float32', shape: [1, 'B', H] },
        { dtype: 'float32', shape: [1, 'B', H] },
      ]),
    );
    x = op.Squeeze(Y, [1]); // [T, B, H]
    finals.push({ h: op.Squeeze(Yh, [0]), c: op.Squeeze(Yc, [0]) });
  });
  const fcT = c(transpose(w('fc.weight'), shape('fc.weight')), [shape('fc.weight')[1], V]);
  g.output(op.Add(op.MatMul(x, fcT), c(w('fc.bias'), [V])), 'logits');
  finals.forEach((f, k) => {
    g.output(f.h, `h.l${k}`);
    if (f.c) g.output(f.c, `c.l${k}`);
  });
  return g;
}

/** The operator's activations attribute for a hard-sigmoid gate variant (f = HardSigmoid, g = h = Tanh). */
function activations(gate: NonNullable<LmSpec['gates']>[number]): Record<string, AttrValue> {
  const coupled: Record<string, AttrValue> = { ...(gate?.coupled ? { input_forget: attr.i(1) } : {}), ...(gate?.clip ? { clip: attr.f(gate.clip) } : {}) };
  if (!gate || gate.kind === 'sigmoid') return coupled;
  return {
    ...coupled,
    activations: attr.strings(['HardSigmoid', 'Tanh', 'Tanh']),
    activation_alpha: attr.floats([gate.alpha]),
    activation_beta: attr.floats([gate.beta]),
  };
}

function transpose(d: FloatData, [r, cols]: number[]): Float32Array {
  const out = new Float32Array(r * cols);
  for (let i = 0; i < r; i++) for (let j = 0; j < cols; j++) out[j * r + i] = d[i * cols + j];
  return out;
}

export function exportOnnx(o: { modelFile: string; modelName?: string; init: string; out: string }): { bytes: number; vocab: number; inputs?: string[]; outputs?: string[] } {
  const cfg = loadModelFile(o.modelFile, o.modelName);
  checkModel(cfg);
  if (cfg.task === 'classification' || cfg.task === 'forecast') {
    // LSTM operators with sequence_lens / direction = bidirectional: exportSeq.ts
    const ck = loadCheckpoint(o.init);
    const { spec, meta } = seqExportSpecOf(cfg, ck, o.init);
    const graph = buildSeqExportModel(ck, spec);
    const bytes = graph.encode(meta);
    writeFileAtomic(o.out, bytes);
    return { bytes: bytes.length, vocab: spec.input.kind === 'tokens' ? spec.input.vocab : 0, inputs: graph.inputs.map((v) => v.name), outputs: graph.outputs.map((v) => v.name) };
  }
  checkLanguageModel(cfg, 'ONNX export');
  const ck = loadCheckpoint(o.init);
  const V = checkpointVocabSize(ck, o.init);
  const spec = lmSpecOf(cfg, V, 'float32');
  checkCheckpointFits(ck, lmParams(spec), o.init, cfg);
  const meta: Record<string, string> = { 'gatelab.model': cfg.name, 'gatelab.gateOrder': 'onnx i,o,f,c' };
  if (spec.gates?.some(isGru)) meta['gatelab.gruGateOrder'] = 'onnx z,r,h';
  for (const k of [META.vocab, META.tokens, META.preprocess]) if (ck.metadata[k] !== undefined) meta[k] = ck.metadata[k];
  const graph = buildExportModel(ck, spec);
  const bytes = graph.encode(meta);
  writeFileAtomic(o.out, bytes);
  return { bytes: bytes.length, vocab: V, inputs: graph.inputs.map((v) => v.name), outputs: graph.outputs.map((v) => v.name) };
}


