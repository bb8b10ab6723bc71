// The plain (Elman) RNN recurrence as a composite op, built like the LSTM's and GRU's: a forward Scan
// whose body is h_t = act(xw_t + h_{t−1}·W_hhᵀ + b_hh), and a backward reverse Scan over the
// recurrence of dh. It is here to compare with: its gradient through time is multiplied at every
// step by W_hh and the activation's slope, with nothing like the LSTM's f-gated cell path to carry it.
//
// Legend: T = time, B = batch, I = input, H = hidden.
//
// Equations (per step t, PyTorch's nn.RNN with nonlinearity 'tanh' or 'relu'):
//   xw = x_t·W_ihᵀ + b_ih                 [B, H]  (computed for all t before the scan)
//   h_t = act(xw_t + h_{t−1}·W_hhᵀ + b_hh)
// Backward, with a_t = ∂L/∂h_t (from above and from step t+1) and D_t = act'(h_t) (1 − h² for tanh,
// [h > 0] for relu):
//   dpre_t = a_t ⊙ D_t;  a_{t−1} = dH_{t−1} + dpre_t·W_hh
//   dW_hh = Σ_t dpre_tᵀ·h_{t−1}, db_hh = Σ_t dpre_t, dxw = dpre, dh0 = dpre_1·W_hh

import { Graph, Value } from '../onnx/builder';
import { Ops } from '../onnx/ops';
import { inputProjection } from './projection';

export type RnnActivation = 'tanh' | 'relu';

export interface RnnForward {
  kind: 'rnn';
  /** [T, B, H] hidden states h_1..h_T */
  hs: Value;
  /** [B, H] */
  hT: Value;
}

/** Layer k's parameters, PyTorch names and shapes (rnn.*_l{k}). */
export function rnnParams(k: number, H: number, inSize: number, suffix = ''): { name: string; shape: number[] }[] {
  return [
    { name: `rnn.weight_ih_l${k}${suffix}`, shape: [H, inSize] },
    { name: `rnn.weight_hh_l${k}${suffix}`, shape: [H, H] },
    { name: `rnn.bias_ih_l${k}${suffix}`, shape: [H] },
    { name: `rnn.bias_hh_l${k}${suffix}`, shape: [H] },
  ];
}

/**
 * One RNN layer of a stack: the input projection and the recurrence.
 * @param input `{ ids }` int64 [T, B] token ids read as one-hot, or `{ x }` a float [T, B, I] input
 */
export function rnnLayer(g: Graph, P: Record<string, Value>, k: number, input: { ids: Value } | { x: Value }, h0: Value, activation: RnnActivation = 'tanh', suffix = ''): RnnForward {
  return g.scope(`rnn${k}${suffix}`, () => {
    const op = new Ops(g);
    const wih = P[`rnn.weight_ih_l${k}${suffix}`];
    const bih = P[`rnn.bias_ih_l${k}${suffix}`];
    const xw = inputProjection(op, input, wih, bih); // [T, B, H]
    return rnnRecurrence(g, xw, P[`rnn.weight_hh_l${k}${suffix}`], P[`rnn.bias_hh_l${k}${suffix}`], h0, activation);
  });
}

/**
 * Emits one RNN layer's recurrence.
 * @param xw [T, B, H] input pre-activations x·W_ihᵀ + b_ih
 * @param whh [H, H] recurrent weights
 * @param bhh [H] recurrent bias
 * @param h0 [B, H]
 */
export function rnnRecurrence(g: Graph, xw: Value, whh: Value, bhh: Value, h0: Value, activation: RnnActivation = 'tanh'): RnnForward {
  const [T, B, H] = xw.shape as number[];
  if (whh.shape[0] !== H) throw new Error(`rnn: XW has ${H} columns, W_hh ${whh.shape[0]} rows`);
  let fwd!: RnnForward;
  g.composite('rnn', () => {
    const op = new Ops(g);
    const whhT = op.Transpose(whh, [1, 0]); // once, outside the scan
    const xwb = op.Add(xw, bhh); // both biases, batched over T
    const cell = (cg: Graph, h: Value, xwt: Value) => rnnCell(cg, h, xwt, whhT, activation);
    let hT: Value, hs: Value;
    if (T === 1) {
      hT = cell(g, h0, op.Squeeze(xwb, [0]));
      hs = op.Unsqueeze(hT, [0]);
    } else {
      const body = g.subgraph('rnn_cell');
      const h = body.input(body.freshName('h'), xw.dtype, [B, H]);
      const xwt = body.input(body.freshName('xw_t'), xw.dtype, [B, H]);
      const hNew = cell(body, h, xwt);
      body.output(hNew);
      body.output(hNew);
      [hT, hs] = op.Scan(body, [h0], [xwb]);
    }
    fwd = { kind: 'rnn', hs, hT };
    return {
      inputs: [xw, whh, bhh, h0],
      outputs: [hs, hT],
      backward: (gb, [dhs, dhT], needs) => rnnBackward(gb, { xw, whh, bhh, h0 }, fwd, dhs, dhT, needs, activation),
    };
  });
  return fwd;
}

/** One step of the RNN cell from primitives: act(h·W_hhᵀ + xwt), xwt [B, H] holding both biases. */
export function rnnCell(cg: Graph, h: Value, xwt: Value, whhT: Value, activation: RnnActivation): Value {
  const bo = new Ops(cg);
  const pre = bo.Gemm(h, whhT, xwt);
  return activation === 'relu' ? bo.Relu(pre) : bo.Tanh(pre);
}

/** One unrolled RNN step of layer k from primitives: x [B, I] the step's input, h [B, H] the state. */
export function rnnStep(g: Graph, P: Record<string, Value>, k: number, x: Value, h: Value, activation: RnnActivation = 'tanh', suffix = ''): Value {
  const op = new Ops(g);
  const xw = op.Add(op.Gemm(x, P[`rnn.weight_ih_l${k}${suffix}`], P[`rnn.bias_ih_l${k}${suffix}`], { transB: 1 }), P[`rnn.bias_hh_l${k}${suffix}`]);
  return rnnCell(g, h, xw, op.Transpose(P[`rnn.weight_hh_l${k}${suffix}`], [1, 0]), activation);
}

function rnnBackward(
  g: Graph,
  x: { xw: Value; whh: Value; bhh: Value; h0: Value },
  fwd: RnnForward,
  dhs: Value | null,
  dhT: Value | null,
  needs: (v: Value) => boolean,
  activation: RnnActivation,
): (Value | null)[] {
  const op = new Ops(g);
  const [T, B, H] = x.xw.shape as number[];
  const dt = x.xw.dtype;
  const zeros = (shape: number[]) => op.ConstantOfShape(shape, dt, 0);
  const hPrev = T > 1 ? op.Concat([op.Unsqueeze(x.h0, [0]), op.Slice(fwd.hs, [0], [T - 1], [0])], 0) : op.Unsqueeze(x.h0, [0]);
  // the activation's slope at every step, batched over T
  const D = activation === 'relu' ? op.Sign(fwd.hs) : op.Sub(op.c(dt, 1), op.Mul(fwd.hs, fwd.hs)); // [T, B, H]
  let dH = dhs ?? zeros([T, B, H]);
  if (dhT) {
    const last = T > 1 ? op.Concat([zeros([T - 1, B, H]), op.Unsqueeze(dhT, [0])], 0) : op.Unsqueeze(dhT, [0]);
    dH = op.Add(dH, last);
  }
  // reverse scan: state dpre_{t+1} [B, H]; inputs dH_t, D_t; output dpre_t
  const body = g.subgraph('rnn_cell_grad');
  const bo = new Ops(body);
  const next = body.input(body.freshName('dpre_next'), dt, [B, H]);
  const dHt = body.input(body.freshName('dH_t'), dt, [B, H]);
  const Dt = body.input(body.freshName('D_t'), dt, [B, H]);
  const dpre = bo.Mul(bo.Gemm(next, x.whh, dHt), Dt); // (dH_t + dpre_{t+1}·W_hh) ⊙ act'(h_t)
  body.output(dpre);
  body.output(dpre);
  const [dpre1, dPre] = op.Scan(body, [zeros([B, H])], [dH, D], { reverseInputs: true, reverseOutputs: true });
  const dWhh = needs(x.whh) ? op.Gemm(op.Reshape(dPre, [T * B, H]), op.Reshape(hPrev, [T * B, H]), null, { transA: 1 }) : null;
  const dbhh = needs(x.bhh) ? op.ReduceSum(dPre, [0, 1]) : null;
  const dh0 = needs(x.h0) ? op.Gemm(dpre1, x.whh, null) : null;
  return [dPre, dWhh, dbhh, dh0];
}
