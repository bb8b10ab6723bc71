// The dashboard: one webview panel per run, fed by typed messages (src/shared/dashboard.ts). The
// host owns the truth: on `webview/ready` it sends a full snapshot (from the run record's metrics
// plus live state), then deltas as the trainer reports them. Panels are restored after a window
// reload by a WebviewPanelSerializer (the webview's state holds the run id).

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { readJsonLines, RUN_FILES, snapshotPath } from '../engine/train/runrecord';
import type { DashboardToHost, GateHistoryRow, HostToDashboard, Overlay, RunHeader, ThroughResult } from '../shared/dashboard';
import { toCsv } from '../../webview/dashboard/chartdata';
import { MetricsCache, overlaySteps, snapshotSteps, windowAnswer } from './metricseries';
import type { GatesMessage } from '../shared/protocol';
import { gatesInWorker, throughInWorker } from '../engine/runtime/client';
import { emptySeries } from '../shared/dashboard';
import type { FromWorker } from '../shared/protocol';
import { RunInfo, RunManager } from './runs';
import { toDashboard } from './dashboardmsg';
import { webviewHtml } from './webviewhtml';

export const DASHBOARD_VIEW = 'gatelab.dashboard';

function header(r: RunInfo): RunHeader {
  return {
    id: r.id,
    model: r.model,
    modelFile: r.modelFile,
    status: r.status,
    device: r.startedMsg?.device ?? r.summary?.device,
    totalSteps: r.startedMsg?.totalSteps,
    epochs: r.startedMsg?.epochs,
    stepsPerEpoch: r.startedMsg?.stepsPerEpoch,
    parameters: r.startedMsg?.parameters,
    error: r.error,
  };
}

/** What a snapshot shows besides the steps and epochs (those come from the run's RunSeries). */
export function recordExtras(dir: string): { samples: { step: number; text: string }[]; gates?: GatesMessage; gateHistory: GateHistoryRow[] } {
  const samples = readJsonLines<{ step: number; text: string }>(path.join(dir, RUN_FILES.samples)).map((s) => ({ step: s.step, text: s.text }));
  let gates: GatesMessage | undefined;
  try {
    gates = JSON.parse(fs.readFileSync(path.join(dir, RUN_FILES.gates), 'utf8')) as GatesMessage;
  } catch {
    gates = undefined;
  }
  const gateHistory = readJsonLines<GateHistoryRow>(path.join(dir, RUN_FILES.gateHistory));
  return { samples, gates, gateHistory };
}

/** The series of every run a dashboard shows (its own and the overlays), shared by all panels. */
const metrics = new MetricsCache();

export class DashboardPanel implements vscode.Disposable {
  /** the gate probe of a finished run in flight (a child process) */
  private probing?: AbortController;
  /** the gradients through time in flight */
  private through?: AbortController;
  private static readonly panels = new Map<string, DashboardPanel>();
  private readonly subs: vscode.Disposable[] = [];
  private ready = false;
  /** runs chosen to compare with (the notebook's "Compare"): overlaid instead of the model's other runs */
  compare?: string[];

  static show(ctx: vscode.ExtensionContext, runs: RunManager, runId: string, column = vscode.ViewColumn.Beside, compare?: string[]): DashboardPanel {
    const existing = DashboardPanel.panels.get(runId);
    if (existing) {
      existing.panel.reveal(undefined, true);
      if (compare) {
        existing.compare = compare;
        if (existing.ready) void existing.sendSnapshot();
      }
      return existing;
    }
    const run = runs.get(runId);
    const panel = vscode.window.createWebviewPanel(DASHBOARD_VIEW, `Gatelab: ${run?.model ?? runId}`, { viewColumn: column, preserveFocus: true }, DashboardPanel.options(ctx));
    const d = new DashboardPanel(ctx, runs, runId, panel);
    d.compare = compare;
    return d;
  }

  static options(ctx: vscode.ExtensionContext): vscode.WebviewPanelOptions & vscode.WebviewOptions {
    return { enableScripts: true, retainContextWhenHidden: false, localResourceRoots: [vscode.Uri.joinPath(ctx.extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(ctx.extensionUri, 'media')] };
  }

  static get open(): DashboardPanel[] {
    return [...DashboardPanel.panels.values()];
  }

  constructor(
    private readonly ctx: vscode.ExtensionContext,
    private readonly runs: RunManager,
    readonly runId: string,
    readonly panel: vscode.WebviewPanel,
  ) {
    DashboardPanel.panels.set(runId, this);
    panel.iconPath = vscode.Uri.joinPath(ctx.extensionUri, 'media', 'gatelab.svg');
    panel.webview.html = this.html();
    this.subs.push(
      panel.webview.onDidReceiveMessage((m: DashboardToHost) => this.onMessage(m)),
      panel.onDidDispose(() => this.dispose()),
      runs.messages.on(({ run, message }) => {
        if (run.id === this.runId) this.forward(run, message);
      }),
    );
  }

  private post(m: HostToDashboard): void {
    if (this.ready) void this.panel.webview.postMessage(m);
  }

  private onMessage(m: DashboardToHost): void {
    switch (m.type) {
      case 'webview/ready':
        this.ready = true;
        this.view = { smoothing: m.smoothing, width: m.width };
        void this.sendSnapshot();
        break;
      case 'series/window':
        void this.sendWindow(m);
        break;
      case 'export/metrics':
        void this.exportMetrics(m.format);
        break;
      case 'training/stop':
        void this.runs.stop(this.runId);
        break;
      case 'training/restart': {
        const r = this.runs.get(this.runId);
        if (r) void vscode.commands.executeCommand('gatelab.train', { file: r.modelFile, model: r.model });
        break;
      }
      case 'gates/setProbe':
        void this.setProbe(m.text);
        break;
      case 'through/compute':
        void this.computeThrough(m.text);
        break;
      case 'export/save':
        void this.save(m.fileName, m.content, m.encoding);
        break;
      case 'source/reveal': {
        const r = this.runs.get(this.runId);
        if (r) void vscode.window.showTextDocument(vscode.Uri.file(r.modelFile), { viewColumn: vscode.ViewColumn.One });
        break;
      }
    }
  }

  private async setProbe(text: string): Promise<void> {
    const r = this.runs.get(this.runId);
    if (!r) return;
    if (this.runs.probe(r.id, text)) return; // the live trainer answers with a gates message
    const ck = r.checkpoint ?? r.summary?.checkpoint;
    if (!ck) {
      this.post({ type: 'gates/didFail', message: 'this run has no checkpoint yet' });
      return;
    }
    if (!vscode.workspace.isTrusted) {
      this.post({ type: 'gates/didFail', message: 'probing a finished run starts a process on this folder\'s files: trust this folder first' });
      return;
    }
    // one probe at a time per panel; closing the panel ends it
    this.probing?.abort();
    const ctl = new AbortController();
    this.probing = ctl;
    const snapshot = snapshotPath(r.dir);
    try {
      const gates = await gatesInWorker(
        // the model as the run trained it (its snapshot), not the model file as it is now
        { modelFile: r.modelFile, modelName: r.model, init: ck, probe: text, ...(fs.existsSync(snapshot) ? { modelText: fs.readFileSync(snapshot, 'utf8') } : {}) },
        { workerScript: path.join(this.ctx.extensionPath, 'dist', 'worker.js'), signal: ctl.signal },
      );
      this.post({ type: 'gates/didSnapshot', gates });
    } catch (e) {
      this.post({ type: 'gates/didFail', message: (e as Error).message });
    }
  }

  /**
   * The gradients through time of this run and of the language-model runs compared with it, for one
   * text, each from its checkpoint in a worker process (one at a time; closing the panel ends it).
   */
  private async computeThrough(text: string): Promise<void> {
    const r = this.runs.get(this.runId);
    if (!r) return;
    if (!vscode.workspace.isTrusted) {
      this.post({ type: 'through/didFail', message: 'computing the gradients through time starts a process on this folder\'s files: trust this folder first' });
      return;
    }
    this.through?.abort();
    const ctl = new AbortController();
    this.through = ctl;
    const chosen = [r, ...(this.compare ?? []).map((id) => this.runs.get(id)).filter((x): x is RunInfo => !!x && x.id !== r.id)];
    // the runs of this run's kind: language models read the probe text, the other tasks an input
    const lm = (x: RunInfo) => (x.task ?? 'language-model') === 'language-model';
    const lms = chosen.filter((x) => lm(x) === lm(r));
    const names = lms.map((x) => x.model);
    const results: ThroughResult[] = [];
    for (const x of lms) {
      const label = names.filter((n) => n === x.model).length > 1 ? `${x.model} ${new Date(x.started).toLocaleString()}` : x.model;
      const ck = x.checkpoint ?? x.summary?.checkpoint;
      if (!ck || !fs.existsSync(ck)) {
        results.push({ runId: x.id, label, error: 'no checkpoint yet' });
        continue;
      }
      const snapshot = snapshotPath(x.dir);
      try {
        const through = await throughInWorker(
          { modelFile: x.modelFile, modelName: x.model, init: ck, ...(lm(x) ? { probe: text } : { input: text }), ...(fs.existsSync(snapshot) ? { modelText: fs.readFileSync(snapshot, 'utf8') } : {}) },
          { workerScript: path.join(this.ctx.extensionPath, 'dist', 'worker.js'), signal: ctl.signal },
        );
        results.push({ runId: x.id, label, through });
      } catch (e) {
        if (ctl.signal.aborted) return;
        results.push({ runId: x.id, label, error: (e as Error).message });
      }
    }
    if (ctl.signal.aborted) return;
    if (results.every((x) => x.error)) this.post({ type: 'through/didFail', message: results.map((x) => `${x.label}: ${x.error}`).join('; ') });
    else this.post({ type: 'through/didCompute', text, results });
  }

  private async save(fileName: string, content: string, encoding: 'utf8' | 'base64'): Promise<void> {
    const r = this.runs.get(this.runId);
    const uri = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.file(path.join(r ? path.dirname(r.modelFile) : '', fileName)), title: 'Export' });
    if (!uri) return;
    await vscode.workspace.fs.writeFile(uri, encoding === 'base64' ? Buffer.from(content, 'base64') : Buffer.from(content, 'utf8'));
    void vscode.window.showInformationMessage(`Gatelab: saved ${path.basename(uri.fsPath)}`);
  }

  /** The view's smoothing and width (from webview/ready), for the first window of a long run. */
  private view: { smoothing?: number; width?: number } = {};

  private async sendSnapshot(): Promise<void> {
    let run = this.runs.get(this.runId);
    if (!run) {
      this.post({ type: 'run/didChangeStatus', run: { id: this.runId, model: '?', modelFile: '', status: 'failed', error: 'this run no longer exists' } });
      return;
    }
    const here = fs.existsSync(run.dir);
    const series = here ? await metrics.get(run.dir) : undefined;
    const steps = series ? snapshotSteps(series, { buckets: this.view.width, smoothing: this.view.smoothing }) : { steps: emptySeries() };
    const extras = here ? recordExtras(run.dir) : { samples: [], gateHistory: [] };
    run = this.runs.get(this.runId)!;
    const overlays: Overlay[] = [];
    const chosen = this.compare?.map((id) => this.runs.get(id)).filter((r): r is RunInfo => !!r);
    for (const other of chosen ?? this.runs.all) {
      if (other.id === run.id || (!chosen && (other.modelFile !== run.modelFile || other.model !== run.model)) || !fs.existsSync(other.dir)) continue;
      const o = overlaySteps(await metrics.get(other.dir));
      if (o.step.length === 0) continue;
      const who = other.model === run.model ? '' : `${other.model} `;
      // a sweep's run is told apart by its setting
      const setting = other.sweep ? Object.entries(other.sweep.setting).map(([k, v]) => `${k.split('.').slice(-1)[0]} ${JSON.stringify(v)}`).join(' · ') : undefined;
      overlays.push({ id: other.id, label: setting ? `${who}${setting}` : `${who}${other.status} ${new Date(other.started).toLocaleString()}`, ...o });
    }
    this.post({
      type: 'run/didSnapshot',
      run: header(run),
      ...steps,
      epochs: series ? [...series.epochs] : [],
      ...extras,
      tokensPerSecond: run.last?.tokensPerSecond ?? run.summary?.tokensPerSecond,
      summary: run.summary as unknown as Record<string, unknown>,
      overlays: overlays.slice(chosen ? -8 : -5),
      ...(this.compare ? { compare: this.compare } : {}),
    });
  }

  /** A finer (or coarser) window of a downsampled run, read up to the steps the trainer has appended. */
  private async sendWindow(m: Extract<DashboardToHost, { type: 'series/window' }>): Promise<void> {
    const run = this.runs.get(this.runId);
    if (!run || !fs.existsSync(run.dir)) return;
    this.post(windowAnswer(await metrics.get(run.dir), m));
  }

  /** Every step of a run to a file the user picks (the webview of a long run has only windows of them). */
  private async exportMetrics(format: 'csv' | 'json'): Promise<void> {
    const run = this.runs.get(this.runId);
    if (!run) return;
    const series = await metrics.get(run.dir);
    const all = series.all();
    const name = run.model.replace(/[^\w.-]+/g, '-');
    if (format === 'csv') await this.save(`${name}-loss.csv`, toCsv({ step: all.step, loss: all.loss, gradNorm: all.gradNorm, lr: all.lr, time: all.time }), 'utf8');
    else await this.save(`${name}-metrics.json`, JSON.stringify({ run: header(run), steps: all, epochs: series.epochs, samples: recordExtras(run.dir).samples }), 'utf8');
  }

  private forward(run: RunInfo, m: FromWorker): void {
    const out = toDashboard(m, () => header(run), () => run.summary as unknown as Record<string, unknown>);
    if (out) this.post(out);
  }

  private html(): string {
    return webviewHtml(this.panel.webview, this.ctx.extensionUri, { bundle: 'dashboard', title: 'Gatelab dashboard', app: { 'data-run': encodeURIComponent(this.runId) } });
  }

  dispose(): void {
    this.probing?.abort();
    this.through?.abort();
    DashboardPanel.panels.delete(this.runId);
    for (const s of this.subs) s.dispose();
  }
}

/** Restores dashboards after a window reload. */
export class DashboardSerializer implements vscode.WebviewPanelSerializer {
  constructor(
    private readonly ctx: vscode.ExtensionContext,
    private readonly runs: RunManager,
  ) {}
  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: { runId?: string; modelFile?: string; compare?: string[] } | undefined): Promise<void> {
    const runId = state?.runId;
    if (!runId) {
      panel.dispose();
      return;
    }
    if (state?.modelFile) this.runs.loadRecords(state.modelFile);
    panel.webview.options = DashboardPanel.options(this.ctx);
    // the compared runs may live beside other model files: find their records
    if (state?.compare?.some((id) => !this.runs.get(id)))
      for (const f of await vscode.workspace.findFiles('**/*.gatelab.{yaml,yml,json}', '**/node_modules/**', 200)) this.runs.loadRecords(f.fsPath);
    const d = new DashboardPanel(this.ctx, this.runs, runId, panel);
    if (state?.compare?.length) d.compare = state.compare;
  }
}
