/// <reference lib="dom" />
// The built notebook side panel (dist/webview/notebook.js) in headless Chromium under a strict
// nonce CSP, with a stubbed acquireVsCodeApi fed the messages the real host sends: runs trained
// here by real trainer processes (a language model and a copy with a changed learning rate, a
// forecaster, a classifier, one run still training), and inference results made by the real
// inference process. Cells, diffs, sparklines, inference (sample, classify, forecast), the duplicate
// editor, keyboard navigation, the compare selection, the virtual list with hundreds of runs and
// the state kept across a reload; light, dark and high-contrast screenshots in test-results/browser/.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleDir, launchChromium, THEMES, feed as feedPage } from './harness';
import type * as vscode from 'vscode';
import { Uri } from 'vscode';
import { NotebookViewProvider } from '../../src/host/notebook';
import { RunManager, RunInfo } from '../../src/host/runs';
import type { CellGroup, HostToNotebook, NotebookCell, NotebookToHost } from '../../src/shared/notebook';
import { stubFolders } from '../unit/vscode-stub';

const ROOT = path.resolve(__dirname, '../..');
const OUT = path.join(ROOT, 'test-results', 'browser');


let browser: Browser;
let pageDir: string;
/** what the host sent: the snapshot after training and inference */
let snapshot: Extract<HostToNotebook, { type: 'cells/didSnapshot' }>;
/** the inference results, as the host announced them */
let finished: Extract<HostToNotebook, { type: 'inference/didFinish' }>[] = [];
/** a cell update of the run that was still training */
let runningUpdate: Extract<HostToNotebook, { type: 'cells/didUpdate' }>;
let validation: Extract<HostToNotebook, { type: 'edit/didValidate' }>;

function until(pred: () => boolean, ms = 120_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => (pred() ? resolve() : Date.now() - t0 > ms ? reject(new Error('timed out')) : setTimeout(tick, 50));
    tick();
  });
}

/** Trains real runs and records what the host posts to the view. */
async function recordHost(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-nb-browser-'));
  stubFolders.root = dir;
  fs.writeFileSync(path.join(dir, 'tm.txt'), fs.readFileSync(path.join(ROOT, 'examples/data/timemachine.txt'), 'utf8').slice(0, 40000));
  fs.copyFileSync(path.join(ROOT, 'examples/data/airline-passengers.csv'), path.join(dir, 'air.csv'));
  fs.copyFileSync(path.join(ROOT, 'examples/data/sentiment/yelp_labelled.txt'), path.join(dir, 'yelp.txt'));
  const lm = path.join(dir, 'timemachine.gatelab.yaml');
  const lmText = (lr: number, steps: number) => `name: timemachine-char\ndata: { source: tm.txt, preprocess: letters, sequenceLength: 16, validation: 0.1 }\nmodel: { layers: [{ hidden: 32 }] }\ntrain: { steps: ${steps}, batchSize: 8, optimizer: { type: sgd, learningRate: ${lr} }, device: cpu }\n`;
  fs.writeFileSync(lm, lmText(1, 60));
  const other = path.join(dir, 'tasks.gatelab.yaml');
  fs.writeFileSync(
    other,
    `name: airline
task: forecast
data: { source: air.csv, column: Passengers, window: 12, horizon: 1, transform: log-difference, validation: 0.1667 }
model: { layers: [{ hidden: 16 }] }
train: { steps: 60, batchSize: 16, optimizer: { type: adam, learningRate: 0.01 }, device: cpu }
---
name: sentiment
task: classification
data: { source: yelp.txt, tokens: word, preprocess: letters, sequenceLength: 20, validation: 0.2 }
model: { embedding: 16, layers: [{ hidden: 16 }] }
train: { steps: 60, batchSize: 16, optimizer: { type: adam, learningRate: 0.01 }, device: cpu }
`,
  );
  const runs = new RunManager({ workerScript: path.join(ROOT, 'dist/worker.js'), concurrency: () => 'parallel' });
  const ctx = { extensionPath: ROOT, extensionUri: Uri.file(ROOT) } as unknown as vscode.ExtensionContext;
  const provider = new NotebookViewProvider(ctx, runs, { inferScript: path.join(ROOT, 'dist/infer.js'), train: async () => undefined, resume: async () => undefined });
  const done = (r: RunInfo) => r.status === 'done';
  const first = runs.start({ modelFile: lm, modelName: 'timemachine-char' });
  await until(() => done(first));
  fs.writeFileSync(lm, lmText(0.5, 60)); // the next run with another learning rate
  const second = runs.start({ modelFile: lm, modelName: 'timemachine-char' });
  const air = runs.start({ modelFile: other, modelName: 'airline' });
  const senti = runs.start({ modelFile: other, modelName: 'sentiment' });
  await until(() => done(second) && done(air) && done(senti));

  const posted: HostToNotebook[] = [];
  let listener: ((m: NotebookToHost) => unknown) | undefined;
  const view = {
    webview: {
      options: {},
      cspSource: 'x',
      html: '',
      asWebviewUri: (u: Uri) => u,
      postMessage: async (m: HostToNotebook) => posted.push(JSON.parse(JSON.stringify(m))) > 0,
      onDidReceiveMessage: (l: (m: NotebookToHost) => unknown) => ((listener = l), { dispose: () => undefined }),
    },
    onDidDispose: () => ({ dispose: () => undefined }),
  } as unknown as vscode.WebviewView;
  provider.resolveWebviewView(view);
  const send = (m: NotebookToHost) => provider.onMessage(m);
  await send({ type: 'webview/ready' });
  await send({ type: 'inference/run', runId: second.id, requestId: 1, request: { kind: 'sample', prefix: 'the time traveller', length: 80, temperature: 0.5 } });
  await send({ type: 'inference/run', runId: senti.id, requestId: 2, request: { kind: 'classify', text: 'the food was great and the staff were friendly' } });
  await send({ type: 'inference/run', runId: air.id, requestId: 3, request: { kind: 'forecast', at: 126, steps: 18 } });
  await send({ type: 'edit/validate', runId: second.id, requestId: 4, changes: { 'model.layers.0.hidden': '0' } });
  finished = posted.filter((m): m is Extract<HostToNotebook, { type: 'inference/didFinish' }> => m.type === 'inference/didFinish');
  const failed = posted.filter((m) => m.type === 'inference/didFail');
  if (failed.length) throw new Error(`inference failed: ${JSON.stringify(failed)}`);
  validation = posted.find((m) => m.type === 'edit/didValidate') as typeof validation;

  // one run still training
  fs.writeFileSync(lm, lmText(0.5, 100000));
  const live = runs.start({ modelFile: lm, modelName: 'timemachine-char' });
  await until(() => (live.last?.step ?? 0) > 30);
  provider.flush();
  runningUpdate = posted.filter((m): m is Extract<HostToNotebook, { type: 'cells/didUpdate' }> => m.type === 'cells/didUpdate' && m.cell.id === live.id && m.cell.status === 'running').at(-1)!;
  await runs.stop(live.id);
  await until(() => live.status === 'stopped');
  // the snapshot a fresh view gets now (with the inference results), without the live run
  posted.length = 0;
  runs.delete(live.id);
  await send({ type: 'webview/ready' });
  snapshot = posted.find((m) => m.type === 'cells/didSnapshot') as typeof snapshot;
  fs.writeFileSync(path.join(OUT, 'notebook-recorded.json'), JSON.stringify({ snapshot, finished, runningUpdate, validation }));
  provider.dispose();
  runs.dispose();
}

async function open(theme: string, state?: unknown, size = { width: 380, height: 1100 }): Promise<Page> {
  const page = await browser.newPage({ viewport: size });
  page.on('pageerror', (e) => {
    throw e;
  });
  await page.addInitScript((s) => {
    (window as unknown as { __initialState: unknown }).__initialState = s;
  }, state ?? null);
  await page.goto(`file://${pageDir}/${theme}.html`);
  await page.waitForFunction('window.__posted && window.__posted.some((m) => m.type === "webview/ready")');
  return page;
}

const feed = (page: Page, messages: HostToNotebook[]) => feedPage(page, messages, 150);

const posted = (page: Page) => page.evaluate(() => (window as unknown as { __posted: NotebookToHost[] }).__posted);
const cellSel = (id: string) => `article.cell[data-id="${id}"]`;
const cellsOf = (m: string) => snapshot.groups.flatMap((g) => g.cells).filter((c) => c.model === m);

beforeAll(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  await recordHost();
  pageDir = bundleDir('notebook');
  const nonce = 'T3stN0nce0123456789abcdefABCDEF01';
  for (const [name, vars] of Object.entries(THEMES)) {
    const style = Object.entries(vars).map(([k, v]) => `${k}: ${v};`).join(' ');
    // the host's CSP: scripts only with the nonce, no inline styles, nothing from the network
    fs.writeFileSync(
      path.join(pageDir, `${name}.html`),
      `<!DOCTYPE html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src file: 'nonce-${nonce}'; script-src 'nonce-${nonce}';">
<link rel="stylesheet" href="notebook.css" nonce="${nonce}">
<style nonce="${nonce}">body { ${style} }</style></head>
<body class="vscode-${name}">
<div id="app" data-view="notebook"></div>
<script nonce="${nonce}">
  window.__posted = []; window.__states = []; window.__csp = [];
  document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
  window.acquireVsCodeApi = () => ({ postMessage: (m) => window.__posted.push(m), getState: () => window.__initialState || undefined, setState: (s) => window.__states.push(JSON.parse(JSON.stringify(s))) });
</script>
<script nonce="${nonce}" src="notebook.js"></script>
</body></html>`,
    );
  }
  browser = await launchChromium();
}, 1_800_000);

afterAll(async () => {
  await browser?.close();
});

describe('notebook side panel webview', () => {
  it('shows the recorded runs as cells grouped by model file, with diffs, metrics, sparklines, samples and live progress', async () => {
    expect(finished.map((f) => f.entry.kind)).toEqual(['sample', 'classify', 'forecast']);
    const [lm1, lm2] = cellsOf('timemachine-char');
    for (const theme of ['dark', 'light', 'high-contrast']) {
      const page = await open(theme);
      await feed(page, [snapshot, runningUpdate]);
      // groups: the classifier's and forecaster's file, then the language model's (its live run is the newest)
      const groups = await page.locator('.group .group-toggle').allInnerTexts();
      expect(groups).toEqual(['▾ tasks.gatelab.yaml', '▾ timemachine.gatelab.yaml']);
      expect(await page.locator('article.cell').count()).toBe(5);
      // the second language-model run says what changed
      const c2 = page.locator(cellSel(lm2.id));
      expect(await c2.locator('.diff').innerText()).toMatch(/vs previous run:\s*learningRate 1 → 0\.5/);
      expect(await page.locator(cellSel(lm1.id)).locator('.diff').count()).toBe(0);
      expect(await c2.locator('.badge').innerText()).toBe('done');
      expect(await c2.locator('.metrics').innerText()).toMatch(/ppl\s*\d+\.\d\d/);
      expect(await c2.locator('.meta').innerText()).toMatch(/^cpu · \d+s · \d{4}-\d\d-\d\d \d\d:\d\d$/);
      const d = await c2.locator('svg.spark path').getAttribute('d');
      expect(d!.split('L').length).toBeGreaterThan(50);
      // its latest sample is the inference result
      expect(await c2.locator('.latest').innerText()).toContain('the time traveller');
      // the classifier and the forecaster show their own metrics
      expect(await page.locator(cellSel(cellsOf('sentiment')[0].id)).locator('.metrics').innerText()).toMatch(/acc\s*\d+\.\d%/);
      expect(await page.locator(cellSel(cellsOf('airline')[0].id)).locator('.metrics').innerText()).toMatch(/rmse\s*\d/);
      // the live run: a progress bar, steps and the stop button instead of re-run and delete
      const live = page.locator(cellSel(runningUpdate.cell.id));
      expect(await live.locator('[role=progressbar]').getAttribute('aria-valuenow')).toMatch(/^\d+$/);
      expect(await live.locator('.small').first().innerText()).toMatch(/^step \d+\/\d+ · .*loss \d\.\d{3}/);
      expect(await live.getByRole('button').allInnerTexts()).toEqual(['Dashboard', 'Stop', 'Duplicate…', 'Source']);
      // open the inference parts of the three finished kinds for the picture
      for (const [id, label] of [[lm2.id, 'Sample'], [cellsOf('sentiment')[0].id, 'Classify'], [cellsOf('airline')[0].id, 'Forecast']]) {
        await page.locator(cellSel(id)).locator('.actions button', { hasText: new RegExp(`^${label}$`) }).click();
      }
      const series = (await posted(page)).filter((m) => m.type === 'series/get');
      expect(series).toEqual([{ type: 'series/get', runId: cellsOf('airline')[0].id }]);
      await feed(page, [{ type: 'series/didLoad', runId: cellsOf('airline')[0].id, values: airline(), validStart: 120 }]);
      expect(await page.locator('.bar').count()).toBe(2);
      expect(await page.locator('svg.fchart path.forecast').getAttribute('d')).toMatch(/^M[\d.]+ [\d.]+(L[\d.]+ [\d.]+){18}$/);
      expect(await page.locator('svg.overview rect.window').count()).toBe(1);
      expect(await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp)).toEqual([]);
      await page.screenshot({ path: path.join(OUT, `notebook-${theme}.png`), fullPage: true });
      // a failed run: its error, no inference, and it can be deleted
      const failed: NotebookCell = { ...lm1, id: 'failed-run', status: 'failed', error: 'the trainer process was killed by SIGKILL before finishing\nstack…', metrics: [], hasCheckpoint: false, latest: undefined, started: runningUpdate.cell.started + 1 };
      await page.locator('.scroller').evaluate((s) => (s.scrollTop = s.scrollHeight));
      await page.waitForTimeout(100);
      await page.screenshot({ path: path.join(OUT, `notebook-${theme}-end.png`) });
      await feed(page, [{ type: 'cells/didUpdate', cell: failed }]);
      // at the end of the list, a new run is followed into view
      const f = page.locator(cellSel('failed-run'));
      expect(await f.evaluate((e) => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight + 1; })).toBe(true);
      expect(await f.locator('[role=alert]').innerText()).toBe('the trainer process was killed by SIGKILL before finishing');
      expect(await f.locator('.badge').innerText()).toBe('failed');
      expect(await f.getByRole('button').allInnerTexts()).toEqual(['Dashboard', 'Re-run', 'Duplicate…', 'Source', 'Delete']);
      await page.close();
    }
  });

  it('a run still reading a big corpus: the read\'s progress and time left, and Stop (which cancels the read)', async () => {
    const page = await open('dark');
    const reading: NotebookCell = { ...runningUpdate.cell, id: 'reading-run', progress: undefined, reading: { file: 'wiki.txt', fraction: 0.423, remainingMs: 75_000 }, started: runningUpdate.cell.started + 2 };
    await feed(page, [snapshot, { type: 'cells/didUpdate', cell: reading }]);
    const rd = page.locator(cellSel('reading-run'));
    expect(await rd.locator('.badge').innerText()).toBe('reading data');
    expect(await rd.locator('[role=progressbar]').getAttribute('aria-valuenow')).toBe('42');
    expect(await rd.locator('.small').first().innerText()).toMatch(/^reading wiki\.txt 42% · 1:15 left$/);
    await rd.getByRole('button', { name: /^Stop/ }).click();
    expect((await posted(page)).filter((m) => m.type !== 'webview/ready').at(-1)).toEqual({ type: 'cell/stop', runId: 'reading-run' });
    await page.screenshot({ path: path.join(OUT, 'notebook-reading.png') });
    await page.close();
  });

  it('a sweep: its runs in a group of their own with each setting\'s metric over the seeds; Compare runs overlays them', async () => {
    const page = await open('dark');
    const base = cellsOf('timemachine-char')[0];
    const values = [[3.1, 3.3, 3.2], [2.9, 3.0, 3.1]];
    const sweepCells: NotebookCell[] = [0, 1].flatMap((fb) =>
      [1, 2, 3].map((seed, i): NotebookCell => ({ ...base, id: `sw-${fb}-${seed}`, started: base.started + 1000 + 10 * (3 * fb + i), sweep: { name: 'tm', setting: { 'model.layers.0.forgetBias': fb, 'train.seed': seed }, metric: 'validLoss', value: values[fb][i] } })),
    );
    const group = { modelFile: `${base.modelFile}\u0000sweep\u0000tm`, fileLabel: 'sweep tm · timemachine.gatelab.yaml', cells: sweepCells };
    await feed(page, [{ ...snapshot, groups: [...snapshot.groups, group] }]);
    const sg = page.locator('.sweep-group');
    expect(await sg.locator('.group-toggle').innerText()).toBe('▾ sweep tm · timemachine.gatelab.yaml');
    expect(await sg.locator('table.sweep thead th').allInnerTexts()).toEqual(['forgetBias', 'runs', 'validLoss (mean ± std)']);
    const rows = await sg.locator('table.sweep tbody tr').evaluateAll((trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent)));
    expect(rows).toEqual([
      ['0', '3', '3.2 ± 0.1'],
      ['1', '3', '3 ± 0.1'],
    ]);
    expect(await page.locator(cellSel('sw-1-2')).locator('.sweep-setting').innerText()).toBe('forgetBias 1 · seed 2');
    await sg.getByRole('button', { name: 'Compare runs' }).click();
    expect((await posted(page)).filter((m) => m.type === 'cells/compare')).toEqual([{ type: 'cells/compare', runIds: sweepCells.map((c) => c.id) }]);
    await page.screenshot({ path: path.join(OUT, 'notebook-sweep.png'), fullPage: true });
    await page.close();
  });

  it('samples in place: type a prefix, run it, see the result; classify and forecast the same way', async () => {
    const [, lm2] = cellsOf('timemachine-char');
    const page = await open('dark');
    await feed(page, [snapshot]);
    const cell = page.locator(cellSel(lm2.id));
    await cell.getByRole('button', { name: /Sample with this run's checkpoint/ }).click();
    await cell.getByLabel('Prefix to continue').fill('the machine');
    await cell.getByLabel('Temperature (0 = greedy)').fill('0');
    await cell.getByLabel('Length in tokens').fill('40');
    await cell.locator('.infer-form button[type=submit]').click();
    const req = (await posted(page)).filter((m) => m.type === 'inference/run').at(-1) as Extract<NotebookToHost, { type: 'inference/run' }>;
    expect(req).toMatchObject({ runId: lm2.id, request: { kind: 'sample', prefix: 'the machine', temperature: 0, length: 40 } });
    expect(await cell.locator('.infer-form button[type=submit]').isDisabled()).toBe(true);
    const entry = { ...finished[0].entry, id: 'new', prefix: 'the machine', text: 'the machine was a strange thing', time: Date.now() };
    await feed(page, [{ type: 'inference/didFinish', runId: lm2.id, requestId: req.requestId, entry }]);
    expect(await cell.locator('.result').first().innerText()).toContain('the machine was a strange thing');
    expect(await cell.locator('.result').count()).toBe(2);
    expect(await cell.locator('.infer-form button[type=submit]').isDisabled()).toBe(false);
    // a failure is shown where it happened
    await cell.locator('.infer-form button[type=submit]').click();
    const req2 = (await posted(page)).filter((m) => m.type === 'inference/run').at(-1) as Extract<NotebookToHost, { type: 'inference/run' }>;
    await feed(page, [{ type: 'inference/didFail', runId: lm2.id, requestId: req2.requestId, message: 'the prefix "123" has no tokens after preprocessing' }]);
    expect(await cell.locator('[role=alert]').innerText()).toMatch(/no tokens/);
    // Ctrl+Enter in the prefix runs it too
    await cell.getByLabel('Prefix to continue').press('Control+Enter');
    expect((await posted(page)).filter((m) => m.type === 'inference/run').length).toBe(3);

    // classification: a sentence
    const s = page.locator(cellSel(cellsOf('sentiment')[0].id));
    await s.getByRole('button', { name: /^Classify/ }).click();
    await s.getByLabel('Sentence to classify').fill('terrible service');
    await s.getByLabel('Sentence to classify').press('Enter');
    expect((await posted(page)).at(-1)).toMatchObject({ type: 'inference/run', request: { kind: 'classify', text: 'terrible service' } });
    const bars = await s.locator('.bar').evaluateAll((els) => els.map((e) => [e.getAttribute('aria-label'), (e.querySelector('.fill') as HTMLElement).style.width]));
    const probs = (finished[1].entry as Extract<typeof finished[1]['entry'], { kind: 'classify' }>).probabilities;
    expect(bars).toEqual(probs.map((p) => [`${p.label}: ${(100 * p.p).toFixed(1)}%`, `${(100 * p.p).toFixed(1)}%`]));

    // forecast: move the window, choose the length
    const f = page.locator(cellSel(cellsOf('airline')[0].id));
    await f.getByRole('button', { name: /^Forecast/ }).click();
    await feed(page, [{ type: 'series/didLoad', runId: cellsOf('airline')[0].id, values: airline(), validStart: 120 }]);
    const slider = f.getByLabel('Forecast from index (the window ends before it)');
    expect(await slider.inputValue()).toBe('120');
    await slider.focus();
    for (let i = 0; i < 4; i++) await page.keyboard.press('ArrowRight');
    await f.getByLabel('Values to forecast').fill('6');
    await f.locator('.infer-form button[type=submit]').click();
    expect((await posted(page)).at(-1)).toMatchObject({ type: 'inference/run', request: { kind: 'forecast', at: 124, steps: 6 } });
    await page.close();
  });

  it('duplicate with edits: the schema at once, the host\'s validation on the key, then the copy is trained', async () => {
    const [, lm2] = cellsOf('timemachine-char');
    const page = await open('light');
    await feed(page, [snapshot]);
    const cell = page.locator(cellSel(lm2.id));
    await cell.getByRole('button', { name: /^Duplicate/ }).click();
    const lr = cell.getByLabel('train.optimizer.learningRate');
    expect(await lr.inputValue()).toBe('0.5');
    const hidden = cell.getByLabel('model.layers.0.hidden');
    await hidden.fill('0');
    // the schema's minimum, at once
    expect(await cell.locator('.edit-row.invalid .error').innerText()).toBe('at least 1');
    await page.waitForTimeout(400);
    const v = (await posted(page)).filter((m) => m.type === 'edit/validate').at(-1) as Extract<NotebookToHost, { type: 'edit/validate' }>;
    expect(v).toMatchObject({ runId: lm2.id, changes: { 'model.layers.0.hidden': '0' } });
    await feed(page, [{ ...validation, runId: lm2.id, requestId: v.requestId }]);
    expect(await cell.locator('.edit-row.invalid .error').innerText()).toBe('0 is below the minimum 1 (use a value ≥ 1)');
    expect(await cell.getByRole('button', { name: /^Add a copy/ }).isDisabled()).toBe(true);
    await hidden.fill('64');
    await lr.fill('0.25');
    await page.waitForTimeout(400);
    const v2 = (await posted(page)).filter((m) => m.type === 'edit/validate').at(-1) as Extract<NotebookToHost, { type: 'edit/validate' }>;
    expect(v2.changes).toEqual({ 'model.layers.0.hidden': '64', 'train.optimizer.learningRate': '0.25' });
    await feed(page, [{ type: 'edit/didValidate', runId: lm2.id, requestId: v2.requestId, problems: [] }]);
    expect(await cell.locator('.edit-row.changed').count()).toBe(2);
    // another key from the schema's list
    await cell.getByLabel('Add a key to change').fill('model.dropout');
    await cell.getByLabel('Add a key to change').press('Enter');
    expect(await cell.getByLabel('model.dropout').count()).toBe(1);
    await cell.getByRole('button', { name: /^Add a copy/ }).click();
    const dup = (await posted(page)).at(-1) as Extract<NotebookToHost, { type: 'edit/duplicate' }>;
    expect(dup).toMatchObject({ type: 'edit/duplicate', runId: lm2.id, mode: 'new-model', changes: { 'model.layers.0.hidden': '64', 'train.optimizer.learningRate': '0.25' } });
    await page.screenshot({ path: path.join(OUT, 'notebook-duplicate-light.png'), fullPage: true });
    await feed(page, [{ type: 'edit/didDuplicate', runId: lm2.id, requestId: dup.requestId, newModel: 'timemachine-char-2' }]);
    expect(await cell.locator('.editor').count()).toBe(0);
    await page.close();
  });

  it('keyboard: arrows move between cells, Space selects for comparison, Enter opens the dashboard; actions post typed messages', async () => {
    const ids = snapshot.groups.flatMap((g) => g.cells.map((c) => c.id));
    const page = await open('dark');
    await feed(page, [snapshot]);
    await page.locator(cellSel(ids[0])).focus();
    await page.keyboard.press('ArrowDown');
    expect(await page.evaluate(() => (document.activeElement as HTMLElement).dataset.id)).toBe(ids[1]);
    await page.keyboard.press(' ');
    await page.keyboard.press('End');
    expect(await page.evaluate(() => (document.activeElement as HTMLElement).dataset.id)).toBe(ids[ids.length - 1]);
    await page.keyboard.press(' ');
    await page.keyboard.press('ArrowUp');
    expect(await page.evaluate(() => (document.activeElement as HTMLElement).dataset.id)).toBe(ids[ids.length - 2]);
    // only the focused cell is in the tab order
    expect(await page.locator('article.cell[tabindex="0"]').count()).toBe(1);
    await page.keyboard.press('Enter');
    expect((await posted(page)).at(-1)).toEqual({ type: 'cell/openDashboard', runId: ids[ids.length - 2] });
    await page.getByRole('button', { name: 'Compare the selected runs in one dashboard' }).click();
    expect((await posted(page)).at(-1)).toEqual({ type: 'cells/compare', runIds: [ids[1], ids[ids.length - 1]] });
    const c = page.locator(cellSel(ids[0]));
    for (const [name, type] of [[/^Train .* again/, 'cell/rerun'], [/^Show .* in its model file/, 'cell/revealSource'], [/^Delete this run/, 'cell/delete'], [/^Open the dashboard/, 'cell/openDashboard']] as const) {
      await c.getByRole('button', { name }).click();
      expect((await posted(page)).at(-1)).toEqual({ type, runId: ids[0] });
    }
    // every button has an accessible name
    const unnamed = await page.locator('button').evaluateAll((bs) => bs.filter((b) => !(b.getAttribute('aria-label') || b.textContent?.trim())).length);
    expect(unnamed).toBe(0);
    // removal and filtering
    await feed(page, [{ type: 'cells/didRemove', runId: ids[0] }]);
    expect(await page.locator(cellSel(ids[0])).count()).toBe(0);
    await page.getByLabel('Filter runs by model, file or status').fill('sentiment');
    expect(await page.locator('article.cell').count()).toBe(1);
    expect(await page.locator('.count').innerText()).toBe(`1 of ${ids.length - 1} runs`);
    await page.close();
  });

  it('hundreds of runs: only the cells in view are in the DOM; scrolling and End reach the last; state survives a reload', async () => {
    const base = snapshot.groups.flatMap((g) => g.cells);
    const many: NotebookCell[] = Array.from({ length: 600 }, (_, i) => ({ ...base[i % base.length], id: `run-${String(i).padStart(4, '0')}`, started: 1_700_000_000_000 + i * 60_000, modelFile: `/w/file${i % 3}.gatelab.yaml`, fileLabel: `file${i % 3}.gatelab.yaml` }));
    const groups: CellGroup[] = [0, 1, 2].map((k) => ({ modelFile: `/w/file${k}.gatelab.yaml`, fileLabel: `file${k}.gatelab.yaml`, cells: many.filter((c) => c.modelFile === `/w/file${k}.gatelab.yaml`) }));
    const lastLm = many.filter((c) => c.fileLabel === 'file2.gatelab.yaml' && c.task === 'language-model' && c.hasCheckpoint).at(-1)!.id;
    const page = await open('dark', undefined, { width: 380, height: 900 });
    const t0 = Date.now();
    await feed(page, [{ ...snapshot, groups }]);
    const ms = Date.now() - t0;
    const inDom = await page.locator('article.cell').count();
    expect(inDom).toBeGreaterThan(3);
    expect(inDom).toBeLessThan(30);
    expect(await page.locator('.count').innerText()).toBe('600 runs');
    // a fresh view starts at the end (newest last)
    expect(await page.locator(cellSel('run-0599')).count()).toBe(1);
    const setsize = await page.locator('article.cell').first().getAttribute('aria-setsize');
    expect(setsize).toBe('600');
    // scroll to the top: the first cells, still few in the DOM
    await page.locator('.scroller').evaluate((s) => (s.scrollTop = 0));
    await page.waitForTimeout(200);
    expect(await page.locator(cellSel('run-0000')).count()).toBe(1);
    expect(await page.locator('article.cell').count()).toBeLessThan(30);
    // keyboard End from the first cell reaches the last one
    await page.locator(cellSel('run-0000')).focus();
    await page.keyboard.press('End');
    await page.waitForTimeout(100);
    expect(await page.evaluate(() => (document.activeElement as HTMLElement).dataset.id)).toBe('run-0599');
    console.log(`600 runs: rendered ${inDom} cells in ${ms} ms`);
    // open a cell's sample part, scroll halfway; a reload with the saved state restores both
    await page.locator(cellSel(lastLm)).getByRole('button', { name: /^Sample/ }).click();
    await page.locator(cellSel(lastLm)).getByLabel('Prefix to continue').fill('kept draft');
    await page.locator('.scroller').evaluate((s) => (s.scrollTop = 20000));
    await page.waitForTimeout(500);
    const state = await page.evaluate(() => (window as unknown as { __states: unknown[] }).__states.at(-1));
    expect(state).toMatchObject({ scrollTop: 20000, infer: [lastLm], drafts: { [lastLm]: { prefix: 'kept draft' } } });
    await page.close();
    const again = await open('dark', state, { width: 380, height: 900 });
    await feed(again, [{ ...snapshot, groups }]);
    expect(await again.locator('.scroller').evaluate((s) => s.scrollTop)).toBe(20000);
    await again.locator('.scroller').evaluate((s) => (s.scrollTop = s.scrollHeight));
    await again.waitForTimeout(300);
    expect(await again.locator(cellSel(lastLm)).getByLabel('Prefix to continue').inputValue()).toBe('kept draft');
    await again.screenshot({ path: path.join(OUT, 'notebook-600-runs.png') });
    await again.close();
  });
});

function airline(): number[] {
  return fs
    .readFileSync(path.join(ROOT, 'examples/data/airline-passengers.csv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => Number(l.split(',')[1]));
}
