// What the webview tests share: Chromium (installed by test/e2e/install.sh, launched as the brief
// says Chromium must run as root here), and a page that loads a built webview bundle from
// dist/webview with a stubbed acquireVsCodeApi recording what the view posts.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Browser, chromium, Page } from 'playwright-core';
import { install } from '../e2e/proc';

const ROOT = path.resolve(__dirname, '../..');

export async function launchChromium(): Promise<Browser> {
  const env = await install(true);
  return chromium.launch({
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
  });
}

/** A temporary folder holding a copy of one built webview bundle (its .js and .css). */
export function bundleDir(bundle: 'dashboard' | 'notebook'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `gatelab-${bundle}-`));
  for (const ext of ['js', 'css']) fs.copyFileSync(path.join(ROOT, 'dist/webview', `${bundle}.${ext}`), path.join(dir, `${bundle}.${ext}`));
  return dir;
}

/**
 * Writes `<name>.html` into a bundleDir('dashboard') folder: the dashboard of run `run`, themed by
 * the given VS Code CSS variables; posted messages collect in `window.__posted`. Returns its file URL.
 */
export function dashboardPage(dir: string, name: string, o: { run: string; bodyClass: string; vars: Record<string, string> }): string {
  const style = Object.entries(o.vars).map(([k, v]) => `${k}: ${v};`).join(' ');
  const file = path.join(dir, `${name}.html`);
  fs.writeFileSync(
    file,
    `<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="stylesheet" href="dashboard.css"></head>
<body class="${o.bodyClass}" style="${style}">
<div id="app" data-run="${o.run}"></div>
<script>
  window.__posted = [];
  window.acquireVsCodeApi = () => ({ postMessage: (m) => window.__posted.push(m), getState: () => undefined, setState: () => undefined });
</script>
<script src="dashboard.js"></script>
</body></html>`,
  );
  return `file://${file}`;
}

/** VS Code's colour variables of its default dark, light and high-contrast themes (the subset the views use). */
const COMMON = {
  '--vscode-font-family': 'sans-serif',
  '--vscode-font-size': '13px',
  '--vscode-editor-font-family': 'monospace',
};
export const THEMES: Record<string, Record<string, string>> = {
  dark: {
    ...COMMON,
    '--vscode-foreground': '#cccccc',
    '--vscode-sideBar-background': '#181818',
    '--vscode-editor-background': '#1f1f1f',
    '--vscode-descriptionForeground': '#9d9d9d',
    '--vscode-editorWidget-border': '#454545',
    '--vscode-panel-border': '#2b2b2b',
    '--vscode-button-background': '#0078d4',
    '--vscode-button-foreground': '#ffffff',
    '--vscode-button-hoverBackground': '#026ec1',
    '--vscode-button-secondaryBackground': '#313131',
    '--vscode-button-secondaryForeground': '#cccccc',
    '--vscode-badge-background': '#616161',
    '--vscode-badge-foreground': '#f8f8f8',
    '--vscode-input-background': '#313131',
    '--vscode-input-foreground': '#cccccc',
    '--vscode-input-border': '#3c3c3c',
    '--vscode-input-placeholderForeground': '#989898',
    '--vscode-focusBorder': '#0078d4',
    '--vscode-textLink-foreground': '#4daafc',
    '--vscode-textCodeBlock-background': '#2b2b2b',
    '--vscode-errorForeground': '#f85149',
    '--vscode-progressBar-background': '#0078d4',
    '--vscode-list-inactiveSelectionBackground': '#37373d',
    '--vscode-charts-blue': '#3794ff',
    '--vscode-charts-red': '#f14c4c',
    '--vscode-charts-green': '#89d185',
    '--vscode-charts-orange': '#d18616',
  },
  light: {
    ...COMMON,
    '--vscode-foreground': '#3b3b3b',
    '--vscode-sideBar-background': '#f8f8f8',
    '--vscode-editor-background': '#ffffff',
    '--vscode-descriptionForeground': '#717171',
    '--vscode-editorWidget-border': '#c8c8c8',
    '--vscode-panel-border': '#e5e5e5',
    '--vscode-button-background': '#005fb8',
    '--vscode-button-foreground': '#ffffff',
    '--vscode-button-hoverBackground': '#0258a8',
    '--vscode-button-secondaryBackground': '#e5e5e5',
    '--vscode-button-secondaryForeground': '#3b3b3b',
    '--vscode-badge-background': '#cccccc',
    '--vscode-badge-foreground': '#3b3b3b',
    '--vscode-input-background': '#ffffff',
    '--vscode-input-foreground': '#3b3b3b',
    '--vscode-input-border': '#cecece',
    '--vscode-input-placeholderForeground': '#767676',
    '--vscode-focusBorder': '#005fb8',
    '--vscode-textLink-foreground': '#005fb8',
    '--vscode-textCodeBlock-background': '#f2f2f2',
    '--vscode-errorForeground': '#e51400',
    '--vscode-progressBar-background': '#005fb8',
    '--vscode-list-inactiveSelectionBackground': '#e4e6f1',
    '--vscode-charts-blue': '#1a85ff',
    '--vscode-charts-red': '#e51400',
    '--vscode-charts-green': '#388a34',
    '--vscode-charts-orange': '#d18616',
  },
  'high-contrast': {
    ...COMMON,
    '--vscode-foreground': '#ffffff',
    '--vscode-sideBar-background': '#000000',
    '--vscode-editor-background': '#000000',
    '--vscode-descriptionForeground': '#ffffff',
    '--vscode-editorWidget-border': '#6fc3df',
    '--vscode-panel-border': '#6fc3df',
    '--vscode-contrastBorder': '#6fc3df',
    '--vscode-button-background': '#000000',
    '--vscode-button-foreground': '#ffffff',
    '--vscode-button-secondaryBackground': '#000000',
    '--vscode-button-secondaryForeground': '#ffffff',
    '--vscode-badge-background': '#000000',
    '--vscode-badge-foreground': '#ffffff',
    '--vscode-input-background': '#000000',
    '--vscode-input-foreground': '#ffffff',
    '--vscode-input-border': '#6fc3df',
    '--vscode-focusBorder': '#f38518',
    '--vscode-textLink-foreground': '#21a6ff',
    '--vscode-errorForeground': '#f48771',
    '--vscode-progressBar-background': '#6fc3df',
    '--vscode-charts-blue': '#3794ff',
    '--vscode-charts-red': '#f14c4c',
    '--vscode-charts-green': '#89d185',
    '--vscode-charts-orange': '#d18616',
  },
};

/** Posts host messages to a webview page as the host would, then lets it draw. */
export async function feed(page: Page, messages: unknown[], settleMs = 300): Promise<void> {
  await page.evaluate((ms) => ms.forEach((m) => window.postMessage(m, '*')), messages);
  await page.waitForTimeout(settleMs);
}
