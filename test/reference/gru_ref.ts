// A plain float64 reference of Gatelab's GRU language model, beside the LSTM's (./lstm_ref.ts): loops
// over Float64Arrays, no ONNX, no autodiff. The generated ONNX graphs are tested against it, and it is
// itself tested against central finite differences and PyTorch golden values (test/unit/gru.test.ts).
//
// Parameters carry PyTorch's names, shapes and gate order (r, z, n), which is also the engine's.
//
// Model: tokens → one-hot (embedding 0) or embedding.weight row → L stacked GRU layers → fc →
// softmax cross-entropy, mean over all T·B positions.
//
// Per layer k and step t (PyTorch's nn.GRU), with xw = W_ih·x_t + b_ih and hw = W_hh·h_{t−1} + b_hh,
// each [xw_r; xw_z; xw_n] H long:
//   r = σ(xw_r + hw_r)   z = σ(xw_z + hw_z)   n = tanh(xw_n + r ⊙ hw_n)
//   h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}
//
// Backward (BPTT), per layer from the top down and t = T−1 … 0, with dh = dh_out(t) + dh_next:
//   dn = dh ⊙ (1 − z)          dz = dh ⊙ (h_{t−1} − n)
//   dpre_n = dn ⊙ (1 − n²)     dr = dpre_n ⊙ hw_n
//   dxw = [dr·r(1−r); dz·z(1−z); dpre_n]        dhw = [dr·r(1−r); dz·z(1−z); dpre_n ⊙ r]
//   dW_ih += dxw ⊗ x_t   db_ih += dxw   dW_hh += dhw ⊗ h_{t−1}   db_hh += dhw
//   dx_t = W_ihᵀ·dxw     dh_next ← W_hhᵀ·dhw + dh ⊙ z
// and at the end dh0 = dh_next.

import type { Tokens } from './lstm_ref';

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

export interface GruRefSpec {
  vocab: number;
  /** 0 = one-hot input */
  embedding: number;
  hidden: number[];
}

export interface RefTensor {
  shape: number[];
  data: Float64Array;
}
export type GruRefParams = Record<string, RefTensor>;

interface LayerCache {
  H: number;
  I: number;
  /** [T, B, I] */
  input: Float64Array;
  /** [T, B, 3H] r, z, n as activated */
  gates: Float64Array;
  /** [T, B, H] hw_n = (W_hh·h_{t−1} + b_hh)_n */
  hwn: Float64Array;
  /** [T+1, B, H] h_0 … h_T */
  h: Float64Array;
}

export interface GruRefForward {
  T: number;
  B: number;
  x: Tokens;
  y: Tokens;
  loss: number;
  /** [N, V] softmax of the logits, row n = t·B + b */
  probs: Float64Array;
  /** final state per layer */
  hT: Float64Array[];
  /** per layer [T, B, 3H] r, z, n */
  gates: Float64Array[];
  layers: LayerCache[];
}

export interface GruRefGrads {
  params: Record<string, Float64Array>;
  h0: Float64Array[];
}

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

/** Parameter names and shapes in the engine's order (lmParams with GRU layers). */
export function gruParamShapes(spec: GruRefSpec): { name: string; shape: number[] }[] {
  const out: { name: string; shape: number[] }[] = [];
  if (spec.embedding > 0) out.push({ name: 'embedding.weight', shape: [spec.vocab, spec.embedding] });
  let I = spec.embedding > 0 ? spec.embedding : spec.vocab;
  spec.hidden.forEach((H, k) => {
    out.push({ name: `gru.weight_ih_l${k}`, shape: [3 * H, I] });
    out.push({ name: `gru.weight_hh_l${k}`, shape: [3 * H, H] });
    out.push({ name: `gru.bias_ih_l${k}`, shape: [3 * H] });
    out.push({ name: `gru.bias_hh_l${k}`, shape: [3 * H] });
    I = H;
  });
  const Hl = spec.hidden[spec.hidden.length - 1];
  out.push({ name: 'fc.weight', shape: [spec.vocab, Hl] });
  out.push({ name: 'fc.bias', shape: [spec.vocab] });
  return out;
}

/** Random parameters, uniform in ±k (1/√H as PyTorch; embedding ±1); `gruScale` multiplies the GRU's. */
export function randomGruParams(spec: GruRefSpec, rng: () => number, gruScale = 1): GruRefParams {
  const p: GruRefParams = {};
  const Hl = spec.hidden[spec.hidden.length - 1];
  for (const { name, shape } of gruParamShapes(spec)) {
    const k = name.startsWith('gru.') ? gruScale / Math.sqrt(shape[0] / 3) : name.startsWith('fc.') ? 1 / Math.sqrt(Hl) : 1;
    p[name] = { shape, data: Float64Array.from({ length: numel(shape) }, () => (2 * rng() - 1) * k) };
  }
  return p;
}

/** Forward pass and loss. x, y time-major [T][B]; h0 per layer [B, H] (default zeros). */
export function gruLmForward(p: GruRefParams, spec: GruRefSpec, x: Tokens, y: Tokens, h0?: Float64Array[]): GruRefForward {
  const T = x.length;
  const B = x[0].length;
  const V = spec.vocab;
  let I = spec.embedding > 0 ? spec.embedding : V;
  let input = new Float64Array(T * B * I);
  for (let t = 0; t < T; t++)
    for (let b = 0; b < B; b++) {
      const row = (t * B + b) * I;
      if (spec.embedding > 0) input.set(p['embedding.weight'].data.subarray(x[t][b] * I, (x[t][b] + 1) * I), row);
      else input[row + x[t][b]] = 1;
    }

  const layers: LayerCache[] = [];
  spec.hidden.forEach((H, k) => {
    const Wih = p[`gru.weight_ih_l${k}`].data;
    const Whh = p[`gru.weight_hh_l${k}`].data;
    const bih = p[`gru.bias_ih_l${k}`].data;
    const bhh = p[`gru.bias_hh_l${k}`].data;
    const G = 3 * H;
    const gates = new Float64Array(T * B * G);
    const hwn = new Float64Array(T * B * H);
    const h = new Float64Array((T + 1) * B * H);
    if (h0) h.set(h0[k], 0);
    const xw = new Float64Array(G);
    const hw = new Float64Array(G);
    for (let t = 0; t < T; t++)
      for (let b = 0; b < B; b++) {
        const xo = (t * B + b) * I;
        const hp = (t * B + b) * H; // h_{t−1}
        const hn = ((t + 1) * B + b) * H; // h_t
        const go = (t * B + b) * G;
        for (let r = 0; r < G; r++) {
          let s = bih[r];
          for (let i = 0; i < I; i++) s += Wih[r * I + i] * input[xo + i];
          xw[r] = s;
          let u = bhh[r];
          for (let j = 0; j < H; j++) u += Whh[r * H + j] * h[hp + j];
          hw[r] = u;
        }
        for (let j = 0; j < H; j++) {
          const rg = sigmoid(xw[j] + hw[j]);
          const zg = sigmoid(xw[H + j] + hw[H + j]);
          const ng = Math.tanh(xw[2 * H + j] + rg * hw[2 * H + j]);
          gates[go + j] = rg;
          gates[go + H + j] = zg;
          gates[go + 2 * H + j] = ng;
          hwn[(t * B + b) * H + j] = hw[2 * H + j];
          h[hn + j] = (1 - zg) * ng + zg * h[hp + j];
        }
      }
    layers.push({ H, I, input, gates, hwn, h });
    input = h.slice(B * H);
    I = H;
  });

  const top = layers[layers.length - 1];
  const Hl = top.H;
  const hs = top.h.subarray(B * Hl);
  const W = p['fc.weight'].data;
  const bias = p['fc.bias'].data;
  const N = T * B;
  const probs = new Float64Array(N * V);
  const logits = new Float64Array(V);
  let total = 0;
  for (let n = 0; n < N; n++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) {
      let s = bias[v];
      for (let j = 0; j < Hl; j++) s += W[v * Hl + j] * hs[n * Hl + j];
      logits[v] = s;
      max = Math.max(max, s);
    }
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[v] - max);
    const lse = max + Math.log(sum);
    for (let v = 0; v < V; v++) probs[n * V + v] = Math.exp(logits[v] - lse);
    total += lse - logits[y[Math.floor(n / B)][n % B]];
  }
  return {
    T,
    B,
    x,
    y,
    loss: total / N,
    probs,
    hT: layers.map((l) => l.h.slice(T * B * l.H)),
    gates: layers.map((l) => l.gates),
    layers,
  };
}

/** Gradients of the loss with respect to every parameter and the initial state (hand-written BPTT). */
export function gruLmBackward(p: GruRefParams, spec: GruRefSpec, fwd: GruRefForward): GruRefGrads {
  const { T, B, x, y, layers } = fwd;
  const V = spec.vocab;
  const N = T * B;
  const grads: Record<string, Float64Array> = {};
  for (const { name, shape } of gruParamShapes(spec)) grads[name] = new Float64Array(numel(shape));

  const dlogits = Float64Array.from(fwd.probs);
  for (let n = 0; n < N; n++) dlogits[n * V + y[Math.floor(n / B)][n % B]] -= 1;
  for (let i = 0; i < dlogits.length; i++) dlogits[i] /= N;

  const top = layers[layers.length - 1];
  const Hl = top.H;
  const hs = top.h.subarray(B * Hl);
  const W = p['fc.weight'].data;
  let dout = new Float64Array(N * Hl);
  for (let n = 0; n < N; n++)
    for (let v = 0; v < V; v++) {
      const d = dlogits[n * V + v];
      grads['fc.bias'][v] += d;
      for (let j = 0; j < Hl; j++) {
        grads['fc.weight'][v * Hl + j] += d * hs[n * Hl + j];
        dout[n * Hl + j] += d * W[v * Hl + j];
      }
    }

  const dh0: Float64Array[] = new Array(layers.length);
  for (let k = layers.length - 1; k >= 0; k--) {
    const { H, I, input, gates, hwn, h } = layers[k];
    const G = 3 * H;
    const Wih = p[`gru.weight_ih_l${k}`].data;
    const Whh = p[`gru.weight_hh_l${k}`].data;
    const dWih = grads[`gru.weight_ih_l${k}`];
    const dWhh = grads[`gru.weight_hh_l${k}`];
    const dbih = grads[`gru.bias_ih_l${k}`];
    const dbhh = grads[`gru.bias_hh_l${k}`];
    const dinput = new Float64Array(T * B * I);
    const dhNext = new Float64Array(B * H);
    const dxw = new Float64Array(G);
    const dhw = new Float64Array(G);
    for (let t = T - 1; t >= 0; t--)
      for (let b = 0; b < B; b++) {
        const hp = (t * B + b) * H;
        const go = (t * B + b) * G;
        const xo = (t * B + b) * I;
        const dhCarry = new Float64Array(H); // dh ⊙ z, the direct path to h_{t−1}
        for (let j = 0; j < H; j++) {
          const rg = gates[go + j];
          const zg = gates[go + H + j];
          const ng = gates[go + 2 * H + j];
          const dh = dout[(t * B + b) * H + j] + dhNext[b * H + j];
          const dn = dh * (1 - zg);
          const dz = dh * (h[hp + j] - ng);
          const dpn = dn * (1 - ng * ng);
          const dr = dpn * hwn[(t * B + b) * H + j];
          dxw[j] = dhw[j] = dr * rg * (1 - rg);
          dxw[H + j] = dhw[H + j] = dz * zg * (1 - zg);
          dxw[2 * H + j] = dpn;
          dhw[2 * H + j] = dpn * rg;
          dhCarry[j] = dh * zg;
        }
        dhNext.set(dhCarry, b * H);
        for (let r = 0; r < G; r++) {
          dbih[r] += dxw[r];
          dbhh[r] += dhw[r];
          for (let i = 0; i < I; i++) {
            dWih[r * I + i] += dxw[r] * input[xo + i];
            dinput[xo + i] += dxw[r] * Wih[r * I + i];
          }
          for (let j = 0; j < H; j++) {
            dWhh[r * H + j] += dhw[r] * h[hp + j];
            dhNext[b * H + j] += dhw[r] * Whh[r * H + j];
          }
        }
      }
    dh0[k] = dhNext;
    dout = dinput;
  }
  if (spec.embedding > 0) {
    const E = spec.embedding;
    const dE = grads['embedding.weight'];
    for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) for (let e = 0; e < E; e++) dE[x[t][b] * E + e] += dout[(t * B + b) * E + e];
  }
  return { params: grads, h0: dh0 };
}
