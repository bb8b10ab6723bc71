// The gate views of the dashboard, for a probe input (editable for language models):
//  - units × time heatmaps of the gates i, f, o, the candidate g, the cell c and the hidden h,
//    aligned with the input tokens (LSTMVis), labelled with the gate names (a GRU layer has the
//    reset gate r, the update gate z, the candidate n and h: the maps are those the layer reports);
//  - the input text coloured by one chosen unit, with the top-5 next-token guesses under each token
//    (Karpathy's "visualizing RNNs");
//  - gate saturation: each unit's fraction of steps below 0.1 against above 0.9 per gate (Karpathy,
//    Johnson & Fei-Fei 2015, §4), and how it moved during training;
//  - histograms of each gate's values over training.
// Units can be ordered (variance, mean, saturation) and limited; hovering shows exact values.

import uPlot from 'uplot';
import type { GateHistoryRow } from '../../src/shared/dashboard';
import type { GateLayer, GateName, GatesMessage, SigmoidGateName } from '../../src/shared/protocol';
import { diverging, gateColor, orderUnits, sequential, UnitOrder } from './chartdata';
import { css, el } from './dom';

export const GATE_LABELS: Record<GateName, string> = {
  i: 'input gate i',
  f: 'forget gate f',
  o: 'output gate o',
  g: 'candidate g',
  c: 'cell c',
  h: 'hidden h',
  r: 'reset gate r',
  z: 'update gate z',
  n: 'candidate n',
};
/** The maps of a layer as reported (older snapshots without the list are LSTM layers). */
const LSTM_GATES: GateName[] = ['i', 'f', 'o', 'g', 'c', 'h'];
const gatesOf = (L: Pick<GateLayer, 'gates'> | undefined): GateName[] => L?.gates ?? LSTM_GATES;
/** The sigmoid gates of a layer, whose saturation is shown (LSTM i, f, o; GRU r, z; an equation cell's sigmoid equations). */
const sigmoidGatesOf = (L: Pick<GateLayer, 'saturation'> & Partial<Pick<GateLayer, 'sigmoid'>>): SigmoidGateName[] => L.sigmoid ?? (['i', 'f', 'o', 'r', 'z'] as const).filter((g) => L.saturation[g]);
/** The gate that keeps the old state (LSTM forget gate f, GRU update gate z; else a cell's first gate). */
const memoryGate = (gates: GateName[], L?: Pick<GateLayer, 'sigmoid'>): GateName => (gates.includes('f') ? 'f' : gates.includes('z') ? 'z' : (L?.sigmoid?.[0] ?? gates[0]));
/** A map's caption: the built-in cells' names spelled out; an equation cell's equations as named in the model file. */
export const labelOf = (L: Pick<GateLayer, 'cell'> | undefined, g: GateName): string => (L?.cell === 'cell' ? g : (GATE_LABELS[g] ?? g));
/** A heatmap's caption: the label, with an equation cell's equation as written (`f = sigmoid(W x + U h + b)`). */
const captionOf = (L: Pick<GateLayer, 'cell' | 'formulas'> | undefined, g: GateName): string => (L?.formulas?.[g] ? `${g} = ${L.formulas[g]}` : labelOf(L, g));
/** A value's colour: gates (within [0, 1]) sequential, others diverging over the map's range. */
function colorOf(L: Pick<GateLayer, 'ranges'> | undefined, gate: GateName, v: number): [number, number, number] {
  const r = L?.ranges?.[gate];
  if (!r) return gateColor(gate, v);
  return r[0] >= 0 && r[1] <= 1 ? sequential(v) : diverging(v / Math.max(Math.abs(r[0]), Math.abs(r[1])));
}

function visibleToken(t: string): string {
  return t === ' ' ? '␣' : t === '\n' ? '⏎' : t;
}

export class GatesView {
  readonly root = el('section', { class: 'gates', 'aria-label': 'Gates' });
  /** the probe text as it stands in its box */
  get probeText(): string {
    return this.probe.value;
  }
  private snap?: GatesMessage;
  private history: GateHistoryRow[] = [];
  private layer = 0;
  private order: UnitOrder = 'variance';
  private limit = 64;
  private unit = 0;
  private textGate: GateName = 'h';
  private histGate: GateName = 'f';
  private readonly status = el('span', { class: 'muted' });
  private readonly probe = el('textarea', { rows: '2', 'aria-label': 'Probe text', spellcheck: 'false' });
  private readonly layerSel = el('select', { 'aria-label': 'Layer' });
  private readonly heatGrid = el('div', { class: 'heatmaps' });
  private readonly textView = el('div', { class: 'probe-text', 'aria-label': 'Probe text coloured by the chosen unit' });
  private readonly unitLabel = el('span', { class: 'muted' });
  /** the saturation views; hidden for a layer without sigmoid gates (a plain RNN), which says so instead */
  private readonly satSection = el('section', { class: 'saturation' });
  private readonly noGates = el('p', { class: 'muted no-gates', hidden: '' }, 'A plain RNN layer has no gates to saturate: its hidden state h, rewritten at every step through W_hh and its activation, is all it carries from step to step.');
  private readonly satCanvas = el('canvas', { class: 'scatter', width: '320', height: '260', role: 'img', 'aria-label': 'Gate saturation scatter' });
  private readonly satHistDiv = el('div');
  private readonly histCanvas = el('canvas', { class: 'hist', role: 'img', 'aria-label': 'Gate histograms over training' });
  private readonly tip = el('div', { class: 'tip', hidden: '' });
  private readonly probeRow = el('div', { class: 'row' });
  private readonly textGateSel = el('select', { 'aria-label': 'Colour the text by' });
  private readonly histSel = el('select', { 'aria-label': 'Histogram of' });
  private satPlot?: uPlot;
  /** the sigmoid gates the saturation plot was made for */
  private satPlotGates = '';
  private order_: number[] = [];
  private readonly cursor = { t: 0, r: 0 };
  /** screen-reader announcement of the keyboard cursor */
  private readonly live = el('div', { class: 'sr-only', 'aria-live': 'polite' });

  constructor(private readonly post: (text: string) => void) {
    const head = el('div', { class: 'row' });
    head.append(el('h2', {}, 'Gates'), this.status);
    const probeRow = this.probeRow;
    const run = el('button', { type: 'button', title: 'Run the probe text through the model' }, 'Probe');
    run.addEventListener('click', () => this.post(this.probe.value));
    this.probe.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) this.post(this.probe.value);
    });
    probeRow.append(this.probe, run);

    const controls = el('div', { class: 'row controls' });
    const orderSel = el('select', { 'aria-label': 'Order units by' });
    for (const [v, t] of [
      ['variance', 'units by variance'],
      ['mean', 'units by mean'],
      ['saturated-high', 'units by time above 0.9'],
      ['saturated-low', 'units by time below 0.1'],
      ['index', 'units by index'],
    ])
      orderSel.append(el('option', { value: v }, t));
    orderSel.value = this.order;
    orderSel.addEventListener('change', () => {
      this.order = orderSel.value as UnitOrder;
      this.render();
    });
    const limitSel = el('select', { 'aria-label': 'How many units' });
    for (const n of ['16', '32', '64', '128', 'all']) limitSel.append(el('option', { value: n }, n === 'all' ? 'all units' : `${n} units`));
    limitSel.value = String(this.limit);
    limitSel.addEventListener('change', () => {
      this.limit = limitSel.value === 'all' ? Infinity : Number(limitSel.value);
      this.render();
    });
    this.layerSel.addEventListener('change', () => {
      this.layer = Number(this.layerSel.value);
      this.render();
      // the views over training follow the layer too (a GRU layer has other gates than an LSTM layer)
      this.renderSaturationHistory();
      this.renderHistograms();
    });
    controls.append(this.layerSel, orderSel, limitSel);

    const textHead = el('div', { class: 'row' });
    const textGateSel = this.textGateSel;
    this.fillGateSelect(textGateSel, LSTM_GATES, this.textGate);
    textGateSel.addEventListener('change', () => {
      this.textGate = textGateSel.value as GateName;
      this.renderText();
    });
    textHead.append(el('h3', {}, 'Text coloured by one unit'), textGateSel, this.unitLabel);

    const satBox = el('div', { class: 'sat' });
    const satLeft = el('figure');
    satLeft.append(el('figcaption', {}, 'Saturation: fraction of steps < 0.1 (x) and > 0.9 (y), one point per unit'), this.satCanvas);
    const satRight = el('figure', { class: 'grow' });
    satRight.append(el('figcaption', {}, 'Mean saturation during training'), this.satHistDiv);
    satBox.append(satLeft, satRight);

    const histHead = el('div', { class: 'row' });
    const histSel = this.histSel;
    this.fillGateSelect(histSel, LSTM_GATES, this.histGate);
    histSel.addEventListener('change', () => {
      this.histGate = histSel.value as GateName;
      this.renderHistograms();
    });
    histHead.append(el('h3', {}, 'Histograms over training'), histSel);

    this.satSection.append(el('h3', {}, 'Gate saturation'), satBox);
    this.root.append(head, probeRow, controls, this.heatGrid, textHead, this.textView, this.satSection, this.noGates, histHead, this.histCanvas, this.tip, this.live);
    this.root.hidden = true;
  }

  private fillGateSelect(sel: HTMLSelectElement, gates: GateName[], value: GateName): void {
    if ([...sel.options].map((o) => o.value).join() !== gates.join()) sel.replaceChildren(...gates.map((g) => el('option', { value: g }, labelOf(this.snap?.layers[this.layer], g))));
    sel.value = value;
  }

  /** Keeps the chosen maps among those of the shown layer, and the selects listing them. */
  private syncGates(L: GateLayer): void {
    const gates = gatesOf(L);
    if (!gates.includes(this.textGate)) this.textGate = gates.includes('h') ? 'h' : gates[0];
    if (!gates.includes(this.histGate)) this.histGate = memoryGate(gates, L);
    this.fillGateSelect(this.textGateSel, gates, this.textGate);
    this.fillGateSelect(this.histSel, gates, this.histGate);
  }

  setHistory(rows: GateHistoryRow[]): void {
    this.history = rows;
    this.renderSaturationHistory();
    this.renderHistograms();
  }

  setSnapshot(g: GatesMessage, fromTraining = true): void {
    const first = !this.snap;
    this.snap = g;
    this.root.hidden = false;
    if (first || document.activeElement !== this.probe) this.probe.value = g.tokens.join(g.tokens.every((t) => t.length <= 1) ? '' : ' ');
    if (fromTraining && !this.history.some((r) => r.step === g.step))
      this.history.push({ step: g.step, layers: g.layers.map((l) => ({ layer: l.layer, histograms: l.histograms, saturation: l.saturation })) });
    this.layerSel.replaceChildren(...g.layers.map((l, k) => el('option', { value: String(k) }, `layer ${l.layer}${l.direction === 'reverse' ? ' (reverse)' : ''} · ${l.units} units`)));
    this.layer = Math.min(this.layer, g.layers.length - 1);
    this.layerSel.value = String(this.layer);
    this.layerSel.hidden = g.layers.length < 2;
    this.status.textContent = `${g.editable === false ? 'an example' : 'probe'} of ${g.tokens.length} steps at step ${g.step}`;
    this.probeRow.hidden = g.editable === false;
    this.render();
    this.renderSaturationHistory();
    this.renderHistograms();
  }

  fail(message: string): void {
    this.status.textContent = `probe failed: ${message}`;
  }

  private render(): void {
    const g = this.snap;
    if (!g) return;
    const L = g.layers[this.layer];
    const T = g.tokens.length;
    const H = L.units;
    const gates = gatesOf(L);
    this.syncGates(L);
    // the unit order follows the hidden state's statistics (saturation: the forget / update
    // gate's), shared by all maps
    this.order_ = orderUnits(L.values[this.order === 'saturated-high' || this.order === 'saturated-low' ? memoryGate(gates, L) : 'h']!, T, H, this.order, Math.min(H, this.limit));
    if (!this.order_.includes(this.unit)) this.unit = this.order_[0];
    const rows = this.order_.length;
    // word tokens get wider columns and upright labels (as LSTMVis); characters fit under 12 px
    const words = g.tokens.some((t) => t.length > 1);
    const cw = Math.max(3, Math.min(words ? 22 : 12, Math.floor(((this.root.clientWidth || 900) - 60) / T)));
    const ch = Math.max(1, Math.min(8, Math.floor(160 / rows)));
    const figs = gates.map((gate) => {
      const fig = el('figure', { class: 'heatmap' });
      const cap = el('figcaption', {}, captionOf(L, gate));
      // numeric inputs: their channels as small lines over the steps; else the tokens
      const tokens = el('canvas', { width: String(T * cw), height: g.signals ? '36' : words && cw >= 8 ? '64' : '14', class: g.signals ? 'tokens signals' : 'tokens', 'aria-hidden': 'true' });
      const c = el('canvas', { width: String(T * cw), height: String(rows * ch), role: 'img', 'aria-label': `${labelOf(L, gate)}: ${rows} units × ${T} steps` });
      if (g.signals) drawSignals(tokens, g.signals, T, cw);
      else this.drawTokens(tokens, g.tokens, cw);
      const ctx = c.getContext('2d')!;
      const img = ctx.createImageData(T * cw, rows * ch);
      const vals = L.values[gate]!;
      for (let r = 0; r < rows; r++) {
        const u = this.order_[r];
        for (let t = 0; t < T; t++) {
          const [R, G, B] = colorOf(L, gate, vals[t * H + u]);
          for (let y = r * ch; y < (r + 1) * ch; y++)
            for (let x = t * cw; x < (t + 1) * cw; x++) {
              const o = (y * T * cw + x) * 4;
              img.data[o] = R;
              img.data[o + 1] = G;
              img.data[o + 2] = B;
              img.data[o + 3] = 255;
            }
        }
      }
      ctx.putImageData(img, 0, 0);
      // the chosen unit's row
      const sel = this.order_.indexOf(this.unit);
      if (sel >= 0) {
        ctx.strokeStyle = css('--vscode-focusBorder', '#007fd4');
        ctx.lineWidth = 1;
        ctx.strokeRect(0.5, sel * ch - 0.5, T * cw - 1, ch + 1);
      }
      c.addEventListener('mousemove', (e) => {
        const t = Math.floor(e.offsetX / cw);
        const r = Math.floor(e.offsetY / ch);
        if (t < 0 || t >= T || r < 0 || r >= rows) return;
        const u = this.order_[r];
        this.tip.hidden = false;
        this.tip.textContent = `${labelOf(L, gate)} · unit ${u} · step ${t} “${visibleToken(g.tokens[t])}” · ${vals[t * H + u].toFixed(4)}`;
        this.tip.style.left = `${e.pageX + 12}px`;
        this.tip.style.top = `${e.pageY + 12}px`;
      });
      c.addEventListener('mouseleave', () => (this.tip.hidden = true));
      // keyboard: arrows move a cell cursor (announced), Enter chooses the unit for the text view
      c.tabIndex = 0;
      c.addEventListener('keydown', (e) => {
        const k = e.key;
        if (!['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'Enter', 'Home', 'End'].includes(k)) return;
        e.preventDefault();
        const cur = this.cursor;
        if (k === 'ArrowLeft') cur.t = Math.max(0, cur.t - 1);
        if (k === 'ArrowRight') cur.t = Math.min(T - 1, cur.t + 1);
        if (k === 'ArrowUp') cur.r = Math.max(0, cur.r - 1);
        if (k === 'ArrowDown') cur.r = Math.min(rows - 1, cur.r + 1);
        if (k === 'Home') cur.t = 0;
        if (k === 'End') cur.t = T - 1;
        const u = this.order_[cur.r];
        if (k === 'Enter') {
          this.unit = u;
          this.render();
          (this.heatGrid.querySelectorAll('canvas[role="img"]')[gates.indexOf(gate)] as HTMLCanvasElement | undefined)?.focus();
          return;
        }
        this.live.textContent = `${labelOf(L, gate)} · unit ${u} · step ${cur.t} “${visibleToken(g.tokens[cur.t])}” · ${vals[cur.t * H + u].toFixed(4)}`;
        const r = c.getBoundingClientRect();
        this.tip.hidden = false;
        this.tip.textContent = this.live.textContent;
        this.tip.style.left = `${r.left + window.scrollX + cur.t * cw + 12}px`;
        this.tip.style.top = `${r.top + window.scrollY + cur.r * ch + 12}px`;
      });
      c.addEventListener('blur', () => (this.tip.hidden = true));
      c.addEventListener('click', (e) => {
        const r = Math.floor(e.offsetY / ch);
        if (r >= 0 && r < rows) {
          this.unit = this.order_[r];
          this.render();
        }
      });
      fig.append(cap, tokens, c);
      return fig;
    });
    this.heatGrid.replaceChildren(...(g.signals ? [signalLegend(g.signals)] : []), ...figs);
    this.renderText();
    this.renderSaturation();
  }

  private drawTokens(c: HTMLCanvasElement, tokens: string[], cw: number): void {
    const ctx = c.getContext('2d')!;
    ctx.fillStyle = css('--vscode-foreground', '#ccc');
    ctx.font = `${Math.min(11, cw + 2)}px ${css('--vscode-editor-font-family', 'monospace')}`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    if (tokens.some((t) => t.length > 1)) {
      if (cw < 8) return; // words do not fit: hover shows them
      // words read bottom-up from the heatmap's column, cut to the strip's height
      ctx.font = `${Math.min(11, cw)}px ${css('--vscode-editor-font-family', 'monospace')}`;
      ctx.textAlign = 'left';
      tokens.forEach((t, i) => {
        ctx.save();
        ctx.translate(i * cw + cw / 2, c.height - 2);
        ctx.rotate(-Math.PI / 2);
        const w = visibleToken(t);
        ctx.fillText(w.length > 9 ? w.slice(0, 8) + '…' : w, 0, 0);
        ctx.restore();
      });
      return;
    }
    tokens.forEach((t, i) => ctx.fillText(visibleToken(t).slice(0, Math.max(1, Math.floor(cw / 6))), i * cw + cw / 2, 7));
  }

  private renderText(): void {
    const g = this.snap;
    if (!g) return;
    const L = g.layers[this.layer];
    const H = L.units;
    const vals = L.values[this.textGate] ?? L.values.h!;
    this.unitLabel.textContent = `unit ${this.unit} of layer ${L.layer} (click a heatmap row to choose)`;
    const cells = g.tokens.map((tok, t) => {
      const v = vals[t * H + this.unit];
      const [R, G, B] = colorOf(L, this.textGate, v);
      const cell = el('div', { class: 'tok', tabindex: '0', title: `${labelOf(L, this.textGate)} = ${v.toFixed(4)}` });
      const ch = el('span', { class: 'ch' }, visibleToken(tok));
      ch.style.background = `rgb(${R},${G},${B})`;
      ch.style.color = R * 0.299 + G * 0.587 + B * 0.114 > 140 ? '#000' : '#fff';
      const top = el('ol', { class: 'top5', 'aria-label': 'likeliest next tokens' });
      for (const guess of g.top[t] ?? []) {
        const li = el('li', {}, visibleToken(guess.token));
        li.style.opacity = String(0.35 + 0.65 * Math.min(1, guess.p * 2));
        li.title = `${(100 * guess.p).toFixed(1)}%`;
        top.append(li);
      }
      cell.append(ch, top);
      return cell;
    });
    this.textView.classList.toggle('words', g.tokens.some((t) => t.length > 1));
    this.textView.replaceChildren(...cells);
  }

  private renderSaturation(): void {
    const g = this.snap;
    if (!g) return;
    const L = g.layers[this.layer];
    const gated = sigmoidGatesOf(L).length > 0;
    this.satSection.hidden = !gated;
    this.noGates.hidden = gated;
    this.noGates.textContent =
      L.cell === 'cell'
        ? 'This cell has no gates to saturate: none of its equations is a sigmoid (or hard sigmoid) of its inputs.'
        : 'A plain RNN layer has no gates to saturate: its hidden state h, rewritten at every step through W_hh and its activation, is all it carries from step to step.';
    if (!gated) return;
    const c = this.satCanvas;
    const ctx = c.getContext('2d')!;
    const W = c.width;
    const Hh = c.height;
    const pad = 34;
    ctx.clearRect(0, 0, W, Hh);
    const fg = css('--vscode-foreground', '#ccc');
    const grid = css('--vscode-editorWidget-border', '#555');
    // the unit square: x = fraction below 0.1, y = fraction above 0.9 (only x + y ≤ 1 is reachable)
    ctx.strokeStyle = grid;
    ctx.strokeRect(pad, 8, W - pad - 8, Hh - pad - 8);
    ctx.beginPath();
    ctx.moveTo(pad, 8);
    ctx.lineTo(W - 8, Hh - pad);
    ctx.stroke();
    ctx.fillStyle = fg;
    ctx.font = '10px sans-serif';
    ctx.textAlign = 'center';
    for (const v of [0, 0.5, 1]) {
      ctx.fillText(String(v), pad + v * (W - pad - 8), Hh - pad + 12);
      ctx.textAlign = 'right';
      ctx.fillText(String(v), pad - 4, Hh - pad - v * (Hh - pad - 8) + 3);
      ctx.textAlign = 'center';
    }
    ctx.fillText('fraction of steps < 0.1', pad + (W - pad) / 2, Hh - 4);
    sigmoidGatesOf(L).forEach((gate, k) => {
      const s = L.saturation[gate]!;
      ctx.fillStyle = satColor(gate, k);
      ctx.globalAlpha = 0.75;
      for (let u = 0; u < s.low.length; u++) {
        const x = pad + s.low[u] * (W - pad - 8);
        const y = Hh - pad - s.high[u] * (Hh - pad - 8);
        ctx.beginPath();
        ctx.arc(x, y, 2.5, 0, 2 * Math.PI);
        ctx.fill();
      }
      ctx.globalAlpha = 1;
      ctx.fillText(`● ${labelOf(L, gate)}`, W - 60, 22 + 13 * k);
    });
  }

  private renderSaturationHistory(): void {
    const rows = this.history.filter((r) => r.layers[this.layer]);
    if (rows.length === 0) return;
    const mean = (a: number[] | undefined) => (a?.length ? a.reduce((x, y) => x + y, 0) / a.length : 0);
    const sig = sigmoidGatesOf(rows[rows.length - 1].layers[this.layer]);
    const data: uPlot.AlignedData = [
      rows.map((r) => r.step),
      ...sig.flatMap((g) => [rows.map((r) => mean(r.layers[this.layer].saturation[g]?.high)), rows.map((r) => mean(r.layers[this.layer].saturation[g]?.low))]),
    ];
    // another set of gates (a GRU layer beside LSTM layers): a new plot with its series
    if (this.satPlot && this.satPlotGates !== sig.join()) {
      this.satPlot.destroy();
      this.satPlot = undefined;
    }
    this.satPlotGates = sig.join();
    if (!this.satPlot) {
      const fg = css('--vscode-foreground', '#ccc');
      const grid = css('--vscode-editorWidget-border', '#444');
      const axis = { stroke: fg, grid: { stroke: grid, width: 0.5 }, ticks: { stroke: grid } };
      this.satPlot = new uPlot(
        {
          width: Math.max(300, (this.satHistDiv.parentElement?.clientWidth ?? 500) - 10),
          height: 230,
          scales: { x: { time: false }, y: { range: [0, 1] } },
          axes: [{ ...axis, label: 'step' }, { ...axis, label: 'fraction of steps' }],
          series: [
            { label: 'step' },
            ...sig.flatMap((g, k) => [
              { label: `${g} > 0.9`, stroke: satColor(g, k), width: 2 },
              { label: `${g} < 0.1`, stroke: satColor(g, k), width: 1, dash: [4, 4] },
            ]),
          ],
        },
        data,
        this.satHistDiv,
      );
    } else this.satPlot.setData(data);
  }

  private renderHistograms(): void {
    const rows = this.history.filter((r) => r.layers[this.layer]);
    const c = this.histCanvas;
    const bins = rows[0]?.layers[this.layer].histograms[this.histGate]?.length ?? 20;
    const n = Math.max(1, rows.length);
    const cw = Math.max(2, Math.min(16, Math.floor(((this.root.clientWidth || 900) - 60) / n)));
    const bh = 8;
    c.width = n * cw;
    c.height = bins * bh;
    const ctx = c.getContext('2d')!;
    rows.forEach((r, x) => {
      const h = r.layers[this.layer].histograms[this.histGate] ?? [];
      const max = Math.max(1, ...h);
      h.forEach((count, b) => {
        const [R, G, B] = sequential(Math.sqrt(count / max));
        ctx.fillStyle = `rgb(${R},${G},${B})`;
        // low values at the bottom
        ctx.fillRect(x * cw, (bins - 1 - b) * bh, cw, bh);
      });
    });
    c.title = `${labelOf(this.snap?.layers[this.layer], this.histGate)}: one column per snapshot (left: first), values from bottom (low) to top (high)`;
  }
}

/** The colour of input channel k (numeric inputs). */
function channelColor(k: number): string {
  const palette: [string, string][] = [
    ['--vscode-charts-blue', '#3794ff'],
    ['--vscode-charts-orange', '#d18616'],
    ['--vscode-charts-green', '#89d185'],
    ['--vscode-charts-purple', '#b180d7'],
    ['--vscode-charts-yellow', '#cca700'],
    ['--vscode-charts-red', '#f14c4c'],
  ];
  const [v, d] = palette[k % palette.length];
  return css(v, d);
}

/** The channels of a numeric input as lines, one per channel, each scaled to its own range over the probe. */
function drawSignals(c: HTMLCanvasElement, s: NonNullable<GatesMessage['signals']>, T: number, cw: number): void {
  const ctx = c.getContext('2d')!;
  const C = s.names.length;
  const pad = 3;
  const h = c.height - 2 * pad;
  s.names.forEach((_, k) => {
    let lo = Infinity;
    let hi = -Infinity;
    for (let t = 0; t < T; t++) {
      const v = s.values[t * C + k];
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const span = hi - lo || 1;
    ctx.strokeStyle = channelColor(k);
    ctx.lineWidth = 1.25;
    ctx.beginPath();
    for (let t = 0; t < T; t++) {
      const x = t * cw + cw / 2;
      const y = pad + h - ((s.values[t * C + k] - lo) / span) * h;
      if (t === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    }
    ctx.stroke();
  });
}

/** The names of the input channels, in their line colours. */
function signalLegend(s: NonNullable<GatesMessage['signals']>): HTMLElement {
  const legend = el('div', { class: 'signal-legend', role: 'list', 'aria-label': 'input channels' });
  s.names.forEach((n, k) => {
    const item = el('span', { role: 'listitem' }, `— ${n}`);
    item.style.color = channelColor(k);
    legend.append(item);
  });
  return legend;
}

/**
 * The colour of the k-th sigmoid gate of a layer in the saturation views: the built-in gates keep
 * theirs (f and z, the gates that keep the state, alike); an equation cell's others take the palette.
 */
function satColor(gate: SigmoidGateName, k: number): string {
  const builtin: Record<string, [string, string]> = {
    i: ['--vscode-charts-blue', '#3794ff'],
    f: ['--vscode-charts-red', '#f14c4c'],
    o: ['--vscode-charts-green', '#89d185'],
    r: ['--vscode-charts-purple', '#b180d7'],
    z: ['--vscode-charts-red', '#f14c4c'],
  };
  const palette: [string, string][] = [
    ['--vscode-charts-orange', '#d18616'],
    ['--vscode-charts-yellow', '#cca700'],
    ['--vscode-charts-blue', '#3794ff'],
    ['--vscode-charts-green', '#89d185'],
    ['--vscode-charts-purple', '#b180d7'],
  ];
  const [v, d] = builtin[gate] ?? palette[k % palette.length];
  return css(v, d);
}
