// Host classes against the `vscode` stand-in (test/unit/vscode-stub.ts) and real trainer processes:
// CodeLens detection, run descriptions, diagnostics with quick fixes, the run manager (queue, stop,
// crash), and activation registering every command.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as vscode from 'vscode';
import { COMMANDS } from '../../src/host/commands';
import { lensesFor } from '../../src/host/lenses';
import { describeRun, RunInfo, RunManager } from '../../src/host/runs';
import { cellMetrics } from '../../src/host/notebookdata';
import { gatesInWorker, throughInWorker } from '../../src/engine/runtime/client';
import { ModelDiagnostics } from '../../src/host/diagnostics';
import { exportedAs, Gatelab } from '../../src/host/gatelab';
import { loadModelFile } from '../../src/engine/config/load';
import { openDocument, recorded } from './vscode-stub';
import { newRunId, readRunRecord } from '../../src/engine/train/runrecord';
import { processStartTime } from '../../src/engine/util/fsx';
import { fmtSize, MANIFEST, plan } from '../../src/engine/cuda/manifest';
import { describeTodo } from '../../src/host/cuda';
import { planInstall } from '../../src/engine/cuda/install';
import { startRegistry } from './cuda-registry';

const ROOT = path.resolve(__dirname, '../..');
const WORKER = path.join(ROOT, 'dist/worker.js');
const CORPUS = path.resolve(ROOT, 'examples/data/timemachine.txt');

const TWO = `name: first
data: { source: c.txt }
model: { layers: [{ hidden: 8 }] }
---
# the second model
name: second
data: { source: c.txt }
model: { layers: [{ hidden: 8 }] }
`;

function tmpModel(steps = 20, extra = ''): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-host-'));
  fs.writeFileSync(path.join(dir, 'c.txt'), fs.readFileSync(CORPUS, 'utf8').slice(0, 8000));
  const file = path.join(dir, 'm.gatelab.yaml');
  fs.writeFileSync(
    file,
    `name: tiny
data: { source: c.txt, preprocess: letters, sequenceLength: 8, validation: 0.1 }
model: { layers: [{ hidden: 12 }] }
train: { steps: ${steps}, batchSize: 4, optimizer: { type: sgd, learningRate: 1 }, device: cpu }
${extra}`,
  );
  return file;
}

function until(runs: RunManager, pred: (r: RunInfo[]) => boolean, ms = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timed out')), ms);
    const check = () => {
      if (pred(runs.all)) {
        clearTimeout(t);
        sub.dispose();
        resolve();
      }
    };
    const sub = runs.changed.on(check);
    check();
  });
}

describe('CodeLens', () => {
  it('one ▶ Train and a Dashboard lens per model, at its first line', () => {
    const lenses = lensesFor(TWO, '/w/m.gatelab.yaml', { latest: () => undefined });
    expect(lenses.map((l) => [l.line, l.title, l.command])).toEqual([
      [0, '$(play) Train', 'gatelab.train', ],
      [0, 'Dashboard', 'gatelab.openDashboard'],
      [5, '$(play) Train', 'gatelab.train'],
      [5, 'Dashboard', 'gatelab.openDashboard'],
    ]);
    expect(lenses[2].args).toEqual([{ file: '/w/m.gatelab.yaml', model: 'second' }]);
  });

  it('■ Stop while a run is live; the last result inline when it is done', () => {
    const now = Date.parse('2026-11-24T12:00:00Z');
    const running: RunInfo = {
      id: 'r1', dir: '/x', modelFile: '/w/m.gatelab.yaml', model: 'first', status: 'running', started: now - 60_000,
      startedMsg: { type: 'started', model: 'first', task: 'language-model', device: 'cpu', parameters: 1, totalSteps: 100, stepsPerEpoch: 10, epochs: 10, tokensPerStep: 1120, stepsPerRun: 16, trainTokens: 1, validTokens: 0 },
      last: { type: 'progress', step: 40, epoch: 4, losses: [2.5], gradNorms: [1], learningRate: 1, tokensPerSecond: 52_000, elapsedMs: 60_000, remainingMs: 90_000 },
    };
    const done: RunInfo = {
      id: 'r2', dir: '/y', modelFile: '/w/m.gatelab.yaml', model: 'second', status: 'done', started: now - 400_000, finished: now - 180_000,
      checkpoint: '/y/model.safetensors',
      summary: { model: 'second', device: 'cpu', steps: 10, epochs: 1, trainLoss: Math.log(4.31), validLoss: null, perplexity: 4.31, tokensPerSecond: 52_000, elapsedSeconds: 3 },
    };
    const lenses = lensesFor(TWO, '/w/m.gatelab.yaml', { latest: (_f, m) => (m === 'first' ? running : done) }, now);
    const titles = lenses.map((l) => l.title);
    expect(titles).toEqual([
      '$(debug-stop) Stop',
      'Dashboard',
      'step 40/100 · loss 2.500 · 52k tok/s · 1:30 left · cpu',
      '$(play) Train',
      'Sample',
      'Export ONNX',
      'PyTorch Job',
      'Dashboard',
      'ppl 4.31 · 52k tok/s · cpu · 3 min ago',
    ]);
    expect(lenses[0].args).toEqual([{ runId: 'r1' }]);
  });

  it('Predict instead of Sample and Export for classification and forecast runs', () => {
    const run: RunInfo = {
      id: 'r3', dir: '/z', modelFile: '/w/m.gatelab.yaml', model: 'first', task: 'forecast', status: 'done', started: 0, finished: 1,
      checkpoint: '/z/model.safetensors',
      summary: { model: 'first', device: 'cpu', steps: 10, epochs: 1, trainLoss: 0.01, validLoss: 0.1, rmse: 18.05, tokensPerSecond: 1000, elapsedSeconds: 1 },
    };
    const titles = lensesFor(TWO, '/w/m.gatelab.yaml', { latest: (_f, m) => (m === 'first' ? run : undefined) }, 2000).filter((l) => l.line === 0).map((l) => l.title);
    expect(titles).toEqual(['$(play) Train', 'Predict', 'Dashboard', 'rmse 18.1 · 1k tok/s · cpu · just now']);
  });

  it('broken text gives no lenses and no exception', () => {
    expect(lensesFor('name: [unclosed\n  - :', '/w/x.gatelab.yaml', { latest: () => undefined })).toEqual([]);
  });
});

describe('diagnostics', () => {
  it('problems at their line and column, with a quick fix for a misspelt key', () => {
    const diags = new ModelDiagnostics();
    const doc = openDocument('/w/d.gatelab.yaml', 'name: d\ndata: { source: c.txt }\nmodel:\n  layers:\n    - hiden: 8\n');
    const ds = recorded.diagnostics.get('/w/d.gatelab.yaml')!;
    expect(ds.map((d) => [d.range.start.line, d.range.start.character, d.code, d.message])).toEqual([
      [4, 6, 'model.layers.0.hiden', 'unknown key "hiden" (did you mean "hidden"?)'],
      [4, 6, 'model.layers.0.hidden', 'missing required key "hidden" (add hidden: … under model.layers.0)'],
    ]);
    const actions = diags.provideCodeActions(doc as unknown as vscode.TextDocument, ds[0].range as vscode.Range);
    expect(actions.map((a) => a.title)).toEqual(['Change to "hidden"']);
    const edit = (actions[0].edit as unknown as { edits: { range: vscode.Range; text: string }[] }).edits[0];
    expect([edit.range.start.line, edit.range.start.character, edit.range.end.character, edit.text]).toEqual([4, 6, 11, 'hidden']);
    // a valid file clears them
    (doc as unknown as { setText(t: string): void }).setText('name: d\ndata: { source: c.txt }\nmodel:\n  layers:\n    - hidden: 8\n');
    diags.update(doc as unknown as vscode.TextDocument);
    expect(recorded.diagnostics.get('/w/d.gatelab.yaml')).toEqual([]);
    diags.dispose();
  });
});

describe('runs', () => {
  it('a run trains in a child process, writes its record, and is found again from disk', async () => {
    const file = tmpModel(20);
    const runs = new RunManager({ workerScript: WORKER });
    const seen: string[] = [];
    runs.messages.on(({ message }) => seen.push(message.type));
    const r = runs.start({ modelFile: file, modelName: 'tiny' });
    expect(r.status).toBe('running');
    await until(runs, () => r.status === 'done');
    expect(seen[0]).toBe('started');
    expect(seen).toContain('progress');
    expect(seen).toContain('epoch');
    expect(seen[seen.length - 1]).toBe('done');
    expect(r.summary?.steps).toBe(20);
    expect(readRunRecord(r.dir)?.status).toBe('done');
    expect(fs.existsSync(path.join(r.dir, 'model.safetensors'))).toBe(true);
    expect(runs.metrics(r.id).filter((m) => 'loss' in m)).toHaveLength(20);
    expect(describeRun(r)).toMatch(/^ppl \d+\.\d\d · \d+k? tok\/s · cpu · just now$/);
    // a new window: the run comes back from its record
    const again = new RunManager({ workerScript: WORKER });
    expect(again.latest(file, 'tiny')).toMatchObject({ id: r.id, status: 'done', model: 'tiny' });
    runs.dispose();
  });

  it('closing the window: every trainer is asked to stop and checkpoints before it goes; a JSON model keeps a JSON snapshot', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-host-'));
    fs.writeFileSync(path.join(dir, 'c.txt'), fs.readFileSync(CORPUS, 'utf8').slice(0, 8000));
    const file = path.join(dir, 'm.gatelab.json');
    fs.writeFileSync(file, JSON.stringify({ name: 'j', data: { source: 'c.txt', preprocess: 'letters', sequenceLength: 8 }, model: { layers: [{ hidden: 12 }] }, train: { steps: 100000, batchSize: 4, stepsPerRun: 4, device: 'cpu' } }));
    const runs = new RunManager({ workerScript: WORKER, jobDefaults: () => ({ progressEveryMs: 0, checkpointEvery: 0 }) });
    const r = runs.start({ modelFile: file, modelName: 'j' });
    await until(runs, () => (r.last?.step ?? 0) >= 8);
    await runs.shutdown(10_000);
    const rec = readRunRecord(r.dir)!;
    expect(rec.status).toBe('stopped');
    expect(rec.checkpoint).toBe(path.join(r.dir, 'model.safetensors'));
    expect(fs.existsSync(path.join(r.dir, 'train-state.safetensors'))).toBe(true);
    expect(fs.readFileSync(path.join(r.dir, 'model.gatelab.json'), 'utf8')).toBe(fs.readFileSync(file, 'utf8'));
    expect(fs.existsSync(path.join(r.dir, 'model.gatelab.yaml'))).toBe(false);
  });

  it('the Export message names the operators and the inputs and outputs the file has', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-host-'));
    const f = path.join(dir, 'g.gatelab.yaml');
    fs.writeFileSync(f, 'name: g\ntask: forecast\ndata: { source: s.csv, column: v }\nmodel: { layers: [{ type: gru, hidden: 4 }] }\n');
    expect(exportedAs(loadModelFile(f), { inputs: ['x'], outputs: ['pred'] })).toBe('the standard ONNX GRU operator; input "x", output "pred"');
    fs.writeFileSync(f, 'name: g\ndata: { source: c.txt }\nmodel: { layers: [{ type: gru, hidden: 4 }, { type: lstm, hidden: 4 }] }\n');
    expect(exportedAs(loadModelFile(f), { inputs: ['tokens'], outputs: ['logits', 'h.l0', 'h.l1', 'c.l1'] })).toBe('the standard ONNX GRU and LSTM operators; input "tokens", outputs "logits", "h.l0", "h.l1", "c.l1"');
  });

  it('a record says "running": believed only while that very process lives (a reused pid is not it); run ids never collide', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-host-'));
    const file = path.join(dir, 'm.gatelab.yaml');
    fs.writeFileSync(file, 'name: m\ndata: { source: c.txt }\n');
    const write = (id: string, pidStart: string | undefined) => {
      fs.mkdirSync(path.join(dir, '.gatelab/runs', id), { recursive: true });
      fs.writeFileSync(path.join(dir, '.gatelab/runs', id, 'run.json'), JSON.stringify({ id, model: 'm', modelFile: file, modelLine: 1, task: 'language-model', status: 'running', started: new Date().toISOString(), pid: process.pid, ...(pidStart !== undefined ? { pidStart } : {}) }));
    };
    // this test process is alive: with its own start time it is the trainer; with another one its pid was reused
    write('a', processStartTime(process.pid));
    write('b', '1');
    const runs = new RunManager({ workerScript: WORKER });
    runs.loadRecords(file);
    expect(runs.get('a')!.status).toBe('running');
    expect(runs.get('b')!.status).toBe(process.platform === 'linux' ? 'failed' : 'running');
    const now = new Date();
    const ids = new Set(Array.from({ length: 2000 }, () => newRunId('m', now)));
    expect(ids.size).toBe(2000);
    expect([...ids][0]).toMatch(/^\d{8}-\d{6}-\d{3}-m-[0-9a-f]{8}$/);
  });

  it('a classification run stopped in its first epoch: its record has no figures, and the CodeLens line, status and cell still render', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-host-'));
    fs.writeFileSync(path.join(dir, 'd.tsv'), fs.readFileSync(path.join(ROOT, 'examples/data/sentiment/yelp_labelled.txt'), 'utf8'));
    const file = path.join(dir, 'c.gatelab.yaml');
    fs.writeFileSync(file, 'name: c\ntask: classification\ndata: { source: d.tsv, tokens: word, sequenceLength: 20 }\nmodel: { embedding: 16, layers: [{ hidden: 16 }] }\ntrain: { epochs: 50, batchSize: 4, stepsPerRun: 2, device: cpu }\n');
    const runs = new RunManager({ workerScript: WORKER, jobDefaults: () => ({ progressEveryMs: 0 }) });
    const r = runs.start({ modelFile: file, modelName: 'c' });
    await until(runs, () => (r.last?.step ?? 0) >= 2);
    await runs.stop(r.id);
    await until(runs, () => r.status === 'stopped');
    // NaN figures arrive as null through JSON
    expect(r.summary!.stopped).toBe(true);
    const again = new RunManager({ workerScript: WORKER });
    const back = again.latest(file, 'c')!;
    expect(back.status).toBe('stopped');
    for (const run of [r, back, { ...back, summary: { ...back.summary!, trainLoss: null, validLoss: null, accuracy: null, tokensPerSecond: null } as never }]) {
      expect(() => describeRun(run)).not.toThrow();
      expect(describeRun(run)).toMatch(/stopped · just now$/);
      expect(() => cellMetrics(run.summary)).not.toThrow();
    }
    expect(describeRun({ ...back, summary: { ...back.summary!, trainLoss: null, accuracy: null } as never })).toMatch(/^\d+ steps · /);
    // a run still reading its corpus says how far, in the lens, the status bar and the notification
    const reading = { type: 'reading', file: '/w/wiki.txt', bytes: 5, size: 10, pass: 2, passes: 2, fraction: 0.75, elapsedMs: 30_000, remainingMs: 10_000 } as const;
    expect(describeRun({ ...back, status: 'running', summary: undefined, startedMsg: undefined, last: undefined, reading })).toBe('reading wiki.txt 75% · 10s left');
    runs.dispose();
  });

  it('queues a second run behind the first; stop ends a run with a checkpoint', async () => {
    const file = tmpModel(100000);
    const runs = new RunManager({ workerScript: WORKER, concurrency: () => 'queue' });
    const a = runs.start({ modelFile: file, modelName: 'tiny' });
    const b = runs.start({ modelFile: file, modelName: 'tiny' });
    expect([a.status, b.status]).toEqual(['running', 'queued']);
    await until(runs, () => !!a.last);
    await runs.stop(a.id);
    await until(runs, () => a.status === 'stopped' && b.status === 'running');
    expect(a.summary?.stopped).toBe(true);
    expect(fs.existsSync(path.join(a.dir, 'model.safetensors'))).toBe(true);
    await runs.stop(b.id);
    await until(runs, () => b.status === 'stopped');
    runs.dispose();
  });

  it('a crashed trainer is reported as failed and the manager keeps working', async () => {
    const file = tmpModel(100000);
    const runs = new RunManager({ workerScript: WORKER });
    const a = runs.start({ modelFile: file, modelName: 'tiny' });
    await until(runs, () => !!a.last);
    const pid = readRunRecord(a.dir)!.pid!;
    process.kill(pid, 'SIGKILL');
    await until(runs, () => a.status === 'failed');
    expect(a.error).toMatch(/killed by SIGKILL/);
    expect(readRunRecord(a.dir)?.status).toBe('failed');
    const bad = tmpModel(5, 'banana: 1\n');
    const b = runs.start({ modelFile: bad, modelName: 'tiny' });
    await until(runs, () => b.status === 'failed');
    expect(b.errorKind).toBe('user');
    expect(b.errorWhere).toMatchObject({ line: 5, key: 'banana' });
    runs.dispose();
  });
});

describe('gate probes of finished runs', () => {
  it('run in a worker process that is killed after its timeout or when cancelled, leaving no process', async () => {
    const file = tmpModel(5);
    const runs = new RunManager({ workerScript: WORKER });
    const r = runs.start({ modelFile: file, modelName: 'tiny' });
    await until(runs, () => r.status === 'done');
    const job = { modelFile: file, modelName: 'tiny', init: r.checkpoint!, probe: 'the time' };
    const ok = await gatesInWorker(job, { workerScript: WORKER });
    expect(ok.tokens.length).toBeGreaterThan(3);
    await expect(gatesInWorker(job, { workerScript: WORKER, timeoutMs: 1 })).rejects.toThrow(/took longer than 0 s/);
    const ctl = new AbortController();
    const p = gatesInWorker(job, { workerScript: WORKER, signal: ctl.signal });
    ctl.abort();
    await expect(p).rejects.toThrow(/cancelled/);
    // the snapshot the run trained with wins over the model file as it is now
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('hidden: 12', 'hidden: 13'));
    await expect(gatesInWorker(job, { workerScript: WORKER })).rejects.toThrow(/shape/);
    const fromSnapshot = await gatesInWorker({ ...job, modelText: fs.readFileSync(path.join(r.dir, 'model.gatelab.yaml'), 'utf8') }, { workerScript: WORKER });
    expect(fromSnapshot.layers[0].units).toBe(12);
    // the gradients through time of the same checkpoint (the dashboard's Compute), in a worker too
    const through = await throughInWorker({ ...job, modelText: fs.readFileSync(path.join(r.dir, 'model.gatelab.yaml'), 'utf8') }, { workerScript: WORKER });
    expect(through.tokens.join('')).toBe('the time');
    expect(through.connectivity).toHaveLength(7);
    expect(through.connectivity[6].slice(0, 7).every((v) => v > 0)).toBe(true);
    expect(through.gradientFlow.map((f) => f.layer)).toEqual([0]);
    expect(through.cells).toEqual(['lstm']);
    const ctl2 = new AbortController();
    const q = throughInWorker({ ...job, modelText: fs.readFileSync(path.join(r.dir, 'model.gatelab.yaml'), 'utf8') }, { workerScript: WORKER, signal: ctl2.signal });
    ctl2.abort();
    await expect(q).rejects.toThrow(/the gradients through time was cancelled/);
    await expect(throughInWorker({ ...job, probe: 't', modelText: fs.readFileSync(path.join(r.dir, 'model.gatelab.yaml'), 'utf8') }, { workerScript: WORKER })).rejects.toThrow(/at least two/);
    runs.dispose();
  });
});

describe('activation', () => {
  it('registers every command of the table; Train asks for trust in an untrusted folder', async () => {
    const ctx = {
      extensionPath: ROOT,
      extensionUri: vscode.Uri.file(ROOT),
      globalStorageUri: vscode.Uri.file(fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-storage-'))),
      subscriptions: [] as { dispose(): void }[],
      extension: { packageJSON: { version: '0.1.0' } },
    } as unknown as vscode.ExtensionContext;
    const app = new Gatelab(ctx);
    for (const c of Object.values(COMMANDS)) expect(recorded.commands.has(c.id), c.id).toBe(true);
    recorded.trusted = false;
    const n = recorded.messages.length;
    await vscode.commands.executeCommand('gatelab.train', { file: tmpModel(5), model: 'tiny' });
    expect(recorded.messages.slice(n).map((m) => m.level)).toEqual(['warn']);
    expect(recorded.messages[n].text).toMatch(/Trust this folder/);
    expect(app.runs.all).toEqual([]);
    // every command that starts a process on the folder's files asks the same, and starts nothing
    for (const id of ['gatelab.sample', 'gatelab.predict', 'gatelab.resume']) {
      const k = recorded.messages.length;
      expect(await vscode.commands.executeCommand(id, { file: tmpModel(5), model: 'tiny' }), id).toBeUndefined();
      expect(recorded.messages.slice(k).map((m) => m.level), id).toEqual(['warn']);
      expect(recorded.messages[k].text, id).toMatch(/runs a process on this folder's files. Trust this folder/);
    }
    // the side panel's inference too (it shares the commands' inference path)
    await expect(app.api.notebook.inferFor('nope', { kind: 'sample', prefix: '', length: 5, temperature: 0 })).rejects.toThrow(/no run nope/);
    const t = tmpModel(5);
    const run = app.runs.start({ modelFile: t, modelName: 'tiny' });
    await until(app.runs, () => run.status === 'done');
    await expect(app.api.notebook.inferFor(run.id, { kind: 'sample', prefix: '', length: 5, temperature: 0 })).rejects.toThrow(/trust this folder first/);
    recorded.trusted = true;
    app.dispose();
    expect(recorded.commands.size).toBe(0);
  });
});

describe('sweeps from the extension', () => {
  it('a model with a sweep gets a Sweep lens with its run count; the runs start as the RunManager says, each its variant, grouped', async () => {
    const text = 'name: a\ntask: adding\ndata: { sequenceLength: 6 }\nmodel: { layers: [{ hidden: 4 }] }\ntrain: { steps: 6, batchSize: 4, evaluateEvery: 6 }\nsweep:\n  model.layers.0.hidden: [3, 5]\n  train.seed: [1, 2, 3]\n---\nname: b\ntask: copy\nmodel: { layers: [{ hidden: 4 }] }\n';
    const lenses = lensesFor(text, '/w/s.gatelab.yaml', { latest: () => undefined });
    expect(lenses.filter((l) => l.command === 'gatelab.sweep').map((l) => [l.line, l.title])).toEqual([[0, '$(beaker) Sweep (6 runs)']]);
    // the runs, as the command starts them: queued behind each other (gatelab.concurrentRuns: queue)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-host-sweep-'));
    const file = path.join(dir, 's.gatelab.yaml');
    fs.writeFileSync(file, text);
    const { readModel } = await import('../../src/engine/config/load');
    const { sweepSettings, variantText } = await import('../../src/engine/sweep');
    const { cfg, text: t } = readModel(file, 'a');
    const settings = sweepSettings(cfg.sweep!).slice(0, 2);
    const runs = new RunManager({ workerScript: WORKER, jobDefaults: () => ({ progressEveryMs: 0 }) });
    const started = settings.map((setting) => runs.start({ modelFile: file, modelName: 'a', modelText: variantText(cfg, t, setting), sweep: { name: 'a', setting } }));
    expect(started.map((r) => r.status)).toEqual(['running', 'queued']);
    await until(runs, () => started.every((r) => r.status === 'done'));
    expect(started.map((r) => r.sweep)).toEqual(settings.map((setting) => ({ name: 'a', setting, metric: 'mse' })));
    for (const r of started) {
      const rec = readRunRecord(r.dir)!;
      expect(rec.sweep).toEqual({ name: 'a', setting: r.sweep!.setting, metric: 'mse' });
      expect(fs.readFileSync(path.join(r.dir, 'model.gatelab.yaml'), 'utf8')).toContain(`hidden: ${r.sweep!.setting['model.layers.0.hidden']}`);
    }
    runs.dispose();
  });
});

describe('gradients through time of a non-language-model run (the dashboard\'s Compute)', () => {
  it('a worker job with the input as `gatelab probe --input` takes it: one connectivity row; no input is an error', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-host-through-'));
    const file = path.join(dir, 'a.gatelab.yaml');
    fs.writeFileSync(file, 'name: a\ntask: adding\ndata: { sequenceLength: 6 }\nmodel: { layers: [{ type: lstm, hidden: 4 }] }\ntrain: { steps: 6, batchSize: 4, evaluateEvery: 6 }\n');
    const runs = new RunManager({ workerScript: WORKER });
    const r = runs.start({ modelFile: file, modelName: 'a' });
    await until(runs, () => r.status === 'done');
    const job = { modelFile: file, modelName: 'a', init: r.checkpoint! };
    const t = await throughInWorker({ ...job, input: '0.3 0.5* 0.1 0.8*' }, { workerScript: WORKER });
    expect(t.tokens).toEqual(['0.3', '0.5*', '0.1', '0.8*']);
    expect(t.connectivity).toHaveLength(1);
    expect(t.cells).toEqual(['lstm']);
    expect(t.gradientFlow[0].c).toHaveLength(4);
    await expect(throughInWorker(job, { workerScript: WORKER })).rejects.toThrow(/give the input to probe/);
    runs.dispose();
  });
});

describe('Gatelab: Set Up CUDA', () => {
  it('says in its dialog what it will fetch: the provider, and the NVIDIA libraries only where the machine lacks them', () => {
    const b = MANIFEST.platforms['linux-x64'].builds[0];
    expect(describeTodo(plan(b, () => undefined), '1.29.0')).toBe(
      'The CUDA provider of ONNX Runtime 1.29.0 (Microsoft.ML.OnnxRuntime.Gpu.Linux 1.29.0, 191.7 MB) and the NVIDIA libraries this machine lacks (nvidia-cuda-runtime 13.0.96, 2.2 MB; nvidia-cublas 13.1.1.3, 423.1 MB; nvidia-curand 10.4.0.35, 59.5 MB; nvidia-cufft 12.0.0.61, 214.1 MB; nvidia-cuda-nvrtc 13.0.88, 90.2 MB; nvidia-cudnn-cu13 9.20.0.48, 366.2 MB).',
    );
    expect(describeTodo(plan(b, () => '/usr/lib/x'), '1.29.0')).toBe('The CUDA provider of ONNX Runtime 1.29.0 (Microsoft.ML.OnnxRuntime.Gpu.Linux 1.29.0, 191.7 MB); this machine has the NVIDIA libraries it needs.');
  });

  it('asks first, installs into the global storage from the registry with the digests checked, then runs the doctor; trainers get that folder', async () => {
    const reg = await startRegistry();
    const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-storage-'));
    const manifest = path.join(storage, 'manifest.json');
    fs.writeFileSync(manifest, JSON.stringify(reg.stored));
    const saved = { ...process.env };
    Object.assign(process.env, { GATELAB_CUDA_MANIFEST: manifest, GATELAB_NUGET_INDEX: reg.indexes.nuget, GATELAB_PYPI_INDEX: reg.indexes.pypi });
    delete process.env.GATELAB_CUDA_DIR;
    const ctx = {
      extensionPath: ROOT,
      extensionUri: vscode.Uri.file(ROOT),
      globalStorageUri: vscode.Uri.file(storage),
      subscriptions: [] as { dispose(): void }[],
      extension: { packageJSON: { version: '0.1.0' } },
    } as unknown as vscode.ExtensionContext;
    const app = new Gatelab(ctx);
    try {
      const cudaDir = path.join(storage, 'cuda');
      // declined: nothing is fetched
      recorded.answers.push(undefined);
      const n0 = reg.requests.length;
      expect(await vscode.commands.executeCommand('gatelab.setUpCuda')).toBe(false);
      expect(reg.requests.length).toBe(n0);
      expect(fs.existsSync(path.join(cudaDir, 'installed.json'))).toBe(false);
      // accepted: the set is installed and checked
      const k = recorded.messages.length;
      recorded.answers.push('Download and Install');
      const ok = await vscode.commands.executeCommand('gatelab.setUpCuda');
      const msgs = recorded.messages.slice(k);
      // (a machine with CUDA 13's runtime installed keeps its own libcudart)
      const todo = planInstall({ dir: cudaDir }).packages.filter((x) => !x.system);
      expect(msgs[0]).toEqual({ level: 'info', text: `Set up CUDA for Gatelab: download ${todo.length} packages (${fmtSize(todo.reduce((a, x) => a + x.spec.size, 0))})?` });
      expect(ok).toBe(false); // a made-up provider cannot run: the doctor says why
      expect(msgs[1].level).toBe('warn');
      expect(msgs[1].text).toMatch(/^Gatelab: the CUDA set is installed, but /);
      const inst = JSON.parse(fs.readFileSync(path.join(cudaDir, 'installed.json'), 'utf8'));
      expect(inst.packages.map((p: { name: string }) => p.name)).toEqual(todo.map((x) => x.spec.name));
      expect(recorded.output.some((l) => l.includes(`provider:  installed by \`gatelab cuda install\` (build cuda13)`))).toBe(true);
      // trainer and inference processes start with the installed set as provider folder and on the loader path
      const env = app.childEnv();
      expect(env.GATELAB_CUDA_DIR).toBe(cudaDir);
      expect(env.LD_LIBRARY_PATH?.split(':')[0]).toBe(path.join(cudaDir, inst.set));
    } finally {
      app.dispose();
      process.env = saved;
      await reg.close();
    }
  });
});
