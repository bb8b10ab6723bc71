// Every gradient rule of src/engine/onnx/grad.ts (the RULES table), one by one, against central finite
// differences in float64 through onnxruntime-node.
//
// Per case: a small graph out = op(x₀, x₁, …) with float64 inputs, random weights w shaped like each
// output, and the gradient of y = Σ w ⊙ out taken by gradients(). A single-output op gets w as the
// seed of gradients(out, xs, seed = w), so that no other rule takes part; a multi-output op (Split) is
// reduced by y = Σₖ ReduceSum(wₖ ⊙ outₖ). The graph runs in onnxruntime; y is then evaluated at
// xᵢⱼ ± ε (ε = 1e-6) and (y⁺ − y⁻)/2ε compared with the gradient: |g − fd| ≤ 1e-8 + 1e-6·|fd|.
// Inputs are drawn away from kinks (Abs, Relu, Clip, Max/Min, HardSigmoid) and from 0 where an op is
// singular (Log, Sqrt, Div, Reciprocal).
//
// Coverage: CASES is keyed by op type and must name exactly the rules of RULES, so a new rule without
// a case (or a case for a rule that went away) fails here. Each case also asserts that its graph
// really emits a node of that op type (the builder folds some trivial calls, e.g. a one-input Concat).
//
// Set GRAD_RULES_REPORT=1 to print the worst error of every case.

import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { Graph, Value } from '../../src/engine/onnx/builder';
import { gradients, RULES } from '../../src/engine/onnx/grad';
import { Ops } from '../../src/engine/onnx/ops';

const EPS = 1e-6;
const ATOL = 1e-8;
const RTOL = 1e-6;
const SESSION: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3 };

type Rng = () => number; // uniform [0, 1)

/** An input value generator. */
type Gen = (r: Rng) => number;
const uniform = (lo: number, hi: number): Gen => (r) => lo + (hi - lo) * r();
/** uniform in [lo, hi] but at least `margin` from every point in `kinks` */
const awayFrom =
  (kinks: number[], margin: number, lo = -1.5, hi = 1.5): Gen =>
  (r) => {
    for (;;) {
      const v = lo + (hi - lo) * r();
      if (kinks.every((k) => Math.abs(v - k) >= margin)) return v;
    }
  };
/** magnitude in [0.5, 2], either sign */
const nonZero: Gen = (r) => (r() < 0.5 ? -1 : 1) * (0.5 + 1.5 * r());
const positive = uniform(0.5, 2);

interface Input {
  shape: number[];
  gen?: Gen;
}

interface Case {
  label: string;
  inputs: Input[];
  /** builds the op under test; returns its output(s) */
  build(op: Ops, g: Graph, xs: Value[]): Value | Value[];
  /** rejects a joint sample (e.g. two inputs of Max too close); the inputs are drawn again */
  valid?: (xs: Float64Array[]) => boolean;
  /** outputs of a multi-output op left out of y (their gradient is null inside gradients()) */
  unused?: number[];
  /** step and tolerance when the default ones do not apply (float32 inside the graph) */
  tol?: { eps: number; atol: number; rtol: number };
}

const x = (...shape: number[]): Input => ({ shape });
const xg = (gen: Gen, ...shape: number[]): Input => ({ shape, gen });

// ---- helpers for broadcasting predicates ---------------------------------------------------------------

/** index of the broadcast source element for each element of the output shape */
function broadcastIndex(src: number[], out: number[]): number[] {
  const rank = out.length;
  const s = [...Array(rank - src.length).fill(1), ...src];
  const n = out.reduce((a, b) => a * b, 1);
  const idx: number[] = [];
  for (let flat = 0; flat < n; flat++) {
    let rem = flat;
    let k = 0;
    let stride = 1;
    const coord: number[] = [];
    for (let d = rank - 1; d >= 0; d--) {
      coord[d] = rem % out[d];
      rem = Math.floor(rem / out[d]);
    }
    for (let d = rank - 1; d >= 0; d--) {
      k += (s[d] === 1 ? 0 : coord[d]) * stride;
      stride *= s[d];
    }
    idx.push(k);
  }
  return idx;
}

/** every broadcast pair (a, b) differs by at least m */
const separated = (sa: number[], sb: number[], m = 0.05) => {
  const out = sa.length >= sb.length ? sa.map((d, i) => Math.max(d, [...Array(sa.length - sb.length).fill(1), ...sb][i])) : [];
  return (xs: Float64Array[]) => {
    const o = out.length ? out : sb.map((d, i) => Math.max(d, [...Array(sb.length - sa.length).fill(1), ...sa][i]));
    const ia = broadcastIndex(sa, o);
    const ib = broadcastIndex(sb, o);
    return ia.every((a, k) => Math.abs(xs[0][a] - xs[1][ib[k]]) >= m);
  };
};

const boolConst = (g: Graph, v: number[], dims: number[]) => g.const(v, 'bool', dims);
const i64 = (g: Graph, v: number[], dims: number[]) => g.const(v, 'int64', dims);

// ---- the cases ------------------------------------------------------------------------------------------

const binaryShapes: [string, number[], number[]][] = [
  ['same shape', [2, 3], [2, 3]],
  ['b broadcast along leading axes [2,3,4] ∘ [4]', [2, 3, 4], [4]],
  ['a broadcast [4] ∘ [2,3,4]', [4], [2, 3, 4]],
  ['both broadcast [2,1,4] ∘ [3,1]', [2, 1, 4], [3, 1]],
  ['scalar ∘ [2,3]', [], [2, 3]],
];

function binaryCases(name: 'Add' | 'Sub' | 'Mul' | 'Div', genB?: Gen): Case[] {
  return binaryShapes.map(([label, sa, sb]) => ({
    label,
    inputs: [x(...sa), genB ? xg(genB, ...sb) : x(...sb)],
    build: (op, _g, [a, b]) => op[name](a, b),
  }));
}

const reduceVariants: [string, number[] | undefined, boolean][] = [
  ['axes [1], keepdims 0', [1], false],
  ['axes [1], keepdims 1', [1], true],
  ['axes [0, 2], keepdims 0', [0, 2], false],
  ['axes [-1], keepdims 1', [-1], true],
  ['all axes, keepdims 0', undefined, false],
  ['all axes, keepdims 1', undefined, true],
];

function reduceCases(name: 'ReduceSum' | 'ReduceMean' | 'ReduceSumSquare'): Case[] {
  return reduceVariants.map(([label, axes, keep]) => ({
    label,
    inputs: [x(2, 3, 4)],
    build: (op, _g, [a]) => op[name](a, axes, keep),
  }));
}

function softmaxCases(name: 'Softmax' | 'LogSoftmax'): Case[] {
  return [
    { label: '[3,4] axis -1', inputs: [x(3, 4)], build: (op, _g, [a]) => op[name](a, -1) },
    { label: '[3,4] axis 0', inputs: [x(3, 4)], build: (op, _g, [a]) => op[name](a, 0) },
    { label: '[2,3,4] axis 1', inputs: [x(2, 3, 4)], build: (op, _g, [a]) => op[name](a, 1) },
  ];
}

function maxMinCases(name: 'Max' | 'Min'): Case[] {
  const shapes: [string, number[], number[]][] = [
    ['same shape', [2, 3], [2, 3]],
    ['b broadcast [2,3] ∘ [3]', [2, 3], [3]],
    ['both broadcast [2,1] ∘ [1,3]', [2, 1], [1, 3]],
    ['scalar a', [], [2, 3]],
  ];
  return shapes.map(([label, sa, sb]) => ({ label, inputs: [x(...sa), x(...sb)], valid: separated(sa, sb), build: (op, _g, [a, b]) => op[name](a, b) }));
}

function gemmCase(transA: 0 | 1, transB: 0 | 1, alpha: number | undefined, beta: number | undefined, c: number[] | null): Case {
  const [M, K, N] = [2, 3, 4];
  const label = `transA ${transA} transB ${transB}${alpha !== undefined ? ` alpha ${alpha}` : ''}${beta !== undefined ? ` beta ${beta}` : ''} C ${c ? `[${c}]` : 'none'}`;
  return {
    label,
    inputs: [x(...(transA ? [K, M] : [M, K])), x(...(transB ? [N, K] : [K, N])), ...(c ? [x(...c)] : [])],
    build: (op, _g, [a, b, cc]) => op.Gemm(a, b, cc ?? null, { transA, transB, alpha, beta }),
  };
}

const CASES: Record<string, Case[]> = {
  Identity: [{ label: '[2,3]', inputs: [x(2, 3)], build: (op, _g, [a]) => op.Identity(a) }],
  Add: binaryCases('Add'),
  Sub: binaryCases('Sub'),
  Mul: [
    ...binaryCases('Mul'),
    // the same value on both sides: the two contributions are summed
    { label: 'x ⊙ x (fan-out)', inputs: [x(2, 3)], build: (op, _g, [a]) => op.Mul(a, a) },
  ],
  Div: [
    ...binaryCases('Div', nonZero),
    { label: 'x / x (fan-out)', inputs: [xg(nonZero, 2, 3)], build: (op, _g, [a]) => op.Div(op.Identity(a), a) },
  ],
  Sum: [
    { label: 'three inputs [2,3] + [3] + [2,1]', inputs: [x(2, 3), x(3), x(2, 1)], build: (op, _g, [a, b, c]) => op.Sum(a, b, c) },
    { label: 'same value twice', inputs: [x(2, 3), x(2, 3)], build: (op, _g, [a, b]) => op.Sum(a, b, a) },
  ],
  Neg: [{ label: '[2,3]', inputs: [x(2, 3)], build: (op, _g, [a]) => op.Neg(a) }],
  Exp: [{ label: '[2,3]', inputs: [x(2, 3)], build: (op, _g, [a]) => op.Exp(a) }],
  Log: [{ label: '[2,3] in [0.5, 2]', inputs: [xg(positive, 2, 3)], build: (op, _g, [a]) => op.Log(a) }],
  Sqrt: [{ label: '[2,3] in [0.5, 2]', inputs: [xg(positive, 2, 3)], build: (op, _g, [a]) => op.Sqrt(a) }],
  Reciprocal: [{ label: '[2,3], |x| ≥ 0.5', inputs: [xg(nonZero, 2, 3)], build: (op, _g, [a]) => op.Reciprocal(a) }],
  Abs: [{ label: '[2,3], |x| ≥ 0.1', inputs: [xg(awayFrom([0], 0.1), 2, 3)], build: (op, _g, [a]) => op.Abs(a) }],
  Sigmoid: [{ label: '[2,3] in [-4, 4]', inputs: [xg(uniform(-4, 4), 2, 3)], build: (op, _g, [a]) => op.Sigmoid(a) }],
  HardSigmoid: [
    // kinks where alpha·x + beta ∈ {0, 1}; the range covers both saturated sides and the linear part
    { label: 'alpha 0.2 beta 0.5', inputs: [xg(awayFrom([-2.5, 2.5], 0.05, -4, 4), 3, 4)], build: (op, _g, [a]) => op.HardSigmoid(a, 0.2, 0.5) },
    { label: 'alpha 0.3 beta 0.4', inputs: [xg(awayFrom([-4 / 3, 2], 0.05, -3, 3), 3, 4)], build: (op, _g, [a]) => op.HardSigmoid(a, 0.3, 0.4) },
  ],
  Tanh: [{ label: '[2,3] in [-3, 3]', inputs: [xg(uniform(-3, 3), 2, 3)], build: (op, _g, [a]) => op.Tanh(a) }],
  Relu: [{ label: '[3,4], |x| ≥ 0.1', inputs: [xg(awayFrom([0], 0.1), 3, 4)], build: (op, _g, [a]) => op.Relu(a) }],
  Clip: [
    { label: 'min and max', inputs: [xg(awayFrom([-0.5, 0.7], 0.05), 3, 4)], build: (op, _g, [a]) => op.Clip(a, -0.5, 0.7) },
    { label: 'min only', inputs: [xg(awayFrom([-0.2], 0.05), 3, 4)], build: (op, _g, [a]) => op.Clip(a, -0.2) },
    { label: 'max only', inputs: [xg(awayFrom([0.3], 0.05), 3, 4)], build: (op, _g, [a]) => op.Clip(a, undefined, 0.3) },
    { label: 'no bounds', inputs: [x(2, 3)], build: (op, _g, [a]) => op.Clip(a) },
  ],
  Max: maxMinCases('Max'),
  Min: maxMinCases('Min'),
  Where: [
    {
      label: 'cond, a, b all [2,3]',
      inputs: [x(2, 3), x(2, 3)],
      build: (op, g, [a, b]) => op.Where(boolConst(g, [1, 0, 0, 1, 1, 0], [2, 3]), a, b),
    },
    {
      label: 'cond [3], a [2,3], b [1]',
      inputs: [x(2, 3), x(1)],
      build: (op, g, [a, b]) => op.Where(boolConst(g, [0, 1, 0], [3]), a, b),
    },
    {
      label: 'cond [2,1], a [3], b [2,3]',
      inputs: [x(3), x(2, 3)],
      build: (op, g, [a, b]) => op.Where(boolConst(g, [1, 0], [2, 1]), a, b),
    },
  ],
  Cast: [
    { label: 'float64 → float64', inputs: [x(2, 3)], build: (op, _g, [a]) => op.Cast(a, 'float64') },
    {
      // float64 → float32 → (×1.5 in float32) → float64: the rule casts the gradient back each way.
      // The function is linear, so a large step has no truncation error and stays far above the
      // float32 rounding of y (~1e-7 relative, i.e. ~5e-6 in the difference quotient at ε = 1e-2).
      label: 'float64 → float32 → float64',
      inputs: [x(2, 3)],
      build: (op, g, [a]) => op.Cast(op.Mul(op.Cast(a, 'float32'), g.const(1.5, 'float32')), 'float64'),
      tol: { eps: 1e-2, atol: 2e-5, rtol: 1e-5 },
    },
    {
      // through an integer: no gradient flows (and FD is 0 away from integers)
      label: 'x + float64(int64(x)) (no gradient through the integer path)',
      inputs: [xg(awayFrom([-1, 0, 1], 0.1), 2, 3)],
      build: (op, _g, [a]) => op.Add(a, op.Cast(op.Cast(a, 'int64'), 'float64')),
    },
  ],
  MatMul: [
    { label: '[2,3] × [3,4]', inputs: [x(2, 3), x(3, 4)], build: (op, _g, [a, b]) => op.MatMul(a, b) },
    { label: 'batched a [2,2,3] × [3,4] (dB as one GEMM)', inputs: [x(2, 2, 3), x(3, 4)], build: (op, _g, [a, b]) => op.MatMul(a, b) },
    { label: '[2,2,3] × [2,3,4]', inputs: [x(2, 2, 3), x(2, 3, 4)], build: (op, _g, [a, b]) => op.MatMul(a, b) },
    { label: 'broadcast batch [2,2,3] × [1,3,4]', inputs: [x(2, 2, 3), x(1, 3, 4)], build: (op, _g, [a, b]) => op.MatMul(a, b) },
    { label: '[2,3] × [4,3,5] (a broadcast over the batch)', inputs: [x(2, 3), x(4, 3, 5)], build: (op, _g, [a, b]) => op.MatMul(a, b) },
  ],
  Gemm: [
    gemmCase(0, 0, undefined, undefined, [2, 4]),
    gemmCase(0, 1, undefined, undefined, [4]),
    gemmCase(1, 0, 0.7, undefined, [1, 4]),
    gemmCase(1, 1, 0.7, -1.3, [2, 1]),
    gemmCase(0, 1, -2, 0.5, []),
    gemmCase(1, 0, undefined, 2.5, [2, 4]),
    gemmCase(0, 0, 1.5, undefined, null),
    gemmCase(1, 1, undefined, undefined, null),
  ],
  Transpose: [
    { label: '[2,3] perm [1,0]', inputs: [x(2, 3)], build: (op, _g, [a]) => op.Transpose(a, [1, 0]) },
    { label: '[2,3,4] perm [2,0,1]', inputs: [x(2, 3, 4)], build: (op, _g, [a]) => op.Transpose(a, [2, 0, 1]) },
    { label: '[2,1,3,2] perm [3,1,0,2]', inputs: [x(2, 1, 3, 2)], build: (op, _g, [a]) => op.Transpose(a, [3, 1, 0, 2]) },
  ],
  Reshape: [
    { label: '[2,3,4] → [6,4]', inputs: [x(2, 3, 4)], build: (op, _g, [a]) => op.Reshape(a, [6, 4]) },
    { label: '[2,3,4] → [4,-1]', inputs: [x(2, 3, 4)], build: (op, _g, [a]) => op.Reshape(a, [4, -1]) },
    { label: '[2,3,4] → [0,12] (0 copies a dim)', inputs: [x(2, 3, 4)], build: (op, _g, [a]) => op.Reshape(a, [0, 12]) },
    { label: '[6] → [2,3]', inputs: [x(6)], build: (op, _g, [a]) => op.Reshape(a, [2, 3]) },
  ],
  Flatten: [
    { label: '[2,3,4] axis 1', inputs: [x(2, 3, 4)], build: (op, _g, [a]) => op.Flatten(a, 1) },
    { label: '[2,3,4] axis 2', inputs: [x(2, 3, 4)], build: (op, _g, [a]) => op.Flatten(a, 2) },
    { label: '[2,3,4] axis 0', inputs: [x(2, 3, 4)], build: (op, _g, [a]) => op.Flatten(a, 0) },
  ],
  Squeeze: [
    { label: '[2,1,3,1] axes [1,3]', inputs: [x(2, 1, 3, 1)], build: (op, _g, [a]) => op.Squeeze(a, [1, 3]) },
    { label: '[1,3] axes [0]', inputs: [x(1, 3)], build: (op, _g, [a]) => op.Squeeze(a, [0]) },
    { label: '[3,1] axes [-1]', inputs: [x(3, 1)], build: (op, _g, [a]) => op.Squeeze(a, [-1]) },
  ],
  Unsqueeze: [
    { label: '[2,3] axes [0]', inputs: [x(2, 3)], build: (op, _g, [a]) => op.Unsqueeze(a, [0]) },
    { label: '[2,3] axes [1,3]', inputs: [x(2, 3)], build: (op, _g, [a]) => op.Unsqueeze(a, [1, 3]) },
    { label: '[2,3] axes [-1]', inputs: [x(2, 3)], build: (op, _g, [a]) => op.Unsqueeze(a, [-1]) },
  ],
  Expand: [
    { label: '[3] → [2,3]', inputs: [x(3)], build: (op, _g, [a]) => op.Expand(a, [2, 3]) },
    { label: '[2,1] → [2,3]', inputs: [x(2, 1)], build: (op, _g, [a]) => op.Expand(a, [2, 3]) },
    { label: '[1,3] → [2,2,3]', inputs: [x(1, 3)], build: (op, _g, [a]) => op.Expand(a, [2, 2, 3]) },
    { label: '[2,1] → [3,2,4]', inputs: [x(2, 1)], build: (op, _g, [a]) => op.Expand(a, [3, 2, 4]) },
  ],
  Concat: [
    { label: 'axis 0: [2,3] [1,3] [3,3]', inputs: [x(2, 3), x(1, 3), x(3, 3)], build: (op, _g, xs) => op.Concat(xs, 0) },
    { label: 'axis 1: [2,1] [2,3]', inputs: [x(2, 1), x(2, 3)], build: (op, _g, xs) => op.Concat(xs, 1) },
    { label: 'axis -1 of rank 3: [2,2,1] [2,2,2]', inputs: [x(2, 2, 1), x(2, 2, 2)], build: (op, _g, xs) => op.Concat(xs, -1) },
    { label: 'the same value twice', inputs: [x(2, 3), x(1, 3)], build: (op, _g, [a, b]) => op.Concat([a, b, a], 0) },
  ],
  Split: [
    { label: 'axis 0 sizes [2,3]', inputs: [x(5, 3)], build: (op, _g, [a]) => op.Split(a, 0, [2, 3]) },
    { label: 'axis 1 sizes [1,2,3], middle output unused', inputs: [x(2, 6)], build: (op, _g, [a]) => op.Split(a, 1, [1, 2, 3]), unused: [1] },
    { label: 'axis -1 sizes [2,2], first output unused', inputs: [x(2, 3, 4)], build: (op, _g, [a]) => op.Split(a, -1, [2, 2]), unused: [0] },
  ],
  Slice: [
    { label: '[5,4] rows 1..4', inputs: [x(5, 4)], build: (op, _g, [a]) => op.Slice(a, [1], [4], [0]) },
    { label: '[5,4] axes [-1,0], negative start, end past the dim', inputs: [x(5, 4)], build: (op, _g, [a]) => op.Slice(a, [-3, 0], [100, 2], [-1, 0]) },
    { label: '[2,6,3] middle axis 2..5 with explicit steps [1]', inputs: [x(2, 6, 3)], build: (op, _g, [a]) => op.Slice(a, [2], [5], [1], [1]) },
    { label: '[4] the whole axis', inputs: [x(4)], build: (op, _g, [a]) => op.Slice(a, [0], [4], [0]) },
  ],
  ReduceSum: reduceCases('ReduceSum'),
  ReduceMean: reduceCases('ReduceMean'),
  ReduceSumSquare: reduceCases('ReduceSumSquare'),
  LogSoftmax: softmaxCases('LogSoftmax'),
  Softmax: softmaxCases('Softmax'),
  Gather: [
    {
      // repeated indices: the scatter must add, not overwrite
      label: 'data [5,3], indices [2,3] with repeats',
      inputs: [x(5, 3)],
      build: (op, g, [a]) => op.Gather(a, i64(g, [0, 2, 2, 4, 0, 2], [2, 3]), 0),
    },
    {
      label: 'data [6], indices [5] with repeats and negatives',
      inputs: [x(6)],
      build: (op, g, [a]) => op.Gather(a, i64(g, [5, -1, 0, 3, -6], [5]), 0),
    },
    { label: 'data [4,2,3], scalar index', inputs: [x(4, 2, 3)], build: (op, g, [a]) => op.Gather(a, i64(g, [2], []), 0) },
  ],
  ReverseSequence: [
    // lengths below T leave the later steps in place; 1 reverses nothing; T the whole sequence
    { label: 'time 0, batch 1: [5,3,2], lengths [5,2,1]', inputs: [x(5, 3, 2)], build: (op, g, [a]) => op.ReverseSequence(a, i64(g, [5, 2, 1], [3]), 0, 1) },
    { label: 'batch 0, time 1: [2,4], lengths [3,4]', inputs: [x(2, 4)], build: (op, g, [a]) => op.ReverseSequence(a, i64(g, [3, 4], [2]), 1, 0) },
  ],
  GatherElements: [
    {
      label: 'axis 1, data [3,4], indices [3,2] with repeats',
      inputs: [x(3, 4)],
      build: (op, g, [a]) => op.GatherElements(a, i64(g, [1, 1, 0, 3, 2, 2], [3, 2]), 1),
    },
    {
      label: 'axis 0, data [3,4], indices [2,4] with repeats',
      inputs: [x(3, 4)],
      build: (op, g, [a]) => op.GatherElements(a, i64(g, [2, 0, 2, 1, 2, 0, 2, 1], [2, 4]), 0),
    },
    {
      label: 'axis 1, negative indices',
      inputs: [x(2, 3)],
      build: (op, g, [a]) => op.GatherElements(a, i64(g, [-1, 0, -3, 2], [2, 2]), 1),
    },
  ],
};

// ---- the harness ------------------------------------------------------------------------------------------

function lcg(seed: number): Rng {
  let s = seed % 2147483647 || 1;
  return () => {
    s = (s * 16807) % 2147483647;
    return (s - 1) / 2147483646;
  };
}
const hash = (s: string) => [...s].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 2147483647, 7);
const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

const worst: { where: string; err: number }[] = [];
afterAll(() => {
  if (process.env.GRAD_RULES_REPORT) for (const w of worst) console.log(`${w.where}: worst ${w.err.toExponential(2)} (of the allowed error)`);
});

interface Built {
  session: ort.InferenceSession;
  nOut: number;
  nIn: number;
  shapes: { xs: number[][]; ys: number[][] };
}

async function build(opName: string, c: Case): Promise<Built> {
  const g = new Graph(`rule_${opName}`);
  const op = new Ops(g);
  const xs = c.inputs.map((s, i) => g.input(`x${i}`, 'float64', s.shape));
  const built = c.build(op, g, xs);
  const outs = Array.isArray(built) ? built : [built];
  expect(
    g.nodes.some((n) => n.opType === opName),
    `the case emits a ${opName} node`,
  ).toBe(true);
  for (const o of outs) expect(o.dtype, 'outputs are float64').toBe('float64');
  const ws = outs.map((o, k) => g.input(`w${k}`, 'float64', o.shape));
  let grads: Value[];
  if (!Array.isArray(built)) {
    grads = gradients(g, built, xs, ws[0]);
  } else {
    const used = outs.map((_, k) => k).filter((k) => !c.unused?.includes(k));
    const loss = op.Sum(...used.map((k) => op.ReduceSum(op.Mul(outs[k], ws[k]))));
    grads = gradients(g, loss, xs);
  }
  outs.forEach((o, k) => g.output(o, `y${k}`));
  grads.forEach((d, i) => g.output(d, `d${i}`));
  const session = await ort.InferenceSession.create(g.encode(), SESSION);
  return { session, nOut: outs.length, nIn: xs.length, shapes: { xs: xs.map((v) => v.shape as number[]), ys: outs.map((v) => v.shape as number[]) } };
}

async function check(opName: string, c: Case): Promise<void> {
  const b = await build(opName, c);
  const r = lcg(hash(`${opName}/${c.label}`));
  // draw inputs (again, until valid) and weights
  let xv: Float64Array[];
  for (let tries = 0; ; tries++) {
    expect(tries, 'could not draw valid inputs').toBeLessThan(10_000);
    xv = c.inputs.map((s) => Float64Array.from({ length: numel(s.shape) }, () => (s.gen ?? uniform(-1.5, 1.5))(r)));
    if (!c.valid || c.valid(xv)) break;
  }
  const wv = b.shapes.ys.map((s, k) => Float64Array.from({ length: numel(s) }, () => (c.unused?.includes(k) ? 0 : uniform(-1, 1)(r))));
  const feeds = () => {
    const f: Record<string, ort.Tensor> = {};
    xv.forEach((v, i) => (f[`x${i}`] = new ort.Tensor('float64', v, b.shapes.xs[i])));
    wv.forEach((v, k) => (f[`w${k}`] = new ort.Tensor('float64', v, b.shapes.ys[k])));
    return f;
  };
  const yNames = [...Array(b.nOut).keys()].map((k) => `y${k}`);
  const y = async () => {
    const out = await b.session.run(feeds(), yNames);
    let s = 0;
    yNames.forEach((n, k) => (out[n].data as Float64Array).forEach((v, j) => (s += wv[k][j] * v)));
    return s;
  };
  const res = await b.session.run(feeds());
  const { eps, atol, rtol } = c.tol ?? { eps: EPS, atol: ATOL, rtol: RTOL };
  let worstRatio = 0;
  for (let i = 0; i < b.nIn; i++) {
    const d = res[`d${i}`];
    expect(d.dims, `d${i} shape`).toEqual(b.shapes.xs[i]);
    const dv = d.data as Float64Array;
    for (let j = 0; j < xv[i].length; j++) {
      const old = xv[i][j];
      xv[i][j] = old + eps;
      const yp = await y();
      xv[i][j] = old - eps;
      const ym = await y();
      xv[i][j] = old;
      const fd = (yp - ym) / (2 * eps);
      const tol = atol + rtol * Math.abs(fd);
      worstRatio = Math.max(worstRatio, Math.abs(dv[j] - fd) / tol);
      expect(Math.abs(dv[j] - fd), `d y / d x${i}[${j}]: gradient ${dv[j]}, finite difference ${fd}`).toBeLessThanOrEqual(tol);
    }
  }
  worst.push({ where: `${opName}: ${c.label}`, err: worstRatio });
  await b.session.release();
}

// ---- the tests ---------------------------------------------------------------------------------------------

describe('gradient rules vs central finite differences (float64, onnxruntime)', () => {
  it('every rule in RULES has cases, and every case is for a rule in RULES', () => {
    expect(Object.keys(CASES).sort()).toEqual(Object.keys(RULES).sort());
    for (const [name, cases] of Object.entries(CASES)) expect(cases.length, name).toBeGreaterThan(0);
  });

  for (const opName of Object.keys(RULES)) {
    describe(opName, () => {
      const cases = CASES[opName] ?? [];
      if (cases.length === 0) {
        it('has a test case', () => {
          expect.fail(`RULES.${opName} has no case in CASES (test/unit/onnx-grad-rules.test.ts)`);
        });
      }
      for (const c of cases) it(c.label, () => check(opName, c));
    });
  }
});

describe('gradients() through several rules at once', () => {
  it('y = Σ w ⊙ op(x) written out with Mul and ReduceSum gives the same gradient as the seed', async () => {
    // the seeded form used above and the literal y = ReduceSum(w ⊙ tanh(x·Wᵀ + b)) agree
    const g = new Graph('explicit');
    const op = new Ops(g);
    const xx = g.input('x', 'float64', [2, 3]);
    const w = g.input('w', 'float64', [2, 4]);
    const W = g.input('W', 'float64', [4, 3]);
    const out = op.Tanh(op.Gemm(xx, W, null, { transB: 1 }));
    const y = op.ReduceSum(op.Mul(w, out));
    const [dxLit, dWLit] = gradients(g, y, [xx, W]);
    const [dxSeed, dWSeed] = gradients(g, out, [xx, W], w);
    g.output(dxLit, 'dx_lit');
    g.output(dWLit, 'dW_lit');
    g.output(dxSeed, 'dx_seed');
    g.output(dWSeed, 'dW_seed');
    const s = await ort.InferenceSession.create(g.encode(), SESSION);
    const r = lcg(11);
    const t = (shape: number[]) => new ort.Tensor('float64', Float64Array.from({ length: numel(shape) }, () => r() - 0.5), shape);
    const res = await s.run({ x: t([2, 3]), w: t([2, 4]), W: t([4, 3]) });
    const close = (a: ort.Tensor, b: ort.Tensor) =>
      (a.data as Float64Array).forEach((v, i) => expect(v).toBeCloseTo((b.data as Float64Array)[i], 14));
    close(res.dx_lit, res.dx_seed);
    close(res.dW_lit, res.dW_seed);
    await s.release();
  });

  it('a value that does not reach the loss gets zeros of its shape', async () => {
    const g = new Graph('unused');
    const op = new Ops(g);
    const a = g.input('a', 'float64', [2, 3]);
    const b = g.input('b', 'float64', [3]);
    const [da, db] = gradients(g, op.ReduceSum(op.Exp(a)), [a, b]);
    expect(db.shape).toEqual([3]);
    g.output(da, 'da');
    g.output(db, 'db');
    const s = await ort.InferenceSession.create(g.encode(), SESSION);
    const res = await s.run({ a: new ort.Tensor('float64', new Float64Array(6), [2, 3]), b: new ort.Tensor('float64', new Float64Array(3), [3]) });
    expect(Array.from(res.da.data as Float64Array)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(Array.from(res.db.data as Float64Array)).toEqual([0, 0, 0]);
    await s.release();
  });

  // a start below −dim is clamped to 0 by the forward op; the rule clamps the same way
  it('Slice with a start below −dim (clamped to 0 by the forward op)', () =>
    check('Slice', { label: '[4] start -10', inputs: [x(4)], build: (op, _g, [a]) => op.Slice(a, [-10], [3], [0]) }),
  );

  it('a node without a rule, Gather on axis ≠ 0 and Slice steps ≠ 1 fail with a clear message', () => {
    const g = new Graph('norule');
    const op = new Ops(g);
    const a = g.input('a', 'float64', [2, 3]);
    expect(() => gradients(g, op.ReduceMax(a), [a])).toThrow(/no gradient rule for ONNX op ReduceMax/);
    const g2 = new Graph('gather1');
    const op2 = new Ops(g2);
    const d = g2.input('d', 'float64', [2, 3]);
    expect(() => gradients(g2, op2.ReduceSum(op2.Gather(d, g2.const([0, 0], 'int64', [2]), 1)), [d])).toThrow(/Gather gradient: only axis 0/);
    // Slice steps other than 1 are refused by the builder already, so RULES.Slice never sees them
    expect(() => op2.Slice(d, [0], [3], [1], [2])).toThrow(/only step 1/);
  });
});
