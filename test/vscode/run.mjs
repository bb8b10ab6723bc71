// The @vscode/test-electron tier: runs test/vscode/suite.ts inside a real VS Code desktop. It needs
// a VS Code executable (VSCODE_EXECUTABLE_PATH), because this machine cannot download Electron; without
// one it says so and exits 0 (the code-server tier in test/e2e covers the real editor here).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const exe = process.env.VSCODE_EXECUTABLE_PATH;
if (!exe) {
  console.log('vscode-test: skipped — set VSCODE_EXECUTABLE_PATH to a VS Code executable to run the @vscode/test-electron suite (Electron cannot be downloaded here)');
  process.exit(0);
}
if (!fs.existsSync(exe)) {
  console.error(`vscode-test: VSCODE_EXECUTABLE_PATH=${exe} does not exist`);
  process.exit(1);
}
await esbuild.build({
  entryPoints: [path.join(root, 'test/vscode/index.ts')],
  outfile: path.join(root, 'dist/test/vscode/index.js'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['vscode', 'mocha'],
  logLevel: 'warning',
});
const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-vscode-test-'));
fs.mkdirSync(path.join(workspace, 'data'));
fs.copyFileSync(path.join(root, 'examples/data/timemachine.txt'), path.join(workspace, 'data/timemachine.txt'));
fs.writeFileSync(
  path.join(workspace, 'tiny.gatelab.yaml'),
  'name: tiny\ndata: { source: data/timemachine.txt, preprocess: letters, sequenceLength: 10 }\nmodel: { layers: [{ hidden: 16 }] }\ntrain: { steps: 40, batchSize: 8, device: cpu }\n',
);
const { runTests } = await import('@vscode/test-electron');
await runTests({
  vscodeExecutablePath: exe,
  extensionDevelopmentPath: root,
  extensionTestsPath: path.join(root, 'dist/test/vscode/index.js'),
  launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust'],
});
void execFileSync;
