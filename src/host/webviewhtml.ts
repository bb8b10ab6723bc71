// The page of a Gatelab webview: one bundle and its stylesheet from dist/webview, a strict content
// security policy (nothing from the network; scripts and styles only with this page's nonce, or
// from the extension), and the element the bundle mounts on.

import * as vscode from 'vscode';

export function nonce(): string {
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (let i = 0; i < 32; i++) s += chars[Math.floor(Math.random() * chars.length)];
  return s;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

export function webviewHtml(w: vscode.Webview, extensionUri: vscode.Uri, o: { bundle: 'dashboard' | 'notebook'; title: string; app: Record<string, string> }): string {
  const n = nonce();
  const uri = (f: string) => w.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', f));
  const attrs = Object.entries(o.app).map(([k, v]) => ` ${k}="${esc(v)}"`).join('');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src ${w.cspSource} data:; style-src ${w.cspSource} 'nonce-${n}'; script-src 'nonce-${n}'; font-src ${w.cspSource};">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${uri(`${o.bundle}.css`)}" nonce="${n}">
<title>${esc(o.title)}</title>
</head>
<body>
<div id="app"${attrs}></div>
<script nonce="${n}" src="${uri(`${o.bundle}.js`)}"></script>
</body>
</html>`;
}
