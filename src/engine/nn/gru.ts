// The GRU recurrence as a composite op, built like the LSTM's (./lstm.ts): forward Scan over time
// whose body is the cell built from primitives, backward reverse Scan over the (linear) recurrence
// of dh. Everything that does not depend on the recurrence runs outside the scans as batched ops.
//
// Legend: T = time, B = batch, I = input, H = hidden, G = 3H.
// Gate order: r, z, n — PyTorch's, used internally too (the two sigmoid gates come first, so one
// Sigmoid covers [B, 2H]); checkpoints need no conversion. The ONNX GRU operator's order is z, r, h
// (GRU_GATE_ORDERS below; `gatelab export` converts).
//
// Equations (per step t, PyTorch's nn.GRU):
//   xw = x_t·W_ihᵀ + b_ih                          [B, G]  (computed for all t before the scan)
//   hw = h_{t−1}·W_hhᵀ + b_hh                       [B, G]  (b_hh stays inside: r multiplies hw_n)
//   r, z = σ(xw_r + hw_r), σ(xw_z + hw_z)
//   n = tanh(xw_n + r ⊙ hw_n)
//   h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}  = n + z ⊙ (h_{t−1} − n)
//
// The input projection is not part of the composite (the caller computes XW, a Gather for one-hot
// input or one GEMM, and differentiates it with the ordinary rules). The composite's inputs are
// XW, W_hh, b_hh, h0; its differentiable outputs are hs and hT. It also returns what backward needs
// and what the gate views show: S = [r z], the candidate n and hw_n per step.

import { Graph, Value } from '../onnx/builder';
import { Ops } from '../onnx/ops';
import { inputProjection } from './projection';
import { cellKind, type GateActivation } from './lstm';

/** Gate orders of the GRU's weight blocks: Gatelab keeps PyTorch's; the ONNX operator uses z, r, h. */
export const GRU_GATE_ORDERS = {
  pytorch: ['r', 'z', 'n'],
  internal: ['r', 'z', 'n'],
  onnx: ['z', 'r', 'n'],
} as const;
/** GRU_ONNX_FROM_INTERNAL[k] = the internal gate block that becomes ONNX block k. */
export const GRU_ONNX_FROM_INTERNAL = GRU_GATE_ORDERS.onnx.map((g) => GRU_GATE_ORDERS.internal.indexOf(g as never));

export interface GruForward {
  kind: 'gru';
  /** [T, B, H] hidden states h_1..h_T */
  hs: Value;
  /** [B, H] */
  hT: Value;
  /** [T, B, 2H] sigmoid gates r, z */
  S: Value;
  /** [T, B, H] candidate n */
  n: Value;
  /** [T, B, H] hw_n = h_{t−1}·W_hnᵀ + b_hn (what r multiplies) */
  hn: Value;
}

/** Whether a layer's cell options describe a GRU layer. */
export function isGru(cell: Pick<GateActivation, 'cell'> | undefined | null): boolean {
  return cell?.cell === 'gru';
}

/** Whether a layer carries a cell state c beside h (LSTM layers and cells with two states do, GRU and RNN layers do not). */
export function hasCellState(spec: { gates?: (GateActivation | undefined)[] }, k: number): boolean {
  const gate = spec.gates?.[k];
  return cellKind(gate) === 'lstm' || (cellKind(gate) === 'cell' && (gate?.equations?.states.length ?? 1) > 1);
}

/**
 * Layer k's parameters, PyTorch names and shapes (DESIGN §4: gru.*_l{k}, rows r, z, n).
 * @param suffix PyTorch's direction suffix ('' forward, '_reverse')
 */
export function gruParams(k: number, H: number, inSize: number, suffix = ''): { name: string; shape: number[] }[] {
  return [
    { name: `gru.weight_ih_l${k}${suffix}`, shape: [3 * H, inSize] },
    { name: `gru.weight_hh_l${k}${suffix}`, shape: [3 * H, H] },
    { name: `gru.bias_ih_l${k}${suffix}`, shape: [3 * H] },
    { name: `gru.bias_hh_l${k}${suffix}`, shape: [3 * H] },
  ];
}

/**
 * One GRU layer of a stack: the input projection and the recurrence.
 * @param input `{ ids }` int64 [T, B] token ids read as one-hot (a row lookup of W_ihᵀ), or `{ x }`
 *   a float [T, B, I] input (embedding rows, the layer below, dense features)
 * @param h0 [B, H]
 * @param suffix the parameters' direction suffix ('' forward, '_reverse')
 */
export function gruLayer(g: Graph, P: Record<string, Value>, k: number, input: { ids: Value } | { x: Value }, h0: Value, gate?: GateActivation, suffix = ''): GruForward {
  return g.scope(`gru${k}${suffix}`, () => {
    const op = new Ops(g);
    const wih = P[`gru.weight_ih_l${k}${suffix}`];
    const bih = P[`gru.bias_ih_l${k}${suffix}`];
    const xw = inputProjection(op, input, wih, bih); // [T, B, G]
    return gruRecurrence(g, xw, P[`gru.weight_hh_l${k}${suffix}`], P[`gru.bias_hh_l${k}${suffix}`], h0, gate);
  });
}

/**
 * Emits one GRU layer's recurrence.
 * @param xw [T, B, G] input pre-activations x·W_ihᵀ + b_ih (gate order r, z, n)
 * @param whh [G, H] recurrent weights
 * @param bhh [G] recurrent bias
 * @param h0 [B, H]
 * @param gate the nonlinearity of r and z (sigmoid or hard sigmoid); n is always tanh
 */
export function gruRecurrence(g: Graph, xw: Value, whh: Value, bhh: Value, h0: Value, gate: GateActivation = { kind: 'sigmoid' }): GruForward {
  if (gate.coupled || gate.peepholes || gate.clip) throw new Error('gru: coupled gates, peepholes and cell clipping are LSTM variants');
  const [T, B, G] = xw.shape as number[];
  const H = whh.shape[1] as number;
  if (G !== 3 * H) throw new Error(`gru: XW has ${G} gate columns, expected 3·${H}`);
  let fwd!: GruForward;
  g.composite('gru', () => {
    const op = new Ops(g);
    const whhT = op.Transpose(whh, [1, 0]); // [H, G], once, outside the scan
    const [xrz, xn] = op.Split(xw, 2, [2 * H, H]); // batched over T, so the body needs no Split of x
    // the cell, emitted into `cg` (a scan body, or the graph itself for a single step)
    const cell = (cg: Graph, h: Value, xrzt: Value, xnt: Value) => gruCell(cg, h, xrzt, xnt, { whhT, bhh, gate, H });
    let hT: Value, hs: Value, S: Value, N: Value, HN: Value;
    if (T === 1) {
      // one step (generation): no Scan
      const c = cell(g, h0, op.Squeeze(xrz, [0]), op.Squeeze(xn, [0]));
      hT = c.hNew;
      [hs, S, N, HN] = [c.hNew, c.s, c.n, c.hn].map((v) => op.Unsqueeze(v, [0]));
    } else {
      const body = g.subgraph('gru_cell');
      const h = body.input(body.freshName('h'), xw.dtype, [B, H]);
      const xrzt = body.input(body.freshName('xrz_t'), xw.dtype, [B, 2 * H]);
      const xnt = body.input(body.freshName('xn_t'), xw.dtype, [B, H]);
      const c = cell(body, h, xrzt, xnt);
      body.output(c.hNew);
      body.output(c.hNew); // scan outputs: the new states, and what backward and the gate views need
      body.output(c.s);
      body.output(c.n);
      body.output(c.hn);
      [hT, hs, S, N, HN] = op.Scan(body, [h0], [xrz, xn]);
    }
    fwd = { kind: 'gru', hs, hT, S, n: N, hn: HN };
    return {
      inputs: [xw, whh, bhh, h0],
      outputs: [hs, hT],
      backward: (gb, [dhs, dhT], needs) => gruBackward(gb, { xw, whh, bhh, h0 }, fwd, dhs, dhT, needs, gate),
    };
  });
  return fwd;
}

/**
 * One step of the GRU cell, emitted into `cg` from primitives (a scan body, the graph itself for a
 * single step, or an unrolled program differentiated by the rule table): h [B, H], the step's input
 * pre-activations xrzt [B, 2H] (r, z) and xnt [B, H], whhT [H, G], bhh [G].
 */
export function gruCell(cg: Graph, h: Value, xrzt: Value, xnt: Value, o: { whhT: Value; bhh: Value; gate: GateActivation; H: number }): { hNew: Value; s: Value; n: Value; hn: Value } {
  const { whhT, bhh, gate, H } = o;
  const bo = new Ops(cg);
  const act = (v: Value) => (gate.kind === 'sigmoid' ? bo.Sigmoid(v) : bo.HardSigmoid(v, gate.alpha, gate.beta));
  const hw = bo.Gemm(h, whhT, bhh); // [B, G]
  const [hrz, hn] = bo.Split(hw, 1, [2 * H, H]);
  const s = act(bo.Add(xrzt, hrz)); // [B, 2H] = r z
  const [r, z] = bo.Split(s, 1, [H, H]);
  const n = bo.Tanh(bo.Add(xnt, bo.Mul(r, hn)));
  const hNew = bo.Add(n, bo.Mul(z, bo.Sub(h, n)));
  return { hNew, s, n, hn };
}

/**
 * One unrolled GRU step of layer k from primitives: x [B, I] the step's input, h [B, H] the state.
 */
export function gruStep(g: Graph, P: Record<string, Value>, k: number, x: Value, h: Value, gate: GateActivation = { kind: 'sigmoid' }, suffix = ''): Value {
  const op = new Ops(g);
  const whh = P[`gru.weight_hh_l${k}${suffix}`];
  const H = whh.shape[1] as number;
  const xw = op.Gemm(x, P[`gru.weight_ih_l${k}${suffix}`], P[`gru.bias_ih_l${k}${suffix}`], { transB: 1 }); // [B, G]
  const [xrz, xn] = op.Split(xw, 1, [2 * H, H]);
  return gruCell(g, h, xrz, xn, { whhT: op.Transpose(whh, [1, 0]), bhh: P[`gru.bias_hh_l${k}${suffix}`], gate, H }).hNew;
}

/**
 * Backward of the recurrence. With a_t = ∂L/∂h_t (from above and from step t+1), the step's
 * pre-activation gradients are linear in a_t:
 *   dxw_n = a ⊙ Cn,  dhw_n = a ⊙ Cn ⊙ r,  dr = a ⊙ Cn ⊙ hw_n ⊙ σ'(r),  dz = a ⊙ (h_{t−1} − n) ⊙ σ'(z)
 * with Cn = (1 − z)(1 − n²), and dhw = [dr, dz, dhw_n], dxw = [dr, dz, dxw_n]. The recurrence is
 *   a_{t−1} = dH_{t−1} + dhw_t·W_hh + a_t ⊙ z_t
 * so the coefficients CoefH = [Cn·hw_n·σ'(r), (h_{t−1} − n)·σ'(z), Cn·r] and Cn are computed for all
 * steps before the reverse scan, which carries (dhw_{t+1}, a_{t+1} ⊙ z_{t+1}) and emits dhw_t and
 * a_t. After it: dW_hh = Σ_t dhw_tᵀ·h_{t−1} (one GEMM), db_hh = Σ dhw, dh0 = dhw_1·W_hh + a_1 ⊙ z_1.
 */
function gruBackward(
  g: Graph,
  x: { xw: Value; whh: Value; bhh: Value; h0: Value },
  fwd: GruForward,
  dhs: Value | null,
  dhT: Value | null,
  needs: (v: Value) => boolean,
  gate: GateActivation,
): (Value | null)[] {
  const op = new Ops(g);
  const [T, B, G] = x.xw.shape as number[];
  const H = G / 3;
  const dt = x.xw.dtype;
  const one = op.c(dt, 1);
  const zeros = (shape: number[]) => op.ConstantOfShape(shape, dt, 0);

  // per-step coefficients, batched over T ------------------------------------------------------
  const [r, z] = op.Split(fwd.S, 2, [H, H]); // [T, B, H] each
  const n = fwd.n;
  const hPrev = T > 1 ? op.Concat([op.Unsqueeze(x.h0, [0]), op.Slice(fwd.hs, [0], [T - 1], [0])], 0) : op.Unsqueeze(x.h0, [0]); // h_{t−1}
  // σ' written with the gate's value; hard sigmoid: alpha where 0 < s < 1 (as in lstm.ts)
  const dsig = (s: Value) =>
    gate.kind === 'sigmoid' ? op.Mul(s, op.Sub(one, s)) : op.Mul(op.Sign(op.Mul(s, op.Sub(one, s))), op.c(dt, Math.fround(gate.alpha)));
  const Cn = op.Mul(op.Sub(one, z), op.Sub(one, op.Mul(n, n))); // ∂h/∂pre_n
  const coef = op.Concat([op.Mul(op.Mul(Cn, fwd.hn), dsig(r)), op.Mul(op.Sub(hPrev, n), dsig(z)), op.Mul(Cn, r)], 2); // [T, B, G]

  // dL/dh_t from above, with dhT folded into the last step
  let dH = dhs ?? zeros([T, B, H]);
  if (dhT) {
    const last = T > 1 ? op.Concat([zeros([T - 1, B, H]), op.Unsqueeze(dhT, [0])], 0) : op.Unsqueeze(dhT, [0]);
    dH = op.Add(dH, last);
  }

  // reverse scan: state (dhw_{t+1} [B, G], a_{t+1}⊙z_{t+1} [B, H]), inputs dH_t, Coef_t, z_t
  const body = g.subgraph('gru_cell_grad');
  const bo = new Ops(body);
  const dhwNext = body.input(body.freshName('dhw_next'), dt, [B, G]);
  const azNext = body.input(body.freshName('az_next'), dt, [B, H]);
  const dHt = body.input(body.freshName('dH_t'), dt, [B, H]);
  const coefT = body.input(body.freshName('coef_t'), dt, [B, G]);
  const zt = body.input(body.freshName('z_t'), dt, [B, H]);
  const a = bo.Add(bo.Gemm(dhwNext, x.whh, dHt), azNext); // a_t   [B, H]
  const dhw = bo.Mul(bo.Concat([a, a, a], 1), coefT); // [B, G]
  body.output(dhw);
  body.output(bo.Mul(a, zt));
  body.output(dhw);
  body.output(a);
  const [dhw1, az1, dHW, A] = op.Scan(body, [zeros([B, G]), zeros([B, H])], [dH, coef, z], {
    reverseInputs: true,
    reverseOutputs: true,
  }); // dHW [T, B, G], A [T, B, H] in forward time order

  const dXW = op.Concat([op.Split(dHW, 2, [2 * H, H])[0], op.Mul(A, Cn)], 2); // [T, B, G]
  const dWhh = needs(x.whh) ? op.Gemm(op.Reshape(dHW, [T * B, G]), op.Reshape(hPrev, [T * B, H]), null, { transA: 1 }) : null; // [G, H]
  const dbhh = needs(x.bhh) ? op.ReduceSum(dHW, [0, 1]) : null; // [G]
  const dh0 = needs(x.h0) ? op.Gemm(dhw1, x.whh, az1) : null; // [B, H]
  return [dXW, dWhh, dbhh, dh0];
}
