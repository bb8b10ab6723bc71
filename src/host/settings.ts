// Gatelab's settings (contributes.configuration), read through one typed accessor. The keys are
// checked against package.json by test/unit/manifest.test.ts.

import type * as vscode from 'vscode';

export interface Settings {
  /** execution provider for new runs */
  device: 'auto' | 'cpu' | 'cuda';
  /** intra-op threads of the trainer (0 = onnxruntime's default) */
  threads: number;
  /** runs folder, or several (new runs go to the first, all are read and watched); empty = `.gatelab/runs` beside each model file (as the CLI) */
  runsFolder: string | string[];
  /** folder with libonnxruntime_providers_cuda.so / _shared.so (empty = onnxruntime-node's own) */
  cudaProviderPath: string;
  /** seconds between checkpoints during a run */
  checkpointInterval: number;
  /** the most the token cache beside each model file may hold, in GiB (0 = no cache) */
  tokenCacheGB: number;
  /** several runs at once: queue them or run them in parallel */
  concurrentRuns: 'queue' | 'parallel';
  /** Output channel verbosity */
  logLevel: 'error' | 'warn' | 'info' | 'debug';
}

export const SETTING_DEFAULTS: Settings = {
  device: 'auto',
  threads: 0,
  runsFolder: '',
  cudaProviderPath: '',
  checkpointInterval: 60,
  tokenCacheGB: 8,
  concurrentRuns: 'queue',
  logLevel: 'info',
};

export function readSettings(config: Pick<vscode.WorkspaceConfiguration, 'get'>): Settings {
  const out = { ...SETTING_DEFAULTS } as Record<string, unknown>;
  for (const k of Object.keys(SETTING_DEFAULTS)) {
    const v = config.get(k);
    if (v !== undefined && v !== null) out[k] = v;
  }
  return out as unknown as Settings;
}
