// A plain float64 reference of Gatelab's classification and forecast models with what lstm_ref.ts
// leaves out: bidirectional layers over padded sequences, dropout with given masks, and the cell
// variants (peepholes, coupled gates, hard-sigmoid gates, cell clipping, also together). Loops over
// Float64Arrays, no ONNX; forward only (its gradients are central finite differences of `loss`).
// It is written from the definitions, not from the engine's graph:
//
//  - every sequence b has a length len_b (forecast: T); a direction reads only the real steps: the
//    forward one t = 0 … len−1, the reverse one t = len−1 … 0, each from a zero state, with its own
//    parameters (PyTorch's `…_reverse` names). Outputs at padded steps are 0 (as PyTorch's
//    pad_packed_sequence) and never reach the loss;
//  - a layer's output at step t is [h_fwd(t), h_bwd(t)]; with dropout it is multiplied by the mask of
//    that layer (every layer but the last), and the head's input by the head mask;
//  - the cell (PyTorch gate order i, f, g, o; peepholes [3, H] as i, f, o; the ONNX operator's
//    equations for peepholes and clip, which applies to each activation's whole input):
//      z = W_ih·x + b_ih + W_hh·h + b_hh
//      z_i += p_i ⊙ c_{t−1}; z_f += p_f ⊙ c_{t−1}; clip z_i, z_f, z_g to [−clip, clip]
//      i = act(z_i); f = 1 − i (coupled) or act(z_f); g = tanh(z_g); c = f ⊙ c_{t−1} + i ⊙ g
//      z_o += p_o ⊙ c; clip z_o; o = act(z_o); h = o ⊙ tanh(c)
//    with act = σ or the hard sigmoid max(0, min(1, α·x + β));
//  - a GRU layer (`gru: true`; PyTorch's nn.GRU, gate order r, z, n, names gru.*, bidirectional like
//    the LSTM's; `hard` applies to r and z):
//      xw = W_ih·x + b_ih; hw = W_hh·h + b_hh
//      r = act(xw_r + hw_r); z = act(xw_z + hw_z); n = tanh(xw_n + r ⊙ hw_n); h = (1 − z) ⊙ n + z ⊙ h_{t−1}
//  - classification: `last` = [h_fwd(len−1), h_bwd(0)] of the top layer, `mean` = the mean of its
//    outputs over the real steps; fc; cross-entropy, mean over the batch. Forecast: [h_fwd(T−1),
//    h_bwd(0)]; fc; mean squared error over every predicted value.
//
// Legend: T = time, B = batch, H = hidden of a direction, D = directions, I = layer input.

import { sigmoid } from './lstm_ref';

export interface CellRef {
  /** a GRU layer (only `hard` applies to it) */
  gru?: boolean;
  peepholes?: boolean;
  coupled?: boolean;
  hard?: { alpha: number; beta: number };
  clip?: number;
}

export interface SeqRefSpec {
  input: { kind: 'tokens'; vocab: number; embedding: number } | { kind: 'dense'; features: number };
  hidden: number[];
  bidirectional: boolean[];
  cells?: (CellRef | undefined)[];
  head: { kind: 'classify'; classes: number; pooling: 'last' | 'mean' } | { kind: 'forecast'; horizon: number };
}

export interface SeqBatch {
  T: number;
  B: number;
  /** tokens: ids [T·B] time-major; dense: values [T·B·F] time-major */
  x: number[];
  /** real lengths (all T for a forecast) */
  lens: number[];
  /** classes [B], or targets [B·N] */
  y: number[];
  /** dropout: per layer but the last [T·B·D·H] (time-major), and the head [B·D·H_L] */
  drop?: { layers: Float64Array[]; head: Float64Array };
}

/** Parameters by PyTorch name (gate order i, f, g, o; GRU layers r, z, n). */
export type SeqParams = Record<string, { shape: number[]; data: Float64Array }>;

const dirsOf = (bi: boolean) => (bi ? ['', '_reverse'] : ['']);

/** Names and shapes in the engine's order (classifyParams / forecastParams). */
export function seqParamShapes(spec: SeqRefSpec): { name: string; shape: number[] }[] {
  const out: { name: string; shape: number[] }[] = [];
  let I: number;
  if (spec.input.kind === 'tokens') {
    if (spec.input.embedding > 0) out.push({ name: 'embedding.weight', shape: [spec.input.vocab, spec.input.embedding] });
    I = spec.input.embedding > 0 ? spec.input.embedding : spec.input.vocab;
  } else I = spec.input.features;
  spec.hidden.forEach((H, k) => {
    for (const s of dirsOf(spec.bidirectional[k])) {
      if (spec.cells?.[k]?.gru) {
        out.push({ name: `gru.weight_ih_l${k}${s}`, shape: [3 * H, I] });
        out.push({ name: `gru.weight_hh_l${k}${s}`, shape: [3 * H, H] });
        out.push({ name: `gru.bias_ih_l${k}${s}`, shape: [3 * H] });
        out.push({ name: `gru.bias_hh_l${k}${s}`, shape: [3 * H] });
        continue;
      }
      out.push({ name: `lstm.weight_ih_l${k}${s}`, shape: [4 * H, I] });
      out.push({ name: `lstm.weight_hh_l${k}${s}`, shape: [4 * H, H] });
      out.push({ name: `lstm.bias_ih_l${k}${s}`, shape: [4 * H] });
      out.push({ name: `lstm.bias_hh_l${k}${s}`, shape: [4 * H] });
      if (spec.cells?.[k]?.peepholes) out.push({ name: `lstm.weight_peephole_l${k}${s}`, shape: [3, H] });
    }
    I = H * dirsOf(spec.bidirectional[k]).length;
  });
  const out_ = spec.head.kind === 'classify' ? spec.head.classes : spec.head.horizon;
  out.push({ name: 'fc.weight', shape: [out_, I] });
  out.push({ name: 'fc.bias', shape: [out_] });
  return out;
}

export interface SeqForward {
  loss: number;
  /** per layer and direction ('' or '_reverse'): h at each step [T·B·H] time-major (0 after len) */
  h: Record<string, Float64Array>[];
  /** the head's output [B·C] or [B·N] */
  out: Float64Array;
}

export function seqForward(p: SeqParams, spec: SeqRefSpec, batch: SeqBatch): SeqForward {
  const { T, B, lens } = batch;
  let I: number;
  let input: Float64Array; // [T, B, I]
  if (spec.input.kind === 'tokens') {
    const { vocab: V, embedding: E } = spec.input;
    I = E > 0 ? E : V;
    input = new Float64Array(T * B * I);
    for (let n = 0; n < T * B; n++) {
      const id = batch.x[n];
      if (E > 0) input.set(p['embedding.weight'].data.subarray(id * E, (id + 1) * E), n * I);
      else input[n * I + id] = 1;
    }
  } else {
    I = spec.input.features;
    input = Float64Array.from(batch.x);
  }
  const hs: Record<string, Float64Array>[] = [];
  const L = spec.hidden.length;
  spec.hidden.forEach((H, k) => {
    const dirs = dirsOf(spec.bidirectional[k]);
    const D = dirs.length;
    const cell = spec.cells?.[k] ?? {};
    // (the hard sigmoid's alpha and beta as float32: ONNX float attributes, as the runtime sees them)
    const [ha, hb] = cell.hard ? [Math.fround(cell.hard.alpha), Math.fround(cell.hard.beta)] : [0, 0];
    const act = (z: number) => (cell.hard ? Math.max(0, Math.min(1, ha * z + hb)) : sigmoid(z));
    const clip = (z: number) => (cell.clip ? Math.max(-cell.clip, Math.min(cell.clip, z)) : z);
    const output = new Float64Array(T * B * D * H);
    const layerH: Record<string, Float64Array> = {};
    dirs.forEach((s, d) => {
      if (cell.gru) {
        const hAll = new Float64Array(T * B * H);
        const Wih = p[`gru.weight_ih_l${k}${s}`].data;
        const Whh = p[`gru.weight_hh_l${k}${s}`].data;
        const bih = p[`gru.bias_ih_l${k}${s}`].data;
        const bhh = p[`gru.bias_hh_l${k}${s}`].data;
        for (let b = 0; b < B; b++) {
          let h = new Float64Array(H);
          for (let step = 0; step < lens[b]; step++) {
            const t = s === '' ? step : lens[b] - 1 - step;
            const x = input.subarray((t * B + b) * I, (t * B + b + 1) * I);
            const xw = new Float64Array(3 * H);
            const hw = new Float64Array(3 * H);
            for (let r = 0; r < 3 * H; r++) {
              let u = bih[r];
              for (let i = 0; i < I; i++) u += Wih[r * I + i] * x[i];
              xw[r] = u;
              let v = bhh[r];
              for (let j = 0; j < H; j++) v += Whh[r * H + j] * h[j];
              hw[r] = v;
            }
            const hn = new Float64Array(H);
            for (let j = 0; j < H; j++) {
              const rg = act(xw[j] + hw[j]);
              const zg = act(xw[H + j] + hw[H + j]);
              const ng = Math.tanh(xw[2 * H + j] + rg * hw[2 * H + j]);
              hn[j] = (1 - zg) * ng + zg * h[j];
            }
            h = hn;
            hAll.set(h, (t * B + b) * H);
            for (let j = 0; j < H; j++) output[(t * B + b) * D * H + d * H + j] = h[j];
          }
        }
        layerH[s] = hAll;
        return;
      }
      const Wih = p[`lstm.weight_ih_l${k}${s}`].data;
      const Whh = p[`lstm.weight_hh_l${k}${s}`].data;
      const bih = p[`lstm.bias_ih_l${k}${s}`].data;
      const bhh = p[`lstm.bias_hh_l${k}${s}`].data;
      const peep = cell.peepholes ? p[`lstm.weight_peephole_l${k}${s}`].data : null;
      const hAll = new Float64Array(T * B * H);
      for (let b = 0; b < B; b++) {
        let h = new Float64Array(H);
        let c = new Float64Array(H);
        for (let step = 0; step < lens[b]; step++) {
          const t = s === '' ? step : lens[b] - 1 - step;
          const x = input.subarray((t * B + b) * I, (t * B + b + 1) * I);
          const z = new Float64Array(4 * H);
          for (let r = 0; r < 4 * H; r++) {
            let v = bih[r] + bhh[r];
            for (let i = 0; i < I; i++) v += Wih[r * I + i] * x[i];
            for (let j = 0; j < H; j++) v += Whh[r * H + j] * h[j];
            z[r] = v;
          }
          const hn = new Float64Array(H);
          const cn = new Float64Array(H);
          for (let j = 0; j < H; j++) {
            const zi = clip(z[j] + (peep ? peep[j] * c[j] : 0));
            const zf = clip(z[H + j] + (peep ? peep[H + j] * c[j] : 0));
            const ig = act(zi);
            const fg = cell.coupled ? 1 - ig : act(zf);
            const gg = Math.tanh(clip(z[2 * H + j]));
            cn[j] = fg * c[j] + ig * gg;
            const og = act(clip(z[3 * H + j] + (peep ? peep[2 * H + j] * cn[j] : 0)));
            hn[j] = og * Math.tanh(cn[j]);
          }
          h = hn;
          c = cn;
          hAll.set(h, (t * B + b) * H);
          for (let j = 0; j < H; j++) output[(t * B + b) * D * H + d * H + j] = h[j];
        }
      }
      layerH[s] = hAll;
    });
    hs.push(layerH);
    if (batch.drop && k < L - 1) {
      const m = batch.drop.layers[k];
      for (let n = 0; n < output.length; n++) output[n] *= m[n];
    }
    input = output;
    I = D * H;
  });
  // the head's input [B, F]
  const Hl = spec.hidden[L - 1];
  const top = hs[L - 1];
  const F = I;
  const vec = new Float64Array(B * F);
  for (let b = 0; b < B; b++) {
    const last = spec.head.kind === 'classify' && spec.head.pooling === 'mean' ? -1 : lens[b] - 1;
    if (last >= 0) {
      vec.set(top[''].subarray((last * B + b) * Hl, (last * B + b + 1) * Hl), b * F);
      if (top._reverse) vec.set(top._reverse.subarray(b * Hl, (b + 1) * Hl), b * F + Hl); // step 0
    } else {
      for (let t = 0; t < lens[b]; t++) for (let f = 0; f < F; f++) vec[b * F + f] += input[(t * B + b) * F + f];
      for (let f = 0; f < F; f++) vec[b * F + f] /= lens[b];
    }
  }
  if (batch.drop) for (let n = 0; n < vec.length; n++) vec[n] *= batch.drop.head[n];
  const W = p['fc.weight'].data;
  const bias = p['fc.bias'].data;
  const O = bias.length;
  const out = new Float64Array(B * O);
  for (let b = 0; b < B; b++)
    for (let o = 0; o < O; o++) {
      let v = bias[o];
      for (let f = 0; f < F; f++) v += W[o * F + f] * vec[b * F + f];
      out[b * O + o] = v;
    }
  let loss = 0;
  if (spec.head.kind === 'classify') {
    for (let b = 0; b < B; b++) {
      const row = out.subarray(b * O, (b + 1) * O);
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
      loss += lse - row[batch.y[b]];
    }
    loss /= B;
  } else {
    for (let n = 0; n < B * O; n++) loss += (out[n] - batch.y[n]) ** 2;
    loss /= B * O;
  }
  return { loss, h: hs, out };
}
