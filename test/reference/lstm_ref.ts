// A plain float64 reference of Gatelab's language model, written from the equations with loops and
// no ONNX, in PyTorch's names and gate order (i, f, g, o). It is the spec the generated graphs are
// checked against (with central finite differences for gradients).
//
//   i = σ(W_ii x + b_ii + W_hi h + b_hi)     f = σ(W_if x + b_if + W_hf h + b_hf)
//   g = tanh(W_ig x + b_ig + W_hg h + b_hg)  o = σ(W_io x + b_io + W_ho h + b_ho)
//   c' = f ⊙ c + i ⊙ g                        h' = o ⊙ tanh(c')
//   logits = fc.weight · h + fc.bias          loss = mean over positions of −log softmax(logits)[y]
//
// Legend: T = time, B = batch, V = vocabulary, E = embedding, H = hidden, 4H = gates.

export type RefParams = Record<string, { shape: number[]; data: Float64Array }>;

export interface RefSpec {
  vocab: number;
  embedding: number;
  hidden: number[];
}

export interface RefState {
  h: Float64Array[]; // per layer [B, H]
  c: Float64Array[];
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/**
 * Loss of one batch. x, y: [B][T] token ids. Returns the loss, the final state and the gates
 * (per layer, time-major [T][B][4H] after the nonlinearity, PyTorch order).
 */
export function refForward(p: RefParams, spec: RefSpec, x: number[][], y: number[][], state?: RefState) {
  const B = x.length;
  const T = x[0].length;
  const L = spec.hidden.length;
  // layer input sequence: [T][B] vectors
  let seq: Float64Array[][] = [];
  for (let t = 0; t < T; t++) {
    seq.push([]);
    for (let b = 0; b < B; b++) {
      if (spec.embedding > 0) {
        const E = spec.embedding;
        seq[t].push(p['embedding.weight'].data.slice(x[b][t] * E, (x[b][t] + 1) * E));
      } else {
        const v = new Float64Array(spec.vocab);
        v[x[b][t]] = 1;
        seq[t].push(v);
      }
    }
  }
  const hT: Float64Array[] = [];
  const cT: Float64Array[] = [];
  const gates: Float64Array[][][] = [];
  for (let k = 0; k < L; k++) {
    const H = spec.hidden[k];
    const Wih = p[`lstm.weight_ih_l${k}`].data;
    const Whh = p[`lstm.weight_hh_l${k}`].data;
    const bih = p[`lstm.bias_ih_l${k}`].data;
    const bhh = p[`lstm.bias_hh_l${k}`].data;
    const I = seq[0][0].length;
    const h = state ? Float64Array.from(state.h[k]) : new Float64Array(B * H);
    const c = state ? Float64Array.from(state.c[k]) : new Float64Array(B * H);
    const out: Float64Array[][] = [];
    const gk: Float64Array[][] = [];
    for (let t = 0; t < T; t++) {
      out.push([]);
      gk.push([]);
      const hPrev = Float64Array.from(h);
      for (let b = 0; b < B; b++) {
        const xin = seq[t][b];
        const z = new Float64Array(4 * H);
        for (let r = 0; r < 4 * H; r++) {
          let s = bih[r] + bhh[r];
          for (let i = 0; i < I; i++) s += Wih[r * I + i] * xin[i];
          for (let j = 0; j < H; j++) s += Whh[r * H + j] * hPrev[b * H + j];
          z[r] = s;
        }
        const act = new Float64Array(4 * H);
        for (let j = 0; j < H; j++) {
          const ig = sigmoid(z[j]);
          const fg = sigmoid(z[H + j]);
          const gg = Math.tanh(z[2 * H + j]);
          const og = sigmoid(z[3 * H + j]);
          act[j] = ig;
          act[H + j] = fg;
          act[2 * H + j] = gg;
          act[3 * H + j] = og;
          const cn = fg * c[b * H + j] + ig * gg;
          c[b * H + j] = cn;
          h[b * H + j] = og * Math.tanh(cn);
        }
        out[t].push(h.slice(b * H, (b + 1) * H));
        gk[t].push(act);
      }
    }
    hT.push(h);
    cT.push(c);
    gates.push(gk);
    seq = out;
  }
  const W = p['fc.weight'].data;
  const bias = p['fc.bias'].data;
  const V = spec.vocab;
  const Hl = spec.hidden[L - 1];
  let total = 0;
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      const hv = seq[t][b];
      const logits = new Float64Array(V);
      let max = -Infinity;
      for (let v = 0; v < V; v++) {
        let s = bias[v];
        for (let j = 0; j < Hl; j++) s += W[v * Hl + j] * hv[j];
        logits[v] = s;
        max = Math.max(max, s);
      }
      let sum = 0;
      for (let v = 0; v < V; v++) sum += Math.exp(logits[v] - max);
      total += -(logits[y[b][t]] - max - Math.log(sum));
    }
  }
  return { loss: total / (T * B), state: { h: hT, c: cT }, gates };
}

/** Central finite difference of f with respect to every element of `data` (restored afterwards). */
export function finiteDifference(f: () => number, data: Float64Array, eps = 1e-6, indices?: number[]): Float64Array {
  const out = new Float64Array(data.length);
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

/** Worst mismatch of a against b under |a − b| ≤ atol + rtol·|b|; returns the worst ratio (≤ 1 passes). */
export function compare(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number) {
  let worst = 0;
  let at = -1;
  for (let i = 0; i < b.length; i++) {
    const r = Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i]));
    if (!(r <= worst)) {
      worst = r;
      at = i;
    }
  }
  return { worst, at, got: at >= 0 ? a[at] : NaN, want: at >= 0 ? b[at] : NaN };
}

/** Random parameters with PyTorch names and shapes, uniform in ±scale/√H (PyTorch's init × scale). */
export function randomParams(spec: RefSpec, rand: () => number, scale = 1): RefParams {
  const p: RefParams = {};
  const add = (name: string, shape: number[], k: number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    p[name] = { shape, data: Float64Array.from({ length: n }, () => (rand() * 2 - 1) * k) };
  };
  if (spec.embedding > 0) add('embedding.weight', [spec.vocab, spec.embedding], 1);
  let inp = spec.embedding || spec.vocab;
  spec.hidden.forEach((H, k) => {
    const s = scale / Math.sqrt(H);
    add(`lstm.weight_ih_l${k}`, [4 * H, inp], s);
    add(`lstm.weight_hh_l${k}`, [4 * H, H], s);
    add(`lstm.bias_ih_l${k}`, [4 * H], s);
    add(`lstm.bias_hh_l${k}`, [4 * H], s);
    inp = H;
  });
  const Hl = spec.hidden[spec.hidden.length - 1];
  add('fc.weight', [spec.vocab, Hl], 1 / Math.sqrt(Hl));
  add('fc.bias', [spec.vocab], 1 / Math.sqrt(Hl));
  return p;
}

/** Deterministic uniform [0, 1) (Park–Miller), so reference cases need no library. */
export function lcg(seed: number): () => number {
  let s = seed % 2147483647 || 1;
  return () => {
    s = (s * 16807) % 2147483647;
    return (s - 1) / 2147483646;
  };
}
