// ONNX-spelled op helpers with shape inference: `op.Gemm(a, b, c, { transB: 1 })`.
// Attributes are typed per op; ops that take shape-like tensors (Reshape, Slice, Split, Squeeze,
// Unsqueeze, Reduce*, Expand, Tile) take plain number arrays and emit the constants themselves.

import { attr, broadcastShapes, Dim, Graph, normAxis, Shape, Value } from './builder';
import { AttrValue, DType } from './proto';

const isFloat = (t: DType) => t === 'float32' || t === 'float64';

export class Ops {
  constructor(readonly g: Graph) {}

  private one(op: string, inputs: (Value | null)[], attrs: Record<string, AttrValue>, dtype: DType, shape: Shape): Value {
    return this.g.node(op, inputs, attrs, [{ dtype, shape }])[0];
  }

  private unary(op: string, x: Value, floatOnly = true): Value {
    if (floatOnly && !isFloat(x.dtype)) throw new Error(`${op}: needs a float input, got ${x.dtype}`);
    return this.one(op, [x], {}, x.dtype, x.shape);
  }

  private binary(op: string, a: Value, b: Value, outDtype?: DType): Value {
    if (a.dtype !== b.dtype) throw new Error(`${op}: input types differ (${a.dtype} vs ${b.dtype})`);
    return this.one(op, [a, b], {}, outDtype ?? a.dtype, broadcastShapes(op, a.shape, b.shape));
  }

  /** A constant of x's dtype (scalar unless dims given). */
  c(x: Value | DType, v: number | readonly number[], dims?: readonly number[]): Value {
    const dtype = typeof x === 'string' ? x : x.dtype;
    return this.g.const(v as number | number[], dtype, dims);
  }

  i64(v: readonly number[]): Value {
    return this.g.const(v, 'int64', [v.length]);
  }

  // ---- elementwise ----------------------------------------------------------------------------
  Identity(x: Value): Value {
    return this.one('Identity', [x], {}, x.dtype, x.shape);
  }
  Neg(x: Value): Value {
    return this.unary('Neg', x, false);
  }
  Exp(x: Value): Value {
    return this.unary('Exp', x);
  }
  Log(x: Value): Value {
    return this.unary('Log', x);
  }
  Sqrt(x: Value): Value {
    return this.unary('Sqrt', x);
  }
  Sigmoid(x: Value): Value {
    return this.unary('Sigmoid', x);
  }
  HardSigmoid(x: Value, alpha: number, beta: number): Value {
    if (!isFloat(x.dtype)) throw new Error('HardSigmoid: needs a float input');
    return this.one('HardSigmoid', [x], { alpha: attr.f(alpha), beta: attr.f(beta) }, x.dtype, x.shape);
  }
  Tanh(x: Value): Value {
    return this.unary('Tanh', x);
  }
  Relu(x: Value): Value {
    return this.unary('Relu', x);
  }
  Abs(x: Value): Value {
    return this.unary('Abs', x, false);
  }
  Reciprocal(x: Value): Value {
    return this.unary('Reciprocal', x);
  }
  Sign(x: Value): Value {
    return this.unary('Sign', x, false);
  }
  Not(x: Value): Value {
    return this.one('Not', [x], {}, 'bool', x.shape);
  }
  IsNaN(x: Value): Value {
    return this.one('IsNaN', [x], {}, 'bool', x.shape);
  }
  IsInf(x: Value): Value {
    return this.one('IsInf', [x], {}, 'bool', x.shape);
  }
  Add(a: Value, b: Value): Value {
    return this.binary('Add', a, b);
  }
  Sub(a: Value, b: Value): Value {
    return this.binary('Sub', a, b);
  }
  Mul(a: Value, b: Value): Value {
    return this.binary('Mul', a, b);
  }
  Div(a: Value, b: Value): Value {
    return this.binary('Div', a, b);
  }
  Pow(a: Value, b: Value): Value {
    return this.binary('Pow', a, b);
  }
  Max(a: Value, b: Value): Value {
    return this.binary('Max', a, b);
  }
  Min(a: Value, b: Value): Value {
    return this.binary('Min', a, b);
  }
  Equal(a: Value, b: Value): Value {
    return this.binary('Equal', a, b, 'bool');
  }
  Less(a: Value, b: Value): Value {
    return this.binary('Less', a, b, 'bool');
  }
  Greater(a: Value, b: Value): Value {
    return this.binary('Greater', a, b, 'bool');
  }
  And(a: Value, b: Value): Value {
    return this.binary('And', a, b, 'bool');
  }
  Or(a: Value, b: Value): Value {
    return this.binary('Or', a, b, 'bool');
  }
  Where(cond: Value, a: Value, b: Value): Value {
    if (cond.dtype !== 'bool') throw new Error('Where: condition must be bool');
    if (a.dtype !== b.dtype) throw new Error(`Where: branch types differ (${a.dtype} vs ${b.dtype})`);
    return this.one('Where', [cond, a, b], {}, a.dtype, broadcastShapes('Where', cond.shape, a.shape, b.shape));
  }
  Sum(...xs: Value[]): Value {
    if (xs.length === 0) throw new Error('Sum: no inputs');
    if (xs.length === 1) return xs[0];
    for (const x of xs) if (x.dtype !== xs[0].dtype) throw new Error('Sum: input types differ');
    return this.one('Sum', xs, {}, xs[0].dtype, broadcastShapes('Sum', ...xs.map((x) => x.shape)));
  }
  Cast(x: Value, to: DType): Value {
    const codes: Record<DType, number> = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float64: 11 };
    return this.one('Cast', [x], { to: attr.i(codes[to]) }, to, x.shape);
  }
  Clip(x: Value, min?: number, max?: number): Value {
    const lo = min === undefined ? null : this.c(x, min);
    const hi = max === undefined ? null : this.c(x, max);
    return this.one('Clip', [x, lo, hi], {}, x.dtype, x.shape);
  }

  // ---- linear algebra -------------------------------------------------------------------------
  MatMul(a: Value, b: Value): Value {
    if (a.dtype !== b.dtype) throw new Error(`MatMul: input types differ (${a.dtype} vs ${b.dtype})`);
    if (a.rank < 2 || b.rank < 2) throw new Error('MatMul: 1-D operands are not supported by the builder');
    const [m, k1] = a.shape.slice(-2);
    const [k2, n] = b.shape.slice(-2);
    if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2)
      throw new Error(`MatMul: inner dims differ ([${a.shape}] x [${b.shape}])`);
    const batch = broadcastShapes('MatMul', a.shape.slice(0, -2), b.shape.slice(0, -2));
    return this.one('MatMul', [a, b], {}, a.dtype, [...batch, m, n]);
  }
  /** Y = alpha·op(A)·op(B) + beta·C with op = transpose when transA/transB. */
  Gemm(
    a: Value,
    b: Value,
    c: Value | null,
    o: { transA?: 0 | 1; transB?: 0 | 1; alpha?: number; beta?: number } = {},
  ): Value {
    if (a.rank !== 2 || b.rank !== 2) throw new Error('Gemm: operands must be 2-D');
    const m = o.transA ? a.shape[1] : a.shape[0];
    const k1 = o.transA ? a.shape[0] : a.shape[1];
    const k2 = o.transB ? b.shape[1] : b.shape[0];
    const n = o.transB ? b.shape[0] : b.shape[1];
    if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2)
      throw new Error(`Gemm: inner dims differ ([${a.shape}] x [${b.shape}] transA=${o.transA ?? 0} transB=${o.transB ?? 0})`);
    if (c) broadcastShapes('Gemm', [m, n], c.shape);
    const attrs: Record<string, AttrValue> = {};
    if (o.transA) attrs.transA = attr.i(1);
    if (o.transB) attrs.transB = attr.i(1);
    if (o.alpha !== undefined && o.alpha !== 1) attrs.alpha = attr.f(o.alpha);
    if (o.beta !== undefined && o.beta !== 1) attrs.beta = attr.f(o.beta);
    return this.one('Gemm', c ? [a, b, c] : [a, b], attrs, a.dtype, [m, n]);
  }

  // ---- shape ----------------------------------------------------------------------------------
  Transpose(x: Value, perm: readonly number[]): Value {
    if (perm.length !== x.rank) throw new Error(`Transpose: perm [${perm}] does not fit rank ${x.rank}`);
    return this.one('Transpose', [x], { perm: attr.ints(perm) }, x.dtype, perm.map((p) => x.shape[p]));
  }
  /** Reshape to a constant shape (0 = copy dim, -1 = infer), as ONNX with allowzero=0. */
  Reshape(x: Value, shape: readonly Dim[]): Value {
    const out: Dim[] = shape.map((d, i) => (d === 0 ? x.shape[i] : d));
    const inf = out.indexOf(-1);
    if (inf >= 0) {
      const known = out.filter((d, i) => i !== inf);
      if ([...x.shape, ...known].some((d) => typeof d !== 'number'))
        throw new Error(`Reshape: cannot infer -1 with symbolic dims ([${x.shape}] -> [${shape}])`);
      const total = (x.shape as number[]).reduce((p, d) => p * d, 1);
      const part = (known as number[]).reduce((p, d) => p * d, 1);
      out[inf] = total / part;
    }
    const sym = shape.filter((d) => typeof d === 'string');
    if (sym.length) throw new Error(`Reshape: symbolic target dims need 0 (copy) entries ([${shape}])`);
    return this.one('Reshape', [x, this.i64(shape as number[])], {}, x.dtype, out);
  }
  Flatten(x: Value, axis = 1): Value {
    const a = axis < 0 ? axis + x.rank : axis;
    const prod = (ds: readonly Dim[]): Dim =>
      ds.every((d) => typeof d === 'number') ? (ds as number[]).reduce((p, d) => p * d, 1) : ds.join('*');
    return this.one('Flatten', [x], { axis: attr.i(a) }, x.dtype, [prod(x.shape.slice(0, a)), prod(x.shape.slice(a))]);
  }
  Concat(xs: Value[], axis: number): Value {
    if (xs.length === 1) return xs[0];
    const r = xs[0].rank;
    const a = normAxis(axis, r, 'Concat');
    const shape = [...xs[0].shape];
    let total: Dim = 0;
    for (const x of xs) {
      if (x.rank !== r || x.dtype !== xs[0].dtype) throw new Error('Concat: inputs differ in rank or type');
      const d = x.shape[a];
      total = typeof total === 'number' && typeof d === 'number' ? total + d : `${total}+${d}`;
    }
    shape[a] = total;
    return this.one('Concat', xs, { axis: attr.i(a) }, xs[0].dtype, shape);
  }
  Split(x: Value, axis: number, sizes: readonly number[]): Value[] {
    const a = normAxis(axis, x.rank, 'Split');
    const total = sizes.reduce((p, d) => p + d, 0);
    if (typeof x.shape[a] === 'number' && x.shape[a] !== total)
      throw new Error(`Split: sizes [${sizes}] do not sum to dim ${x.shape[a]}`);
    const outs = sizes.map((s) => {
      const sh = [...x.shape];
      sh[a] = s;
      return { dtype: x.dtype, shape: sh };
    });
    return this.g.node('Split', [x, this.i64(sizes)], { axis: attr.i(a) }, outs);
  }
  Slice(x: Value, starts: readonly number[], ends: readonly number[], axes: readonly number[], steps?: readonly number[]): Value {
    const shape = [...x.shape];
    axes.forEach((ax, k) => {
      const a = normAxis(ax, x.rank, 'Slice');
      const d = x.shape[a];
      const step = steps?.[k] ?? 1;
      if (step !== 1) throw new Error('Slice: only step 1 is supported by the builder');
      if (typeof d !== 'number') {
        if (starts[k] === 0 && ends[k] >= 2 ** 62) return;
        throw new Error(`Slice: cannot slice symbolic dim ${d}`);
      }
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
      shape[a] = Math.max(0, clamp(ends[k]) - clamp(starts[k]));
    });
    const inputs = [x, this.i64(starts), this.i64(ends), this.i64(axes)];
    if (steps) inputs.push(this.i64(steps));
    return this.one('Slice', inputs, {}, x.dtype, shape);
  }
  Squeeze(x: Value, axes: readonly number[]): Value {
    const as = axes.map((a) => normAxis(a, x.rank, 'Squeeze'));
    for (const a of as) if (x.shape[a] !== 1) throw new Error(`Squeeze: dim ${a} of [${x.shape}] is not 1`);
    return this.one('Squeeze', [x, this.i64(as)], {}, x.dtype, x.shape.filter((_, i) => !as.includes(i)));
  }
  Unsqueeze(x: Value, axes: readonly number[]): Value {
    const r = x.rank + axes.length;
    const as = axes.map((a) => normAxis(a, r, 'Unsqueeze'));
    const shape: Dim[] = [];
    let j = 0;
    for (let i = 0; i < r; i++) shape.push(as.includes(i) ? 1 : x.shape[j++]);
    return this.one('Unsqueeze', [x, this.i64(as)], {}, x.dtype, shape);
  }
  /** Expand to a constant shape (numpy broadcasting). */
  Expand(x: Value, shape: readonly number[]): Value {
    return this.one('Expand', [x, this.i64(shape)], {}, x.dtype, broadcastShapes('Expand', x.shape, shape));
  }
  Tile(x: Value, repeats: readonly number[]): Value {
    const shape = x.shape.map((d, i) => {
      if (repeats[i] === 1) return d;
      if (typeof d !== 'number') throw new Error('Tile: symbolic dim');
      return d * repeats[i];
    });
    return this.one('Tile', [x, this.i64(repeats)], {}, x.dtype, shape);
  }
  Shape(x: Value): Value {
    return this.one('Shape', [x], {}, 'int64', [x.rank]);
  }

  // ---- reductions -----------------------------------------------------------------------------
  private reduce(op: string, x: Value, axes: readonly number[] | undefined, keepdims: boolean): Value {
    const as = (axes ?? x.shape.map((_, i) => i)).map((a) => normAxis(a, x.rank, op));
    const shape: Dim[] = [];
    x.shape.forEach((d, i) => {
      if (!as.includes(i)) shape.push(d);
      else if (keepdims) shape.push(1);
    });
    const inputs: (Value | null)[] = [x];
    if (axes) inputs.push(this.i64(as));
    return this.one(op, inputs, { keepdims: attr.i(keepdims ? 1 : 0) }, x.dtype, shape);
  }
  ReduceSum(x: Value, axes?: readonly number[], keepdims = false): Value {
    return this.reduce('ReduceSum', x, axes, keepdims);
  }
  ReduceMean(x: Value, axes?: readonly number[], keepdims = false): Value {
    return this.reduce('ReduceMean', x, axes, keepdims);
  }
  ReduceMax(x: Value, axes?: readonly number[], keepdims = false): Value {
    return this.reduce('ReduceMax', x, axes, keepdims);
  }
  ReduceSumSquare(x: Value, axes?: readonly number[], keepdims = false): Value {
    return this.reduce('ReduceSumSquare', x, axes, keepdims);
  }
  LogSoftmax(x: Value, axis = -1): Value {
    return this.one('LogSoftmax', [x], { axis: attr.i(normAxis(axis, x.rank, 'LogSoftmax')) }, x.dtype, x.shape);
  }
  Softmax(x: Value, axis = -1): Value {
    return this.one('Softmax', [x], { axis: attr.i(normAxis(axis, x.rank, 'Softmax')) }, x.dtype, x.shape);
  }

  // ---- indexing -------------------------------------------------------------------------------
  Gather(data: Value, indices: Value, axis = 0): Value {
    const a = normAxis(axis, data.rank, 'Gather');
    const shape = [...data.shape.slice(0, a), ...indices.shape, ...data.shape.slice(a + 1)];
    return this.one('Gather', [data, indices], { axis: attr.i(a) }, data.dtype, shape);
  }
  GatherElements(data: Value, indices: Value, axis: number): Value {
    const a = normAxis(axis, data.rank, 'GatherElements');
    return this.one('GatherElements', [data, indices], { axis: attr.i(a) }, data.dtype, indices.shape);
  }
  ScatterND(data: Value, indices: Value, updates: Value, reduction: 'none' | 'add' = 'none'): Value {
    const attrs: Record<string, AttrValue> = reduction === 'none' ? {} : { reduction: attr.s(reduction) };
    return this.one('ScatterND', [data, indices, updates], attrs, data.dtype, data.shape);
  }
  ScatterElements(data: Value, indices: Value, updates: Value, axis: number, reduction: 'none' | 'add' = 'none'): Value {
    const attrs: Record<string, AttrValue> = { axis: attr.i(normAxis(axis, data.rank, 'ScatterElements')) };
    if (reduction !== 'none') attrs.reduction = attr.s(reduction);
    return this.one('ScatterElements', [data, indices, updates], attrs, data.dtype, data.shape);
  }
  /**
   * Reverses the first lens[b] steps of each sequence along the time axis; the steps after them stay
   * in place (ONNX ReverseSequence; lens int64 [batch]).
   */
  ReverseSequence(x: Value, lens: Value, timeAxis = 0, batchAxis = 1): Value {
    const t = normAxis(timeAxis, x.rank, 'ReverseSequence');
    const b = normAxis(batchAxis, x.rank, 'ReverseSequence');
    if (t === b || t > 1 || b > 1) throw new Error('ReverseSequence: time and batch axes must be 0 and 1');
    if (lens.dtype !== 'int64' || lens.rank !== 1) throw new Error(`ReverseSequence: sequence_lens must be int64 [batch], got ${lens}`);
    return this.one('ReverseSequence', [x, lens], { time_axis: attr.i(t), batch_axis: attr.i(b) }, x.dtype, x.shape);
  }
  ConstantOfShape(shape: readonly number[], dtype: DType, value = 0): Value {
    return this.one('ConstantOfShape', [this.i64(shape)], { value: attr.t({ dtype, dims: [1], data: typed(dtype, value) }) }, dtype, shape);
  }
  ArgMax(x: Value, axis: number, keepdims = false): Value {
    const a = normAxis(axis, x.rank, 'ArgMax');
    const shape = keepdims ? x.shape.map((d, i) => (i === a ? 1 : d)) : x.shape.filter((_, i) => i !== a);
    return this.one('ArgMax', [x], { axis: attr.i(a), keepdims: attr.i(keepdims ? 1 : 0) }, 'int64', shape);
  }

  /** Zeros shaped like x (shape must be static). */
  zerosLike(x: Value): Value {
    if (x.shape.some((d) => typeof d !== 'number')) throw new Error('zerosLike: symbolic shape');
    return this.ConstantOfShape(x.shape as number[], x.dtype, 0);
  }

  // ---- control flow ---------------------------------------------------------------------------
  /**
   * Scan over axis 0 of the scan inputs. The body takes (states..., scan slices...) and returns
   * (states..., scan output slices...). Returns (final states..., stacked scan outputs...).
   */
  Scan(
    body: Graph,
    states: Value[],
    scanInputs: Value[],
    o: { reverseInputs?: boolean; reverseOutputs?: boolean } = {},
  ): Value[] {
    const nState = states.length;
    if (body.inputs.length !== nState + scanInputs.length)
      throw new Error(`Scan: body has ${body.inputs.length} inputs, expected ${nState} states + ${scanInputs.length} scan inputs`);
    if (scanInputs.length === 0) throw new Error('Scan: needs at least one scan input');
    const T = scanInputs[0].shape[0];
    states.forEach((s, i) => {
      const bi = body.inputs[i];
      if (bi.dtype !== s.dtype || bi.rank !== s.rank) throw new Error(`Scan: state ${i} (${s}) does not match body input ${bi}`);
    });
    scanInputs.forEach((s, i) => {
      const bi = body.inputs[nState + i];
      if (bi.dtype !== s.dtype || bi.rank !== s.rank - 1) throw new Error(`Scan: scan input ${i} (${s}) does not match body input ${bi}`);
    });
    const outs = body.outputs.map((v, i) =>
      i < nState ? { dtype: v.dtype, shape: v.shape } : { dtype: v.dtype, shape: [T, ...v.shape] },
    );
    const attrs: Record<string, AttrValue> = {
      body: attr.g(body),
      num_scan_inputs: attr.i(scanInputs.length),
    };
    if (o.reverseInputs) attrs.scan_input_directions = attr.ints(scanInputs.map(() => 1));
    const nScanOut = body.outputs.length - nState;
    if (o.reverseOutputs && nScanOut > 0) attrs.scan_output_directions = attr.ints(Array(nScanOut).fill(1));
    return this.g.node('Scan', [...states, ...scanInputs], attrs, outs);
  }
}

function typed(dtype: DType, v: number) {
  switch (dtype) {
    case 'float32':
      return new Float32Array([v]);
    case 'float64':
      return new Float64Array([v]);
    case 'int64':
      return new BigInt64Array([BigInt(v)]);
    case 'int32':
      return new Int32Array([v]);
    default:
      return new Uint8Array([v]);
  }
}
