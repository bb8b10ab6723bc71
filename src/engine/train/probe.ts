// Gate views: the LSTM's insides for a probe input, from the same forward graph the trainer uses.
// For one sequence (B = 1) the probe program returns, per layer and time step, the gates i, f, o,
// the candidate g, the cell c and the hidden h, and the softmax of the next-token logits, so a
// dashboard can draw units × time heatmaps (LSTMVis), colour the text by one unit (Karpathy), show
// the top-5 guesses under each token, gate saturation (Karpathy et al. 2015 §4) and histograms.
//
// Legend: T = probe length, H = hidden units of a layer, V = vocabulary.

import * as ort from 'onnxruntime-node';
import { Graph } from '../onnx/builder';
import { Ops } from '../onnx/ops';
import { LmSpec, lmForward, lmParams } from '../nn/lm';
import type { GateActivation, LstmForward } from '../nn/lstm';
import type { GruForward } from '../nn/gru';
import type { EqCellForward } from '../nn/eqcell';
import { cellDef, LayerForward } from '../nn/cells';
import { Direction, DIRECTION_SUFFIX, directionsOf, runDirections } from '../nn/direction';
import type { BuiltinGateName, GateLayer, GateName, GatesMessage, SigmoidGateName } from '../../shared/protocol';


/**
 * A layer's probe outputs [T, ·]: `sig.l<k>` (i f o, or r z), `g.l<k>` and `c.l<k>` (LSTM) or
 * `n.l<k>` (GRU), `h.l<k>` (every cell; all a plain RNN has); a reverse direction's names end in
 * `_reverse` (sfx), its rows in the order it read the sequence.
 */
function outputLayer(g: Graph, l: LayerForward, k: number, T: number, H: number, sfx = ''): void {
  const op = new Ops(g);
  if ('kind' in l && l.kind === 'cell') {
    // an equation cell: every equation, named as in the model file (h among them)
    for (const [name, v] of Object.entries((l as EqCellForward).maps)) if (name !== 'h') g.output(op.Reshape(v, [T, H]), `eq.${name}.l${k}${sfx}`);
  } else if ('kind' in l && l.kind === 'rnn') {
    // no gates: only h
  } else if ('kind' in l && l.kind === 'gru') {
    g.output(op.Reshape((l as GruForward).S, [T, 2 * H]), `sig.l${k}${sfx}`);
    g.output(op.Reshape((l as GruForward).n, [T, H]), `n.l${k}${sfx}`);
  } else {
    const f = l as LstmForward;
    g.output(op.Reshape(f.S, [T, 3 * H]), `sig.l${k}${sfx}`);
    g.output(op.Reshape(f.gc, [T, H]), `g.l${k}${sfx}`);
    g.output(op.Reshape(f.cs, [T, H]), `c.l${k}${sfx}`);
  }
  g.output(op.Reshape(l.hs, [T, H]), `h.l${k}${sfx}`);
}

/**
 * One layer (and direction) of a probe run as a protocol message: values, saturation of the sigmoid
 * gates, histograms. A reverse direction's rows are put back in the sequence's order.
 */
function packLayer(r: Record<string, ort.Tensor>, k: number, T: number, H: number, gate: GateActivation | undefined, direction: Direction = 'forward'): GateLayer {
  const cell = cellDef(gate);
  const names: readonly GateName[] = cell.maps;
  const sigNames: readonly SigmoidGateName[] = cell.sigmoid;
  const sfx = DIRECTION_SUFFIX[direction];
  const row = (t: number) => (direction === 'reverse' ? T - 1 - t : t);
  const eqCell = cell.kind === 'cell';
  const sig = (sigNames.length && !eqCell ? r[`sig.l${k}${sfx}`].data : new Float32Array(0)) as Float32Array;
  const nS = sigNames.length;
  const pick = (gate: number) => {
    const out = new Float32Array(T * H);
    for (let t = 0; t < T; t++) out.set(sig.subarray(row(t) * nS * H + gate * H, row(t) * nS * H + (gate + 1) * H), t * H);
    return out;
  };
  const rows = (d: Float32Array) => {
    if (direction === 'forward') return d;
    const out = new Float32Array(T * H);
    for (let t = 0; t < T; t++) out.set(d.subarray(row(t) * H, (row(t) + 1) * H), t * H);
    return out;
  };
  const values: Partial<Record<GateName, Float32Array>> = {};
  if (!eqCell) sigNames.forEach((n, j) => (values[n] = pick(j)));
  for (const n of names) values[n] ??= rows(r[eqCell && n !== 'h' ? `eq.${n}.l${k}${sfx}` : `${n}.l${k}${sfx}`].data as Float32Array);
  const range = (n: GateName): [number, number] => cell.ranges?.[n] ?? HIST_RANGES[n as BuiltinGateName];
  return {
    layer: k,
    direction,
    units: H,
    cell: cell.kind,
    gates: [...names],
    ...(eqCell ? { sigmoid: [...sigNames], ranges: Object.fromEntries(names.map((n) => [n, range(n)])), formulas: cell.formulas } : {}),
    values: Object.fromEntries(names.map((n) => [n, Array.from(values[n]!, round)])),
    saturation: Object.fromEntries(sigNames.map((n) => [n, saturation(values[n]!, T, H)])),
    histograms: Object.fromEntries(names.map((n) => [n, histogram(values[n]!, ...range(n), HIST_BINS)])),
  };
}

/** Forward of one sequence of T tokens; outputs gates per layer and next-token probabilities. */
export function buildProbeProgram(lm: LmSpec, T: number): Graph {
  const g = new Graph('gatelab_probe');
  const op = new Ops(g);
  const params = lmParams(lm);
  const pIn = params.map((p) => g.input(`p.${p.name}`, lm.dtype, p.shape));
  const x = g.input('x', 'int64', [T, 1]);
  const P = Object.fromEntries(params.map((p, i) => [p.name, pIn[i]]));
  const zeros = (H: number) => g.const(new Array(H).fill(0), lm.dtype, [1, H]);
  const fwd = lmForward(g, lm, P, x, lm.hidden.map((H, k) => (cellDef(lm.gates?.[k]).hasCellState ? { h0: zeros(H), c0: zeros(H) } : { h0: zeros(H) })));
  fwd.layers.forEach((l, k) => outputLayer(g, l, k, T, lm.hidden[k]));
  g.output(op.Softmax(fwd.logits, 1), 'probs');
  return g;
}

const round = (v: number) => Math.round(v * 1e4) / 1e4;

/** Per-unit fraction of steps below 0.1 and above 0.9 (left / right saturation). */
export function saturation(values: ArrayLike<number>, T: number, H: number): { low: number[]; high: number[] } {
  const low = new Array(H).fill(0);
  const high = new Array(H).fill(0);
  for (let t = 0; t < T; t++)
    for (let u = 0; u < H; u++) {
      const v = values[t * H + u];
      if (v < 0.1) low[u]++;
      else if (v > 0.9) high[u]++;
    }
  return { low: low.map((n) => round(n / T)), high: high.map((n) => round(n / T)) };
}

/** Counts of values in `bins` equal bins over [lo, hi] (values outside go to the end bins). */
export function histogram(values: ArrayLike<number>, lo: number, hi: number, bins: number): number[] {
  const out = new Array(bins).fill(0);
  const w = (hi - lo) / bins;
  for (let i = 0; i < values.length; i++) {
    const b = Math.min(bins - 1, Math.max(0, Math.floor((values[i] - lo) / w)));
    out[b]++;
  }
  return out;
}

export const HIST_RANGES: Record<BuiltinGateName, [number, number]> = {
  i: [0, 1],
  f: [0, 1],
  o: [0, 1],
  g: [-1, 1],
  c: [-3, 3],
  h: [-1, 1],
  r: [0, 1],
  z: [0, 1],
  n: [-1, 1],
};
export const HIST_BINS = 20;

/** Runs a probe and packs the result as a protocol message. */
export class GateProbe {
  private sessions = new Map<number, ort.InferenceSession>();
  constructor(
    private readonly lm: LmSpec,
    private readonly vocab: readonly string[],
    private readonly options: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], logSeverityLevel: 3 },
  ) {}

  private async session(T: number): Promise<ort.InferenceSession> {
    let s = this.sessions.get(T);
    if (!s) {
      s = await ort.InferenceSession.create(buildProbeProgram(this.lm, T).encode(), this.options);
      this.sessions.set(T, s);
    }
    return s;
  }

  /** @param params feeds `p.<name>` (tensors of the current weights) */
  async run(params: Record<string, ort.Tensor>, ids: number[], step: number, topK = 5): Promise<GatesMessage> {
    const T = ids.length;
    const s = await this.session(T);
    const r = await s.run({ ...params, x: new ort.Tensor('int64', BigInt64Array.from(ids, (v) => BigInt(v)), [T, 1]) });
    const layers: GateLayer[] = this.lm.hidden.map((H, k) => packLayer(r, k, T, H, this.lm.gates?.[k]));
    const probs = r.probs.data as Float32Array;
    const V = this.vocab.length;
    const top = ids.map((_, t) => {
      const row = Array.from(probs.subarray(t * V, (t + 1) * V), (p, i) => [p, i] as const);
      row.sort((a, b) => b[0] - a[0]);
      return row.slice(0, topK).map(([p, i]) => ({ token: this.vocab[i], p: round(p) }));
    });
    return { type: 'gates', step, tokens: ids.map((i) => this.vocab[i]), layers, top };
  }

  async release(): Promise<void> {
    for (const s of this.sessions.values()) await s.release().catch(() => undefined);
    this.sessions.clear();
  }
}

// ---- the other tasks: gates of one chosen example ------------------------------------------------

export type SeqInput = { type: 'dense'; features: number } | { type: 'tokens'; vocab: number; embedding: number };

/**
 * The recurrent layers only, for one example: x [T, 1, F] (dense) or [T, 1] (tokens); a bidirectional
 * layer outputs both directions (see outputLayer).
 */
export function buildSeqProbeProgram(input: SeqInput, hidden: number[], gates: LmSpec['gates'], T: number, bidirectional?: boolean[]): Graph {
  const g = new Graph('gatelab_seq_probe');
  const op = new Ops(g);
  const dt = 'float32' as const;
  const P: Record<string, ReturnType<Graph['input']>> = {};
  const param = (name: string, shape: number[]) => (P[name] = g.input(`p.${name}`, dt, shape));
  let inSize = input.type === 'dense' ? input.features : input.embedding > 0 ? input.embedding : input.vocab;
  if (input.type === 'tokens' && input.embedding > 0) param('embedding.weight', [input.vocab, input.embedding]);
  hidden.forEach((H, k) => {
    const dirs = directionsOf(bidirectional?.[k]);
    for (const sfx of dirs.map((d) => DIRECTION_SUFFIX[d])) for (const p of cellDef(gates?.[k]).params(k, H, inSize, sfx, gates?.[k])) param(p.name, p.shape);
    inSize = H * dirs.length;
  });
  const x = input.type === 'dense' ? g.input('x', dt, [T, 1, input.features]) : g.input('x', 'int64', [T, 1]);
  let inp = x;
  hidden.forEach((H, k) => {
    // one direction over its input in reading order (ids or states)
    const direction = (src0: typeof inp, sfx: string): LayerForward => {
      const one = k === 0 && input.type === 'tokens' && input.embedding === 0;
      const src = k === 0 && input.type === 'tokens' && input.embedding > 0 ? op.Gather(P['embedding.weight'], src0, 0) : src0;
      const zeros = g.const(new Array(H).fill(0), dt, [1, H]);
      const l = cellDef(gates?.[k]).layer(g, P, k, one ? { ids: src0 } : { x: src }, { h0: zeros, c0: zeros }, gates?.[k], sfx);
      outputLayer(g, l, k, T, H, sfx);
      return l;
    };
    inp = runDirections(g, inp, null, bidirectional?.[k], direction).hs;
  });
  return g;
}

/** Gate snapshots of one example for classification, forecast and adding models. */
export class SeqGateProbe {
  private session?: ort.InferenceSession;
  private readonly names: string[];
  constructor(
    private readonly input: SeqInput,
    private readonly hidden: number[],
    private readonly gates: LmSpec['gates'],
    /** the example: dense values [T·F] or token ids [T] */
    private readonly x: Float32Array | BigInt64Array,
    /** what each step shows under the heatmaps */
    private readonly labels: string[],
    /** per layer: a forward and a reverse direction (both are reported) */
    private readonly bidirectional?: boolean[],
    /** numeric inputs: the channels drawn as lines above the heatmaps */
    private readonly signals?: GatesMessage['signals'],
  ) {
    const T = labels.length;
    this.names = [];
    if (input.type === 'tokens' && input.embedding > 0) this.names.push('embedding.weight');
    hidden.forEach((H, k) => {
      for (const sfx of directionsOf(bidirectional?.[k]).map((d) => DIRECTION_SUFFIX[d])) this.names.push(...cellDef(gates?.[k]).params(k, H, 0, sfx, gates?.[k]).map((p) => p.name));
    });
    void T;
  }

  async run(params: Record<string, ort.Tensor>, step: number): Promise<GatesMessage> {
    const T = this.labels.length;
    this.session ??= await ort.InferenceSession.create(buildSeqProbeProgram(this.input, this.hidden, this.gates, T, this.bidirectional).encode(), { executionProviders: ['cpu'], logSeverityLevel: 3 });
    const feeds: Record<string, ort.Tensor> = {};
    for (const n of this.names) feeds[`p.${n}`] = params[`p.${n}`];
    feeds.x = this.input.type === 'dense' ? new ort.Tensor('float32', this.x as Float32Array, [T, 1, this.input.features]) : new ort.Tensor('int64', this.x as BigInt64Array, [T, 1]);
    const r = await this.session.run(feeds);
    // per layer and direction
    const layers: GateLayer[] = this.hidden.flatMap((H, k) => directionsOf(this.bidirectional?.[k]).map((d) => packLayer(r, k, T, H, this.gates?.[k], d)));
    return { type: 'gates', step, tokens: this.labels, layers, top: [], editable: false, ...(this.signals ? { signals: this.signals } : {}) };
  }

  async release(): Promise<void> {
    await this.session?.release().catch(() => undefined);
  }
}
