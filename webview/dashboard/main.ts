// Dashboard webview: training charts of one run. Talks to the host only through the typed
// messages of src/shared/dashboard.ts: sends `webview/ready`, receives a snapshot, then deltas.
// Charts are uPlot (canvas, fast on long series); colours come from VS Code's theme variables.

import uPlot from 'uplot';
import type { DashboardToHost, EpochRow, HostToDashboard, RunHeader, StepSeries } from '../../src/shared/dashboard';
import { alignTo, confusionView, emaDebiased, epochChart, EpochChart, minMaxIndices, sequential, toCsv } from './chartdata';
import type { Overlay } from '../../src/shared/dashboard';
import type { Summary } from '../../src/shared/protocol';
import { GatesView } from './gates';
import { css, el } from './dom';
import { ThroughView } from './through';

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
  overlays: [] as Overlay[],
  summary: undefined as Record<string, unknown> | undefined,
  /**
   * a long run: the host holds the steps and posts windows of them (min and max per pixel bucket,
   * the loss smoothed over every step); `total` steps in all
   */
  remote: undefined as { total: number; first: number; last: number } | undefined,
  hostSmoothed: [] as (number | null)[],
};
const OVERLAY_COLORS = ['--vscode-charts-orange', '--vscode-charts-purple', '--vscode-charts-green', '--vscode-charts-yellow', '--vscode-charts-red'];

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
const logLabel = el('label', { class: 'smooth' });
const logBox = el('input', { type: 'checkbox', 'aria-label': 'Logarithmic loss axis' });
logLabel.append(logBox, document.createTextNode(' log scale'));
const exportSel = el('select', { 'aria-label': 'Export' });
for (const [v, t] of [['', 'Export…'], ['csv', 'Loss data (CSV)'], ['json', 'All data (JSON)'], ['png', 'Loss chart (PNG)'], ['svg', 'Loss chart (SVG)']]) exportSel.append(el('option', { value: v }, t));
head.append(title, status, stats, el('span', { class: 'spacer' }), smoothLabel, logLabel, exportSel, stopBtn, sourceBtn);
const lossBox = el('section', { class: 'chart', 'aria-label': 'Training loss by step' });
lossBox.append(el('h2', { title: 'Drag to zoom, wheel to zoom, shift-drag to pan, double-click to reset' }, 'Loss'));
const lossDiv = el('div');
lossBox.append(lossDiv);
const epochBox = el('section', { class: 'chart', 'aria-label': 'By epoch' });
const epochTitle = el('h2', {}, 'Per epoch');
epochBox.append(epochTitle);
const epochDiv = el('div');
epochBox.append(epochDiv);
const resultBox = el('section', { class: 'results', 'aria-label': 'Results on the validation part', hidden: '' });
const sampleBox = el('section', { class: 'samples', 'aria-label': 'Samples' });
sampleBox.append(el('h2', {}, 'Samples'));
const sampleList = el('div');
sampleBox.append(sampleList);
const errorBox = el('pre', { class: 'error', hidden: '' });
const gates = new GatesView((text) => vscode.postMessage({ type: 'gates/setProbe', text }));
const through = new ThroughView(() => vscode.postMessage({ type: 'through/compute', text: through.input.hidden ? gates.probeText : through.input.value }));
app.append(head, errorBox, lossBox, epochBox, resultBox, gates.root, through.root, sampleBox);

stopBtn.addEventListener('click', () => vscode.postMessage({ type: 'training/stop' }));
sourceBtn.addEventListener('click', () => vscode.postMessage({ type: 'source/reveal' }));
smooth.addEventListener('input', () => {
  state.smoothing = Number(smooth.value);
  smoothed = [];
  persist();
  if (state.remote) requestWindow();
  else redrawLoss();
});
/** What a window reload restores (the serializer reads it): the run, its model file, the runs compared, the smoothing. */
const persisted: { runId: string; smoothing: number; modelFile?: string; compare?: string[] } = { runId, smoothing: state.smoothing };
function persist(): void {
  persisted.smoothing = state.smoothing;
  vscode.setState(persisted);
}
persist();
logBox.addEventListener('change', () => {
  lossPlot?.destroy();
  lossPlot = undefined;
  redrawLoss();
});
exportSel.addEventListener('change', () => {
  const kind = exportSel.value;
  exportSel.value = '';
  const name = (state.run?.model ?? 'run').replace(/[^\w.-]+/g, '-');
  const save = (fileName: string, content: string, encoding: 'utf8' | 'base64' = 'utf8') => vscode.postMessage({ type: 'export/save', fileName, content, encoding });
  // a long run's steps are on the host: it writes them
  if ((kind === 'csv' || kind === 'json') && state.remote) return vscode.postMessage({ type: 'export/metrics', format: kind });
  if (kind === 'csv') save(`${name}-loss.csv`, toCsv({ step: state.steps.step, loss: state.steps.loss, gradNorm: state.steps.gradNorm, lr: state.steps.lr, time: state.steps.time }));
  if (kind === 'json') save(`${name}-metrics.json`, JSON.stringify({ run: state.run, steps: state.steps, epochs: state.epochs, samples: state.samples }));
  if (kind === 'png') {
    const canvas = lossDiv.querySelector('canvas');
    if (canvas) save(`${name}-loss.png`, canvas.toDataURL('image/png').split(',')[1], 'base64');
  }
  if (kind === 'svg') save(`${name}-loss.svg`, lossSvg());
});

/** The loss chart as SVG: raw and smoothed loss over steps, with the axis ranges written out. */
function lossSvg(): string {
  const W = 800;
  const H = 300;
  const s = state.steps;
  if (s.step.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"/>`;
  const idx = minMaxIndices(s.step, s.loss, W);
  const sm = emaDebiased(s.loss, state.smoothing);
  const xs = idx.map((i) => s.step[i]);
  const ys = idx.map((i) => s.loss[i]);
  const [x0, x1] = [xs[0], xs[xs.length - 1] || 1];
  const fin = ys.filter(Number.isFinite);
  const [y0, y1] = [Math.min(...fin), Math.max(...fin)];
  const px = (x: number) => (40 + ((x - x0) / (x1 - x0 || 1)) * (W - 50)).toFixed(1);
  const py = (y: number) => (10 + (1 - (y - y0) / (y1 - y0 || 1)) * (H - 40)).toFixed(1);
  const line = (vals: (number | null)[]) => idx.map((i, k) => (vals[k] === null || !Number.isFinite(vals[k] as number) ? '' : `${px(s.step[i])},${py(vals[k] as number)}`)).filter(Boolean).join(' ');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<polyline fill="none" stroke="#3794ff" stroke-opacity="0.35" points="${line(ys)}"/>
<polyline fill="none" stroke="#3794ff" stroke-width="2" points="${line(idx.map((i) => sm[i]))}"/>
<text x="40" y="${H - 8}">step ${x0}</text><text x="${W - 10}" y="${H - 8}" text-anchor="end">step ${x1}</text>
<text x="4" y="14">${y1.toFixed(3)}</text><text x="4" y="${H - 30}">${y0.toFixed(3)}</text>
<text x="${W / 2}" y="14" text-anchor="middle">${state.run?.model ?? ''} loss (smoothing ${state.smoothing})</text>
</svg>`;
}

// ---- charts ----
function width(div: HTMLElement): number {
  return Math.max(300, (div.parentElement?.clientWidth ?? 600) - 8);
}

let lossPlot: uPlot | undefined;
let epochPlot: uPlot | undefined;

let smoothed: (number | null)[] = [];
let xView: [number, number] | undefined;

/** Visible points only, min and max per pixel bucket: long series stay fast (1,000,000 points). */
function lossData(): uPlot.AlignedData {
  const s = state.steps;
  if (state.remote) {
    // already a window of the host's series, smoothed there over every step
    const others = state.overlays.map((o) => alignTo(s.step, o.step, emaDebiased(o.loss, state.smoothing) as number[]));
    return [s.step, s.loss, s.step.map((_, i) => state.hostSmoothed[i] ?? null), ...others] as uPlot.AlignedData;
  }
  if (smoothed.length !== s.loss.length) smoothed = emaDebiased(s.loss, state.smoothing);
  const idx = minMaxIndices(s.step, s.loss, width(lossDiv), xView?.[0], xView?.[1]);
  const xs = idx.map((i) => s.step[i]);
  // other runs of the same model, smoothed the same way, on this run's x positions
  const others = state.overlays.map((o) => alignTo(xs, o.step, emaDebiased(o.loss, state.smoothing) as number[]));
  return [xs, idx.map((i) => s.loss[i]), idx.map((i) => smoothed[i]), ...others] as uPlot.AlignedData;
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
      scales: { x: { time: false }, y: logBox.checked ? { distr: 3 } : {} },
      axes: [{ ...axis, label: 'step' }, { ...axis, label: 'loss' }],
      hooks: {
        setScale: [
          (u: uPlot, key: string) => {
            if (key !== 'x' || resampling) return;
            const { min, max } = u.scales.x;
            const [lo, hi] = extent();
            const full = state.steps.step.length > 0 && min !== undefined && max !== undefined && min <= lo && max >= hi;
            xView = full || min === undefined || max === undefined ? undefined : [min, max];
            if (state.remote) {
              // the host has the points of the new range
              requestWindow();
              return;
            }
            // resample after uPlot has finished this zoom, then restore the view so its index
            // window is computed on the new data
            requestAnimationFrame(() => {
              resampling = true;
              u.setData(lossData(), false);
              if (xView) u.setScale('x', { min: xView[0], max: xView[1] });
              resampling = false;
            });
          },
        ],
      },
      series: [
        { label: 'step' },
        { label: 'loss', stroke: accent + '55', width: 1 },
        { label: 'smoothed', stroke: accent, width: 2 },
        ...state.overlays.map((o, k) => ({ label: `run ${o.label}`, stroke: css(OVERLAY_COLORS[k % OVERLAY_COLORS.length], '#d18616'), width: 1.5, dash: [6, 3] })),
      ],
      cursor: { drag: { x: true, y: false } },
    },
    lossData(),
    lossDiv,
  );
}

let resampling = false;

/** The first and last step of the whole run (a long run's posted points may be a zoomed window). */
function extent(): readonly [number, number] {
  if (state.remote) return [state.remote.first, state.remote.last];
  return [state.steps.step[0] ?? 0, state.steps.step[state.steps.step.length - 1] ?? 1];
}

// ---- windows of a long run, from the host ----
let windowRequest = 0;
let windowFrame = 0;
/** Asks the host for the points of the current view (at most one request per frame; the newest answer wins). */
function requestWindow(): void {
  if (windowFrame) return;
  windowFrame = requestAnimationFrame(() => {
    windowFrame = 0;
    vscode.postMessage({ type: 'series/window', requestId: ++windowRequest, ...(xView ? { x0: xView[0], x1: xView[1] } : {}), buckets: width(lossDiv), smoothing: state.smoothing });
  });
}

function showWindow(m: Extract<HostToDashboard, { type: 'series/didWindow' }>): void {
  if (m.requestId !== windowRequest || !state.remote) return; // an older answer
  state.steps = m.steps;
  state.hostSmoothed = m.smoothed;
  state.remote.total = m.total;
  [state.remote.first, state.remote.last] = m.extent;
  if (!lossPlot) return;
  resampling = true;
  lossPlot.setData(lossData(), xView === undefined);
  if (xView) lossPlot.setScale('x', { min: xView[0], max: xView[1] });
  resampling = false;
}

let lastLiveWindow = 0;

/** Wheel zooms the step axis around the cursor; shift-drag pans it; double-click resets (uPlot). */
function addWheelAndPan(u: uPlot): void {
  const over = u.over;
  const full = extent;
  over.addEventListener(
    'wheel',
    (e) => {
      e.preventDefault();
      const { min, max } = u.scales.x;
      if (min === undefined || max === undefined) return;
      const at = u.posToVal(e.offsetX, 'x');
      const f = e.deltaY < 0 ? 0.8 : 1.25;
      const [lo, hi] = full();
      u.setScale('x', { min: Math.max(lo, at - (at - min) * f), max: Math.min(hi, at + (max - at) * f) });
    },
    { passive: false },
  );
  // double-click shows the whole run: a long run's data is a window, so ask the host for all of it
  over.addEventListener('dblclick', () => {
    if (!state.remote) return;
    xView = undefined;
    requestWindow();
  });
  over.addEventListener('mousedown', (e) => {
    if (!e.shiftKey) return;
    e.preventDefault();
    e.stopPropagation();
    const x0 = e.clientX;
    const { min, max } = u.scales.x;
    if (min === undefined || max === undefined) return;
    const perPx = (max - min) / over.clientWidth;
    const [lo, hi] = full();
    const move = (ev: MouseEvent) => {
      const d = (x0 - ev.clientX) * perPx;
      const shift = Math.max(lo - min, Math.min(hi - max, d));
      u.setScale('x', { min: min + shift, max: max + shift });
    };
    const up = () => {
      window.removeEventListener('mousemove', move);
      window.removeEventListener('mouseup', up);
    };
    window.addEventListener('mousemove', move);
    window.addEventListener('mouseup', up);
  }, true);
}

function redrawLoss(): void {
  if (!lossPlot) {
    lossPlot = makeLossPlot();
    addWheelAndPan(lossPlot);
  }
  else {
    resampling = true;
    lossPlot.setData(lossData(), xView === undefined);
    resampling = false;
  }
}

let epochKind: EpochChart['kind'] | undefined;

function redrawEpochs(): void {
  const chart = epochChart(state.epochs);
  epochTitle.textContent = `Per epoch: ${chart.label}`;
  epochBox.setAttribute('aria-label', `${chart.label} by epoch`);
  if (epochPlot && epochKind === chart.kind) {
    epochPlot.setData(chart.data as uPlot.AlignedData);
    return;
  }
  // the first rows decide the chart (a forecast's first epoch may come before its validation)
  epochPlot?.destroy();
  epochKind = chart.kind;
  const fg = css('--vscode-foreground', '#ccc');
  const grid = css('--vscode-editorWidget-border', '#444');
  const axis = { stroke: fg, grid: { stroke: grid, width: 0.5 }, ticks: { stroke: grid } };
  const colours = [css('--vscode-charts-orange', '#d18616'), css('--vscode-charts-green', '#89d185')];
  // one series: validation (green); two: train or model (orange) and validation or baseline (green)
  const series = chart.series.map((label, i) => ({ label, stroke: colours[chart.series.length === 1 ? 1 : i], width: 2, points: { show: true }, ...(chart.kind === 'rmse' && i === 1 ? { dash: [6, 4] } : {}) }));
  epochPlot = new uPlot(
    {
      width: width(epochDiv),
      height: 200,
      scales: { x: { time: false }, y: chart.log ? { distr: 3 } : {} },
      axes: [{ ...axis, label: 'epoch' }, { ...axis, label: chart.label }],
      series: [{ label: 'epoch' }, ...series],
    },
    chart.data as uPlot.AlignedData,
    epochDiv,
  );
}

window.addEventListener('resize', () => {
  lossPlot?.setSize({ width: width(lossDiv), height: 260 });
  epochPlot?.setSize({ width: width(epochDiv), height: 200 });
});

// ---- results (the summary of a finished run, by task) ----
let resultKey = '';
function renderResults(): void {
  const s = state.summary as Partial<Summary> | undefined;
  const key = JSON.stringify(s ?? null);
  if (key === resultKey) return;
  resultKey = key;
  resultBox.replaceChildren();
  const fmt = (v: number | null | undefined, d = 3) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : Number(v.toPrecision(d)).toString());
  const pct = (v: number | null | undefined) => (v === null || v === undefined ? '–' : `${(100 * v).toFixed(1)}%`);
  if (s?.confusion && s.classes) {
    const v = confusionView(s.confusion, s.classes);
    resultBox.append(el('h2', {}, `Validation: accuracy ${pct(v.accuracy)} on ${v.total} examples`));
    const table = el('table', { class: 'confusion', 'aria-label': 'Confusion matrix: rows are the true classes, columns the predicted ones' });
    const head = el('tr');
    head.append(el('th', { scope: 'col' }, 'true ↓ · predicted →'), ...v.classes.map((c) => el('th', { scope: 'col' }, c)), el('th', { scope: 'col' }, 'recall'));
    table.append(head);
    v.counts.forEach((row, i) => {
      const tr = el('tr');
      tr.append(el('th', { scope: 'row' }, v.classes[i]));
      row.forEach((n, j) => {
        const td = el('td', { title: `true ${v.classes[i]}, predicted ${v.classes[j]}: ${n} (${pct(v.rowShare[i][j])} of the row)` }, String(n));
        const [R, G, B] = sequential(v.rowShare[i][j]);
        td.style.background = `rgb(${R},${G},${B})`;
        td.style.color = R * 0.299 + G * 0.587 + B * 0.114 > 140 ? '#000' : '#fff';
        tr.append(td);
      });
      tr.append(el('td', { class: 'rate' }, pct(v.recall[i])));
      table.append(tr);
    });
    const prec = el('tr');
    prec.append(el('th', { scope: 'row' }, 'precision'), ...v.precision.map((p) => el('td', { class: 'rate' }, pct(p))), el('td'));
    table.append(prec);
    resultBox.append(table);
  } else if (s?.rmse !== undefined) {
    resultBox.append(el('h2', {}, 'Validation forecast error (the data\'s units)'));
    const table = el('table', { class: 'metrics' });
    for (const [name, val, note] of [
      ['RMSE', s.rmse, 'this model'],
      ['MAE', s.mae, 'this model'],
      ['RMSE, persistence', s.baselineRmse, 'the last seen value'],
      ['RMSE, seasonal naive', s.seasonalBaselineRmse, 'the value one season earlier'],
    ] as const) {
      if (val === undefined) continue;
      const tr = el('tr');
      tr.append(el('th', { scope: 'row' }, name), el('td', {}, fmt(val)), el('td', { class: 'muted' }, note));
      table.append(tr);
    }
    resultBox.append(table);
  } else if (s?.mse !== undefined) {
    resultBox.append(el('h2', {}, `Validation MSE ${fmt(s.mse)} (always answering 1.0: ${fmt(s.baselineMse)})`));
  } else if (s?.runningMeanMse !== undefined) {
    resultBox.append(el('h2', {}, `Validation MSE ${fmt(s.mse)} (the mean so far: ${fmt(s.runningMeanMse)}, the last value: ${fmt(s.lastValueMse)})`));
  } else if (s?.chanceAccuracy !== undefined) {
    resultBox.append(el('h2', {}, `Validation accuracy at the query ${pct(s.accuracy)} (guessing: ${pct(s.chanceAccuracy)}), loss ${fmt(s.validLoss ?? undefined)}`));
  } else if (s?.baselineLoss !== undefined) {
    resultBox.append(el('h2', {}, `Validation loss ${fmt(s.validLoss ?? undefined)}, accuracy ${pct(s.accuracy)} (memoryless baseline loss ${fmt(s.baselineLoss)})`));
  }
  resultBox.hidden = resultBox.childElementCount === 0;
}

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
  const last = state.remote ? state.remote.last : state.steps.step[state.steps.step.length - 1];
  if (last !== undefined) parts.push(`step ${last}${r?.totalSteps ? ` / ${r.totalSteps}` : ''}`);
  const e = state.epochs[state.epochs.length - 1];
  if (e) parts.push(`epoch ${e.epoch}${r?.epochs ? ` / ${r.epochs}` : ''}`);
  if (e?.trainPerplexity) parts.push(`ppl ${e.trainPerplexity.toFixed(2)}`);
  else if (e?.accuracy != null) parts.push(`acc ${(100 * e.accuracy).toFixed(1)}%`);
  else if (e?.rmse != null) parts.push(`rmse ${e.rmse.toPrecision(3)}${e.baselineRmse != null ? ` (persistence ${e.baselineRmse.toPrecision(3)})` : ''}`);
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
  for (const k of Object.keys(to) as (keyof StepSeries)[]) for (const v of from[k]) to[k].push(v);
  smoothed = [];
}

// ---- messages ----
let pending = false;
function schedule(): void {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    redrawLoss();
    epochBox.hidden = state.epochs.length === 0;
    if (!epochBox.hidden) redrawEpochs();
    renderHeader();
    renderResults();
    renderSamples();
  });
}

window.addEventListener('message', (ev: MessageEvent<HostToDashboard>) => {
  const m = ev.data;
  switch (m.type) {
    case 'run/didSnapshot':
      state.run = m.run;
      state.steps = m.steps;
      state.remote =
        m.stepsTotal !== undefined && m.stepsTotal > m.steps.step.length
          ? { total: m.stepsTotal, first: m.stepsExtent?.[0] ?? m.steps.step[0] ?? 0, last: m.stepsExtent?.[1] ?? m.steps.step[m.steps.step.length - 1] ?? 0 }
          : undefined;
      state.hostSmoothed = m.smoothed ?? [];
      state.epochs = m.epochs;
      state.samples = m.samples;
      state.tokensPerSecond = m.tokensPerSecond;
      smoothed = [];
      persisted.modelFile = m.run.modelFile;
      persisted.compare = m.compare;
      persist();
      gates.setHistory(m.gateHistory);
      if ((m.overlays?.length ?? 0) !== state.overlays.length) {
        lossPlot?.destroy();
        lossPlot = undefined;
      }
      state.overlays = m.overlays ?? [];
      state.summary = m.summary;
      if (m.gates) {
        gates.setSnapshot(m.gates, false);
        through.setAvailable(true, m.gates.editable === false);
      }
      break;
    case 'gates/didSnapshot':
      gates.setSnapshot(m.gates);
      through.setAvailable(true, m.gates.editable === false);
      break;
    case 'through/didCompute':
      through.setResults(m.results);
      break;
    case 'through/didFail':
      through.fail(m.message);
      break;
    case 'gates/didFail':
      gates.fail(m.message);
      break;
    case 'series/didWindow':
      showWindow(m);
      return;
    case 'run/didStep':
      append(state.steps, m.steps);
      if (state.remote) {
        state.remote.total += m.steps.step.length;
        state.remote.last = m.steps.step[m.steps.step.length - 1] ?? state.remote.last;
        for (let i = 0; i < m.steps.step.length; i++) state.hostSmoothed.push(null);
        // a whole-run view follows the new steps with a fresh window, at most once a second
        if (!xView && Date.now() - lastLiveWindow > 1000) {
          lastLiveWindow = Date.now();
          requestWindow();
        }
      }
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
      if (m.summary) state.summary = m.summary;
      break;
  }
  schedule();
});

renderHeader();
vscode.postMessage({ type: 'webview/ready', smoothing: state.smoothing, width: width(lossDiv) });
