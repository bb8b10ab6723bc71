// A plain float64 reference of Gatelab's language model: loops over Float64Arrays, no ONNX, no
// autodiff. It is the spec that the generated ONNX graphs are tested against, and it is itself
// tested against central finite differences (test/unit/reference.test.ts) and PyTorch golden values
// (test/unit/gradients.test.ts).
//
// Parameters carry PyTorch's names, shapes and gate order (i, f, g, o) — NOT the engine's internal
// order (i, f, o, g); see src/engine/train/checkpoint.ts for the conversion.
//
// Model: tokens → one-hot (embedding 0) or embedding.weight row → L stacked LSTM layers → fc →
// softmax cross-entropy, mean over all T·B positions (F.cross_entropy's default).
//
// Per layer k and step t (PyTorch's nn.LSTM):
//   z = W_ih·x_t + b_ih + W_hh·h_{t−1} + b_hh          rows of z: [z_i; z_f; z_g; z_o], each H long
//   i = σ(z_i)  f = σ(z_f)  g = tanh(z_g)  o = σ(z_o)
//   c_t = f ⊙ c_{t−1} + i ⊙ g                            h_t = o ⊙ tanh(c_t)
// Output, per position n = t·B + b (time-major, as the engine's [T·B, V] logits):
//   logits_n = fc.weight · h_top(t, b) + fc.bias        loss = (1/N) Σ_n −log softmax(logits_n)[y_n]
//
// Backward (BPTT), per layer from the top down and t = T−1 … 0, with dh/dc arriving from above
// (the layer's output gradient at t) and from step t+1:
//   dh    = dh_out(t) + dh_next
//   do    = dh ⊙ tanh(c_t)                dc = dc_next + dh ⊙ o ⊙ (1 − tanh²(c_t))
//   di    = dc ⊙ g    df = dc ⊙ c_{t−1}    dg = dc ⊙ i    dc_next ← dc ⊙ f
//   dz    = [di·i(1−i); df·f(1−f); dg·(1−g²); do·o(1−o)]
//   dW_ih += dz ⊗ x_t   dW_hh += dz ⊗ h_{t−1}   db_ih += dz   db_hh += dz
//   dx_t  = W_ihᵀ·dz (the output gradient of the layer below, or of the embedding row)
//   dh_next ← W_hhᵀ·dz
// and at the end dh0 = dh_next, dc0 = dc_next.
//
// Legend: T = time, B = batch, V = vocabulary, E = embedding, H = hidden, I = layer input, N = T·B.

export interface RefSpec {
  vocab: number;
  /** 0 = one-hot input */
  embedding: number;
  /** hidden size of each stacked layer */
  hidden: number[];
}

export interface RefTensor {
  shape: number[];
  data: Float64Array;
}

/** Parameters by PyTorch name (gate order i, f, g, o). */
export type RefParams = Record<string, RefTensor>;

/** Recurrent state per layer, each [B, H_k] row-major. */
export interface RefState {
  h: Float64Array[];
  c: Float64Array[];
}

/** Token ids, time-major: ids[t][b]. */
export type Tokens = number[][];

/** What one layer's forward keeps for the backward pass (all row-major, time-major). */
export interface LayerCache {
  H: number;
  I: number;
  /** [T, B, I] the layer's input (one-hot, embedding rows or the layer below's h) */
  input: Float64Array;
  /** [T, B, 4H] pre-activations z (PyTorch gate order) */
  pre: Float64Array;
  /** [T, B, 4H] activated gates i, f, g, o */
  gates: Float64Array;
  /** [T+1, B, H] h_0 … h_T (h_0 the initial state) */
  h: Float64Array;
  /** [T+1, B, H] c_0 … c_T */
  c: Float64Array;
}

export interface RefForward {
  T: number;
  B: number;
  x: Tokens;
  y: Tokens;
  loss: number;
  /** [N, V], row n = t·B + b */
  logits: Float64Array;
  /** [N, V] softmax of the logits */
  probs: Float64Array;
  /** final state per layer */
  hT: Float64Array[];
  cT: Float64Array[];
  /** per layer [T, B, 4H] activated gates (i, f, g, o) */
  gates: Float64Array[];
  layers: LayerCache[];
}

export interface RefGrads {
  /** ∂loss/∂param by PyTorch name */
  params: Record<string, Float64Array>;
  /** ∂loss/∂h0, ∂loss/∂c0 per layer */
  h0: Float64Array[];
  c0: Float64Array[];
}

export const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Parameter names and shapes in the engine's order (same as lmParams, without dtype). */
export function paramShapes(spec: RefSpec): { name: string; shape: number[] }[] {
  const out: { name: string; shape: number[] }[] = [];
  if (spec.embedding > 0) out.push({ name: 'embedding.weight', shape: [spec.vocab, spec.embedding] });
  let I = spec.embedding > 0 ? spec.embedding : spec.vocab;
  spec.hidden.forEach((H, k) => {
    out.push({ name: `lstm.weight_ih_l${k}`, shape: [4 * H, I] });
    out.push({ name: `lstm.weight_hh_l${k}`, shape: [4 * H, H] });
    out.push({ name: `lstm.bias_ih_l${k}`, shape: [4 * H] });
    out.push({ name: `lstm.bias_hh_l${k}`, shape: [4 * H] });
    I = H;
  });
  const Hl = spec.hidden[spec.hidden.length - 1];
  out.push({ name: 'fc.weight', shape: [spec.vocab, Hl] });
  out.push({ name: 'fc.bias', shape: [spec.vocab] });
  return out;
}

/**
 * Random parameters, uniform in ±k as PyTorch's defaults (k = 1/√H for the LSTM and fc; the
 * embedding uniform in ±1 instead of N(0, 1)). `lstmScale` multiplies the LSTM weights and biases
 * (large values saturate the gates).
 */
export function randomParams(spec: RefSpec, rng: () => number, lstmScale = 1): RefParams {
  const p: RefParams = {};
  const Hl = spec.hidden[spec.hidden.length - 1];
  for (const { name, shape } of paramShapes(spec)) {
    let k: number;
    if (name.startsWith('lstm.')) k = lstmScale / Math.sqrt(shape[0] / 4);
    else if (name.startsWith('fc.')) k = 1 / Math.sqrt(Hl);
    else k = 1;
    p[name] = { shape, data: Float64Array.from({ length: numel(shape) }, () => (2 * rng() - 1) * k) };
  }
  return p;
}

/** Random tokens, time-major [T][B]. */
export function randomTokens(T: number, B: number, V: number, rng: () => number): Tokens {
  return Array.from({ length: T }, () => Array.from({ length: B }, () => Math.floor(rng() * V)));
}

/** Zero state for every layer. */
export function zeroState(spec: RefSpec, B: number): RefState {
  return { h: spec.hidden.map((H) => new Float64Array(B * H)), c: spec.hidden.map((H) => new Float64Array(B * H)) };
}

/** Forward pass and loss. x, y time-major [T][B]; state defaults to zeros. */
export function lmForward(p: RefParams, spec: RefSpec, x: Tokens, y: Tokens, state?: RefState): RefForward {
  const T = x.length;
  const B = x[0].length;
  const V = spec.vocab;
  const s0 = state ?? zeroState(spec, B);

  // input of layer 0: one-hot rows or embedding rows, [T, B, I]
  let I = spec.embedding > 0 ? spec.embedding : V;
  let input = new Float64Array(T * B * I);
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      const row = (t * B + b) * I;
      if (spec.embedding > 0) input.set(p['embedding.weight'].data.subarray(x[t][b] * I, (x[t][b] + 1) * I), row);
      else input[row + x[t][b]] = 1;
    }
  }

  const layers: LayerCache[] = [];
  spec.hidden.forEach((H, k) => {
    const Wih = p[`lstm.weight_ih_l${k}`].data;
    const Whh = p[`lstm.weight_hh_l${k}`].data;
    const bih = p[`lstm.bias_ih_l${k}`].data;
    const bhh = p[`lstm.bias_hh_l${k}`].data;
    const G = 4 * H;
    const pre = new Float64Array(T * B * G);
    const gates = new Float64Array(T * B * G);
    const h = new Float64Array((T + 1) * B * H);
    const c = new Float64Array((T + 1) * B * H);
    h.set(s0.h[k], 0);
    c.set(s0.c[k], 0);
    for (let t = 0; t < T; t++) {
      for (let b = 0; b < B; b++) {
        const xo = (t * B + b) * I; // x_t row
        const hp = (t * B + b) * H; // h_{t−1}, c_{t−1} rows (slot t)
        const hn = ((t + 1) * B + b) * H; // h_t, c_t rows (slot t+1)
        const zo = (t * B + b) * G;
        for (let r = 0; r < G; r++) {
          let s = bih[r] + bhh[r];
          for (let i = 0; i < I; i++) s += Wih[r * I + i] * input[xo + i];
          for (let j = 0; j < H; j++) s += Whh[r * H + j] * h[hp + j];
          pre[zo + r] = s;
        }
        for (let j = 0; j < H; j++) {
          const ig = sigmoid(pre[zo + j]);
          const fg = sigmoid(pre[zo + H + j]);
          const gg = Math.tanh(pre[zo + 2 * H + j]);
          const og = sigmoid(pre[zo + 3 * H + j]);
          gates[zo + j] = ig;
          gates[zo + H + j] = fg;
          gates[zo + 2 * H + j] = gg;
          gates[zo + 3 * H + j] = og;
          c[hn + j] = fg * c[hp + j] + ig * gg;
          h[hn + j] = og * Math.tanh(c[hn + j]);
        }
      }
    }
    layers.push({ H, I, input, pre, gates, h, c });
    // the next layer's input is h_1 … h_T
    input = h.slice(B * H);
    I = H;
  });

  // output layer and loss
  const top = layers[layers.length - 1];
  const Hl = top.H;
  const hs = top.h.subarray(B * Hl); // [T, B, H] = [N, H]
  const W = p['fc.weight'].data;
  const bias = p['fc.bias'].data;
  const N = T * B;
  const logits = new Float64Array(N * V);
  const probs = new Float64Array(N * V);
  let total = 0;
  for (let n = 0; n < N; n++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) {
      let s = bias[v];
      for (let j = 0; j < Hl; j++) s += W[v * Hl + j] * hs[n * Hl + j];
      logits[n * V + v] = s;
      max = Math.max(max, s);
    }
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[n * V + v] - max);
    const lse = max + Math.log(sum);
    for (let v = 0; v < V; v++) probs[n * V + v] = Math.exp(logits[n * V + v] - lse);
    const target = y[Math.floor(n / B)][n % B];
    total += lse - logits[n * V + target];
  }

  return {
    T,
    B,
    x,
    y,
    loss: total / N,
    logits,
    probs,
    hT: layers.map((l) => l.h.slice(T * B * l.H)),
    cT: layers.map((l) => l.c.slice(T * B * l.H)),
    gates: layers.map((l) => l.gates),
    layers,
  };
}

/** Gradients of the loss with respect to every parameter and the initial state (hand-written BPTT). */
export function lmBackward(p: RefParams, spec: RefSpec, fwd: RefForward): RefGrads {
  const { T, B, x, y, layers } = fwd;
  const V = spec.vocab;
  const N = T * B;
  const grads: Record<string, Float64Array> = {};
  for (const { name, shape } of paramShapes(spec)) grads[name] = new Float64Array(numel(shape));

  // softmax cross-entropy, mean: dlogits = (softmax − onehot(y)) / N
  const dlogits = Float64Array.from(fwd.probs);
  for (let n = 0; n < N; n++) dlogits[n * V + y[Math.floor(n / B)][n % B]] -= 1;
  for (let i = 0; i < dlogits.length; i++) dlogits[i] /= N;

  // fc: logits = W·h + b
  const top = layers[layers.length - 1];
  const Hl = top.H;
  const hs = top.h.subarray(B * Hl);
  const W = p['fc.weight'].data;
  const dW = grads['fc.weight'];
  const db = grads['fc.bias'];
  let dout = new Float64Array(N * Hl); // ∂loss/∂h_t of the top layer, [T, B, H]
  for (let n = 0; n < N; n++) {
    for (let v = 0; v < V; v++) {
      const d = dlogits[n * V + v];
      db[v] += d;
      for (let j = 0; j < Hl; j++) {
        dW[v * Hl + j] += d * hs[n * Hl + j];
        dout[n * Hl + j] += d * W[v * Hl + j];
      }
    }
  }

  const dh0: Float64Array[] = new Array(layers.length);
  const dc0: Float64Array[] = new Array(layers.length);
  for (let k = layers.length - 1; k >= 0; k--) {
    const { H, I, input, gates, h, c } = layers[k];
    const G = 4 * H;
    const Wih = p[`lstm.weight_ih_l${k}`].data;
    const Whh = p[`lstm.weight_hh_l${k}`].data;
    const dWih = grads[`lstm.weight_ih_l${k}`];
    const dWhh = grads[`lstm.weight_hh_l${k}`];
    const dbih = grads[`lstm.bias_ih_l${k}`];
    const dbhh = grads[`lstm.bias_hh_l${k}`];
    const dinput = new Float64Array(T * B * I);
    const dhNext = new Float64Array(B * H);
    const dcNext = new Float64Array(B * H);
    const dz = new Float64Array(G);
    for (let t = T - 1; t >= 0; t--) {
      for (let b = 0; b < B; b++) {
        const hp = (t * B + b) * H; // slot t: h_{t−1}, c_{t−1}
        const hn = ((t + 1) * B + b) * H; // slot t+1: h_t, c_t
        const zo = (t * B + b) * G;
        const xo = (t * B + b) * I;
        for (let j = 0; j < H; j++) {
          const ig = gates[zo + j];
          const fg = gates[zo + H + j];
          const gg = gates[zo + 2 * H + j];
          const og = gates[zo + 3 * H + j];
          const tc = Math.tanh(c[hn + j]);
          const dh = dout[(t * B + b) * H + j] + dhNext[b * H + j];
          const dO = dh * tc;
          const dc = dcNext[b * H + j] + dh * og * (1 - tc * tc);
          const dI = dc * gg;
          const dF = dc * c[hp + j];
          const dG = dc * ig;
          dcNext[b * H + j] = dc * fg; // → ∂loss/∂c_{t−1}
          dz[j] = dI * ig * (1 - ig);
          dz[H + j] = dF * fg * (1 - fg);
          dz[2 * H + j] = dG * (1 - gg * gg);
          dz[3 * H + j] = dO * og * (1 - og);
        }
        dhNext.fill(0, b * H, (b + 1) * H);
        for (let r = 0; r < G; r++) {
          const d = dz[r];
          dbih[r] += d;
          dbhh[r] += d;
          for (let i = 0; i < I; i++) {
            dWih[r * I + i] += d * input[xo + i];
            dinput[xo + i] += d * Wih[r * I + i];
          }
          for (let j = 0; j < H; j++) {
            dWhh[r * H + j] += d * h[hp + j];
            dhNext[b * H + j] += d * Whh[r * H + j]; // → ∂loss/∂h_{t−1}
          }
        }
      }
    }
    dh0[k] = dhNext;
    dc0[k] = dcNext;
    dout = dinput; // the layer below's output gradient
  }

  if (spec.embedding > 0) {
    const E = spec.embedding;
    const dE = grads['embedding.weight'];
    for (let t = 0; t < T; t++)
      for (let b = 0; b < B; b++) for (let e = 0; e < E; e++) dE[x[t][b] * E + e] += dout[(t * B + b) * E + e];
  }
  return { params: grads, h0: dh0, c0: dc0 };
}

/**
 * Central finite differences (f(x + ε) − f(x − ε)) / 2ε of f with respect to elements of `data`
 * (all, or `indices`), perturbing `data` in place and restoring it. Entries not in `indices` are NaN.
 */
export function finiteDifference(f: () => number, data: Float64Array, eps = 1e-6, indices?: Iterable<number>): Float64Array {
  const out = new Float64Array(data.length).fill(indices ? NaN : 0);
  for (const i of indices ?? data.keys()) {
    const old = data[i];
    data[i] = old + eps;
    const up = f();
    data[i] = old - eps;
    const down = f();
    data[i] = old;
    out[i] = (up - down) / (2 * eps);
  }
  return out;
}

export interface Comparison {
  /** max |a − b| */
  maxAbs: number;
  /** max |a − b| / |b| over entries with b ≠ 0 (or a ≠ b = 0: Infinity) */
  maxRel: number;
  /** where maxAbs is reached, and the values there */
  at: number;
  got: number;
  want: number;
}

/** Max absolute and relative error of a against b (entries where b is NaN are skipped). */
export function compare(a: ArrayLike<number>, b: ArrayLike<number>): Comparison {
  if (a.length !== b.length) throw new Error(`compare: lengths ${a.length} and ${b.length}`);
  let maxAbs = 0;
  let maxRel = 0;
  let at = -1;
  for (let i = 0; i < b.length; i++) {
    if (Number.isNaN(b[i])) continue;
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= maxAbs)) {
      maxAbs = d; // (NaN in a lands here too)
      at = i;
    }
    const r = d === 0 ? 0 : d / Math.abs(b[i]);
    if (!(r <= maxRel)) maxRel = r;
  }
  return { maxAbs, maxRel, at, got: at >= 0 ? a[at] : NaN, want: at >= 0 ? b[at] : NaN };
}

/**
 * Worst error of a against b relative to max(|b_i|, floor, floorFrac·max|b|): the tests' criterion
 * "|a − b| ≤ tol·max(|b|, scale)". Returns the worst ratio (compare it to tol) and where it is.
 */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>, o: { floorFrac?: number; floor?: number } = {}) {
  if (a.length !== b.length) throw new Error(`relError: lengths ${a.length} and ${b.length}`);
  let scale = 0;
  for (let i = 0; i < b.length; i++) if (!Number.isNaN(b[i])) scale = Math.max(scale, Math.abs(b[i]));
  const denomFloor = Math.max(o.floor ?? 0, (o.floorFrac ?? 0) * scale);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < b.length; i++) {
    if (Number.isNaN(b[i])) continue;
    const d = Math.abs(a[i] - b[i]);
    const r = d === 0 ? 0 : d / Math.max(Math.abs(b[i]), denomFloor);
    if (!(r <= worst)) {
      worst = r;
      at = i;
    }
  }
  return { worst, at, got: at >= 0 ? a[at] : NaN, want: at >= 0 ? b[at] : NaN, scale };
}

/** Deterministic uniform [0, 1) (Park–Miller minimal standard), so cases need no library. */
export function lcg(seed: number): () => number {
  let s = seed % 2147483647 || 1;
  return () => {
    s = (s * 16807) % 2147483647;
    return (s - 1) / 2147483646;
  };
}

/** [B][T] (batch-major, as the golden fixtures store tokens) → [T][B]. */
export function transposeTokens(m: number[][]): Tokens {
  return Array.from({ length: m[0].length }, (_, t) => m.map((row) => row[t]));
}
