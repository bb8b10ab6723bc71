// The LSTM recurrence as a composite op: forward Scan over time whose body is the cell built from
// primitives, backward reverse Scan over the (linear) recurrence of dh, dc. Everything that does not
// depend on the recurrence runs outside the scans as batched ops over all T steps.
//
// Legend: T = time, B = batch, I = input, H = hidden, G = 4H.
// Internal gate order: i, f, o, g (the three sigmoid gates first, then the candidate g), so one
// Sigmoid covers [B, 3H]. PyTorch's order is i, f, g, o; checkpoints convert at the boundary
// (see GATE_PERM in ../train/checkpoint.ts).
//
// Equations (per step t, PyTorch's nn.LSTM):
//   pre = x_t·W_ihᵀ + b_ih + b_hh + h_{t−1}·W_hhᵀ      [B, G]
//   i, f, o = σ(pre_i), σ(pre_f), σ(pre_o);  g = tanh(pre_g)
//   c_t = f ⊙ c_{t−1} + i ⊙ g;  h_t = o ⊙ tanh(c_t)
//
// The input projection x·W_ihᵀ + b is not part of the composite: the caller computes XW for all
// steps at once (a Gather for one-hot input, else one GEMM) and differentiates it with the
// ordinary rules. The composite's inputs are XW, W_hh, h0, c0; its differentiable outputs are
// hs, hT, cT. It also returns what backward needs and what the gate views show: the sigmoid gates
// S = [i f o] and g per step, and the cell states cs.

import { Graph, Value } from '../onnx/builder';
import { Ops } from '../onnx/ops';
import { inputProjection } from './projection';
import type { CellSpec } from './cellspec';

export interface LstmForward {
  /** [T, B, H] hidden states h_1..h_T */
  hs: Value;
  /** [B, H] */
  hT: Value;
  /** [B, H] */
  cT: Value;
  /** [T, B, H] cell states c_1..c_T */
  cs: Value;
  /** [T, B, 3H] sigmoid gates i, f, o */
  S: Value;
  /** [T, B, H] candidate g = tanh(pre_g) */
  gc: Value;
  /** [T, B, G] with cell clipping: 1 where a pre-activation was inside (−clip, clip), else 0 */
  clipMask?: Value;
}

/**
 * Emits one LSTM layer's recurrence.
 * @param xw [T, B, G] input pre-activations (x·W_ihᵀ + b_ih + b_hh) in internal gate order
 * @param whh [G, H] recurrent weights in internal gate order
 * @param h0 [B, H]
 * @param c0 [B, H]
 */
/**
 * Gate nonlinearity of the sigmoid gates i, f, o: the logistic sigmoid, or the hard sigmoid
 * max(0, min(1, alpha·x + beta)) (ONNX and TF.js: alpha 0.2, beta 0.5).
 */
export type GateActivation = ({ kind: 'sigmoid' } | { kind: 'hard-sigmoid'; alpha: number; beta: number }) & {
  /** coupled input and forget gates (CIFG): f = 1 − i, the forget block of the weights is unused */
  coupled?: boolean;
  /** peephole connections (Gers & Schmidhuber 2000, as the ONNX LSTM operator): i and f see c_{t−1}, o sees c_t */
  peepholes?: boolean;
  /** cell clipping (the ONNX operator's `clip`): every gate pre-activation, peephole terms included, is clipped to [−clip, clip] */
  clip?: number;
  /** the layer's cell: 'gru' layers (./gru.ts) use only kind/alpha/beta, for r and z; 'rnn' layers (./rnn.ts) none of them; default lstm */
  cell?: CellKind;
  /** rnn layers: the nonlinearity (default tanh) */
  activation?: 'tanh' | 'relu';
  /** cell layers: the checked equations (./cellspec.ts) */
  equations?: CellSpec;
};

/** The recurrent cells Gatelab builds (./cells.ts); 'cell' is an equation-defined cell (./eqcell.ts). */
export type CellKind = 'lstm' | 'gru' | 'rnn' | 'cell';

/** A layer's cell, from its options. */
export function cellKind(gate: Pick<GateActivation, 'cell'> | undefined | null): CellKind {
  return gate?.cell ?? 'lstm';
}

/** Layer k's parameters, PyTorch names and shapes (rows in internal gate order; peepholes [3, H] with gate.peepholes). */
export function lstmParams(k: number, H: number, inSize: number, suffix = '', gate?: GateActivation): { name: string; shape: number[] }[] {
  const ps = [
    { name: `lstm.weight_ih_l${k}${suffix}`, shape: [4 * H, inSize] },
    { name: `lstm.weight_hh_l${k}${suffix}`, shape: [4 * H, H] },
    { name: `lstm.bias_ih_l${k}${suffix}`, shape: [4 * H] },
    { name: `lstm.bias_hh_l${k}${suffix}`, shape: [4 * H] },
  ];
  if (gate?.peepholes) ps.push({ name: `lstm.weight_peephole_l${k}${suffix}`, shape: [3, H] });
  return ps;
}

/**
 * One LSTM layer of a stack: the input projection (with both biases) and the recurrence.
 * @param input `{ ids }` int64 [T, B] token ids read as one-hot (a row lookup of W_ihᵀ), or `{ x }` a float [T, B, I] input
 */
export function lstmLayer(g: Graph, P: Record<string, Value>, k: number, input: { ids: Value } | { x: Value }, h0: Value, c0: Value, gate?: GateActivation, suffix = ''): LstmForward {
  return g.scope(`lstm${k}${suffix}`, () => {
    const op = new Ops(g);
    const wih = P[`lstm.weight_ih_l${k}${suffix}`];
    const bias = op.Add(P[`lstm.bias_ih_l${k}${suffix}`], P[`lstm.bias_hh_l${k}${suffix}`]); // [G]
    const xw = inputProjection(op, input, wih, bias); // [T, B, G]
    return lstmRecurrence(g, xw, P[`lstm.weight_hh_l${k}${suffix}`], h0, c0, gate, P[`lstm.weight_peephole_l${k}${suffix}`] ?? null);
  });
}

/**
 * @param peep [3, H] peephole weights for i, f, o (with gate.peepholes), else null
 */
export function lstmRecurrence(g: Graph, xw: Value, whh: Value, h0: Value, c0: Value, gate: GateActivation = { kind: 'sigmoid' }, peep: Value | null = null): LstmForward {
  if (gate.peepholes && !peep) throw new Error('lstm: peepholes need the peephole weights');
  const [T, B, G] = xw.shape;
  const H = whh.shape[1] as number;
  if (G !== 4 * H) throw new Error(`lstm: XW has ${G} gate columns, expected 4·${H}`);
  let fwd!: LstmForward;
  g.composite('lstm', () => {
    // ---- forward scan: state (h, c), scan input xw_t ------------------------------------------
    // W_hhᵀ once, outside the scan: the cell's GEMM then reads B in its natural layout
    const whhT = new Ops(g).Transpose(whh, [1, 0]); // [H, G]
    const peepRows = peep ? new Ops(g).Split(peep, 0, [1, 1, 1]).map((r) => new Ops(g).Reshape(r, [H])) : null; // p_i, p_f, p_o [H]
    // the cell, emitted into `cg` (a scan body, or the graph itself for a single step)
    const cell = (cg: Graph, h: Value, c: Value, xwt: Value) => lstmCell(cg, h, c, xwt, { whhT, peepRows, gate, H });
    const op = new Ops(g);
    let hT: Value, cT: Value, hs: Value, cs: Value, S: Value, gc: Value;
    let clipMask: Value | undefined;
    if (T === 1) {
      // one step (generation): no Scan, so nothing runs per call but the cell itself
      const r = cell(g, h0, c0, op.Squeeze(xw, [0]));
      [hT, cT] = [r.hn, r.cn];
      [hs, cs, S, gc] = [r.hn, r.cn, r.s, r.gg].map((v) => op.Unsqueeze(v, [0]));
      if (r.inside) clipMask = op.Unsqueeze(r.inside, [0]);
    } else {
      const body = g.subgraph('lstm_cell');
      const h = body.input(body.freshName('h'), xw.dtype, [B, H]);
      const c = body.input(body.freshName('c'), xw.dtype, [B, H]);
      const xwt = body.input(body.freshName('xw_t'), xw.dtype, [B, G]);
      const r = cell(body, h, c, xwt);
      body.output(r.hn);
      body.output(r.cn);
      body.output(r.hn); // scan outputs: copies of the new states, and the gates for backward
      body.output(r.cn);
      body.output(r.s);
      body.output(r.gg);
      if (r.inside) body.output(r.inside);
      [hT, cT, hs, cs, S, gc, clipMask] = op.Scan(body, [h0, c0], [xw]);
    }
    fwd = { hs, hT, cT, cs, S, gc, ...(clipMask ? { clipMask } : {}) };
    return {
      inputs: peep ? [xw, whh, h0, c0, peep] : [xw, whh, h0, c0],
      outputs: [hs, hT, cT],
      backward: (gb, [dhs, dhT, dcT], needs) => lstmBackward(gb, { xw, whh, h0, c0, peep }, fwd, dhs, dhT, dcT, needs, gate),
    };
  });
  return fwd;
}

/**
 * One step of the LSTM cell, emitted into `cg` from primitives (a scan body, the graph itself for a
 * single step, or an unrolled program differentiated by the rule table): h, c [B, H] the state, xwt
 * [B, G] the step's input pre-activations, whhT [H, G], peepRows p_i, p_f, p_o [H] (with peepholes).
 * Returns the new state, the sigmoid gates as used [B, 3H], g, and (cell clipping) where the
 * pre-activations were inside the range.
 */
export function lstmCell(cg: Graph, h: Value, c: Value, xwt: Value, o_: { whhT: Value; peepRows: Value[] | null; gate: GateActivation; H: number }): { hn: Value; cn: Value; s: Value; gg: Value; inside: Value | null } {
  const { whhT, peepRows, gate, H } = o_;
  const act = (bo: Ops, x: Value) => (gate.kind === 'sigmoid' ? bo.Sigmoid(x) : bo.HardSigmoid(x, gate.alpha, gate.beta));
  const bo = new Ops(cg);
  const raw = bo.Gemm(h, whhT, xwt); // [B, G]
  // cell clipping: clipped pre-activations, and where they were inside the range (for backward);
  // as the ONNX operator, the clip applies to the whole input of each activation, peephole
  // terms included
  const clip = (v: Value) => (gate.clip ? bo.Clip(v, -gate.clip, gate.clip) : v);
  const within = (v: Value) => bo.Sign(bo.Relu(bo.Sub(bo.c(h.dtype, gate.clip!), bo.Abs(v))));
  let inside: Value | null = gate.clip && !peepRows ? within(raw) : null;
  let s: Value; // [B, 3H] = i f o as used
  let i: Value, f: Value, o: Value, gg: Value, cn: Value;
  if (!peepRows) {
    const pre = clip(raw);
    const [sPre, gPre] = bo.Split(pre, 1, [3 * H, H]);
    s = act(bo, sPre); // one nonlinearity over i, f, o
    gg = bo.Tanh(gPre); // [B, H]
    let fs: Value;
    [i, fs, o] = bo.Split(s, 1, [H, H, H]);
    f = gate.coupled ? bo.Sub(bo.c(h.dtype, 1), i) : fs;
    cn = bo.Add(bo.Mul(f, c), bo.Mul(i, gg));
  } else {
    const [pi, pf, po, pg] = bo.Split(raw, 1, [H, H, H, H]);
    const zi = bo.Add(pi, bo.Mul(peepRows[0], c));
    const zf = gate.coupled ? pf : bo.Add(pf, bo.Mul(peepRows[1], c)); // (coupled: f's block is unused)
    i = act(bo, clip(zi));
    f = gate.coupled ? bo.Sub(bo.c(h.dtype, 1), i) : act(bo, clip(zf));
    gg = bo.Tanh(clip(pg));
    cn = bo.Add(bo.Mul(f, c), bo.Mul(i, gg));
    const zo = bo.Add(po, bo.Mul(peepRows[2], cn));
    o = act(bo, clip(zo));
    s = bo.Concat([i, f, o], 1);
    if (gate.clip) inside = within(bo.Concat([zi, zf, zo, pg], 1)); // internal gate order i, f, o, g
  }
  const hn = bo.Mul(o, bo.Tanh(cn));
  // the gates as used: with coupled gates, f = 1 − i replaces the unused f block
  return { hn, cn, s: gate.coupled && !peepRows ? bo.Concat([i, f, o], 1) : s, gg, inside };
}

/**
 * One unrolled LSTM step of layer k from primitives: x [B, I] the step's input, (h, c) [B, H] the state.
 */
export function lstmStep(g: Graph, P: Record<string, Value>, k: number, x: Value, h: Value, c: Value, gate: GateActivation = { kind: 'sigmoid' }, suffix = ''): { h: Value; c: Value } {
  const op = new Ops(g);
  const whh = P[`lstm.weight_hh_l${k}${suffix}`];
  const H = whh.shape[1] as number;
  const bias = op.Add(P[`lstm.bias_ih_l${k}${suffix}`], P[`lstm.bias_hh_l${k}${suffix}`]);
  const xwt = op.Gemm(x, P[`lstm.weight_ih_l${k}${suffix}`], bias, { transB: 1 }); // [B, G]
  const peep = P[`lstm.weight_peephole_l${k}${suffix}`];
  const peepRows = gate.peepholes && peep ? op.Split(peep, 0, [1, 1, 1]).map((r) => op.Reshape(r, [H])) : null;
  const r = lstmCell(g, h, c, xwt, { whhT: op.Transpose(whh, [1, 0]), peepRows, gate, H });
  return { h: r.hn, c: r.cn };
}

/**
 * Backward of the recurrence. With dh_t = dH_t + dpre_{t+1}·W_hh the per-step recurrence is
 *   dc_t   = dc_{t+1} ⊙ f_{t+1} + dh_t ⊙ A_t,          A_t = o ⊙ (1 − tanh²c_t)
 *   dpre_t = [dc_t, dc_t, dh_t, dc_t] ⊙ Coef_t,         Coef_t = [g·i(1−i), c_{t−1}·f(1−f), tanh c_t·o(1−o), i(1−g²)]
 * which is linear in (dh, dc); A, Coef and f are computed for all steps before the scan. The
 * reverse scan carries (dpre_t, dc_t ⊙ f_t) and emits dpre_t; the weight gradient
 * dW_hh = Σ_t dpre_tᵀ·h_{t−1} is one GEMM after it, dh0 = dpre_1·W_hh and dc0 = dc_1 ⊙ f_1.
 */
function lstmBackward(
  g: Graph,
  x: { xw: Value; whh: Value; h0: Value; c0: Value; peep: Value | null },
  fwd: LstmForward,
  dhs: Value | null,
  dhT: Value | null,
  dcT: Value | null,
  needs: (v: Value) => boolean,
  gate: GateActivation = { kind: 'sigmoid' },
): (Value | null)[] {
  const op = new Ops(g);
  const [T, B, G] = x.xw.shape as number[];
  const H = G / 4;
  const dt = x.xw.dtype;
  const one = op.c(dt, 1);
  const zeros = (shape: number[]) => op.ConstantOfShape(shape, dt, 0);

  // per-step coefficients, batched over T ------------------------------------------------------
  const [i, f, o] = op.Split(fwd.S, 2, [H, H, H]); // [T, B, H] each (f as used: 1 − i when coupled)
  const gg = fwd.gc;
  const tc = op.Tanh(fwd.cs); // [T, B, H]
  const prev = (first: Value, seq: Value) => // [first; seq_1..seq_{T-1}]   [T, B, H]
    T > 1 ? op.Concat([op.Unsqueeze(first, [0]), op.Slice(seq, [0], [T - 1], [0])], 0) : op.Unsqueeze(first, [0]);
  const cPrev = prev(x.c0, fwd.cs);
  // the gate's derivative written with its value: σ' = σ(1 − σ); hard sigmoid: alpha where 0 < s < 1
  // (s(1 − s) > 0 exactly there, so Sign of it is the mask)
  const dsig = (s: Value) =>
    gate.kind === 'sigmoid' ? op.Mul(s, op.Sub(one, s)) : op.Mul(op.Sign(op.Mul(s, op.Sub(one, s))), op.c(dt, Math.fround(gate.alpha))); // the forward's alpha is a float32 attribute
  let A = op.Mul(o, op.Sub(one, op.Mul(tc, tc))); // [T, B, H]
  // coupled gates: c' = (1 − i)·c + i·g, so dL/dpre_i = dc·(g − c_{t−1})·σ'(i) and the f block gets none
  let coef = op.Concat(
    gate.coupled
      ? [op.Mul(op.Sub(gg, cPrev), dsig(i)), zeros([T, B, H]), op.Mul(tc, dsig(o)), op.Mul(i, op.Sub(one, op.Mul(gg, gg)))]
      : [op.Mul(gg, dsig(i)), op.Mul(cPrev, dsig(f)), op.Mul(tc, dsig(o)), op.Mul(i, op.Sub(one, op.Mul(gg, gg)))],
    2,
  ); // [T, B, G]
  // peepholes keep the recurrence linear: o sees c_t, so dc_t gains dh·tanh(c)σ'(o)·p_o (folded into
  // A); i and f see c_{t−1}, so dc_{t−1} gains dc_t·(coef_i·p_i + coef_f·p_f) (folded into the carry)
  // cell clipping: no gradient through a clipped pre-activation
  if (fwd.clipMask) coef = op.Mul(coef, fwd.clipMask);
  let carry = f;
  if (x.peep) {
    const [pI, pF, pO] = op.Split(x.peep, 0, [1, 1, 1]).map((r) => op.Reshape(r, [H]));
    const [ci, cf, co] = op.Split(coef, 2, [H, H, H, H]);
    A = op.Add(A, op.Mul(co, pO));
    carry = op.Add(f, op.Add(op.Mul(ci, pI), op.Mul(cf, pF)));
  }

  // dL/dh_t from above, with dhT folded into the last step
  let dH = dhs ?? zeros([T, B, H]);
  if (dhT) {
    const last = T > 1 ? op.Concat([zeros([T - 1, B, H]), op.Unsqueeze(dhT, [0])], 0) : op.Unsqueeze(dhT, [0]);
    dH = op.Add(dH, last);
  }

  // reverse scan: state (dpre_{t+1} [B,G], dc_{t+1}⊙f_{t+1} [B,H]), inputs dH_t, A_t, Coef_t, f_t
  const body = g.subgraph('lstm_cell_grad');
  const bo = new Ops(body);
  const dpreNext = body.input(body.freshName('dpre_next'), dt, [B, G]);
  const dcfNext = body.input(body.freshName('dcf_next'), dt, [B, H]);
  const dHt = body.input(body.freshName('dH_t'), dt, [B, H]);
  const At = body.input(body.freshName('A_t'), dt, [B, H]);
  const coefT = body.input(body.freshName('coef_t'), dt, [B, G]);
  const ft = body.input(body.freshName('f_t'), dt, [B, H]);
  const dh = bo.Gemm(dpreNext, x.whh, dHt); // dh_t = dpre_{t+1}·W_hh + dH_t   [B, H]
  const dc = bo.Add(dcfNext, bo.Mul(dh, At)); // [B, H]
  const dpre = bo.Mul(bo.Concat([dc, dc, dh, dc], 1), coefT); // [B, G]
  body.output(dpre);
  body.output(bo.Mul(dc, ft));
  body.output(dpre);
  const [dpre1, dc0, dPre] = op.Scan(body, [zeros([B, G]), dcT ?? zeros([B, H])], [dH, A, coef, carry], {
    reverseInputs: true,
    reverseOutputs: true,
  }); // dPre [T, B, G] in forward time order

  const dWhh = needs(x.whh)
    ? op.Gemm(op.Reshape(dPre, [T * B, G]), op.Reshape(prev(x.h0, fwd.hs), [T * B, H]), null, { transA: 1 }) // [G, H]
    : null;
  const dh0 = needs(x.h0) ? op.MatMul(dpre1, x.whh) : null; // [B, H]
  let dPeep: Value | null = null;
  if (x.peep && needs(x.peep)) {
    // dp_i = Σ dpre_i ⊙ c_{t−1}, dp_f = Σ dpre_f ⊙ c_{t−1}, dp_o = Σ dpre_o ⊙ c_t
    const [di, df, dO] = op.Split(dPre, 2, [H, H, H, H]);
    const red = (v: Value) => op.Unsqueeze(op.ReduceSum(v, [0, 1]), [0]); // [1, H]
    dPeep = op.Concat([red(op.Mul(di, cPrev)), red(op.Mul(df, cPrev)), red(op.Mul(dO, fwd.cs))], 0); // [3, H]
  }
  return x.peep ? [dPre, dWhh, dh0, needs(x.c0) ? dc0 : null, dPeep] : [dPre, dWhh, dh0, needs(x.c0) ? dc0 : null];
}
