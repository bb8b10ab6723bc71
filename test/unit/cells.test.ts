// Equation-defined cells (`type: cell`; src/engine/nn/cellspec.ts, eqcell.ts).

import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { checkCell, CellSpec, LSTM_AS_EQUATIONS } from '../../src/engine/nn/cellspec';
import { LmSpec, lmParams } from '../../src/engine/nn/lm';
import type { GateActivation } from '../../src/engine/nn/lstm';
import { buildGradProgram } from '../../src/engine/train/program';
import { fdAll } from '../reference/fd';
import { Rng } from '../../src/engine/util/rng';
import { readSafetensors } from '../../src/engine/util/safetensors';

const GOLDEN = path.resolve(__dirname, '../fixtures/golden');

const SESSION_OPTS: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3 };

export const MGU_EQUATIONS: [string, string][] = [
  ['f', 'sigmoid(W x + U h + b)'],
  ['n', 'tanh(W x + U (f * h) + b)'],
  ['h', '(1 - f) * h + f * n'],
];
export const JANET_EQUATIONS: [string, string][] = [
  ['s', 'W x + U h + b'],
  ['g', 'tanh(W x + U h + b)'],
  ['h', 'sigmoid(s) * h + (1 - sigmoid(s - 1)) * g'],
];

export const LSTM_EQUATIONS: [string, string][] = [...LSTM_AS_EQUATIONS];

function spec(eqs: [string, string][], states: string[], init: Record<string, number> = {}): CellSpec {
  const r = checkCell(eqs, states, init);
  if (!r.spec) throw new Error(r.problems.map((p) => p.message).join('; '));
  return r.spec;
}
const cellGate = (s: CellSpec): GateActivation => ({ kind: 'sigmoid', cell: 'cell', equations: s });

/** grad program feeds: random parameters, tokens, targets, states. */
function feedsOf(lm: LmSpec, B: number, T: number, seed: number) {
  const rng = new Rng(seed);
  const feeds: Record<string, ort.Tensor> = {};
  for (const p of lmParams(lm)) feeds[`p.${p.name}`] = new ort.Tensor('float64', Float64Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-0.5, 0.5)), p.shape);
  const tok = () => BigInt64Array.from({ length: T * B }, () => BigInt(Math.floor(rng.uniform(0, lm.vocab))));
  feeds.x = new ort.Tensor('int64', tok(), [T, B]);
  feeds.y = new ort.Tensor('int64', tok(), [T, B]);
  lm.hidden.forEach((H, k) => {
    feeds[`h.l${k}`] = new ort.Tensor('float64', Float64Array.from({ length: B * H }, () => rng.uniform(-0.5, 0.5)), [B, H]);
  });
  return feeds;
}

describe('equation cells', () => {
  it('the LSTM as equations has the gradients of the built-in LSTM (weights mapped)', async () => {
    const V = 5, H = 3, B = 2, T = 4;
    const s = spec(LSTM_EQUATIONS, ['h', 'c']);
    const lmC: LmSpec = { vocab: V, embedding: 0, hidden: [H], dtype: 'float64', gates: [cellGate(s)] };
    const lmL: LmSpec = { vocab: V, embedding: 0, hidden: [H], dtype: 'float64', gates: [{ kind: 'sigmoid' }] };
    const fC = feedsOf(lmC, B, T, 1);
    fC['c.l0'] = new ort.Tensor('float64', Float64Array.from({ length: B * H }, (_, i) => 0.1 * Math.sin(i + 1)), [B, H]);
    const fL: Record<string, ort.Tensor> = { x: fC.x, y: fC.y, 'h.l0': fC['h.l0'], 'c.l0': fC['c.l0'] };
    const order = ['i', 'f', 'o', 'g'];
    const rows = (name: string, cols: number) => {
      const out = new Float64Array(4 * H * cols);
      order.forEach((gname, j) => out.set(fC[`p.cell.l0.${gname}.${name}`].data as Float64Array, j * H * cols));
      return out;
    };
    fL['p.lstm.weight_ih_l0'] = new ort.Tensor('float64', rows('W', V), [4 * H, V]);
    fL['p.lstm.weight_hh_l0'] = new ort.Tensor('float64', rows('U', H), [4 * H, H]);
    fL['p.lstm.bias_ih_l0'] = new ort.Tensor('float64', rows('b', 1), [4 * H]);
    fL['p.lstm.bias_hh_l0'] = new ort.Tensor('float64', new Float64Array(4 * H), [4 * H]);
    for (const n of ['fc.weight', 'fc.bias']) fL[`p.${n}`] = fC[`p.${n}`];
    const pC = buildGradProgram({ lm: lmC, B, T });
    const pL = buildGradProgram({ lm: lmL, B, T });
    const sC = await ort.InferenceSession.create(pC.graph.encode(), SESSION_OPTS);
    const sL = await ort.InferenceSession.create(pL.graph.encode(), SESSION_OPTS);
    const rC = await sC.run(fC);
    const rL = await sL.run(fL);
    expect((rC.loss.data as Float64Array)[0]).toBeCloseTo((rL.loss.data as Float64Array)[0], 12);
    const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
      expect(a.length, what).toBe(b.length);
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i]), `${what}[${i}] ${a[i]} vs ${b[i]}`).toBeLessThan(1e-12);
    };
    const dL = (n: string) => rL[`d.lstm.${n}`].data as Float64Array;
    order.forEach((gname, j) => {
      close(rC[`d.cell.l0.${gname}.W`].data as Float64Array, dL('weight_ih_l0').subarray(j * H * V, (j + 1) * H * V), `${gname}.W`);
      close(rC[`d.cell.l0.${gname}.U`].data as Float64Array, dL('weight_hh_l0').subarray(j * H * H, (j + 1) * H * H), `${gname}.U`);
      close(rC[`d.cell.l0.${gname}.b`].data as Float64Array, dL('bias_ih_l0').subarray(j * H, (j + 1) * H), `${gname}.b`);
    });
    close(rC['d.h.l0'].data as Float64Array, rL['d.h.l0'].data as Float64Array, 'h0');
    close(rC['d.c.l0'].data as Float64Array, rL['d.c.l0'].data as Float64Array, 'c0');
    close(rC['d.fc.weight'].data as Float64Array, rL['d.fc.weight'].data as Float64Array, 'fc');
    await fdAll(sC, fC, pC.params, 'lstm-as-equations');
  });

  /** A golden's tensors as float64 / time-major int64 feeds. */
  function golden(name: string) {
    const { tensors } = readSafetensors(path.join(GOLDEN, `${name}.safetensors`), 'golden fixture');
    const f64 = (n: string) => tensors[n].data as Float64Array;
    const tokens = (n: string) => {
      const [B, T] = tensors[n].shape;
      const d = tensors[n].data as BigInt64Array;
      return new ort.Tensor('int64', BigInt64Array.from({ length: T * B }, (_, i) => d[(i % B) * T + Math.floor(i / B)]), [T, B]);
    };
    return { tensors, f64, tokens };
  }
  const rel = (a: ArrayLike<number>, b: ArrayLike<number>, what: string, tol = 1e-4) => {
    expect(a.length, what).toBe(b.length);
    let m = 0;
    for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(b[i]));
    for (let i = 0; i < b.length; i++) expect(Math.abs(a[i] - b[i]), `${what}[${i}] ${a[i]} vs PyTorch ${b[i]}`).toBeLessThanOrEqual(tol * Math.max(Math.abs(b[i]), 1e-3 * m));
  };

  for (const [name, layers] of [['lm1_T35', 1], ['lm2_carried', 2]] as const)
    it(`the LSTM as equations matches PyTorch nn.LSTM (${name}, ${layers} layer${layers > 1 ? 's' : ''}; bias = b_ih + b_hh)`, async () => {
      const { tensors, f64, tokens } = golden(name);
      const s = spec(LSTM_EQUATIONS, ['h', 'c']);
      const hidden = Array.from({ length: layers }, (_, k) => tensors[`h0.l${k}`].shape[1]);
      const V = tensors['fc.bias'].shape[0];
      const lm: LmSpec = { vocab: V, embedding: 0, hidden, dtype: 'float64', gates: hidden.map(() => cellGate(s)) };
      const [T, B] = [tensors.x.shape[1], tensors.x.shape[0]];
      const feeds: Record<string, ort.Tensor> = { x: tokens('x'), y: tokens('y') };
      const torchOrder = ['i', 'f', 'g', 'o'];
      const block = (a: Float64Array, j: number, n: number) => a.subarray(j * n, (j + 1) * n);
      hidden.forEach((H, k) => {
        const I = k === 0 ? V : hidden[k - 1];
        torchOrder.forEach((gname, j) => {
          feeds[`p.cell.l${k}.${gname}.W`] = new ort.Tensor('float64', Float64Array.from(block(f64(`lstm.weight_ih_l${k}`), j, H * I)), [H, I]);
          feeds[`p.cell.l${k}.${gname}.U`] = new ort.Tensor('float64', Float64Array.from(block(f64(`lstm.weight_hh_l${k}`), j, H * H)), [H, H]);
          const bi = block(f64(`lstm.bias_ih_l${k}`), j, H);
          const bh = block(f64(`lstm.bias_hh_l${k}`), j, H);
          feeds[`p.cell.l${k}.${gname}.b`] = new ort.Tensor('float64', Float64Array.from(bi, (v, u) => v + bh[u]), [H]);
        });
        feeds[`h.l${k}`] = new ort.Tensor('float64', f64(`h0.l${k}`), [B, H]);
        feeds[`c.l${k}`] = new ort.Tensor('float64', f64(`c0.l${k}`), [B, H]);
      });
      for (const n of ['fc.weight', 'fc.bias']) feeds[`p.${n}`] = new ort.Tensor('float64', f64(n), tensors[n].shape);
      const prog = buildGradProgram({ lm, B, T });
      const sess = await ort.InferenceSession.create(prog.graph.encode(), SESSION_OPTS);
      const r = await sess.run(feeds);
      rel(r.loss.data as Float64Array, f64('loss'), 'loss', 1e-12);
      hidden.forEach((H, k) => {
        const I = k === 0 ? V : hidden[k - 1];
        torchOrder.forEach((gname, j) => {
          rel(r[`d.cell.l${k}.${gname}.W`].data as Float64Array, block(f64(`grad.lstm.weight_ih_l${k}`), j, H * I), `l${k} ${gname}.W`);
          rel(r[`d.cell.l${k}.${gname}.U`].data as Float64Array, block(f64(`grad.lstm.weight_hh_l${k}`), j, H * H), `l${k} ${gname}.U`);
          rel(r[`d.cell.l${k}.${gname}.b`].data as Float64Array, block(f64(`grad.lstm.bias_ih_l${k}`), j, H), `l${k} ${gname}.b`);
        });
        rel(r[`d.h.l${k}`].data as Float64Array, f64(`grad.h0.l${k}`), `h0.l${k}`);
        rel(r[`d.c.l${k}`].data as Float64Array, f64(`grad.c0.l${k}`), `c0.l${k}`);
      });
      rel(r['d.fc.weight'].data as Float64Array, f64('grad.fc.weight'), 'fc.weight');
    });

  for (const [kind, eqs] of [['mgu', MGU_EQUATIONS], ['janet', JANET_EQUATIONS]] as const)
    it(`${kind.toUpperCase()} as equations has the gradients of the same equations written in PyTorch, and of finite differences`, async () => {
      const { tensors, f64, tokens } = golden(`cell_${kind}`);
      const s = spec(eqs, ['h']);
      const H = tensors['h0.l0'].shape[1];
      const V = tensors['fc.bias'].shape[0];
      const lm: LmSpec = { vocab: V, embedding: 0, hidden: [H], dtype: 'float64', gates: [cellGate(s)] };
      const [T, B] = [tensors.x.shape[1], tensors.x.shape[0]];
      const prog = buildGradProgram({ lm, B, T });
      const feeds: Record<string, ort.Tensor> = { x: tokens('x'), y: tokens('y'), 'h.l0': new ort.Tensor('float64', Float64Array.from(f64('h0.l0')), [B, H]) };
      for (const p of prog.params) feeds[`p.${p.name}`] = new ort.Tensor('float64', Float64Array.from(f64(p.name)), p.shape);
      const sess = await ort.InferenceSession.create(prog.graph.encode(), SESSION_OPTS);
      const r = await sess.run(feeds);
      rel(r.loss.data as Float64Array, f64('loss'), 'loss', 1e-12);
      for (const p of prog.params) rel(r[`d.${p.name}`].data as Float64Array, f64(`grad.${p.name}`), p.name);
      rel(r['d.h.l0'].data as Float64Array, f64('grad.h0.l0'), 'h0');
      await fdAll(sess, feeds, prog.params, kind, [...prog.params.map((p): [string, string] => [`p.${p.name}`, `d.${p.name}`]), ['h.l0', 'd.h.l0']]);
    });
});

// ---- model-file errors at the token ------------------------------------------------------------------
import { diagnoseModelText, parseModelFile } from '../../src/engine/config/load';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';

/** A cell model file with the given equation lines (each `name: text`) and state. */
function cellFile(lines: string[], state = '[h]', extra = ''): string {
  return [
    'name: my-cell',
    'data:',
    '  source: corpus.txt',
    'model:',
    '  layers:',
    '    - type: cell',
    '      hidden: 8',
    '      equations:',
    ...lines.map((l) => `        ${l}`),
    `      state: ${state}`,
    ...(extra ? [extra] : []),
    'train:',
    '  steps: 2',
  ].join('\n');
}
const EQ_LINE = 9; // the first equation's line in cellFile
const EQ_COL = 9; // the first equation's column

describe('equation cells: every error at its place', () => {
  const one = (text: string) => {
    const ps = diagnoseModelText(text, '/m/cell.gatelab.yaml');
    expect(ps.length, ps.map((p) => p.error.format()).join('\n')).toBe(1);
    return ps[0];
  };
  const at = (p: ReturnType<typeof one>, line: number, column: number, len?: number) => {
    expect([p.range.line, p.range.column], p.error.format()).toEqual([line, column]);
    if (len !== undefined) expect(p.range.endColumn - p.range.column).toBe(len);
  };

  it('an unknown name: at the name, with the nearest name', () => {
    const eq = 'n: tanh(W x + U (f * hh) + b)';
    const p = one(cellFile(['f: sigmoid(W x + U h + b)', eq, 'h: (1 - f) * h + f * n']));
    at(p, EQ_LINE + 1, EQ_COL + eq.indexOf('hh'), 2);
    expect(p.error.message).toBe('unknown name "hh"');
    expect(p.error.hint).toBe('did you mean `h`?');
    expect(p.error.where.key).toBe('model.layers.0.equations.n');
  });
  it('quoted equations: the column counts the quote', () => {
    const eq = 'n: "tanh(W x + U (f * hh) + b)"';
    at(one(cellFile(['f: sigmoid(W x + U h + b)', eq, 'h: (1 - f) * h + f * n'])), EQ_LINE + 1, EQ_COL + eq.indexOf('hh'), 2);
  });
  it('a state never assigned: at the state, with the equation it may mean', () => {
    const p = one(cellFile(['f: sigmoid(W x + U h + b)', 'hh: (1 - f) * hh + f * tanh(W x + b)'], '[hh, h]'));
    expect(p.error.message).toBe('the state h is never assigned');
    at(p, EQ_LINE + 2, '      state: [hh, '.length + 1);
  });
  it('a use before the definition: at the use, saying to move the equation or carry it', () => {
    const eq = 'f: sigmoid(W x + U h + b + n)';
    const p = one(cellFile([eq, 'n: tanh(W x + U h + b)', 'h: (1 - f) * h + f * n']));
    expect(p.error.message).toBe('n is used before it is defined');
    at(p, EQ_LINE, EQ_COL + eq.indexOf('n)'), 1);
  });
  it('an unused equation: at its name', () => {
    const p = one(cellFile(['f: sigmoid(W x + U h + b)', 'q: tanh(W x + b)', 'h: (1 - f) * h + f * tanh(W x + U h + b)']));
    expect(p.error.message).toBe('the equation q is never used');
    at(p, EQ_LINE + 1, EQ_COL, 1);
  });
  it('syntax errors: at the token', () => {
    const cases: [string, string, string][] = [
      ['h: tanh(W x + U h + b', '(', 'syntax error: expected ")" or "," before the end of the equation'],
      ['h: tanh(W x + U h + b))', ')', 'syntax error: unexpected ")"'],
      ['h: tanh(W x + U h / 2 + b)', '/', 'syntax error: unexpected character "/"'],
      ['h: tahn(W x + U h + b)', 'tahn', 'syntax error: unknown function "tahn"'],
      ['h: tanh(W x + U + b)', 'U', 'syntax error: the matrix U needs an operand'],
      ['h: tanh(W x + U h b)', 'b', 'syntax error: missing operator before "b"'],
    ];
    for (const [eq, tok, msg] of cases) {
      const p = one(cellFile([eq]));
      expect(p.error.message, eq).toBe(msg);
      at(p, EQ_LINE, EQ_COL + (tok === ')' ? eq.lastIndexOf(tok) : eq.indexOf(tok, eq.indexOf(':'))), tok.length);
    }
    expect(one(cellFile(['h: tahn(W x + U h + b)'])).error.hint).toContain('did you mean `tanh`?');
  });
  it('widths, constants and init keys', () => {
    expect(one(cellFile(['h: tanh(x + U h + b)'])).error.message).toBe('x has the width of the layer input, the other operand the hidden width');
    expect(one(cellFile(['a: sigmoid(b)', 'h: a * tanh(W x + U h)'])).error.message).toBe('a depends on neither x nor a state');
    const p = one(cellFile(['h: tanh(W x + U h + b)'], '[h]', '      init: { h.c: 1 }'));
    expect(p.error.message).toBe('init: the cell has no parameter h.c');
    at(p, EQ_LINE + 2, '      init: { '.length + 1);
  });
  it('cell keys on other layers, and LSTM options on a cell, are errors at the key', () => {
    const lstm = cellFile(['h: tanh(W x + U h + b)']).replace('type: cell', 'type: lstm');
    expect(diagnoseModelText(lstm, '/m/x.yaml').map((p) => p.error.message)).toEqual(['equations applies to type: cell layers', 'state applies to type: cell layers']);
  });
  it('a valid file resolves into the equations in file order', () => {
    const [cfg] = parseModelFile(cellFile(MGU_EQUATIONS.map(([n, e]) => `${n}: ${e}`)), '/m/cell.gatelab.yaml');
    expect(cfg.model.layers[0].type).toBe('cell');
    expect(Object.keys(cfg.model.layers[0].equations!)).toEqual(['f', 'n', 'h']);
    expect(cfg.model.layers[0].state).toEqual(['h']);
  });
  it('the CLI exits 2 with file:line:column of the token', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-cell-'));
    const file = path.join(dir, 'cell.gatelab.yaml');
    const eq = 'n: tanh(W x + U (f * hh) + b)';
    fs.writeFileSync(file, cellFile(['f: sigmoid(W x + U h + b)', eq, 'h: (1 - f) * h + f * n']));
    fs.writeFileSync(path.join(dir, 'corpus.txt'), 'abc abc abc\n'.repeat(20));
    const r = spawnSync(process.execPath, [path.resolve(__dirname, '../../dist/cli.js'), 'train', file, '--no-record'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${file}:${EQ_LINE + 1}:${EQ_COL + eq.indexOf('hh')}: model.layers.0.equations.n: unknown name "hh" (did you mean \`h\`?)`);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

// ---- checkpoints, sampling, export, gate views --------------------------------------------------------
import { initParams } from '../../src/engine/nn/init';
import { lmForward } from '../../src/engine/nn/lm';
import { Graph } from '../../src/engine/onnx/builder';
import { loadCheckpoint, saveCheckpoint } from '../../src/engine/train/checkpoint';
import { cellOf } from '../../src/engine/train/lmsetup';
import { GateProbe } from '../../src/engine/train/probe';
import { exportedAgainstTrainingForward, writeSeqCase } from '../reference/exportcheck';

const CLI = path.resolve(__dirname, '../../dist/cli.js');
const flowLayer = (hidden: number, eqs: [string, string][], state: string, extra = '') =>
  `{ type: cell, hidden: ${hidden}${extra}, equations: { ${eqs.map(([n, e]) => `${n}: "${e}"`).join(', ')} }, state: ${state} }`;

describe('equation cells: checkpoints, sampling, export and gate views', () => {
  it('trains from the CLI into cell.l{k}.<equation>.<name> tensors; samples; exports an ONNX Scan model with the training forward\'s outputs', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-cell-lm-'));
    fs.writeFileSync(path.join(dir, 'c.txt'), 'the time machine by h g wells '.repeat(40));
    const layers = [flowLayer(6, LSTM_EQUATIONS, '[h, c]'), flowLayer(5, MGU_EQUATIONS, '[h]', ', init: { f.b: 1 }')];
    fs.writeFileSync(path.join(dir, 'm.gatelab.yaml'), `name: m\ndata: { source: c.txt, sequenceLength: 8, validation: 0 }\nmodel:\n  layers:\n${layers.map((l) => `    - ${l}`).join('\n')}\ntrain: { steps: 3, batchSize: 4 }\n`);
    const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8' });
    let r = run('train', 'm.gatelab.yaml', '--save', 'w.safetensors', '--no-record', '--quiet');
    expect(r.status, r.stderr).toBe(0);
    const ck = loadCheckpoint(path.join(dir, 'w.safetensors'));
    const names = [...ck.params.keys()];
    expect(names).toEqual(expect.arrayContaining(['cell.l0.i.W', 'cell.l0.i.U', 'cell.l0.i.b', 'cell.l0.o.b', 'cell.l1.f.W', 'cell.l1.n.U', 'fc.weight']));
    expect(names.filter((n) => n.startsWith('lstm.'))).toEqual([]);
    expect(ck.params.get('cell.l1.f.U')!.shape).toEqual([5, 5]);
    expect(ck.params.get('cell.l1.f.W')!.shape).toEqual([5, 6]);
    r = run('sample', 'm.gatelab.yaml', '--init', 'w.safetensors', '--prefix', 'the ', '--length', '20');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.startsWith('the ')).toBe(true);
    r = run('export', 'm.gatelab.yaml', '--init', 'w.safetensors', '--onnx', 'm.onnx');
    expect(r.status, r.stderr).toBe(0);
    // the exported model against the training graph's forward on the same checkpoint
    const cfg = parseModelFile(fs.readFileSync(path.join(dir, 'm.gatelab.yaml'), 'utf8'), path.join(dir, 'm.gatelab.yaml'))[0];
    const V = ck.params.get('fc.bias')!.shape[0];
    const lm: LmSpec = { vocab: V, embedding: 0, hidden: [6, 5], dtype: 'float32', gates: cfg.model.layers.map(cellOf) };
    const [T, B] = [9, 3];
    const tokens = BigInt64Array.from({ length: T * B }, (_, i) => BigInt((i * 7) % V));
    const g = new Graph('own');
    const params = lmParams(lm);
    const P = Object.fromEntries(params.map((p) => [p.name, g.input(`p.${p.name}`, 'float32', p.shape)]));
    const zeros = (H: number) => g.const(new Array(B * H).fill(0), 'float32', [B, H]);
    const fwd = lmForward(g, lm, P, g.input('x', 'int64', [T, B]), [{ h0: zeros(6), c0: zeros(6) }, { h0: zeros(5) }]);
    g.output(fwd.logits, 'logits');
    g.output(fwd.layers[0].hT, 'h.l0');
    g.output((fwd.layers[0] as { cT: ReturnType<Graph['input']> }).cT, 'c.l0');
    g.output(fwd.layers[1].hT, 'h.l1');
    const own = await (await ort.InferenceSession.create(g.encode(), SESSION_OPTS)).run({ x: new ort.Tensor('int64', tokens, [T, B]), ...Object.fromEntries(params.map((p) => [`p.${p.name}`, new ort.Tensor('float32', Float32Array.from(ck.params.get(p.name)!.data), p.shape)])) });
    const ex = await ort.InferenceSession.create(path.join(dir, 'm.onnx'));
    expect(ex.outputNames).toEqual(['logits', 'h.l0', 'c.l0', 'h.l1']);
    const out = await ex.run({ tokens: new ort.Tensor('int64', tokens, [T, B]) });
    for (const n of ['logits', 'h.l0', 'c.l0', 'h.l1']) {
      const a = out[n].data as Float32Array;
      const b = own[n].data as Float32Array;
      expect(a.length).toBe(b.length);
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i]), `${n}[${i}]`).toBeLessThan(2e-5 * Math.max(1, Math.abs(b[i])));
    }
    // a T of another length runs too (T is symbolic in the exported model)
    expect((await ex.run({ tokens: new ort.Tensor('int64', tokens.slice(0, 2 * B), [2, B]) })).logits.dims).toEqual([2, B, V]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const c of [
    { label: 'classification: bidirectional MGU over the LSTM as equations, last pooling', layers: [flowLayer(5, LSTM_EQUATIONS, '[h, c]'), flowLayer(4, MGU_EQUATIONS, '[h]', ', bidirectional: true')], pooling: 'last', embedding: 4 },
    { label: 'classification: bidirectional JANET (one-hot), mean pooling', layers: [flowLayer(5, JANET_EQUATIONS, '[h]', ', bidirectional: true')], pooling: 'mean', embedding: 0 },
    { label: 'forecast: bidirectional LSTM-as-equations', layers: [flowLayer(5, LSTM_EQUATIONS, '[h, c]', ', bidirectional: true')], forecast: true },
  ])
    it(`export, ${c.label}: the Scan model gives the predict program's outputs`, async () => {
      const { classifyParams } = await import('../../src/engine/train/classify');
      const { forecastParams } = await import('../../src/engine/train/forecast');
      const { classifySpecOf } = await import('../../src/engine/tasks/classification');
      const { forecastSpecOf } = await import('../../src/engine/tasks/forecast');
      const { dir, file } = writeSeqCase(c as Parameters<typeof writeSeqCase>[0], 'gatelab-cell-seq-');
      const cfg = parseModelFile(fs.readFileSync(file, 'utf8'), file)[0];
      const [V, C] = [11, 3];
      const spec = c.forecast ? forecastSpecOf(cfg) : classifySpecOf(cfg, V, C);
      const params = c.forecast ? forecastParams(spec as never) : classifyParams(spec as never);
      const w = initParams(params, cfg.model.layers, 9, 'float32');
      for (const [k, v] of w) if (k.startsWith('cell.')) for (let i = 0; i < v.data.length; i++) v.data[i] *= 3;
      saveCheckpoint(path.join(dir, 'w.safetensors'), { params: w, metadata: c.forecast ? {} : { 'gatelab.vocab': JSON.stringify(Array.from({ length: V }, (_, i) => `w${i}`)), 'gatelab.classes': '["a","b","c"]' } });
      const r = spawnSync(process.execPath, [CLI, 'export', 'm.gatelab.yaml', '--init', 'w.safetensors', '--onnx', 'm.onnx'], { cwd: dir, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const worst = await exportedAgainstTrainingForward(path.join(dir, 'm.onnx'), params, w, spec, { forecast: !!c.forecast, V, C });
      expect(worst, `worst difference ${worst}`).toBeLessThan(2e-5);
      fs.rmSync(dir, { recursive: true, force: true });
    });

  it('gate views: every equation is a map named as in the file, its sigmoid equations have saturation', async () => {
    const s = spec(MGU_EQUATIONS, ['h']);
    const lm: LmSpec = { vocab: 5, embedding: 0, hidden: [4], dtype: 'float32', gates: [cellGate(s)] };
    const w = initParams(lmParams(lm), [{ hidden: 4, forgetBias: 0 }], 3, 'float32');
    const probe = new GateProbe(lm, ['a', 'b', 'c', 'd', 'e']);
    const feeds = Object.fromEntries(lmParams(lm).map((p) => [`p.${p.name}`, new ort.Tensor('float32', w.get(p.name)!.data as Float32Array, p.shape)]));
    const m = await probe.run(feeds, [0, 1, 2, 3, 4, 1], 7);
    const L = m.layers[0];
    expect(L.cell).toBe('cell');
    expect(L.gates).toEqual(['f', 'n', 'h']);
    expect(L.sigmoid).toEqual(['f']);
    expect(Object.keys(L.saturation)).toEqual(['f']);
    expect(L.ranges).toEqual({ f: [0, 1], n: [-1, 1], h: [-3, 3] });
    for (const g of ['f', 'n', 'h']) expect(L.values[g]!.length).toBe(6 * 4);
    expect(L.values.f!.every((v) => v > 0 && v < 1)).toBe(true);
    // h from the map equals (1 − f)·h_prev + f·n, step by step
    for (let t = 0; t < 6; t++)
      for (let u = 0; u < 4; u++) {
        const f = L.values.f![t * 4 + u];
        const hPrev = t ? L.values.h![(t - 1) * 4 + u] : 0;
        expect(L.values.h![t * 4 + u]).toBeCloseTo((1 - f) * hPrev + f * L.values.n![t * 4 + u], 3);
      }
    await probe.release();
  });
});

describe('hover docs in YAML model files', () => {
  it('a key shows its schema documentation; a name inside an equation what it means', async () => {
    const { hoverAt } = await import('../../src/engine/config/load');
    const text = cellFile(['f: sigmoid(W x + U h + b)', 'n: tanh(W x + U (f * h) + b)', 'h: (1 - f) * h + f * n']);
    const lines = text.split('\n');
    const hover = (line: number, needle: string, nth = 0) => {
      let col = -1;
      for (let i = 0; i <= nth; i++) col = lines[line - 1].indexOf(needle, col + 1);
      return hoverAt(text, line, col + 1);
    };
    expect(hover(8, 'equations')!.markdown).toMatch(/^\*\*model\.layers\.0\.equations\*\*\n\n`type: cell` layers: the \*\*gate equations\*\*/);
    expect(hover(7, 'hidden')!.markdown).toContain('Number of hidden units H.');
    const h1 = hover(EQ_LINE + 2, 'h', 1)!; // h on the right of "h: (1 - f) * h": the previous value
    expect(h1.markdown).toMatch(/^`h`: the state h from the previous step/);
    expect([h1.range.line, h1.range.column]).toEqual([EQ_LINE + 2, EQ_COL + lines[EQ_LINE + 1].slice(EQ_COL - 1).indexOf('h', 1)]);
    expect(hover(EQ_LINE + 1, 'f *')!.markdown).toBe('`f`: the equation of this step — `f = sigmoid(W x + U h + b)`');
    expect(hover(EQ_LINE + 1, 'U')!.markdown).toBe('`U`: a learned matrix of n, `cell.l0.n.U` [hidden, hidden], applied to what follows it');
    expect(hover(EQ_LINE, 'W')!.markdown).toContain('`cell.l0.f.W` [hidden, input width]');
    expect(hover(EQ_LINE, 'x')!.markdown).toMatch(/^`x`: the layer input at this step/);
    expect(hover(EQ_LINE, 'sigmoid')!.markdown).toMatch(/^`sigmoid`: σ\(z\)/);
    expect(hover(EQ_LINE, 'b)')!.markdown).toBe('`b`: a learned bias [hidden] of f, `cell.l0.f.b`');
  });
});

describe('equation cells in every task', () => {
  it('every registered task trains a cell layer (MGU) from the CLI, with a finite loss that falls', async () => {
    const { CASES } = await import('./taskcases');
    const { TASKS } = await import('../../src/engine/tasks/registry');
    expect(Object.keys(CASES).sort()).toEqual(Object.keys(TASKS).sort());
    for (const [task, c] of Object.entries(CASES)) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `gatelab-cell-${task}-`));
      c.data(dir);
      const model = c.model(`{ ${c.trainKeys ?? ''}steps: 30, batchSize: 8, optimizer: { type: adam, learningRate: 0.01 } }`).replace(/\{ hidden: (\d+) \}/, (_, h) => flowLayer(Number(h), MGU_EQUATIONS, '[h]'));
      expect(model, task).toContain('type: cell');
      fs.writeFileSync(path.join(dir, 'm.gatelab.yaml'), model);
      const r = spawnSync(process.execPath, [CLI, 'train', 'm.gatelab.yaml', '--no-record', '--metrics', 'm.jsonl'], { cwd: dir, encoding: 'utf8' });
      expect(r.status, `${task}: ${r.stderr}`).toBe(0);
      const steps = fs.readFileSync(path.join(dir, 'm.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => typeof m.step === 'number' && typeof m.loss === 'number');
      expect(steps.length, task).toBe(30);
      expect(steps.every((m) => Number.isFinite(m.loss)), task).toBe(true);
      const mean = (a: { loss: number }[]) => a.reduce((s, m) => s + m.loss, 0) / a.length;
      expect(mean(steps.slice(-5)), task).toBeLessThan(mean(steps.slice(0, 5)));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('equation cells: the programs the engine builds', () => {
  it('LSTM as equations: one input lookup for all four W x; one GEMM per step for the four U h (with the W x + b terms as its C); a backward scan body of gradient work only; dU one GEMM after it', async () => {
    const { buildTrainProgram } = await import('../../src/engine/train/program');
    const lm: LmSpec = { vocab: 28, embedding: 0, hidden: [16], dtype: 'float32', gates: [cellGate(spec(LSTM_EQUATIONS, ['h', 'c']))] };
    const prog = buildTrainProgram({ lm, B: 4, T: 7, optimizer: { type: 'sgd', learningRate: 1, momentum: 0, weightDecay: 0, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }, clipNorm: 1 });
    type GD = ReturnType<Graph['toData']>;
    const bodies: GD[] = [];
    const collect = (d: GD) => {
      for (const n of d.nodes) for (const [, a] of n.attributes) if (a.kind === 'graph') (bodies.push(a.value as GD), collect(a.value as GD));
    };
    collect(prog.graph.toData());
    const step = bodies.find((b) => b.name.startsWith('train_step'))!;
    const fwd = bodies.find((b) => b.name.includes('cell_body'))!;
    const bwd = bodies.find((b) => b.name.includes('cell_grad'))!;
    const ops = (d: GD) => d.nodes.map((n) => n.opType);
    const count = (d: GD, op: string) => ops(d).filter((o) => o === op).length;
    // the step body: the one-hot input read once for i, f, g, o (a row lookup of [W_i W_f W_g W_o]ᵀ)
    expect(step.nodes.filter((n) => n.opType === 'Gather' && n.name.startsWith('cell0/')).length).toBe(1);
    // forward: one GEMM per step, its C the hoisted W x + b; nothing of x inside
    expect(count(fwd, 'Gemm')).toBe(1);
    expect(count(fwd, 'MatMul') + count(fwd, 'Gather') + count(fwd, 'Concat')).toBe(0);
    expect(count(fwd, 'Add')).toBe(1); // c = f·c + i·g; the pre-activation adds are in the GEMM
    expect(ops(fwd).length).toBeLessThanOrEqual(13);
    // backward: the gradient to h (dZ·Ucat) is the one GEMM; nothing of the forward recomputed
    expect(count(bwd, 'Gemm')).toBe(1);
    expect(count(bwd, 'Sigmoid') + count(bwd, 'Tanh') + count(bwd, 'MatMul')).toBe(0);
    expect(ops(bwd).length).toBeLessThanOrEqual(16);
    // dU for all four gates: one GEMM with transA over T·B rows, outside the scan
    const dU = step.nodes.filter((n) => n.opType === 'Gemm' && n.name.includes('grad/cell') && n.attributes.some(([k, a]) => k === 'transA' && a.kind === 'int' && a.value === 1));
    expect(dU.length).toBe(1);
  });
});

describe('equation cells: gradients through time', () => {
  it("the LSTM as equations has the built-in LSTM's connectivity and gradient flow (h and c), weights mapped", async () => {
    const { connectivityOf } = await import('../../src/engine/train/connectivity');
    const V = 6;
    const H = 5;
    const s = spec(LSTM_EQUATIONS, ['h', 'c']);
    const lmC: LmSpec = { vocab: V, embedding: 0, hidden: [H], dtype: 'float64', gates: [cellGate(s)] };
    const lmL: LmSpec = { vocab: V, embedding: 0, hidden: [H], dtype: 'float64', gates: [{ kind: 'sigmoid' }] };
    const wC = initParams(lmParams(lmC), [{ hidden: H, forgetBias: 0 }], 4, 'float64');
    for (const v of wC.values()) for (let i = 0; i < v.data.length; i++) v.data[i] *= 3;
    const order = ['i', 'f', 'o', 'g']; // the built-in's internal gate order
    const rows = (name: string, cols: number) => {
      const out = new Float64Array(4 * H * cols);
      order.forEach((g, j) => out.set(wC.get(`cell.l0.${g}.${name}`)!.data as Float64Array, j * H * cols));
      return out;
    };
    const wL = new Map<string, { shape: number[]; data: Float64Array }>([
      ['lstm.weight_ih_l0', { shape: [4 * H, V], data: rows('W', V) }],
      ['lstm.weight_hh_l0', { shape: [4 * H, H], data: rows('U', H) }],
      ['lstm.bias_ih_l0', { shape: [4 * H], data: rows('b', 1) }],
      ['lstm.bias_hh_l0', { shape: [4 * H], data: new Float64Array(4 * H) }],
      ['fc.weight', wC.get('fc.weight') as { shape: number[]; data: Float64Array }],
      ['fc.bias', wC.get('fc.bias') as { shape: number[]; data: Float64Array }],
    ]);
    const ids = [0, 3, 1, 5, 2, 4, 0, 1];
    const a = await connectivityOf(lmC, wC, ids);
    const b = await connectivityOf(lmL, wL, ids);
    a.connectivity.forEach((row, t) => row.forEach((v, k) => expect(v).toBeCloseTo(b.connectivity[t][k], 10)));
    expect(a.gradientFlow[0].c).toBeDefined();
    a.gradientFlow[0].h.forEach((v, k) => expect(v).toBeCloseTo(b.gradientFlow[0].h[k], 10));
    a.gradientFlow[0].c!.forEach((v, k) => expect(v).toBeCloseTo(b.gradientFlow[0].c![k], 10));
  });
});

describe('equation cells: every function, operator and kind of term against finite differences', () => {
  // hardsigmoid with slope and offset, softsign, relu, unary minus, constants; per-unit vectors
  // (p * c, p_out); named biases; a matrix of an equation's product; an x-only equation hoisted
  // whole and named later; x-terms with a minus (a leaf that is not one GEMM slot); a bias beside a
  // recurrent term only (read inside the scan); two states
  const EQS: [string, string][] = [
    ['a', 'tanh(W x + b)'],
    ['f', 'hardsigmoid(W x + U h + p * c + b, 0.25, 0.45)'],
    ['i', 'sigmoid(U h - V x + b_i + 0.5)'],
    ['g', 'softsign(W x + U (f * h) + a)'],
    ['c', 'f * c + i * g - 0.1 * relu(U c + b)'],
    ['h', '-(p_out * tanh(c)) + a * h + 0.2 * tanh(U c)'], // U c: the new c, after its equation
  ];
  for (const [label, layers, input] of [
    ['one-hot input, one layer', 1, 'ids'],
    ['embedding input, two layers (a cell over a cell)', 2, 'embedding'],
  ] as const)
    it(label, async () => {
      const s = spec(EQS, ['h', 'c']);
      const H = 3;
      const lm: LmSpec = { vocab: 5, embedding: input === 'embedding' ? 4 : 0, hidden: Array(layers).fill(H), dtype: 'float64', gates: Array(layers).fill(cellGate(s)) };
      const [B, T] = [2, 5];
      const prog = buildGradProgram({ lm, B, T });
      const feeds = feedsOf(lm, B, T, 11);
      for (let k = 0; k < layers; k++) feeds[`c.l${k}`] = new ort.Tensor('float64', Float64Array.from({ length: B * H }, (_, i) => 0.3 * Math.cos(i + k)), [B, H]);
      // weights large enough that the hard sigmoid is saturated somewhere and relu is off somewhere
      for (const p of prog.params) if (p.name.startsWith('cell.')) (feeds[`p.${p.name}`].data as Float64Array).forEach((v, i, a) => (a[i] = v * 3));
      const sess = await ort.InferenceSession.create(prog.graph.encode(), SESSION_OPTS);
      const targets: [string, string][] = [...prog.params.map((p): [string, string] => [`p.${p.name}`, `d.${p.name}`])];
      for (let k = 0; k < layers; k++) targets.push([`h.l${k}`, `d.h.l${k}`], [`c.l${k}`, `d.c.l${k}`]);
      await fdAll(sess, feeds, prog.params, label, targets);
    });
});
