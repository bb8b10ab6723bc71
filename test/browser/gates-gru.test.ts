/// <reference lib="dom" />
// The dashboard's gate views for a GRU layer, in headless Chromium (playwright-core): a gate snapshot
// made by the engine's probe for a model with a GRU layer under an LSTM layer. The GRU layer shows
// the heatmaps "reset gate r", "update gate z", "candidate n", "hidden h" and the saturation of r and
// z; choosing the LSTM layer shows its six maps with their labels unchanged.

import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleDir, dashboardPage, launchChromium, feed } from './harness';
import { initParams } from '../../src/engine/nn/init';
import { lmParams, LmSpec } from '../../src/engine/nn/lm';
import { GateProbe } from '../../src/engine/train/probe';
import type { HostToDashboard } from '../../src/shared/dashboard';
import type { GatesMessage } from '../../src/shared/protocol';

const ROOT = path.resolve(__dirname, '../..');
let browser: Browser;
let pageUrl: string;
let gates: GatesMessage;

beforeAll(async () => {
  // the snapshot: GRU 6 under LSTM 5 on a short text
  const vocab = [' ', 'a', 'c', 'e', 'h', 'i', 'm', 'n', 't'];
  const lm: LmSpec = { vocab: vocab.length, embedding: 0, hidden: [6, 5], dtype: 'float32', gates: [{ kind: 'sigmoid', cell: 'gru' }, { kind: 'sigmoid' }] };
  const params = initParams(lmParams(lm), lm.hidden.map((h) => ({ hidden: h, forgetBias: 0 })), 2, 'float32');
  const feeds: Record<string, ort.Tensor> = {};
  for (const p of lmParams(lm)) {
    const d = params.get(p.name)!.data as Float32Array;
    for (let i = 0; i < d.length; i++) d[i] *= 4; // wide gate values: a heatmap with contrast
    feeds[`p.${p.name}`] = new ort.Tensor('float32', d, p.shape);
  }
  const probe = new GateProbe(lm, vocab);
  gates = await probe.run(feeds, Array.from('the time machine', (ch) => vocab.indexOf(ch)), 10);
  await probe.release();
  pageUrl = dashboardPage(bundleDir('dashboard'), 'index', { run: 'gru', bodyClass: 'vscode-dark', vars: { '--vscode-foreground': '#cccccc', '--vscode-editor-background': '#1f1f1f', '--vscode-font-family': 'sans-serif' } });
  browser = await launchChromium();
}, 300_000);

afterAll(async () => {
  await browser?.close();
});

describe('dashboard gate views of a GRU layer', () => {
  it('labels the GRU maps r, z, n, h and its saturation r, z; the LSTM layer keeps its six labels', async () => {
    expect(gates.layers.map((l) => l.gates)).toEqual([['r', 'z', 'n', 'h'], ['i', 'f', 'o', 'g', 'c', 'h']]);
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const errors: Error[] = [];
    page.on('pageerror', (e) => errors.push(e));
    await page.goto(pageUrl);
    await page.waitForFunction('window.__posted && window.__posted.some((m) => m.type === "webview/ready")');
    const run = { id: 'gru', model: 'gru', modelFile: '', status: 'running' as const };
    const history = [{ step: 5, layers: gates.layers.map((l) => ({ layer: l.layer, histograms: l.histograms, saturation: l.saturation })) }];
    await feed(page, [
      { type: 'run/didSnapshot', run, steps: { step: [], loss: [], gradNorm: [], lr: [], time: [] }, epochs: [], samples: [], gateHistory: history },
      { type: 'gates/didSnapshot', gates },
    ]);
    expect(errors.map((e) => e.stack)).toEqual([]);
    expect(await page.locator('.heatmap figcaption').allInnerTexts()).toEqual(['reset gate r', 'update gate z', 'candidate n', 'hidden h']);
    expect(await page.locator('select[aria-label="Colour the text by"] option').allInnerTexts()).toEqual(['reset gate r', 'update gate z', 'candidate n', 'hidden h']);
    expect(await page.locator('select[aria-label="Histogram of"]').inputValue()).toBe('z');
    // hovering the update-gate map shows its name and value
    const heat = page.locator('.heatmap canvas[role="img"]').nth(1);
    const box = (await heat.boundingBox())!;
    await page.mouse.move(box.x + 5, box.y + 3);
    expect(await page.locator('.tip').innerText()).toMatch(/^update gate z · unit \d+ · step 0 .* · \d\.\d{4}$/);
    // the saturation scatter's legend names r and z (drawn on the canvas: read the calls back)
    const legend = await page.evaluate(() => {
      const seen: string[] = [];
      const orig = CanvasRenderingContext2D.prototype.fillText;
      CanvasRenderingContext2D.prototype.fillText = function (t: string, x: number, y: number) {
        seen.push(t);
        return orig.call(this, t, x, y);
      };
      (document.querySelector('select[aria-label="Layer"]') as HTMLSelectElement).dispatchEvent(new Event('change'));
      CanvasRenderingContext2D.prototype.fillText = orig;
      return seen.filter((t) => t.startsWith('●'));
    });
    expect(legend).toEqual(['● reset gate r', '● update gate z']);
    // the LSTM layer: the six maps with their labels as before
    await page.locator('select[aria-label="Layer"]').selectOption('1');
    expect(await page.locator('.heatmap figcaption').allInnerTexts()).toEqual(['input gate i', 'forget gate f', 'output gate o', 'candidate g', 'cell c', 'hidden h']);
    expect(await page.locator('select[aria-label="Histogram of"]').inputValue()).toBe('f');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('word tokens: wider columns with upright word labels inside the label strip', async () => {
    const words = 'the food was great and the staff were friendly but the parking was terrible tonight sadly'.split(' ');
    const wordGates: GatesMessage = { ...gates, tokens: words.slice(0, gates.tokens.length) };
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e.stack)));
    page.on('console', (m) => errors.push(m.text()));
    await page.goto(pageUrl);
    await page.waitForFunction('window.__posted && window.__posted.some((m) => m.type === "webview/ready")');
    const run = { id: 'gru', model: 'gru', modelFile: '', status: 'done' as const };
    await feed(page, [
      { type: 'run/didSnapshot', run, steps: { step: [], loss: [], gradNorm: [], lr: [], time: [] }, epochs: [], samples: [], gateHistory: [] },
      { type: 'gates/didSnapshot', gates: wordGates },
    ]);
    await page.waitForSelector('.heatmap canvas.tokens', { timeout: 10_000 }).catch(() => expect(errors).toEqual([]));
    expect(errors).toEqual([]);
    const strip = await page.evaluate(() => {
      const c = document.querySelector('.heatmap canvas.tokens') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      // ink per column of the strip: every word leaves some
      const T = (document.querySelector('.heatmap canvas[role="img"]') as HTMLCanvasElement).width / c.width;
      const cols = Math.round(c.width / (c.width / T));
      const ink = new Array(cols).fill(0);
      const cw = c.width / cols;
      // above the strip's bottom 10 px: a label of two letters or more reaches there
      for (let y = 0; y < c.height - 10; y++) for (let x = 0; x < c.width; x++) if (d[(y * c.width + x) * 4 + 3] > 0) ink[Math.min(cols - 1, Math.floor(x / cw))]++;
      return { width: c.width, height: c.height, ink };
    });
    expect(strip.height).toBeGreaterThan(40);
    expect(strip.width / wordGates.tokens.length).toBeGreaterThanOrEqual(8);
    expect(strip.ink.every((n) => n > 10)).toBe(true);
    // the coloured text keeps the words apart
    expect(await page.locator('.probe-text').evaluate((e) => e.classList.contains('words'))).toBe(true);
    await page.locator('.gates').screenshot({ path: path.join(ROOT, 'test-results', 'browser', 'gates-words.png') });
    await page.close();
  });
});

describe('dashboard gate views of a plain RNN layer', () => {
  it('shows the hidden state h alone, with no saturation of gates it does not have', async () => {
    const vocab = [' ', 'a', 'c', 'e', 'h', 'i', 'm', 'n', 't'];
    const lm: LmSpec = { vocab: vocab.length, embedding: 0, hidden: [6, 5], dtype: 'float32', gates: [{ kind: 'sigmoid', cell: 'rnn', activation: 'tanh' }, { kind: 'sigmoid' }] };
    const params = initParams(lmParams(lm), lm.hidden.map((h) => ({ hidden: h, forgetBias: 0 })), 2, 'float32');
    const feeds: Record<string, ort.Tensor> = {};
    for (const p of lmParams(lm)) feeds[`p.${p.name}`] = new ort.Tensor('float32', params.get(p.name)!.data as Float32Array, p.shape);
    const probe = new GateProbe(lm, vocab);
    const rnnGates = await probe.run(feeds, Array.from('the time machine', (ch) => vocab.indexOf(ch)), 10);
    await probe.release();
    expect(rnnGates.layers.map((l) => l.gates)).toEqual([['h'], ['i', 'f', 'o', 'g', 'c', 'h']]);
    for (const theme of ['dark', 'light'] as const) {
      const url = dashboardPage(bundleDir('dashboard'), `rnn-${theme}`, {
        run: 'rnn',
        bodyClass: `vscode-${theme}`,
        vars: theme === 'dark' ? { '--vscode-foreground': '#cccccc', '--vscode-editor-background': '#1f1f1f', '--vscode-font-family': 'sans-serif' } : { '--vscode-foreground': '#3b3b3b', '--vscode-editor-background': '#ffffff', '--vscode-font-family': 'sans-serif' },
      });
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      const errors: Error[] = [];
      page.on('pageerror', (e) => errors.push(e));
      await page.goto(url);
      await page.waitForFunction('window.__posted && window.__posted.some((m) => m.type === "webview/ready")');
      const run = { id: 'rnn', model: 'rnn', modelFile: '', status: 'running' as const };
      const history = [{ step: 5, layers: rnnGates.layers.map((l) => ({ layer: l.layer, histograms: l.histograms, saturation: l.saturation })) }];
      await feed(page, [
        { type: 'run/didSnapshot', run, steps: { step: [], loss: [], gradNorm: [], lr: [], time: [] }, epochs: [], samples: [], gateHistory: history },
        { type: 'gates/didSnapshot', gates: rnnGates },
      ]);
      expect(errors.map((e) => e.stack)).toEqual([]);
      expect(await page.locator('.heatmap figcaption').allInnerTexts()).toEqual(['hidden h']);
      expect(await page.locator('select[aria-label="Histogram of"]').inputValue()).toBe('h');
      expect(await page.locator('section.saturation').isVisible()).toBe(false);
      expect(await page.locator('.no-gates').innerText()).toMatch(/^A plain RNN layer has no gates to saturate/);
      await page.locator('.gates').screenshot({ path: path.join(ROOT, 'test-results', 'browser', `gates-rnn-${theme}.png`) });
      // the LSTM layer above it: its six maps
      await page.locator('select[aria-label="Layer"]').selectOption('1');
      expect(await page.locator('.heatmap figcaption').allInnerTexts()).toEqual(['input gate i', 'forget gate f', 'output gate o', 'candidate g', 'cell c', 'hidden h']);
      expect(await page.locator('section.saturation').isVisible()).toBe(true);
      expect(await page.locator('.no-gates').isVisible()).toBe(false);
      expect(errors).toEqual([]);
      await page.close();
    }
  });
});
