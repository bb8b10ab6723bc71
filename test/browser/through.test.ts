/// <reference lib="dom" />
// The dashboard's gradients through time (webview/dashboard/through.ts), in headless Chromium: the
// engine's connectivity and gradient flow of an LSTM, a GRU and a plain RNN language model on the
// same text, as the host posts them for a run compared with two others. The connectivity view
// shades the tokens before the chosen prediction; the gradient-flow chart draws one line per layer
// state of each run on a log scale. Screenshots in light and dark.

import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleDir, dashboardPage, feed, launchChromium, THEMES } from './harness';
import { initParams } from '../../src/engine/nn/init';
import { lmParams, LmSpec } from '../../src/engine/nn/lm';
import type { GateActivation } from '../../src/engine/nn/lstm';
import { connectivityOf } from '../../src/engine/train/connectivity';
import { GateProbe } from '../../src/engine/train/probe';
import type { HostToDashboard, ThroughResult } from '../../src/shared/dashboard';
import type { GatesMessage } from '../../src/shared/protocol';

const ROOT = path.resolve(__dirname, '../..');
const vocab = [' ', 'a', 'c', 'e', 'h', 'i', 'm', 'n', 't', 'r', 'v', 'l'];
const TEXT = 'the time traveller';
const ids = Array.from(TEXT, (ch) => vocab.indexOf(ch));
let browser: Browser;
let results: ThroughResult[];
let gates: GatesMessage;

beforeAll(async () => {
  const cells: [string, GateActivation][] = [
    ['lstm', { kind: 'sigmoid' }],
    ['gru', { kind: 'sigmoid', cell: 'gru' }],
    ['rnn', { kind: 'sigmoid', cell: 'rnn', activation: 'tanh' }],
  ];
  results = [];
  for (const [name, gate] of cells) {
    const lm: LmSpec = { vocab: vocab.length, embedding: 0, hidden: [8], dtype: 'float32', gates: [gate] };
    const w = initParams(lmParams(lm), [{ hidden: 8, forgetBias: 1 }], 4, 'float32');
    for (const [k, v] of w) if (!k.startsWith('fc.')) for (let i = 0; i < v.data.length; i++) v.data[i] *= 3;
    const r = await connectivityOf(lm, w, ids);
    results.push({ runId: `run-${name}`, label: `tm-${name}`, through: { type: 'through', tokens: Array.from(TEXT), connectivity: r.connectivity, gradientFlow: r.gradientFlow, cells: [name as 'lstm'] } });
    if (name === 'lstm') {
      const probe = new GateProbe(lm, vocab);
      const feeds: Record<string, ort.Tensor> = {};
      for (const [k, v] of w) feeds[`p.${k}`] = new ort.Tensor('float32', v.data as Float32Array, v.shape);
      gates = await probe.run(feeds, ids, 10);
      await probe.release();
    }
  }
  browser = await launchChromium();
}, 300_000);

afterAll(async () => {
  await browser?.close();
});


describe('dashboard: gradients through time', () => {
  it('a run of another task: its input in a box beside Compute; one row, every input shaded by how much it matters to the prediction', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e.stack)));
    await page.goto(dashboardPage(bundleDir('dashboard'), 'through-task', { run: 'run-add', bodyClass: 'vscode-dark', vars: THEMES.dark }));
    await page.waitForFunction('window.__posted && window.__posted.some((m) => m.type === "webview/ready")');
    const run = { id: 'run-add', model: 'add', modelFile: '', status: 'done' as const };
    await feed(page, [
      { type: 'run/didSnapshot', run, steps: { step: [], loss: [], gradNorm: [], lr: [], time: [] }, epochs: [], samples: [], gateHistory: [] },
      { type: 'gates/didSnapshot', gates: { ...gates, editable: false } },
    ]);
    const section = page.locator('section.through');
    const input = section.getByLabel('Input to probe');
    expect(await input.isVisible()).toBe(true);
    await input.fill('0.3 0.5* 0.1 0.8*');
    await input.press('Enter');
    const posted = await page.evaluate(() => (window as unknown as { __posted: { type: string; text?: string }[] }).__posted);
    expect(posted.filter((m) => m.type === 'through/compute')).toEqual([{ type: 'through/compute', text: '0.3 0.5* 0.1 0.8*' }]);
    const one: ThroughResult = { runId: 'run-add', label: 'add', through: { type: 'through', tokens: ['0.3', '0.5*', '0.1', '0.8*'], connectivity: [[0.01, 1.1, 0.02, 0.9]], gradientFlow: [{ layer: 0, h: [0.05, 0.06, 0.3, 1], c: [1.4, 1.3, 1.2, 1] }], cells: ['lstm'] } };
    await feed(page, [{ type: 'through/didCompute', text: '0.3 0.5* 0.1 0.8*', results: [one] }]);
    const toks = section.locator('.conn-tok');
    expect(await toks.evaluateAll((es) => es.map((e) => (e as HTMLElement).style.background !== ''))).toEqual([true, true, true, true]);
    expect(await toks.nth(1).getAttribute('title')).toMatch(/\(100% of the largest\)$/);
    expect(await section.locator('.conn-caption').innerText()).toMatch(/^The prediction after the last step/);
    // hovering picks nothing: there is one prediction
    await toks.nth(0).hover();
    expect(await section.locator('.conn-tok.at').getAttribute('data-s')).toBe('3');
    expect(errors).toEqual([]);
    await page.close();
  });

  for (const theme of ['dark', 'light']) {
    const vars = THEMES[theme];
    it(`${theme}: Compute asks the host; the connectivity view shades the tokens before the chosen prediction; the flow chart overlays the runs`, async () => {
      const page = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e.stack)));
      await page.goto(dashboardPage(bundleDir('dashboard'), `through-${theme}`, { run: 'run-lstm', bodyClass: `vscode-${theme}`, vars }));
      await page.waitForFunction('window.__posted && window.__posted.some((m) => m.type === "webview/ready")');
      const run = { id: 'run-lstm', model: 'tm-lstm', modelFile: '', status: 'done' as const };
      await feed(page, [
        { type: 'run/didSnapshot', run, steps: { step: [], loss: [], gradNorm: [], lr: [], time: [] }, epochs: [], samples: [], gateHistory: [] },
        { type: 'gates/didSnapshot', gates },
      ]);
      const section = page.locator('section.through');
      expect(await section.isVisible()).toBe(true);
      await section.getByRole('button', { name: 'Compute' }).click();
      const posted = await page.evaluate(() => (window as unknown as { __posted: { type: string; text?: string }[] }).__posted);
      expect(posted.filter((m) => m.type === 'through/compute')).toEqual([{ type: 'through/compute', text: TEXT }]);
      await feed(page, [{ type: 'through/didCompute', text: TEXT, results }]);
      // the last prediction is chosen first: every token up to it shaded, the target after it marked
      const toks = section.locator('.conn-tok');
      expect(await toks.count()).toBe(TEXT.length);
      expect(await section.locator('.conn-tok.at').getAttribute('data-s')).toBe(String(TEXT.length - 2));
      expect(await section.locator('.conn-tok.target').getAttribute('data-s')).toBe(String(TEXT.length - 1));
      // hovering position 5 shows how much the tokens 0…5 matter to predicting the token after it
      await toks.nth(5).hover();
      expect(await section.locator('.conn-caption').innerText()).toMatch(/^Predicting "m" after position 5 \("i"\)/);
      const shaded = await toks.evaluateAll((es) => es.map((e) => (e as HTMLElement).style.background !== ''));
      expect(shaded).toEqual(Array.from(TEXT, (_, s) => s <= 5));
      // the token right before a prediction matters most to it (100% of the row)
      expect(await toks.nth(5).getAttribute('title')).toMatch(/\(100% of the largest\)$/);
      // ← moves the prediction back by one
      await toks.nth(5).click();
      await page.keyboard.press('ArrowLeft');
      expect(await section.locator('.conn-tok.at').getAttribute('data-s')).toBe('4');
      // another run's connectivity (the pointer away from the text, so it picks nothing)
      await page.mouse.move(1, 1);
      await section.getByLabel('Connectivity of run').selectOption({ label: 'tm-rnn (rnn)' });
      expect(await section.locator('.conn-tok.at').getAttribute('data-s')).toBe('4');
      // the flow chart: one line per layer state of each run (LSTM h and c, GRU h, RNN h)
      const legend = await section.locator('.u-legend .u-series th').allInnerTexts();
      expect(legend.slice(1).map((t) => t.trim())).toEqual(['tm-lstm l0 lstm ‖∂ℓ/∂h‖', 'tm-lstm l0 lstm ‖∂ℓ/∂c‖', 'tm-gru l0 gru ‖∂ℓ/∂h‖', 'tm-rnn l0 rnn ‖∂ℓ/∂h‖']);
      expect(errors).toEqual([]);
      await section.screenshot({ path: path.join(ROOT, 'test-results', 'browser', `through-${theme}.png`) });
      await page.close();
    });
  }
});
