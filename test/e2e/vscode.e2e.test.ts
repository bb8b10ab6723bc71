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

const ROOT = path.resolve(__dirname, '../..');
const OUT = path.join(ROOT, 'test-results', 'e2e');
const VSIX = path.join(ROOT, 'dist', 'gatelab-linux-x64.vsix');

let env: Record<string, string> = {};
let server: ChildProcess | undefined;
let browser: Browser | undefined;
let page: Page;
let workspace: string;
let serverLog = '';

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
  const row = page.locator('.explorer-folders-view .monaco-list-row', { hasText: name }).first();
  await row.waitFor({ timeout: 60_000 });
  await row.dblclick();
  await page.locator('.tab', { hasText: name }).first().waitFor({ timeout: 30_000 });
}

/** The frame of the dashboard webview (VS Code nests each webview in two iframes). */
async function dashboardFrame(): Promise<Frame> {
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    for (const f of page.frames()) {
      try {
        if (await f.$('#app[data-run]')) return f;
      } catch {
        // frame detached
      }
    }
    await page.waitForTimeout(500);
  }
  throw new Error('the dashboard webview did not appear');
}

beforeAll(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  const lines = execFileSync('bash', [path.join(__dirname, 'install.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  env = Object.fromEntries(lines.trim().split('\n').map((l) => l.split('=') as [string, string]));
  // the VSIX a user would install
  execFileSync('npm', ['run', 'package', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  expect(fs.existsSync(VSIX)).toBe(true);

  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-e2e-'));
  const userData = path.join(home, 'user-data');
  const extensions = path.join(home, 'extensions');
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

  const node = env.NODE24;
  const entry = env.CODE_SERVER;
  execFileSync(node, [entry, '--user-data-dir', userData, '--extensions-dir', extensions, '--install-extension', VSIX, '--force'], { stdio: 'inherit' });
  const port = await freePort();
  server = spawn(
    node,
    [entry, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--user-data-dir', userData, '--extensions-dir', extensions, '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', workspace],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: home } },
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
