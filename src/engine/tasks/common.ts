// Small pieces several task plug-ins use: zero tensors, the checks of options a task does not have,
// a fixed gate-probe example as a GateSource, and the mean of a list.

import * as ort from 'onnxruntime-node';
import { Graph } from '../onnx/builder';
import { lmForward, lmParams, LmSpec } from '../nn/lm';
import { hasCellState } from '../nn/gru';
import { cellOf } from '../train/lmsetup';
import { buildTrainProgram, carriedState } from '../train/program';
import { GateProbe } from '../train/probe';
import type { ModelConfig } from '../config/types';
import { whereOf } from '../config/load';
import { UserError } from '../errors';
import type { SeqGateProbe } from '../train/probe';
import type { GateSource } from './task';

export function zeros(shape: number[], dtype: 'float32' | 'float64' = 'float32'): ort.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return new ort.Tensor(dtype, dtype === 'float64' ? new Float64Array(n) : new Float32Array(n), shape);
}

/** A task whose model reads its sequence in one direction only: a bidirectional layer is an error at its key. */
export function noBidirectional(cfg: ModelConfig, what: string): void {
  cfg.model.layers.forEach((l, k) => {
    if (l.bidirectional)
      throw new UserError(`${what} is not supported yet`, whereOf(cfg, `model.layers.${k}.bidirectional`), 'set bidirectional: false; classification and forecast models have it');
  });
}

/** A task without dropout. */
export function noDropout(cfg: ModelConfig, what: string): void {
  if (cfg.model.dropout > 0) throw new UserError(`${what} is not supported yet`, whereOf(cfg, 'model.dropout'), 'set dropout: 0; language-model, classification and forecast models have it');
}

/** A task that reads its generated sequences once, forwards, without dropout (copy, adding). */
export function forwardOnly(cfg: ModelConfig): void {
  noBidirectional(cfg, `a bidirectional ${cfg.task} model`);
  noDropout(cfg, `dropout in ${/^[aeiou]/.test(cfg.task) ? 'an' : 'a'} ${cfg.task} model`);
}

/** The gate views of one fixed example (classification, forecast, adding). */
export function fixedProbe(probe: SeqGateProbe): GateSource {
  return { run: (params, step) => probe.run(params, step), release: () => probe.release() };
}

/**
 * What a task of generated token sequences trains and probes (copy, key-query): the language
 * model's network over its symbols, the K-step program, the fixed validation set as a tensor and
 * a gate probe of its first sequence.
 */
export function tokenSequenceSetup(cfg: ModelConfig, symbols: readonly string[], T: number, valid: { x: Int32Array }, N: number) {
  const B = cfg.train.batchSize;
  const lm: LmSpec = { vocab: symbols.length, embedding: cfg.model.embedding, hidden: cfg.model.layers.map((l) => l.hidden), dtype: 'float32', gates: cfg.model.layers.map(cellOf) };
  const program = buildTrainProgram({ lm, B, T, optimizer: cfg.train.optimizer, clipNorm: cfg.train.clipNorm });
  const probe = new GateProbe(lm, symbols);
  const probeIds = Array.from({ length: T }, (_, t) => valid.x[t * N]);
  const vx = new ort.Tensor('int64', BigInt64Array.from(valid.x, (v) => BigInt(v)), [T, N]);
  const gates: GateSource = {
    // the first validation sequence, a fixed example
    run: async (params, step) => ({ ...(await probe.run(params, probeIds, step)), editable: false }),
    release: () => probe.release(),
  };
  return { B, lm, program, carried: carriedState(lm, B), vx, gates };
}

/** The logits of N generated token sequences from the zero state (copy, key-query validation). */
export function sequenceEvalProgram(lm: LmSpec, T: number, N: number): Graph {
  const g = new Graph('gatelab_sequence_eval');
  const pIn = lmParams(lm).map((p) => g.input(`p.${p.name}`, lm.dtype, p.shape));
  const x = g.input('x', 'int64', [T, N]);
  const zeros = (H: number) => g.const(new Array(N * H).fill(0), lm.dtype, [N, H]);
  const fwd = lmForward(g, lm, Object.fromEntries(lmParams(lm).map((p, i) => [p.name, pIn[i]])), x, lm.hidden.map((H, k) => (hasCellState(lm, k) ? { h0: zeros(H), c0: zeros(H) } : { h0: zeros(H) })));
  g.output(fwd.logits, 'logits');
  return g;
}

/**
 * The cross-entropy summed over every step of N sequences (logits [T·N, V], time-major) and the
 * count of argmax hits at the steps `scored` picks.
 */
export function sequenceScores(logits: Float32Array, y: Int32Array, V: number, T: number, N: number, scored: (t: number, n: number) => boolean): { nll: number; correct: number } {
  let nll = 0;
  let correct = 0;
  for (let i = 0; i < T * N; i++) {
    const row = logits.subarray(i * V, (i + 1) * V);
    let m = -Infinity;
    let arg = 0;
    for (let v = 0; v < V; v++) if (row[v] > m) [m, arg] = [row[v], v];
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(row[v] - m);
    nll += m + Math.log(z) - row[y[i]];
    if (arg === y[i] && scored(Math.floor(i / N), i % N)) correct++;
  }
  return { nll, correct };
}

/** The feeds of k steps of freshly generated token sequences [k, T, B], each from the zero state. */
export function sequenceChunk(k: number, T: number, B: number, batch: () => { x: Int32Array; y: Int32Array }): Record<string, ort.Tensor> {
  const x = new BigInt64Array(k * T * B);
  const y = new BigInt64Array(k * T * B);
  for (let j = 0; j < k; j++) {
    const b = batch();
    for (let n = 0; n < T * B; n++) {
      x[j * T * B + n] = BigInt(b.x[n]);
      y[j * T * B + n] = BigInt(b.y[n]);
    }
  }
  return { x: new ort.Tensor('int64', x, [k, T, B]), y: new ort.Tensor('int64', y, [k, T, B]), keep: new ort.Tensor('float32', new Float32Array(k), [k]) };
}

export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

type Packed = Float32Array | Float64Array | BigInt64Array;

/**
 * The k minibatches of one run stacked along a new leading axis: `batch(j)` gives minibatch j's
 * arrays by name (each the same size for every j), the result their concatenation per name.
 */
export function stackBatches<K extends string>(k: number, batch: (j: number) => Record<K, Packed>): Record<K, Packed> {
  const parts = Array.from({ length: k }, (_, j) => batch(j));
  const out = {} as Record<K, Packed>;
  for (const name of Object.keys(parts[0]) as K[]) {
    const n = parts[0][name].length;
    const first = parts[0][name];
    const all = first instanceof BigInt64Array ? new BigInt64Array(k * n) : first instanceof Float64Array ? new Float64Array(k * n) : new Float32Array(k * n);
    parts.forEach((p, j) => all.set(p[name] as never, j * n));
    out[name] = all;
  }
  return out;
}
