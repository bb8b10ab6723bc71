// Dashboard webview: training charts of one run. Talks to the host only through the typed
// messages of src/shared/dashboard.ts: sends `webview/ready`, receives a snapshot, then deltas.
// Charts are uPlot (canvas, fast on long series); colours come from VS Code's theme variables.

import uPlot from 'uplot';
import type { DashboardToHost, EpochRow, HostToDashboard, RunHeader, StepSeries } from '../../src/shared/dashboard';
import { emaDebiased } from './chartdata';

interface VsCodeApi {
  postMessage(m: DashboardToHost): void;
  getState(): unknown;
  setState(s: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const app = document.getElementById('app')!;
const runId = decodeURIComponent(app.dataset.run ?? '');

const state = {
  run: undefined as RunHeader | undefined,
  steps: { step: [], loss: [], gradNorm: [], lr: [], time: [] } as StepSeries,
  epochs: [] as EpochRow[],
  samples: [] as { step: number; text: string }[],
  tokensPerSecond: undefined as number | undefined,
  remainingMs: undefined as number | undefined,
  smoothing: (vscode.getState() as { smoothing?: number } | undefined)?.smoothing ?? 0.6,
};

function css(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---- layout ----
const head = el('header');
const title = el('h1');
const status = el('span', { class: 'status', role: 'status', 'aria-live': 'polite' });
const stats = el('div', { class: 'stats' });
const stopBtn = el('button', { type: 'button', title: 'Stop training (a checkpoint is saved)' }, 'Stop');
const sourceBtn = el('button', { type: 'button', class: 'secondary', title: 'Open the model file' }, 'Model file');
const smoothLabel = el('label', { class: 'smooth' }, 'Smoothing ');
const smooth = el('input', { type: 'range', min: '0', max: '0.99', step: '0.01', value: String(state.smoothing), 'aria-label': 'Smoothing' });
smoothLabel.append(smooth);
head.append(title, status, stats, el('span', { class: 'spacer' }), smoothLabel, stopBtn, sourceBtn);
const lossBox = el('section', { class: 'chart', 'aria-label': 'Training loss by step' });
lossBox.append(el('h2', {}, 'Loss'));
const lossDiv = el('div');
lossBox.append(lossDiv);
const epochBox = el('section', { class: 'chart', 'aria-label': 'Perplexity by epoch' });
epochBox.append(el('h2', {}, 'Per epoch'));
const epochDiv = el('div');
epochBox.append(epochDiv);
const sampleBox = el('section', { class: 'samples', 'aria-label': 'Samples' });
sampleBox.append(el('h2', {}, 'Samples'));
const sampleList = el('div');
sampleBox.append(sampleList);
const errorBox = el('pre', { class: 'error', hidden: '' });
app.append(head, errorBox, lossBox, epochBox, sampleBox);

stopBtn.addEventListener('click', () => vscode.postMessage({ type: 'training/stop' }));
sourceBtn.addEventListener('click', () => vscode.postMessage({ type: 'source/reveal' }));
smooth.addEventListener('input', () => {
  state.smoothing = Number(smooth.value);
  vscode.setState({ runId, smoothing: state.smoothing });
  redrawLoss();
});
vscode.setState({ runId, smoothing: state.smoothing, modelFile: undefined });

// ---- charts ----
function width(div: HTMLElement): number {
  return Math.max(300, (div.parentElement?.clientWidth ?? 600) - 8);
}

let lossPlot: uPlot | undefined;
let epochPlot: uPlot | undefined;

function lossData(): uPlot.AlignedData {
  const s = state.steps;
  return [s.step, s.loss, emaDebiased(s.loss, state.smoothing)];
}

function makeLossPlot(): uPlot {
  const fg = css('--vscode-foreground', '#ccc');
  const grid = css('--vscode-editorWidget-border', '#444');
  const accent = css('--vscode-charts-blue', '#3794ff');
  const axis = { stroke: fg, grid: { stroke: grid, width: 0.5 }, ticks: { stroke: grid } };
  return new uPlot(
    {
      width: width(lossDiv),
      height: 260,
      scales: { x: { time: false } },
      axes: [{ ...axis, label: 'step' }, { ...axis, label: 'loss' }],
      series: [
        { label: 'step' },
        { label: 'loss', stroke: accent + '55', width: 1 },
        { label: 'smoothed', stroke: accent, width: 2 },
      ],
      cursor: { drag: { x: true, y: false } },
    },
    lossData(),
    lossDiv,
  );
}

function redrawLoss(): void {
  if (!lossPlot) lossPlot = makeLossPlot();
  else lossPlot.setData(lossData());
}

function epochData(): uPlot.AlignedData {
  const e = state.epochs;
  return [e.map((r) => r.epoch), e.map((r) => r.trainPerplexity ?? Math.exp(r.trainLoss)), e.map((r) => r.validPerplexity ?? (r.validLoss !== undefined ? Math.exp(r.validLoss) : null))];
}

function redrawEpochs(): void {
  const fg = css('--vscode-foreground', '#ccc');
  const grid = css('--vscode-editorWidget-border', '#444');
  const axis = { stroke: fg, grid: { stroke: grid, width: 0.5 }, ticks: { stroke: grid } };
  if (!epochPlot)
    epochPlot = new uPlot(
      {
        width: width(epochDiv),
        height: 200,
        scales: { x: { time: false }, y: { distr: 3 } },
        axes: [{ ...axis, label: 'epoch' }, { ...axis, label: 'perplexity' }],
        series: [
          { label: 'epoch' },
          { label: 'train perplexity', stroke: css('--vscode-charts-orange', '#d18616'), width: 2, points: { show: true } },
          { label: 'valid perplexity', stroke: css('--vscode-charts-green', '#89d185'), width: 2, points: { show: true } },
        ],
      },
      epochData(),
      epochDiv,
    );
  else epochPlot.setData(epochData());
}

window.addEventListener('resize', () => {
  lossPlot?.setSize({ width: width(lossDiv), height: 260 });
  epochPlot?.setSize({ width: width(epochDiv), height: 200 });
});

// ---- header ----
function fmtRate(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0);
}

function renderHeader(): void {
  const r = state.run;
  title.textContent = r?.model ?? runId;
  status.textContent = r?.status ?? '';
  status.className = `status ${r?.status ?? ''}`;
  const parts: string[] = [];
  const last = state.steps.step[state.steps.step.length - 1];
  if (last !== undefined) parts.push(`step ${last}${r?.totalSteps ? ` / ${r.totalSteps}` : ''}`);
  const e = state.epochs[state.epochs.length - 1];
  if (e) parts.push(`epoch ${e.epoch}${r?.epochs ? ` / ${r.epochs}` : ''}`);
  if (e?.trainPerplexity) parts.push(`ppl ${e.trainPerplexity.toFixed(2)}`);
  if (state.tokensPerSecond) parts.push(`${fmtRate(state.tokensPerSecond)} tok/s`);
  if (r?.device) parts.push(r.device);
  stats.textContent = parts.join(' · ');
  stopBtn.hidden = !(r?.status === 'running' || r?.status === 'queued');
  errorBox.hidden = !r?.error;
  errorBox.textContent = r?.error ?? '';
}

function renderSamples(): void {
  sampleList.replaceChildren(
    ...state.samples
      .slice(-5)
      .reverse()
      .map((s) => {
        const d = el('div', { class: 'sample' });
        d.append(el('span', { class: 'at' }, `step ${s.step}`), el('span', { class: 'text' }, s.text));
        return d;
      }),
  );
  sampleBox.hidden = state.samples.length === 0;
}

function append(to: StepSeries, from: StepSeries): void {
  for (const k of Object.keys(to) as (keyof StepSeries)[]) to[k].push(...from[k]);
}

// ---- messages ----
let pending = false;
function schedule(): void {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    redrawLoss();
    redrawEpochs();
    renderHeader();
    renderSamples();
  });
}

window.addEventListener('message', (ev: MessageEvent<HostToDashboard>) => {
  const m = ev.data;
  switch (m.type) {
    case 'run/didSnapshot':
      state.run = m.run;
      state.steps = m.steps;
      state.epochs = m.epochs;
      state.samples = m.samples;
      state.tokensPerSecond = m.tokensPerSecond;
      vscode.setState({ runId, smoothing: state.smoothing, modelFile: m.run.modelFile });
      break;
    case 'run/didStep':
      append(state.steps, m.steps);
      state.tokensPerSecond = m.tokensPerSecond;
      state.remainingMs = m.remainingMs;
      break;
    case 'run/didEpoch':
      state.epochs.push(m.row);
      break;
    case 'run/didSample':
      state.samples.push({ step: m.step, text: m.text });
      break;
    case 'run/didChangeStatus':
      state.run = m.run;
      break;
  }
  schedule();
});

renderHeader();
vscode.postMessage({ type: 'webview/ready' });
