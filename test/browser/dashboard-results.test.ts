/// <reference lib="dom" />
// The dashboard's results of finished classification and forecast runs, in headless Chromium: the
// per-epoch chart names the task's metric, and the summary shows as a confusion matrix (with recall
// and precision) or as the forecast errors beside the naive baselines. Fed the summaries the
// trainers print (the same objects the host sends); screenshots in test-results/browser/.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleDir, dashboardPage, launchChromium } from './harness';
import type { HostToDashboard } from '../../src/shared/dashboard';

const ROOT = path.resolve(__dirname, '../..');
const OUT = path.join(ROOT, 'test-results', 'browser');
let browser: Browser;
let pageUrl: string;

beforeAll(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  pageUrl = dashboardPage(bundleDir('dashboard'), 'index', {
    run: 'r',
    bodyClass: 'vscode-light',
    vars: { '--vscode-foreground': '#3b3b3b', '--vscode-editor-background': '#ffffff', '--vscode-descriptionForeground': '#717171', '--vscode-editorWidget-border': '#c8c8c8', '--vscode-font-family': 'sans-serif', background: '#fff' },
  });
  browser = await launchChromium();
}, 300_000);

afterAll(async () => {
  await browser?.close();
});

async function open(messages: HostToDashboard[]): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 900, height: 800 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e.stack)));
  await page.goto(pageUrl);
  await page.waitForFunction('window.__posted && window.__posted.some((m) => m.type === "webview/ready")');
  await page.evaluate((ms) => ms.forEach((m) => window.postMessage(m, '*')), messages);
  await page.waitForTimeout(300);
  return { page, errors };
}

const steps = { step: [1, 2, 3, 4], loss: [0.69, 0.6, 0.5, 0.45], gradNorm: [1, 1, 1, 1], lr: [0.005, 0.005, 0.005, 0.005], time: [0, 1, 2, 3] };

describe('dashboard results by task', () => {
  it('classification: accuracy by epoch and the confusion matrix with recall and precision', async () => {
    const summary = { model: 'sentiment', device: 'cpu', steps: 148, epochs: 2, trainLoss: 0.42, validLoss: 0.45, accuracy: 0.808, classes: ['0', '1'], confusion: [[240, 52], [63, 245]], tokensPerSecond: 1e5, elapsedSeconds: 3 };
    const { page, errors } = await open([
      {
        type: 'run/didSnapshot',
        run: { id: 'r', model: 'sentiment', modelFile: '/w/s.gatelab.yaml', status: 'done' },
        steps,
        epochs: [
          { epoch: 1, step: 74, trainLoss: 0.6, validLoss: 0.52, accuracy: 0.77 },
          { epoch: 2, step: 148, trainLoss: 0.42, validLoss: 0.45, accuracy: 0.808 },
        ],
        samples: [],
        gateHistory: [],
        summary,
      },
    ]);
    expect(errors).toEqual([]);
    expect(await page.locator('h2', { hasText: 'Per epoch' }).innerText()).toBe('Per epoch: accuracy (%)');
    expect(await page.locator('.results h2').innerText()).toBe('Validation: accuracy 80.8% on 600 examples');
    const rows = await page.locator('.results table.confusion tr').evaluateAll((trs) => trs.map((tr) => Array.from(tr.children, (c) => (c as HTMLElement).innerText)));
    expect(rows).toEqual([
      ['true ↓ · predicted →', '0', '1', 'recall'],
      ['0', '240', '52', '82.2%'],
      ['1', '63', '245', '79.5%'],
      ['precision', '79.2%', '82.5%', ''],
    ]);
    await page.locator('.results').screenshot({ path: path.join(OUT, 'results-classification.png') });
    await page.close();
  });

  it('forecast: RMSE by epoch beside persistence, and the error table; the summary arriving with the end of the run', async () => {
    const { page, errors } = await open([
      {
        type: 'run/didSnapshot',
        run: { id: 'r', model: 'airline', modelFile: '/w/a.gatelab.yaml', status: 'running' },
        steps,
        epochs: [{ epoch: 1, step: 10, trainLoss: 0.3, validLoss: 0.2, rmse: 40.1, mae: 33, baselineRmse: 51.8 }],
        samples: [],
        gateHistory: [],
      },
    ]);
    expect(await page.locator('.results').isHidden()).toBe(true);
    await page.evaluate((m) => window.postMessage(m, '*'), {
      type: 'run/didChangeStatus',
      run: { id: 'r', model: 'airline', modelFile: '/w/a.gatelab.yaml', status: 'done' },
      summary: { model: 'airline', device: 'cpu', steps: 10, epochs: 1, trainLoss: 0.3, validLoss: 0.2, rmse: 19.6, mae: 15.2, baselineRmse: 51.8, seasonalBaselineRmse: 50.0, tokensPerSecond: 1, elapsedSeconds: 1 },
    } satisfies HostToDashboard);
    await page.waitForTimeout(200);
    expect(errors).toEqual([]);
    expect(await page.locator('h2', { hasText: 'Per epoch' }).innerText()).toBe('Per epoch: RMSE');
    const rows = await page.locator('.results table.metrics tr').evaluateAll((trs) => trs.map((tr) => Array.from(tr.children, (c) => (c as HTMLElement).innerText)));
    expect(rows).toEqual([
      ['RMSE', '19.6', 'this model'],
      ['MAE', '15.2', 'this model'],
      ['RMSE, persistence', '51.8', 'the last seen value'],
      ['RMSE, seasonal naive', '50', 'the value one season earlier'],
    ]);
    await page.locator('.results').screenshot({ path: path.join(OUT, 'results-forecast.png') });
    await page.close();
  });
});
