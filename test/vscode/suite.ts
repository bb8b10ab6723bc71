// Runs inside a real VS Code (desktop) with the extension under development: activation, commands,
// CodeLens through vscode.executeCodeLensProvider, and a tiny model trained to completion through
// the Train command.
import * as assert from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { GatelabApi } from '../../src/host/gatelab';
import { COMMANDS } from '../../src/host/commands';

export function registerSuite(): void {
  describe('Gatelab in VS Code', () => {
    let api: GatelabApi;
    const folder = () => vscode.workspace.workspaceFolders![0].uri.fsPath;

    before(async () => {
      const ext = vscode.extensions.getExtension('gatelab.gatelab')!;
      api = (await ext.activate()) as GatelabApi;
    });

    it('registers every command', async () => {
      const all = new Set(await vscode.commands.getCommands(true));
      for (const c of Object.values(COMMANDS)) assert.ok(all.has(c.id), c.id);
    });

    it('puts ▶ Train above the model', async () => {
      const uri = vscode.Uri.file(path.join(folder(), 'tiny.gatelab.yaml'));
      await vscode.window.showTextDocument(uri);
      const lenses = (await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', uri, 10)) ?? [];
      const titles = lenses.map((l) => l.command?.title);
      assert.ok(titles.includes('$(play) Train'), JSON.stringify(titles));
      assert.strictEqual(lenses[0].range.start.line, 0);
    });

    it('trains a tiny model to completion through the command', async () => {
      const file = path.join(folder(), 'tiny.gatelab.yaml');
      await vscode.commands.executeCommand(COMMANDS.train.id, { file, model: 'tiny' });
      const deadline = Date.now() + 90_000;
      let run = api.runs.latest(file, 'tiny');
      while (Date.now() < deadline && run?.status !== 'done' && run?.status !== 'failed') {
        await new Promise((r) => setTimeout(r, 500));
        run = api.runs.latest(file, 'tiny');
      }
      assert.strictEqual(run?.status, 'done', run?.error);
      assert.strictEqual(run?.summary?.steps, 40);
      assert.ok(fs.existsSync(path.join(run!.dir, 'model.safetensors')));
    });

    it('samples from the run in a child process and keeps the sample with the run', async () => {
      const run = api.runs.latest(path.join(folder(), 'tiny.gatelab.yaml'), 'tiny')!;
      const entry = await api.notebook.inferFor(run.id, { kind: 'sample', prefix: 'the time ', length: 30, temperature: 0.5 });
      assert.strictEqual(entry.kind, 'sample');
      assert.ok(entry.kind === 'sample' && entry.text.startsWith('the time '), JSON.stringify(entry));
      const kept = fs.readFileSync(path.join(run.dir, 'inference.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      assert.strictEqual(kept.at(-1).id, entry.id);
    });

    it('opens the Gatelab side panel', async () => {
      await vscode.commands.executeCommand('gatelab.notebook.focus');
    });
  });
}
