// One esbuild context per bundle: the CLI and the trainer worker (node, cjs, onnxruntime-node
// external). Type-checking is separate (`npm run typecheck`). Flags: --production, --watch.
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

const node = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: !production,
  minify: production,
  external: ['onnxruntime-node', 'vscode'],
  logLevel: 'warning',
};

const bundles = [
  { ...node, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } },
  { ...node, entryPoints: ['src/engine/runtime/worker.ts'], outfile: 'dist/worker.js' },
];

const contexts = await Promise.all(bundles.map((b) => esbuild.context(b)));
if (watch) {
  await Promise.all(contexts.map((c) => c.watch()));
} else {
  await Promise.all(contexts.map((c) => c.rebuild()));
  await Promise.all(contexts.map((c) => c.dispose()));
}
