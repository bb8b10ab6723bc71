// The one object that owns the extension: runs, CodeLens, diagnostics, status bar, dashboards and
// commands. Two disposal scopes: the extension's (everything registered here) and each run's (its
// trainer process, progress notification and listeners, owned by RunManager and `watchRun`).

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { loadModelFile, loadModelFiles, modelAnchors, readModel } from '../engine/config/load';
import { Setting, sweepSettings, variantText } from '../engine/sweep';
import type { ModelConfig } from '../engine/config/types';
import { isUserError } from '../engine/errors';
import { doctorReport, DoctorReport } from '../engine/runtime/doctor';
import { ortEnv } from '../engine/runtime/ortload';
import { hasNvidiaDriver } from '../engine/cuda/libs';
import { setUpCuda, SET_UP_CUDA } from './cuda';
import { exportOnnx } from '../engine/train/export';
import { CATEGORY, COMMANDS, CommandArgs, ModelRef } from './commands';
import { DashboardPanel, DashboardSerializer, DASHBOARD_VIEW } from './dashboard';
import { NotebookViewProvider, NOTEBOOK_VIEW } from './notebook';
import { ModelDiagnostics } from './diagnostics';
import { ModelHoverProvider, YAML_MODEL_FILES } from './hover';
import { ModelLensProvider, MODEL_FILES } from './codelens';
import { Log } from './log';
import { describeRun, formatDuration, RunInfo, RunManager } from './runs';
import { readSettings, Settings } from './settings';
import { TEMPLATES } from './templates';

export interface GatelabApi {
  runs: RunManager;
  /** for tests: the diagnostics of a document */
  diagnostics: ModelDiagnostics;
  /** for tests: the side panel (inference with a run's checkpoint) */
  notebook: NotebookViewProvider;
}

/** What an exported model is made of, in words: `the standard ONNX GRU operator; inputs "x", outputs "pred"`. */
export function exportedAs(cfg: ModelConfig, res: { inputs?: string[]; outputs?: string[] }): string {
  const ops = [...new Set(cfg.model.layers.map((l) => l.type.toUpperCase()))];
  const list = (xs: string[] | undefined) => (xs ?? []).map((x) => `"${x}"`).join(', ');
  return `the standard ONNX ${ops.join(' and ')} operator${ops.length > 1 ? 's' : ''}${ops.length && cfg.model.layers.some((l) => l.bidirectional) ? ' (bidirectional)' : ''}; input${(res.inputs?.length ?? 0) > 1 ? 's' : ''} ${list(res.inputs)}, output${(res.outputs?.length ?? 0) > 1 ? 's' : ''} ${list(res.outputs)}`;
}

export class Gatelab implements vscode.Disposable {
  readonly log: Log;
  readonly runs: RunManager;
  private readonly subs: vscode.Disposable[] = [];
  private readonly status: vscode.StatusBarItem;
  private readonly diagnostics: ModelDiagnostics;
  private readonly lenses: ModelLensProvider;
  /** the notebook side panel (the Gatelab view in the activity bar) */
  readonly notebook: NotebookViewProvider;
  private readonly activatedAt = Date.now();

  constructor(private readonly ctx: vscode.ExtensionContext) {
    this.log = new Log(() => this.settings().logLevel);
    this.runs = new RunManager({
      workerScript: path.join(ctx.extensionPath, 'dist', 'worker.js'),
      runsFolder: () => this.settings().runsFolder,
      concurrency: () => this.settings().concurrentRuns,
      jobDefaults: () => {
        const s = this.settings();
        return { device: s.device, threads: s.threads || undefined, checkpointEvery: s.checkpointInterval, ...(s.tokenCacheGB > 0 ? { cacheMaxBytes: Math.round(s.tokenCacheGB * 1024 ** 3) } : { cache: false }) };
      },
      env: () => this.childEnv(),
      log: (level, m) => this.log.write(level, m),
    });
    this.status = vscode.window.createStatusBarItem('gatelab.status', vscode.StatusBarAlignment.Left, 50);
    this.status.name = 'Gatelab';
    this.diagnostics = new ModelDiagnostics();
    this.lenses = new ModelLensProvider(this.runs);
    this.notebook = new NotebookViewProvider(ctx, this.runs, {
      inferScript: path.join(ctx.extensionPath, 'dist', 'infer.js'),
      env: () => this.childEnv(),
      log: (level, m) => this.log.write(level, m),
      train: (ref) => this.train(ref),
      resume: (ref) => this.resume(ref),
    });
    this.subs.push(
      this.log,
      this.status,
      this.diagnostics,
      this.lenses,
      vscode.languages.registerCodeLensProvider(MODEL_FILES, this.lenses),
      vscode.languages.registerCodeActionsProvider(MODEL_FILES, this.diagnostics, { providedCodeActionKinds: ModelDiagnostics.kinds }),
      vscode.languages.registerHoverProvider(YAML_MODEL_FILES, new ModelHoverProvider()),
      vscode.window.registerWebviewPanelSerializer(DASHBOARD_VIEW, new DashboardSerializer(ctx, this.runs)),
      vscode.window.registerWebviewViewProvider(NOTEBOOK_VIEW, this.notebook),
      this.notebook,
      this.runs.changed.on(() => this.updateStatus()),
      { dispose: () => this.runs.dispose() },
    );
    this.registerCommands();
    this.updateStatus();
    this.log.info(`Gatelab ${ctx.extension.packageJSON.version} activated`);
  }

  get api(): GatelabApi {
    return { runs: this.runs, diagnostics: this.diagnostics, notebook: this.notebook };
  }

  settings(): Settings {
    return readSettings(vscode.workspace.getConfiguration('gatelab'));
  }

  /** Where Set Up CUDA installs: GATELAB_CUDA_DIR when the user set it, else the extension's global storage. */
  get cudaDir(): string {
    return process.env.GATELAB_CUDA_DIR || path.join(this.ctx.globalStorageUri.fsPath, 'cuda');
  }

  /**
   * The environment of trainer, inference and doctor processes: the CUDA folder, the provider
   * folder of the setting, and both on the loader path (which a process reads when it starts).
   */
  childEnv(): NodeJS.ProcessEnv {
    const s = this.settings();
    const base: NodeJS.ProcessEnv = { ...process.env, GATELAB_CUDA_DIR: this.cudaDir };
    if (s.cudaProviderPath) base.GATELAB_CUDA_PROVIDER_DIR = s.cudaProviderPath;
    return ortEnv(base);
  }

  private doctorReport(): Promise<DoctorReport> {
    return doctorReport({ cliScript: path.join(this.ctx.extensionPath, 'dist', 'cli.js'), env: this.childEnv() });
  }

  private register<K extends keyof CommandArgs>(id: K, fn: (...args: CommandArgs[K]) => unknown): void {
    this.subs.push(
      vscode.commands.registerCommand(id, async (...args: unknown[]) => {
        try {
          return await fn(...(args as CommandArgs[K]));
        } catch (e) {
          this.log.error(`${id}: ${(e as Error).stack ?? e}`);
          void vscode.window.showErrorMessage(isUserError(e) ? e.format() : `Gatelab: ${(e as Error).message}`);
        }
      }),
    );
  }

  private registerCommands(): void {
    this.register(COMMANDS.train.id, (ref) => this.train(ref));
    this.register(COMMANDS.stop.id, (ref) => this.stop(ref));
    this.register(COMMANDS.sweep.id, (ref) => this.sweep(ref));
    this.register(COMMANDS.resume.id, (ref) => this.resume(ref));
    this.register(COMMANDS.sample.id, (ref) => this.sample(ref));
    this.register(COMMANDS.newModel.id, (t) => this.newModel(t));
    this.register(COMMANDS.exportOnnx.id, (ref) => this.exportOnnx(ref));
    this.register(COMMANDS.exportPytorch.id, (ref) => this.exportPytorch(ref));
    this.register(COMMANDS.predict.id, (ref) => this.predict(ref));
    this.register(COMMANDS.openDashboard.id, (ref) => this.openDashboard(ref));
    this.register(COMMANDS.showRuns.id, () => this.showRuns());
    this.register(COMMANDS.selectDevice.id, () => this.selectDevice());
    this.register(COMMANDS.doctor.id, () => this.doctor());
    this.register(COMMANDS.setUpCuda.id, () => this.setUpCuda());
    this.register(COMMANDS.openRunFolder.id, (ref) => this.openRunFolder(ref));
    this.register(COMMANDS.showOutput.id, () => this.log.channel.show(true));
    this.register(COMMANDS.lensRunResult.id, (runId) => this.openDashboard({ runId }));
  }

  // ---- model resolution ----

  /** The model a command is for: its argument, else the model under the cursor of the active editor. */
  private async resolveModel(ref?: ModelRef): Promise<{ file: string; model: string } | undefined> {
    if (ref?.file && ref.model) return { file: ref.file, model: ref.model };
    const file = ref?.file ?? this.activeModelFile();
    if (!file) {
      const picked = await this.pickModelFile();
      if (!picked) return undefined;
      return this.resolveModel({ file: picked });
    }
    const text = fs.readFileSync(file, 'utf8');
    const anchors = modelAnchors(text).filter((a) => a.name);
    if (anchors.length === 0) throw new Error(`${path.basename(file)} holds no model with a name`);
    const ed = vscode.window.activeTextEditor;
    if (anchors.length === 1 || !ed || ed.document.uri.fsPath !== file) return { file, model: anchors[0].name! };
    const line = ed.selection.active.line + 1;
    const at = [...anchors].reverse().find((a) => a.line <= line) ?? anchors[0];
    return { file, model: at.name! };
  }

  private activeModelFile(): string | undefined {
    const d = vscode.window.activeTextEditor?.document;
    return d && /\.gatelab\.(ya?ml|json)$/i.test(d.uri.fsPath) ? d.uri.fsPath : undefined;
  }

  private async pickModelFile(): Promise<string | undefined> {
    const files = await vscode.workspace.findFiles('**/*.gatelab.{yaml,yml,json}', '**/node_modules/**', 200);
    if (files.length === 0) {
      const choice = await vscode.window.showInformationMessage('No Gatelab model file in this workspace.', 'New Model from Template');
      if (choice) await vscode.commands.executeCommand(COMMANDS.newModel.id);
      return undefined;
    }
    if (files.length === 1) return files[0].fsPath;
    const pick = await vscode.window.showQuickPick(
      files.map((f) => ({ label: vscode.workspace.asRelativePath(f), file: f.fsPath })),
      { title: 'Gatelab: choose a model file' },
    );
    return pick?.file;
  }

  // ---- commands ----

  /** Workspace Trust: a process that reads this folder's files needs it; asks to manage trust otherwise. */
  async trusted(what: string): Promise<boolean> {
    if (vscode.workspace.isTrusted) return true;
    const choice = await vscode.window.showWarningMessage(
      `${what} runs a process on this folder's files. Trust this folder to do it here.`,
      { modal: true },
      'Manage Workspace Trust',
    );
    if (choice) await vscode.commands.executeCommand('workbench.trust.manage');
    return false;
  }

  async train(ref?: ModelRef): Promise<RunInfo | undefined> {
    if (!(await this.trusted('Training'))) return undefined;
    const m = await this.resolveModel(ref);
    if (!m) return undefined;
    // save the file first: the trainer reads it from disk
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.fsPath === m.file);
    if (doc?.isDirty) await doc.save();
    // a broken model file: show where, do not start a process
    try {
      loadModelFiles(m.file);
    } catch (e) {
      if (isUserError(e)) {
        const d = doc ?? (await vscode.workspace.openTextDocument(m.file));
        this.diagnostics.update(d);
        await vscode.window.showTextDocument(d, { preview: false });
        void vscode.commands.executeCommand('workbench.actions.view.problems');
        void vscode.window.showErrorMessage(`Gatelab: ${path.basename(m.file)} has problems; fix them to train (see Problems).`);
        return undefined;
      }
      throw e;
    }
    const running = this.runs.runningFor(m.file, m.model);
    if (running) {
      void vscode.window.showInformationMessage(`${m.model} is already training.`, 'Open Dashboard').then((c) => c && this.openDashboard({ runId: running.id }));
      return running;
    }
    const run = this.runs.start({ modelFile: m.file, modelName: m.model });
    this.watchRun(run);
    DashboardPanel.show(this.ctx, this.runs, run.id);
    return run;
  }

  /**
   * Every combination of the model's `sweep:` values as a run of its own (queued or in parallel as
   * gatelab.concurrentRuns says), each with its variant and setting; the side panel groups them.
   */
  async sweep(ref?: ModelRef): Promise<RunInfo[]> {
    if (!(await this.trusted('Running a sweep'))) return [];
    const m = await this.resolveModel(ref);
    if (!m) return [];
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.fsPath === m.file);
    if (doc?.isDirty) await doc.save();
    let variants: { text: string; setting: Setting }[];
    try {
      const { cfg, text } = readModel(m.file, m.model);
      if (!cfg.sweep || Object.keys(cfg.sweep).length === 0) {
        void vscode.window.showInformationMessage(`Gatelab: ${m.model} has no sweep: key (e.g. sweep: { model.layers.0.forgetBias: [0, 1], train.seed: [1, 2, 3] }).`);
        return [];
      }
      variants = sweepSettings(cfg.sweep).map((setting) => ({ setting, text: variantText(cfg, text, setting) }));
    } catch (e) {
      if (!isUserError(e)) throw e;
      void vscode.window.showErrorMessage(`Gatelab: the sweep of ${m.model} cannot run: ${e.format()}`);
      return [];
    }
    const started = variants.map((v) => this.runs.start({ modelFile: m.file, modelName: m.model, modelText: v.text, sweep: { name: m.model, setting: v.setting } }));
    this.log.info(`sweep ${m.model}: ${started.length} runs`);
    void vscode.commands.executeCommand(`${NOTEBOOK_VIEW}.focus`);
    return started;
  }

  /** The per-run scope: a cancellable progress notification and the end-of-run message. */
  private watchRun(run: RunInfo): void {
    void vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Training ${run.model}`, cancellable: true },
      (progress, token) =>
        new Promise<void>((resolve) => {
          let lastPct = 0;
          const cancel = token.onCancellationRequested(() => void this.runs.stop(run.id));
          const sub = this.runs.changed.on((r) => {
            if (r.id !== run.id) return;
            const total = r.startedMsg?.totalSteps;
            if (r.status === 'running' && r.last && total) {
              const pct = (100 * r.last.step) / total;
              progress.report({ increment: pct - lastPct, message: describeRun(r) });
              lastPct = pct;
            } else if (r.status === 'running' && r.reading && !r.startedMsg) progress.report({ message: describeRun(r) });
            else if (r.status === 'queued') progress.report({ message: 'queued' });
            if (r.status === 'done' || r.status === 'failed' || r.status === 'stopped') {
              sub.dispose();
              cancel.dispose();
              resolve();
              this.announce(r);
            }
          });
        }),
    );
  }

  private announce(r: RunInfo): void {
    if (r.status === 'failed') {
      const where = r.errorWhere;
      // a CUDA failure on a machine with an NVIDIA driver: the fix is one command away
      const cuda = /\bCUDA\b/.test(r.error ?? '') && hasNvidiaDriver();
      const actions = [...(cuda ? [SET_UP_CUDA] : []), ...(where?.file ? ['Show Problem', 'Show Log'] : ['Show Log'])];
      void vscode.window.showErrorMessage(`Gatelab: training ${r.model} failed: ${r.error}`, ...actions).then(async (c) => {
        if (c === SET_UP_CUDA) void vscode.commands.executeCommand(COMMANDS.setUpCuda.id);
        if (c === 'Show Log') this.log.channel.show(true);
        if (c === 'Show Problem' && where?.file) {
          const ed = await vscode.window.showTextDocument(vscode.Uri.file(where.file));
          if (where.line) {
            const pos = new vscode.Position(where.line - 1, Math.max(0, (where.column ?? 1) - 1));
            ed.selection = new vscode.Selection(pos, pos);
            ed.revealRange(new vscode.Range(pos, pos));
          }
        }
      });
    } else if (r.status === 'done') {
      void vscode.window.setStatusBarMessage(`$(check) Gatelab: ${r.model} trained — ${describeRun(r)}`, 10_000);
    }
  }

  private async pickRun(filter: (r: RunInfo) => boolean, title: string): Promise<RunInfo | undefined> {
    const rs = this.runs.all.filter(filter).reverse();
    if (rs.length <= 1) return rs[0];
    const pick = await vscode.window.showQuickPick(
      rs.map((r) => ({ label: r.model, description: `${r.status} · ${describeRun(r)}`, detail: r.id, run: r })),
      { title },
    );
    return pick?.run;
  }

  private async runFor(ref: ModelRef | { runId: string } | undefined, filter: (r: RunInfo) => boolean, title: string): Promise<RunInfo | undefined> {
    if (ref && 'runId' in ref) return this.runs.get(ref.runId);
    if (ref && 'file' in ref && ref.model) return this.runs.latest(ref.file, ref.model);
    const file = this.activeModelFile();
    if (file) {
      const m = await this.resolveModel({ file });
      if (m) {
        const r = this.runs.latest(m.file, m.model);
        if (r && filter(r)) return r;
      }
    }
    return this.pickRun(filter, title);
  }

  async stop(ref?: ModelRef | { runId: string }): Promise<void> {
    const r = await this.runFor(ref, (x) => x.status === 'running' || x.status === 'queued', 'Stop which run?');
    if (!r) {
      void vscode.window.showInformationMessage('Gatelab: no run is training.');
      return;
    }
    await this.runs.stop(r.id);
  }

  /** Continues a stopped or failed run where it stopped (its weights, optimizer state and data position). */
  async resume(ref?: ModelRef | { runId: string }): Promise<RunInfo | undefined> {
    if (!(await this.trusted('Resuming a run'))) return undefined;
    const r = await this.runFor(ref, (x) => this.runs.resumable(x.id), 'Resume which run?');
    if (!r || !this.runs.resumable(r.id)) {
      void vscode.window.showInformationMessage(
        r ? `Gatelab: ${r.model} (${r.id}) cannot be resumed: only a stopped or failed run with a saved checkpoint can.` : 'Gatelab: no stopped or failed run to resume.',
      );
      return undefined;
    }
    const run = this.runs.resume(r.id);
    if (!run) return undefined;
    this.watchRun(run);
    DashboardPanel.show(this.ctx, this.runs, run.id);
    return run;
  }

  async openDashboard(ref?: ModelRef | { runId: string }): Promise<void> {
    const r = await this.runFor(ref, () => true, 'Open the dashboard of which run?');
    if (!r) {
      void vscode.window.showInformationMessage('Gatelab: no runs yet. Click ▶ Train above a model first.');
      return;
    }
    DashboardPanel.show(this.ctx, this.runs, r.id);
  }

  async openRunFolder(ref?: ModelRef | { runId: string }): Promise<void> {
    const r = await this.runFor(ref, () => true, 'Open the folder of which run?');
    if (!r) return;
    await vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(path.join(r.dir, 'run.json')));
  }

  async showRuns(): Promise<void> {
    for (const d of vscode.workspace.textDocuments) if (/\.gatelab\.(ya?ml|json)$/i.test(d.uri.fsPath)) this.runs.loadRecords(d.uri.fsPath);
    const files = await vscode.workspace.findFiles('**/*.gatelab.{yaml,yml,json}', '**/node_modules/**', 200);
    for (const f of files) this.runs.loadRecords(f.fsPath);
    const r = await this.pickRun(() => true, 'Gatelab runs');
    if (r) DashboardPanel.show(this.ctx, this.runs, r.id);
    else if (this.runs.all.length === 0) void vscode.window.showInformationMessage('Gatelab: no runs yet.');
  }

  /** The latest run of a model that has a checkpoint, or a message saying why there is none. */
  private runWithCheckpoint(m: { file: string; model: string }): RunInfo | undefined {
    const r = this.runs.latest(m.file, m.model);
    const ck = r?.checkpoint ?? r?.summary?.checkpoint;
    if (!r || !ck || !fs.existsSync(ck)) {
      void vscode.window.showInformationMessage(`Gatelab: ${m.model} has no checkpoint yet; train it first.`);
      return undefined;
    }
    return r;
  }

  /**
   * Text from a language model's last checkpoint, with the model as that run trained it. Runs in a
   * child process (a crash there leaves the extension working); the sample is kept with the run and
   * shown in its cell of the side panel.
   */
  async sample(ref?: ModelRef): Promise<string | undefined> {
    if (!(await this.trusted('Sampling'))) return undefined;
    const m = await this.resolveModel(ref);
    if (!m) return undefined;
    const r = this.runWithCheckpoint(m);
    if (!r) return undefined;
    const prefix = await vscode.window.showInputBox({ title: `Sample from ${m.model}`, prompt: 'Prefix (empty: the start of the training text)', value: '' });
    if (prefix === undefined) return undefined;
    try {
      const entry = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Sampling from ${m.model}` }, () =>
        this.notebook.inferFor(r.id, { kind: 'sample', prefix, length: 300, temperature: 0.7 }),
      );
      const text = entry.kind === 'sample' ? entry.text : '';
      this.log.info(`sample from ${m.model} (${r.id}): ${text}`);
      const doc = await vscode.workspace.openTextDocument({ content: text + '\n', language: 'plaintext' });
      await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.Beside, preview: true });
      return text;
    } catch (e) {
      this.log.error(`sample from ${m.model} (${r.id}) failed: ${(e as Error).message}`);
      void vscode.window.showErrorMessage(`Gatelab: sampling from ${m.model} failed: ${(e as Error).message}`);
      return undefined;
    }
  }

  /** Classification: a sentence → class probabilities; forecast: the next values after the data. In a child process, kept with the run. */
  async predict(ref?: ModelRef): Promise<string | undefined> {
    if (!(await this.trusted('Prediction'))) return undefined;
    const m = await this.resolveModel(ref);
    if (!m) return undefined;
    const r = this.runWithCheckpoint(m);
    if (!r) return undefined;
    const task = r.task ?? loadModelFile(m.file, m.model).task;
    try {
      let text: string;
      if (task === 'classification') {
        const sentence = await vscode.window.showInputBox({ title: `Classify with ${m.model}`, prompt: 'A sentence' });
        if (!sentence) return undefined;
        const e = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Classifying with ${m.model}` }, () =>
          this.notebook.inferFor(r.id, { kind: 'classify', text: sentence }),
        );
        if (e.kind !== 'classify') return undefined;
        const probs = [...e.probabilities].sort((a, b) => a.label.localeCompare(b.label)).map((p) => `${p.label} ${(100 * p.p).toFixed(1)}%`).join(' · ');
        text = `"${sentence}" → ${e.label} (${probs})`;
        void vscode.window.showInformationMessage(`Gatelab: ${text}`);
      } else if (task === 'forecast') {
        const cfg = loadModelFile(m.file, m.model);
        const steps = await vscode.window.showInputBox({ title: `Forecast with ${m.model}`, prompt: 'How many values after the end of the data?', value: String(Math.max(cfg.data.horizon, 12)), validateInput: (v) => (/^[1-9]\d*$/.test(v) ? undefined : 'a positive integer') });
        if (!steps) return undefined;
        const at = await this.notebook.seriesLength(r.id);
        const e = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Forecasting with ${m.model}` }, () =>
          this.notebook.inferFor(r.id, { kind: 'forecast', at, steps: Number(steps) }),
        );
        if (e.kind !== 'forecast') return undefined;
        text = `${m.model}: the next ${steps} values after the last of the ${at} values of the data:\n${e.forecast.map((v, i) => `${i + 1}\t${+v.toPrecision(6)}`).join('\n')}`;
        const doc = await vscode.workspace.openTextDocument({ content: text + '\n', language: 'plaintext' });
        await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.Beside, preview: true });
      } else {
        void vscode.window.showInformationMessage(`Gatelab: ${m.model} is a ${task} model; use Sample for language models.`);
        return undefined;
      }
      this.log.info(`predict ${m.model} (${r.id}): ${text}`);
      return text;
    } catch (e) {
      this.log.error(`predict with ${m.model} (${r.id}) failed: ${(e as Error).message}`);
      void vscode.window.showErrorMessage(`Gatelab: prediction with ${m.model} failed: ${(e as Error).message}`);
      return undefined;
    }
  }

  async exportOnnx(ref?: ModelRef): Promise<vscode.Uri | undefined> {
    const m = await this.resolveModel(ref);
    if (!m) return undefined;
    const r = this.runs.latest(m.file, m.model);
    const ck = r?.checkpoint ?? r?.summary?.checkpoint;
    if (!ck || !fs.existsSync(ck)) {
      void vscode.window.showInformationMessage(`Gatelab: ${m.model} has no checkpoint yet; train it first.`);
      return undefined;
    }
    const target = await vscode.window.showSaveDialog({
      defaultUri: vscode.Uri.file(path.join(path.dirname(m.file), `${m.model}.onnx`)),
      filters: { 'ONNX model': ['onnx'] },
      title: `Export ${m.model} as ONNX`,
    });
    if (!target) return undefined;
    const res = exportOnnx({ modelFile: m.file, modelName: m.model, init: ck, out: target.fsPath });
    this.log.info(`exported ${m.model} (${r!.id}) to ${target.fsPath} (${res.bytes} bytes)`);
    void vscode.window.showInformationMessage(`Gatelab: exported ${m.model} to ${path.basename(target.fsPath)} (${exportedAs(loadModelFile(m.file, m.model), res)}).`);
    return target;
  }

  /**
   * A language model as a PyTorch training job (`gatelab export --pytorch`): from the last run's
   * checkpoint when there is one, recording its runs in the model's runs folder, so a torchrun run
   * shows in the side panel like any other.
   */
  async exportPytorch(ref?: ModelRef): Promise<vscode.Uri | undefined> {
    const m = await this.resolveModel(ref);
    if (!m) return undefined;
    const r = this.runs.latest(m.file, m.model);
    const ck = r?.checkpoint ?? r?.summary?.checkpoint;
    const target = await vscode.window.showSaveDialog({
      defaultUri: vscode.Uri.file(path.join(path.dirname(m.file), `${m.model}-pytorch`)),
      title: `Export ${m.model} as a PyTorch training job (a folder)`,
      saveLabel: 'Export',
    });
    if (!target) return undefined;
    try {
      const { exportPytorchJob } = await import('../engine/pytorch/job');
      const init = ck && fs.existsSync(ck) ? ck : undefined;
      const res = await exportPytorchJob({ modelFile: m.file, modelName: m.model, init, dir: target.fsPath, runs: this.runs.runsDirFor(m.file) });
      const cmd = `torchrun --redirects 1 --tee 1 --nproc_per_node 2 ${path.join(res.dir, 'train.py')}`;
      this.log.info(`exported ${m.model} as a PyTorch job in ${res.dir}${init ? ` from ${init}` : ' (PyTorch initialisation)'}`);
      const pick = await vscode.window.showInformationMessage(`Gatelab: ${m.model} is a PyTorch job in ${path.basename(res.dir)}${init ? ', starting from the last checkpoint' : ''}. Its runs appear in the side panel.`, 'Copy torchrun Command', 'Open README');
      if (pick === 'Copy torchrun Command') await vscode.env.clipboard.writeText(cmd);
      if (pick === 'Open README') await vscode.window.showTextDocument(vscode.Uri.file(path.join(res.dir, 'README.md')));
      return vscode.Uri.file(res.dir);
    } catch (e) {
      void vscode.window.showErrorMessage(`Gatelab: ${(e as Error).message}`);
      return undefined;
    }
  }

  async newModel(template?: string): Promise<vscode.Uri | undefined> {
    let t = TEMPLATES.find((x) => x.id === template);
    if (!t) {
      const pick = await vscode.window.showQuickPick(
        TEMPLATES.map((x) => ({ label: x.label, description: x.description, t: x })),
        { title: 'New Gatelab model from a template' },
      );
      if (!pick) return undefined;
      t = pick.t;
    }
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    let target: vscode.Uri | undefined = folder ? vscode.Uri.joinPath(folder, t.fileName) : undefined;
    if (!target || fs.existsSync(target.fsPath))
      target = await vscode.window.showSaveDialog({ defaultUri: target, filters: { 'Gatelab model': ['yaml'] }, title: 'Save the new model as' });
    if (!target) return undefined;
    const src = path.join(this.ctx.extensionPath, 'examples');
    fs.writeFileSync(target.fsPath, fs.readFileSync(path.join(src, t.source), 'utf8'));
    for (const d of t.data) {
      const to = path.join(path.dirname(target.fsPath), d);
      if (!fs.existsSync(to)) {
        fs.mkdirSync(path.dirname(to), { recursive: true });
        fs.copyFileSync(path.join(src, d), to);
      }
    }
    await vscode.window.showTextDocument(target);
    return target;
  }

  async selectDevice(): Promise<void> {
    const report = await this.doctorReport();
    const items = [
      { label: 'auto', description: report.cuda.ok ? 'CUDA here' : 'CPU here (CUDA not available)', detail: 'CUDA when its provider loads, else the CPU' },
      { label: 'cpu', description: report.cpu.ok ? 'available' : 'failed', detail: 'onnxruntime CPU execution provider' },
      { label: 'cuda', description: report.cuda.ok ? 'available' : 'not available', detail: report.cuda.ok ? 'onnxruntime CUDA execution provider' : report.cuda.reason },
    ];
    const pick = await vscode.window.showQuickPick(items, { title: `Gatelab device (now: ${this.settings().device})` });
    if (!pick) return;
    await vscode.workspace.getConfiguration('gatelab').update('device', pick.label, vscode.ConfigurationTarget.Workspace);
  }

  async doctor(): Promise<string> {
    const report = await this.doctorReport();
    this.log.channel.appendLine('');
    this.log.channel.appendLine('── gatelab doctor ──');
    this.log.channel.appendLine(report.text);
    this.log.channel.show(true);
    const actions = !report.cuda.ok && report.cuda.installable ? [SET_UP_CUDA, 'Show Details'] : ['Show Details'];
    void vscode.window.showInformationMessage(report.cuda.ok ? 'Gatelab: CUDA and CPU are available.' : `Gatelab: training runs on the CPU: ${report.cuda.reason ?? ''}`, ...actions).then((c) => {
      if (c === SET_UP_CUDA) void vscode.commands.executeCommand(COMMANDS.setUpCuda.id);
      else if (c) this.log.channel.show();
    });
    return report.text;
  }

  /** Gatelab: Set Up CUDA (offered by the doctor and when a CUDA run fails on a machine with an NVIDIA driver). */
  setUpCuda(): Promise<boolean> {
    return setUpCuda({ dir: this.cudaDir, log: this.log, doctor: () => this.doctorReport() });
  }

  // ---- status bar ----

  private updateStatus(): void {
    const live = this.runs.active();
    const r = live.find((x) => x.status === 'running') ?? live[0];
    if (!r) {
      // the last run that ended in this window, until the next one starts
      const ended = this.runs.all.filter((x) => x.finished && x.finished > this.activatedAt).pop();
      if (!ended) {
        this.status.hide();
        return;
      }
      const icon = ended.status === 'done' ? '$(check)' : ended.status === 'failed' ? '$(error)' : '$(debug-stop)';
      this.status.text = `${icon} ${ended.model} · ${describeRun(ended).split(' · ').slice(0, 2).join(' · ')}`;
      this.status.tooltip = `Gatelab: ${ended.model} ${ended.status} — ${describeRun(ended)}\nClick to open the dashboard`;
      this.status.command = { title: 'Open Dashboard', command: COMMANDS.openDashboard.id, arguments: [{ runId: ended.id }] };
      this.status.accessibilityInformation = { label: `Gatelab ${ended.model} ${ended.status}` };
      this.status.show();
      return;
    }
    const parts = [r.model];
    if (r.last) {
      const total = r.startedMsg?.totalSteps;
      const e = r.startedMsg?.epochs;
      parts.push(e && e > 1 ? `epoch ${r.last.epoch}/${e}` : `step ${r.last.step}${total ? `/${total}` : ''}`);
      parts.push(`loss ${r.last.losses[r.last.losses.length - 1]?.toFixed(3)}`);
      if (r.last.remainingMs > 0) parts.push(`${formatDuration(r.last.remainingMs)} left`);
    } else parts.push(r.status === 'queued' ? 'queued' : 'starting');
    if (r.startedMsg) parts.push(r.startedMsg.device);
    const more = live.length > 1 ? ` (+${live.length - 1})` : '';
    this.status.text = `$(sync~spin) ${parts.join(' · ')}${more}`;
    this.status.tooltip = `Gatelab: ${describeRun(r)}\nClick to open the dashboard`;
    this.status.command = { title: 'Open Dashboard', command: COMMANDS.openDashboard.id, arguments: [{ runId: r.id }] };
    this.status.accessibilityInformation = { label: `Gatelab training ${parts.join(', ')}` };
    this.status.show();
  }

  /** Asks every trainer to stop with a checkpoint; resolves when they have exited (or were killed after a grace). */
  shutdown(): Promise<void> {
    return this.runs.shutdown();
  }

  dispose(): void {
    for (const d of DashboardPanel.open) d.panel.dispose();
    for (const s of this.subs.reverse()) s.dispose();
  }
}

export { CATEGORY };
