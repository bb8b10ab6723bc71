// The real-editor tier: the packaged VSIX installed into code-server (real VS Code in the browser),
// driven in Debian's Chromium by playwright-core. A new user's first minute: open an example, click
// ▶ Train above the model, watch the run finish, the status bar update and the dashboard open.
// Screenshots are kept in test-results/e2e/. `test/e2e/install.sh` installs what this needs.

import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, Browser, Frame, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { install, run } from './proc';
import { providerTarball, Registry, startRegistry } from '../unit/cuda-registry';

const ROOT = path.resolve(__dirname, '../..');
const OUT = path.join(ROOT, 'test-results', 'e2e');
const VSIX = path.join(ROOT, 'dist', 'gatelab-linux-x64.vsix');

let env: Record<string, string> = {};
let server: ChildProcess | undefined;
let browser: Browser | undefined;
let page: Page;
let workspace: string;
let extensionsDir = '/nonexistent';
let serverLog = '';
let userDataDir = '';
/** a NuGet/PyPI/npm registry on 127.0.0.1 serving the real CUDA 13 provider from npm, for Set Up CUDA */
let cudaRegistry: Registry | undefined;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: path.join(OUT, `${name}.png`) });
}

async function waitForHttp(url: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`code-server did not answer at ${url}:\n${serverLog.slice(-3000)}`);
}

async function openFromExplorer(name: string): Promise<void> {
  // the Explorer may be behind another view container (the Gatelab side panel)
  if (!(await page.locator('.explorer-folders-view').first().isVisible().catch(() => false))) await page.locator('.activitybar [aria-label^="Explorer"]').first().click({ force: true }); // its badge covers the icon
  const row = page.locator('.explorer-folders-view .monaco-list-row', { hasText: name }).first();
  // a file the test just wrote shows when the file watcher reports it; under load, refresh the Explorer
  for (let i = 0; ; i++) {
    try {
      await row.waitFor({ timeout: 20_000 });
      break;
    } catch (e) {
      if (i === 2) throw e;
      await runCommand('File: Refresh Explorer');
    }
  }
  await row.dblclick();
  await page.locator('.tab', { hasText: name }).first().waitFor({ timeout: 30_000 });
}

/** The frame of the dashboard webview (VS Code nests each webview in two iframes). */
async function dashboardFrame(model?: string): Promise<Frame> {
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    for (const f of page.frames()) {
      try {
        if (await f.$('#app[data-run]') && (!model || (await f.locator('h1').first().innerText().catch(() => '')) === model)) return f;
      } catch {
        // frame detached
      }
    }
    await page.waitForTimeout(500);
  }
  throw new Error('the dashboard webview did not appear');
}

/** The frame of the Gatelab side panel's webview. */
async function notebookFrame(): Promise<Frame> {
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    for (const f of page.frames()) if (await f.$('#app[data-view="notebook"]').catch(() => null)) return f;
    await page.waitForTimeout(500);
  }
  throw new Error('the Gatelab side panel did not appear');
}

/** The Gatelab side panel, opened, its runs filtered by `filter`. */
async function sidePanel(filter: string): Promise<Frame> {
  // its icon toggles the side bar: click it only when the panel is not showing (a reload restores it)
  if (!(await page.locator('.part.sidebar .title-label', { hasText: /Gatelab/i }).first().isVisible().catch(() => false))) await page.locator('.activitybar [aria-label^="Gatelab"]').first().click();
  const frame = await notebookFrame();
  await frame.getByLabel('Filter runs by model, file or status').fill(filter);
  return frame;
}

/** A run's cell in the Gatelab side panel (the panel opened, the runs filtered by `filter`). */
async function runCell(filter: string, id: string) {
  const frame = await sidePanel(filter);
  const cell = frame.locator(`article.cell[data-id="${id}"]`);
  await cell.waitFor({ timeout: 60_000 });
  return cell;
}

/** Trainer processes of this workspace still running. */
function trainersLeft(): string[] {
  // the trainer is dist/worker.js of the extension as code-server installed it
  return execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('worker.js') && l.includes(extensionsDir));
}

/** A CodeLens of the editor that has focus (with two groups, `.first()` alone may hit the other one). */
function lens(title: string | RegExp) {
  // a string is the whole title after its icon (Playwright's hasText alone would let 'Stop' match 'stopped · just now')
  const hasText = typeof title === 'string' ? new RegExp(`^\\s*${title}\\s*$`) : title;
  return page.locator('.editor-group-container.active .codelens-decoration a', { hasText });
}

/** The quick input box (showInputBox): waits for it, types, presses Enter. */
async function answerInputBox(text: string): Promise<void> {
  const input = page.locator('.quick-input-widget input').first();
  await input.waitFor({ state: 'visible', timeout: 30_000 });
  await input.fill(text);
  await input.press('Enter');
}

/** Runs a command from the Command Palette, clicking its row once the list shows it. */
async function runCommand(title: string): Promise<void> {
  // right after start the extension's commands may not be registered yet: ask again
  for (let i = 0; ; i++) {
    await page.keyboard.press('Control+Shift+P');
    const input = page.locator('.quick-input-widget input').first();
    await input.waitFor({ state: 'visible', timeout: 30_000 });
    await input.fill(`>${title}`);
    const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first();
    try {
      await row.click({ timeout: 10_000 });
      return;
    } catch (e) {
      if (i === 5) throw e;
      await page.keyboard.press('Escape');
      await page.waitForTimeout(2000);
    }
  }
}

/** The run records of the workspace, oldest first. */
function runRecords(): { id: string; model: string; status: string; checkpoint?: string }[] {
  const dir = path.join(workspace, '.gatelab', 'runs');
  return fs
    .readdirSync(dir)
    .filter((d) => fs.existsSync(path.join(dir, d, 'run.json')))
    .map((d) => ({ id: d, ...JSON.parse(fs.readFileSync(path.join(dir, d, 'run.json'), 'utf8')) }))
    .sort((a, b) => String(a.started ?? a.id).localeCompare(String(b.started ?? b.id)));
}

/** The text of the editor that has focus (Monaco keeps only visible lines in the DOM: short texts). */
async function activeEditorText(): Promise<string> {
  const lines = page.locator('.editor-group-container.active .monaco-editor .view-lines .view-line');
  await lines.first().waitFor({ timeout: 30_000 });
  return (await lines.allInnerTexts()).join('\n').replace(/\u00a0/g, ' ');
}

beforeAll(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  env = await install();
  // the VSIX a user would install
  await run('npm', ['run', 'package', '--silent'], { cwd: ROOT });
  expect(fs.existsSync(VSIX)).toBe(true);

  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-e2e-'));
  const userData = path.join(home, 'user-data');
  const extensions = path.join(home, 'extensions');
  extensionsDir = extensions;
  workspace = path.join(home, 'workspace');
  fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
  fs.writeFileSync(
    path.join(userData, 'User', 'settings.json'),
    JSON.stringify({
      'workbench.startupEditor': 'none',
      'workbench.tips.enabled': false,
      'workbench.welcomePage.walkthroughs.openOnInstall': false,
      'security.workspace.trust.enabled': false,
      'telemetry.telemetryLevel': 'off',
      'extensions.autoCheckUpdates': false,
      'update.mode': 'none',
      'workbench.colorTheme': 'Default Dark Modern',
      'chat.disableAIFeatures': true,
      'workbench.secondarySideBar.defaultVisibility': 'hidden',
    }),
  );
  // the example a new user opens, shortened to two epochs so the tier stays quick
  fs.mkdirSync(path.join(workspace, 'data'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'examples/data/timemachine.txt'), path.join(workspace, 'data/timemachine.txt'));
  fs.writeFileSync(
    path.join(workspace, 'timemachine.gatelab.yaml'),
    fs.readFileSync(path.join(ROOT, 'examples/timemachine.gatelab.yaml'), 'utf8').replace(/epochs: \d+/, 'epochs: 2'),
  );

  // a classification model for the Predict lens: the three UCI files, one epoch
  fs.mkdirSync(path.join(workspace, 'data', 'sentiment'), { recursive: true });
  for (const f of fs.readdirSync(path.join(ROOT, 'examples/data/sentiment')))
    fs.copyFileSync(path.join(ROOT, 'examples/data/sentiment', f), path.join(workspace, 'data/sentiment', f));
  fs.writeFileSync(
    path.join(workspace, 'sentiment.gatelab.yaml'),
    fs.readFileSync(path.join(ROOT, 'examples/sentiment.gatelab.yaml'), 'utf8').replace(/epochs: \d+/, 'epochs: 2'),
  );

  // Set Up CUDA's registries: the real provider package (from npm) served on 127.0.0.1, in a
  // manifest whose default build is that provider alone
  cudaRegistry = await startRegistry({ npmTarball: await providerTarball() });
  const cudaManifest = path.join(home, 'cuda-manifest.json');
  fs.writeFileSync(cudaManifest, JSON.stringify({ ...cudaRegistry.stored, platforms: { 'linux-x64': { ...cudaRegistry.stored.platforms['linux-x64'], default: 'cuda13-npm' } } }));
  const cudaEnv = { GATELAB_CUDA_MANIFEST: cudaManifest, GATELAB_NUGET_INDEX: cudaRegistry.indexes.nuget, GATELAB_PYPI_INDEX: cudaRegistry.indexes.pypi, GATELAB_NPM_REGISTRY: cudaRegistry.indexes.npm };
  userDataDir = userData;

  const node = env.NODE24;
  const entry = env.CODE_SERVER;
  await run(node, [entry, '--user-data-dir', userData, '--extensions-dir', extensions, '--install-extension', VSIX, '--force']);
  const port = await freePort();
  server = spawn(
    node,
    [entry, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--user-data-dir', userData, '--extensions-dir', extensions, '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', workspace],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: home, ...cudaEnv } },
  );
  server.stdout!.on('data', (d) => (serverLog += d));
  server.stderr!.on('data', (d) => (serverLog += d));
  await waitForHttp(`http://127.0.0.1:${port}/healthz`, 120_000);

  browser = await chromium.launch({
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'],
  });
  page = await browser.newPage({ viewport: { width: 1500, height: 950 } });
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
  await page.waitForSelector('.monaco-workbench', { timeout: 120_000 });
}, 1_800_000); // the first run installs Chromium, Node 24 and code-server

afterEach(async (ctx) => {
  // a failing step leaves its picture
  if (page && ctx.task.result?.state === 'fail') await shot(`failed-${ctx.task.name.slice(0, 40).replace(/\W+/g, '-')}`).catch(() => undefined);
});

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  server?.kill('SIGTERM');
  await cudaRegistry?.close();
  fs.writeFileSync(path.join(OUT, 'code-server.log'), serverLog);
});

describe('Gatelab in real VS Code (code-server)', () => {
  it('opens an example, trains it from the CodeLens, updates the status bar and opens the dashboard', async () => {
    // open the model file from the Explorer, as a user would
    await openFromExplorer('timemachine.gatelab.yaml');
    const train = page.locator('.codelens-decoration a', { hasText: 'Train' }).first();
    await train.waitFor({ timeout: 90_000 });
    await shot('1-model-file-with-codelens');

    await train.click();
    // while training: the status bar shows the run; when done, its result
    const status = page.locator('.statusbar-item', { hasText: 'timemachine-char' }).first();
    await status.waitFor({ timeout: 60_000 });
    await shot('2-training');
    await page.locator('.statusbar-item', { hasText: 'ppl' }).first().waitFor({ timeout: 180_000 });
    await page.locator('.codelens-decoration a', { hasText: /ppl \d+\.\d\d/ }).first().waitFor({ timeout: 30_000 });
    const statusText = await page.locator('.statusbar-item', { hasText: 'ppl' }).first().innerText();
    expect(statusText).toMatch(/timemachine-char/);

    // the dashboard opened beside the editor with the loss chart drawn
    const tab = page.locator('.tab', { hasText: 'Gatelab: timemachine-char' }).first();
    await tab.waitFor({ timeout: 30_000 });
    const frame = await dashboardFrame();
    await frame.waitForSelector('.uplot canvas', { timeout: 30_000 });
    await frame.waitForFunction("document.querySelector('.status')?.textContent === 'done'", undefined, { timeout: 60_000 });
    const stats = await frame.locator('.stats').innerText();
    expect(stats).toMatch(/epoch 2 \/ 2/);
    expect(await frame.locator('.sample .text').count()).toBeGreaterThan(0);
    await shot('3-trained-dashboard');
    // the gate heatmaps, labelled with the gate names
    await frame.waitForSelector('.heatmap canvas', { timeout: 30_000 });
    expect(await frame.locator('.heatmap figcaption').allInnerTexts()).toEqual(['input gate i', 'forget gate f', 'output gate o', 'candidate g', 'cell c', 'hidden h']);
    await frame.locator('.gates').scrollIntoViewIfNeeded();
    await shot('3b-dashboard-gates');

    // the run was recorded in the workspace
    const runs = fs.readdirSync(path.join(workspace, '.gatelab', 'runs'));
    expect(runs).toHaveLength(1);
    const rec = JSON.parse(fs.readFileSync(path.join(workspace, '.gatelab', 'runs', runs[0], 'run.json'), 'utf8'));
    expect(rec.status).toBe('done');
  });

  it('samples from the CodeLens: a prefix in the input box, the text beside the model', async () => {
    await page.locator('.tab', { hasText: 'timemachine.gatelab.yaml' }).first().click();
    const sample = page.locator('.codelens-decoration a', { hasText: /^Sample$/ }).first();
    await sample.waitFor({ timeout: 30_000 });
    await sample.click();
    await answerInputBox('the time traveller ');
    // the sample opens in an untitled editor beside the model file, beginning with the prefix
    await page.locator('.tab', { hasText: /Untitled/ }).first().waitFor({ timeout: 60_000 });
    const text = await activeEditorText();
    expect(text).toMatch(/^the time traveller \S/);
    expect(text.length).toBeGreaterThan(100);
    expect(text.replace(/[a-z <>\n]/g, '')).toBe(''); // the vocabulary: lower-case letters, space, <unk>
    // sampled in a child process and kept with the run, for its cell in the side panel
    const run = runRecords().pop()!;
    const kept = fs.readFileSync(path.join(workspace, '.gatelab', 'runs', run.id, 'inference.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(kept.at(-1)).toMatchObject({ kind: 'sample', prefix: 'the time traveller ', length: 300 });
    expect(text.startsWith(kept.at(-1).text.slice(0, 40))).toBe(true);
    await shot('5-sample');
  });

  it('stops a run from the CodeLens: ■ Stop while it trains, a stopped run with its checkpoint after', async () => {
    fs.writeFileSync(
      path.join(workspace, 'timemachine.gatelab.yaml'),
      fs.readFileSync(path.join(workspace, 'timemachine.gatelab.yaml'), 'utf8').replace(/epochs: \d+/, 'epochs: 50'),
    );
    await page.locator('.tab', { hasText: 'timemachine.gatelab.yaml' }).first().click();
    await page.locator('.codelens-decoration a', { hasText: 'Train' }).first().click();
    // training: the status bar counts epochs and the lens offers Stop
    await page.locator('.statusbar-item', { hasText: /timemachine-char · epoch \d+\/50 · loss/ }).first().waitFor({ timeout: 120_000 });
    const stop = page.locator('.codelens-decoration a', { hasText: 'Stop' }).first();
    await stop.waitFor({ timeout: 30_000 });
    await shot('6-training-with-stop-lens');
    await stop.click();
    await page.locator('.codelens-decoration a', { hasText: 'Train' }).first().waitFor({ timeout: 60_000 });
    const last = runRecords().pop()!;
    expect(last.model).toBe('timemachine-char');
    expect(last.status).toBe('stopped');
    expect(fs.readdirSync(path.join(workspace, '.gatelab', 'runs', last.id)).some((f) => f.endsWith('.safetensors'))).toBe(true);
    // no trainer left behind
    expect(trainersLeft()).toEqual([]);
    await shot('7-stopped');
  });

  it('predicts with a classification model from the CodeLens', async () => {
    await openFromExplorer('sentiment.gatelab.yaml');
    await page.locator('.codelens-decoration a', { hasText: 'Train' }).first().click();
    await page.locator('.codelens-decoration a', { hasText: /acc \d/ }).first().waitFor({ timeout: 180_000 });
    const predict = page.locator('.codelens-decoration a', { hasText: /^Predict$/ }).first();
    await predict.waitFor({ timeout: 30_000 });
    await predict.click();
    await answerInputBox('the food was great and the staff were friendly');
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: /→ \d+ \(/ }).first();
    await toast.waitFor({ timeout: 60_000 });
    // its dashboard charts the validation accuracy by epoch
    const frame = await dashboardFrame('sentiment');
    await frame.waitForFunction("[...document.querySelectorAll('h2')].some((h) => h.textContent === 'Per epoch: accuracy (%)')", undefined, { timeout: 30_000 });
    expect(await frame.locator('.stats').innerText()).toMatch(/acc \d+\.\d%/);
    // and the confusion matrix of the validation part, 600 sentences
    await frame.locator('.results table.confusion').waitFor({ timeout: 30_000 });
    expect(await frame.locator('.results h2').innerText()).toMatch(/^Validation: accuracy \d+\.\d% on 600 examples$/);
    await frame.locator('.heatmap canvas').first().waitFor({ timeout: 30_000 });
    await frame.locator('.gates').scrollIntoViewIfNeeded();
    await shot('8b-sentiment-gates');
    expect(await toast.innerText()).toMatch(/"the food was great and the staff were friendly" → [01] \(0 \d+\.\d% · 1 \d+\.\d%\)/);
    const sentimentRun = runRecords().filter((r) => r.model === 'sentiment').pop()!;
    const kept = fs.readFileSync(path.join(workspace, '.gatelab', 'runs', sentimentRun.id, 'inference.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(kept.at(-1)).toMatchObject({ kind: 'classify', text: 'the food was great and the staff were friendly' });
    await shot('8-predict');
  });

  it('a window reload restores the open dashboards from the run records', async () => {
    const before = await page.locator('.tab', { hasText: 'Gatelab: ' }).allInnerTexts();
    expect(before.length).toBeGreaterThan(0);
    await page.keyboard.press('Control+Shift+P');
    await answerInputBox('>Developer: Reload Window');
    await page.waitForTimeout(3000);
    await page.waitForSelector('.monaco-workbench', { timeout: 120_000 });
    const tab = page.locator('.tab', { hasText: 'Gatelab: ' }).first();
    await tab.waitFor({ timeout: 60_000 });
    // every dashboard tab is back (hidden ones revive when shown)
    await expect.poll(async () => (await page.locator('.tab', { hasText: 'Gatelab: ' }).allInnerTexts()).sort(), { timeout: 30_000 }).toEqual([...before].sort());
    await tab.click();
    const frame = await dashboardFrame();
    await frame.waitForSelector('.uplot canvas', { timeout: 60_000 });
    expect(await frame.locator('.status').innerText()).toMatch(/done|stopped/);
    await shot('9-dashboard-after-reload');
  });

  it('shows a precise diagnostic for a misspelt key, never an exception popup', async () => {
    const file = path.join(workspace, 'broken.gatelab.yaml');
    fs.writeFileSync(file, 'name: broken\ndata: { source: data/timemachine.txt }\nmodel:\n  layers:\n    - hiden: 8\n');
    await openFromExplorer('broken.gatelab.yaml');
    await page.locator('.squiggly-error').first().waitFor({ timeout: 30_000 });
    await page.keyboard.press('Control+Shift+M');
    const problem = page.locator('.markers-panel .monaco-list-row', { hasText: 'unknown key "hiden"' }).first();
    await problem.waitFor({ timeout: 30_000 });
    expect(await problem.innerText()).toMatch(/did you mean "hidden"/);
    expect(await page.locator('.notifications-toasts .notification-toast', { hasText: /error|exception/i }).count()).toBe(0);
    await shot('4-diagnostics');
  });

  it('a misspelt name inside a cell equation: a squiggle under that name, the fix in the Problems panel', async () => {
    const file = path.join(workspace, 'mycell.gatelab.yaml');
    const eq = '        n: tanh(W x + U (f * hh) + b)';
    fs.writeFileSync(file, ['name: mycell', 'data: { source: data/timemachine.txt }', 'model:', '  layers:', '    - type: cell', '      hidden: 8', '      equations:', '        f: sigmoid(W x + U h + b)', eq, '        h: (1 - f) * h + f * n', '      state: [h]', ''].join('\n'));
    await openFromExplorer('mycell.gatelab.yaml');
    const squiggle = page.locator('.squiggly-error').first();
    await squiggle.waitFor({ timeout: 30_000 });
    const markers = page.locator('.markers-panel');
    if (!(await markers.isVisible())) await page.keyboard.press('Control+Shift+M');
    const problem = page.locator('.markers-panel .monaco-list-row', { hasText: 'unknown name "hh"' }).first();
    await problem.waitFor({ timeout: 30_000 });
    const text = await problem.innerText();
    expect(text).toMatch(/did you mean `h`\?/);
    // line 9, at the column of hh inside the equation string
    expect(text.replace(/\s+/g, ' ')).toContain(`[Ln 9, Col ${eq.indexOf('hh') + 1}]`);
    // the squiggle sits under "hh": as wide as two characters of the line it underlines
    const line = page.locator('.view-line', { hasText: 'U (f * hh)' }).first().locator('> span').first();
    const [sq, ln] = [(await squiggle.boundingBox())!, (await line.boundingBox())!];
    const charW = ln.width / eq.length;
    expect(Math.abs(sq.x - (ln.x + eq.indexOf('hh') * charW))).toBeLessThan(charW);
    expect(Math.abs(sq.width - 2 * charW)).toBeLessThan(charW);
    await shot('4b-cell-diagnostic');
  });

  it('the Gatelab side panel: every run a cell; sampling in place under the first run', async () => {
    // the activity bar's Gatelab container holds the notebook of runs
    await page.locator('.activitybar [aria-label^="Gatelab"]').first().click();
    const frame = await notebookFrame();
    const first = runRecords().find((r) => r.model === 'timemachine-char' && r.status === 'done')!;
    const cell = frame.locator(`article.cell[data-id="${first.id}"]`);
    await frame.getByLabel('Filter runs by model, file or status').fill('timemachine');
    await cell.waitFor({ timeout: 60_000 });
    await cell.scrollIntoViewIfNeeded();
    expect(await cell.locator('.badge').innerText()).toBe('done');
    expect(await cell.locator('.metrics').innerText()).toMatch(/ppl\s*\d+\.\d\d/);
    // the later (stopped) run of the same model says it is compared with this one
    expect(await frame.locator('article.cell', { hasText: 'stopped' }).locator('.diff').innerText()).toMatch(/vs previous run:.*epochs\s*2\s*→\s*50/s);
    await shot('10-side-panel');
    // type a prefix into the run's sample cell and run it: generated text appears in the cell
    await cell.getByRole('button', { name: /^Sample with this run's checkpoint/ }).click();
    await cell.getByLabel('Prefix to continue').fill('the time machine ');
    await cell.getByLabel('Length in tokens').fill('120');
    await cell.locator('.infer-form button[type=submit]').click();
    // (the cell also shows the sample the CodeLens took earlier from this run)
    const result = cell.locator('.result .sample-text', { hasText: /^the time machine / }).first();
    await result.waitFor({ timeout: 90_000 });
    const text = await result.innerText();
    expect(text).toMatch(/^the time machine \S/);
    expect(text.length).toBeGreaterThan(100);
    await cell.scrollIntoViewIfNeeded();
    await shot('11-side-panel-sample');
    // kept with the run
    const kept = fs.readFileSync(path.join(workspace, '.gatelab', 'runs', first.id, 'inference.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(kept.at(-1)).toMatchObject({ kind: 'sample', prefix: 'the time machine ', length: 120 });
  });

  it('a classification run stopped in its first epoch: its lens, the status bar and its cell still work; Resume continues it', async () => {
    // a slow classifier, so the stop comes inside the first epoch
    fs.writeFileSync(
      path.join(workspace, 'slow.gatelab.yaml'),
      fs.readFileSync(path.join(workspace, 'sentiment.gatelab.yaml'), 'utf8')
        .replace(/^name: .*$/m, 'name: slow-sentiment')
        .replace(/epochs: \d+/, 'epochs: 20\n  stepsPerRun: 2')
        .replace(/hidden: \d+/, 'hidden: 384'),
    );
    // one editor group, so the lenses below are slow.gatelab.yaml's
    await page.keyboard.press('Control+Shift+P');
    await answerInputBox('>View: Join All Editor Groups');
    await openFromExplorer('slow.gatelab.yaml');
    await lens('Train').first().click();
    await page.locator('.statusbar-item', { hasText: /slow-sentiment · epoch 1\/20/ }).first().waitFor({ timeout: 120_000 });
    await lens('Stop').first().click();
    await lens('Train').first().waitFor({ timeout: 60_000 });
    const rec = runRecords().filter((r) => r.model === 'slow-sentiment').pop()!;
    expect(rec.status).toBe('stopped');
    const epochLines = fs.readFileSync(path.join(workspace, '.gatelab', 'runs', rec.id, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"trainLoss"'));
    expect(epochLines).toEqual([]); // stopped inside its first epoch
    // the lens shows the stopped run's line, the status bar its model, and no error popped up
    await lens(/stopped · just now/).first().waitFor({ timeout: 30_000 });
    expect(await page.locator('.notifications-toasts', { hasText: /TypeError|Cannot read/ }).count()).toBe(0);
    await page.locator('.statusbar-item', { hasText: 'slow-sentiment' }).first().waitFor({ timeout: 30_000 });
    await shot('12-stopped-in-first-epoch');
    // the side panel: the cell says stopped and offers Resume, which continues the run in its folder
    const cell = await runCell('slow', rec.id);
    expect(await cell.locator('.badge').innerText()).toBe('stopped');
    await shot('13-side-panel-resume');
    await cell.getByRole('button', { name: /^Continue slow-sentiment where it stopped/ }).click();
    await page.locator('.statusbar-item', { hasText: /slow-sentiment · epoch 1\/20/ }).first().waitFor({ timeout: 120_000 });
    await expect.poll(() => JSON.parse(fs.readFileSync(path.join(workspace, '.gatelab', 'runs', rec.id, 'run.json'), 'utf8')).resumed?.length ?? 0, { timeout: 60_000 }).toBe(1);
    await page.locator('.tab', { hasText: 'slow.gatelab.yaml' }).first().click(); // the dashboard opened beside may have the focus
    await lens('Stop').first().click();
    await lens('Train').first().waitFor({ timeout: 60_000 });
    expect(runRecords().filter((r) => r.model === 'slow-sentiment')).toHaveLength(1); // resumed in place, no new run
  }, 300_000);

  it('reloading the window while a run trains: the trainer stops with a checkpoint, and the run comes back stopped', async () => {
    await page.locator('.tab', { hasText: 'slow.gatelab.yaml' }).first().click();
    await lens('Train').first().click();
    await page.locator('.statusbar-item', { hasText: /slow-sentiment · epoch 1\/20/ }).first().waitFor({ timeout: 120_000 });
    const rec = runRecords().filter((r) => r.model === 'slow-sentiment').pop()!;
    expect(rec.status).toBe('running');
    expect(trainersLeft()).toHaveLength(1); // the check below sees trainers when there are some
    await page.keyboard.press('Control+Shift+P');
    await answerInputBox('>Developer: Reload Window');
    await page.waitForTimeout(3000);
    await page.waitForSelector('.monaco-workbench', { timeout: 120_000 });
    const runDir = path.join(workspace, '.gatelab', 'runs', rec.id);
    await expect.poll(() => JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')).status, { timeout: 60_000 }).toBe('stopped');
    expect(fs.existsSync(path.join(runDir, 'model.safetensors'))).toBe(true);
    expect(fs.existsSync(path.join(runDir, 'train-state.safetensors'))).toBe(true);
    // the record is settled just before the process exits
    await expect.poll(() => trainersLeft(), { timeout: 15_000 }).toEqual([]);
    const cell = await runCell('slow', rec.id);
    expect(await cell.locator('.badge').innerText()).toBe('stopped');
    expect(await cell.getByRole('button', { name: /^Continue slow-sentiment/ }).count()).toBe(1);
    await shot('14-after-reload-stopped');
  }, 300_000);

  it('a sweep of 2 × 3 runs from the terminal: one group in the side panel with its table; Compare runs overlays them', async () => {
    fs.writeFileSync(
      path.join(workspace, 'sweep.gatelab.yaml'),
      'name: sw\ntask: adding\ndata: { sequenceLength: 8 }\nmodel: { layers: [{ type: lstm, hidden: 6 }] }\ntrain: { steps: 24, batchSize: 8, evaluateEvery: 12, optimizer: { type: adam, learningRate: 0.01 } }\nsweep:\n  model.layers.0.hidden: [4, 6]\n  train.seed: [1, 2, 3]\n',
    );
    const out = execFileSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'sweep', 'sweep.gatelab.yaml', '--quiet'], { cwd: workspace, encoding: 'utf8' });
    expect(JSON.parse(out.trim().split('\n').pop()!)).toMatchObject({ sweep: 'sw', runs: 6 });
    // the side panel shows the runs the terminal recorded, as one sweep group
    const frame = await sidePanel('sw');
    const group = frame.locator('.sweep-group');
    await group.waitFor({ timeout: 60_000 });
    await expect.poll(() => group.locator('.group .muted').innerText(), { timeout: 60_000 }).toMatch(/6 runs/);
    expect(await group.locator('.group-toggle').innerText()).toBe('▾ sweep sw · sweep.gatelab.yaml');
    // cell by cell (innerText joins a row's cells with tabs only where the table is laid out)
    expect(await group.locator('table.sweep tbody tr td:nth-child(1)').allTextContents()).toEqual(['4', '6']);
    expect(await group.locator('table.sweep tbody tr td:nth-child(2)').allTextContents()).toEqual(['3', '3']);
    expect((await group.locator('table.sweep tbody tr td:nth-child(3)').allTextContents()).every((t) => /^\d\.\d+ ± \d\.\d+$/.test(t))).toBe(true);
    await shot('15-sweep-side-panel');
    await group.getByRole('button', { name: 'Compare runs' }).click();
    const dash = await dashboardFrame('sw');
    await dash.locator('.u-legend').first().waitFor({ timeout: 30_000 });
    // the overlaid runs are labelled by their setting
    await expect.poll(async () => (await dash.locator('.u-legend th').allInnerTexts()).filter((t) => /hidden \d · seed \d/.test(t)).length, { timeout: 30_000 }).toBe(5);
    await shot('16-sweep-compared');
  }, 300_000);

  it('a torchrun run of the model exported as a PyTorch job appears in the side panel like any other run', async () => {
    const torch = execFileSync('bash', [path.join(ROOT, 'test/reference/ensure-torch.sh')], { encoding: 'utf8' }).trim();
    if (torch !== 'OK') {
      console.warn(`the torchrun e2e test is skipped: ${torch}`);
      return;
    }
    const runsDir = path.join(workspace, '.gatelab', 'runs');
    execFileSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'export', 'timemachine.gatelab.yaml', '--pytorch', 'tm-job', '--runs', runsDir], { cwd: workspace, encoding: 'utf8' });
    const before = new Set(fs.readdirSync(runsDir));
    execFileSync('torchrun', ['--redirects', '1', '--tee', '1', '--nproc_per_node', '2', path.join(workspace, 'tm-job', 'train.py'), '--steps', '4', '--device', 'cpu'], { cwd: workspace, encoding: 'utf8', stdio: 'pipe' });
    const id = fs.readdirSync(runsDir).find((d) => !before.has(d))!;
    expect(JSON.parse(fs.readFileSync(path.join(runsDir, id, 'run.json'), 'utf8'))).toMatchObject({ status: 'done', device: 'cpu × 2 (torchrun)' });
    const cell = await runCell('timemachine', id);
    await expect.poll(() => cell.locator('.badge').innerText(), { timeout: 60_000 }).toBe('done');
    expect(await cell.locator('.metrics').innerText()).toMatch(/ppl\s*\d+\.\d\d/);
    await cell.scrollIntoViewIfNeeded();
    await shot('17-torchrun-run');
  }, 300_000);

  it('Set Up CUDA: confirms the download, installs the provider into the global storage with progress, and the doctor names what the machine still lacks', async () => {
    await runCommand('Gatelab: Set Up CUDA');
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor({ timeout: 60_000 });
    expect(await dialog.innerText()).toMatch(/Set up CUDA for Gatelab: download 1 package \(179\.1 MB\)\?/);
    await shot('18-set-up-cuda-confirm');
    await dialog.getByRole('button', { name: 'Download and Install' }).click();
    const done = page.locator('.notifications-toasts .notification-toast', { hasText: 'the CUDA set is installed, but' });
    await done.waitFor({ timeout: 180_000 });
    const text = await done.innerText();
    expect(text).toMatch(/no NVIDIA driver here|the CUDA provider cannot load: libcu/);
    const cudaDir = path.join(userDataDir, 'User', 'globalStorage', 'gatelab.gatelab', 'cuda');
    const inst = JSON.parse(fs.readFileSync(path.join(cudaDir, 'installed.json'), 'utf8'));
    expect(inst).toMatchObject({ build: 'cuda13-npm', cuda: 13, onnxruntime: '1.29.0' });
    expect(fs.readdirSync(path.join(cudaDir, inst.set)).sort()).toEqual(['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so']);
    expect(cudaRegistry!.requests.some((q) => q.path.endsWith('.tgz'))).toBe(true);
    // the doctor's report sits in the Gatelab log
    await runCommand('Gatelab: Show Log');
    await page.locator('.output-view .view-lines', { hasText: 'libraries the provider needs' }).first().waitFor({ timeout: 30_000 });
    await shot('19-set-up-cuda-doctor');
    // the doctor now reports the installed provider; it offers the command again only where it can help (a machine with a driver)
    await runCommand('Gatelab: Run Doctor');
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'training runs on the CPU' }).first();
    await toast.waitFor({ timeout: 60_000 });
    expect(await toast.getByRole('button', { name: 'Set Up CUDA' }).count()).toBe(fs.existsSync('/proc/driver/nvidia/version') ? 1 : 0);
  }, 300_000);
});

describe('the VSIX', () => {
  it('holds the bundles, media, examples and only the linux-x64 onnxruntime binaries', () => {
    const list = execFileSync('unzip', ['-Z1', VSIX], { encoding: 'utf8' }).trim().split('\n');
    for (const f of [
      'extension/package.json',
      'extension/dist/extension.js',
      'extension/dist/worker.js',
      'extension/dist/cli.js',
      'extension/dist/webview/dashboard.js',
      'extension/dist/webview/dashboard.css',
      'extension/dist/webview/notebook.js',
      'extension/dist/webview/notebook.css',
      'extension/dist/infer.js',
      'extension/media/gatelab-activity.svg',
      'extension/media/gatelab.schema.json',
      'extension/examples/timemachine.gatelab.yaml',
      'extension/examples/data/timemachine.txt',
      'extension/node_modules/onnxruntime-node/dist/index.js',
      'extension/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node',
      'extension/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1',
      'extension/node_modules/onnxruntime-common/package.json',
    ])
      expect(list, f).toContain(f);
    const forbidden = list.filter((f) => /napi-v6\/(darwin|win32|linux\/arm64)|^extension\/(src|test|webview)\/|node_modules\/(vitest|typescript|esbuild|adm-zip|global-agent|playwright)/.test(f));
    expect(forbidden).toEqual([]);
  });
});
