/// <reference lib="dom" />
// The built dashboard webview in headless Chromium (playwright-core), with a stubbed
// acquireVsCodeApi, fed the messages of a real training run recorded here: charts and gate heatmaps
// render and update; light and dark screenshots are saved in test-results/browser/; a
// run of 1,000,000 steps opens through the host path (a downsampled window, finer windows on zoom)
// and stays interactive (figures printed and kept in test-results/browser/million-points.json).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleDir, dashboardPage, launchChromium, THEMES, feed } from './harness';
import { TrainerProcess } from '../../src/engine/runtime/client';
import { toDashboard } from '../../src/host/dashboardmsg';
import type { DashboardToHost, HostToDashboard, RunHeader } from '../../src/shared/dashboard';
import { MetricsCache, snapshotSteps, windowAnswer } from '../../src/host/metricseries';
import { appendSteps } from '../../src/engine/train/runrecord';
import type { FromWorker } from '../../src/shared/protocol';

const ROOT = path.resolve(__dirname, '../..');
const OUT = path.join(ROOT, 'test-results', 'browser');
const CORPUS = path.resolve(ROOT, 'examples/data/timemachine.txt');

let browser: Browser;
let pageDir: string;
let recorded: HostToDashboard[] = [];

/** Trains a small model in a real trainer process and records what the dashboard would receive. */
async function recordRun(): Promise<HostToDashboard[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-browser-'));
  fs.writeFileSync(path.join(dir, 'c.txt'), fs.readFileSync(CORPUS, 'utf8').slice(0, 60000));
  const file = path.join(dir, 'm.gatelab.yaml');
  fs.writeFileSync(
    file,
    'name: probe-demo\ndata: { source: c.txt, preprocess: letters, sequenceLength: 35, validation: 0.1 }\nmodel: { layers: [{ hidden: 48 }, { hidden: 32 }] }\ntrain: { epochs: 6, batchSize: 16, device: cpu }\n',
  );
  const header: RunHeader = { id: 'recorded', model: 'probe-demo', modelFile: file, status: 'running' };
  const out: HostToDashboard[] = [{ type: 'run/didSnapshot', run: header, steps: { step: [], loss: [], gradNorm: [], lr: [], time: [] }, epochs: [], samples: [], gateHistory: [] }];
  const proc = new TrainerProcess({ modelFile: file, gatesEveryMs: 300, progressEveryMs: 100 }, (m: FromWorker) => {
    if (m.type === 'started') Object.assign(header, { device: m.device, totalSteps: m.totalSteps, epochs: m.epochs, stepsPerEpoch: m.stepsPerEpoch });
    if (m.type === 'done') header.status = 'done';
    const d = toDashboard(m, () => ({ ...header }));
    if (d) out.push(d);
  }, { workerScript: path.join(ROOT, 'dist/worker.js'), runDir: path.join(dir, 'run') });
  const outcome = await proc.finished;
  if (outcome.type !== 'done') throw new Error(`recording run failed: ${outcome.message}`);
  return out;
}

async function openDashboard(theme: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1800 } });
  page.on('pageerror', (e) => {
    throw e;
  });
  await page.goto(`file://${pageDir}/${theme}.html`);
  await page.waitForFunction('window.__posted && window.__posted.some((m) => m.type === "webview/ready")');
  return page;
}

beforeAll(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  recorded = await recordRun();
  pageDir = bundleDir('dashboard');
  for (const [name, vars] of Object.entries(THEMES)) dashboardPage(pageDir, name, { run: 'recorded', bodyClass: `vscode-${name}`, vars });
  browser = await launchChromium();
}, 1_800_000);

afterAll(async () => {
  await browser?.close();
});

describe('dashboard webview', () => {
  it('renders the recorded run: loss chart, epochs, gate heatmaps with their names, coloured text, saturation', async () => {
    expect(recorded.filter((m) => m.type === 'gates/didSnapshot').length).toBeGreaterThan(1);
    for (const theme of ['dark', 'light', 'high-contrast'] as const) {
      const page = await openDashboard(theme);
      // the first half of the run, then the rest: the charts update
      const half = Math.floor(recorded.length / 2);
      await feed(page, recorded.slice(0, half));
      const pointsBefore = await page.evaluate(() => document.querySelectorAll('.uplot').length);
      expect(pointsBefore).toBeGreaterThanOrEqual(2);
      await feed(page, recorded.slice(half));
      expect(await page.locator('.status').innerText()).toBe('done');
      expect(await page.locator('.stats').innerText()).toMatch(/epoch 6 \/ 6/);
      const captions = await page.locator('.heatmap figcaption').allInnerTexts();
      expect(captions).toEqual(['input gate i', 'forget gate f', 'output gate o', 'candidate g', 'cell c', 'hidden h']);
      // two layers: a layer selector
      expect(await page.locator('select[aria-label="Layer"] option').count()).toBe(2);
      const lastGates = [...recorded].reverse().find((m) => m.type === 'gates/didSnapshot') as Extract<HostToDashboard, { type: 'gates/didSnapshot' }>;
      expect(await page.locator('.probe-text .tok').count()).toBe(lastGates.gates.tokens.length);
      expect(await page.locator('.probe-text .tok').first().locator('.top5 li').count()).toBe(5);
      // hovering a heatmap shows the exact value
      const heat = page.locator('.heatmap canvas[role="img"]').nth(1);
      const box = (await heat.boundingBox())!;
      await page.mouse.move(box.x + 5, box.y + 3);
      expect(await page.locator('.tip').innerText()).toMatch(/^forget gate f · unit \d+ · step 0 .* · \d\.\d{4}$/);
      // a heatmap is not blank: its pixels vary
      const distinct = await heat.evaluate((c: HTMLCanvasElement) => {
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        const seen = new Set<number>();
        for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        return seen.size;
      });
      expect(distinct).toBeGreaterThan(20);
      // keyboard: focus a heatmap, move with the arrows, the value is announced
      await heat.focus();
      await page.keyboard.press('ArrowRight');
      await page.keyboard.press('ArrowDown');
      expect(await page.locator('.sr-only[aria-live]').innerText()).toMatch(/^forget gate f · unit \d+ · step 1 /);
      // editing the probe asks the host
      await page.locator('textarea[aria-label="Probe text"]').fill('the time machine');
      await page.getByRole('button', { name: 'Probe' }).click();
      expect(await page.evaluate(() => (window as unknown as { __posted: { type: string; text?: string }[] }).__posted.at(-1))).toEqual({ type: 'gates/setProbe', text: 'the time machine' });
      await page.screenshot({ path: path.join(OUT, `dashboard-${theme}.png`), fullPage: true });
      await page.close();
    }
  });

  it('a run of 1,000,000 steps opens through the host path and stays interactive', async () => {
    // the record a trainer leaves: metrics.jsonl and steps.bin of 1,000,000 steps (and an epoch line every 10,000)
    const n = 1_000_000;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-million-'));
    const lines: string[] = [];
    const rows: { step: number; loss: number; gradNorm: number; lr: number; time: number }[] = [];
    for (let i = 1; i <= n; i++) {
      const r = { step: i, loss: 3 * Math.exp(-i / 2e5) + 0.3 * Math.sin(i / 50) + ((i * 7919) % 997) / 2000, gradNorm: 1, lr: 0.001, time: i / 100 };
      rows.push(r);
      lines.push(JSON.stringify({ step: r.step, epoch: Math.ceil(i / 10_000), loss: r.loss, gradNorm: r.gradNorm, lr: r.lr, time: r.time }));
      if (i % 10_000 === 0) lines.push(JSON.stringify({ epoch: i / 10_000, step: i, trainLoss: r.loss }));
    }
    fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');
    appendSteps(path.join(dir, 'steps.bin'), rows);
    const page = await openDashboard('dark');
    // the host side, as the dashboard panel runs it: read the record, post a window; answer zooms
    const cache = new MetricsCache();
    const sizes: number[] = [];
    await page.exposeFunction('__host', async (m: DashboardToHost) => {
      if (m.type !== 'series/window') return;
      const answer = windowAnswer(await cache.get(dir), m);
      sizes.push(JSON.stringify(answer).length);
      await page.evaluate((a) => window.postMessage(a, '*'), answer);
    });
    await page.evaluate(() => {
      const w = window as unknown as { __posted: { type: string }[]; __host: (m: unknown) => void };
      const push = w.__posted.push.bind(w.__posted);
      w.__posted.push = (...ms: { type: string }[]) => {
        for (const m of ms) if (m.type === 'series/window') w.__host(m);
        return push(...ms);
      };
    });
    const t0 = Date.now();
    const series = await cache.get(dir);
    const hostMs = Date.now() - t0;
    const snapshot: HostToDashboard = { type: 'run/didSnapshot', run: { id: 'big', model: 'big', modelFile: '', status: 'done' }, ...snapshotSteps(series, { buckets: 1150, smoothing: 0.6 }), epochs: series.epochs, samples: [], gateHistory: [] };
    const snapshotBytes = JSON.stringify(snapshot).length;
    await page.evaluate((m) => window.postMessage(m, '*'), snapshot);
    await page.waitForSelector('.uplot canvas');
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const loadMs = Date.now() - t0;
    expect(series.length).toBe(n);
    expect(series.epochs.length).toBe(100);
    // a few hundred kilobytes instead of the record's megabytes
    expect(snapshotBytes).toBeLessThan(400_000);
    expect((snapshot as { stepsTotal?: number }).stepsTotal).toBe(n);
    // drag-zoom and hover across the chart, timing frames
    const over = page.locator('.chart .u-over').first();
    const box = (await over.boundingBox())!;
    const frames = await page.evaluate(async () => {
      const times: number[] = [];
      let last = performance.now();
      let running = true;
      const tick = (t: number) => {
        times.push(t - last);
        last = t;
        if (running) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
      (window as unknown as { __stopFrames: () => void }).__stopFrames = () => (running = false);
      (window as unknown as { __frames: number[] }).__frames = times;
      return true;
    });
    expect(frames).toBe(true);
    for (let k = 0; k < 40; k++) await page.mouse.move(box.x + 10 + k * (box.width / 45), box.y + box.height / 2);
    await page.mouse.move(box.x + box.width * 0.3, box.y + 20);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.5, box.y + 20, { steps: 10 });
    await page.mouse.up();
    await page.waitForTimeout(300);
    for (let k = 0; k < 20; k++) await page.mouse.move(box.x + 10 + k * (box.width / 25), box.y + box.height / 2);
    // wheel zooms, shift-drag pans: the step under a fixed point of the chart changes each time
    const stepAt = async () => {
      await page.mouse.move(box.x + box.width * 0.25, box.y + box.height / 2);
      await page.waitForTimeout(100);
      return page.locator('.chart .u-legend .u-series').first().locator('.u-value').innerText();
    };
    const a0 = await stepAt();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.wheel(0, -300);
    await page.waitForTimeout(200);
    const a1 = await stepAt();
    expect(a1).not.toBe(a0);
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.keyboard.down('Shift');
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 - 150, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await page.keyboard.up('Shift');
    await page.waitForTimeout(200);
    expect(await stepAt()).not.toBe(a1);
    const times = await page.evaluate(() => {
      (window as unknown as { __stopFrames: () => void }).__stopFrames();
      return (window as unknown as { __frames: number[] }).__frames.slice(1);
    });
    times.sort((a, b) => a - b);
    const p50 = times[Math.floor(times.length / 2)];
    const p95 = times[Math.floor(times.length * 0.95)];
    const max = times[times.length - 1];
    const points = await page.evaluate(() => document.querySelectorAll('.uplot').length);
    // zooming asked the host for finer windows, each small
    expect(sizes.length).toBeGreaterThan(0);
    expect(Math.max(...sizes)).toBeLessThan(600_000);
    const figures = { steps: n, hostReadMs: hostMs, openMs: loadMs, snapshotBytes, windowRequests: sizes.length, windowBytesMax: Math.max(...sizes), frames: times.length, p50, p95, max };
    fs.writeFileSync(path.join(OUT, 'million-points.json'), JSON.stringify(figures, null, 2));
    console.log(`1,000,000 steps through the host: read ${hostMs} ms, open ${loadMs} ms, snapshot ${snapshotBytes} bytes, ${sizes.length} windows ≤ ${Math.max(...sizes)} bytes, frames p50 ${p50.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms, max ${max.toFixed(1)} ms`);
    expect(points).toBeGreaterThan(0);
    expect(loadMs).toBeLessThan(10_000);
    expect(p95).toBeLessThan(250);
    await page.screenshot({ path: path.join(OUT, 'million-points.png') });
    await page.close();
  });
});
