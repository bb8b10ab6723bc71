// package.json against the code: commands, palette visibility, settings, activation, schema,
// walkthrough media; and the boundaries between engine, host and webviews.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CATEGORY, COMMANDS } from '../../src/host/commands';
import { SETTING_DEFAULTS } from '../../src/host/settings';

const ROOT = path.resolve(__dirname, '../..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const c = pkg.contributes;

function files(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && d.name.endsWith('.ts'))
    .map((d) => path.join(d.parentPath ?? (d as unknown as { path: string }).path, d.name));
}

describe('package.json matches the code', () => {
  it('every command in the table is contributed with its category, and nothing else is', () => {
    const table = Object.values(COMMANDS);
    expect(c.commands.map((x: { command: string }) => x.command).sort()).toEqual(table.map((x) => x.id).sort());
    for (const t of table) {
      const m = c.commands.find((x: { command: string }) => x.command === t.id);
      expect(m.title, t.id).toBe(t.title);
      expect(m.category, t.id).toBe(CATEGORY);
      expect(m.icon, t.id).toBe(t.icon);
    }
  });

  it('CodeLens-only commands are hidden from the palette, the others are not', () => {
    const hidden = new Set(c.menus.commandPalette.filter((x: { when: string }) => x.when === 'false').map((x: { command: string }) => x.command));
    for (const t of Object.values(COMMANDS)) expect(hidden.has(t.id), t.id).toBe(!t.palette);
  });

  it('settings match the settings type, with the same defaults', () => {
    const props = c.configuration.properties;
    expect(Object.keys(props).sort()).toEqual(Object.keys(SETTING_DEFAULTS).map((k) => `gatelab.${k}`).sort());
    for (const [k, v] of Object.entries(SETTING_DEFAULTS)) {
      expect(props[`gatelab.${k}`].default, k).toEqual(v);
      expect(props[`gatelab.${k}`].description, k).toBeTruthy();
    }
  });

  it('activates narrowly, declares trust and remote behaviour, ships its schema and walkthrough', () => {
    expect(pkg.activationEvents).not.toContain('*');
    expect(pkg.activationEvents).toContain('workspaceContains:**/*.gatelab.{yaml,yml,json}');
    expect(pkg.capabilities.untrustedWorkspaces.supported).toBe('limited');
    expect(pkg.extensionKind).toEqual(['workspace']);
    expect(pkg.main).toBe('./dist/extension.js');
    expect(pkg.bin.gatelab).toBe('dist/cli.js');
    expect(fs.existsSync(path.join(ROOT, c.jsonValidation[0].url))).toBe(true);
    for (const s of c.walkthroughs[0].steps) expect(fs.existsSync(path.join(ROOT, s.media.markdown)), s.media.markdown).toBe(true);
    expect(pkg.dependencies['onnxruntime-node']).toBe('1.29.0');
    expect(fs.readFileSync(path.join(ROOT, '.npmrc'), 'utf8')).toContain('onnxruntime-node-install=skip');
  });
});

describe('the notebook side panel', () => {
  it('an activity-bar container with its icon holds the webview view the host registers', async () => {
    const { NOTEBOOK_CONTAINER, NOTEBOOK_VIEW } = await import('../../src/host/notebook');
    const container = c.viewsContainers.activitybar.find((x: { id: string }) => x.id === NOTEBOOK_CONTAINER);
    expect(container).toMatchObject({ title: 'Gatelab' });
    const icon = fs.readFileSync(path.join(ROOT, container.icon), 'utf8');
    expect(icon).toMatch(/^<svg[^>]*viewBox="0 0 24 24"/);
    expect(icon).toContain('currentColor'); // the activity bar tints it with the theme
    expect(c.views[NOTEBOOK_CONTAINER]).toEqual([expect.objectContaining({ type: 'webview', id: NOTEBOOK_VIEW })]);
    expect(pkg.activationEvents).toContain(`onView:${NOTEBOOK_VIEW}`);
    // its bundles are built by esbuild.mjs and shipped (.vscodeignore lets dist/webview and dist/infer.js in)
    const build = fs.readFileSync(path.join(ROOT, 'esbuild.mjs'), 'utf8');
    for (const out of ['dist/webview/notebook.js', 'dist/webview/notebook.css', 'dist/infer.js']) expect(build).toContain(`outfile: '${out}'`);
    const ignore = fs.readFileSync(path.join(ROOT, '.vscodeignore'), 'utf8').split('\n');
    expect(ignore).toContain('!dist/webview/**');
    expect(ignore).toContain('!dist/infer.js');
  });
});

describe('examples and templates', () => {
  it('every template ships its model file and data, and every example model file is valid', async () => {
    const { TEMPLATES } = await import('../../src/host/templates');
    const { loadModelFiles } = await import('../../src/engine/config/load');
    for (const t of TEMPLATES) {
      expect(fs.existsSync(path.join(ROOT, 'examples', t.source)), t.source).toBe(true);
      for (const d of t.data) expect(fs.existsSync(path.join(ROOT, 'examples', d)), d).toBe(true);
    }
    for (const f of fs.readdirSync(path.join(ROOT, 'examples')).filter((n) => /\.gatelab\.(ya?ml|json)$/.test(n))) {
      const models = loadModelFiles(path.join(ROOT, 'examples', f));
      for (const m of models) expect(fs.existsSync(m.data.source), `${f}: ${m.data.source}`).toBe(true);
    }
  });
});

describe('boundaries', () => {
  it('the engine, the CLI and the shared types never import vscode', () => {
    for (const f of [...files('src/engine'), ...files('src/cli'), ...files('src/shared')]) {
      expect(fs.readFileSync(f, 'utf8'), f).not.toMatch(/from ['"]vscode['"]|require\(['"]vscode['"]\)/);
    }
  });
  it('webviews import only shared types, never the engine, the host or node modules', () => {
    for (const f of files('webview')) {
      const text = fs.readFileSync(f, 'utf8');
      expect(text, f).not.toMatch(/from ['"][^'"]*src\/(engine|host)/);
      expect(text, f).not.toMatch(/from ['"](node:|vscode['"])/);
    }
  });
});
