// The notebook side panel: its data functions (hyper-parameter diffs with schema defaults, the run
// a cell is compared with, grouping, sparkline scaling, virtual-list windowing, the duplicate
// editor's edits to a model file, inference results kept with a run), and the view provider against
// the `vscode` stand-in with real trainer and inference processes.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type * as vscode from 'vscode';
import { Uri, ViewColumn, window } from 'vscode';
import { NotebookViewProvider } from '../../src/host/notebook';
import {
  appendInference,
  buildCell,
  diffBase,
  diffHyper,
  duplicateModel,
  editableKeys,
  flatten,
  forecastEntry,
  groupCells,
  INFERENCE_FILE,
  modelDocument,
  readInference,
  sparkValues,
} from '../../src/host/notebookdata';
import { RunInfo, RunManager } from '../../src/host/runs';
import type { HostToNotebook, InferenceEntry, NotebookCell, NotebookToHost } from '../../src/shared/notebook';
import { sparkPath, sparkPoints, yRange } from '../../webview/notebook/sparkline';
import { listWindow, offsets, rowAt, scrollToRow } from '../../webview/notebook/virtual';
import { changeSettings, recorded, stubFolders } from './vscode-stub';

const ROOT = path.resolve(__dirname, '../..');
const CORPUS = path.join(ROOT, 'examples/data/timemachine.txt');

const doc = (text: string, model = 'm') => modelDocument(text, model)!;

describe('hyper-parameter diff', () => {
  const base = `name: m
data: { source: t.txt, sequenceLength: 35 }
model:
  layers:
    - { type: lstm, hidden: 256 }
train: { epochs: 50, optimizer: { type: sgd, learningRate: 1 } }
`;
  it('lists changed leaves by dotted path, list items by index, in the order of the new document', () => {
    const next = base.replace('hidden: 256', 'hidden: 128').replace('learningRate: 1', 'learningRate: 0.5').replace('epochs: 50', 'epochs: 50, batchSize: 64');
    expect(diffHyper(doc(base), doc(next))).toEqual([
      { key: 'model.layers.0.hidden', from: '256', to: '128' },
      { key: 'train.batchSize', from: '32', to: '64' },
      { key: 'train.optimizer.learningRate', from: '1', to: '0.5' },
    ]);
  });

  it('writing a default is no change; removing a key shows its default; a new layer is a change', () => {
    expect(diffHyper(doc(base), doc(base.replace('sequenceLength: 35', 'sequenceLength: 35, validation: 0.1')))).toEqual([]);
    expect(diffHyper(doc(base), doc(base.replace('sequenceLength: 35', 'sequenceLength: 70')))).toEqual([{ key: 'data.sequenceLength', from: '35', to: '70' }]);
    expect(diffHyper(doc(base.replace('sequenceLength: 35', 'sequenceLength: 70')), doc(base.replace(', sequenceLength: 35', '')))).toEqual([{ key: 'data.sequenceLength', from: '70', to: '35' }]);
    expect(diffHyper(doc(base), doc(base.replace('epochs: 50, ', '')))).toEqual([{ key: 'train.epochs', from: '50', to: '10' }]);
    // defaults that depend on another key are the loader's: the learning rate of adam
    const adam = base.replace(', learningRate: 1', '').replace('type: sgd', 'type: adam');
    expect(diffHyper(doc(base), doc(adam))).toEqual([
      { key: 'train.optimizer.type', from: 'sgd', to: 'adam' },
      { key: 'train.optimizer.learningRate', from: '1', to: '0.001' },
    ]);
    const two = base.replace('    - { type: lstm, hidden: 256 }', '    - { type: lstm, hidden: 256 }\n    - { hidden: 64 }');
    expect(diffHyper(doc(base), doc(two))).toEqual([{ key: 'model.layers.1.hidden', from: undefined, to: '64' }]);
    // lists of scalars compare whole; the name never counts
    expect(diffHyper(doc(base), doc(base.replace('source: t.txt', 'source: [a.txt, b.txt]').replace('name: m', 'name: m')))).toEqual([{ key: 'data.source', from: 't.txt', to: '[ a.txt, b.txt ]' }]);
    expect(flatten({ name: 'x', model: { layers: [{ hidden: 2 }] } })).toEqual(new Map<string, unknown>([['name', 'x'], ['model.layers.0.hidden', 2]]));
  });

  it('a run is compared with the previous run of its model, else the previous run of its file', () => {
    const r = (id: string, model: string, started: number, modelFile = '/w/a.gatelab.yaml') => ({ id, model, modelFile, started });
    const all = [r('1', 'a', 1), r('2', 'b', 2), r('3', 'a', 3), r('4', 'c', 4), r('5', 'x', 0, '/w/other.gatelab.yaml')];
    expect(diffBase(all[2], all)).toEqual({ run: all[0], sameModel: true });
    expect(diffBase(all[3], all)).toEqual({ run: all[2], sameModel: false });
    expect(diffBase(all[0], all)).toBeUndefined();
    expect(diffBase(all[4], all)).toBeUndefined();
  });
});

describe('cells', () => {
  const run = (id: string, modelFile: string, started: number, extra: Partial<RunInfo> = {}): RunInfo => ({ id, dir: `/nowhere/${id}`, modelFile, model: 'm', status: 'done', started, ...extra });
  const cellOf = (r: RunInfo) => buildCell(r, { loss: [], inference: [], fileLabel: path.basename(r.modelFile) });

  it('group by model file, oldest run first in a group, the group with the newest run last', () => {
    const cells = [run('a1', '/w/a', 10), run('b1', '/w/b', 5), run('a2', '/w/a', 1), run('b2', '/w/b', 20)].map(cellOf);
    const groups = groupCells(cells);
    expect(groups.map((g) => [g.fileLabel, g.cells.map((c) => c.id)])).toEqual([
      ['a', ['a2', 'a1']],
      ['b', ['b1', 'b2']],
    ]);
  });

  it('a cell: final metrics by task, live progress, duration, latest sample, the diff label', () => {
    const done = cellOf(run('r', '/w/a', 1000, {
      finished: 61_000,
      task: 'language-model',
      summary: { model: 'm', device: 'cpu', steps: 10, epochs: 1, trainLoss: 1.5, validLoss: 1.7, perplexity: 4.48, validPerplexity: 5.47, tokensPerSecond: 52_000, elapsedSeconds: 60, sample: 'the time traveller' },
    }));
    expect(done.metrics.map((m) => `${m.label} ${m.value}`)).toEqual(['ppl 4.48', 'val ppl 5.47', 'loss 1.500', 'val loss 1.700', 'tok/s 52k']);
    expect([done.durationMs, done.device, done.latest]).toEqual([60_000, 'cpu', { kind: 'sample', text: 'the time traveller' }]);
    const forecast = cellOf(run('f', '/w/a', 0, { task: 'forecast', summary: { model: 'm', device: 'cpu', steps: 1, epochs: 1, trainLoss: 0.01, validLoss: 0.02, rmse: 18.04, mae: 14.2, baselineRmse: 51.8, tokensPerSecond: 900, elapsedSeconds: 2 } }));
    expect(forecast.metrics.slice(0, 3).map((m) => `${m.label} ${m.value}`)).toEqual(['rmse 18.0', 'mae 14.2', 'naive 51.8']);
    const live = cellOf(run('l', '/w/a', Date.now() - 5000, {
      status: 'running',
      startedMsg: { type: 'started', model: 'm', task: 'language-model', device: 'cuda', parameters: 1, totalSteps: 100, stepsPerEpoch: 10, epochs: 10, tokensPerStep: 1, stepsPerRun: 1, trainTokens: 1, validTokens: 0 },
      last: { type: 'progress', step: 40, epoch: 4, losses: [2.5, 2.25], gradNorms: [1, 1], learningRate: 1, tokensPerSecond: 1000, elapsedMs: 5000, remainingMs: 7500 },
    }));
    expect(live.progress).toEqual({ step: 40, totalSteps: 100, epoch: 4, epochs: 10, loss: 2.25, tokensPerSecond: 1000, remainingMs: 7500 });
    expect(live.device).toBe('cuda');
    expect(live.hasCheckpoint).toBe(false);
    const withDiff = buildCell(run('d', '/w/a', 5), {
      doc: doc('name: m\nmodel: { layers: [{ hidden: 8 }] }\ntrain: { seed: 1 }\n'),
      baseDoc: doc('name: m\nmodel: { layers: [{ hidden: 4 }] }\ntrain: { seed: 1 }\n'),
      base: { id: 'c', model: 'm', sameModel: true },
      loss: [],
      inference: [],
      fileLabel: 'a',
    });
    expect(withDiff.diff).toEqual({ against: 'c', label: 'vs previous run', changes: [{ key: 'model.layers.0.hidden', from: '4', to: '8' }] });
    // the editor starts with the changed key, then the usual ones present in the document
    expect(withDiff.editable.map((k) => k.key)).toEqual(['model.layers.0.hidden', 'train.seed']);
    expect(withDiff.editable[0]).toMatchObject({ value: '8', type: 'integer', minimum: 1 });
  });

  it('the editor offers the tuned keys of a document with their schema', () => {
    const keys = editableKeys(doc('name: m\ntrain: { epochs: 5, optimizer: { type: adam, learningRate: 0.01 } }\nmodel: { layers: [{ hidden: 8 }, { hidden: 4 }] }\n'), []);
    expect(keys.map((k) => k.key)).toEqual(['train.optimizer.learningRate', 'model.layers.0.hidden', 'model.layers.1.hidden', 'train.epochs', 'train.optimizer.type']);
    expect(keys.find((k) => k.key === 'train.optimizer.type')).toMatchObject({ value: 'adam', enum: ['sgd', 'momentum', 'adam', 'adamw'] });
    expect(keys.find((k) => k.key === 'train.optimizer.learningRate')).toMatchObject({ value: '0.01', minimum: 0, exclusiveMinimum: true });
  });

  it('sparkline values keep the extremes of a long loss series', () => {
    const n = 10_000;
    const step = Array.from({ length: n }, (_, i) => i + 1);
    const loss = step.map((s) => 3 / Math.sqrt(s));
    loss[5000] = 9; // a spike
    const v = sparkValues(step, loss, 120);
    expect(v.length).toBeLessThanOrEqual(120);
    expect(v).toContain(9);
    expect(v[0]).toBe(3);
    expect(sparkValues([1, 2, 3], [3, 2, 1])).toEqual([3, 2, 1]);
  });
});

describe('sparkline scaling', () => {
  it('maps the range onto the box (y down), spreads x over the width, leaves gaps for non-finite values', () => {
    const pts = sparkPoints([1, NaN, 3, 2], 100, 20, 2);
    expect(pts).toEqual([{ x: 2, y: 18 }, null, { x: 66, y: 2 }, { x: 98, y: 10 }]);
    expect(sparkPath(pts)).toBe('M2 18M66 2L98 10');
  });
  it('a flat series is a line through the middle; a single value sits in the centre; no values: all gaps', () => {
    expect(sparkPoints([5, 5, 5], 10, 10, 0).map((p) => p!.y)).toEqual([5, 5, 5]);
    expect(sparkPoints([7], 40, 10, 0)).toEqual([{ x: 20, y: 5 }]);
    expect(sparkPoints([NaN, Infinity], 10, 10)).toEqual([null, null]);
    expect(yRange([null, NaN])).toBeUndefined();
  });
  it('clipping to quantiles keeps one early spike from flattening the rest (the spike is clamped to the top)', () => {
    const ys = [100, ...Array.from({ length: 99 }, (_, i) => 2 - i / 99)];
    const r = yRange(ys, 0.02)!;
    expect(r.max).toBeLessThan(3);
    const pts = sparkPoints(ys, 100, 50, 0);
    expect(pts[0]!.y).toBe(0);
    const spread = pts.slice(1).map((p) => p!.y);
    expect(Math.max(...spread) - Math.min(...spread)).toBeGreaterThan(40);
  });
});

describe('virtual list windowing', () => {
  it('offsets and the row at a position', () => {
    const offs = offsets([10, 20, 30]);
    expect(Array.from(offs)).toEqual([0, 10, 30, 60]);
    expect([rowAt(offs, 0), rowAt(offs, 9.9), rowAt(offs, 10), rowAt(offs, 59), rowAt(offs, 1000)]).toEqual([0, 0, 1, 2, 2]);
  });
  it('renders only the rows that meet the viewport and the overscan, with paddings that add up', () => {
    const heights = Array.from({ length: 500 }, (_, i) => (i % 10 === 0 ? 30 : 120));
    const total = heights.reduce((a, b) => a + b, 0);
    const w = listWindow(heights, 12_000, 800, 300);
    expect(w.end - w.start).toBeLessThan(20);
    expect(w.padTop + heights.slice(w.start, w.end).reduce((a, b) => a + b, 0) + w.padBottom).toBe(total);
    const offs = offsets(heights);
    expect(offs[w.start]).toBeLessThanOrEqual(12_000 - 300);
    expect(offs[w.end]).toBeGreaterThanOrEqual(12_000 + 800 + 300);
    expect(listWindow(heights, 0, 800, 0)).toMatchObject({ start: 0, padTop: 0 });
    // past the end (a list that shrank): the last rows, not an empty window
    const end = listWindow(heights, 10 * total, 800, 0);
    expect(end.end).toBe(500);
    expect(end.start).toBeGreaterThan(490);
    expect(listWindow([], 0, 800)).toEqual({ start: 0, end: 0, padTop: 0, padBottom: 0, total: 0 });
  });
  it('scrolls a row into view only when it is not', () => {
    const h = Array.from({ length: 100 }, () => 100);
    expect(scrollToRow(h, 5, 0, 800)).toBe(0);
    expect(scrollToRow(h, 20, 0, 800)).toBe(2100 - 800);
    expect(scrollToRow(h, 3, 1000, 800)).toBe(300);
  });
});

describe('duplicate with edited hyper-parameters', () => {
  const file = '/w/m.gatelab.yaml';
  const text = `# The char model
name: m
data: { source: t.txt }
model:
  layers:
    - type: lstm
      hidden: 256   # units
train:
  epochs: 50
  optimizer: { type: sgd, learningRate: 1 }
---
name: other
data: { source: t.txt }
model: { layers: [{ hidden: 8 }] }
`;
  const input = (changes: Record<string, string>, mode: 'new-model' | 'in-place' = 'new-model', snapshotText = text) => duplicateModel({ fileText: text, file, model: 'm', snapshotText, runId: 'run1', changes, mode });

  it('a new model document: a copy of the run\'s document with the changes, a free name and where it came from', () => {
    const out = input({ 'train.optimizer.learningRate': '0.5', 'model.layers.0.hidden': '128', 'model.dropout': '0.2' });
    expect(out.problems).toEqual([]);
    expect(out.model).toBe('m-2');
    expect(out.text!.startsWith(text)).toBe(true);
    const added = out.text!.slice(text.length);
    expect(added).toMatch(/^---\n# m-2: a copy of m \(run run1\) with train\.optimizer\.learningRate: 0\.5, model\.layers\.0\.hidden: 128, model\.dropout: 0\.2\n/);
    const m2 = modelDocument(out.text!, 'm-2')!;
    expect(diffHyper(modelDocument(text, 'm')!, m2)).toEqual([
      { key: 'model.layers.0.hidden', from: '256', to: '128' },
      { key: 'model.dropout', from: '0', to: '0.2' },
      { key: 'train.optimizer.learningRate', from: '1', to: '0.5' },
    ]);
    // the copy is the run's document, not the file's current one; names stay unique
    const snap = text.replace('epochs: 50', 'epochs: 3');
    expect(modelDocument(input({ 'train.seed': '7' }, 'new-model', snap).text!, 'm-2')!.train).toMatchObject({ epochs: 3, seed: 7 });
    const again = duplicateModel({ fileText: out.text!, file, model: 'm-2', snapshotText: out.text!, runId: 'r2', changes: { 'train.seed': '3' }, mode: 'new-model' });
    expect(again.model).toBe('m-3');
  });

  it('in place: scalars are replaced where they are, comments and layout kept; structural changes reprint', () => {
    const out = input({ 'model.layers.0.hidden': '64', 'train.optimizer.type': 'adam' }, 'in-place');
    expect(out.problems).toEqual([]);
    expect(out.text).toBe(text.replace('hidden: 256   # units', 'hidden: 64   # units').replace('type: sgd', 'type: adam'));
    const added = input({ 'train.batchSize': '16' }, 'in-place');
    expect(modelDocument(added.text!, 'm')!.train).toMatchObject({ batchSize: 16, epochs: 50 });
    expect(added.text).toContain('# The char model');
    expect(modelDocument(added.text!, 'other')).toEqual(modelDocument(text, 'other'));
  });

  it('problems name the key: schema violations, unknown keys with a suggestion, sections, unparsable values', () => {
    expect(input({ 'model.layers.0.hidden': '0' }).problems).toEqual([{ key: 'model.layers.0.hidden', message: expect.stringMatching(/at least 1|minimum|≥ 1/) }]);
    expect(input({ 'train.optimizer.type': 'adagrad' }).problems[0]).toMatchObject({ key: 'train.optimizer.type', message: expect.stringMatching(/sgd/) });
    expect(input({ 'train.learningrate': '1' }).problems).toEqual([{ key: 'train.learningrate', message: expect.stringMatching(/unknown key .*did you mean/) }]);
    expect(input({ train: '1' }).problems[0].message).toMatch(/is a section/);
    expect(input({ 'train.epochs': '[1,' }).problems[0]).toMatchObject({ key: 'train.epochs', message: expect.stringMatching(/^not a value/) });
    expect(input({}).problems).toEqual([{ key: '', message: 'change a value first' }]);
    // mutually exclusive keys: a problem of the document as a whole or of the key
    expect(input({ 'train.steps': '100' }).problems.length).toBeGreaterThan(0);
  });

  it('JSON model files stay JSON', () => {
    const json = JSON.stringify({ name: 'j', data: { source: 't.txt' }, model: { layers: [{ hidden: 8 }] } }, null, 2);
    const out = duplicateModel({ fileText: json, file: '/w/j.gatelab.json', model: 'j', snapshotText: json, runId: 'r', changes: { 'model.layers.0.hidden': '16' }, mode: 'new-model' });
    expect(out.problems).toEqual([]);
    const list = JSON.parse(out.text!);
    expect(list.map((m: { name: string; model: { layers: { hidden: number }[] } }) => [m.name, m.model.layers[0].hidden])).toEqual([['j', 8], ['j-2', 16]]);
  });
});

describe('inference results kept with a run', () => {
  it('appended atomically, the newest kept, a torn line skipped, read back after a reload', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-inf-'));
    const entry = (i: number): InferenceEntry => ({ id: `e${i}`, time: i, ms: 1, kind: 'sample', prefix: 'a', length: 5, temperature: 1, text: `a${i}` });
    for (let i = 0; i < 5; i++) appendInference(dir, entry(i), 3);
    expect(readInference(dir).map((e) => e.id)).toEqual(['e2', 'e3', 'e4']);
    fs.appendFileSync(path.join(dir, INFERENCE_FILE), '{"id":"torn","ki');
    expect(readInference(dir).map((e) => e.id)).toEqual(['e2', 'e3', 'e4']);
    expect(fs.readdirSync(dir)).toEqual([INFERENCE_FILE]);
  });

  it('a forecast entry: context before the window end, the actual values where known, RMSE over those', () => {
    const series = Array.from({ length: 30 }, (_, i) => i);
    const e = forecastEntry(series, 28, [28, 30, 31], 4);
    expect(e.actual).toEqual([28, 29, null]);
    expect(e.rmse).toBeCloseTo(Math.sqrt((0 + 1) / 2));
    expect(e.from).toBe(16);
    expect(e.history).toEqual(series.slice(16, 28));
  });
});

// ---- the view provider against the vscode stand-in, with real processes ----

interface FakeView {
  view: vscode.WebviewView;
  posted: HostToNotebook[];
  send(m: NotebookToHost): Promise<void>;
  html(): string;
}

function fakeView(provider: NotebookViewProvider): FakeView {
  const posted: HostToNotebook[] = [];
  let onMessage: ((m: NotebookToHost) => unknown) | undefined;
  let html = '';
  const webview = {
    options: {},
    cspSource: 'vscode-webview://test',
    asWebviewUri: (u: Uri) => u,
    postMessage: async (m: HostToNotebook) => {
      posted.push(JSON.parse(JSON.stringify(m)));
      return true;
    },
    onDidReceiveMessage: (l: (m: NotebookToHost) => unknown) => {
      onMessage = l;
      return { dispose: () => undefined };
    },
    set html(v: string) {
      html = v;
    },
    get html() {
      return html;
    },
  };
  const view = { webview, onDidDispose: () => ({ dispose: () => undefined }), visible: true } as unknown as vscode.WebviewView;
  provider.resolveWebviewView(view);
  return { view, posted, html: () => html, send: async (m) => void (await provider.onMessage(m)) };
}

function until(pred: () => boolean, ms = 90_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      if (pred()) return resolve();
      if (Date.now() - t0 > ms) return reject(new Error('timed out'));
      setTimeout(tick, 50);
    };
    tick();
  });
}

function workspaceWith(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-nb-'));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

const ctx = { extensionPath: ROOT, extensionUri: Uri.file(ROOT) } as unknown as vscode.ExtensionContext;

describe('notebook view provider', () => {
  it('the extension registers it for the view the manifest contributes', async () => {
    const { Gatelab } = await import('../../src/host/gatelab');
    const app = new Gatelab({ ...ctx, subscriptions: [], extension: { packageJSON: { version: '0' } } } as unknown as vscode.ExtensionContext);
    expect(recorded.viewProviders.get('gatelab.notebook')).toBe(app.notebook);
    app.dispose();
    expect(recorded.viewProviders.has('gatelab.notebook')).toBe(false);
  });

  it('a snapshot of the runs, live updates, sampling in a child process kept across reloads, duplicate, delete', async () => {
    const dir = workspaceWith({ 'c.txt': fs.readFileSync(CORPUS, 'utf8').slice(0, 8000) });
    const file = path.join(dir, 'm.gatelab.yaml');
    fs.writeFileSync(file, 'name: tiny\ndata: { source: c.txt, preprocess: letters, sequenceLength: 8 }\nmodel: { layers: [{ hidden: 12 }] }\ntrain: { steps: 20, batchSize: 4, device: cpu }\n');
    stubFolders.root = dir;
    const runs = new RunManager({ workerScript: path.join(ROOT, 'dist/worker.js') });
    const trained: string[] = [];
    const provider = new NotebookViewProvider(ctx, runs, {
      inferScript: path.join(ROOT, 'dist/infer.js'),
      train: async (ref) => {
        trained.push(ref.model);
        return runs.start({ modelFile: ref.file, modelName: ref.model });
      },
      resume: async (ref) => runs.resume(ref.runId),
    });
    const first = runs.start({ modelFile: file, modelName: 'tiny' });
    const v = fakeView(provider);
    // strict CSP with a nonce, local scripts only
    expect(v.html()).toMatch(/Content-Security-Policy" content="default-src 'none';[^"]*script-src 'nonce-([A-Za-z0-9]{32})'/);
    const n = /nonce-([A-Za-z0-9]{32})/.exec(v.html())![1];
    expect(v.html()).toContain(`<script nonce="${n}" src="file://${path.join(ROOT, 'dist/webview/notebook.js')}"`);
    expect(v.html()).not.toMatch(/https?:/);

    await v.send({ type: 'webview/ready' });
    const snap = v.posted.find((m) => m.type === 'cells/didSnapshot') as Extract<HostToNotebook, { type: 'cells/didSnapshot' }>;
    expect(snap.groups.map((g) => [g.fileLabel, g.cells.map((c) => c.id)])).toEqual([['m.gatelab.yaml', [first.id]]]);
    expect(snap.schemaKeys.some((k) => k.key === 'train.optimizer.learningRate')).toBe(true);
    await until(() => first.status === 'done');
    provider.flush();
    const updates = v.posted.filter((m): m is Extract<HostToNotebook, { type: 'cells/didUpdate' }> => m.type === 'cells/didUpdate' && m.cell.id === first.id);
    const done = updates[updates.length - 1].cell;
    expect(done.status).toBe('done');
    expect(done.hasCheckpoint).toBe(true);
    expect(done.loss.length).toBe(20);
    expect(done.metrics[0].label).toBe('ppl');

    // sample in place: a child process with the run's checkpoint
    await v.send({ type: 'inference/run', runId: first.id, requestId: 7, request: { kind: 'sample', prefix: 'the time', length: 30, temperature: 0 } });
    const fin = v.posted.find((m) => m.type === 'inference/didFinish') as Extract<HostToNotebook, { type: 'inference/didFinish' }>;
    expect(fin).toMatchObject({ runId: first.id, requestId: 7, entry: { kind: 'sample', prefix: 'the time', temperature: 0 } });
    const text = (fin.entry as Extract<InferenceEntry, { kind: 'sample' }>).text;
    expect(text.startsWith('the time')).toBe(true);
    expect(text.length).toBeGreaterThan('the time'.length + 10);
    // a bad request reports the engine's message
    await v.send({ type: 'inference/run', runId: first.id, requestId: 8, request: { kind: 'classify', text: 'x' } });
    expect(v.posted.find((m) => m.type === 'inference/didFail')).toMatchObject({ requestId: 8, message: expect.stringMatching(/not a classifier/) });

    // a reload: a new manager and provider read everything back from the run folder
    const runs2 = new RunManager({ workerScript: path.join(ROOT, 'dist/worker.js') });
    runs2.loadRecords(file);
    const provider2 = new NotebookViewProvider(ctx, runs2, { inferScript: path.join(ROOT, 'dist/infer.js'), train: async () => undefined, resume: async () => undefined });
    const cell2 = provider2.groups()[0].cells[0];
    expect(cell2.inference.map((e) => e.id)).toEqual([fin.entry.id]);
    expect(cell2.latest).toEqual({ kind: 'sample', text });
    expect(cell2.loss).toEqual(done.loss);

    // duplicate with a changed learning rate: a new model document, trained, compared with the first run
    await v.send({ type: 'edit/validate', runId: first.id, requestId: 9, changes: { 'train.optimizer.learningRate': '-1' } });
    expect(v.posted.find((m) => m.type === 'edit/didValidate')).toMatchObject({ requestId: 9, problems: [{ key: 'train.optimizer.learningRate' }] });
    await v.send({ type: 'edit/duplicate', runId: first.id, requestId: 10, changes: { 'train.optimizer.learningRate': '0.5' }, mode: 'new-model' });
    expect(trained).toEqual(['tiny-2']);
    expect(modelDocument(fs.readFileSync(file, 'utf8'), 'tiny-2')).toMatchObject({ train: { optimizer: { learningRate: 0.5 } } });
    const dup = v.posted.find((m) => m.type === 'edit/didDuplicate') as Extract<HostToNotebook, { type: 'edit/didDuplicate' }>;
    expect(dup).toMatchObject({ requestId: 10, newModel: 'tiny-2' });
    expect(v.posted.at(-1)).toEqual({ type: 'view/reveal', runId: dup.newRunId });
    const second = runs.get(dup.newRunId!)!;
    await until(() => second.status === 'done');
    provider.flush();
    const cell = provider.groups()[0].cells.find((c) => c.id === second.id)!;
    expect(cell.diff).toEqual({ against: first.id, label: 'vs tiny', changes: [{ key: 'train.optimizer.learningRate', from: '1', to: '0.5' }] });

    // delete asks first; "Delete" removes the folder and the cell
    recorded.answers.push(undefined);
    await v.send({ type: 'cell/delete', runId: second.id });
    expect(fs.existsSync(second.dir)).toBe(true);
    recorded.answers.push('Delete');
    await v.send({ type: 'cell/delete', runId: second.id });
    expect(fs.existsSync(second.dir)).toBe(false);
    provider.flush();
    expect(v.posted.at(-1)).toEqual({ type: 'cells/didRemove', runId: second.id });
    expect(recorded.messages.at(-1)?.text).toMatch(/^Delete the run .*tiny-2/);

    // reveal the model's source line
    fs.appendFileSync(file, '');
    await v.send({ type: 'cell/revealSource', runId: second.id });
    await v.send({ type: 'cell/revealSource', runId: first.id });
    expect(recorded.shown.at(-1)).toEqual({ file, line: 0 });
    provider.dispose();
    provider2.dispose();
    runs.dispose();
  });

  it('a stopped run is resumable: Resume continues it in its folder to the end', async () => {
    const dir = workspaceWith({ 'c.txt': fs.readFileSync(CORPUS, 'utf8').slice(0, 8000) });
    const file = path.join(dir, 'r.gatelab.yaml');
    fs.writeFileSync(file, 'name: r\ndata: { source: c.txt, preprocess: letters, sequenceLength: 8 }\nmodel: { layers: [{ hidden: 12 }] }\ntrain: { steps: 3000, batchSize: 4, stepsPerRun: 4, device: cpu }\n');
    const runs = new RunManager({ workerScript: path.join(ROOT, 'dist/worker.js'), jobDefaults: () => ({ progressEveryMs: 0 }) });
    const provider = new NotebookViewProvider(ctx, runs, { inferScript: path.join(ROOT, 'dist/infer.js'), train: async () => undefined, resume: async (ref) => runs.resume(ref.runId) });
    const v = fakeView(provider);
    await v.send({ type: 'webview/ready' });
    const run = runs.start({ modelFile: file, modelName: 'r' });
    await until(() => (run.last?.step ?? 0) >= 8);
    await runs.stop(run.id);
    await until(() => run.status === 'stopped');
    provider.flush();
    const cell = () => provider.groups()[0].cells.find((c) => c.id === run.id)!;
    expect(cell().resumable).toBe(true);
    const stoppedAt = run.summary!.steps;
    expect(stoppedAt).toBeLessThan(3000);
    await v.send({ type: 'cell/resume', runId: run.id });
    expect(v.posted.at(-1)).toEqual({ type: 'view/reveal', runId: run.id });
    await until(() => run.status === 'done');
    expect(run.summary!.steps).toBe(3000);
    expect(cell().resumable).toBe(false);
    const rec = JSON.parse(fs.readFileSync(path.join(run.dir, 'run.json'), 'utf8'));
    expect(rec).toMatchObject({ status: 'done', resumed: [{ step: stoppedAt }] });
    // one loss per step, none twice
    const steps = fs.readFileSync(path.join(run.dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => 'loss' in m).map((m) => m.step);
    expect(steps).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
    provider.dispose();
    runs.dispose();
  });

  it('runs of the command line appear, change and go with their records', async () => {
    const dir = workspaceWith({ 'c.txt': fs.readFileSync(CORPUS, 'utf8').slice(0, 6000) });
    const file = path.join(dir, 'cli.gatelab.yaml');
    fs.writeFileSync(file, 'name: cli\ndata: { source: c.txt, preprocess: letters, sequenceLength: 8 }\nmodel: { layers: [{ hidden: 8 }] }\ntrain: { steps: 5, batchSize: 4, device: cpu }\n');
    const runs = new RunManager({ workerScript: path.join(ROOT, 'dist/worker.js') });
    const provider = new NotebookViewProvider(ctx, runs, { inferScript: path.join(ROOT, 'dist/infer.js'), train: async () => undefined, resume: async () => undefined });
    const v = fakeView(provider);
    await v.send({ type: 'webview/ready' });
    expect((v.posted[0] as Extract<HostToNotebook, { type: 'cells/didSnapshot' }>).groups).toEqual([]);
    execFileSync(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'train', file, '--quiet'], { stdio: 'pipe' });
    const runDir = path.join(dir, '.gatelab', 'runs', fs.readdirSync(path.join(dir, '.gatelab', 'runs'))[0]);
    const watcher = recorded.watchers.find((w) => w.glob === '**/.gatelab/runs/*/run.json')!;
    watcher.create.fire(Uri.file(path.join(runDir, 'run.json')));
    provider.flush();
    const up = v.posted.at(-1) as Extract<HostToNotebook, { type: 'cells/didUpdate' }>;
    expect(up.type).toBe('cells/didUpdate');
    expect([up.cell.model, up.cell.status, up.cell.hasCheckpoint, up.cell.loss.length]).toEqual(['cli', 'done', true, 5]);
    fs.rmSync(runDir, { recursive: true });
    watcher.delete.fire(Uri.file(path.join(runDir, 'run.json')));
    provider.flush();
    expect(v.posted.at(-1)).toEqual({ type: 'cells/didRemove', runId: path.basename(runDir) });
    provider.dispose();
    expect(recorded.watchers.some((w) => w === watcher)).toBe(false);
    runs.dispose();
  });

  it('gatelab.runsFolder: the CLI records there with --runs, the view watches that folder, and follows a change of the setting', async () => {
    const dir = workspaceWith({ 'c.txt': fs.readFileSync(CORPUS, 'utf8').slice(0, 6000) });
    const file = path.join(dir, 'cli.gatelab.yaml');
    fs.writeFileSync(file, 'name: cli\ndata: { source: c.txt, preprocess: letters, sequenceLength: 8 }\nmodel: { layers: [{ hidden: 8 }] }\ntrain: { steps: 5, batchSize: 4, device: cpu }\n');
    const shared = path.join(dir, 'shared-runs');
    let setting = shared;
    const runs = new RunManager({ workerScript: path.join(ROOT, 'dist/worker.js'), runsFolder: () => setting });
    const provider = new NotebookViewProvider(ctx, runs, { inferScript: path.join(ROOT, 'dist/infer.js'), train: async () => undefined, resume: async () => undefined });
    const v = fakeView(provider);
    await v.send({ type: 'webview/ready' });
    expect(runs.runsDirFor(file)).toBe(shared);
    execFileSync(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'train', file, '--quiet', '--runs', shared], { stdio: 'pipe' });
    const runDir = path.join(shared, fs.readdirSync(shared)[0]);
    const watcher = recorded.watchers.find((w) => w.glob === `${shared}/*/run.json`)!;
    expect(watcher, recorded.watchers.map((w) => w.glob).join(', ')).toBeDefined();
    watcher.create.fire(Uri.file(path.join(runDir, 'run.json')));
    provider.flush();
    const up = v.posted.at(-1) as Extract<HostToNotebook, { type: 'cells/didUpdate' }>;
    expect([up.cell.model, up.cell.status]).toEqual(['cli', 'done']);
    // a relative setting: a folder of that name beside each model file
    setting = 'my-runs';
    changeSettings({ 'gatelab.runsFolder': 'my-runs' });
    expect(recorded.watchers.some((w) => w.glob === `${shared}/*/run.json`)).toBe(false);
    expect(recorded.watchers.some((w) => w.glob === '**/my-runs/*/run.json')).toBe(true);
    expect(runs.runsDirFor(file)).toBe(path.join(dir, 'my-runs'));
    provider.dispose();
    runs.dispose();
  });

  it('gatelab.runsFolder as a list: new runs go to the first folder; the runs of every folder are shown and watched', async () => {
    const dir = workspaceWith({ 'c.txt': fs.readFileSync(CORPUS, 'utf8').slice(0, 6000) });
    const file = path.join(dir, 'two.gatelab.yaml');
    fs.writeFileSync(file, 'name: two\ndata: { source: c.txt, preprocess: letters, sequenceLength: 8 }\nmodel: { layers: [{ hidden: 8 }] }\ntrain: { steps: 3, batchSize: 4, device: cpu }\n');
    const first = path.join(dir, 'mine');
    const second = path.join(dir, 'cluster');
    const runs = new RunManager({ workerScript: path.join(ROOT, 'dist/worker.js'), runsFolder: () => [first, 'cluster', ''] });
    expect(runs.runsDirFor(file)).toBe(first);
    expect(runs.runsDirsFor(file)).toEqual([first, second]);
    // a run recorded elsewhere (another machine's job on a shared folder) is read from the second folder
    execFileSync(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'train', file, '--quiet', '--runs', second], { stdio: 'pipe' });
    const provider = new NotebookViewProvider(ctx, runs, { inferScript: path.join(ROOT, 'dist/infer.js'), train: async () => undefined, resume: async () => undefined });
    const v = fakeView(provider);
    await v.send({ type: 'webview/ready' });
    runs.loadRecords(file, true);
    expect(runs.all.filter((r) => r.model === 'two').map((r) => path.dirname(r.dir))).toEqual([second]);
    expect(recorded.watchers.some((w) => w.glob === `${first}/*/run.json`)).toBe(true);
    expect(recorded.watchers.some((w) => w.glob === '**/cluster/*/run.json')).toBe(true);
    // a run started here goes to the first folder
    const info = runs.start({ modelFile: file, modelName: 'two' });
    expect(path.dirname(info.dir)).toBe(first);
    await new Promise<void>((resolve) => {
      const d = runs.changed.on((r) => {
        if (r.id === info.id && r.status !== 'running' && r.status !== 'queued') {
          d.dispose();
          resolve();
        }
      });
    });
    expect(fs.existsSync(path.join(info.dir, 'run.json'))).toBe(true);
    provider.dispose();
    runs.dispose();
  }, 60_000);

  it('forecast and classification inference: a chosen window against the actual values, class probabilities', async () => {
    const dir = workspaceWith({
      'air.csv': fs.readFileSync(path.join(ROOT, 'examples/data/airline-passengers.csv'), 'utf8'),
      's.txt': fs.readFileSync(path.join(ROOT, 'examples/data/sentiment/yelp_labelled.txt'), 'utf8'),
    });
    const file = path.join(dir, 'm.gatelab.yaml');
    fs.writeFileSync(
      file,
      `name: air
task: forecast
data: { source: air.csv, column: Passengers, window: 12, horizon: 1, transform: log-difference, validation: 0.1667 }
model: { layers: [{ hidden: 8 }] }
train: { steps: 30, batchSize: 16, optimizer: { type: adam, learningRate: 0.01 }, device: cpu }
---
name: senti
task: classification
data: { source: s.txt, tokens: word, preprocess: letters, sequenceLength: 20, validation: 0.2 }
model: { embedding: 8, layers: [{ hidden: 8 }] }
train: { steps: 20, batchSize: 16, optimizer: { type: adam, learningRate: 0.01 }, device: cpu }
`,
    );
    const runs = new RunManager({ workerScript: path.join(ROOT, 'dist/worker.js'), concurrency: () => 'parallel' });
    const provider = new NotebookViewProvider(ctx, runs, { inferScript: path.join(ROOT, 'dist/infer.js'), train: async () => undefined, resume: async () => undefined });
    const air = runs.start({ modelFile: file, modelName: 'air' });
    const senti = runs.start({ modelFile: file, modelName: 'senti' });
    await until(() => air.status === 'done' && senti.status === 'done');
    const v = fakeView(provider);
    await v.send({ type: 'webview/ready' });
    const cells = (v.posted[0] as Extract<HostToNotebook, { type: 'cells/didSnapshot' }>).groups[0].cells;
    const byModel = (m: string) => cells.find((c: NotebookCell) => c.model === m)!;
    expect([byModel('air').task, byModel('air').forecast, byModel('air').hasCheckpoint]).toEqual(['forecast', { window: 12, horizon: 1 }, true]);
    expect([byModel('senti').task, byModel('senti').forecast, byModel('senti').metrics[0].label]).toEqual(['classification', undefined, 'acc']);

    await v.send({ type: 'series/get', runId: air.id });
    await until(() => v.posted.some((m) => m.type === 'series/didLoad'));
    const s = v.posted.find((m) => m.type === 'series/didLoad') as Extract<HostToNotebook, { type: 'series/didLoad' }>;
    expect([s.values.length, s.validStart, s.values[0]]).toEqual([144, 120, 112]);

    await v.send({ type: 'inference/run', runId: air.id, requestId: 1, request: { kind: 'forecast', at: 130, steps: 20 } });
    const f = (v.posted.find((m) => m.type === 'inference/didFinish') as Extract<HostToNotebook, { type: 'inference/didFinish' }>).entry as Extract<InferenceEntry, { kind: 'forecast' }>;
    expect(f.forecast).toHaveLength(20);
    expect([f.at, f.steps, Math.abs(f.time - Date.now()) < 60_000]).toEqual([130, 20, true]);
    expect(f.actual).toEqual([...s.values.slice(130, 144), ...Array(6).fill(null)]);
    expect(f.history.at(-1)).toBe(s.values[129]);
    expect(f.rmse).toBeGreaterThan(0);
    for (const x of f.forecast) expect(x).toBeGreaterThan(100);

    await v.send({ type: 'inference/run', runId: senti.id, requestId: 2, request: { kind: 'classify', text: 'the food was great and the service was wonderful' } });
    const c = (v.posted.filter((m) => m.type === 'inference/didFinish').at(-1) as Extract<HostToNotebook, { type: 'inference/didFinish' }>).entry as Extract<InferenceEntry, { kind: 'classify' }>;
    expect(c.probabilities.map((p) => p.label).sort()).toEqual(['0', '1']);
    expect(c.probabilities.reduce((a, p) => a + p.p, 0)).toBeCloseTo(1, 5);
    expect(c.label).toBe(c.probabilities[0].label);
    expect(readInference(senti.dir)).toHaveLength(1);

    // compare: one dashboard (the newer run's) with the other run's loss overlaid, named by its model
    await v.send({ type: 'cells/compare', runIds: [air.id, senti.id] });
    const [older, newer] = [air, senti].sort((a, b) => a.started - b.started);
    const panel = recorded.panels.at(-1)!;
    expect(panel.title).toBe(`Gatelab: ${newer.model}`);
    panel.receive({ type: 'webview/ready' });
    await until(() => panel.posted.length > 0); // the host reads the runs' series first
    const dash = panel.posted[0] as { type: string; run: { id: string }; overlays: { id: string; label: string; step: number[] }[] };
    expect(dash.type).toBe('run/didSnapshot');
    expect(dash.run.id).toBe(newer.id);
    expect(dash.overlays.map((o) => o.id)).toEqual([older.id]);
    expect(dash.overlays[0].label).toMatch(new RegExp(`^${older.model} done `));
    expect(dash.overlays[0].step.length).toBeGreaterThan(10);
    panel.receive({ type: 'training/stop' }); // a finished run: nothing to stop, nothing breaks
    const { DashboardPanel, DashboardSerializer } = await import('../../src/host/dashboard');
    for (const d of DashboardPanel.open) d.panel.dispose();
    // the comparison survives a window reload: the webview keeps it in its state, the serializer restores it
    expect((dash as unknown as { compare: string[] }).compare).toEqual([older.id]);
    await new DashboardSerializer(ctx, runs).deserializeWebviewPanel(window.createWebviewPanel('gatelab.dashboard', 'Gatelab', ViewColumn.One, {}), {
      runId: newer.id,
      modelFile: newer.modelFile,
      compare: [older.id],
    });
    const revived = recorded.panels.at(-1)!;
    revived.receive({ type: 'webview/ready' });
    await until(() => revived.posted.length > 0);
    const again = revived.posted[0] as typeof dash;
    expect(again.run.id).toBe(newer.id);
    expect(again.overlays.map((o) => o.id)).toEqual([older.id]);
    for (const d of DashboardPanel.open) d.panel.dispose();
    provider.dispose();
    runs.dispose();
  });
});
