// An equation-defined cell (`type: cell`, ./cellspec.ts) as a recurrent layer: a composite whose
// forward is a Scan with the equations as its body, and whose backward reverse Scan is derived from
// that body by the gradient rule table (../onnx/grad.ts). Built like the hand-written cells
// (./lstm.ts, ./gru.ts): what does not depend on the recurrence runs outside the scans.
//
//  - Hoisting: every part of an equation that depends on x but not on a state (a maximal such
//    subexpression; in a sum, all such terms and the biases beside them together) is computed for all
//    T·B rows before the scan, with the ordinary rules differentiating it. All `M x` products of all
//    equations are one GEMM (or, for token ids, one row lookup) with the biases that sum with them
//    folded in as its C, then split. The scan receives the hoisted values per step.
//  - Merged products: matrices of different equations applied to the same recurrent operand (`U h`
//    in i, f, g and o) are one GEMM per step with their concatenated weights.
//  - Backward: the body is built once more in a grad body, the rule table runs over it seeded with
//    the states' incoming gradients, and the forward values the gradient nodes read become scan
//    inputs, saved per step by the forward scan (so the backward body holds gradient nodes only). The
//    merged products' gradients leave the scan per step (dZ_t) and their weight gradients are one
//    GEMM over T·B after it; per-unit vectors used inside the body likewise sum after the scan.
//
// Legend: T = time, B = batch, I = input, H = hidden.

import { Graph, Value } from '../onnx/builder';
import { Ops } from '../onnx/ops';
import { gradientsFrom } from '../onnx/grad';
import { CellSpec, cellParams, constValue, Equation, Expr } from './cellspec';

export interface EqCellForward {
  kind: 'cell';
  /** [T, B, H] h_1..h_T */
  hs: Value;
  /** [B, H] */
  hT: Value;
  /** [B, H] the second state's final value, where the cell has one */
  cT?: Value;
  /** [T, B, H] every equation's value per step, by equation name */
  maps: Record<string, Value>;
}

/** The name of a cell parameter: `cell.l{k}.<equation>.<name>` (reverse direction `cell.l{k}_reverse.…`). */
export const cellParamName = (k: number, suffix: string, key: string) => `cell.l${k}${suffix}.${key}`;

/** Layer k's parameters: matrices [H, width of the operand], biases and per-unit vectors [H]. */
export function eqCellParams(spec: CellSpec, k: number, H: number, inSize: number, suffix = ''): { name: string; shape: number[] }[] {
  return cellParams(spec).map((p) => ({ name: cellParamName(k, suffix, p.key), shape: p.kind === 'matrix' ? [H, p.width === 'in' ? inSize : H] : [H] }));
}

type Mat = Extract<Expr, { k: 'mat' }>;

interface EvalCtx {
  op: Ops;
  dtype: Value['dtype'];
  param: (key: string) => Value;
  x: () => Value;
  prev: Record<string, Value>;
  env: Record<string, Value>;
  /** values given for expressions (hoisted leaves) */
  given?: Map<Expr, Value>;
  /** merged products (scan bodies) */
  mat?: (eq: string, e: Mat) => Value | undefined;
  /** called after each expression is evaluated (registration of the values it made) */
  after?: (e: Expr, v: Value) => void;
}

/** Evaluates an expression of equation `eq` into ctx.op's graph. */
function evalExpr(c: EvalCtx, eq: string, e: Expr): Value {
  const hit = c.given?.get(e);
  if (hit) return hit;
  const { op } = c;
  const ev = (a: Expr) => evalExpr(c, eq, a);
  let v: Value;
  switch (e.k) {
    case 'num':
      v = op.c(c.dtype, e.v);
      break;
    case 'ref':
      v = e.ref === 'x' ? c.x() : e.ref === 'prev' ? c.prev[e.name] : c.env[e.name];
      break;
    case 'param':
      v = c.param(`${eq}.${e.name}`);
      break;
    case 'mat': {
      v = c.mat?.(eq, e) ?? matmul(op, ev(e.arg), c.param(`${eq}.${e.name}`));
      break;
    }
    case 'call': {
      const z = ev(e.args[0]);
      if (e.fn === 'sigmoid') v = op.Sigmoid(z);
      else if (e.fn === 'tanh') v = op.Tanh(z);
      else if (e.fn === 'relu') v = op.Relu(z);
      else if (e.fn === 'softsign') v = op.Div(z, op.Add(op.c(c.dtype, 1), op.Abs(z)));
      else v = op.HardSigmoid(z, e.args[1] ? constValue(e.args[1])! : 0.2, e.args[2] ? constValue(e.args[2])! : 0.5);
      break;
    }
    case 'neg':
      v = op.Neg(ev(e.a));
      break;
    case 'bin': {
      const a = ev(e.a);
      const b = ev(e.b);
      v = e.op === '+' ? op.Add(a, b) : e.op === '-' ? op.Sub(a, b) : op.Mul(a, b);
      break;
    }
  }
  c.after?.(e, v);
  return v;
}

/** operand [.., K] times W [H, K] transposed → [.., H]. */
function matmul(op: Ops, a: Value, w: Value): Value {
  return a.rank === 2 ? op.Gemm(a, w, null, { transB: 1 }) : op.MatMul(a, op.Transpose(w, [1, 0]));
}

// ---- planning: what is hoisted, which products merge ----------------------------------------------

interface Plan {
  /** the equations with hoisted parts regrouped (leaves are nodes of these trees) */
  eqs: Equation[];
  /** hoisted subexpressions, with their equation */
  leaves: { eq: string; e: Expr }[];
  /** merged products of recurrent operands */
  groups: { key: string; eq: string; operand: Expr; members: { eq: string; e: Mat }[] }[];
  /** per-unit vectors and biases read inside the body (`eq.name`) */
  vectors: string[];
}

const plans = new WeakMap<CellSpec, Plan>();

function planOf(spec: CellSpec): Plan {
  const hit = plans.get(spec);
  if (hit) return hit;
  const recEq = new Map<string, boolean>();
  const xEq = new Map<string, boolean>();
  const rec = (e: Expr): boolean =>
    e.k === 'ref' ? (e.ref === 'prev' ? true : e.ref === 'eq' ? recEq.get(e.name)! : false) : e.k === 'mat' ? rec(e.arg) : e.k === 'call' ? e.args.some(rec) : e.k === 'neg' ? rec(e.a) : e.k === 'bin' ? rec(e.a) || rec(e.b) : false;
  const xdep = (e: Expr): boolean =>
    e.k === 'ref' ? (e.ref === 'x' ? true : e.ref === 'eq' ? xEq.get(e.name)! : false) : e.k === 'mat' ? xdep(e.arg) : e.k === 'call' ? e.args.some(xdep) : e.k === 'neg' ? xdep(e.a) : e.k === 'bin' ? xdep(e.a) || xdep(e.b) : false;
  const leaves: Plan['leaves'] = [];
  const at = { at: 0, len: 0 };
  const terms = (e: Expr, sign: 1 | -1, out: { sign: 1 | -1; e: Expr }[]) => {
    if (e.k === 'bin' && e.op !== '*') {
      terms(e.a, sign, out);
      terms(e.b, e.op === '+' ? sign : ((-sign) as 1 | -1), out);
    } else out.push({ sign, e });
  };
  const sumOf = (ts: { sign: 1 | -1; e: Expr }[]): Expr =>
    ts.slice(1).reduce<Expr>((a, t) => ({ k: 'bin', op: t.sign > 0 ? '+' : '-', a, b: t.e, ...at }), ts[0].sign > 0 ? ts[0].e : { k: 'neg', a: ts[0].e, ...at });
  // a bare name of a hoisted equation is that equation's leaf already
  const rewrite = (eq: string, e: Expr): Expr => {
    if (!rec(e)) {
      if (xdep(e) && e.k !== 'ref') leaves.push({ eq, e });
      return e;
    }
    switch (e.k) {
      case 'bin': {
        if (e.op === '*') return { ...e, a: rewrite(eq, e.a), b: rewrite(eq, e.b) };
        const ts: { sign: 1 | -1; e: Expr }[] = [];
        terms(e, 1, ts);
        const fixed = ts.filter((t) => !rec(t.e));
        const moving = ts.filter((t) => rec(t.e)).map((t) => ({ sign: t.sign, e: rewrite(eq, t.e) }));
        if (fixed.some((t) => xdep(t.e))) {
          const leaf = sumOf(fixed);
          if (leaf.k !== 'ref') leaves.push({ eq, e: leaf });
          return sumOf([{ sign: 1, e: leaf }, ...moving]);
        }
        return sumOf([...fixed, ...moving]);
      }
      case 'mat':
        return { ...e, arg: rewrite(eq, e.arg) };
      case 'call':
        return { ...e, args: e.args.map((a, i) => (i === 0 ? rewrite(eq, a) : a)) };
      case 'neg':
        return { ...e, a: rewrite(eq, e.a) };
      default:
        return e;
    }
  };
  const eqs = spec.equations.map((q) => {
    const out = { name: q.name, expr: rewrite(q.name, q.expr) };
    recEq.set(q.name, rec(q.expr));
    xEq.set(q.name, xdep(q.expr));
    return out;
  });
  // merged products and body vectors: walk the rewritten trees outside the leaves
  const leafSet = new Set(leaves.map((l) => l.e));
  const groups: Plan['groups'] = [];
  const vectors = new Set<string>();
  const keyOf = (eq: string, e: Expr): string => {
    if (leafSet.has(e)) return `L${[...leafSet].indexOf(e)}`;
    switch (e.k) {
      case 'num':
        return String(e.v);
      case 'ref':
        return `${e.ref}:${e.name}`;
      case 'param':
        return `${eq}.${e.name}`;
      case 'mat':
        return `${eq}.${e.name}(${keyOf(eq, e.arg)})`;
      case 'call':
        return `${e.fn}(${e.args.map((a) => keyOf(eq, a)).join(',')})`;
      case 'neg':
        return `-(${keyOf(eq, e.a)})`;
      case 'bin':
        return `(${keyOf(eq, e.a)}${e.op}${keyOf(eq, e.b)})`;
    }
  };
  const walk = (eq: string, e: Expr): void => {
    if (leafSet.has(e)) return;
    if (e.k === 'param') vectors.add(`${eq}.${e.name}`);
    else if (e.k === 'mat') {
      const key = keyOf(eq, e.arg);
      let g = groups.find((x) => x.key === key);
      if (!g) groups.push((g = { key, eq, operand: e.arg, members: [] }));
      g.members.push({ eq, e });
      walk(eq, e.arg);
    } else if (e.k === 'call') e.args.forEach((a) => walk(eq, a));
    else if (e.k === 'neg') walk(eq, e.a);
    else if (e.k === 'bin') {
      walk(eq, e.a);
      walk(eq, e.b);
    }
  };
  for (const q of eqs) walk(q.name, q.expr);
  const plan: Plan = { eqs, leaves, groups, vectors: [...vectors] };
  plans.set(spec, plan);
  return plan;
}

// ---- the hoisted part, over all steps ---------------------------------------------------------------

/** The hoisted leaves [T, B, H] for an input `{ ids }` [T, B] or `{ x }` [T, B, I]. */
function hoist(g: Graph, plan: Plan, param: (key: string) => Value, input: { ids: Value } | { x: Value }, dtype: Value['dtype'], inSize: number): Value[] {
  const op = new Ops(g);
  // the `M x` products inside the leaves, in order; a leaf that is one such product plus biases
  // takes them as the GEMM's C
  const slots: { eq: string; e: Mat; biases: string[] }[] = [];
  const whole = new Map<Expr, number>(); // leaf → slot that is its whole value
  const walk = (eq: string, e: Expr): void => {
    if (e.k === 'mat' && e.arg.k === 'ref' && e.arg.ref === 'x') slots.push({ eq, e, biases: [] });
    else if (e.k === 'mat') walk(eq, e.arg);
    else if (e.k === 'call') e.args.forEach((a) => walk(eq, a));
    else if (e.k === 'neg') walk(eq, e.a);
    else if (e.k === 'bin') {
      walk(eq, e.a);
      walk(eq, e.b);
    }
  };
  for (const l of plan.leaves) {
    const ts: { sign: number; e: Expr }[] = [];
    const flat = (e: Expr, s: number): void => {
      if (e.k === 'bin' && e.op === '+') {
        flat(e.a, s);
        flat(e.b, s);
      } else ts.push({ sign: s, e });
    };
    flat(l.e, 1);
    const mats = ts.filter((t) => t.e.k === 'mat' && t.e.arg.k === 'ref' && t.e.arg.ref === 'x');
    const biases = ts.filter((t) => t.e.k === 'param');
    if (mats.length === 1 && mats.length + biases.length === ts.length) {
      slots.push({ eq: l.eq, e: mats[0].e as Mat, biases: biases.map((b) => `${l.eq}.${(b.e as { name: string }).name}`) });
      whole.set(l.e, slots.length - 1);
    } else walk(l.eq, l.e);
  }
  let slotValues: Value[] = [];
  if (slots.length) {
    const ws = slots.map((s) => param(`${s.eq}.${s.e.name}`));
    const H = ws[0].shape[0] as number;
    const w = ws.length === 1 ? ws[0] : op.Concat(ws, 0); // [n·H, I]
    const anyBias = slots.some((s) => s.biases.length);
    const zeros = g.const(new Array(H).fill(0), dtype, [H]);
    const bs = slots.map((s) => (s.biases.length ? s.biases.map(param).reduce((a, b) => op.Add(a, b)) : zeros));
    const bias = anyBias ? (bs.length === 1 ? bs[0] : op.Concat(bs, 0)) : null;
    let xw: Value;
    if ('ids' in input) {
      xw = op.Gather(op.Transpose(w, [1, 0]), input.ids, 0);
      if (bias) xw = op.Add(xw, bias);
    } else {
      const [T, B, I] = input.x.shape as number[];
      xw = op.Reshape(op.Gemm(op.Reshape(input.x, [T * B, I]), w, bias, { transB: 1 }), [T, B, ws.length * H]);
    }
    slotValues = slots.length === 1 ? [xw] : op.Split(xw, 2, slots.map(() => H));
  }
  const given = new Map<Expr, Value>(slots.map((s, i) => [s.e, slotValues[i]]));
  let dense: Value | undefined;
  const x = () => {
    if (dense) return dense;
    if ('x' in input) return (dense = input.x);
    // token ids read as one-hot, where x is used other than through a matrix
    const V = inSize;
    const eye = g.const(Array.from({ length: V * V }, (_, i) => (i % (V + 1) === 0 ? 1 : 0)), dtype, [V, V]);
    return (dense = op.Gather(eye, input.ids, 0));
  };
  // leaves in equation order; a hoisted whole equation is named by later leaves
  const env: Record<string, Value> = {};
  return plan.leaves.map((l) => {
    const v = whole.has(l.e) ? slotValues[whole.get(l.e)!] : evalExpr({ op, dtype, param, x, prev: {}, env, given }, l.eq, l.e);
    if (plan.eqs.some((q) => q.name === l.eq && q.expr === l.e)) env[l.eq] = v;
    return v;
  });
}

// ---- one step in a body ---------------------------------------------------------------------------

interface StepOut {
  env: Record<string, Value>;
  /** every value the step made, by a key that is the same in every build of the same spec */
  byKey: Map<string, Value>;
  keyOf: Map<Value, string>;
  /** each merged product's operand value */
  operands: Value[];
}

/**
 * Emits the equations for one step into `cg`: prev [B, H] per state, leaves [B, ·] per hoisted
 * value. `product(g, operand)` gives group g's merged product [B, m·H].
 */
function emitStep(cg: Graph, spec: CellSpec, plan: Plan, param: (key: string) => Value, prev: Record<string, Value>, leaves: Value[], product: (gi: number, operand: Value) => Value, dtype: Value['dtype']): StepOut {
  const op = new Ops(cg);
  const byKey = new Map<string, Value>();
  const keyOf = new Map<Value, string>();
  const reg = (key: string, v: Value) => {
    if (keyOf.has(v)) return;
    keyOf.set(v, key);
    byKey.set(key, v);
  };
  spec.states.forEach((s) => reg(`prev:${s}`, prev[s]));
  leaves.forEach((l, j) => reg(`leaf:${j}`, l));
  const ids = new Map<Expr, number>();
  let seen = cg.nodes.length;
  const given = new Map<Expr, Value>(plan.leaves.map((l, j) => [l.e, leaves[j]]));
  const products = new Map<number, Value[]>();
  const operands: Value[] = [];
  const memberOf = new Map<Mat, [number, number]>();
  plan.groups.forEach((g, gi) => g.members.forEach((m, j) => memberOf.set(m.e, [gi, j])));
  const env: Record<string, Value> = {};
  const ctx: EvalCtx = {
    op,
    dtype,
    param,
    x: () => {
      throw new Error('cell: x outside the hoisted part');
    },
    prev,
    env,
    given,
    mat: (eq, e) => {
      const [gi, j] = memberOf.get(e)!;
      if (!products.has(gi)) {
        const g = plan.groups[gi];
        const operand = evalExpr(ctx, g.eq, g.operand);
        operands[gi] = operand;
        const before = cg.nodes.length;
        const z = product(gi, operand);
        const parts = g.members.length === 1 ? [z] : op.Split(z, 1, g.members.map(() => z.shape[1] as number / g.members.length));
        reg(`Z:${gi}`, z);
        parts.forEach((p, k) => reg(`Z:${gi}:${k}`, p));
        for (const n of cg.nodes.slice(before)) n.outputs.forEach((o, k) => reg(`Z:${gi}#${n.opType}${k}`, o));
        seen = cg.nodes.length;
        products.set(gi, parts);
      }
      return products.get(gi)![j];
    },
    after: (e, v) => {
      if (!ids.has(e)) ids.set(e, ids.size);
      const id = ids.get(e)!;
      let n = 0;
      for (const node of cg.nodes.slice(seen)) for (const o of node.outputs) reg(`e${id}#${n++}`, o);
      seen = cg.nodes.length;
      reg(`e${id}`, v);
    },
  };
  for (const q of plan.eqs) env[q.name] = evalExpr(ctx, q.name, q.expr);
  return { env, byKey, keyOf, operands };
}

// ---- the layer -------------------------------------------------------------------------------------

/**
 * One equation-defined layer of a stack.
 * @param input `{ ids }` int64 [T, B] read as one-hot, or `{ x }` float [T, B, I]
 * @param state the initial states: h0 for h, c0 for the other state (when the cell has two)
 */
export function eqCellLayer(
  g: Graph,
  spec: CellSpec,
  P: Record<string, Value>,
  k: number,
  input: { ids: Value } | { x: Value },
  state: { h0: Value; c0?: Value },
  suffix = '',
): EqCellForward {
  return g.scope(`cell${k}${suffix}`, () => {
    const plan = planOf(spec);
    const param = (key: string) => {
      const v = P[cellParamName(k, suffix, key)];
      if (!v) throw new Error(`cell layer ${k}: no parameter ${cellParamName(k, suffix, key)}`);
      return v;
    };
    const dtype = state.h0.dtype;
    const inMatrix = cellParams(spec).find((p) => p.kind === 'matrix' && p.width === 'in');
    const leaves = hoist(g, plan, param, input, dtype, inMatrix ? (param(inMatrix.key).shape[1] as number) : 0);
    const op = new Ops(g);
    // each group's weights, concatenated outside the composite (the rule table splits their gradient)
    const ucat = plan.groups.map((gr) => (gr.members.length === 1 ? param(`${gr.members[0].eq}.${gr.members[0].e.name}`) : op.Concat(gr.members.map((m) => param(`${m.eq}.${m.e.name}`)), 0)));
    const vectors = plan.vectors.map(param);
    const s0 = spec.states.map((s) => (s === 'h' ? state.h0 : (state.c0 ?? state.h0)));
    return eqCellRecurrence(g, spec, plan, leaves, ucat, vectors, s0, param);
  });
}

function eqCellRecurrence(g: Graph, spec: CellSpec, plan: Plan, leaves: Value[], ucat: Value[], vectors: Value[], s0: Value[], param: (key: string) => Value): EqCellForward {
  const [T, B] = leaves[0].shape as number[];
  const H = s0[0].shape[1] as number;
  const dtype = s0[0].dtype;
  const states = spec.states;
  let fwd!: EqCellForward;
  // inside the body, the body vectors are the composite's inputs (the same outer values)
  const vecIndex = new Map(plan.vectors.map((k, i) => [k, i]));
  const bodyParam = (key: string) => (vecIndex.has(key) ? vectors[vecIndex.get(key)!] : param(key));
  g.composite('cell', () => {
    const op = new Ops(g);
    const ucatT = ucat.map((u) => op.Transpose(u, [1, 0])); // [H, m·H], once, outside the scan

    // ---- the grad body, built first: it decides which forward values the forward scan saves -----
    const gb = g.subgraph('cell_grad');
    const dCarry = states.map((s) => gb.input(gb.freshName(`d${s}_next`), dtype, [B, H]));
    const dHt = gb.input(gb.freshName('dh_t'), dtype, [B, H]);
    const place = (name: string, shape: number[]) => new Value(gb, gb.freshName(name), dtype, shape);
    const prevB = Object.fromEntries(states.map((s) => [s, place(`${s}_prev`, [B, H])]));
    const leavesB = leaves.map((l, j) => place(`leaf${j}`, [B, ...(l.shape.slice(2) as number[])]));
    const dZ: (Value | null)[] = plan.groups.map(() => null);
    const stepB = emitStep(gb, spec, plan, bodyParam, prevB, leavesB, (gi, operand) => {
      const z = place(`Z${gi}`, [B, ucat[gi].shape[0] as number]);
      gb.composite('product', () => ({
        inputs: [operand],
        outputs: [z],
        backward: (bg, [d]) => {
          dZ[gi] = d;
          return [d ? new Ops(bg).Gemm(d, ucat[gi], null) : null];
        },
      }));
      return z;
    }, dtype);
    const bo = new Ops(gb);
    const fwdEnd = gb.nodes.length;
    const seeds: [Value, Value | null][] = states.map((s, i) => [stepB.env[s], s === 'h' ? bo.Add(dCarry[i], dHt) : dCarry[i]]);
    const wrt = [...states.map((s) => prevB[s]), ...leavesB, ...vectors];
    const grads = gradientsFrom(gb, seeds, wrt);
    const zerosB = (shape: number[]) => bo.ConstantOfShape(shape, dtype, 0);
    const [dPrev, dLeaves, dVec] = [grads.slice(0, states.length), grads.slice(states.length, states.length + leaves.length), grads.slice(states.length + leaves.length)];
    dPrev.forEach((d) => gb.output(d));
    dLeaves.forEach((d) => gb.output(d));
    plan.groups.forEach((_, gi) => gb.output(dZ[gi] ?? zerosB([B, ucat[gi].shape[0] as number])));
    dVec.forEach((d) => gb.output(d));
    // keep the gradient nodes that lead to the outputs; the forward values they read become inputs
    const produced = new Set<Value>();
    const needed = new Set<Value>(gb.outputs);
    const keep: boolean[] = [];
    for (let i = gb.nodes.length - 1; i >= fwdEnd; i--) {
      const n = gb.nodes[i];
      keep[i] = n.outputs.some((o) => needed.has(o));
      if (keep[i]) {
        n.outputs.forEach((o) => produced.add(o));
        for (const v of n.inputs) if (v) needed.add(v);
      }
    }
    const saved: string[] = [];
    for (const v of needed) {
      if (v.graph !== gb || produced.has(v) || gb.inputs.includes(v)) continue;
      const key = stepB.keyOf.get(v);
      if (key === undefined) throw new Error(`cell: the gradient reads ${v}, which has no forward counterpart`);
      saved.push(key);
    }
    saved.sort();
    const kept = gb.nodes.filter((_, i) => i >= fwdEnd && keep[i]);
    gb.nodes.splice(0, gb.nodes.length, ...kept);
    gb.tape.splice(0, gb.tape.length);
    for (const key of saved) gb.inputs.push(stepB.byKey.get(key)!);

    // ---- forward scan -----------------------------------------------------------------------------
    const body = g.subgraph('cell_body');
    const prevF = Object.fromEntries(states.map((s) => [s, body.input(body.freshName(`${s}_prev`), dtype, [B, H])]));
    const leavesF = leaves.map((l, j) => body.input(body.freshName(`leaf${j}_t`), dtype, [B, ...(l.shape.slice(2) as number[])]));
    const stepF = emitStep(body, spec, plan, bodyParam, prevF, leavesF, (gi, operand) => new Ops(body).Gemm(operand, ucatT[gi], null), dtype);
    for (const s of states) body.output(stepF.env[s]);
    // per-step outputs: h, every equation, the operands of the products, what backward reads
    const outKeys: string[] = [];
    const outKey = (key: string) => {
      if (!outKeys.includes(key)) outKeys.push(key);
    };
    const keyF = (v: Value) => stepF.keyOf.get(v)!;
    outKey(keyF(stepF.env.h));
    for (const q of plan.eqs) outKey(keyF(stepF.env[q.name]));
    stepF.operands.forEach((v) => outKey(keyF(v)));
    for (const k of saved) if (!k.startsWith('leaf:')) outKey(k);
    const scanKeys = outKeys.filter((k) => !k.startsWith('leaf:'));
    for (const k of scanKeys) {
      const v = stepF.byKey.get(k);
      if (!v) throw new Error(`cell: no forward value for ${k}`);
      body.output(v);
    }
    const outs = op.Scan(body, s0, leaves);
    const finals = outs.slice(0, states.length);
    const seq = new Map<string, Value>(scanKeys.map((k, i) => [k, outs[states.length + i]]));
    leaves.forEach((l, j) => seq.set(`leaf:${j}`, l));
    const seqOf = (k: string) => seq.get(k)!;
    const hs = seqOf(keyF(stepF.env.h));
    const iH = states.indexOf('h');
    const other = states.findIndex((s) => s !== 'h');
    fwd = {
      kind: 'cell',
      hs,
      hT: finals[iH],
      ...(other >= 0 ? { cT: finals[other] } : {}),
      maps: Object.fromEntries(plan.eqs.map((q) => [q.name, seqOf(keyF(stepF.env[q.name]))])),
    };
    const operandSeq = stepF.operands.map((v) => seqOf(keyF(v)));
    const diffOutputs = [hs, ...finals];
    return {
      inputs: [...leaves, ...ucat, ...vectors, ...s0],
      outputs: diffOutputs,
      backward: (bg, [dhs, ...dFinals], needs) => {
        const o = new Ops(bg);
        const zeros = (shape: number[]) => o.ConstantOfShape(shape, dtype, 0);
        const init = states.map((_, i) => dFinals[i] ?? zeros([B, H]));
        const outs = o.Scan(gb, init, [dhs ?? zeros([T, B, H]), ...saved.map(seqOf)], { reverseInputs: true, reverseOutputs: true });
        const nS = states.length;
        const dS0 = outs.slice(0, nS);
        const dL = outs.slice(nS, nS + leaves.length);
        const dZs = outs.slice(nS + leaves.length, nS + leaves.length + plan.groups.length);
        const dVs = outs.slice(nS + leaves.length + plan.groups.length);
        const dU = plan.groups.map((_, gi) =>
          needs(ucat[gi]) ? o.Gemm(o.Reshape(dZs[gi], [T * B, ucat[gi].shape[0] as number]), o.Reshape(operandSeq[gi], [T * B, H]), null, { transA: 1 }) : null,
        );
        const dV = vectors.map((v, i) => (needs(v) ? o.ReduceSum(dVs[i], [0]) : null));
        return [...dL, ...dU, ...dV, ...dS0];
      },
    };
  });
  return fwd;
}

/**
 * One unrolled step of layer k from primitives, for programs differentiated by the rule table
 * (gradients through time): x [B, I] the step's input, the states before → after.
 */
export function eqCellStep(g: Graph, spec: CellSpec, P: Record<string, Value>, k: number, x: Value, state: { h: Value; c?: Value }, suffix = ''): { h: Value; c?: Value } {
  const op = new Ops(g);
  const param = (key: string) => P[cellParamName(k, suffix, key)];
  const prev = Object.fromEntries(spec.states.map((s) => [s, s === 'h' ? state.h : (state.c ?? state.h)]));
  const env: Record<string, Value> = {};
  const ctx: EvalCtx = { op, dtype: x.dtype, param, x: () => x, prev, env };
  for (const q of spec.equations) env[q.name] = evalExpr(ctx, q.name, q.expr);
  const other = spec.states.find((s) => s !== 'h');
  return { h: env.h, ...(other ? { c: env[other] } : {}) };
}
