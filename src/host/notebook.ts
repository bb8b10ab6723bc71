// The notebook side panel: a webview view in Gatelab's activity-bar container listing every run as
// a cell (src/host/notebookdata.ts builds them), fed by the typed messages of
// src/shared/notebook.ts. The host owns the truth: on `webview/ready` it reads the run folders of
// the workspace's model files and sends a full snapshot, then one `cells/didUpdate` per changed run
// (live runs at most every 400 ms). Cell actions reuse the extension's commands; inference runs in
// a child process (dist/infer.js) with the run's checkpoint and model snapshot, and its results are
// kept in the run folder (`inference.jsonl`).

import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { modelAnchors } from '../engine/config/load';
import { RUN_FILES, readJsonLines, snapshotPath } from '../engine/train/runrecord';
import type { FromInference, HostToNotebook, InferenceEntry, InferenceJob, InferenceRequest, InferenceResult, NotebookCell, NotebookToHost } from '../shared/notebook';
import { DashboardPanel } from './dashboard';
import { webviewHtml } from './webviewhtml';
import { appendInference, buildCell, diffBase, duplicateModel, forecastEntry, groupCells, lossSeries, modelDocument, readInference, removeInference, schemaKeys, sparkValues } from './notebookdata';
import { RunInfo, RunManager } from './runs';

export const NOTEBOOK_VIEW = 'gatelab.notebook';
export const NOTEBOOK_CONTAINER = 'gatelab';

export interface NotebookOptions {
  /** dist/infer.js of the extension */
  inferScript: string;
  env?: () => NodeJS.ProcessEnv;
  log?: (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void;
  /** starts a run of a model (the extension's Train command) */
  train: (ref: { file: string; model: string }) => Promise<RunInfo | undefined>;
  /** continues a stopped or failed run (the extension's Resume command) */
  resume: (ref: { runId: string }) => Promise<RunInfo | undefined>;
  /** ms an inference may take before its process is killed */
  inferenceTimeoutMs?: number;
}

interface RunCache {
  snapshotText?: string;
  doc?: Record<string, never>;
  /** size of metrics.jsonl when the loss was read */
  metricsSize: number;
  step: number[];
  loss: number[];
  samplesSize: number;
  lastSample?: { step: number; text: string };
  inference?: InferenceEntry[];
}

function fileSize(f: string): number {
  try {
    return fs.statSync(f).size;
  } catch {
    return -1;
  }
}

export class NotebookViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  private view?: vscode.WebviewView;
  private ready = false;
  private readonly subs: vscode.Disposable[] = [];
  private viewSubs: vscode.Disposable[] = [];
  private readonly cache = new Map<string, RunCache>();
  private readonly pending = new Set<string>();
  private flushTimer?: NodeJS.Timeout;
  private readonly known = new Set<string>();
  private readonly inferring = new Map<string, { kill(): void }>();
  private runWatchers: vscode.Disposable[] = [];
  /** every inference process alive (killed on dispose) */
  private readonly children = new Set<{ kill(signal: NodeJS.Signals): boolean }>();

  constructor(
    private readonly ctx: vscode.ExtensionContext,
    private readonly runs: RunManager,
    private readonly o: NotebookOptions,
  ) {
    const changed = runs.changed.on((r) => this.queue(r.id));
    const messages = runs.messages.on(({ run, message }) => {
      // live loss for the sparkline without re-reading metrics.jsonl
      if (message.type !== 'progress') return;
      const c = this.cache.get(run.id);
      if (!c) return;
      const n = message.losses.length;
      message.losses.forEach((l, i) => {
        const s = message.step - n + 1 + i;
        if (c.step.length === 0 || s > c.step[c.step.length - 1]) {
          c.step.push(s);
          c.loss.push(l);
        }
      });
      this.queue(run.id);
    });
    this.subs.push({ dispose: () => changed.dispose() }, { dispose: () => messages.dispose() });
    // runs of other processes (`gatelab train` in a terminal) appear, change and go as their records
    // do, in the default runs folders and in every folder gatelab.runsFolder names
    this.watchRuns();
    this.subs.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (!e.affectsConfiguration('gatelab.runsFolder')) return;
        this.watchRuns();
        void this.scan().then(() => this.sendSnapshot());
      }),
      { dispose: () => this.runWatchers.forEach((d) => d.dispose()) },
    );
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    for (const s of this.viewSubs) s.dispose();
    this.view = view;
    this.ready = false;
    view.webview.options = { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(this.ctx.extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(this.ctx.extensionUri, 'media')] };
    view.webview.html = this.html(view.webview);
    this.viewSubs = [
      view.webview.onDidReceiveMessage((m: NotebookToHost) => void this.onMessage(m)),
      view.onDidDispose(() => {
        if (this.view === view) {
          this.view = undefined;
          this.ready = false;
        }
      }),
    ];
  }

  private post(m: HostToNotebook): void {
    if (this.ready && this.view) void this.view.webview.postMessage(m);
  }

  /** Reads the run folders of every model file in the workspace (new runs of the CLI included). */
  async scan(): Promise<void> {
    const files = await vscode.workspace.findFiles('**/*.gatelab.{yaml,yml,json}', '**/node_modules/**', 500);
    for (const f of files) this.runs.loadRecords(f.fsPath, true);
    for (const d of vscode.workspace.textDocuments) if (/\.gatelab\.(ya?ml|json)$/i.test(d.uri.fsPath)) this.runs.loadRecords(d.uri.fsPath, true);
  }

  async onMessage(m: NotebookToHost): Promise<void> {
    try {
      await this.handle(m);
    } catch (e) {
      this.o.log?.('error', `notebook: ${m.type}: ${(e as Error).stack ?? e}`);
      void vscode.window.showErrorMessage(`Gatelab: ${(e as Error).message}`);
    }
  }

  private async handle(m: NotebookToHost): Promise<void> {
    switch (m.type) {
      case 'webview/ready':
        this.ready = true;
        await this.scan();
        this.sendSnapshot();
        return;
      case 'cell/openDashboard':
        DashboardPanel.show(this.ctx, this.runs, m.runId);
        return;
      case 'cell/rerun': {
        const r = this.runs.get(m.runId);
        if (!r) return;
        const started = await this.o.train({ file: r.modelFile, model: r.model });
        if (started) this.post({ type: 'view/reveal', runId: started.id });
        return;
      }
      case 'cell/resume': {
        const started = await this.o.resume({ runId: m.runId });
        if (started) this.post({ type: 'view/reveal', runId: started.id });
        return;
      }
      case 'cell/stop':
        await this.runs.stop(m.runId);
        return;
      case 'cell/delete':
        await this.deleteRun(m.runId);
        return;
      case 'cell/revealSource':
        await this.revealSource(m.runId);
        return;
      case 'cells/compare': {
        const ids = m.runIds.filter((id) => this.runs.get(id));
        if (ids.length === 0) return;
        // the newest run is the dashboard's own, the others are overlaid
        ids.sort((a, b) => this.runs.get(a)!.started - this.runs.get(b)!.started);
        DashboardPanel.show(this.ctx, this.runs, ids[ids.length - 1], vscode.ViewColumn.Beside, ids.slice(0, -1));
        return;
      }
      case 'edit/validate': {
        const out = this.duplicate(m.runId, m.changes, 'new-model');
        this.post({ type: 'edit/didValidate', runId: m.runId, requestId: m.requestId, problems: out?.problems ?? [{ key: '', message: 'this run is gone' }] });
        return;
      }
      case 'edit/duplicate':
        await this.applyDuplicate(m.runId, m.requestId, m.changes, m.mode);
        return;
      case 'inference/run':
        await this.infer(m.runId, m.requestId, m.request);
        return;
      case 'inference/delete': {
        const r = this.runs.get(m.runId);
        if (!r) return;
        this.cacheOf(r).inference = removeInference(r.dir, m.entryId);
        this.queue(r.id);
        return;
      }
      case 'series/get':
        this.sendSeries(m.runId);
        return;
    }
  }

  /** Watchers of run records: `.gatelab/runs` beside any model file, and every folder of gatelab.runsFolder. */
  private watchRuns(): void {
    for (const d of this.runWatchers) d.dispose();
    this.runWatchers = [];
    const patterns: vscode.GlobPattern[] = ['**/.gatelab/runs/*/run.json'];
    for (const folder of this.runs.customRunsFolders()) {
      const custom = folder.replace(/\\/g, '/').replace(/\/+$/, '');
      patterns.push(path.isAbsolute(custom) ? new vscode.RelativePattern(vscode.Uri.file(custom), '*/run.json') : `**/${custom.replace(/^\.\//, '')}/*/run.json`);
    }
    const reload = (u: vscode.Uri) => void this.runs.reloadRecord(path.dirname(u.fsPath));
    for (const p of patterns) {
      const w = vscode.workspace.createFileSystemWatcher(p);
      this.runWatchers.push(w, w.onDidCreate(reload), w.onDidChange(reload), w.onDidDelete((u) => this.runs.forget(path.basename(path.dirname(u.fsPath)))));
    }
  }

  // ---- cells ----

  private cacheOf(r: RunInfo): RunCache {
    let c = this.cache.get(r.id);
    if (!c) {
      c = { metricsSize: -2, step: [], loss: [], samplesSize: -2 };
      this.cache.set(r.id, c);
    }
    if (c.snapshotText === undefined) {
      try {
        c.snapshotText = fs.readFileSync(snapshotPath(r.dir), 'utf8');
        c.doc = modelDocument(c.snapshotText, r.model) as Record<string, never> | undefined;
      } catch {
        // not written yet (queued) or gone
      }
    }
    const live = r.status === 'running' && c.step.length > 0;
    const ms = fileSize(path.join(r.dir, RUN_FILES.metrics));
    if (!live && ms !== c.metricsSize) {
      const s = lossSeries(r.dir);
      c.step = s.step;
      c.loss = s.loss;
      c.metricsSize = ms;
    }
    const ss = fileSize(path.join(r.dir, RUN_FILES.samples));
    if (ss !== c.samplesSize) {
      const all = readJsonLines<{ step: number; text: string }>(path.join(r.dir, RUN_FILES.samples));
      c.lastSample = all[all.length - 1];
      c.samplesSize = ss;
    }
    c.inference ??= readInference(r.dir);
    return c;
  }

  cell(r: RunInfo): NotebookCell {
    const c = this.cacheOf(r);
    const all = this.runs.all;
    const base = diffBase(r, all);
    const b = base ? this.cacheOf(base.run) : undefined;
    return buildCell(r, {
      doc: c.doc,
      baseDoc: b?.doc,
      base: base ? { id: base.run.id, model: base.run.model, sameModel: base.sameModel } : undefined,
      loss: sparkValues(c.step, c.loss),
      inference: c.inference ?? [],
      lastSample: c.lastSample,
      fileLabel: vscode.workspace.asRelativePath(r.modelFile),
    });
  }

  /** Every cell, grouped (for the snapshot and the tests). */
  groups() {
    return groupCells(this.runs.all.map((r) => this.cell(r)));
  }

  private sendSnapshot(): void {
    const groups = this.groups();
    this.known.clear();
    for (const g of groups) for (const c of g.cells) this.known.add(c.id);
    this.post({ type: 'cells/didSnapshot', groups, schemaKeys: schemaKeys() });
  }

  private queue(id: string): void {
    this.pending.add(id);
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => this.flush(), 400);
  }

  flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const ids = [...this.pending];
    this.pending.clear();
    if (!this.ready) return;
    for (const id of ids) {
      const r = this.runs.get(id);
      if (!r) {
        this.cache.delete(id);
        if (this.known.delete(id)) this.post({ type: 'cells/didRemove', runId: id });
        continue;
      }
      const isNew = !this.known.has(id);
      this.known.add(id);
      this.post({ type: 'cells/didUpdate', cell: this.cell(r) });
      // the next run of the model compares itself with this one
      if (isNew) for (const other of this.runs.all) if (other.id !== id && diffBase(other, this.runs.all)?.run.id === id) this.post({ type: 'cells/didUpdate', cell: this.cell(other) });
    }
  }

  // ---- actions ----

  private async deleteRun(id: string): Promise<void> {
    const r = this.runs.get(id);
    if (!r) return;
    if (r.status === 'running') {
      void vscode.window.showInformationMessage(`Gatelab: ${r.model} is training; stop it before deleting the run.`);
      return;
    }
    const choice = await vscode.window.showWarningMessage(
      `Delete the run ${r.id} of ${r.model}?`,
      { modal: true, detail: `Its folder (${vscode.workspace.asRelativePath(r.dir)}) is removed with its checkpoint, metrics and inference results.` },
      'Delete',
    );
    if (choice !== 'Delete') return;
    if (r.status === 'queued') await this.runs.stop(id);
    this.runs.delete(id);
    this.o.log?.('info', `deleted run ${id}`);
  }

  private async revealSource(id: string): Promise<void> {
    const r = this.runs.get(id);
    if (!r) return;
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(r.modelFile));
    const anchor = modelAnchors(doc.getText()).find((a) => a.name === r.model);
    const ed = await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.One, preview: false });
    if (!anchor) {
      void vscode.window.showInformationMessage(`Gatelab: ${path.basename(r.modelFile)} has no model "${r.model}" any more.`);
      return;
    }
    const pos = new vscode.Position(anchor.line - 1, Math.max(0, anchor.column - 1));
    ed.selection = new vscode.Selection(pos, pos);
    ed.revealRange(new vscode.Range(pos, pos), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  }

  private currentText(file: string): string {
    const open = vscode.workspace.textDocuments.find((d) => d.uri.fsPath === file);
    return open ? open.getText() : fs.readFileSync(file, 'utf8');
  }

  private duplicate(runId: string, changes: Record<string, string>, mode: 'new-model' | 'in-place') {
    const r = this.runs.get(runId);
    if (!r) return undefined;
    const c = this.cacheOf(r);
    let fileText: string;
    try {
      fileText = this.currentText(r.modelFile);
    } catch {
      return { problems: [{ key: '', message: `the model file ${r.modelFile} cannot be read` }] };
    }
    return duplicateModel({ fileText, file: r.modelFile, model: r.model, snapshotText: c.snapshotText ?? fileText, runId: r.id, changes, mode });
  }

  private async applyDuplicate(runId: string, requestId: number, changes: Record<string, string>, mode: 'new-model' | 'in-place'): Promise<void> {
    const r = this.runs.get(runId);
    const out = this.duplicate(runId, changes, mode);
    if (!r || !out || out.problems.length || !out.text || !out.model) {
      this.post({ type: 'edit/didValidate', runId, requestId, problems: out?.problems ?? [{ key: '', message: 'this run is gone' }] });
      return;
    }
    const uri = vscode.Uri.file(r.modelFile);
    const doc = await vscode.workspace.openTextDocument(uri);
    const edit = new vscode.WorkspaceEdit();
    edit.replace(uri, new vscode.Range(new vscode.Position(0, 0), doc.positionAt(doc.getText().length)), out.text);
    if (!(await vscode.workspace.applyEdit(edit))) throw new Error(`could not edit ${path.basename(r.modelFile)}`);
    await doc.save();
    this.o.log?.('info', `${mode === 'new-model' ? `added model ${out.model} to` : `edited ${out.model} in`} ${r.modelFile}: ${Object.keys(changes).join(', ')}`);
    const started = await this.o.train({ file: r.modelFile, model: out.model });
    this.post({ type: 'edit/didDuplicate', runId, requestId, newRunId: started?.id, newModel: mode === 'new-model' ? out.model : undefined });
    if (started) this.post({ type: 'view/reveal', runId: started.id });
  }

  private jobFor(r: RunInfo, request: InferenceRequest): InferenceJob {
    const c = this.cacheOf(r);
    const init = r.checkpoint ?? r.summary?.checkpoint;
    if (!init || !fs.existsSync(init)) throw new Error(`${r.model} (${r.id}) has no checkpoint`);
    return { modelText: c.snapshotText ?? fs.readFileSync(r.modelFile, 'utf8'), modelFile: r.modelFile, modelName: r.model, init, request, seed: Date.now() % 1e9 };
  }

  /** Runs one inference job in a child process; rejects with the process's message. */
  runJob(job: InferenceJob, key = ''): Promise<InferenceResult> {
    return new Promise((resolve, reject) => {
      const child = fork(this.o.inferScript, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: { ...(this.o.env?.() ?? process.env), GATELAB_INFER: '1' }, serialization: 'json' });
      let stderr = '';
      let reply: FromInference | undefined;
      child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
      this.children.add(child);
      const timer = setTimeout(() => child.kill('SIGKILL'), this.o.inferenceTimeoutMs ?? 300_000);
      if (key) this.inferring.set(key, { kill: () => child.kill('SIGKILL') });
      child.on('message', (m: FromInference) => (reply = m));
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        this.children.delete(child);
        if (key) this.inferring.delete(key);
        if (reply?.type === 'result') resolve(reply.result);
        else if (reply?.type === 'error') reject(new Error(reply.message));
        else reject(new Error(`the inference process ${signal ? `was killed by ${signal}` : `exited with code ${code}`}${stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' ')}` : ''}`));
      });
      child.send({ type: 'infer', job });
    });
  }

  /**
   * Runs one inference with a finished run's checkpoint in a child process (dist/infer.js) and keeps
   * the result with the run (inference.jsonl), where the run's cell shows it. The Sample and Predict
   * commands use this too.
   */
  async inferFor(runId: string, request: InferenceRequest, key = ''): Promise<InferenceEntry> {
    const r = this.runs.get(runId);
    if (!r) throw new Error(`no run ${runId}`);
    // an inference process reads the run's files and the model's data: a trusted folder only
    if (!vscode.workspace.isTrusted) throw new Error('inference runs a process on this folder\'s files: trust this folder first (Manage Workspace Trust)');
    const t0 = Date.now();
    const job = this.jobFor(r, request);
    const res = await this.runJob(job, key);
    const base = { id: `${t0.toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`, time: t0, ms: Date.now() - t0 };
    let entry: InferenceEntry;
    if (res.kind === 'sample' && request.kind === 'sample') entry = { ...base, kind: 'sample', prefix: request.prefix, length: request.length, temperature: request.temperature, text: res.text };
    else if (res.kind === 'classify' && request.kind === 'classify') entry = { ...base, kind: 'classify', text: request.text, label: res.label, probabilities: res.probabilities };
    else if (res.kind === 'forecast' && request.kind === 'forecast') {
      const { jobConfig, seriesOf } = await import('../engine/runtime/inferworker');
      const cfg = jobConfig(job);
      entry = { ...base, kind: 'forecast', at: request.at, steps: request.steps, forecast: res.forecast, ...forecastEntry(await seriesOf(cfg), request.at, res.forecast, cfg.data.window) };
    } else throw new Error(`unexpected ${res.kind} result for a ${request.kind} request`);
    this.cacheOf(r).inference = appendInference(r.dir, entry);
    this.o.log?.('info', `inference ${entry.kind} on ${r.id} (${entry.ms} ms)`);
    this.queue(r.id);
    return entry;
  }

  /** The series a forecast run was trained on (for the Predict command's default window). */
  async seriesLength(runId: string): Promise<number> {
    const r = this.runs.get(runId);
    if (!r) return 0;
    const { jobConfig, seriesOf } = await import('../engine/runtime/inferworker');
    return (await seriesOf(jobConfig(this.jobFor(r, { kind: 'forecast', at: 0, steps: 0 })))).length;
  }

  private async infer(runId: string, requestId: number, request: InferenceRequest): Promise<void> {
    if (!this.runs.get(runId)) return;
    this.post({ type: 'inference/didStart', runId, requestId });
    let entry: InferenceEntry;
    try {
      entry = await this.inferFor(runId, request, `${runId}:${requestId}`);
    } catch (e) {
      this.post({ type: 'inference/didFail', runId, requestId, message: (e as Error).message });
      return;
    }
    this.post({ type: 'inference/didFinish', runId, requestId, entry });
  }

  private sendSeries(runId: string): void {
    const r = this.runs.get(runId);
    if (!r) return;
    void (async () => {
      try {
        const { jobConfig, seriesOf } = await import('../engine/runtime/inferworker');
        const c = this.cacheOf(r);
        const cfg = jobConfig({ modelText: c.snapshotText ?? fs.readFileSync(r.modelFile, 'utf8'), modelFile: r.modelFile, modelName: r.model, init: '', request: { kind: 'forecast', at: 0, steps: 0 } });
        const values = Array.from(await seriesOf(cfg));
        this.post({ type: 'series/didLoad', runId, values, validStart: values.length - Math.round(values.length * cfg.data.validation) });
      } catch (e) {
        this.post({ type: 'series/didLoad', runId, values: [], validStart: 0, error: (e as Error).message });
      }
    })();
  }

  private html(w: vscode.Webview): string {
    return webviewHtml(w, this.ctx.extensionUri, { bundle: 'notebook', title: 'Gatelab runs', app: { 'data-view': 'notebook' } });
  }

  dispose(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    for (const k of this.inferring.values()) k.kill();
    for (const c of this.children) c.kill('SIGKILL');
    for (const s of [...this.viewSubs, ...this.subs]) s.dispose();
  }
}

