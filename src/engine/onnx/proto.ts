// A dependency-free protobuf writer for the parts of onnx.proto Gatelab emits (ModelProto, IR 8).
// Field numbers follow onnx/onnx.proto; repeated scalars are written packed, which every conforming
// protobuf reader accepts for proto2 and proto3 fields alike. Tensor payloads go in raw_data
// (little-endian), as onnxruntime prefers.

export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'bool' | 'uint8';

/** TensorProto.DataType codes. */
export const DATA_TYPE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int32: 6,
  int64: 7,
  bool: 9,
  float64: 11,
};

export const DTYPE_BYTES: Record<DType, number> = {
  float32: 4,
  uint8: 1,
  int32: 4,
  int64: 8,
  bool: 1,
  float64: 8,
};

export type TypedData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

export interface TensorData {
  dtype: DType;
  dims: readonly number[];
  data: TypedData;
}

export type Dim = number | string;

export interface ValueInfo {
  name: string;
  dtype: DType;
  /** undefined = unknown rank */
  shape?: readonly Dim[];
}

export type AttrValue =
  | { kind: 'float'; value: number }
  | { kind: 'int'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: TensorData }
  | { kind: 'graph'; value: GraphData }
  | { kind: 'floats'; value: readonly number[] }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'strings'; value: readonly string[] };

export interface NodeData {
  opType: string;
  domain?: string;
  name: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attributes: ReadonlyArray<readonly [string, AttrValue]>;
}

export interface GraphData {
  name: string;
  nodes: readonly NodeData[];
  inputs: readonly ValueInfo[];
  outputs: readonly ValueInfo[];
  initializers: ReadonlyArray<{ name: string; tensor: TensorData }>;
  valueInfo?: readonly ValueInfo[];
  docString?: string;
}

export interface ModelData {
  irVersion: number;
  opsets: ReadonlyArray<{ domain: string; version: number }>;
  producerName: string;
  producerVersion: string;
  graph: GraphData;
  metadata?: Readonly<Record<string, string>>;
}

/** AttributeProto.AttributeType codes. */
const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, graph: 5, floats: 6, ints: 7, strings: 8 } as const;

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

const utf8 = new TextEncoder();

/** Growable byte sink with protobuf primitives. */
export class ProtoWriter {
  private buf = new Uint8Array(1024);
  private len = 0;

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + extra) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /** Unsigned or two's-complement int64 varint. */
  varint(n: number | bigint): void {
    if (typeof n === 'number') {
      if (!Number.isInteger(n)) throw new Error(`varint: ${n} is not an integer`);
      if (n >= 0 && n < 2 ** 31) {
        while (n > 0x7f) {
          this.byte((n & 0x7f) | 0x80);
          n >>>= 7;
        }
        this.byte(n);
        return;
      }
      n = BigInt(n);
    }
    let v = BigInt.asUintN(64, n);
    while (v > 0x7fn) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
  }

  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  intField(field: number, n: number | bigint): void {
    this.tag(field, WIRE_VARINT);
    this.varint(n);
  }

  floatField(field: number, x: number): void {
    this.tag(field, WIRE_I32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, x, true);
    this.bytes(b);
  }

  doubleField(field: number, x: number): void {
    this.tag(field, WIRE_I64);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x, true);
    this.bytes(b);
  }

  bytesField(field: number, b: Uint8Array): void {
    this.tag(field, WIRE_LEN);
    this.varint(b.length);
    this.bytes(b);
  }

  stringField(field: number, s: string): void {
    this.bytesField(field, utf8.encode(s));
  }

  /** Embedded message: written into its own writer, then length-prefixed. */
  messageField(field: number, write: (w: ProtoWriter) => void): void {
    const inner = new ProtoWriter();
    write(inner);
    this.bytesField(field, inner.finish());
  }

  packedInts(field: number, values: readonly (number | bigint)[]): void {
    if (values.length === 0) return;
    const inner = new ProtoWriter();
    for (const v of values) inner.varint(v);
    this.bytesField(field, inner.finish());
  }

  packedFloats(field: number, values: readonly number[]): void {
    if (values.length === 0) return;
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    this.bytesField(field, b);
  }
}

/** Little-endian bytes of a typed array (the platform is little-endian on every target we ship). */
export function tensorBytes(t: TensorData): Uint8Array {
  const d = t.data;
  if (t.dtype === 'bool' && !(d instanceof Uint8Array)) throw new Error('bool tensors must be Uint8Array');
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

export function writeTensor(w: ProtoWriter, name: string, t: TensorData): void {
  w.packedInts(1, t.dims);
  w.intField(2, DATA_TYPE[t.dtype]);
  if (name) w.stringField(8, name);
  w.bytesField(9, tensorBytes(t));
}

function writeValueInfo(w: ProtoWriter, v: ValueInfo): void {
  w.stringField(1, v.name);
  w.messageField(2, (tp) => {
    tp.messageField(1, (tt) => {
      tt.intField(1, DATA_TYPE[v.dtype]);
      if (v.shape) {
        const shape = v.shape;
        tt.messageField(2, (sh) => {
          for (const d of shape) {
            sh.messageField(1, (dim) => {
              if (typeof d === 'number') dim.intField(1, d);
              else dim.stringField(2, d);
            });
          }
        });
      }
    });
  });
}

function writeAttribute(w: ProtoWriter, name: string, a: AttrValue): void {
  w.stringField(1, name);
  w.intField(20, ATTR_TYPE[a.kind]);
  switch (a.kind) {
    case 'float':
      w.floatField(2, a.value);
      break;
    case 'int':
      w.intField(3, a.value);
      break;
    case 'string':
      w.stringField(4, a.value);
      break;
    case 'tensor':
      w.messageField(5, (t) => writeTensor(t, '', a.value));
      break;
    case 'graph':
      w.messageField(6, (g) => writeGraph(g, a.value));
      break;
    case 'floats':
      w.packedFloats(7, a.value);
      break;
    case 'ints':
      w.packedInts(8, a.value);
      break;
    case 'strings':
      for (const s of a.value) w.stringField(9, s);
      break;
  }
}

function writeNode(w: ProtoWriter, n: NodeData): void {
  for (const i of n.inputs) w.stringField(1, i);
  for (const o of n.outputs) w.stringField(2, o);
  w.stringField(3, n.name);
  w.stringField(4, n.opType);
  for (const [name, a] of n.attributes) w.messageField(5, (aw) => writeAttribute(aw, name, a));
  if (n.domain) w.stringField(7, n.domain);
}

export function writeGraph(w: ProtoWriter, g: GraphData): void {
  for (const n of g.nodes) w.messageField(1, (nw) => writeNode(nw, n));
  w.stringField(2, g.name);
  for (const init of g.initializers) w.messageField(5, (tw) => writeTensor(tw, init.name, init.tensor));
  if (g.docString) w.stringField(10, g.docString);
  for (const v of g.inputs) w.messageField(11, (vw) => writeValueInfo(vw, v));
  for (const v of g.outputs) w.messageField(12, (vw) => writeValueInfo(vw, v));
  for (const v of g.valueInfo ?? []) w.messageField(13, (vw) => writeValueInfo(vw, v));
}

export function encodeModel(m: ModelData): Uint8Array {
  const w = new ProtoWriter();
  w.intField(1, m.irVersion);
  w.stringField(2, m.producerName);
  w.stringField(3, m.producerVersion);
  w.messageField(7, (g) => writeGraph(g, m.graph));
  for (const o of m.opsets) {
    w.messageField(8, (ow) => {
      if (o.domain) ow.stringField(1, o.domain);
      ow.intField(2, o.version);
    });
  }
  for (const [k, v] of Object.entries(m.metadata ?? {})) {
    w.messageField(14, (e) => {
      e.stringField(1, k);
      e.stringField(2, v);
    });
  }
  return w.finish();
}
