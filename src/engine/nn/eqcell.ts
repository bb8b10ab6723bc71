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
  /** values for expressions computed with others (a leaf + product sum taken from a fused GEMM) */
  intercept?: (e: Expr) => Value | undefined;
  /** called after each expression is evaluated (registration of the values it made) */
  after?: (e: Expr, v: Value) => void;
}

/** Evaluates an expression of equation `eq` into ctx.op's graph. */
function evalExpr(c: EvalCtx, eq: string, e: Expr): Value {
  const hit = c.given?.get(e) ?? c.intercept?.(e);
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
  /**
   * merged products of recurrent operands; `sums` where every member is the second term of a sum
   * `leaf + U h` (the leaves then enter the scan concatenated, as the product GEMM's C)
   */
  groups: { key: string; eq: string; operand: Expr; members: { eq: string; e: Mat }[]; sums?: { sum: Expr; leaf: number }[] }[];
  /** what the scan reads per step: the leaves not fused into a product, then one per fused group */
  scanInputs: ({ leaf: number } | { group: number })[];
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
  // fusion: a product whose every member is added to one leaf takes the leaves as its GEMM's C
  const parents = new Map<Expr, Expr>();
  const link = (e: Expr): void => {
    const kids = e.k === 'bin' ? [e.a, e.b] : e.k === 'neg' ? [e.a] : e.k === 'call' ? e.args : e.k === 'mat' ? [e.arg] : [];
    for (const k of kids) {
      parents.set(k, e);
      link(k);
    }
  };
  for (const q of eqs) link(q.expr);
  const leafIndex = new Map(leaves.map((l, i) => [l.e, i]));
  const fused = new Set<number>();
  for (const g of groups) {
    const sums = g.members.map((m) => {
      const p = parents.get(m.e);
      return p && p.k === 'bin' && p.op === '+' && p.b === m.e && leafIndex.has(p.a) ? { sum: p, leaf: leafIndex.get(p.a)! } : undefined;
    });
    if (sums.every((x) => x !== undefined) && new Set(sums.map((x) => x!.leaf)).size === sums.length && sums.every((x) => !fused.has(x!.leaf))) {
      g.sums = sums as { sum: Expr; leaf: number }[];
      for (const x of g.sums) fused.add(x.leaf);
    }
  }
  const scanInputs: Plan['scanInputs'] = [...leaves.map((_, i) => i).filter((i) => !fused.has(i)).map((leaf) => ({ leaf })), ...groups.flatMap((g, group) => (g.sums ? [{ group }] : []))];
  const plan: Plan = { eqs, leaves, groups, vectors: [...vectors], scanInputs };
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
    const bs = slots.map((s) => (s.biases.length ? s.biases.map(param).reduce((a, b) => op.Add(a, b)) : g.const(new Array(H).fill(0), dtype, [H])));
    const bias = anyBias ? (bs.length === 1 ? bs[0] : op.Concat(bs, 0)) : null;
    let xw: Value;
    if ('ids' in input) {
      xw = op.Gather(op.Transpose(w, [1, 0]), input.ids, 0);
      if (bias) xw = op.Add(xw, bias);
    } else {
      const [T, B, I] = input.x.shape;
      if (typeof T === 'number' && typeof B === 'number') xw = op.Reshape(op.Gemm(op.Reshape(input.x, [T * B, I]), w, bias, { transB: 1 }), [T, B, ws.length * H]);
      else {
        // symbolic T, B (an exported model): a broadcast MatMul
        xw = op.MatMul(input.x, op.Transpose(w, [1, 0]));
        if (bias) xw = op.Add(xw, bias);
      }
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
 * Emits the equations for one step into `cg`: prev [B, H] per state, scanIn [B, ·] per scan input
 * (plan.scanInputs). `product(gi, operand, addend)` gives group gi's merged product [B, m·H], plus
 * the addend (a fused group's leaves) where there is one.
 */
function emitStep(
  cg: Graph,
  spec: CellSpec,
  plan: Plan,
  param: (key: string) => Value,
  prev: Record<string, Value>,
  scanIn: Value[],
  product: (gi: number, operand: Value, addend: Value | null) => Value,
  dtype: Value['dtype'],
): StepOut {
  const op = new Ops(cg);
  const byKey = new Map<string, Value>();
  const keyOf = new Map<Value, string>();
  const reg = (key: string, v: Value) => {
    if (keyOf.has(v)) return;
    keyOf.set(v, key);
    byKey.set(key, v);
  };
  spec.states.forEach((s) => reg(`prev:${s}`, prev[s]));
  scanIn.forEach((l, j) => reg(`in:${j}`, l));
  const ids = new Map<Expr, number>();
  let seen = cg.nodes.length;
  const given = new Map<Expr, Value>();
  const addend = new Map<number, Value>();
  plan.scanInputs.forEach((si, j) => ('leaf' in si ? given.set(plan.leaves[si.leaf].e, scanIn[j]) : addend.set(si.group, scanIn[j])));
  const products = new Map<number, Value[]>();
  const operands: Value[] = [];
  const memberOf = new Map<Expr, [number, number]>();
  plan.groups.forEach((g, gi) => g.members.forEach((m, j) => memberOf.set(g.sums ? g.sums[j].sum : m.e, [gi, j])));
  const env: Record<string, Value> = {};
  const groupValue = (gi: number, j: number): Value => {
    if (!products.has(gi)) {
      const g = plan.groups[gi];
      const operand = evalExpr(ctx, g.eq, g.operand);
      operands[gi] = operand;
      const before = cg.nodes.length;
      const z = product(gi, operand, addend.get(gi) ?? null);
      const parts = g.members.length === 1 ? [z] : op.Split(z, 1, g.members.map(() => (z.shape[1] as number) / g.members.length));
      reg(`Z:${gi}`, z);
      parts.forEach((p, k) => reg(`Z:${gi}:${k}`, p));
      for (const n of cg.nodes.slice(before)) n.outputs.forEach((o, k) => reg(`Z:${gi}#${n.opType}${k}`, o));
      seen = cg.nodes.length;
      products.set(gi, parts);
    }
    return products.get(gi)![j];
  };
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
    mat: (_eq, e) => {
      const m = memberOf.get(e);
      return m ? groupValue(...m) : undefined;
    },
    intercept: (e) => {
      const m = e.k === 'bin' ? memberOf.get(e) : undefined;
      return m ? groupValue(...m) : undefined;
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
    // what the scan reads per step; a fused group's leaves concatenated in its members' order
    const scanIn = plan.scanInputs.map((si) => ('leaf' in si ? leaves[si.leaf] : concat(op, plan.groups[si.group].sums!.map((x) => leaves[x.leaf]), 2)));
    // each group's weights, concatenated outside the composite (the rule table splits their gradient)
    const ucat = plan.groups.map((gr) => concat(op, gr.members.map((m) => param(`${m.eq}.${m.e.name}`)), 0));
    const vectors = plan.vectors.map(param);
    const s0 = spec.states.map((s) => (s === 'h' ? state.h0 : (state.c0 ?? state.h0)));
    return eqCellRecurrence(g, spec, plan, scanIn, ucat, vectors, s0, param);
  });
}

const concat = (op: Ops, vs: Value[], axis: number) => (vs.length === 1 ? vs[0] : op.Concat(vs, axis));

/** Elementwise ops: in a grad body, those reading only saved forward values run before the scan, over all steps. */
const ELEMENTWISE = new Set(['Add', 'Sub', 'Mul', 'Div', 'Neg', 'Sigmoid', 'Tanh', 'Relu', 'Abs', 'Sign', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Where', 'Greater', 'Less', 'Equal', 'And', 'Or', 'Not', 'Cast', 'HardSigmoid', 'Identity']);

interface GradBody {
  /** the reverse scan's body: carries dstate_next, then dh_t and `bodyIn` per step */
  gb: Graph;
  /** the forward values (placeholders) the gradient reads, with their keys */
  savedVals: Map<Value, string>;
  /** elementwise nodes of saved values alone, run before the scan over all steps */
  preNodes: Graph['nodes'];
  /** the body's per-step inputs after dh_t: saved values and outputs of preNodes */
  bodyIn: Value[];
}

/**
 * The grad body of one step: the equations built again (into a subgraph of `host`), the rule table
 * run over them seeded with the states' incoming gradients, then only the gradient nodes kept; the
 * forward values they read become per-step inputs (saved by the forward scan), and the elementwise
 * nodes that read nothing else move out of the scan.
 */
function gradBody(host: Graph, spec: CellSpec, plan: Plan, B: number | string, H: number, dtype: Value['dtype'], scanWidths: number[][], bodyParam: (key: string) => Value, ucat: Value[], vectors: Value[]): GradBody {
  const states = spec.states;
  const gb = host.subgraph('cell_grad');
  const dCarry = states.map((s) => gb.input(gb.freshName(`d${s}_next`), dtype, [B, H]));
  const dHt = gb.input(gb.freshName('dh_t'), dtype, [B, H]);
  const place = (name: string, shape: (number | string)[]) => new Value(gb, gb.freshName(name), dtype, shape);
  const prevB = Object.fromEntries(states.map((s) => [s, place(`${s}_prev`, [B, H])]));
  const inB = scanWidths.map((w, j) => place(`in${j}`, [B, ...w]));
  const dZ: (Value | null)[] = plan.groups.map(() => null);
  const step = emitStep(
    gb,
    spec,
    plan,
    bodyParam,
    prevB,
    inB,
    (gi, operand, addend) => {
      // the product as the forward scan saved it; its gradient goes to the operand and, through
      // the fused sum, to the addend
      const z = place(`Z${gi}`, [B, ucat[gi].shape[0]]);
      gb.composite('product', () => ({
        inputs: addend ? [operand, addend] : [operand],
        outputs: [z],
        backward: (bg, [d]) => {
          dZ[gi] = d;
          return d ? [new Ops(bg).Gemm(d, ucat[gi], null), ...(addend ? [d] : [])] : [null, null];
        },
      }));
      return z;
    },
    dtype,
  );
  const bo = new Ops(gb);
  const fwdEnd = gb.nodes.length;
  const seeds: [Value, Value | null][] = states.map((s, i) => [step.env[s], s === 'h' ? bo.Add(dCarry[i], dHt) : dCarry[i]]);
  const grads = gradientsFrom(gb, seeds, [...states.map((s) => prevB[s]), ...inB, ...vectors]);
  // outputs: d prev per state (carries), d scan input per step, d product per group, d vector
  const nIn = states.length + inB.length;
  grads.slice(0, nIn).forEach((d) => gb.output(d));
  plan.groups.forEach((_, gi) => gb.output(dZ[gi] ?? bo.ConstantOfShape([B as number, ucat[gi].shape[0] as number], dtype, 0)));
  grads.slice(nIn).forEach((d) => gb.output(d));
  // keep the gradient nodes that lead to the outputs
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
  const savedVals = new Map<Value, string>();
  for (const v of needed) {
    if (v.graph !== gb || produced.has(v) || gb.inputs.includes(v)) continue;
    const key = step.keyOf.get(v);
    if (key === undefined) throw new Error(`cell: the gradient reads ${v}, which has no forward counterpart`);
    savedVals.set(v, key);
  }
  const kept = gb.nodes.filter((_, i) => i >= fwdEnd && keep[i]);
  const pre = new Set<Value>();
  const preNodes = kept.filter((n) => {
    const ins = n.inputs.filter((v): v is Value => !!v);
    const ok = ELEMENTWISE.has(n.opType) && ins.every((v) => v.graph !== gb || savedVals.has(v) || pre.has(v)) && ins.some((v) => savedVals.has(v) || pre.has(v));
    if (ok) n.outputs.forEach((o) => pre.add(o));
    return ok;
  });
  const body = kept.filter((n) => !preNodes.includes(n));
  const bodyIn: Value[] = [];
  const isIn = (v: Value) => savedVals.has(v) || pre.has(v);
  for (const n of body) for (const v of n.inputs) if (v && isIn(v) && !bodyIn.includes(v)) bodyIn.push(v);
  for (const v of gb.outputs) if (isIn(v) && !bodyIn.includes(v)) bodyIn.push(v);
  gb.nodes.splice(0, gb.nodes.length, ...body);
  gb.tape.splice(0, gb.tape.length);
  for (const v of bodyIn) gb.inputs.push(v);
  return { gb, savedVals, preNodes, bodyIn };
}

function eqCellRecurrence(g: Graph, spec: CellSpec, plan: Plan, scanIn: Value[], ucat: Value[], vectors: Value[], s0: Value[], param: (key: string) => Value): EqCellForward {
  const [T, B] = scanIn[0].shape;
  const H = s0[0].shape[1] as number;
  const dtype = s0[0].dtype;
  const states = spec.states;
  const nS = states.length;
  const widths = scanIn.map((l) => l.shape.slice(2) as number[]);
  let fwd!: EqCellForward;
  // inside the body, the body vectors are the composite's inputs (the same outer values)
  const vecIndex = new Map(plan.vectors.map((k, i) => [k, i]));
  const bodyParam = (key: string) => (vecIndex.has(key) ? vectors[vecIndex.get(key)!] : param(key));
  g.composite('cell', () => {
    const op = new Ops(g);
    const ucatT = ucat.map((u) => op.Transpose(u, [1, 0])); // [H, m·H], once, outside the scan

    // which forward values backward reads: the grad body built once in a scratch graph (outer
    // values stood in for by inputs of the same shapes); backward builds it again for real
    const scratch = new Graph('cell_analysis');
    const stand = new Map<Value, Value>();
    const sub = (v: Value) => stand.get(v) ?? stand.set(v, scratch.input(scratch.freshName('outer'), v.dtype, v.shape.map((d) => (typeof d === 'number' ? d : 2)))).get(v)!;
    const analysis = gradBody(scratch, spec, plan, typeof B === 'number' ? B : 2, H, dtype, widths, (key) => sub(bodyParam(key)), ucat.map(sub), vectors.map(sub));
    const saved = [...new Set(analysis.savedVals.values())];

    // ---- forward scan -----------------------------------------------------------------------------
    const fb = g.subgraph('cell_body');
    const prevF = Object.fromEntries(states.map((s) => [s, fb.input(fb.freshName(`${s}_prev`), dtype, [B, H])]));
    const inF = scanIn.map((l, j) => fb.input(fb.freshName(`in${j}_t`), dtype, [B, ...widths[j]]));
    const fo = new Ops(fb);
    const stepF = emitStep(fb, spec, plan, bodyParam, prevF, inF, (gi, operand, addend) => fo.Gemm(operand, ucatT[gi], addend), dtype);
    for (const s of states) fb.output(stepF.env[s]);
    // per-step outputs: every equation (the states among them), the products' operands and what
    // backward reads; previous states and scan inputs are known outside (the state sequence
    // shifted by one step; the inputs themselves)
    const outKeys: string[] = [];
    const outKey = (key: string) => {
      if (!outKeys.includes(key)) outKeys.push(key);
    };
    const keyF = (v: Value) => stepF.keyOf.get(v)!;
    const newKey = (s: string) => keyF(stepF.env[s]);
    for (const s of states) outKey(newKey(s));
    for (const q of plan.eqs) outKey(keyF(stepF.env[q.name]));
    stepF.operands.forEach((v) => outKey(keyF(v)));
    for (const k of saved) outKey(k);
    const scanKeys = outKeys.filter((k) => !k.startsWith('in:') && !k.startsWith('prev:'));
    for (const k of scanKeys) fb.output(stepF.byKey.get(k)!);
    const outs = op.Scan(fb, s0, scanIn);
    const finals = outs.slice(0, nS);
    const seq = new Map<string, Value>(scanKeys.map((k, i) => [k, outs[nS + i]]));
    scanIn.forEach((l, j) => seq.set(`in:${j}`, l));
    // a sequence by key; a previous-state sequence is the state's sequence shifted by one step,
    // emitted into `into` when first asked for
    const seqOf = (k: string, into: Graph = g): Value => {
      let v = seq.get(k);
      if (!v && k.startsWith('prev:')) {
        const i = states.indexOf(k.slice(5));
        const after: Value = seqOf(newKey(states[i]), into);
        const o = new Ops(into);
        const first = o.Unsqueeze(s0[i], [0]);
        v = (T as number) > 1 ? o.Concat([first, o.Slice(after, [0], [(T as number) - 1], [0])], 0) : first;
        seq.set(k, v);
      }
      if (!v) throw new Error(`cell: no sequence for ${k}`);
      return v;
    };
    const hs = seqOf(newKey('h'));
    const iH = states.indexOf('h');
    const other = states.findIndex((s) => s !== 'h');
    fwd = {
      kind: 'cell',
      hs,
      hT: finals[iH],
      ...(other >= 0 ? { cT: finals[other] } : {}),
      maps: Object.fromEntries(plan.eqs.map((q) => [q.name, seqOf(keyF(stepF.env[q.name]))])),
    };
    return {
      inputs: [...scanIn, ...ucat, ...vectors, ...s0],
      outputs: [hs, ...finals],
      backward: (bg, [dhs, ...dFinals], needs) => {
        if (typeof T !== 'number' || typeof B !== 'number') throw new Error('cell: backward needs static T and B');
        const o = new Ops(bg);
        const zeros = (shape: number[]) => o.ConstantOfShape(shape, dtype, 0);
        const real = gradBody(bg, spec, plan, B, H, dtype, widths, bodyParam, ucat, vectors);
        // the saved values over all steps, then the elementwise nodes that read only them
        const outer = new Map<Value, Value>();
        for (const [v, key] of real.savedVals) {
          if (!saved.includes(key)) throw new Error(`cell: backward reads ${key}, which the forward scan did not save`);
          outer.set(v, seqOf(key, bg));
        }
        for (const n of real.preNodes) {
          const ins = n.inputs.map((v) => (v ? (outer.get(v) ?? v) : null));
          const made = bg.node(n.opType, ins, n.attrs, n.outputs.map((v) => ({ dtype: v.dtype, shape: [T, ...v.shape] })));
          n.outputs.forEach((v, k) => outer.set(v, made[k]));
        }
        const init = states.map((_, i) => dFinals[i] ?? zeros([B, H]));
        const res = o.Scan(real.gb, init, [dhs ?? zeros([T, B, H]), ...real.bodyIn.map((v) => outer.get(v)!)], { reverseInputs: true, reverseOutputs: true });
        const dS0 = res.slice(0, nS);
        const dL = res.slice(nS, nS + scanIn.length);
        const dZs = res.slice(nS + scanIn.length, nS + scanIn.length + plan.groups.length);
        const dVs = res.slice(nS + scanIn.length + plan.groups.length);
        // the products' weight gradients: one GEMM over all T·B rows each
        const dU = plan.groups.map((_, gi) =>
          needs(ucat[gi]) ? o.Gemm(o.Reshape(dZs[gi], [T * B, ucat[gi].shape[0] as number]), o.Reshape(seqOf(keyF(stepF.operands[gi]), bg), [T * B, H]), null, { transA: 1 }) : null,
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

/**
 * An equation cell in an exported model (symbolic T and B): the layer's Scan in each direction with
 * zero initial states, the reverse direction over each sequence read backwards from its last real
 * step. Returns the outputs [T, B, D·H], the final states [B, D·H] (PyTorch's h_n: the forward
 * direction at each sequence's last real step, the reverse at step 0) and, for one forward
 * direction, the final second state.
 * @param lengths int64 [B] real lengths (null: every sequence fills T)
 */
export function eqCellExport(g: Graph, spec: CellSpec, P: Record<string, Value>, k: number, H: number, x: Value, suffixes: string[], lengths: Value | null): { Y: Value; Yh: Value; cT?: Value } {
  const op = new Ops(g);
  // zeros [B, H] for a symbolic batch: from the first step's input, times zero
  const x0 = op.Squeeze(firstStep(g, x), [0]); // [B, I]
  const zeros = op.Add(op.Mul(op.ReduceSum(x0, [1], true), op.c(x, 0)), g.const(new Array(H).fill(0), x.dtype, [1, H])); // [B, H]
  const runs = suffixes.map((sfx) => {
    const reverse = sfx !== '';
    const input = reverse && lengths ? op.ReverseSequence(x, lengths, 0, 1) : reverse ? reverseAll(g, x) : x;
    const l = eqCellLayer(g, spec, P, k, { x: input }, { h0: zeros, c0: zeros }, sfx);
    const hs = reverse && lengths ? op.ReverseSequence(l.hs, lengths, 0, 1) : reverse ? reverseAll(g, l.hs) : l.hs;
    // h_n: forward at the last real step; reverse: its output at step 0
    const last = reverse ? op.Squeeze(firstStep(g, hs), [0]) : lengths ? lastReal(g, hs, lengths, H) : l.hT;
    return { hs, last, cT: l.cT };
  });
  return {
    Y: runs.length === 1 ? runs[0].hs : op.Concat(runs.map((r) => r.hs), 2),
    Yh: runs.length === 1 ? runs[0].last : op.Concat(runs.map((r) => r.last), 1),
    ...(runs.length === 1 && runs[0].cT ? { cT: runs[0].cT } : {}),
  };
}

/** hs [T, B, H] at each sequence's last real step (lengths int64 [B]) → [B, H]. */
function lastReal(g: Graph, hs: Value, lengths: Value, H: number): Value {
  const op = new Ops(g);
  const idx = op.Unsqueeze(op.Sub(lengths, g.const([1], 'int64', [])), [1]); // [B, 1]
  return g.node('GatherND', [op.Transpose(hs, [1, 0, 2]), idx], { batch_dims: { kind: 'int', value: 1 } }, [{ dtype: hs.dtype, shape: [hs.shape[1], H] }])[0];
}

/** x [T, B, ...] in reversed time order, for a symbolic T (a Slice with step −1). */
function reverseAll(g: Graph, x: Value): Value {
  const op = new Ops(g);
  return g.node('Slice', [x, op.i64([-1]), op.i64([-(2 ** 62)]), op.i64([0]), op.i64([-1])], {}, [{ dtype: x.dtype, shape: x.shape }])[0];
}

/** x [T, ...] → its first step [1, ...], for a symbolic T. */
function firstStep(g: Graph, x: Value): Value {
  const op = new Ops(g);
  return g.node('Slice', [x, op.i64([0]), op.i64([1]), op.i64([0])], {}, [{ dtype: x.dtype, shape: [1, ...x.shape.slice(1)] }])[0];
}
