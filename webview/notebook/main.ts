// The notebook side panel's webview: every run a cell, grouped by model file, newest last; a cell
// shows what changed since the previous run, the live progress, a loss sparkline, the final
// metrics and the latest sample, with actions (dashboard, re-run, duplicate with edits, stop,
// delete, compare, source) and inference under finished runs. Talks to the host only through the
// typed messages of src/shared/notebook.ts. Only the cells in view are in the DOM (./virtual.ts);
// UI-local state (scroll, open parts, drafts, the compare selection) survives reloads via setState.

import { Setting, sweepGroups } from '../../src/shared/sweep';
import type { CellGroup, EditableKey, EditProblem, HostToNotebook, InferenceEntry, NotebookCell, NotebookToHost } from '../../src/shared/notebook';
import { cellGroupOf } from '../../src/shared/notebook';
import { sparkPath, sparkPoints, yRange } from './sparkline';
import { listWindow, scrollToRow } from './virtual';

interface VsCodeApi {
  postMessage(m: NotebookToHost): void;
  getState(): unknown;
  setState(s: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

interface Draft {
  prefix?: string;
  temperature?: number;
  length?: number;
  text?: string;
  at?: number;
  steps?: number;
  /** the duplicate editor's values, by key */
  edits?: Record<string, string>;
  /** keys added to the editor */
  extra?: string[];
}

interface UiState {
  scrollTop: number;
  selected: string[];
  /** cells with their inference part open */
  infer: string[];
  /** cells with the duplicate editor open */
  edit: string[];
  collapsed: string[];
  drafts: Record<string, Draft>;
  focus?: string;
  filter: string;
}

const vscode = acquireVsCodeApi();
const saved = (vscode.getState() ?? {}) as Partial<UiState>;
const ui: UiState = { scrollTop: 0, selected: [], infer: [], edit: [], collapsed: [], drafts: {}, filter: '', ...saved };

let groups: CellGroup[] = [];
let schemaKeys: EditableKey[] = [];
let loaded = false;
const cells = new Map<string, NotebookCell>();
/** bumped when a cell's data changes: its DOM is rebuilt on the next render */
const versions = new Map<string, number>();
const problems = new Map<string, EditProblem[]>();
const busy = new Map<string, number>();
const failures = new Map<string, string>();
const series = new Map<string, { values: number[]; validStart: number; error?: string }>();
let requestSeq = 1;
/** a run the host asked to show before its cell arrived */
let pendingReveal: string | undefined;

function persist(): void {
  vscode.setState(ui);
}

function post(m: NotebookToHost): void {
  vscode.postMessage(m);
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | undefined> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag: string, attrs: Record<string, string>): SVGElement {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function button(label: string, aria: string, onClick: () => void, cls = 'secondary'): HTMLButtonElement {
  const b = el('button', { type: 'button', class: cls, 'aria-label': aria, title: aria }, label);
  b.addEventListener('click', (e) => {
    e.stopPropagation();
    onClick();
  });
  return b;
}

function fmtDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}:${String(s % 60).padStart(2, '0')}`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}`;
}

function fmtTime(t: number): string {
  const d = new Date(t);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

function fmtNum(x: number): string {
  return Math.abs(x) >= 1000 ? x.toFixed(0) : +x.toPrecision(4) + '';
}

const short = (key: string) => key.replace(/^train\.optimizer\./, '').replace(/^model\.layers\.(\d+)\./, 'L$1.').replace(/^(train|data|model)\./, '');

// ---- layout ----

const app = document.getElementById('app')!;
const toolbar = el('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Runs' });
const count = el('span', { class: 'count', role: 'status', 'aria-live': 'polite' });
const filter = el('input', { type: 'search', placeholder: 'Filter runs', 'aria-label': 'Filter runs by model, file or status' });
filter.value = ui.filter;
const compareBtn = button('Compare', 'Compare the selected runs in one dashboard', () => {
  if (ui.selected.length >= 2) post({ type: 'cells/compare', runIds: [...ui.selected] });
}, 'primary');
const clearBtn = button('Clear', 'Clear the selection', () => {
  ui.selected = [];
  persist();
  bumpAll();
});
toolbar.append(count, filter, compareBtn, clearBtn);
const scroller = el('div', { class: 'scroller' });
const feed = el('div', { class: 'feed', role: 'feed', 'aria-label': 'Runs, grouped by model file' });
const padTop = el('div', { class: 'pad', 'aria-hidden': 'true' });
const padBottom = el('div', { class: 'pad', 'aria-hidden': 'true' });
const rowsBox = el('div', { class: 'rows' });
feed.append(padTop, rowsBox, padBottom);
const empty = el('div', { class: 'empty', hidden: '' });
scroller.append(feed, empty);
app.append(toolbar, scroller);

filter.addEventListener('input', () => {
  ui.filter = filter.value;
  persist();
  rebuildRows();
});

// ---- rows and the virtual window ----

type Row = { kind: 'group'; key: string; group: CellGroup; shown: number } | { kind: 'cell'; key: string; cell: NotebookCell; pos: number; size: number };
let rows: Row[] = [];
const heights = new Map<string, number>();
const rendered = new Map<string, { el: HTMLElement; version: number | string }>();

function estimate(r: Row): number {
  if (r.kind === 'group') return 30;
  let h = 118;
  if (r.cell.diff?.changes.length) h += 22;
  if (r.cell.latest) h += 36;
  if (ui.infer.includes(r.cell.id)) h += 160 + 60 * Math.min(3, r.cell.inference.length);
  if (ui.edit.includes(r.cell.id)) h += 220;
  return h;
}

function matches(c: NotebookCell, q: string): boolean {
  if (!q) return true;
  const s = `${c.model} ${c.fileLabel} ${c.status} ${c.device ?? ''} ${c.task ?? ''}`.toLowerCase();
  return q.toLowerCase().split(/\s+/).filter(Boolean).every((w) => s.includes(w));
}

function rebuildRows(): void {
  rows = [];
  let pos = 0;
  const all = groups.flatMap((g) => g.cells.filter((c) => matches(c, ui.filter)).map((c) => ({ g, c })));
  const size = all.length;
  for (const g of groups) {
    const shown = g.cells.filter((c) => matches(c, ui.filter));
    if (shown.length === 0) continue;
    rows.push({ kind: 'group', key: `g:${g.modelFile}`, group: g, shown: shown.length });
    if (ui.collapsed.includes(g.modelFile)) {
      pos += shown.length;
      continue;
    }
    for (const c of shown) rows.push({ kind: 'cell', key: c.id, cell: c, pos: ++pos, size });
  }
  const total = groups.reduce((n, g) => n + g.cells.length, 0);
  count.textContent = !loaded ? 'Loading runs…' : ui.filter ? `${size} of ${total} runs` : `${total} run${total === 1 ? '' : 's'}`;
  empty.hidden = !loaded || total > 0;
  empty.textContent = 'No runs yet. Click ▶ Train above a model in a *.gatelab.yaml file; each run appears here as a cell.';
  compareBtn.disabled = ui.selected.length < 2;
  compareBtn.textContent = ui.selected.length >= 2 ? `Compare ${ui.selected.length}` : 'Compare';
  clearBtn.hidden = ui.selected.length === 0;
  render();
}

function rowHeights(): number[] {
  return rows.map((r) => heights.get(r.key) ?? estimate(r));
}

let rendering = false;
function render(): void {
  if (rendering) return;
  rendering = true;
  const win = listWindow(rowHeights(), scroller.scrollTop, scroller.clientHeight || 600);
  padTop.style.height = `${win.padTop}px`;
  padBottom.style.height = `${win.padBottom}px`;
  const want = rows.slice(win.start, win.end);
  const keep = new Set(want.map((r) => r.key));
  for (const [k, v] of rendered) {
    if (!keep.has(k)) {
      if (v.el.contains(document.activeElement)) continue; // never drop the focused cell mid-typing
      v.el.remove();
      rendered.delete(k);
    }
  }
  let prev: Element | null = null;
  for (const r of want) {
    // a group row is made again only when what it shows changed (a row replaced between a press
    // and its release would swallow the click on its buttons)
    const version = r.kind === 'cell' ? versions.get(r.cell.id) ?? 0 : groupSignature(r);
    let got = rendered.get(r.key);
    if (!got || got.version !== version) {
      const fresh = r.kind === 'group' ? groupRow(r) : cellRow(r.cell, r.pos, r.size, got?.el);
      if (got && got.el !== fresh) got.el.replaceWith(fresh);
      got = { el: fresh, version };
      rendered.set(r.key, got);
    } else if (r.kind === 'cell') {
      got.el.setAttribute('aria-posinset', String(r.pos));
      got.el.setAttribute('aria-setsize', String(r.size));
    }
    const at: Element | null = prev ? prev.nextElementSibling : rowsBox.firstElementChild;
    if (at !== got.el) rowsBox.insertBefore(got.el, at);
    prev = got.el;
  }
  let changed = false;
  for (const r of want) {
    const h = rendered.get(r.key)!.el.offsetHeight;
    if (h > 0 && Math.abs((heights.get(r.key) ?? -1) - h) > 0.5) {
      heights.set(r.key, h);
      changed = true;
    }
  }
  rendering = false;
  if (changed) {
    const w2 = listWindow(rowHeights(), scroller.scrollTop, scroller.clientHeight || 600);
    padTop.style.height = `${w2.padTop}px`;
    padBottom.style.height = `${w2.padBottom}px`;
    if (w2.start !== win.start || w2.end !== win.end) requestAnimationFrame(render);
  }
}

let scrollSave: number | undefined;
scroller.addEventListener('scroll', () => {
  requestAnimationFrame(render);
  ui.scrollTop = scroller.scrollTop;
  if (scrollSave === undefined) scrollSave = window.setTimeout(() => {
    scrollSave = undefined;
    persist();
  }, 300);
});
window.addEventListener('resize', () => {
  heights.clear();
  render();
});
const resizeObs = new ResizeObserver(() => requestAnimationFrame(render));

function bump(id: string): void {
  versions.set(id, (versions.get(id) ?? 0) + 1);
  heights.delete(id);
}
function bumpAll(): void {
  for (const id of cells.keys()) bump(id);
  rebuildRows();
}

/** Everything a group row shows, as one string. */
function groupSignature(r: Extract<Row, { kind: 'group' }>): string {
  return JSON.stringify([ui.collapsed.includes(r.group.modelFile), r.shown, r.group.fileLabel, r.group.modelFile, r.group.cells.map((c) => [c.id, c.sweep ?? null])]);
}

function groupRow(r: Extract<Row, { kind: 'group' }>): HTMLElement {
  const collapsed = ui.collapsed.includes(r.group.modelFile);
  const btn = el('button', { type: 'button', class: 'group-toggle', 'aria-expanded': String(!collapsed), title: r.group.modelFile }, `${collapsed ? '▸' : '▾'} ${r.group.fileLabel}`);
  btn.addEventListener('click', () => {
    ui.collapsed = collapsed ? ui.collapsed.filter((f) => f !== r.group.modelFile) : [...ui.collapsed, r.group.modelFile];
    persist();
    rebuildRows();
  });
  const head = el('div', { class: 'group', role: 'heading', 'aria-level': '2' }, btn, el('span', { class: 'muted' }, ` ${r.shown} run${r.shown === 1 ? '' : 's'}`));
  const first = r.group.cells[0]?.sweep;
  if (!first || collapsed) return head;
  // a sweep: each setting's metric over its seeds (as the runs stand now), and its runs overlaid in one dashboard
  const metric = first.metric ?? 'validLoss';
  const sw = { name: first.name, metric, rows: sweepGroups(r.group.cells.map((c) => ({ setting: (c.sweep?.setting ?? {}) as Setting, value: c.sweep?.value })), metric) };
  const keys = [...new Set(sw.rows.flatMap((row) => Object.keys(row.setting)))];
  const fmt = (v: number) => (Number.isFinite(v) ? fmtNum(v) : '–');
  const table = el(
    'table',
    { class: 'sweep', 'aria-label': `Sweep ${sw.name}: ${sw.metric} by setting` },
    el('thead', {}, el('tr', {}, ...keys.map((k) => el('th', { scope: 'col', title: k }, k.split('.').slice(-1)[0])), el('th', { scope: 'col' }, 'runs'), el('th', { scope: 'col' }, `${sw.metric} (mean ± std)`))),
    el('tbody', {}, ...sw.rows.map((row) => el('tr', {}, ...keys.map((k) => el('td', {}, k in row.setting ? JSON.stringify(row.setting[k]) : '')), el('td', {}, String(row.runs)), el('td', {}, `${fmt(row.mean)} ± ${fmt(row.std)}`)))),
  );
  const compare = el('button', { type: 'button', title: `Open one dashboard with the ${r.group.cells.length} runs of the sweep overlaid` }, 'Compare runs');
  compare.addEventListener('click', () => post({ type: 'cells/compare', runIds: r.group.cells.map((c) => c.id) }));
  return el('div', { class: 'sweep-group' }, head, table, el('div', { class: 'actions' }, compare));
}

// ---- a cell ----

function statusText(c: NotebookCell): string {
  if (c.status === 'running' && c.reading) return 'reading data';
  if (c.status === 'running' && c.progress) {
    const f = c.progress.totalSteps ? c.progress.step / c.progress.totalSteps : undefined;
    // a long run's first percent still shows movement
    return `running ${f === undefined ? '' : f < 0.1 ? `${(Math.floor(1000 * f) / 10).toFixed(1)}%` : `${Math.floor(100 * f)}%`}`.trim();
  }
  return c.status;
}

function cellRow(c: NotebookCell, pos: number, size: number, old?: HTMLElement): HTMLElement {
  const focused = old?.contains(document.activeElement) ? document.activeElement : null;
  const root = el('article', {
    class: `cell ${c.status}${ui.selected.includes(c.id) ? ' selected' : ''}`,
    tabindex: ui.focus === c.id ? '0' : '-1',
    'data-id': c.id,
    'aria-posinset': String(pos),
    'aria-setsize': String(size),
    'aria-labelledby': `t-${c.id}`,
    'aria-describedby': `s-${c.id}`,
  });
  // head: selection, model, status, device, duration
  const pick = el('input', { type: 'checkbox', 'aria-label': `Select ${c.model} ${fmtTime(c.started)} to compare` }) as HTMLInputElement;
  pick.checked = ui.selected.includes(c.id);
  pick.addEventListener('change', () => toggleSelect(c.id));
  const title = el('span', { class: 'model', id: `t-${c.id}` }, c.model);
  const status = el('span', { class: `badge ${c.status}`, id: `s-${c.id}` }, statusText(c));
  const meta = el('span', { class: 'meta' }, [c.device, c.durationMs !== undefined ? fmtDuration(c.durationMs) : undefined, fmtTime(c.started)].filter(Boolean).join(' · '));
  root.append(el('div', { class: 'head' }, pick, title, status, meta));

  // what differs from the run it is compared with
  if (c.diff) {
    const d = el('div', { class: 'diff', 'aria-label': `Changes ${c.diff.label}` });
    if (c.diff.changes.length === 0) d.append(el('span', { class: 'muted' }, `same settings ${c.diff.label.replace(/^vs /, 'as ')}`));
    else {
      d.append(el('span', { class: 'muted' }, `${c.diff.label}: `));
      for (const ch of c.diff.changes.slice(0, 8))
        d.append(el('span', { class: 'chip', title: `${ch.key}: ${ch.from ?? '(not set)'} → ${ch.to ?? '(not set)'}` }, `${short(ch.key)} `, el('s', {}, ch.from ?? '—'), ' → ', el('b', {}, ch.to ?? '—')));
      if (c.diff.changes.length > 8) d.append(el('span', { class: 'muted' }, ` +${c.diff.changes.length - 8} more`));
    }
    root.append(d);
  }

  // a sweep's run: its setting
  if (c.sweep) root.append(el('div', { class: 'muted small sweep-setting' }, Object.entries(c.sweep.setting).map(([k, v]) => `${k.split('.').slice(-1)[0]} ${JSON.stringify(v)}`).join(' · ')));

  // the first read of a big corpus (Stop cancels it)
  if (c.status === 'running' && c.reading) {
    const pct = Math.min(100, 100 * c.reading.fraction);
    const bar = el('div', { class: 'progress', role: 'progressbar', 'aria-label': `${c.model}: reading ${c.reading.file}`, 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': pct.toFixed(0) });
    const fill = el('div', { class: 'fill' });
    fill.style.width = `${pct}%`;
    bar.append(fill);
    const parts = [`reading ${c.reading.file} ${Math.floor(pct)}%`];
    if (c.reading.remainingMs) parts.push(`${fmtDuration(c.reading.remainingMs)} left`);
    root.append(bar, el('div', { class: 'muted small' }, parts.join(' · ')));
  }

  // live progress
  if (c.status === 'running' && c.progress) {
    const p = c.progress;
    const pct = p.totalSteps ? Math.min(100, (100 * p.step) / p.totalSteps) : 0;
    const bar = el('div', { class: 'progress', role: 'progressbar', 'aria-label': `${c.model} training progress`, 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': pct.toFixed(0) });
    const fill = el('div', { class: 'fill' });
    fill.style.width = `${pct}%`;
    bar.append(fill);
    const parts = [`step ${p.step}${p.totalSteps ? `/${p.totalSteps}` : ''}`];
    if (p.epochs && p.epochs > 1 && p.epoch) parts.push(`epoch ${p.epoch}/${p.epochs}`);
    if (p.loss !== undefined) parts.push(`loss ${p.loss.toFixed(3)}`);
    if (p.remainingMs) parts.push(`${fmtDuration(p.remainingMs)} left`);
    root.append(bar, el('div', { class: 'muted small' }, parts.join(' · ')));
  }

  // sparkline and metrics
  const row = el('div', { class: 'figures' });
  if (c.loss.length > 1) row.append(sparkline(c.loss, `${c.model} training loss from ${fmtNum(c.loss[0])} to ${fmtNum(c.loss[c.loss.length - 1])}`));
  const ms = el('dl', { class: 'metrics' });
  for (const m of c.metrics) ms.append(el('div', { title: m.title }, el('dt', {}, m.label), el('dd', {}, m.value)));
  row.append(ms);
  if (c.loss.length > 1 || c.metrics.length) root.append(row);
  if (c.error) root.append(el('div', { class: 'error', role: 'alert' }, c.error.split('\n')[0]));
  if (c.latest) root.append(el('div', { class: 'latest', title: c.latest.text }, el('span', { class: 'muted' }, c.latest.kind === 'sample' ? `sample${c.latest.step ? ` @${c.latest.step}` : ''}: ` : 'prediction: '), c.latest.text));

  // actions
  const live = c.status === 'running' || c.status === 'queued';
  const acts = el('div', { class: 'actions', role: 'toolbar', 'aria-label': `Actions for ${c.model}` });
  acts.append(button('Dashboard', `Open the dashboard of ${c.model}`, () => post({ type: 'cell/openDashboard', runId: c.id })));
  if (live) acts.append(button('Stop', `Stop ${c.model}`, () => post({ type: 'cell/stop', runId: c.id })));
  else {
    if (c.resumable) acts.append(button('Resume', `Continue ${c.model} where it stopped (its weights, optimizer state and data position)`, () => post({ type: 'cell/resume', runId: c.id }), 'primary'));
    acts.append(button('Re-run', `Train ${c.model} again (the model file as it is now)`, () => post({ type: 'cell/rerun', runId: c.id })));
  }
  if (c.editable.length) acts.append(toggleButton(c, 'edit', 'Duplicate…', `Duplicate ${c.model} with edited hyper-parameters`));
  if (c.hasCheckpoint && inferable(c)) acts.append(toggleButton(c, 'infer', inferLabel(c), `${inferLabel(c)} with this run's checkpoint`));
  acts.append(button('Source', `Show ${c.model} in its model file`, () => post({ type: 'cell/revealSource', runId: c.id })));
  if (!live || c.status === 'queued') acts.append(button('Delete', `Delete this run of ${c.model}`, () => post({ type: 'cell/delete', runId: c.id }), 'secondary danger'));
  root.append(acts);

  if (ui.edit.includes(c.id)) root.append(editor(c));
  if (ui.infer.includes(c.id) && c.hasCheckpoint) root.append(inferencePart(c));

  root.addEventListener('focusin', () => setFocus(c.id, false));
  resizeObs.observe(root);
  if (focused && focused.id) queueMicrotask(() => (document.getElementById(focused.id) as HTMLElement | null)?.focus());
  else if (focused === old) queueMicrotask(() => root.focus());
  return root;
}

function inferable(c: NotebookCell): boolean {
  return c.task === 'language-model' || c.task === 'classification' || c.task === 'forecast' || c.task === undefined;
}
function inferLabel(c: NotebookCell): string {
  return c.task === 'classification' ? 'Classify' : c.task === 'forecast' ? 'Forecast' : 'Sample';
}

function toggleButton(c: NotebookCell, part: 'edit' | 'infer', label: string, aria: string): HTMLButtonElement {
  const open = ui[part].includes(c.id);
  const b = button(label, aria, () => {
    ui[part] = open ? ui[part].filter((x) => x !== c.id) : [...ui[part], c.id];
    persist();
    bump(c.id);
    rebuildRows();
    if (!open) queueMicrotask(() => (document.querySelector(`[data-id="${CSS.escape(c.id)}"] .${part === 'edit' ? 'editor' : 'infer'} input, [data-id="${CSS.escape(c.id)}"] .${part === 'edit' ? 'editor' : 'infer'} textarea`) as HTMLElement | null)?.focus());
  });
  b.setAttribute('aria-expanded', String(open));
  return b;
}

function sparkline(values: number[], label: string, w = 120, h = 30): SVGElement {
  const s = svg('svg', { class: 'spark', width: String(w), height: String(h), viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-label': label });
  const t = svg('title', {});
  t.textContent = label;
  s.append(t, svg('path', { d: sparkPath(sparkPoints(values, w, h)), fill: 'none', 'stroke-width': '1.5' }));
  return s;
}

function draft(id: string): Draft {
  return (ui.drafts[id] ??= {});
}

// ---- inference ----

function inferencePart(c: NotebookCell): HTMLElement {
  const box = el('section', { class: 'infer', 'aria-label': `${inferLabel(c)} with ${c.model}` });
  const d = draft(c.id);
  // the inputs are checked here (the browser's own validation would silently block the submit)
  const form = el('form', { class: 'infer-form', novalidate: '' });
  const running = busy.has(c.id);
  const go = el('button', { type: 'submit', class: 'primary' }, running ? `${inferLabel(c)}…` : inferLabel(c));
  go.disabled = running;
  if (c.task === 'classification') {
    const text = el('input', c.numericInput
      ? { type: 'text', id: `cls-${c.id}`, placeholder: "A sequence's CSV, relative to the model file", 'aria-label': 'CSV of the sequence to classify' }
      : { type: 'text', id: `cls-${c.id}`, placeholder: 'A sentence to classify', 'aria-label': 'Sentence to classify' }) as HTMLInputElement;
    text.value = d.text ?? '';
    text.addEventListener('input', () => {
      d.text = text.value;
      persist();
    });
    form.append(text, go);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (text.value.trim()) run(c, { kind: 'classify', text: text.value.trim() });
    });
  } else if (c.task === 'forecast') {
    const s = series.get(c.id);
    if (!s) {
      post({ type: 'series/get', runId: c.id });
      form.append(el('span', { class: 'muted' }, 'Loading the series…'));
    } else if (s.error) form.append(el('span', { class: 'error' }, s.error));
    else {
      const W = c.forecast?.window ?? 1;
      const n = s.values.length;
      const at = Math.min(n, Math.max(W + 1, d.at ?? s.validStart));
      const steps = d.steps ?? Math.max(c.forecast?.horizon ?? 1, 12);
      const chart = overview(s.values, at, W, steps, s.validStart);
      const slider = el('input', { type: 'range', id: `at-${c.id}`, min: String(W + 1), max: String(n), value: String(at), 'aria-label': 'Forecast from index (the window ends before it)' }) as HTMLInputElement;
      const stepsIn = el('input', { type: 'number', id: `steps-${c.id}`, min: '1', max: '500', value: String(steps), 'aria-label': 'Values to forecast' }) as HTMLInputElement;
      const label = el('span', { class: 'muted small' }, `from #${at} of ${n}`);
      const update = () => {
        d.at = Number(slider.value);
        d.steps = Math.max(1, Math.min(500, Number(stepsIn.value) || 1));
        label.textContent = `from #${d.at} of ${n}`;
        chart.replaceWith((chartRef.el = overview(s.values, d.at, W, d.steps, s.validStart)));
        persist();
      };
      const chartRef = { el: chart };
      slider.addEventListener('input', () => {
        chartRef.el.remove();
        d.at = Number(slider.value);
        label.textContent = `from #${d.at} of ${n}`;
        const fresh = overview(s.values, d.at, W, d.steps ?? steps, s.validStart);
        form.insertBefore(fresh, form.firstChild);
        chartRef.el = fresh;
        persist();
      });
      stepsIn.addEventListener('change', update);
      form.append(chart, el('div', { class: 'row' }, slider, label), el('label', { class: 'row small' }, 'values ', stepsIn, go));
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        run(c, { kind: 'forecast', at: Number(slider.value), steps: Math.max(1, Math.min(500, Number(stepsIn.value) || 1)) });
      });
    }
  } else {
    const prefix = el('textarea', { id: `prefix-${c.id}`, rows: '2', placeholder: 'A prefix (empty: the start of the training text)', 'aria-label': 'Prefix to continue' }) as HTMLTextAreaElement;
    prefix.value = d.prefix ?? '';
    prefix.addEventListener('input', () => {
      d.prefix = prefix.value;
      persist();
    });
    prefix.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    const temp = el('input', { type: 'number', id: `temp-${c.id}`, min: '0', max: '5', step: 'any', value: String(d.temperature ?? 0.7), 'aria-label': 'Temperature (0 = greedy)' }) as HTMLInputElement;
    const len = el('input', { type: 'number', id: `len-${c.id}`, min: '1', max: '5000', step: '1', value: String(d.length ?? 200), 'aria-label': 'Length in tokens' }) as HTMLInputElement;
    const keep = () => {
      d.temperature = Number(temp.value);
      d.length = Number(len.value);
      persist();
    };
    temp.addEventListener('change', keep);
    len.addEventListener('change', keep);
    form.append(prefix, el('div', { class: 'row small' }, el('label', {}, 'temperature ', temp), el('label', {}, 'length ', len), go));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const t = Number(temp.value);
      const n = Math.round(Number(len.value));
      if (temp.value.trim() === '' || !(t >= 0 && t <= 5) || !(n >= 1)) {
        failures.set(c.id, !(t >= 0 && t <= 5) || temp.value.trim() === '' ? 'temperature: a number from 0 (greedy) to 5' : 'length: a whole number of tokens, at least 1');
        bump(c.id);
        rebuildRows();
        return;
      }
      run(c, { kind: 'sample', prefix: prefix.value, length: Math.min(5000, n), temperature: t });
    });
  }
  box.append(form);
  const fail = failures.get(c.id);
  if (fail) box.append(el('div', { class: 'error', role: 'alert' }, fail));
  const list = el('ol', { class: 'results', 'aria-label': 'Results, newest first', reversed: '' });
  for (const e of [...c.inference].reverse().slice(0, 20)) list.append(resultItem(c, e));
  if (c.inference.length) box.append(list);
  return box;
}

function run(c: NotebookCell, request: Parameters<typeof postInference>[1]): void {
  const requestId = requestSeq++;
  busy.set(c.id, requestId);
  failures.delete(c.id);
  postInference(c, request, requestId);
  bump(c.id);
  rebuildRows();
}

function postInference(c: NotebookCell, request: Extract<NotebookToHost, { type: 'inference/run' }>['request'], requestId: number): void {
  post({ type: 'inference/run', runId: c.id, requestId, request });
}

function resultItem(c: NotebookCell, e: InferenceEntry): HTMLElement {
  const li = el('li', { class: `result ${e.kind}` });
  const del = button('×', 'Remove this result', () => post({ type: 'inference/delete', runId: c.id, entryId: e.id }), 'icon');
  const when = `${fmtTime(e.time)} · ${(e.ms / 1000).toFixed(1)} s`;
  if (e.kind === 'sample') {
    const gen = e.text.startsWith(e.prefix) ? e.text.slice(e.prefix.length) : e.text;
    const shownPrefix = e.text.startsWith(e.prefix) ? e.prefix : '';
    li.append(el('div', { class: 'meta small' }, `T ${e.temperature} · ${e.length} tokens · ${when}`, del), el('p', { class: 'sample-text' }, el('b', {}, shownPrefix), gen));
  } else if (e.kind === 'classify') {
    const bars = el('div', { class: 'bars', role: 'list' });
    for (const p of e.probabilities) {
      const fill = el('span', { class: `fill${p.label === e.label ? ' top' : ''}` });
      fill.style.width = `${(100 * p.p).toFixed(1)}%`;
      bars.append(el('div', { class: 'bar', role: 'listitem', 'aria-label': `${p.label}: ${(100 * p.p).toFixed(1)}%` }, el('span', { class: 'lbl' }, p.label), el('span', { class: 'track' }, fill), el('span', { class: 'pct' }, `${(100 * p.p).toFixed(1)}%`)));
    }
    li.append(el('div', { class: 'meta small' }, when, del), el('p', {}, `“${e.text}” → `, el('b', {}, e.label)), bars);
  } else {
    li.append(el('div', { class: 'meta small' }, `${e.steps} values from #${e.at}${e.rmse !== undefined ? ` · rmse ${fmtNum(e.rmse)}` : ''} · ${when}`, del), forecastChart(e));
  }
  return li;
}

/** The whole series, the window the model reads and the span it forecasts. */
function overview(values: number[], at: number, W: number, steps: number, validStart: number, w = 260, h = 60): SVGElement {
  const s = svg('svg', { class: 'overview', width: '100%', height: String(h), viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': `Series of ${values.length} values; the window ends at ${at}` });
  const n = values.length;
  const x = (i: number) => ((i / Math.max(1, n - 1)) * w).toFixed(1);
  s.append(svg('rect', { class: 'valid', x: x(validStart), y: '0', width: String(Math.max(0, w - Number(x(validStart)))), height: String(h) }));
  s.append(svg('rect', { class: 'window', x: x(Math.max(0, at - W)), y: '0', width: String(Math.max(1.5, Number(x(at)) - Number(x(Math.max(0, at - W))))), height: String(h) }));
  s.append(svg('rect', { class: 'span', x: x(at), y: '0', width: String(Math.max(1.5, Number(x(Math.min(n - 1, at + steps))) - Number(x(at)))), height: String(h) }));
  s.append(svg('path', { class: 'series', d: sparkPath(sparkPoints(values, w, h, 3, yRange(values))), fill: 'none' }));
  return s;
}

function forecastChart(e: Extract<InferenceEntry, { kind: 'forecast' }>, w = 260, h = 90): SVGElement {
  const all = [...e.history, ...e.forecast];
  const actual: (number | null)[] = [...e.history.map(() => null), ...e.actual];
  const range = yRange([...all, ...actual]);
  const s = svg('svg', { class: 'fchart', width: '100%', height: String(h), viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': `Forecast of ${e.steps} values against the actual ones${e.rmse !== undefined ? `, rmse ${fmtNum(e.rmse)}` : ''}` });
  const n = all.length;
  const hist = [...e.history, ...e.forecast.map(() => null)];
  // the forecast joins the last observed value
  const fc: (number | null)[] = [...e.history.map((_, i) => (i === e.history.length - 1 ? e.history[i] : null)), ...e.forecast];
  const act: (number | null)[] = [...e.history.map((_, i) => (i === e.history.length - 1 ? e.history[i] : null)), ...e.actual];
  const pts = (v: (number | null)[]) => sparkPoints(v.length === n ? v : v.slice(0, n), w, h, 4, range);
  s.append(svg('line', { class: 'now', x1: String(pts(hist)[e.history.length - 1]?.x ?? 0), x2: String(pts(hist)[e.history.length - 1]?.x ?? 0), y1: '0', y2: String(h) }));
  s.append(svg('path', { class: 'history', d: sparkPath(pts(hist)), fill: 'none' }));
  s.append(svg('path', { class: 'actual', d: sparkPath(pts(act)), fill: 'none' }));
  s.append(svg('path', { class: 'forecast', d: sparkPath(pts(fc)), fill: 'none' }));
  const legend = svg('text', { x: '4', y: '11', class: 'legend' });
  legend.textContent = 'forecast vs actual (dashed)';
  s.append(legend);
  return s;
}

// ---- the duplicate editor ----

function editor(c: NotebookCell): HTMLElement {
  const d = draft(c.id);
  d.edits ??= {};
  d.extra ??= [];
  const box = el('section', { class: 'editor', 'aria-label': `Duplicate ${c.model} with edited hyper-parameters` });
  const rowsEl = el('div', { class: 'edit-rows' });
  const probs = problems.get(c.id) ?? [];
  const general = probs.filter((p) => !p.key);
  const keys = [...c.editable.map((k) => k.key), ...d.extra.filter((k) => !c.editable.some((e) => e.key === k))];
  const info = (k: string) => c.editable.find((e) => e.key === k) ?? schemaKeys.find((e) => e.key === k) ?? { key: k };
  keys.forEach((k, i) => rowsEl.append(editRow(c, info(k), i, probs.filter((p) => p.key === k))));
  // add a key
  const listId = `keys-${c.id}`;
  const dl = el('datalist', { id: listId });
  for (const k of schemaKeys) if (!keys.includes(k.key)) dl.append(el('option', { value: k.key }));
  const addIn = el('input', { type: 'text', list: listId, id: `add-${c.id}`, placeholder: 'another key, e.g. model.dropout', 'aria-label': 'Add a key to change' }) as HTMLInputElement;
  const add = () => {
    const k = addIn.value.trim();
    if (!k || keys.includes(k)) return;
    d.extra!.push(k);
    persist();
    bump(c.id);
    rebuildRows();
    queueMicrotask(() => (document.getElementById(`val-${c.id}-${keys.length}`) as HTMLElement | null)?.focus());
  };
  addIn.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      add();
    }
  });
  const changed = changedValues(c);
  const n = Object.keys(changed).length;
  const copy = button('Train copy', `Add a copy of ${c.model} with these changes to its model file and train it`, () => duplicate(c, 'new-model'), 'primary');
  const inPlace = button('Apply & train', `Change ${c.model} in its model file and train it`, () => duplicate(c, 'in-place'));
  const cancel = button('Cancel', 'Close the editor', () => {
    ui.edit = ui.edit.filter((x) => x !== c.id);
    delete d.edits;
    delete d.extra;
    problems.delete(c.id);
    persist();
    bump(c.id);
    rebuildRows();
  });
  copy.disabled = inPlace.disabled = n === 0 || probs.length > 0 || busy.has(`edit:${c.id}`);
  box.append(
    el('h3', {}, 'Duplicate with changes'),
    rowsEl,
    el('div', { class: 'row' }, addIn, button('Add', 'Add this key', add), dl),
    ...general.map((p) => el('div', { class: 'error', role: 'alert' }, p.message)),
    el('div', { class: 'row' }, copy, inPlace, cancel, el('span', { class: 'muted small', role: 'status' }, n ? `${n} change${n === 1 ? '' : 's'}` : 'no changes yet')),
  );
  return box;
}

function editRow(c: NotebookCell, k: EditableKey, i: number, probs: EditProblem[]): HTMLElement {
  const d = draft(c.id);
  const cur = d.edits![k.key] ?? k.value ?? '';
  const id = `val-${c.id}-${i}`;
  const hint = [k.type, k.minimum !== undefined ? `${k.exclusiveMinimum ? '>' : '≥'} ${k.minimum}` : '', k.maximum !== undefined ? `≤ ${k.maximum}` : '', k.default !== undefined ? `default ${k.default}` : ''].filter(Boolean).join(' · ');
  let input: HTMLInputElement | HTMLSelectElement;
  if (k.enum) {
    input = el('select', { id, 'aria-label': k.key }) as HTMLSelectElement;
    if (!k.enum.includes(cur)) input.append(el('option', { value: cur }, cur || '(not set)'));
    for (const v of k.enum) input.append(el('option', { value: v }, v));
    input.value = cur;
  } else {
    input = el('input', { id, type: 'text', 'aria-label': k.key, spellcheck: 'false', placeholder: k.default !== undefined ? `default ${k.default}` : '' }) as HTMLInputElement;
    input.value = cur;
  }
  const row = el('div', { class: 'edit-row' });
  const label = el('label', { for: id, title: k.description ? `${k.key}: ${k.description}` : k.key }, short(k.key));
  const err = el('div', { class: 'error small', id: `${id}-err`, 'aria-live': 'polite' });
  input.setAttribute('aria-describedby', `${id}-err`);
  // the schema's own limits at once; the host's validation of the whole document replaces `probs`
  const show = (host: EditProblem[]) => {
    const local = localProblem(k, input.value);
    const msgs = host.length ? host.map((p) => p.message) : local ? [local] : [];
    row.classList.toggle('changed', input.value !== (k.value ?? ''));
    row.classList.toggle('invalid', msgs.length > 0);
    input.setAttribute('aria-invalid', String(msgs.length > 0));
    err.textContent = msgs.join('; ');
    err.hidden = msgs.length === 0;
  };
  show(probs);
  input.addEventListener(k.enum ? 'change' : 'input', () => {
    d.edits![k.key] = input.value;
    persist();
    show([]);
    scheduleValidate(c);
  });
  row.append(label, input, el('span', { class: 'hint small' }, hint), err);
  return row;
}

/** What the schema says at once (the host's validation of the whole document follows). */
function localProblem(k: EditableKey, v: string): string | undefined {
  if (v.trim() === '') return undefined;
  if (k.type === 'integer' || k.type === 'number') {
    const x = Number(v);
    if (!Number.isFinite(x)) return `a ${k.type === 'integer' ? 'whole number' : 'number'}`;
    if (k.type === 'integer' && !Number.isInteger(x)) return 'a whole number';
    if (k.minimum !== undefined && (k.exclusiveMinimum ? x <= k.minimum : x < k.minimum)) return k.exclusiveMinimum ? `more than ${k.minimum}` : `at least ${k.minimum}`;
    if (k.maximum !== undefined && x > k.maximum) return `at most ${k.maximum}`;
  }
  if (k.type === 'boolean' && v !== 'true' && v !== 'false') return 'true or false';
  return undefined;
}

function changedValues(c: NotebookCell): Record<string, string> {
  const d = draft(c.id);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(d.edits ?? {})) {
    const orig = c.editable.find((e) => e.key === k)?.value ?? '';
    if (v !== orig) out[k] = v;
  }
  return out;
}

const validateTimers = new Map<string, number>();
const latestValidation = new Map<string, number>();
function scheduleValidate(c: NotebookCell): void {
  clearTimeout(validateTimers.get(c.id));
  validateTimers.set(
    c.id,
    window.setTimeout(() => {
      const requestId = requestSeq++;
      latestValidation.set(c.id, requestId);
      post({ type: 'edit/validate', runId: c.id, requestId, changes: changedValues(c) });
    }, 250),
  );
}

/** Re-renders the editor's cell keeping the focus on the same input. */
function refreshEditor(c: NotebookCell, focusId?: string): void {
  const active = focusId ?? (document.activeElement as HTMLElement | null)?.id;
  const sel = document.activeElement instanceof HTMLInputElement ? [document.activeElement.selectionStart, document.activeElement.selectionEnd] : undefined;
  bump(c.id);
  rebuildRows();
  if (active) {
    const e = document.getElementById(active) as HTMLInputElement | null;
    if (e && document.activeElement !== e) {
      e.focus();
      if (sel && e.setSelectionRange && sel[0] !== null) e.setSelectionRange(sel[0], sel[1]);
    }
  }
}

function duplicate(c: NotebookCell, mode: 'new-model' | 'in-place'): void {
  const requestId = requestSeq++;
  busy.set(`edit:${c.id}`, requestId);
  post({ type: 'edit/duplicate', runId: c.id, requestId, changes: changedValues(c), mode });
  bump(c.id);
  rebuildRows();
}

// ---- selection and keyboard ----

function toggleSelect(id: string): void {
  ui.selected = ui.selected.includes(id) ? ui.selected.filter((x) => x !== id) : [...ui.selected, id];
  persist();
  bump(id);
  rebuildRows();
}

function setFocus(id: string, move: boolean): void {
  if (ui.focus !== id) {
    const prev = ui.focus;
    ui.focus = id;
    if (prev) rendered.get(prev)?.el.setAttribute('tabindex', '-1');
    rendered.get(id)?.el.setAttribute('tabindex', '0');
    persist();
  }
  if (move) {
    const i = rows.findIndex((r) => r.key === id);
    if (i < 0) return;
    const top = scrollToRow(rowHeights(), i, scroller.scrollTop, scroller.clientHeight);
    if (top !== scroller.scrollTop) scroller.scrollTop = top;
    render();
    rendered.get(id)?.el.focus();
  }
}

feed.addEventListener('keydown', (e) => {
  const target = e.target as HTMLElement;
  if (!target.classList.contains('cell')) return;
  const id = target.dataset.id!;
  const cellRows = rows.filter((r): r is Extract<Row, { kind: 'cell' }> => r.kind === 'cell');
  const i = cellRows.findIndex((r) => r.key === id);
  const go = (j: number) => {
    const r = cellRows[Math.max(0, Math.min(cellRows.length - 1, j))];
    if (r) setFocus(r.key, true);
  };
  switch (e.key) {
    case 'ArrowDown':
      go(i + 1);
      break;
    case 'ArrowUp':
      go(i - 1);
      break;
    case 'Home':
      go(0);
      break;
    case 'End':
      go(cellRows.length - 1);
      break;
    case 'PageDown':
      go(i + 5);
      break;
    case 'PageUp':
      go(i - 5);
      break;
    case 'Enter':
      post({ type: 'cell/openDashboard', runId: id });
      break;
    case ' ':
      toggleSelect(id);
      break;
    case 'Delete':
      post({ type: 'cell/delete', runId: id });
      break;
    default:
      return;
  }
  e.preventDefault();
});

// ---- messages ----

function setCells(gs: CellGroup[]): void {
  groups = gs;
  cells.clear();
  for (const g of gs) for (const c of g.cells) cells.set(c.id, c);
  const ids = new Set(cells.keys());
  ui.selected = ui.selected.filter((id) => ids.has(id));
  for (const id of cells.keys()) bump(id);
}

function upsert(c: NotebookCell): void {
  cells.set(c.id, c);
  const at = cellGroupOf(c);
  let g = groups.find((x) => x.modelFile === at.modelFile);
  if (!g) groups.push((g = { ...at, cells: [] }));
  const i = g.cells.findIndex((x) => x.id === c.id);
  if (i >= 0) g.cells[i] = c;
  else {
    g.cells.push(c);
    g.cells.sort((a, b) => a.started - b.started || (a.id < b.id ? -1 : 1));
  }
  // the group with the newest run goes last
  groups.sort((a, b) => a.cells[a.cells.length - 1].started - b.cells[b.cells.length - 1].started);
  bump(c.id);
}

window.addEventListener('message', (ev: MessageEvent<HostToNotebook>) => {
  const m = ev.data;
  switch (m.type) {
    case 'cells/didSnapshot':
      loaded = true;
      schemaKeys = m.schemaKeys;
      setCells(m.groups);
      rebuildRows();
      if (ui.scrollTop) {
        scroller.scrollTop = ui.scrollTop;
        render();
      } else scroller.scrollTop = scroller.scrollHeight; // newest last: start at the end
      break;
    case 'cells/didUpdate': {
      // a new run while the list is at its end: follow it (newest last)
      const follow = !cells.has(m.cell.id) && scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 40;
      upsert(m.cell);
      rebuildRows();
      if (follow) {
        scroller.scrollTop = scroller.scrollHeight;
        render();
      }
      break;
    }
    case 'cells/didRemove': {
      cells.delete(m.runId);
      for (const g of groups) g.cells = g.cells.filter((c) => c.id !== m.runId);
      groups = groups.filter((g) => g.cells.length);
      ui.selected = ui.selected.filter((x) => x !== m.runId);
      rendered.get(m.runId)?.el.remove();
      rendered.delete(m.runId);
      rebuildRows();
      break;
    }
    case 'edit/didValidate':
      if (busy.get(`edit:${m.runId}`) === m.requestId) busy.delete(`edit:${m.runId}`);
      else if (latestValidation.get(m.runId) !== m.requestId) return;
      problems.set(m.runId, m.problems);
      if (cells.has(m.runId)) refreshEditor(cells.get(m.runId)!);
      break;
    case 'edit/didDuplicate': {
      busy.delete(`edit:${m.runId}`);
      ui.edit = ui.edit.filter((x) => x !== m.runId);
      const d = ui.drafts[m.runId];
      if (d) {
        delete d.edits;
        delete d.extra;
      }
      problems.delete(m.runId);
      persist();
      bump(m.runId);
      rebuildRows();
      break;
    }
    case 'inference/didStart':
      break;
    case 'inference/didFinish': {
      if (busy.get(m.runId) === m.requestId) busy.delete(m.runId);
      const c = cells.get(m.runId);
      if (c && !c.inference.some((e) => e.id === m.entry.id)) upsert({ ...c, inference: [...c.inference, m.entry] });
      bump(m.runId);
      rebuildRows();
      break;
    }
    case 'inference/didFail':
      if (busy.get(m.runId) === m.requestId) busy.delete(m.runId);
      failures.set(m.runId, m.message);
      bump(m.runId);
      rebuildRows();
      break;
    case 'series/didLoad':
      series.set(m.runId, { values: m.values, validStart: m.validStart, error: m.error });
      bump(m.runId);
      rebuildRows();
      break;
    case 'view/reveal':
      if (cells.has(m.runId)) setFocus(m.runId, true);
      else pendingReveal = m.runId;
      break;
  }
  if (pendingReveal && cells.has(pendingReveal)) {
    const id = pendingReveal;
    pendingReveal = undefined;
    setFocus(id, true);
  }
});

rebuildRows();
post({ type: 'webview/ready' });
