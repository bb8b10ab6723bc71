// Every command Gatelab contributes, in one typed table (id, title, whether it shows in the
// Command Palette) with the argument types of each. package.json's `contributes.commands` and
// `menus.commandPalette` are checked against this table by test/unit/manifest.test.ts.

export const CATEGORY = 'Gatelab';

export const COMMANDS = {
  train: { id: 'gatelab.train', title: 'Train Model', palette: true, icon: '$(play)' },
  stop: { id: 'gatelab.stop', title: 'Stop Training', palette: true, icon: '$(debug-stop)' },
  sweep: { id: 'gatelab.sweep', title: 'Run Sweep', palette: true, icon: '$(beaker)' },
  resume: { id: 'gatelab.resume', title: 'Resume Training', palette: true, icon: '$(debug-continue)' },
  sample: { id: 'gatelab.sample', title: 'Sample from Model', palette: true, icon: '$(comment-discussion)' },
  predict: { id: 'gatelab.predict', title: 'Predict with Model', palette: true, icon: '$(symbol-event)' },
  exportOnnx: { id: 'gatelab.exportOnnx', title: 'Export ONNX', palette: true, icon: '$(export)' },
  exportPytorch: { id: 'gatelab.exportPytorch', title: 'Export as PyTorch Job', palette: true, icon: '$(server-process)' },
  newModel: { id: 'gatelab.newModel', title: 'New Model from Template', palette: true, icon: '$(new-file)' },
  openDashboard: { id: 'gatelab.openDashboard', title: 'Open Dashboard', palette: true, icon: '$(graph-line)' },
  showRuns: { id: 'gatelab.showRuns', title: 'Show Runs', palette: true, icon: '$(history)' },
  selectDevice: { id: 'gatelab.selectDevice', title: 'Select Device', palette: true, icon: '$(chip)' },
  doctor: { id: 'gatelab.doctor', title: 'Run Doctor', palette: true, icon: '$(pulse)' },
  setUpCuda: { id: 'gatelab.setUpCuda', title: 'Set Up CUDA', palette: true, icon: '$(cloud-download)' },
  openRunFolder: { id: 'gatelab.openRunFolder', title: 'Open Run Folder', palette: true, icon: '$(folder-opened)' },
  showOutput: { id: 'gatelab.showOutput', title: 'Show Log', palette: true, icon: '$(output)' },
  // CodeLens only: the last run's result line; clicking it shows that run
  lensRunResult: { id: 'gatelab.lens.runResult', title: 'Show Last Run', palette: false, icon: '$(info)' },
} as const;

export type CommandKey = keyof typeof COMMANDS;
export type CommandId = (typeof COMMANDS)[CommandKey]['id'];

/** Where a command was invoked for: a model in a file (CodeLens, editor), or nothing (palette). */
export interface ModelRef {
  /** file system path of the model file */
  file: string;
  /** model name within the file */
  model?: string;
}

/** Argument types per command (all optional: from the palette they are absent). */
export interface CommandArgs {
  'gatelab.train': [ref?: ModelRef];
  'gatelab.stop': [ref?: ModelRef | { runId: string }];
  'gatelab.sweep': [ref?: ModelRef];
  'gatelab.resume': [ref?: ModelRef | { runId: string }];
  'gatelab.sample': [ref?: ModelRef];
  'gatelab.predict': [ref?: ModelRef];
  'gatelab.exportOnnx': [ref?: ModelRef];
  'gatelab.exportPytorch': [ref?: ModelRef];
  'gatelab.newModel': [template?: string];
  'gatelab.openDashboard': [ref?: ModelRef | { runId: string }];
  'gatelab.showRuns': [];
  'gatelab.selectDevice': [];
  'gatelab.doctor': [];
  'gatelab.setUpCuda': [];
  'gatelab.openRunFolder': [ref?: ModelRef | { runId: string }];
  'gatelab.showOutput': [];
  'gatelab.lens.runResult': [runId: string];
}
