/// <reference lib="dom" />
// The dashboard's gate views for equation-defined cells (`type: cell`), in headless Chromium: a
// snapshot made by the engine's probe for JANET (s, g, h) under an MGU layer (f, n, h). Every
// equation is a heatmap captioned with the equation as written; the saturation views show the
// sigmoid equations only (MGU's f; JANET has none: its gate is sigmoid(s) inside h).

import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleDir, dashboardPage, launchChromium, feed, THEMES } from './harness';
import { initParams } from '../../src/engine/nn/init';
import { lmParams, LmSpec } from '../../src/engine/nn/lm';
import { checkCell } from '../../src/engine/nn/cellspec';
import { GateProbe } from '../../src/engine/train/probe';
import type { GatesMessage } from '../../src/shared/protocol';

const ROOT = path.resolve(__dirname, '../..');
let browser: Browser;
let gates: GatesMessage;

beforeAll(async () => {
  const vocab = [' ', 'a', 'c', 'e', 'h', 'i', 'm', 'n', 't'];
  const mgu = checkCell([['f', 'sigmoid(W x + U h + b)'], ['n', 'tanh(W x + U (f * h) + b)'], ['h', '(1 - f) * h + f * n']], ['h']).spec!;
  const janet = checkCell([['s', 'W x + U h + b'], ['g', 'tanh(W x + U h + b)'], ['h', 'sigmoid(s) * h + (1 - sigmoid(s - 1)) * g']], ['h']).spec!;
  const lm: LmSpec = { vocab: vocab.length, embedding: 0, hidden: [6, 5], dtype: 'float32', gates: [{ kind: 'sigmoid', cell: 'cell', equations: mgu }, { kind: 'sigmoid', cell: 'cell', equations: janet }] };
  const params = initParams(lmParams(lm), lm.hidden.map((h) => ({ hidden: h, forgetBias: 0 })), 2, 'float32');
  const feeds: Record<string, ort.Tensor> = {};
  for (const p of lmParams(lm)) {
    const d = params.get(p.name)!.data as Float32Array;
    for (let i = 0; i < d.length; i++) d[i] *= 4;
    feeds[`p.${p.name}`] = new ort.Tensor('float32', d, p.shape);
  }
  const probe = new GateProbe(lm, vocab);
  gates = await probe.run(feeds, Array.from('the time machine', (ch) => vocab.indexOf(ch)), 10);
  await probe.release();
  browser = await launchChromium();
}, 300_000);

afterAll(async () => {
  await browser?.close();
});

describe('dashboard gate views of equation cells', () => {
  it('every equation a heatmap captioned as written; saturation for the sigmoid equations; light and dark', async () => {
    expect(gates.layers.map((l) => l.gates)).toEqual([['f', 'n', 'h'], ['s', 'g', 'h']]);
    for (const [theme, vars] of Object.entries(THEMES)) {
      const url = dashboardPage(bundleDir('dashboard'), `cell-${theme}`, { run: 'cell', bodyClass: `vscode-${theme}`, vars });
      const page = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
      const errors: Error[] = [];
      page.on('pageerror', (e) => errors.push(e));
      await page.goto(url);
      await page.waitForFunction('window.__posted && window.__posted.some((m) => m.type === "webview/ready")');
      const run = { id: 'cell', model: 'cell', modelFile: '', status: 'running' as const };
      const history = [5, 10].map((step) => ({ step, layers: gates.layers.map((l) => ({ layer: l.layer, histograms: l.histograms, saturation: l.saturation })) }));
      await feed(page, [
        { type: 'run/didSnapshot', run, steps: { step: [], loss: [], gradNorm: [], lr: [], time: [] }, epochs: [], samples: [], gateHistory: history },
        { type: 'gates/didSnapshot', gates },
      ]);
      expect(errors.map((e) => e.stack)).toEqual([]);
      expect(await page.locator('.heatmap figcaption').allInnerTexts()).toEqual(['f = sigmoid(W x + U h + b)', 'n = tanh(W x + U (f * h) + b)', 'h = (1 - f) * h + f * n']);
      expect(await page.locator('select[aria-label="Histogram of"]').inputValue()).toBe('f');
      expect(await page.locator('section.saturation').isVisible()).toBe(true);
      const heat = page.locator('.heatmap canvas[role="img"]').nth(1);
      const box = (await heat.boundingBox())!;
      await page.mouse.move(box.x + 5, box.y + 3);
      expect(await page.locator('.tip').innerText()).toMatch(/^n · unit \d+ · step 0 .* · -?\d\.\d{4}$/);
      await page.locator('.gates').screenshot({ path: path.join(ROOT, 'test-results', 'browser', `gates-cell-mgu-${theme}.png`) });
      // JANET: no sigmoid equation of its own, so no saturation views, and a note that says why
      await page.locator('select[aria-label="Layer"]').selectOption('1');
      expect(await page.locator('.heatmap figcaption').allInnerTexts()).toEqual(['s = W x + U h + b', 'g = tanh(W x + U h + b)', 'h = sigmoid(s) * h + (1 - sigmoid(s - 1)) * g']);
      expect(await page.locator('section.saturation').isVisible()).toBe(false);
      expect(await page.locator('.no-gates').innerText()).toMatch(/^This cell has no gates to saturate/);
      await page.locator('.gates').screenshot({ path: path.join(ROOT, 'test-results', 'browser', `gates-cell-janet-${theme}.png`) });
      expect(errors).toEqual([]);
      await page.close();
    }
  });
});

describe('dashboard gate views of numeric inputs', () => {
  it('the input channels as small lines above the heatmaps, with their names, instead of tokens; light and dark', async () => {
    const { SeqGateProbe } = await import('../../src/engine/train/probe');
    const F = 4;
    const T = 40;
    const lm: LmSpec = { vocab: 1, embedding: 0, hidden: [6], dtype: 'float32', gates: [{ kind: 'sigmoid' }] };
    const { stackParams } = await import('../../src/engine/nn/stack');
    const params = stackParams({ hidden: [6], gates: lm.gates }, F);
    const w = initParams(params, [{ hidden: 6, forgetBias: 0 }], 3, 'float32');
    const feeds = Object.fromEntries(params.map((p) => [`p.${p.name}`, new ort.Tensor('float32', w.get(p.name)!.data as Float32Array, p.shape)]));
    const values = Array.from({ length: T * F }, (_, i) => Math.sin((Math.floor(i / F) + 1) * (0.15 + 0.1 * (i % F))) * (1 + (i % F)));
    const probe = new SeqGateProbe({ type: 'dense', features: F }, [6], lm.gates, Float32Array.from(values), Array.from({ length: T }, (_, t) => String(t)), undefined, { names: ['RSS_anchor1', 'RSS_anchor2', 'RSS_anchor3', 'RSS_anchor4'], values });
    const snap = await probe.run(feeds, 3);
    await probe.release();
    expect(snap.signals?.names).toHaveLength(4);
    for (const theme of ['dark', 'light']) {
      const url = dashboardPage(bundleDir('dashboard'), `signals-${theme}`, { run: 'sig', bodyClass: `vscode-${theme}`, vars: THEMES[theme] });
      const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
      const errors: Error[] = [];
      page.on('pageerror', (e) => errors.push(e));
      await page.goto(url);
      await page.waitForFunction('window.__posted && window.__posted.some((m) => m.type === "webview/ready")');
      await feed(page, [
        { type: 'run/didSnapshot', run: { id: 'sig', model: 'sig', modelFile: '', status: 'running' }, steps: { step: [], loss: [], gradNorm: [], lr: [], time: [] }, epochs: [], samples: [], gateHistory: [] },
        { type: 'gates/didSnapshot', gates: snap },
      ]);
      expect(errors.map((e) => e.stack)).toEqual([]);
      expect(await page.locator('.signal-legend [role="listitem"]').allInnerTexts()).toEqual(['— RSS_anchor1', '— RSS_anchor2', '— RSS_anchor3', '— RSS_anchor4']);
      expect(await page.locator('.heatmap canvas.signals').count()).toBe(6);
      // the strip has lines in it: some pixels drawn
      const drawn = await page.evaluate(() => {
        const c = document.querySelector('.heatmap canvas.signals') as HTMLCanvasElement;
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n;
      });
      expect(drawn).toBeGreaterThan(100);
      await page.locator('.gates').screenshot({ path: path.join(ROOT, 'test-results', 'browser', `gates-signals-${theme}.png`) });
      await page.close();
    }
  });
});
