// CodeLens above each model: detection is the pure `lensesFor`; this adapter turns it into
// vscode.CodeLens objects and refreshes when runs change.

import * as vscode from 'vscode';
import { lensesFor } from './lenses';
import { RunManager } from './runs';

export const MODEL_FILES: vscode.DocumentSelector = [{ pattern: '**/*.gatelab.{yaml,yml,json}' }];

export class ModelLensProvider implements vscode.CodeLensProvider, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.emitter.event;
  private readonly sub: { dispose(): void };
  private timer?: NodeJS.Timeout;
  private ticker: NodeJS.Timeout;

  constructor(private readonly runs: RunManager) {
    // live runs change often: refresh at most twice a second
    this.sub = runs.changed.on(() => this.refreshSoon());
    // "3 min ago" ages
    this.ticker = setInterval(() => this.emitter.fire(), 30_000);
  }

  refreshSoon(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.emitter.fire();
    }, 500);
  }

  provideCodeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    return lensesFor(doc.getText(), doc.uri.fsPath, this.runs).map((l) => {
      const range = new vscode.Range(l.line, 0, l.line, 0);
      return new vscode.CodeLens(range, { title: l.title, tooltip: l.tooltip, command: l.command, arguments: l.args });
    });
  }

  dispose(): void {
    this.sub.dispose();
    clearInterval(this.ticker);
    if (this.timer) clearTimeout(this.timer);
    this.emitter.dispose();
  }
}
