// Hover docs in YAML model files (JSON model files get the schema's from VS Code's JSON support): a
// key's documentation from the schema, and inside a cell layer's equation what each name means.

import * as vscode from 'vscode';
import { hoverAt } from '../engine/config/load';

export const YAML_MODEL_FILES: vscode.DocumentSelector = [{ pattern: '**/*.gatelab.{yaml,yml}' }];

export class ModelHoverProvider implements vscode.HoverProvider {
  provideHover(doc: vscode.TextDocument, pos: vscode.Position): vscode.Hover | undefined {
    const h = hoverAt(doc.getText(), pos.line + 1, pos.character + 1);
    if (!h) return undefined;
    const md = new vscode.MarkdownString(h.markdown);
    return new vscode.Hover(md, new vscode.Range(h.range.line - 1, h.range.column - 1, h.range.endLine - 1, h.range.endColumn - 1));
  }
}
