// A case small enough to compute by hand: V = 2 (one-hot input), one layer with H = 1, T = B = 1.
// The parameters are chosen so every gate activation is ½ and tanh(c) = ½, which keeps the
// arithmetic exact. PyTorch gate order (i, f, g, o) throughout.
//
// Input x = 0, target y = 0, carried-in h0 = 1, c0 = ln 3 − ½.
//   W_ih = 0 (4×2), W_hh = (1, −1, 2, −2)ᵀ, b_ih = (−1, 1, ½ln3 − 2, 2), b_hh = 0
//   z = W_hh·h0 + b_ih + b_hh = (0, 0, ½ln3, 0)
//   i = σ(0) = ½   f = ½   g = tanh(½ln3) = (3 − 1)/(3 + 1) = ½   o = ½
//   c = f·c0 + i·g = ½(ln3 − ½) + ¼ = ½ln3        tanh(c) = ½        h = o·tanh(c) = ¼
//   fc.weight = (4, 0)ᵀ, fc.bias = (0, 1): logits = (4·¼ + 0, 0·¼ + 1) = (1, 1), softmax = (½, ½)
//   loss = −log ½ = ln 2
// Backward (N = 1):
//   dlogits = softmax − onehot(0) = (−½, ½)
//   d fc.bias = (−½, ½)      d fc.weight = dlogits·h = (−⅛, ⅛)
//   dh = Σ_v dlogits_v·fc.weight_v = −½·4 + ½·0 = −2
//   do = dh·tanh(c) = −1                           dz_o = do·o(1 − o) = −¼
//   dc = dh·o·(1 − tanh²c) = −2·½·¾ = −¾
//   di = dc·g = −⅜                                 dz_i = di·i(1 − i) = −3/32
//   df = dc·c0 = −¾(ln3 − ½)                       dz_f = df·f(1 − f) = −(3/16)(ln3 − ½)
//   dg = dc·i = −⅜                                 dz_g = dg·(1 − g²) = −9/32
//   dz = (−3/32, −(3/16)(ln3 − ½), −9/32, −¼)      (i, f, g, o)
//   d b_ih = d b_hh = dz     d W_hh = dz·h0 = dz     d W_ih = [dz | 0] (x is one-hot at 0)
//   d c0 = dc·f = −⅜
//   d h0 = W_hhᵀ·dz = −3/32 + (3/16)(ln3 − ½) − 18/32 + ½ = −¼ + (3/16)·ln3 ≈ −0.044008

import { RefParams, RefSpec, RefState, Tokens } from './lstm_ref';

const LN3 = Math.log(3);

export const HAND_SPEC: RefSpec = { vocab: 2, embedding: 0, hidden: [1] };

export function handCase(): { spec: RefSpec; params: RefParams; x: Tokens; y: Tokens; state: RefState } {
  const t = (shape: number[], values: number[]) => ({ shape, data: Float64Array.from(values) });
  return {
    spec: HAND_SPEC,
    params: {
      'lstm.weight_ih_l0': t([4, 2], [0, 0, 0, 0, 0, 0, 0, 0]),
      'lstm.weight_hh_l0': t([4, 1], [1, -1, 2, -2]),
      'lstm.bias_ih_l0': t([4], [-1, 1, LN3 / 2 - 2, 2]),
      'lstm.bias_hh_l0': t([4], [0, 0, 0, 0]),
      'fc.weight': t([2, 1], [4, 0]),
      'fc.bias': t([2], [0, 1]),
    },
    x: [[0]],
    y: [[0]],
    state: { h: [Float64Array.of(1)], c: [Float64Array.of(LN3 - 0.5)] },
  };
}

const dz = [-3 / 32, -(3 / 16) * (LN3 - 0.5), -9 / 32, -1 / 4];

/** The values derived above. */
export const HAND_EXPECTED = {
  loss: Math.LN2,
  gates: [0.5, 0.5, 0.5, 0.5],
  hT: 0.25,
  cT: LN3 / 2,
  grads: {
    'lstm.weight_ih_l0': [dz[0], 0, dz[1], 0, dz[2], 0, dz[3], 0],
    'lstm.weight_hh_l0': dz,
    'lstm.bias_ih_l0': dz,
    'lstm.bias_hh_l0': dz,
    'fc.weight': [-1 / 8, 1 / 8],
    'fc.bias': [-1 / 2, 1 / 2],
  } as Record<string, number[]>,
  dh0: -1 / 4 + (3 / 16) * LN3,
  dc0: -3 / 8,
};
