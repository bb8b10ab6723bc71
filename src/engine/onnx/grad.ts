// Reverse-mode differentiation over a graph's tape: a rule per ONNX op type, each emitting ONNX
// nodes, walked from the loss back to the requested values. Composites (recurrent layers) bring
// their own backward emitters. A value reached by a node without a rule is an error naming the op.
//
// Gradients are d-prefixed mirrors of forward values: d(x) has x's dtype and shape.

import { Graph, Node, Shape, TapeItem, Value, shapeEqual } from './builder';
import { Ops } from './ops';

const isFloat = (v: Value) => v.dtype === 'float32' || v.dtype === 'float64';

export interface RuleCtx {
  g: Graph;
  op: Ops;
  /** whether the input needs a gradient (rules may skip the others) */
  needs(v: Value | null): boolean;
  /** sums dy over broadcast axes so that it has the given shape */
  unbroadcast(dy: Value, shape: Shape): Value;
}

export type Rule = (ctx: RuleCtx, node: Node, dOut: (Value | null)[]) => (Value | null)[];

function attrInt(node: Node, name: string, dflt: number): number {
  const a = node.attrs[name];
  return a && a.kind === 'int' ? a.value : dflt;
}
/** A float attribute as the runtime sees it: stored as float32 in the model. */
function attrFloat(node: Node, name: string, dflt: number): number {
  const a = node.attrs[name];
  return Math.fround(a && a.kind === 'float' ? a.value : dflt);
}
function attrInts(node: Node, name: string): number[] | undefined {
  const a = node.attrs[name];
  return a && a.kind === 'ints' ? [...a.value] : undefined;
}
function constInts(ctx: RuleCtx, v: Value | null, op: string): number[] | undefined {
  return v ? ctx.g.constInts(v, op, 'axes') : undefined;
}

/** Inverse of a permutation. */
function invPerm(p: readonly number[]): number[] {
  const q = new Array<number>(p.length);
  p.forEach((v, i) => (q[v] = i));
  return q;
}

/** Expands dy (the gradient of a reduction's output) back to x's shape. */
function unreduce(ctx: RuleCtx, dy: Value, x: Value, axes: number[] | undefined, keepdims: boolean): Value {
  const { op } = ctx;
  const as = (axes ?? x.shape.map((_, i) => i)).map((a) => (a < 0 ? a + x.rank : a)).sort((a, b) => a - b);
  let d = dy;
  if (!keepdims && as.length) d = op.Unsqueeze(d, as);
  if (x.shape.some((s) => typeof s !== 'number')) {
    // symbolic: broadcast against a zeros-free path by multiplying with ones shaped like x
    throw new Error('reduction gradient needs a static input shape');
  }
  return op.Expand(d, x.shape as number[]);
}

export const RULES: Record<string, Rule> = {
  Identity: (_c, _n, [dy]) => [dy],
  Add: (c, n, [dy]) => {
    const [a, b] = n.inputs as Value[];
    return [c.needs(a) ? c.unbroadcast(dy!, a.shape) : null, c.needs(b) ? c.unbroadcast(dy!, b.shape) : null];
  },
  Sub: (c, n, [dy]) => {
    const [a, b] = n.inputs as Value[];
    return [c.needs(a) ? c.unbroadcast(dy!, a.shape) : null, c.needs(b) ? c.unbroadcast(c.op.Neg(dy!), b.shape) : null];
  },
  Mul: (c, n, [dy]) => {
    const [a, b] = n.inputs as Value[];
    return [
      c.needs(a) ? c.unbroadcast(c.op.Mul(dy!, b), a.shape) : null,
      c.needs(b) ? c.unbroadcast(c.op.Mul(dy!, a), b.shape) : null,
    ];
  },
  Div: (c, n, [dy]) => {
    const [a, b] = n.inputs as Value[];
    const y = n.outputs[0];
    return [
      c.needs(a) ? c.unbroadcast(c.op.Div(dy!, b), a.shape) : null,
      c.needs(b) ? c.unbroadcast(c.op.Neg(c.op.Div(c.op.Mul(dy!, y), b)), b.shape) : null,
    ];
  },
  Sum: (c, n, [dy]) => (n.inputs as Value[]).map((x) => (c.needs(x) ? c.unbroadcast(dy!, x.shape) : null)),
  Neg: (c, _n, [dy]) => [c.op.Neg(dy!)],
  Exp: (c, n, [dy]) => [c.op.Mul(dy!, n.outputs[0])],
  Log: (c, n, [dy]) => [c.op.Div(dy!, n.inputs[0]!)],
  Sqrt: (c, n, [dy]) => [c.op.Div(c.op.Mul(dy!, c.op.c(dy!, 0.5)), n.outputs[0])],
  Reciprocal: (c, n, [dy]) => {
    const y = n.outputs[0];
    return [c.op.Neg(c.op.Mul(dy!, c.op.Mul(y, y)))];
  },
  Abs: (c, n, [dy]) => [c.op.Mul(dy!, c.op.Sign(n.inputs[0]!))],
  Sigmoid: (c, n, [dy]) => {
    const y = n.outputs[0];
    const { op } = c;
    return [op.Mul(dy!, op.Mul(y, op.Sub(op.c(y, 1), y)))];
  },
  HardSigmoid: (c, n, [dy]) => {
    // y = max(0, min(1, alpha·x + beta)); dy/dx = alpha inside (0, 1), else 0
    const y = n.outputs[0];
    const { op } = c;
    const alpha = attrFloat(n, 'alpha', 0.2);
    const inside = op.And(op.Greater(y, op.c(y, 0)), op.Less(y, op.c(y, 1)));
    return [op.Where(inside, op.Mul(dy!, op.c(y, alpha)), op.c(y, 0))];
  },
  Tanh: (c, n, [dy]) => {
    const y = n.outputs[0];
    const { op } = c;
    return [op.Mul(dy!, op.Sub(op.c(y, 1), op.Mul(y, y)))];
  },
  Relu: (c, n, [dy]) => {
    const x = n.inputs[0]!;
    const { op } = c;
    return [op.Where(op.Greater(x, op.c(x, 0)), dy!, op.c(x, 0))];
  },
  Clip: (c, n, [dy]) => {
    const [x, lo, hi] = n.inputs;
    const { op } = c;
    let inside: Value | null = null;
    if (lo) inside = op.Not(op.Less(x!, lo));
    if (hi) {
      const le = op.Not(op.Greater(x!, hi));
      inside = inside ? op.And(inside, le) : le;
    }
    return [inside ? op.Where(inside, dy!, op.c(x!, 0)) : dy, null, null];
  },
  Max: (c, n, [dy]) => {
    const [a, b] = n.inputs as Value[];
    const { op } = c;
    const ge = op.Not(op.Less(a, b)); // ties go to a
    const zero = op.c(a, 0);
    return [
      c.needs(a) ? c.unbroadcast(op.Where(ge, dy!, zero), a.shape) : null,
      c.needs(b) ? c.unbroadcast(op.Where(ge, zero, dy!), b.shape) : null,
    ];
  },
  Min: (c, n, [dy]) => {
    const [a, b] = n.inputs as Value[];
    const { op } = c;
    const le = op.Not(op.Greater(a, b)); // ties go to a
    const zero = op.c(a, 0);
    return [
      c.needs(a) ? c.unbroadcast(op.Where(le, dy!, zero), a.shape) : null,
      c.needs(b) ? c.unbroadcast(op.Where(le, zero, dy!), b.shape) : null,
    ];
  },
  Where: (c, n, [dy]) => {
    const [cond, a, b] = n.inputs as Value[];
    const { op } = c;
    const zero = op.c(dy!, 0);
    return [
      null,
      c.needs(a) ? c.unbroadcast(op.Where(cond, dy!, zero), a.shape) : null,
      c.needs(b) ? c.unbroadcast(op.Where(cond, zero, dy!), b.shape) : null,
    ];
  },
  Cast: (c, n, [dy]) => {
    const x = n.inputs[0]!;
    return [isFloat(x) ? c.op.Cast(dy!, x.dtype) : null];
  },
  MatMul: (c, n, [dy]) => {
    const [a, b] = n.inputs as Value[];
    const { op } = c;
    const swap = (v: Value) => op.Transpose(v, [...v.shape.keys()].map((i) => (i === v.rank - 2 ? v.rank - 1 : i === v.rank - 1 ? v.rank - 2 : i)));
    let da: Value | null = null;
    let db: Value | null = null;
    if (c.needs(a)) {
      da = b.rank === 2 ? op.MatMul(dy!, op.Transpose(b, [1, 0])) : op.MatMul(dy!, swap(b));
      da = c.unbroadcast(da, a.shape);
    }
    if (c.needs(b)) {
      if (b.rank === 2 && a.rank > 2) {
        // sum over the batch dims as one GEMM: [P,K]ᵀ·[P,N]
        const a2 = op.Reshape(a, [-1, a.shape[a.rank - 1]]);
        const dy2 = op.Reshape(dy!, [-1, dy!.shape[dy!.rank - 1]]);
        db = op.Gemm(a2, dy2, null, { transA: 1 });
      } else if (a.rank === 2 && b.rank === 2) {
        db = op.Gemm(a, dy!, null, { transA: 1 });
      } else {
        db = c.unbroadcast(op.MatMul(swap(a), dy!), b.shape);
      }
    }
    return [da, db];
  },
  Gemm: (c, n, [dy]) => {
    const [a, b, cc] = n.inputs;
    const { op } = c;
    const tA = attrInt(n, 'transA', 0) as 0 | 1;
    const tB = attrInt(n, 'transB', 0) as 0 | 1;
    const alpha = attrFloat(n, 'alpha', 1);
    const beta = attrFloat(n, 'beta', 1);
    let da: Value | null = null;
    let db: Value | null = null;
    let dc: Value | null = null;
    if (c.needs(a)) {
      da = tA
        ? op.Gemm(b!, dy!, null, { transA: tB, transB: 1, alpha })
        : op.Gemm(dy!, b!, null, { transB: (1 - tB) as 0 | 1, alpha });
    }
    if (c.needs(b)) {
      db = tB
        ? op.Gemm(dy!, a!, null, { transA: 1, transB: tA, alpha })
        : op.Gemm(a!, dy!, null, { transA: (1 - tA) as 0 | 1, alpha });
    }
    if (cc && c.needs(cc)) {
      const s = beta === 1 ? dy! : op.Mul(dy!, op.c(dy!, beta));
      dc = c.unbroadcast(s, cc.shape);
    }
    return [da, db, dc];
  },
  Transpose: (c, n, [dy]) => [c.op.Transpose(dy!, invPerm(attrInts(n, 'perm')!))],
  Reshape: (c, n, [dy]) => [reshapeTo(c, dy!, n.inputs[0]!), null],
  Flatten: (c, n, [dy]) => [reshapeTo(c, dy!, n.inputs[0]!)],
  Squeeze: (c, n, [dy]) => [reshapeTo(c, dy!, n.inputs[0]!), null],
  Unsqueeze: (c, n, [dy]) => [reshapeTo(c, dy!, n.inputs[0]!), null],
  Expand: (c, n, [dy]) => [c.unbroadcast(dy!, n.inputs[0]!.shape), null],
  Concat: (c, n, [dy]) => {
    const xs = n.inputs as Value[];
    const axis = attrInt(n, 'axis', 0);
    const sizes = xs.map((x) => x.shape[axis]);
    if (sizes.some((s) => typeof s !== 'number')) throw new Error('Concat gradient needs static sizes on the axis');
    const parts = c.op.Split(dy!, axis, sizes as number[]);
    return parts.map((p, i) => (c.needs(xs[i]) ? p : null));
  },
  Split: (c, n, dys) => {
    const axis = attrInt(n, 'axis', 0);
    const parts = n.outputs.map((o, i) => dys[i] ?? c.op.zerosLike(o));
    return [c.op.Concat(parts, axis), null];
  },
  Slice: (c, n, [dy]) => {
    const x = n.inputs[0]!;
    const starts = c.g.constInts(n.inputs[1]!, 'Slice', 'starts');
    const axes = n.inputs[3] ? c.g.constInts(n.inputs[3], 'Slice', 'axes') : starts.map((_, i) => i);
    // pad back with zeros on each sliced axis: [zeros before, dy, zeros after]
    let d = dy!;
    axes.forEach((ax0, k) => {
      const ax = ax0 < 0 ? ax0 + x.rank : ax0;
      const full = x.shape[ax] as number;
      const s = Math.min(Math.max(starts[k] < 0 ? starts[k] + full : starts[k], 0), full); // clamped as the forward op does
      const len = d.shape[ax] as number;
      const after = full - s - len;
      const pieces: Value[] = [];
      const zeros = (m: number) => c.op.ConstantOfShape(d.shape.map((dd, i) => (i === ax ? m : dd)) as number[], d.dtype, 0);
      if (s > 0) pieces.push(zeros(s));
      pieces.push(d);
      if (after > 0) pieces.push(zeros(after));
      d = c.op.Concat(pieces, ax);
    });
    return [d, null, null, null, null];
  },
  ReduceSum: (c, n, [dy]) => [unreduce(c, dy!, n.inputs[0]!, constInts(c, n.inputs[1], 'ReduceSum'), attrInt(n, 'keepdims', 1) === 1), null],
  ReduceMean: (c, n, [dy]) => {
    const x = n.inputs[0]!;
    const axes = constInts(c, n.inputs[1], 'ReduceMean');
    const as = (axes ?? x.shape.map((_, i) => i)).map((a) => (a < 0 ? a + x.rank : a));
    const count = as.reduce((p, a) => p * (x.shape[a] as number), 1);
    const d = unreduce(c, dy!, x, axes, attrInt(n, 'keepdims', 1) === 1);
    return [c.op.Mul(d, c.op.c(d, 1 / count)), null];
  },
  ReduceSumSquare: (c, n, [dy]) => {
    const x = n.inputs[0]!;
    const d = unreduce(c, dy!, x, constInts(c, n.inputs[1], 'ReduceSumSquare'), attrInt(n, 'keepdims', 1) === 1);
    return [c.op.Mul(d, c.op.Mul(x, c.op.c(x, 2))), null];
  },
  LogSoftmax: (c, n, [dy]) => {
    // dx = dy − softmax(x)·Σ dy
    const y = n.outputs[0];
    const axis = attrInt(n, 'axis', -1);
    const { op } = c;
    return [op.Sub(dy!, op.Mul(op.Exp(y), op.ReduceSum(dy!, [axis], true)))];
  },
  Softmax: (c, n, [dy]) => {
    const y = n.outputs[0];
    const axis = attrInt(n, 'axis', -1);
    const { op } = c;
    return [op.Mul(y, op.Sub(dy!, op.ReduceSum(op.Mul(dy!, y), [axis], true)))];
  },
  Gather: (c, n, [dy]) => {
    const [data, idx] = n.inputs as Value[];
    if (attrInt(n, 'axis', 0) !== 0) throw new Error('Gather gradient: only axis 0 is supported');
    const { op } = c;
    const zeros = op.zerosLike(data);
    return [op.ScatterND(zeros, op.Unsqueeze(idx, [-1]), dy!, 'add'), null];
  },
  // reversing the first len_b steps is its own inverse (and its own transpose)
  ReverseSequence: (c, n, [dy]) => [c.op.ReverseSequence(dy!, n.inputs[1]!, attrInt(n, 'time_axis', 0), attrInt(n, 'batch_axis', 1)), null],
  GatherElements: (c, n, [dy]) => {
    const [data, idx] = n.inputs as Value[];
    const { op } = c;
    return [op.ScatterElements(op.zerosLike(data), idx, dy!, attrInt(n, 'axis', 0), 'add'), null];
  },
};

function reshapeTo(c: RuleCtx, dy: Value, x: Value): Value {
  if (shapeEqual(dy.shape, x.shape)) return dy;
  const target = x.shape.map((d, i) => (typeof d === 'number' ? d : dy.shape[i] === d ? 0 : NaN));
  if (target.some((d) => Number.isNaN(d))) throw new Error(`cannot reshape gradient back to symbolic shape [${x.shape}]`);
  return c.op.Reshape(dy, target);
}

function makeUnbroadcast(op: Ops) {
  return (dy: Value, shape: Shape): Value => {
    if (shapeEqual(dy.shape, shape)) return dy;
    const lead = dy.rank - shape.length;
    let d = dy;
    if (lead > 0) d = op.ReduceSum(d, [...Array(lead).keys()], false);
    const keep: number[] = [];
    shape.forEach((s, i) => {
      if (s === 1 && d.shape[i] !== 1) keep.push(i);
    });
    if (keep.length) d = op.ReduceSum(d, keep, true);
    if (!shapeEqual(d.shape, shape)) throw new Error(`unbroadcast: [${dy.shape}] -> [${shape}] failed at [${d.shape}]`);
    return d;
  };
}

function itemInputs(it: TapeItem): (Value | null)[] {
  return it.kind === 'node' ? it.node.inputs : it.inputs;
}
function itemOutputs(it: TapeItem): Value[] {
  return it.kind === 'node' ? it.node.outputs : it.outputs;
}

/**
 * Emits into g the gradients of `loss` (scaled by `seed`, default 1) with respect to `wrt`.
 * Values of `wrt` that the loss does not depend on get zeros.
 */
export function gradients(g: Graph, loss: Value, wrt: Value[], seed?: Value): Value[] {
  return gradientsFrom(g, [[loss, seed ?? null]], wrt);
}

/**
 * Emits into g the gradients with respect to `wrt` of Σ ⟨v, seed⟩ over the given (value, seed)
 * pairs (a null seed: 1, for a scalar loss): several outputs at once, each with its own incoming
 * gradient, as a backward pass through a scan body needs. Values of `wrt` reached by none get zeros.
 */
export function gradientsFrom(g: Graph, seeds: [Value, Value | null][], wrt: Value[]): Value[] {
  const op = new Ops(g);
  // forward pass: which values depend on wrt
  const dep = new Set<Value>(wrt);
  for (const it of g.tape) {
    if (itemInputs(it).some((v) => v && dep.has(v))) {
      for (const o of itemOutputs(it)) if (isFloat(o)) dep.add(o);
    }
  }
  if (!seeds.some(([v]) => dep.has(v))) return wrt.map((w) => op.zerosLike(w));

  const pending = new Map<Value, Value[]>();
  const add = (v: Value, d: Value) => {
    const list = pending.get(v);
    if (list) list.push(d);
    else pending.set(v, [d]);
  };
  const take = (v: Value): Value | null => {
    const list = pending.get(v);
    if (!list || list.length === 0) return null;
    const d = list.length === 1 ? list[0] : op.Sum(...list);
    pending.set(v, [d]);
    return d;
  };
  for (const [v, seed] of seeds) if (dep.has(v)) add(v, seed ?? op.c(v, 1));

  const ctx: RuleCtx = { g, op, needs: (v) => !!v && dep.has(v), unbroadcast: makeUnbroadcast(op) };
  for (let k = g.tape.length - 1; k >= 0; k--) {
    const it = g.tape[k];
    const outs = itemOutputs(it);
    const dOut = outs.map((o) => (dep.has(o) ? take(o) : null));
    if (dOut.every((d) => d === null)) continue;
    const ins = itemInputs(it);
    if (!ins.some((v) => v && dep.has(v))) continue;
    let dIn: (Value | null)[];
    if (it.kind === 'composite') {
      dIn = g.scope(`grad/${it.name}`, () => it.backward(g, dOut, ctx.needs));
    } else {
      const rule = RULES[it.node.opType];
      if (!rule) throw new Error(`no gradient rule for ONNX op ${it.node.opType} (node ${it.node.name})`);
      const node = it.node;
      dIn = g.scope('grad', () => rule(ctx, node, dOut));
    }
    ins.forEach((v, i) => {
      const d = dIn[i];
      if (v && d && dep.has(v)) {
        if (d.dtype !== v.dtype || !shapeEqual(d.shape, v.shape))
          throw new Error(`gradient of ${v} has the wrong type or shape (${d}) from ${it.kind === 'node' ? it.node.opType : it.name}`);
        add(v, d);
      }
    });
  }
  return wrt.map((w) => take(w) ?? op.zerosLike(w));
}
