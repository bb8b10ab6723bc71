// The dependency-free ModelProto writer, read back by an independent protobuf reader (protobufjs with
// onnx.proto's field numbers) and by onnxruntime itself.

import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import protobuf from 'protobufjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeModel, ModelData, GraphData, TensorData } from '../../src/engine/onnx/proto';
import { Graph } from '../../src/engine/onnx/builder';
import { Ops } from '../../src/engine/onnx/ops';
import { buildTrainProgram, buildGradProgram } from '../../src/engine/train/program';

let ModelProto: protobuf.Type;

beforeAll(async () => {
  const root = await protobuf.load(path.resolve(__dirname, '../fixtures/onnx/onnx-subset.proto'));
  ModelProto = root.lookupType('onnx.ModelProto');
});

type Decoded = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function decode(buf: Uint8Array): Decoded {
  const msg = ModelProto.decode(buf);
  return ModelProto.toObject(msg, { longs: Number, bytes: Array, defaults: false, arrays: true }) as Decoded;
}

const bytesOf = (t: TensorData) => Array.from(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));

describe('protobuf writer round trip', () => {
  const body: GraphData = {
    name: 'body',
    nodes: [{ opType: 'Identity', name: 'id', inputs: ['a'], outputs: ['b'], attributes: [] }],
    inputs: [{ name: 'a', dtype: 'float32', shape: [2] }],
    outputs: [{ name: 'b', dtype: 'float32', shape: [2] }],
    initializers: [],
  };
  const f64: TensorData = { dtype: 'float64', dims: [2, 2], data: Float64Array.of(1.5, -2.25, 1e-300, Math.PI) };
  const i64: TensorData = { dtype: 'int64', dims: [3], data: BigInt64Array.of(-1n, 0n, 9007199254740993n) };
  const bool: TensorData = { dtype: 'bool', dims: [2], data: Uint8Array.of(1, 0) };
  const f32: TensorData = { dtype: 'float32', dims: [], data: Float32Array.of(0.1) };
  const i32: TensorData = { dtype: 'int32', dims: [1], data: Int32Array.of(-7) };
  const model: ModelData = {
    irVersion: 8,
    opsets: [{ domain: '', version: 18 }],
    producerName: 'gatelab',
    producerVersion: '0.1.0',
    metadata: { purpose: 'round trip', unicode: 'σ(x) ⊙ tanh' },
    graph: {
      name: 'g',
      docString: 'every attribute kind',
      nodes: [
        {
          opType: 'Custom',
          domain: 'gatelab.test',
          name: 'n0',
          inputs: ['x', ''],
          outputs: ['y'],
          attributes: [
            ['f', { kind: 'float', value: 0.25 }],
            ['i', { kind: 'int', value: -3 }],
            ['big', { kind: 'int', value: 2 ** 40 }],
            ['s', { kind: 'string', value: 'héllo' }],
            ['fs', { kind: 'floats', value: [1, -0.5] }],
            ['is', { kind: 'ints', value: [0, -1, 300, 2 ** 33] }],
            ['ss', { kind: 'strings', value: ['a', 'bc'] }],
            ['t', { kind: 'tensor', value: f64 }],
            ['g', { kind: 'graph', value: body }],
          ],
        },
      ],
      inputs: [{ name: 'x', dtype: 'float32', shape: ['K', 3, 'B'] }],
      outputs: [{ name: 'y', dtype: 'int64', shape: [] }],
      valueInfo: [{ name: 'z', dtype: 'bool' }],
      initializers: [
        { name: 'w64', tensor: f64 },
        { name: 'w_i64', tensor: i64 },
        { name: 'w_bool', tensor: bool },
        { name: 'w32', tensor: f32 },
        { name: 'w_i32', tensor: i32 },
      ],
    },
  };

  it('decodes every field with protobufjs', () => {
    const m = decode(encodeModel(model));
    expect(m.irVersion).toBe(8);
    expect(m.opsetImport.map((o: Decoded) => [o.domain ?? '', o.version])).toEqual([['', 18]]); // the default domain is written as absent
    expect(m.producerName).toBe('gatelab');
    expect(m.producerVersion).toBe('0.1.0');
    expect(m.metadataProps).toEqual([
      { key: 'purpose', value: 'round trip' },
      { key: 'unicode', value: 'σ(x) ⊙ tanh' },
    ]);
    const g = m.graph;
    expect(g.name).toBe('g');
    expect(g.docString).toBe('every attribute kind');
    const n = g.node[0];
    expect(n).toMatchObject({ opType: 'Custom', domain: 'gatelab.test', name: 'n0', input: ['x', ''], output: ['y'] });
    const a = Object.fromEntries(n.attribute.map((x: Decoded) => [x.name, x]));
    expect(a.f).toMatchObject({ type: 1, f: 0.25 });
    expect(a.i).toMatchObject({ type: 2, i: -3 });
    expect(a.big).toMatchObject({ type: 2, i: 2 ** 40 });
    expect(a.s.type).toBe(3);
    expect(Buffer.from(a.s.s).toString('utf8')).toBe('héllo');
    expect(a.fs).toMatchObject({ type: 6, floats: [1, -0.5] });
    expect(a.is).toMatchObject({ type: 7, ints: [0, -1, 300, 2 ** 33] });
    expect(a.ss.type).toBe(8);
    expect(a.ss.strings.map((s: number[]) => Buffer.from(s).toString())).toEqual(['a', 'bc']);
    expect(a.t.type).toBe(4);
    expect(a.t.t).toMatchObject({ dims: [2, 2], dataType: 11, rawData: bytesOf(f64) });
    expect(a.g.type).toBe(5);
    expect(a.g.g).toMatchObject({ name: 'body', node: [{ opType: 'Identity', input: ['a'], output: ['b'] }] });
    expect(g.input[0]).toEqual({
      name: 'x',
      type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'K' }, { dimValue: 3 }, { dimParam: 'B' }] } } },
    });
    // a scalar has a shape with no dims; an unknown rank has no shape
    expect(g.output[0].type.tensorType.elemType).toBe(7);
    expect(g.output[0].type.tensorType.shape?.dim ?? []).toEqual([]);
    expect(g.output[0].type.tensorType.shape).toBeDefined();
    expect(g.valueInfo[0]).toEqual({ name: 'z', type: { tensorType: { elemType: 9 } } });
    const inits = Object.fromEntries(g.initializer.map((t: Decoded) => [t.name, t]));
    expect(inits.w64).toMatchObject({ dims: [2, 2], dataType: 11, rawData: bytesOf(f64) });
    expect(inits.w_i64).toMatchObject({ dims: [3], dataType: 7, rawData: bytesOf(i64) });
    expect(inits.w_bool).toMatchObject({ dims: [2], dataType: 9, rawData: [1, 0] });
    expect(inits.w32.dims ?? []).toEqual([]);
    expect(inits.w32).toMatchObject({ dataType: 1, rawData: bytesOf(f32) });
    expect(inits.w_i32).toMatchObject({ dims: [1], dataType: 6, rawData: bytesOf(i32) });
  });

  it('re-encoding with protobufjs gives the same message', () => {
    const ours = encodeModel(model);
    const theirs = ModelProto.encode(ModelProto.decode(ours)).finish();
    expect(decode(theirs)).toEqual(decode(ours));
  });

  it('the training and gradient programs decode, with symbolic dims and all their nodes', () => {
    const lm = { vocab: 6, embedding: 0, hidden: [4, 3], dtype: 'float32' as const };
    const prog = buildTrainProgram({ lm, B: 2, T: 5, optimizer: { type: 'adam', learningRate: 0.01, momentum: 0.9, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 }, clipNorm: 1 });
    const data = prog.graph.toData();
    const m = decode(prog.graph.encode());
    expect(m.irVersion).toBe(8);
    expect(m.opsetImport.map((o: Decoded) => [o.domain ?? '', o.version])).toEqual([['', 18]]); // the default domain is written as absent
    expect(m.graph.node.map((n: Decoded) => n.opType)).toEqual(data.nodes.map((n) => n.opType));
    expect(m.graph.input.map((v: Decoded) => v.name)).toEqual(data.inputs.map((v) => v.name));
    const x = m.graph.input.find((v: Decoded) => v.name === 'x');
    expect(x.type.tensorType.shape.dim).toEqual([{ dimParam: 'K' }, { dimValue: 5 }, { dimValue: 2 }]);
    const scan = m.graph.node.find((n: Decoded) => n.opType === 'Scan');
    const body = scan.attribute.find((a: Decoded) => a.name === 'body');
    expect(body.type).toBe(5);
    expect(body.g.node.length).toBeGreaterThan(50);
    const g = buildGradProgram({ lm: { ...lm, dtype: 'float64' }, B: 2, T: 5 });
    expect(decode(g.graph.encode()).graph.output.map((v: Decoded) => v.name)).toEqual(g.graph.toData().outputs.map((v) => v.name));
  });
});

describe('onnxruntime loads what the writer writes', () => {
  it('a small graph computes the right numbers in float64 and int64', async () => {
    const g = new Graph('t');
    const op = new Ops(g);
    const a = g.input('a', 'float64', [2, 3]);
    const b = g.input('b', 'float64', [3, 2]);
    g.output(op.Add(op.MatMul(a, b), g.const([10, 20], 'float64', [2])), 'y');
    g.output(op.Shape(a), 'shape');
    const s = await ort.InferenceSession.create(g.encode(), { logSeverityLevel: 3 });
    const r = await s.run({
      a: new ort.Tensor('float64', Float64Array.of(1, 2, 3, 4, 5, 6), [2, 3]),
      b: new ort.Tensor('float64', Float64Array.of(1, 0, 0, 1, 1, 1), [3, 2]),
    });
    expect(Array.from(r.y.data as Float64Array)).toEqual([14, 25, 20, 31]);
    expect(Array.from(r.shape.data as BigInt64Array)).toEqual([2n, 3n]);
    await s.release();
  });

  it('the training program loads and reports its inputs and outputs', async () => {
    const lm = { vocab: 6, embedding: 3, hidden: [4], dtype: 'float32' as const };
    const prog = buildTrainProgram({ lm, B: 2, T: 3, optimizer: { type: 'sgd', learningRate: 1, momentum: 0.9, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 }, clipNorm: 1 });
    const s = await ort.InferenceSession.create(prog.graph.encode(), { logSeverityLevel: 3 });
    expect(s.inputNames).toEqual(prog.graph.toData().inputs.map((v) => v.name));
    expect(s.outputNames).toContain('loss');
    expect(s.outputNames).toContain('gnorm');
    await s.release();
  });
});
