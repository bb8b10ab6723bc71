// Model-file problems as editor diagnostics at their exact line and column (YAML and JSON model
// files), with quick fixes where the loader knows one (unknown key → nearest valid key, enum typo →
// nearest value, out of range → the bound).

import * as vscode from 'vscode';
import { diagnoseModelText, Problem } from '../engine/config/load';

const FILE_RE = /\.gatelab\.(ya?ml|json)$/i;

export function isModelFile(doc: vscode.TextDocument): boolean {
  return doc.uri.scheme === 'file' && FILE_RE.test(doc.uri.fsPath);
}

function toRange(r: Problem['range']): vscode.Range {
  const end = r.endLine === r.line && r.endColumn <= r.column ? r.column + 1 : r.endColumn;
  return new vscode.Range(r.line - 1, r.column - 1, r.endLine - 1, end - 1);
}

export class ModelDiagnostics implements vscode.Disposable, vscode.CodeActionProvider {
  static readonly kinds = [vscode.CodeActionKind.QuickFix];
  readonly collection = vscode.languages.createDiagnosticCollection('gatelab');
  private readonly fixes = new Map<string, { range: vscode.Range; fix: NonNullable<Problem['fix']>; diagnostic: vscode.Diagnostic }[]>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly subs: vscode.Disposable[] = [];

  constructor() {
    this.subs.push(
      vscode.workspace.onDidOpenTextDocument((d) => this.update(d)),
      vscode.workspace.onDidChangeTextDocument((e) => this.updateSoon(e.document)),
      vscode.workspace.onDidCloseTextDocument((d) => {
        this.collection.delete(d.uri);
        this.fixes.delete(d.uri.toString());
      }),
    );
    for (const d of vscode.workspace.textDocuments) this.update(d);
  }

  private updateSoon(doc: vscode.TextDocument): void {
    if (!isModelFile(doc)) return;
    const k = doc.uri.toString();
    clearTimeout(this.timers.get(k));
    this.timers.set(k, setTimeout(() => this.update(doc), 250));
  }

  /** Validates one document and returns its diagnostics. */
  update(doc: vscode.TextDocument): vscode.Diagnostic[] {
    if (!isModelFile(doc)) return [];
    const problems = diagnoseModelText(doc.getText(), doc.uri.fsPath);
    const fixes: { range: vscode.Range; fix: NonNullable<Problem['fix']>; diagnostic: vscode.Diagnostic }[] = [];
    const diags = problems.map((p) => {
      const d = new vscode.Diagnostic(toRange(p.range), p.error.message + (p.error.hint ? ` (${p.error.hint})` : ''), vscode.DiagnosticSeverity.Error);
      d.source = 'gatelab';
      if (p.error.where.key) d.code = p.error.where.key;
      if (p.fix) fixes.push({ range: toRange(p.fix.range), fix: p.fix, diagnostic: d });
      return d;
    });
    this.collection.set(doc.uri, diags);
    this.fixes.set(doc.uri.toString(), fixes);
    return diags;
  }

  provideCodeActions(doc: vscode.TextDocument, range: vscode.Range | vscode.Selection): vscode.CodeAction[] {
    const out: vscode.CodeAction[] = [];
    for (const f of this.fixes.get(doc.uri.toString()) ?? []) {
      if (!f.range.intersection(range) && !f.diagnostic.range.intersection(range)) continue;
      const a = new vscode.CodeAction(f.fix.title, vscode.CodeActionKind.QuickFix);
      a.edit = new vscode.WorkspaceEdit();
      a.edit.replace(doc.uri, new vscode.Range(f.fix.range.line - 1, f.fix.range.column - 1, f.fix.range.endLine - 1, f.fix.range.endColumn - 1), f.fix.replacement);
      a.diagnostics = [f.diagnostic];
      a.isPreferred = true;
      out.push(a);
    }
    return out;
  }

  dispose(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    for (const s of this.subs) s.dispose();
    this.collection.dispose();
  }
}
