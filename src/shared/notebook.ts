// The notebook side panel (the "Gatelab" view in the activity bar): every run is a cell, grouped by
// model file, with inference cells under finished runs. Messages between the extension host
// (src/host/notebook.ts) and the webview (webview/notebook/main.ts), named as in
// src/shared/dashboard.ts: webview→host commands (`cell/rerun`), requests with a `requestId` the
// reply carries back (`inference/run` → `inference/didFinish`), host→webview notifications in the
// past tense (`cells/didUpdate`). The webview sends `webview/ready` (again after a reload) and the
// host answers with a full snapshot. Also the inference jobs the host hands to the inference
// process (src/engine/runtime/inferworker.ts) and the entries kept in `inference.jsonl`. Plain JSON.

export type CellStatus = 'queued' | 'running' | 'done' | 'failed' | 'stopped';

/** One hyper-parameter that differs from the run a cell is compared with (values as YAML text). */
export interface HyperChange {
  /** dotted key path, list items by index: `model.layers.0.hidden` */
  key: string;
  /** undefined: not set there (and no default) */
  from?: string;
  to?: string;
}

export interface CellDiff {
  /** the run compared with */
  against: string;
  /** `previous run` or, for a model's first run, the previous run of the file (`vs timemachine-char`) */
  label: string;
  changes: HyperChange[];
}

export interface CellMetric {
  /** short label: `ppl`, `acc`, `rmse` */
  label: string;
  value: string;
  /** longer explanation for a tooltip */
  title?: string;
}

export interface CellProgress {
  step: number;
  totalSteps?: number;
  epoch?: number;
  epochs?: number;
  loss?: number;
  tokensPerSecond?: number;
  remainingMs?: number;
}

/** A key of the model document that the duplicate editor offers, with what the schema says of it. */
export interface EditableKey {
  key: string;
  /** the value in the run's model document (YAML text); undefined when not written there */
  value?: string;
  /** the schema's default, as YAML text */
  default?: string;
  type?: string;
  enum?: string[];
  minimum?: number;
  /** the minimum itself is not allowed (a learning rate > 0) */
  exclusiveMinimum?: boolean;
  maximum?: number;
  description?: string;
}

export interface NotebookCell {
  id: string;
  model: string;
  /** absolute path of the model file */
  modelFile: string;
  /** the model file as shown (relative to the workspace) */
  fileLabel: string;
  task?: string;
  status: CellStatus;
  /** ms since the epoch */
  started: number;
  finished?: number;
  durationMs?: number;
  device?: string;
  progress?: CellProgress;
  /** the sweep the run belongs to and its setting */
  sweep?: { name: string; setting: Record<string, unknown>; metric?: string; value?: number };
  /** the first read of a big data file, before training starts */
  reading?: { file: string; fraction: number; remainingMs?: number };
  /** the training loss, downsampled for a sparkline (min and max of each bucket kept) */
  loss: number[];
  metrics: CellMetric[];
  diff?: CellDiff;
  /** the newest generated sample or prediction */
  latest?: { kind: 'sample' | 'prediction'; text: string; step?: number };
  error?: string;
  /** a checkpoint exists: inference is possible */
  hasCheckpoint: boolean;
  /** stopped or failed with a checkpoint and its training state: "Resume" continues it */
  resumable?: boolean;
  inference: InferenceEntry[];
  /** classifiers of numeric sequences: the classify cell takes a sequence's CSV (its path, relative to the model file) */
  numericInput?: boolean;
  /** forecast models: window and horizon, for the forecast cell */
  forecast?: { window: number; horizon: number };
  /** keys the duplicate editor starts with (the changed ones first) */
  editable: EditableKey[];
}

/** A group of cells: one model file, its runs oldest first. */
/** The group a cell belongs to: its model file's, or its sweep's (a group of their own). */
export function cellGroupOf(c: Pick<NotebookCell, 'modelFile' | 'fileLabel' | 'sweep'>): { modelFile: string; fileLabel: string } {
  return c.sweep ? { modelFile: `${c.modelFile}\u0000sweep\u0000${c.sweep.name}`, fileLabel: `sweep ${c.sweep.name} · ${c.fileLabel}` } : { modelFile: c.modelFile, fileLabel: c.fileLabel };
}

export interface CellGroup {
  modelFile: string;
  fileLabel: string;
  cells: NotebookCell[];
}

// ---- inference ----------------------------------------------------------------------------------

export type InferenceRequest =
  | { kind: 'sample'; prefix: string; length: number; temperature: number }
  | { kind: 'classify'; text: string }
  /** forecast `steps` values from the window of the series that ends before index `at` */
  | { kind: 'forecast'; at: number; steps: number };

interface EntryBase {
  id: string;
  /** when it ran, ms since the epoch */
  time: number;
  /** how long it took */
  ms: number;
}

export type InferenceEntry =
  | (EntryBase & { kind: 'sample'; prefix: string; length: number; temperature: number; text: string })
  | (EntryBase & { kind: 'classify'; text: string; label: string; probabilities: { label: string; p: number }[] })
  | (EntryBase & {
      kind: 'forecast';
      at: number;
      steps: number;
      /** index of history[0] in the series */
      from: number;
      /** the values before `at` shown for context (the model's input window and some before) */
      history: number[];
      forecast: number[];
      /** the series' values at the forecast positions (null past the end of the series) */
      actual: (number | null)[];
      /** over the positions where the actual value is known */
      rmse?: number;
    });

/** What the inference process is asked to do (the host resolves the run's files). */
export interface InferenceJob {
  /** the run's model document as trained (the snapshot's text) */
  modelText: string;
  /** the model file the run was trained from: relative data paths resolve against its folder */
  modelFile: string;
  modelName: string;
  /** the run's checkpoint */
  init: string;
  request: InferenceRequest;
  seed?: number;
}

export type InferenceResult =
  | { kind: 'sample'; text: string }
  | { kind: 'classify'; label: string; probabilities: { label: string; p: number }[] }
  | { kind: 'forecast'; forecast: number[] };

export type ToInference = { type: 'infer'; job: InferenceJob };
export type FromInference = { type: 'result'; result: InferenceResult } | { type: 'error'; kind: 'user' | 'runtime'; message: string };

// ---- messages -----------------------------------------------------------------------------------

export type DuplicateMode = 'new-model' | 'in-place';

export type NotebookToHost =
  | { type: 'webview/ready' }
  | { type: 'cell/openDashboard'; runId: string }
  | { type: 'cell/rerun'; runId: string }
  /** continue a stopped or failed run where it stopped */
  | { type: 'cell/resume'; runId: string }
  | { type: 'cell/stop'; runId: string }
  /** the host asks for a confirmation, then removes the run folder */
  | { type: 'cell/delete'; runId: string }
  | { type: 'cell/revealSource'; runId: string }
  /** one dashboard with the loss of the others overlaid */
  | { type: 'cells/compare'; runIds: string[] }
  /** check edited hyper-parameters (key → YAML value text) against the schema */
  | { type: 'edit/validate'; runId: string; requestId: number; changes: Record<string, string> }
  /** train a copy of the run's model with these changes (a new model document, or the model edited) */
  | { type: 'edit/duplicate'; runId: string; requestId: number; changes: Record<string, string>; mode: DuplicateMode }
  | { type: 'inference/run'; runId: string; requestId: number; request: InferenceRequest }
  | { type: 'inference/delete'; runId: string; entryId: string }
  /** the series of a forecast run, to choose a window */
  | { type: 'series/get'; runId: string };

export interface EditProblem {
  /** the changed key it is about, or '' for the model as a whole */
  key: string;
  message: string;
}

export type HostToNotebook =
  | { type: 'cells/didSnapshot'; groups: CellGroup[]; schemaKeys: EditableKey[] }
  /** a new or changed run */
  | { type: 'cells/didUpdate'; cell: NotebookCell }
  | { type: 'cells/didRemove'; runId: string }
  | { type: 'edit/didValidate'; runId: string; requestId: number; problems: EditProblem[] }
  /** the copy was written and its run started (newModel: the new document's name) */
  | { type: 'edit/didDuplicate'; runId: string; requestId: number; newRunId?: string; newModel?: string }
  | { type: 'inference/didStart'; runId: string; requestId: number }
  | { type: 'inference/didFinish'; runId: string; requestId: number; entry: InferenceEntry }
  | { type: 'inference/didFail'; runId: string; requestId: number; message: string }
  | { type: 'series/didLoad'; runId: string; values: number[]; validStart: number; error?: string }
  /** bring a cell into view and focus it (after a duplicate started its run) */
  | { type: 'view/reveal'; runId: string };
