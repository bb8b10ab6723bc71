// Bidirectional LSTM layers, dropout and cell clipping with peepholes in classification and forecast
// models, through the engine's generated programs in onnxruntime-node:
//  - PyTorch golden values (test/fixtures/golden/bilstm2_*.safetensors, from gen_golden.py): a
//    2-layer bidirectional nn.LSTM over padded sentences (pack_padded_sequence) with `last` and
//    `mean` pooling, and a bidirectional forecast; loss and the gradient of every parameter; the
//    same with a 2-layer bidirectional nn.GRU (bigru2_*, `gen_golden.py bigru`) and mixed stacks of
//    bidirectional GRU and LSTM layers (bimixed_*);
//  - the float64 TypeScript reference test/reference/seq_ref.ts (written from the definitions:
//    each direction reads only a sequence's real steps) on configurations PyTorch lacks or that the
//    fixtures do not cover: padding with one-hot input, mixed uni/bidirectional stacks, dropout with
//    given masks, peepholes + clip, coupled and hard-sigmoid gates per direction, bidirectional GRU
//    layers alone and over / under (bidirectional) LSTM layers. The engine's loss
//    must equal the reference's, and its gradient of every parameter the central finite difference
//    of the reference's loss;
//  - padded tokens change nothing; the gate probe reports every layer and direction (GRU layers: r,
//    z, n, h, the reverse direction's rows in the sentence's order); both directions' initialisers;
//  - the model-file checks (what is still rejected says so at its key) and training: the example
//    examples/sentiment-bilstm.gatelab.yaml (bidirectional, dropout) on the UCI sentences, the same
//    with a bidirectional GRU layer (checkpoint, gate snapshot, predict, export), a forecast with
//    dropout, reproducible with the seed.
//
// Criteria as in gradients.test.ts: vs PyTorch |a − b| ≤ 1e-4·max(|b|, 1e-3·max|b|); vs FD
// (ε = 1e-6) |a − fd| ≤ 1e-8 + 1e-5·|fd|. Set GRADIENTS_REPORT=1 to print the worst errors.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { errorReport, toInternal, toTorch } from '../reference/report';
import { buildClassifyGradProgram, classifyDropShapes, classifyParams, ClassifySpec } from '../../src/engine/train/classify';
import { buildForecastGradProgram, forecastDropShapes, forecastParams, ForecastSpec } from '../../src/engine/train/forecast';
import { GateActivation } from '../../src/engine/nn/lstm';
import { GATE_ORDERS } from '../../src/engine/train/checkpoint';
import { initParams } from '../../src/engine/nn/init';
import { OptimizerConfig } from '../../src/engine/config/types';
import { SeqGateProbe, SeqInput } from '../../src/engine/train/probe';
import { readSafetensors, StTensor } from '../../src/engine/util/safetensors';
import { Rng } from '../../src/engine/util/rng';
import { relError } from '../reference/lstm_ref';
import { CellRef, seqForward, SeqBatch, SeqParams, seqParamShapes, SeqRefSpec } from '../reference/seq_ref';

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/cli.js');
const GOLDEN = path.join(ROOT, 'test/fixtures/golden');
const SESSION: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3 };

const { record } = errorReport();


/** The engine's cell options for a reference cell. */
function gateOf(c: CellRef | undefined): GateActivation | undefined {
  if (!c) return undefined;
  return {
    ...(c.hard ? { kind: 'hard-sigmoid' as const, alpha: c.hard.alpha, beta: c.hard.beta } : { kind: 'sigmoid' as const }),
    ...(c.gru ? { cell: 'gru' as const } : {}),
    ...(c.coupled ? { coupled: true } : {}),
    ...(c.peepholes ? { peepholes: true } : {}),
    ...(c.clip ? { clip: c.clip } : {}),
  };
}

interface Case {
  spec: SeqRefSpec;
  batch: SeqBatch;
}

/** The engine's grad program for a case, and feeds built from PyTorch-order parameters. */
async function engineFor(c: Case, dropout: boolean) {
  const { spec, batch } = c;
  const { T, B } = batch;
  const gates = spec.hidden.map((_, k) => gateOf(spec.cells?.[k]));
  let prog;
  const feeds: Record<string, ort.Tensor> = {};
  let dropShapes: { name: string; shape: number[] }[];
  if (spec.head.kind === 'classify') {
    const inp = spec.input as { vocab: number; embedding: number };
    const cs: ClassifySpec = { vocab: inp.vocab, embedding: inp.embedding, hidden: spec.hidden, classes: spec.head.classes, pooling: spec.head.pooling, dtype: 'float64', gates, bidirectional: spec.bidirectional };
    prog = buildClassifyGradProgram({ spec: cs, B, T, dropout });
    dropShapes = classifyDropShapes(cs, B, T);
    const Hl = spec.hidden[spec.hidden.length - 1];
    const mask = new Float64Array(T * B);
    const last = new BigInt64Array(B * Hl);
    batch.lens.forEach((n, b) => {
      for (let t = 0; t < n; t++) mask[t * B + b] = 1;
      last.fill(BigInt(n - 1), b * Hl, (b + 1) * Hl);
    });
    feeds.x = new ort.Tensor('int64', BigInt64Array.from(batch.x, BigInt), [T, B]);
    feeds.mask = new ort.Tensor('float64', mask, [T, B]);
    feeds.last = new ort.Tensor('int64', last, [B, 1, Hl]);
    feeds.y = new ort.Tensor('int64', BigInt64Array.from(batch.y, BigInt), [B]);
  } else {
    const fs_: ForecastSpec = { hidden: spec.hidden, horizon: spec.head.horizon, dtype: 'float64', gates, bidirectional: spec.bidirectional };
    prog = buildForecastGradProgram({ spec: fs_, B, T, dropout });
    dropShapes = forecastDropShapes(fs_, B, T);
    feeds.x = new ort.Tensor('float64', Float64Array.from(batch.x), [T, B, 1]);
    feeds.y = new ort.Tensor('float64', Float64Array.from(batch.y), [B, spec.head.horizon]);
  }
  if (dropout) {
    dropShapes.forEach((d, i) => {
      const m = i < dropShapes.length - 1 ? batch.drop!.layers[i] : batch.drop!.head;
      expect(m.length, d.name).toBe(d.shape.reduce((a, b) => a * b, 1));
      feeds[d.name] = new ort.Tensor('float64', m, d.shape);
    });
  }
  const session = await ort.InferenceSession.create(prog.graph.encode(), SESSION);
  return {
    params: prog.params,
    async run(p: SeqParams) {
      for (const q of prog.params) {
        expect(p[q.name]?.shape, q.name).toEqual(q.shape);
        feeds[`p.${q.name}`] = new ort.Tensor('float64', toInternal(q.name, q.shape, p[q.name].data), q.shape);
      }
      const r = await session.run(feeds);
      const grads: Record<string, Float64Array> = {};
      for (const q of prog.params) grads[q.name] = toTorch(q.name, q.shape, r[`d.${q.name}`].data as Float64Array);
      return { loss: (r.loss.data as Float64Array)[0], grads };
    },
    feeds,
    release: () => session.release(),
  };
}

// ---- PyTorch golden values -------------------------------------------------------------------------

const f64 = (t: StTensor) => t.data as Float64Array;

// bilstm2_*: a 2-layer bidirectional nn.LSTM; bigru2_*: a 2-layer bidirectional nn.GRU; bimixed_*: a
// bidirectional GRU over a bidirectional LSTM (classification) and the other way round (forecast)
const GOLDEN_BI = ['bilstm2_cls_last', 'bilstm2_cls_mean', 'bilstm2_forecast', 'bigru2_cls_last', 'bigru2_cls_mean', 'bigru2_forecast', 'bimixed_lstm_gru_cls', 'bimixed_gru_lstm_forecast'];

describe('bidirectional LSTM and GRU layers vs PyTorch golden values (float64)', () => {
  for (const name of GOLDEN_BI) {
    it(`${name}: loss and the gradient of every parameter (both directions, both layers)`, async () => {
      const g = readSafetensors(path.join(GOLDEN, `${name}.safetensors`));
      const hidden: number[] = JSON.parse(g.metadata.hidden);
      // per layer its cell type (the bilstm2_* files predate the `cells` entry: LSTM layers)
      const kinds: string[] = g.metadata.cells ? (JSON.parse(g.metadata.cells) as [string, number][]).map(([t]) => t) : hidden.map(() => 'lstm');
      const cells = kinds.map((t) => (t === 'gru' ? { gru: true } : undefined));
      const bidirectional = hidden.map(() => true);
      const classify = g.metadata.task === 'classification';
      const p: SeqParams = {};
      for (const [k, t] of Object.entries(g.tensors)) if (/^(lstm|gru|fc|embedding)\./.test(k)) p[k] = { shape: t.shape, data: Float64Array.from(f64(t)) };
      kinds.forEach((t, k) => expect(Object.keys(p), `layer ${k} is ${t}`).toContain(`${t}.weight_hh_l${k}_reverse`));
      let c: Case;
      if (classify) {
        const [B, T] = g.tensors.x.shape;
        const xb = g.tensors.x.data as BigInt64Array;
        const x = new Array<number>(T * B);
        for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) x[t * B + b] = Number(xb[b * T + t]);
        const lens = Array.from(g.tensors.lens.data as BigInt64Array, Number);
        expect(Math.min(...lens), 'the case has padding').toBeLessThan(T);
        c = {
          spec: { input: { kind: 'tokens', vocab: Number(g.metadata.vocab), embedding: Number(g.metadata.embedding) }, hidden, bidirectional, cells, head: { kind: 'classify', classes: Number(g.metadata.classes), pooling: g.metadata.pooling as 'last' | 'mean' } },
          batch: { T, B, x, lens, y: Array.from(g.tensors.y.data as BigInt64Array, Number) },
        };
      } else {
        const [B, T] = g.tensors.x.shape;
        const xb = f64(g.tensors.x);
        const x = new Array<number>(T * B);
        for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) x[t * B + b] = xb[b * T + t];
        c = {
          spec: { input: { kind: 'dense', features: 1 }, hidden, bidirectional, cells, head: { kind: 'forecast', horizon: Number(g.metadata.horizon) } },
          batch: { T, B, x, lens: new Array(B).fill(T), y: Array.from(f64(g.tensors.y)) },
        };
      }
      const e = await engineFor(c, false);
      expect(e.params.map((q) => q.name).sort()).toEqual(Object.keys(p).sort());
      expect(e.params.some((q) => q.name.endsWith('_reverse'))).toBe(true);
      const r = await e.run(p);
      const want = f64(g.tensors.loss)[0];
      const lossErr = Math.abs(r.loss - want) / Math.abs(want);
      record('PyTorch loss', lossErr, name);
      expect(lossErr).toBeLessThanOrEqual(1e-4);
      // and the reference agrees with PyTorch too (it is the spec the FD tests use)
      expect(Math.abs(seqForward(p, c.spec, c.batch).loss - want) / want).toBeLessThanOrEqual(1e-12);
      for (const q of e.params) {
        const rel = relError(r.grads[q.name], f64(g.tensors[`grad.${q.name}`]), { floorFrac: 1e-3, floor: 1e-300 });
        record('PyTorch gradients', rel.worst, `${name} ${q.name}`);
        expect(rel.worst, `${q.name}: got ${rel.got}, want ${rel.want} at [${rel.at}]`).toBeLessThanOrEqual(1e-4);
      }
      await e.release();
    });
  }
});

// ---- the TS reference and finite differences ---------------------------------------------------------

function randomParams(spec: SeqRefSpec, shapes: { name: string; shape: number[] }[], rng: Rng, scale: number): SeqParams {
  void spec;
  const p: SeqParams = {};
  for (const { name, shape } of shapes) p[name] = { shape, data: Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-scale, scale)) };
  return p;
}

function masks(spec: SeqRefSpec, T: number, B: number, rng: Rng, pDrop: number): SeqBatch['drop'] {
  const dirs = (k: number) => (spec.bidirectional[k] ? 2 : 1);
  const draw = (n: number) => Float64Array.from({ length: n }, () => (rng.next() < pDrop ? 0 : 1 / (1 - pDrop)));
  const L = spec.hidden.length;
  return { layers: spec.hidden.slice(0, -1).map((H, k) => draw(T * B * dirs(k) * H)), head: draw(B * dirs(L - 1) * spec.hidden[L - 1]) };
}

function classifyCase(o: { vocab: number; embedding: number; hidden: number[]; bidirectional: boolean[]; pooling: 'last' | 'mean'; cells?: (CellRef | undefined)[]; lens: number[]; T: number; drop?: number; seed: number }): Case {
  const rng = new Rng(o.seed);
  const B = o.lens.length;
  const spec: SeqRefSpec = { input: { kind: 'tokens', vocab: o.vocab, embedding: o.embedding }, hidden: o.hidden, bidirectional: o.bidirectional, cells: o.cells, head: { kind: 'classify', classes: 3, pooling: o.pooling } };
  return {
    spec,
    batch: {
      T: o.T,
      B,
      x: Array.from({ length: o.T * B }, () => rng.int(1, o.vocab - 1)),
      lens: o.lens,
      y: Array.from({ length: B }, () => rng.int(0, 2)),
      ...(o.drop ? { drop: masks(spec, o.T, B, rng, o.drop) } : {}),
    },
  };
}

function forecastCase(o: { hidden: number[]; bidirectional: boolean[]; cells?: (CellRef | undefined)[]; B: number; T: number; drop?: number; seed: number }): Case {
  const rng = new Rng(o.seed);
  const spec: SeqRefSpec = { input: { kind: 'dense', features: 1 }, hidden: o.hidden, bidirectional: o.bidirectional, cells: o.cells, head: { kind: 'forecast', horizon: 2 } };
  return {
    spec,
    batch: {
      T: o.T,
      B: o.B,
      x: Array.from({ length: o.T * o.B }, () => rng.normal()),
      lens: new Array(o.B).fill(o.T),
      y: Array.from({ length: o.B * 2 }, () => rng.normal()),
      ...(o.drop ? { drop: masks(spec, o.T, o.B, rng, o.drop) } : {}),
    },
  };
}

const hard = { alpha: 0.2, beta: 0.5 };
const CASES: { label: string; c: Case; scale: number }[] = [
  {
    label: 'classification, 2 bidirectional layers, embedding, padding, last pooling, dropout',
    c: classifyCase({ vocab: 7, embedding: 3, hidden: [4, 3], bidirectional: [true, true], pooling: 'last', lens: [6, 2, 4, 1], T: 6, drop: 0.3, seed: 1 }),
    scale: 0.9,
  },
  {
    label: 'classification, unidirectional under bidirectional, one-hot, mean pooling, peepholes + clip, CIFG + hard sigmoid, dropout',
    c: classifyCase({ vocab: 6, embedding: 0, hidden: [3, 4], bidirectional: [false, true], pooling: 'mean', cells: [{ peepholes: true, clip: 0.8 }, { coupled: true, hard }], lens: [5, 3, 1], T: 5, drop: 0.25, seed: 2 }),
    scale: 1.2,
  },
  {
    label: 'classification, bidirectional over unidirectional, last pooling, peepholes + clip + hard sigmoid',
    c: classifyCase({ vocab: 8, embedding: 2, hidden: [4, 2], bidirectional: [true, false], pooling: 'last', cells: [{ peepholes: true, clip: 1, hard }, { peepholes: true, coupled: true }], lens: [2, 5], T: 5, seed: 3 }),
    scale: 1.2,
  },
  {
    label: 'forecast, 2 bidirectional layers, peepholes + clip, dropout',
    c: forecastCase({ hidden: [4, 3], bidirectional: [true, true], cells: [{ peepholes: true, clip: 0.7 }, { hard, clip: 0.9 }], B: 3, T: 6, drop: 0.3, seed: 4 }),
    scale: 1.2,
  },
  {
    label: 'forecast, one bidirectional layer, no variants',
    c: forecastCase({ hidden: [5], bidirectional: [true], B: 2, T: 7, seed: 5 }),
    scale: 0.8,
  },
  // bidirectional GRU layers, alone and in mixed stacks
  {
    label: 'GRU: classification, 2 bidirectional GRU layers, one-hot, padding, mean pooling, dropout',
    c: classifyCase({ vocab: 6, embedding: 0, hidden: [3, 4], bidirectional: [true, true], pooling: 'mean', cells: [{ gru: true }, { gru: true }], lens: [5, 1, 3, 4], T: 5, drop: 0.3, seed: 11 }),
    scale: 1.2,
  },
  {
    label: 'GRU: classification, bidirectional GRU over bidirectional LSTM (peepholes + clip), embedding, last pooling, dropout',
    c: classifyCase({ vocab: 7, embedding: 3, hidden: [4, 3], bidirectional: [true, true], pooling: 'last', cells: [{ peepholes: true, clip: 0.8 }, { gru: true }], lens: [6, 2, 4], T: 6, drop: 0.25, seed: 12 }),
    scale: 1.2,
  },
  {
    label: 'GRU: classification, bidirectional LSTM over bidirectional hard-sigmoid GRU, last pooling',
    c: classifyCase({ vocab: 8, embedding: 2, hidden: [3, 4], bidirectional: [true, true], pooling: 'last', cells: [{ gru: true, hard }, undefined], lens: [3, 5], T: 5, seed: 13 }),
    scale: 1.5,
  },
  {
    label: 'GRU: classification, unidirectional GRU under bidirectional GRU, mean pooling',
    c: classifyCase({ vocab: 6, embedding: 3, hidden: [4, 3], bidirectional: [false, true], pooling: 'mean', cells: [{ gru: true }, { gru: true }], lens: [2, 5, 4], T: 5, seed: 14 }),
    scale: 1,
  },
  {
    label: 'GRU: forecast, 2 bidirectional GRU layers (hard sigmoid above), dropout',
    c: forecastCase({ hidden: [4, 3], bidirectional: [true, true], cells: [{ gru: true }, { gru: true, hard }], B: 3, T: 6, drop: 0.3, seed: 15 }),
    scale: 1.2,
  },
  {
    label: 'GRU: forecast, unidirectional LSTM under a bidirectional GRU',
    c: forecastCase({ hidden: [3, 4], bidirectional: [false, true], cells: [undefined, { gru: true }], B: 2, T: 7, seed: 16 }),
    scale: 1,
  },
];

describe('engine gradients vs central finite differences of the float64 reference', () => {
  for (const { label, c, scale } of CASES) {
    it(label, async () => {
      const e = await engineFor(c, !!c.batch.drop);
      // the engine's parameters are the reference's (names, shapes, order), per layer and direction
      expect(e.params).toEqual(seqParamShapes(c.spec));
      const p = randomParams(c.spec, e.params, new Rng(100 + label.length), scale);
      const r = await e.run(p);
      const ref = seqForward(p, c.spec, c.batch);
      const lossErr = Math.abs(r.loss - ref.loss) / Math.abs(ref.loss);
      record('loss vs reference', lossErr, label);
      expect(lossErr, `engine ${r.loss} vs reference ${ref.loss}`).toBeLessThanOrEqual(1e-12);
      // the variants and dropout are in effect: the loss without them differs (a GRU layer stays one)
      const variants = c.spec.cells?.some((x) => x && (x.hard || x.peepholes || x.coupled || x.clip));
      const plain = seqForward(p, { ...c.spec, cells: c.spec.cells?.map((x) => (x?.gru ? { gru: true } : undefined)) }, c.batch);
      const noDrop = seqForward(p, c.spec, { ...c.batch, drop: undefined });
      if (variants) expect(Math.abs(plain.loss - ref.loss), 'variants change the loss').toBeGreaterThan(1e-3);
      if (c.spec.cells?.some((x) => x?.clip)) {
        const unclipped = seqForward(p, { ...c.spec, cells: c.spec.cells.map((x) => x && { ...x, clip: undefined }) }, c.batch);
        expect(Math.abs(unclipped.loss - ref.loss), 'clipping takes effect').toBeGreaterThan(1e-4);
      }
      if (c.batch.drop) expect(Math.abs(noDrop.loss - ref.loss), 'dropout changes the loss').toBeGreaterThan(1e-3);
      let worstRatio = 0;
      for (const q of e.params) {
        const data = p[q.name].data;
        const d = r.grads[q.name];
        expect(d.some((v) => v !== 0), `${q.name} gets a gradient`).toBe(true);
        for (let i = 0; i < data.length; i++) {
          const old = data[i];
          data[i] = old + 1e-6;
          const up = seqForward(p, c.spec, c.batch).loss;
          data[i] = old - 1e-6;
          const down = seqForward(p, c.spec, c.batch).loss;
          data[i] = old;
          const fd = (up - down) / 2e-6;
          const tol = 1e-8 + 1e-5 * Math.abs(fd);
          worstRatio = Math.max(worstRatio, Math.abs(d[i] - fd) / tol);
          expect(Math.abs(d[i] - fd), `${q.name}[${i}]: analytic ${d[i]} vs FD ${fd}`).toBeLessThanOrEqual(tol);
        }
      }
      record('FD (of the allowed error)', worstRatio, label);
      if (c.spec.head.kind === 'classify') {
        // every padded token changed: the loss stays exactly the same
        const x = e.feeds.x.data as BigInt64Array;
        const { T, B, lens } = c.batch;
        const before = r.loss;
        let changed = 0;
        lens.forEach((n, b) => {
          for (let t = n; t < T; t++, changed++) x[t * B + b] = BigInt((Number(x[t * B + b]) % ((c.spec.input as { vocab: number }).vocab - 1)) + 1);
        });
        expect(changed).toBeGreaterThan(0);
        expect((await e.run(p)).loss).toBe(before);
      }
      await e.release();
    });
  }
});

describe('gate probe of a bidirectional model', () => {
  it('reports every layer and direction, the reverse one in the sentence’s order', async () => {
    const spec: SeqRefSpec = { input: { kind: 'tokens', vocab: 9, embedding: 3 }, hidden: [4, 3], bidirectional: [true, true], cells: [{ peepholes: true, clip: 1 }, undefined], head: { kind: 'classify', classes: 2, pooling: 'last' } };
    const cs: ClassifySpec = { vocab: 9, embedding: 3, hidden: [4, 3], classes: 2, pooling: 'last', dtype: 'float32', gates: [gateOf(spec.cells![0]), undefined], bidirectional: [true, true] };
    const rng = new Rng(7);
    const ids = [3, 1, 4, 1, 5, 8];
    const T = ids.length;
    const params = classifyParams(cs);
    const p = randomParams(spec, params, rng, 1);
    const feeds: Record<string, ort.Tensor> = {};
    for (const q of params) feeds[`p.${q.name}`] = new ort.Tensor('float32', Float32Array.from(toInternal(q.name, q.shape, p[q.name].data)), q.shape);
    const probe = new SeqGateProbe({ type: 'tokens', vocab: 9, embedding: 3 }, cs.hidden, cs.gates, BigInt64Array.from(ids, BigInt), ids.map(String), cs.bidirectional);
    const m = await probe.run(feeds, 1);
    await probe.release();
    expect(m.layers.map((l) => `${l.layer} ${l.direction} ${l.units}`)).toEqual(['0 forward 4', '0 reverse 4', '1 forward 3', '1 reverse 3']);
    const ref = seqForward(p, spec, { T, B: 1, x: ids, lens: [T], y: [0] });
    for (const l of m.layers) {
      const want = ref.h[l.layer][l.direction === 'reverse' ? '_reverse' : ''];
      const got = l.values.h!;
      expect(got.length).toBe(T * l.units);
      for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[i]), `layer ${l.layer} ${l.direction} h[${i}]`).toBeLessThanOrEqual(2e-4);
      for (const gname of ['i', 'f', 'o', 'g', 'c'] as const) expect(l.values[gname]).toHaveLength(T * l.units);
    }
    // the reverse direction's first step has read the whole sentence: it differs from its last
    const rev = m.layers[1].values.h!;
    expect(rev.slice(0, 4)).not.toEqual(rev.slice((T - 1) * 4));
  });

  it('bidirectional GRU layers (mixed with LSTM layers): r, z, n and h per direction, the reverse one in the sentence’s order', async () => {
    const cases: { input: SeqInput; spec: SeqRefSpec; x: number[] }[] = [
      {
        // one-hot tokens into a bidirectional GRU, a bidirectional LSTM above it, a bidirectional hard-sigmoid GRU on top
        input: { type: 'tokens', vocab: 7, embedding: 0 },
        spec: { input: { kind: 'tokens', vocab: 7, embedding: 0 }, hidden: [4, 3, 5], bidirectional: [true, true, true], cells: [{ gru: true }, undefined, { gru: true, hard }], head: { kind: 'classify', classes: 2, pooling: 'last' } },
        x: [3, 1, 4, 1, 5, 6, 2],
      },
      {
        // a forecast window: a unidirectional GRU under a bidirectional one
        input: { type: 'dense', features: 1 },
        spec: { input: { kind: 'dense', features: 1 }, hidden: [3, 4], bidirectional: [false, true], cells: [{ gru: true }, { gru: true }], head: { kind: 'forecast', horizon: 1 } },
        x: [0.5, -1.2, 0.3, 2.0, -0.4, 0.9],
      },
    ];
    for (const c of cases) {
      const T = c.x.length;
      const gates = c.spec.hidden.map((_, k) => gateOf(c.spec.cells?.[k]));
      const params = seqParamShapes(c.spec);
      const p = randomParams(c.spec, params, new Rng(8), 1.5);
      const feeds: Record<string, ort.Tensor> = {};
      for (const q of params) feeds[`p.${q.name}`] = new ort.Tensor('float32', Float32Array.from(toInternal(q.name, q.shape, p[q.name].data)), q.shape);
      const xs = c.input.type === 'dense' ? Float32Array.from(c.x) : BigInt64Array.from(c.x, BigInt);
      const probe = new SeqGateProbe(c.input, c.spec.hidden, gates, xs, c.x.map(String), c.spec.bidirectional);
      const m = await probe.run(feeds, 1);
      await probe.release();
      const want = c.spec.hidden.flatMap((H, k) => (c.spec.bidirectional[k] ? ['forward', 'reverse'] : ['forward']).map((d) => `${k} ${d} ${H} ${c.spec.cells?.[k]?.gru ? 'gru' : 'lstm'}`));
      expect(m.layers.map((l) => `${l.layer} ${l.direction} ${l.units} ${l.cell}`)).toEqual(want);
      const ref = seqForward(p, c.spec, { T, B: 1, x: c.x, lens: [T], y: [0] });
      for (const l of m.layers) {
        const H = l.units;
        const h = l.values.h!;
        const wantH = ref.h[l.layer][l.direction === 'reverse' ? '_reverse' : ''];
        expect(h.length).toBe(T * H);
        for (let i = 0; i < h.length; i++) expect(Math.abs(h[i] - wantH[i]), `layer ${l.layer} ${l.direction} h[${i}]`).toBeLessThanOrEqual(2e-4);
        if (l.cell !== 'gru') continue;
        expect(l.gates).toEqual(['r', 'z', 'n', 'h']);
        expect(Object.keys(l.saturation).sort()).toEqual(['r', 'z']);
        // r, z and n are in the same (sentence) order as h: each step's h is (1 − z)·n + z·h_prev, where
        // h_prev is the step before in reading order (the next step in the sentence for the reverse direction)
        const [z, n] = [l.values.z!, l.values.n!];
        for (let t = 0; t < T; t++) {
          const prev = l.direction === 'reverse' ? t + 1 : t - 1;
          for (let u = 0; u < H; u++) {
            const hp = prev < 0 || prev >= T ? 0 : h[prev * H + u];
            const i = t * H + u;
            expect(Math.abs((1 - z[i]) * n[i] + z[i] * hp - h[i]), `layer ${l.layer} ${l.direction} step ${t} unit ${u}`).toBeLessThanOrEqual(1e-3);
          }
        }
      }
    }
  });
});

describe('initialisation of both directions', () => {
  it('forgetBias and the orthogonal recurrent initialiser apply to the reverse direction too', () => {
    const cs: ClassifySpec = { vocab: 5, embedding: 0, hidden: [4, 3], classes: 2, pooling: 'last', dtype: 'float64', bidirectional: [true, true] };
    const params = classifyParams(cs);
    const w = initParams(params, [{ hidden: 4, forgetBias: 5 }, { hidden: 3, forgetBias: 5 }], 1, 'float64', { input: 'pytorch', recurrent: 'orthogonal' });
    const f = GATE_ORDERS.internal.indexOf('f');
    for (const [k, H] of [[0, 4], [1, 3]])
      for (const sfx of ['', '_reverse']) {
        const b = w.get(`lstm.bias_ih_l${k}${sfx}`)!.data;
        // U(−1/√H, 1/√H) + 5 on the forget block, U(−1/√H, 1/√H) elsewhere
        for (let i = 0; i < 4 * H; i++) {
          const inF = i >= f * H && i < (f + 1) * H;
          expect(Math.abs(b[i] - (inF ? 5 : 0)), `${sfx} bias[${i}]`).toBeLessThanOrEqual(1 / Math.sqrt(H));
        }
        // each gate block of W_hh is orthogonal: Q·Qᵀ = I
        const R = w.get(`lstm.weight_hh_l${k}${sfx}`)!.data;
        for (let g = 0; g < 4; g++)
          for (let i = 0; i < H; i++)
            for (let j = 0; j < H; j++) {
              let dot = 0;
              for (let u = 0; u < H; u++) dot += R[g * H * H + i * H + u] * R[g * H * H + j * H + u];
              expect(dot).toBeCloseTo(i === j ? 1 : 0, 10);
            }
      }
    expect(w.get('lstm.weight_ih_l1_reverse')!.shape).toEqual([12, 8]); // the layer below's [h_fwd, h_bwd]
    expect(w.get('fc.weight')!.shape).toEqual([2, 6]);
    // the two directions start from different weights
    expect(Array.from(w.get('lstm.weight_ih_l0')!.data)).not.toEqual(Array.from(w.get('lstm.weight_ih_l0_reverse')!.data));
  });

  it('GRU layers: PyTorch’s U(±1/√H) and the orthogonal / xavier initialisers per gate block r, z, n in both directions', () => {
    const GRU: GateActivation = { kind: 'sigmoid', cell: 'gru' };
    // a bidirectional GRU over a bidirectional LSTM
    const cs: ClassifySpec = { vocab: 5, embedding: 0, hidden: [4, 3], classes: 2, pooling: 'last', dtype: 'float64', gates: [undefined, GRU], bidirectional: [true, true] };
    const params = classifyParams(cs);
    expect(params.filter((p) => p.name.startsWith('gru.')).map((p) => `${p.name} [${p.shape}]`)).toEqual([
      'gru.weight_ih_l1 [9,8]', 'gru.weight_hh_l1 [9,3]', 'gru.bias_ih_l1 [9]', 'gru.bias_hh_l1 [9]',
      'gru.weight_ih_l1_reverse [9,8]', 'gru.weight_hh_l1_reverse [9,3]', 'gru.bias_ih_l1_reverse [9]', 'gru.bias_hh_l1_reverse [9]',
    ]);
    const H = 3;
    const plain = initParams(params, [{ hidden: 4, forgetBias: 0 }, { hidden: H, forgetBias: 0 }], 1, 'float64');
    for (const sfx of ['', '_reverse'])
      for (const n of ['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh']) {
        const d = plain.get(`gru.${n}_l1${sfx}`)!.data;
        expect(Math.max(...Array.from(d, Math.abs)), `gru.${n}_l1${sfx}`).toBeLessThanOrEqual(1 / Math.sqrt(H));
        expect(new Set(d).size, `gru.${n}_l1${sfx} is drawn`).toBe(d.length);
      }
    expect(Array.from(plain.get('gru.weight_hh_l1')!.data)).not.toEqual(Array.from(plain.get('gru.weight_hh_l1_reverse')!.data));
    const w = initParams(params, [{ hidden: 4, forgetBias: 0 }, { hidden: H, forgetBias: 0 }], 1, 'float64', { input: 'xavier', recurrent: 'orthogonal' });
    for (const sfx of ['', '_reverse']) {
      // each of the 3 gate blocks of W_hh is orthogonal: Q·Qᵀ = I
      const R = w.get(`gru.weight_hh_l1${sfx}`)!.data;
      for (let g = 0; g < 3; g++)
        for (let i = 0; i < H; i++)
          for (let j = 0; j < H; j++) {
            let dot = 0;
            for (let u = 0; u < H; u++) dot += R[g * H * H + i * H + u] * R[g * H * H + j * H + u];
            expect(dot, `${sfx} block ${g}`).toBeCloseTo(i === j ? 1 : 0, 10);
          }
      // xavier on W_ih: U(±√(6 / (fan_in + H))) with fan_in = 8 (the LSTM layer's [h_fwd, h_bwd])
      const X = w.get(`gru.weight_ih_l1${sfx}`)!.data;
      expect(Math.max(...Array.from(X, Math.abs))).toBeLessThanOrEqual(Math.sqrt(6 / (8 + H)));
      expect(Math.max(...Array.from(X, Math.abs))).toBeGreaterThan(1 / Math.sqrt(H));
    }
  });
});

describe('dropout masks', () => {
  it('are inputs of the training programs only, shaped per layer and direction; prediction has none', async () => {
    const { buildClassifyTrainProgram, buildClassifyPredictProgram } = await import('../../src/engine/train/classify');
    const { buildForecastTrainProgram, buildForecastPredictProgram } = await import('../../src/engine/train/forecast');
    const opt: OptimizerConfig = { type: 'adam', learningRate: 0.01, momentum: 0, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 };
    const cs: ClassifySpec = { vocab: 5, embedding: 2, hidden: [4, 3], classes: 2, pooling: 'mean', dtype: 'float32', bidirectional: [true, false], dropout: 0.3 };
    const drops = (g: { inputs: { name: string; shape: readonly (number | string)[] }[] }) => g.inputs.filter((v) => v.name.startsWith('drop.')).map((v) => `${v.name} [${v.shape}]`);
    expect(drops(buildClassifyTrainProgram({ spec: cs, B: 2, T: 5, optimizer: opt, clipNorm: 1 }).graph)).toEqual(['drop.l0 [K,5,2,8]', 'drop.head [K,2,3]']);
    expect(drops(buildClassifyPredictProgram({ spec: cs, N: 2, T: 5 }).graph)).toEqual([]);
    expect(drops(buildClassifyTrainProgram({ spec: { ...cs, dropout: 0 }, B: 2, T: 5, optimizer: opt, clipNorm: 1 }).graph)).toEqual([]);
    const fs_: ForecastSpec = { hidden: [3], horizon: 2, dtype: 'float32', bidirectional: [true], dropout: 0.5 };
    expect(drops(buildForecastTrainProgram({ spec: fs_, B: 4, T: 6, optimizer: opt, clipNorm: 1 }).graph)).toEqual(['drop.head [K,4,6]']);
    expect(drops(buildForecastPredictProgram({ spec: fs_, N: 4, T: 6 }).graph)).toEqual([]);
  });
});

// ---- model files, training ---------------------------------------------------------------------------

function cli(dir: string, args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('model files and training', () => {
  it('what stays unsupported is rejected at its key; the new combinations are accepted', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-bi-'));
    fs.writeFileSync(path.join(dir, 'c.txt'), 'abc abc abc '.repeat(50));
    fs.writeFileSync(path.join(dir, 'lm.gatelab.yaml'), 'name: lm\ndata: { source: c.txt, sequenceLength: 5 }\nmodel:\n  layers:\n    - { hidden: 4, bidirectional: true }\ntrain: { steps: 1 }\n');
    let r = cli(dir, ['train', 'lm.gatelab.yaml', '--no-record']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/lm\.gatelab\.yaml:5:\d+: model\.layers\.0\.bidirectional: a bidirectional language model is not supported yet/);
    // a bidirectional GRU layer: the same (only classification and forecast read whole sequences)
    fs.writeFileSync(path.join(dir, 'lmg.gatelab.yaml'), 'name: lmg\ndata: { source: c.txt, sequenceLength: 5 }\nmodel:\n  layers:\n    - { type: gru, hidden: 4 }\n    - { type: gru, hidden: 4, bidirectional: true }\ntrain: { steps: 1 }\n');
    r = cli(dir, ['train', 'lmg.gatelab.yaml', '--no-record']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/lmg\.gatelab\.yaml:6:\d+: model\.layers\.1\.bidirectional: a bidirectional language model is not supported yet/);
    fs.writeFileSync(path.join(dir, 'copy.gatelab.yaml'), 'name: copy\ntask: copy\nmodel:\n  dropout: 0.2\n  layers: [{ hidden: 4 }]\ntrain: { steps: 1 }\n');
    r = cli(dir, ['train', 'copy.gatelab.yaml', '--no-record']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/copy\.gatelab\.yaml:4:\d+: model\.dropout: dropout in a copy model is not supported yet/);
    fs.writeFileSync(path.join(dir, 'add.gatelab.yaml'), 'name: add\ntask: adding\nmodel:\n  layers:\n    - { hidden: 4, bidirectional: true }\ntrain: { steps: 1 }\n');
    r = cli(dir, ['train', 'add.gatelab.yaml', '--no-record']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/model\.layers\.0\.bidirectional: a bidirectional adding model is not supported yet/);
    // a language model with peepholes and cell clipping together trains
    fs.writeFileSync(path.join(dir, 'pc.gatelab.yaml'), 'name: pc\ndata: { source: c.txt, sequenceLength: 5 }\nmodel:\n  layers:\n    - { hidden: 4, peepholes: true, cellClip: 2 }\ntrain: { steps: 2, batchSize: 4 }\n');
    r = cli(dir, ['train', 'pc.gatelab.yaml', '--no-record', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).steps).toBe(2);
    for (const e of [r.stderr]) expect(e).not.toMatch(/\n\s+at /);
  });

  it('examples/sentiment-bilstm.gatelab.yaml (bidirectional, dropout): at least 78% accuracy on the held-out UCI sentences', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-bi-'));
    const r = cli(dir, ['train', path.join(ROOT, 'examples/sentiment-bilstm.gatelab.yaml'), '--quiet', '--no-record', '--save', path.join(dir, 'w.safetensors')]);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    record('sentiment-bilstm accuracy', s.accuracy, 'examples/sentiment-bilstm.gatelab.yaml');
    expect(s.accuracy).toBeGreaterThanOrEqual(0.78);
    // the checkpoint holds both directions under PyTorch's names
    const names = Object.keys(readSafetensors(path.join(dir, 'w.safetensors')).tensors);
    expect(names).toContain('lstm.weight_ih_l0_reverse');
    expect(names).toContain('lstm.bias_hh_l0_reverse');
    const pos = JSON.parse(cli(dir, ['predict', path.join(ROOT, 'examples/sentiment-bilstm.gatelab.yaml'), '--init', 'w.safetensors', '--input', 'The food was wonderful and the staff were friendly']).stdout);
    expect(pos.label).toBe('1');
    // the same checkpoint with a unidirectional model file: an error at the layer's bidirectional key
    fs.writeFileSync(path.join(dir, 'uni.gatelab.yaml'), fs.readFileSync(path.join(ROOT, 'examples/sentiment-bilstm.gatelab.yaml'), 'utf8').replace('bidirectional: true', 'bidirectional: false'));
    const bad = cli(dir, ['predict', 'uni.gatelab.yaml', '--init', 'w.safetensors', '--input', 'good']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/uni\.gatelab\.yaml:\d+:\d+: model\.layers\.0\.bidirectional: checkpoint w\.safetensors has tensor lstm\.weight_ih_l0_reverse, which model "sentiment-bilstm" does not have/);
  });

  it('a bidirectional GRU sentiment classifier (the bilstm example with type: gru): at least 78% accuracy; gru.*_reverse tensors, gate snapshots of both directions, predict, export', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-bigru-'));
    const example = fs.readFileSync(path.join(ROOT, 'examples/sentiment-bilstm.gatelab.yaml'), 'utf8');
    const yaml = example
      .replace('name: sentiment-bilstm', 'name: sentiment-bigru')
      .replace('type: lstm', 'type: gru')
      .replaceAll('- data/sentiment/', `- ${path.join(ROOT, 'examples/data/sentiment')}/`);
    expect(yaml).toMatch(/type: gru\n\s+hidden: 48\n\s+bidirectional: true/);
    fs.writeFileSync(path.join(dir, 'bigru.gatelab.yaml'), yaml);
    const r = cli(dir, ['train', 'bigru.gatelab.yaml', '--quiet', '--save', 'w.safetensors']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    record('sentiment-bigru accuracy', s.accuracy, 'bidirectional GRU, UCI sentences');
    expect(s.accuracy).toBeGreaterThanOrEqual(0.78);
    // both directions under PyTorch's names, no LSTM tensors
    const names = Object.keys(readSafetensors(path.join(dir, 'w.safetensors')).tensors).sort();
    expect(names).toEqual(['embedding.weight', 'fc.bias', 'fc.weight', ...['', '_reverse'].flatMap((sfx) => ['bias_hh', 'bias_ih', 'weight_hh', 'weight_ih'].map((n) => `gru.${n}_l0${sfx}`))].sort());
    // the run's gate snapshot shows the forward and the reverse GRU direction: r, z, n, h
    const runs = path.join(dir, '.gatelab/runs');
    const gates = JSON.parse(fs.readFileSync(path.join(runs, fs.readdirSync(runs)[0], 'gates.json'), 'utf8'));
    expect(gates.layers.map((l: { layer: number; direction: string; cell: string; gates: string[] }) => `${l.layer} ${l.direction} ${l.cell} ${l.gates}`)).toEqual(['0 forward gru r,z,n,h', '0 reverse gru r,z,n,h']);
    const pos = JSON.parse(cli(dir, ['predict', 'bigru.gatelab.yaml', '--init', 'w.safetensors', '--input', 'The food was wonderful and the staff were friendly']).stdout);
    expect(pos.label).toBe('1');
    const neg = JSON.parse(cli(dir, ['predict', 'bigru.gatelab.yaml', '--init', 'w.safetensors', '--input', 'Terrible service and the phone broke after a day']).stdout);
    expect(neg.label).toBe('0');
    // export: the standard GRU operator (both directions in one node) gives predict's probabilities
    const ex = cli(dir, ['export', 'bigru.gatelab.yaml', '--init', 'w.safetensors', '--onnx', 'm.onnx']);
    expect(ex.code, ex.stderr).toBe(0);
    const vocab: string[] = JSON.parse(readSafetensors(path.join(dir, 'w.safetensors')).metadata['gatelab.vocab']);
    const words = 'the food was wonderful and the staff were friendly'.split(' ');
    expect(words.every((w) => vocab.includes(w))).toBe(true);
    const sess = await ort.InferenceSession.create(path.join(dir, 'm.onnx'));
    const probs = (await sess.run({ tokens: new ort.Tensor('int64', BigInt64Array.from(words, (w) => BigInt(vocab.indexOf(w))), [words.length, 1]), lengths: new ort.Tensor('int64', BigInt64Array.of(BigInt(words.length)), [1]) })).probs.data as Float32Array;
    await sess.release();
    expect(Math.abs(probs[0] - pos.probabilities['0'])).toBeLessThan(1e-5);
    expect(Math.abs(probs[1] - pos.probabilities['1'])).toBeLessThan(1e-5);
  });

  it('forecast with dropout and a bidirectional layer: beats both baselines, reproducible with the seed', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-bi-'));
    const yaml = (dropout: number) =>
      `name: f\ntask: forecast\ndata:\n  source: ${path.resolve(ROOT, 'examples/data/airline-passengers.csv')}\n  column: Passengers\n  window: 12\n  season: 12\n  transform: log-difference\n  validation: 0.1667\nmodel:\n  dropout: ${dropout}\n  layers:\n    - { type: lstm, hidden: 16, bidirectional: true }\n    - { type: lstm, hidden: 16 }\ntrain:\n  epochs: 150\n  batchSize: 16\n  optimizer: { type: adam, learningRate: 0.01 }\n  seed: 42\n`;
    fs.writeFileSync(path.join(dir, 'd.gatelab.yaml'), yaml(0.2));
    fs.writeFileSync(path.join(dir, 'n.gatelab.yaml'), yaml(0));
    const a = cli(dir, ['train', 'd.gatelab.yaml', '--quiet', '--no-record']);
    expect(a.code, a.stderr).toBe(0);
    const s = JSON.parse(a.stdout);
    record('forecast with dropout: rmse / seasonal-naive rmse', s.rmse / s.seasonalBaselineRmse, 'airline');
    expect(s.rmse).toBeLessThan(s.seasonalBaselineRmse);
    expect(s.rmse).toBeLessThan(s.baselineRmse);
    const b = JSON.parse(cli(dir, ['train', 'd.gatelab.yaml', '--quiet', '--no-record']).stdout);
    expect(b.trainLoss).toBe(s.trainLoss);
    expect(b.rmse).toBe(s.rmse);
    const n = JSON.parse(cli(dir, ['train', 'n.gatelab.yaml', '--quiet', '--no-record']).stdout);
    expect(n.trainLoss).not.toBe(s.trainLoss);
  });
});
