// Gradients through time, in the dashboard of a language model (`gatelab probe` in the editor):
//  - the connectivity view (Madsen, "Visualizing memorization in RNNs", Distill 2019): hover or
//    click a token of the probe text and the tokens before it are shaded by how much they still
//    matter to the prediction made there, ‖∂ℓ_t/∂x_s‖ scaled to the largest of the row;
//  - the gradient-flow chart: ‖∂ℓ/∂h_s‖ (and ‖∂ℓ/∂c_s‖ for LSTM layers) of the last prediction's loss
//    against s, log scale, one line per layer of this run and of the runs compared with it, so a plain
//    RNN, a GRU and an LSTM sit side by side.
// The host computes them from the runs' checkpoints on request (they are not streamed in training).

import uPlot from 'uplot';
import type { ThroughResult } from '../../src/shared/dashboard';
import { css, el } from './dom';

const visible = (t: string) => (t === ' ' ? '␣' : t === '\n' ? '⏎' : t);

/** Distinct line colours for the runs compared (the editor's chart palette where it has one). */
function palette(): string[] {
  return [
    css('--vscode-charts-blue', '#3794ff'),
    css('--vscode-charts-orange', '#d18616'),
    css('--vscode-charts-green', '#89d185'),
    css('--vscode-charts-purple', '#b180d7'),
    css('--vscode-charts-red', '#f14c4c'),
    css('--vscode-charts-yellow', '#cca700'),
  ];
}

export class ThroughView {
  readonly root = el('section', { class: 'through', 'aria-label': 'Gradients through time', hidden: '' });
  private readonly status = el('span', { class: 'muted', role: 'status' });
  private readonly runSel = el('select', { 'aria-label': 'Connectivity of run' });
  private readonly text = el('div', { class: 'conn-text', role: 'listbox', 'aria-label': 'Probe text: choose a position to see how much each earlier token matters to its prediction' });
  private readonly caption = el('p', { class: 'muted conn-caption' });
  private readonly chartDiv = el('div', { class: 'flow-chart' });
  /** the input of a classifier, forecaster or generated task (a language model uses the probe text above) */
  readonly input = el('input', { type: 'text', class: 'through-input', 'aria-label': 'Input to probe', placeholder: 'the input, as gatelab probe --input takes it: a sentence, a CSV file, abKBcdQ, 0.3 0.5* 0.1 0.8*', hidden: '' });
  private results: ThroughResult[] = [];
  private run = 0;
  private at = -1;
  private plot?: uPlot;

  constructor(private readonly compute: () => void) {
    const head = el('div', { class: 'row' });
    const btn = el('button', { type: 'button' }, 'Compute');
    btn.title = 'Gradients through time of this run (and the runs compared with it) for the probe text above, from their checkpoints';
    btn.addEventListener('click', () => {
      this.status.textContent = 'computing…';
      this.compute();
    });
    head.append(el('h2', {}, 'Gradients through time'), this.input, btn, this.status);
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') btn.click();
    });
    this.runSel.addEventListener('change', () => {
      this.run = Number(this.runSel.value);
      this.renderText();
    });
    const connHead = el('div', { class: 'row' });
    connHead.append(el('h3', {}, 'Connectivity: how much each earlier token still matters'), this.runSel);
    this.root.append(head, connHead, this.text, this.caption, el('h3', {}, 'Gradient flow of the last prediction’s loss, back through time (log scale)'), el('p', { class: 'muted' }, 'Solid: ‖∂ℓ/∂h_s‖ of each layer; dashed: ‖∂ℓ/∂c_s‖ of LSTM layers (the cell state the forget gate keeps). s is the position after which the state is taken.'), this.chartDiv);
  }

  /** Shown for every model: a language model probes the text above, the other tasks the input box. */
  setAvailable(yes: boolean, withInput = false): void {
    this.root.hidden = !yes;
    this.input.hidden = !withInput;
  }

  fail(message: string): void {
    this.status.textContent = message;
  }

  setResults(results: ThroughResult[]): void {
    this.results = results.filter((r) => r.through);
    const missing = results.filter((r) => r.error).map((r) => `${r.label}: ${r.error}`);
    this.status.textContent = missing.length ? missing.join('; ') : '';
    this.runSel.replaceChildren(...this.results.map((r, i) => el('option', { value: String(i) }, `${r.label} (${r.through!.cells.join(', ')})`)));
    this.runSel.hidden = this.results.length < 2;
    this.run = 0;
    const first = this.results[0]?.through;
    const T = first?.tokens.length ?? 0;
    // a language model: the last prediction with a target; a classifier or forecaster: its one prediction (after the last step)
    this.at = first && first.connectivity.length === 1 ? T - 1 : T >= 2 ? T - 2 : -1;
    this.renderText();
    this.renderChart();
  }

  /** The tokens of the chosen run, built once per run (a selection only repaints them). */
  private renderText(): void {
    const r = this.results[this.run]?.through;
    this.text.replaceChildren();
    if (!r) return;
    this.text.classList.toggle('words', r.tokens.some((t) => t.length > 1));
    r.tokens.forEach((tok, s) => {
      const span = el('span', { class: 'conn-tok', role: 'option', tabindex: '-1', 'data-s': String(s) }, visible(tok));
      span.addEventListener('mouseenter', () => this.select(s, false));
      span.addEventListener('click', () => this.select(s, true));
      span.addEventListener('keydown', (e) => {
        const to = e.key === 'ArrowRight' ? this.at + 1 : e.key === 'ArrowLeft' ? this.at - 1 : -1;
        if (to < 0) return;
        e.preventDefault();
        this.select(to, true);
      });
      this.text.append(span);
    });
    this.paint();
  }

  /** Shades the tokens up to the chosen prediction by its row of the connectivity matrix. */
  private paint(): void {
    const r = this.results[this.run]?.through;
    if (!r) return;
    const single = r.connectivity.length === 1;
    const row = this.at >= 0 ? r.connectivity[single ? 0 : this.at] : undefined;
    const max = row ? Math.max(...row.slice(0, this.at + 1), 1e-30) : 1;
    const accent = css('--vscode-charts-orange', '#d18616');
    this.text.querySelectorAll<HTMLElement>('.conn-tok').forEach((span, s) => {
      const chosen = s === this.at;
      span.classList.toggle('at', chosen);
      span.classList.toggle('target', !single && s === this.at + 1);
      span.setAttribute('aria-selected', String(chosen));
      span.tabIndex = chosen ? 0 : -1;
      if (row && s <= this.at) {
        const v = row[s] / max;
        // the share of the row's largest gradient (square root: small shares stay visible)
        span.style.background = `color-mix(in srgb, ${accent} ${Math.round(100 * Math.sqrt(v))}%, transparent)`;
        span.title = `‖∂ℓ/∂x‖ = ${row[s].toExponential(3)} (${Math.round(100 * v)}% of the largest)`;
      } else {
        span.style.background = '';
        span.removeAttribute('title');
      }
    });
    this.caption.textContent = single
      ? 'The prediction after the last step: the darker an input, the larger ‖∂ℓ/∂x_s‖ (the predicted class\'s loss, or the first forecast value).'
      : this.at >= 0 ? `Predicting ${JSON.stringify(r.tokens[this.at + 1])} after position ${this.at} (${JSON.stringify(r.tokens[this.at])}): the darker a token before it, the larger ‖∂ℓ/∂x_s‖. Hover or click another position; ← → move.` : '';
  }

  /** The prediction at position t (the last token predicts nothing with a target). */
  private select(t: number, focus: boolean): void {
    const r = this.results[this.run]?.through;
    if (!r || r.connectivity.length === 1 || t < 0 || t >= r.tokens.length - 1) return;
    this.at = t;
    this.paint();
    if (focus) (this.text.querySelector('.conn-tok.at') as HTMLElement | null)?.focus();
  }

  private renderChart(): void {
    this.plot?.destroy();
    this.plot = undefined;
    this.chartDiv.replaceChildren();
    const first = this.results[0]?.through;
    if (!first) return;
    const T = Math.max(...this.results.map((r) => r.through!.tokens.length));
    const xs = Array.from({ length: T }, (_, s) => s);
    const data: (number | null)[][] = [xs];
    const series: uPlot.Series[] = [{ label: 's' }];
    const colors = palette();
    // zeros (nothing after the prediction reaches its loss) are left out of a log scale
    const positive = (v: number[] | undefined) => xs.map((s) => (v && v[s] > 0 ? v[s] : null));
    this.results.forEach((r, i) => {
      const th = r.through!;
      for (const f of th.gradientFlow) {
        const cell = th.cells[f.layer];
        const stroke = colors[i % colors.length];
        data.push(positive(f.h));
        series.push({ label: `${r.label} l${f.layer} ${cell} ‖∂ℓ/∂h‖`, stroke, width: 2 - 0.5 * Math.min(f.layer, 2) });
        if (f.c) {
          data.push(positive(f.c));
          series.push({ label: `${r.label} l${f.layer} ${cell} ‖∂ℓ/∂c‖`, stroke, width: 1.5, dash: [5, 4] });
        }
      }
    });
    const fg = css('--vscode-foreground', '#ccc');
    const grid = css('--vscode-editorWidget-border', 'rgba(128, 128, 128, 0.25)');
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
    this.plot = new uPlot(
      {
        width: Math.max(320, Math.min(900, this.root.clientWidth || 700)),
        height: 260,
        scales: { x: { time: false }, y: { distr: 3 } },
        axes: [{ ...axis, label: 'step s (position in the probe text)' }, { ...axis, label: '‖∂ℓ/∂state‖', size: 70 }],
        series,
        legend: { live: true },
      },
      data as uPlot.AlignedData,
      this.chartDiv,
    );
  }
}
