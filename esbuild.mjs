// One esbuild context per bundle (STYLE 12): the CLI, the trainer worker and the extension host
// (node, cjs, onnxruntime-node and vscode external), and each webview (browser, iife, with its CSS).
// Type-checking is separate (`npm run typecheck`). Flags: --production, --watch.
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

const common = { bundle: true, sourcemap: !production, minify: production, logLevel: 'warning' };
const node = { ...common, platform: 'node', format: 'cjs', target: 'node20', external: ['onnxruntime-node', 'vscode'] };
const web = { ...common, platform: 'browser', format: 'iife', target: 'es2022' };

const bundles = [
  { ...node, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } },
  { ...node, entryPoints: ['src/engine/runtime/worker.ts'], outfile: 'dist/worker.js' },
  { ...node, entryPoints: ['src/extension.ts'], outfile: 'dist/extension.js' },
  { ...node, entryPoints: ['src/engine/runtime/inferworker.ts'], outfile: 'dist/infer.js' },
  { ...web, entryPoints: ['webview/dashboard/main.ts'], outfile: 'dist/webview/dashboard.js' },
  { ...web, entryPoints: ['webview/dashboard/style.css'], outfile: 'dist/webview/dashboard.css' },
  { ...web, entryPoints: ['webview/notebook/main.ts'], outfile: 'dist/webview/notebook.js' },
  { ...web, entryPoints: ['webview/notebook/style.css'], outfile: 'dist/webview/notebook.css' },
];

const contexts = await Promise.all(bundles.map((b) => esbuild.context(b)));
if (watch) {
  await Promise.all(contexts.map((c) => c.watch()));
} else {
  await Promise.all(contexts.map((c) => c.rebuild()));
  await Promise.all(contexts.map((c) => c.dispose()));
}
