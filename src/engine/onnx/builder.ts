// ONNX graph builder: ONNX-spelled ops with typed attributes, static shape inference, de-duplicated
// constants, names from a scope stack, and subgraphs for Scan bodies. Opset 18, IR 8.
//
// Every value has a dtype and a known rank; dims are numbers or symbolic names. Ops whose output
// shape depends on a tensor argument (Reshape, Slice, Expand, ...) take that argument as a constant
// so the shape stays known; anything else throws naming the op and the reason.

import {
  AttrValue,
  DType,
  Dim,
  GraphData,
  ModelData,
  NodeData,
  TensorData,
  TypedData,
  encodeModel,
} from './proto';

export type { Dim };

export const OPSET = 18;
export const IR_VERSION = 8;

export type Shape = readonly Dim[];

export class Value {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: Shape,
  ) {}
  get rank(): number {
    return this.shape.length;
  }
  toString(): string {
    return `%${this.name}: ${this.dtype}[${this.shape.join(',')}]`;
  }
}

export interface Node {
  opType: string;
  domain?: string;
  name: string;
  inputs: (Value | null)[];
  outputs: Value[];
  attrs: Record<string, AttrValue>;
}

/** A group of nodes differentiated as one unit by its own backward emitter (e.g. an LSTM layer). */
export interface Composite {
  kind: 'composite';
  name: string;
  inputs: (Value | null)[];
  outputs: Value[];
  /** Emits gradient nodes for the inputs given gradients of the outputs (null = zero). */
  backward(g: Graph, dOutputs: (Value | null)[], needs: (v: Value) => boolean): (Value | null)[];
}

export type TapeItem = { kind: 'node'; node: Node } | Composite;

/** Shared across a root graph and its subgraphs: unique names, constant pool. */
class BuildContext {
  counter = 0;
  scope: string[] = [];
  constByKey = new Map<string, Value>();
  constData = new Map<Value, TensorData>();
  root!: Graph;
  fresh(base: string): string {
    const prefix = this.scope.length ? this.scope.join('/') + '/' : '';
    return `${prefix}${base}_${this.counter++}`;
  }
}

export const attr = {
  f: (value: number): AttrValue => ({ kind: 'float', value }),
  i: (value: number): AttrValue => ({ kind: 'int', value }),
  s: (value: string): AttrValue => ({ kind: 'string', value }),
  ints: (value: readonly number[]): AttrValue => ({ kind: 'ints', value }),
  floats: (value: readonly number[]): AttrValue => ({ kind: 'floats', value }),
  strings: (value: readonly string[]): AttrValue => ({ kind: 'strings', value }),
  t: (value: TensorData): AttrValue => ({ kind: 'tensor', value }),
  g: (value: Graph): AttrValue => ({ kind: 'graph', value: value.toData() }),
};

export function dimsEqual(a: Dim, b: Dim): boolean {
  return a === b;
}

export function shapeEqual(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number') throw new Error(`numel of symbolic shape [${shape.join(',')}]`);
    n *= d;
  }
  return n;
}

export function broadcastShapes(op: string, ...shapes: Shape[]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let k = 0; k < rank; k++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const j = k - (rank - s.length);
      if (j < 0) continue;
      const e = s[j];
      if (e === 1) continue;
      if (d === 1) d = e;
      else if (d !== e) {
        if (typeof d === 'number' && typeof e === 'number')
          throw new Error(`${op}: shapes ${shapes.map((x) => `[${x.join(',')}]`).join(' and ')} do not broadcast`);
        if (typeof d === 'string') d = e;
      }
    }
    out.push(d);
  }
  return out;
}

function normAxis(axis: number, rank: number, op: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${op}: axis ${axis} out of range for rank ${rank}`);
  return a;
}

export type Const = number | readonly number[] | TensorData;

function typedFor(dtype: DType, values: readonly number[]): TypedData {
  switch (dtype) {
    case 'float32':
      return Float32Array.from(values);
    case 'float64':
      return Float64Array.from(values);
    case 'int64':
      return BigInt64Array.from(values.map((v) => BigInt(v)));
    case 'int32':
      return Int32Array.from(values);
    case 'bool':
    case 'uint8':
      return Uint8Array.from(values);
  }
}

export function tensor(dtype: DType, dims: readonly number[], values: readonly number[] | TypedData): TensorData {
  const data = Array.isArray(values) ? typedFor(dtype, values as number[]) : (values as TypedData);
  return { dtype, dims, data };
}

export function tensorValues(t: TensorData): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (x) => Number(x));
}

export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly tape: TapeItem[] = [];
  private readonly ctx: BuildContext;
  private compositeDepth = 0;
  private compositeStart = 0;

  constructor(
    readonly name: string,
    readonly parent?: Graph,
  ) {
    if (parent) {
      this.ctx = parent.ctx;
    } else {
      this.ctx = new BuildContext();
      this.ctx.root = this;
    }
  }

  get root(): Graph {
    return this.ctx.root;
  }

  /** A graph for a Scan/Loop body; it may reference this graph's values (outer scope). */
  subgraph(name: string): Graph {
    return new Graph(this.ctx.fresh(name), this);
  }

  /** Runs fn with a name scope pushed, e.g. `g.scope('lstm0', () => ...)`. */
  scope<T>(name: string, fn: () => T): T {
    this.ctx.scope.push(name);
    try {
      return fn();
    } finally {
      this.ctx.scope.pop();
    }
  }

  freshName(base: string): string {
    return this.ctx.fresh(base);
  }

  input(name: string, dtype: DType, shape: Shape): Value {
    const v = new Value(this, name, dtype, shape);
    this.inputs.push(v);
    return v;
  }

  /** Declares v a graph output, renamed to `name` through an Identity when given. */
  output(v: Value, name?: string): Value {
    let out = v;
    if (name && name !== v.name) {
      out = new Value(this, name, v.dtype, v.shape);
      this.push({ opType: 'Identity', name: this.ctx.fresh('Identity'), inputs: [v], outputs: [out], attrs: {} });
    } else if (this.outputs.includes(v) || this.inputs.includes(v) || v.graph !== this) {
      // an output must be produced by a node of this graph, once
      out = new Value(this, this.ctx.fresh('out'), v.dtype, v.shape);
      this.push({ opType: 'Identity', name: this.ctx.fresh('Identity'), inputs: [v], outputs: [out], attrs: {} });
    }
    this.outputs.push(out);
    return out;
  }

  /** A constant, de-duplicated by value; stored as an initializer of the root graph. */
  const(value: Const, dtype: DType = 'float32', dims?: readonly number[]): Value {
    let t: TensorData;
    if (typeof value === 'number') t = tensor(dtype, dims ?? [], [value]);
    else if (Array.isArray(value)) t = tensor(dtype, dims ?? [value.length], value as number[]);
    else t = value as TensorData;
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const key = `${t.dtype}|${t.dims.join(',')}|${Buffer.from(bytes).toString('base64')}`;
    const hit = this.ctx.constByKey.get(key);
    if (hit) return hit;
    const v = new Value(this.ctx.root, this.ctx.fresh('const'), t.dtype, t.dims);
    this.ctx.constByKey.set(key, v);
    this.ctx.constData.set(v, t);
    return v;
  }

  /** The data of a constant value, or undefined. */
  constValue(v: Value): TensorData | undefined {
    return this.ctx.constData.get(v);
  }

  constInts(v: Value, op: string, what: string): number[] {
    const t = this.constValue(v);
    if (!t) throw new Error(`${op}: ${what} must be a constant for static shapes`);
    return tensorValues(t);
  }

  push(n: Node): void {
    this.nodes.push(n);
    if (this.compositeDepth === 0) this.tape.push({ kind: 'node', node: n });
  }

  /**
   * Emits fn's nodes as one composite: the tape records a single item whose backward emitter is
   * given, instead of one item per node.
   */
  composite(
    name: string,
    fn: () => { inputs: (Value | null)[]; outputs: Value[]; backward: Composite['backward'] },
  ): Value[] {
    if (this.compositeDepth === 0) this.compositeStart = this.nodes.length;
    this.compositeDepth++;
    let spec;
    try {
      spec = fn();
    } finally {
      this.compositeDepth--;
    }
    if (this.compositeDepth === 0) {
      this.tape.push({ kind: 'composite', name, inputs: spec.inputs, outputs: spec.outputs, backward: spec.backward });
    }
    return spec.outputs;
  }

  /** Adds a node; output dtypes and shapes come from the caller (op helpers infer them). */
  node(
    opType: string,
    inputs: (Value | null)[],
    attrs: Record<string, AttrValue>,
    outs: ReadonlyArray<{ dtype: DType; shape: Shape }>,
    domain?: string,
  ): Value[] {
    for (const i of inputs) {
      if (i && !this.canSee(i)) throw new Error(`${opType}: input ${i.name} belongs to an unrelated graph`);
    }
    const base = this.ctx.fresh(opType);
    const outputs = outs.map((o, k) => new Value(this, outs.length === 1 ? base : `${base}:${k}`, o.dtype, o.shape));
    this.push({ opType, domain, name: base, inputs, outputs, attrs });
    return outputs;
  }

  private canSee(v: Value): boolean {
    for (let g: Graph | undefined = this; g; g = g.parent) if (v.graph === g) return true;
    return false;
  }

  /** Plain data for the protobuf writer. Constants go to the root graph's initializers. */
  toData(): GraphData {
    const nodes: NodeData[] = this.nodes.map((n) => ({
      opType: n.opType,
      domain: n.domain,
      name: n.name,
      inputs: n.inputs.map((v) => (v ? v.name : '')),
      outputs: n.outputs.map((v) => v.name),
      attributes: Object.entries(n.attrs),
    }));
    const initializers = this.parent
      ? []
      : [...this.ctx.constData.entries()].map(([v, t]) => ({ name: v.name, tensor: t }));
    return {
      name: this.name,
      nodes,
      inputs: this.inputs.map((v) => ({ name: v.name, dtype: v.dtype, shape: v.shape })),
      outputs: this.outputs.map((v) => ({ name: v.name, dtype: v.dtype, shape: v.shape })),
      initializers,
    };
  }

  toModel(metadata?: Record<string, string>): ModelData {
    if (this.parent) throw new Error('toModel: not a root graph');
    return {
      irVersion: IR_VERSION,
      opsets: [{ domain: '', version: OPSET }],
      producerName: 'gatelab',
      producerVersion: '0.1.0',
      graph: this.toData(),
      metadata,
    };
  }

  encode(metadata?: Record<string, string>): Uint8Array {
    return encodeModel(this.toModel(metadata));
  }
}

export { normAxis };
