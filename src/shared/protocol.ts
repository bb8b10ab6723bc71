// Messages between a trainer process (src/engine/runtime/worker.ts) and its parent (the CLI or the
// extension host). Plain JSON-serialisable objects only, no classes, no Node types: the host
// forwards some of them to webviews unchanged.
//
// Life of a run: parent forks the worker → sends `train` → worker answers (after `reading` messages
// while a big data file is read) `started`, then any
// number of `progress` / `epoch` / `sample` / `gates` / `checkpoint` / `log`, and finally exactly one
// of `done` or `error`, then exits. The parent may send `stop` at any time: the worker finishes the
// K-step program it is running, saves a checkpoint and answers `done` with `stopped: true`.

/** Where a user-fixable problem is (mirrors the engine's `Where`). */
export interface ProblemWhere {
  file?: string;
  line?: number;
  column?: number;
  key?: string;
}

export interface TrainJob {
  /** absolute path of the model file */
  modelFile: string;
  /** model name within the file (first model when absent) */
  modelName?: string;
  /** overrides of the model file's train section */
  steps?: number;
  epochs?: number;
  device?: 'auto' | 'cpu' | 'cuda';
  /** start from these weights (safetensors, PyTorch names) */
  init?: string;
  /** final checkpoint (also written periodically and on stop) */
  save?: string;
  /** append one JSON line per step and per epoch */
  metrics?: string;
  /** seconds between periodic checkpoints (default 60; 0 = only at the end) */
  checkpointEvery?: number;
  /** intra-op threads (default: onnxruntime's choice) */
  threads?: number;
  /** generate a sample after training (language models; default true) */
  sampleAtEnd?: boolean;
  /** progress messages at most this often, in ms (default 250) */
  progressEveryMs?: number;
  /** gate snapshots at most this often, in ms (default 3000; 0 = never) */
  gatesEveryMs?: number;
  /** probe text for the gate views (default: the start of the validation text) */
  probe?: string;
  /** the model document to train instead of the file's (a sweep's variant); relative paths against modelFile's folder */
  modelText?: string;
  /** the sweep this run belongs to and its setting (recorded in run.json) */
  sweep?: { name: string; setting: Record<string, unknown>; metric?: string };
  /** keep the ids of a big corpus in .gatelab/cache beside the model file for the next run (default true) */
  cache?: boolean;
  /** the most the token cache may hold, in bytes (default 8 GiB; the entries used longest ago go first) */
  cacheMaxBytes?: number;
  /**
   * continue this run folder where it stopped: its model snapshot, checkpoint and training state
   * (steps/epochs/device above, when given, replace the run's own)
   */
  resume?: string;
}

/** A one-shot job: the gates of a checkpoint for a probe text (finished runs). */
export interface GatesJob {
  modelFile: string;
  modelName?: string;
  /** the model document the run trained (its snapshot); relative paths against modelFile's folder */
  modelText?: string;
  init: string;
  probe?: string;
  /** the input of a classifier, forecaster or generated task, as `gatelab probe --input` takes it */
  input?: string;
}

export type ToWorker =
  | { type: 'train'; job: TrainJob }
  | { type: 'gates'; job: GatesJob }
  /** a language model's gradients through time for the job's probe text (answered by a `through` message) */
  | { type: 'through'; job: GatesJob }
  | { type: 'stop' }
  /** a new probe text for the gate views of the running job */
  | { type: 'probe'; text: string };

export interface StartedMessage {
  type: 'started';
  model: string;
  task: string;
  device: 'cpu' | 'cuda';
  /** why `auto` did not pick CUDA */
  deviceReason?: string;
  parameters: number;
  vocabulary?: number;
  /** total optimizer steps of this run */
  totalSteps: number;
  stepsPerEpoch: number;
  epochs: number;
  /** tokens (or examples) consumed per optimizer step */
  tokensPerStep: number;
  /** optimizer steps per session.run */
  stepsPerRun: number;
  trainTokens: number;
  validTokens: number;
  /** the summary key a sweep compares this task's runs by */
  sweepMetric?: string;
}

export interface ProgressMessage {
  type: 'progress';
  /** step number of the last entry of `losses` (1-based, cumulative over the run) */
  step: number;
  epoch: number;
  /** losses of the steps since the previous progress message, in order */
  losses: number[];
  gradNorms: number[];
  learningRate: number;
  tokensPerSecond: number;
  elapsedMs: number;
  /** estimated ms until the end of the run */
  remainingMs: number;
}

export interface EpochMessage {
  type: 'epoch';
  epoch: number;
  step: number;
  trainLoss: number;
  trainPerplexity?: number;
  validLoss?: number;
  validPerplexity?: number;
  /** the task's validation metrics: accuracy (classification, copy), rmse, mae and the persistence baseline's rmse (forecast, original units) */
  accuracy?: number;
  rmse?: number;
  mae?: number;
  baselineRmse?: number;
  elapsedMs: number;
}

export interface SampleMessage {
  type: 'sample';
  step: number;
  prefix: string;
  text: string;
}

/**
 * The maps of a layer. LSTM: sigmoid gates i, f, o, candidate g, cell c, hidden h. GRU: sigmoid
 * gates r (reset) and z (update), candidate n, hidden h.
 */
export type BuiltinGateName = 'i' | 'f' | 'o' | 'g' | 'c' | 'h' | 'r' | 'z' | 'n';
/** A map's name: a built-in cell's, or an equation's of a `type: cell` layer (named as in the model file). */
export type GateName = string;
/** The sigmoid gates, whose saturation is reported (an equation cell: its equations whose outermost function is a sigmoid). */
export type SigmoidGateName = string;

/** One layer's insides for the probe: values laid out [T][units] (row-major, flattened). */
export interface GateLayer {
  layer: number;
  direction: 'forward' | 'reverse';
  units: number;
  /** the layer's cell (absent: lstm) */
  cell?: 'lstm' | 'gru' | 'rnn' | 'cell';
  /** the sigmoid gates among `gates` (absent: those with saturation) */
  sigmoid?: SigmoidGateName[];
  /** per map: the range its histogram bins cover (absent: the built-in cells' ranges) */
  ranges?: Record<GateName, [number, number]>;
  /** an equation cell's equations as written in the model file, by name (the heatmaps' captions) */
  formulas?: Record<GateName, string>;
  /** the maps this layer has, in display order (absent: the LSTM's i, f, o, g, c, h) */
  gates?: GateName[];
  /** per map of `gates` */
  values: Partial<Record<GateName, number[]>>;
  /** per unit: fraction of steps below 0.1 (low) and above 0.9 (high), for the sigmoid gates (LSTM i, f, o; GRU r, z) */
  saturation: Partial<Record<SigmoidGateName, { low: number[]; high: number[] }>>;
  /** counts in 20 equal bins: sigmoid gates over [0, 1]; g, n, h over [−1, 1]; c over [−3, 3] */
  histograms: Partial<Record<GateName, number[]>>;
}

/** The gates for a probe input at one step of training (sent at a bounded rate). */
export interface GatesMessage {
  type: 'gates';
  step: number;
  /** the probe's tokens, as text */
  tokens: string[];
  layers: GateLayer[];
  /** per position: the five likeliest next tokens (language models; empty otherwise) */
  top: { token: string; p: number }[][];
  /** false when the probe is a fixed example (classification, forecast, adding, copy) */
  editable?: boolean;
  /** numeric inputs: the input channels per step, drawn as small lines above the heatmaps instead of the tokens; values [T][names] row-major */
  signals?: { names: string[]; values: number[] };
}

export interface CheckpointMessage {
  type: 'checkpoint';
  step: number;
  file: string;
}

/** A language model's gradients through time for a probe text (`gatelab probe`, the dashboard). */
export interface ThroughMessage {
  type: 'through';
  tokens: string[];
  /** connectivity[t][s] = ‖∂ℓ_t/∂x_s‖₂ (0 for s > t), t < T − 1 */
  connectivity: number[][];
  /** per layer, for the last prediction with a target: ‖∂ℓ/∂h_s‖₂ and (LSTM) ‖∂ℓ/∂c_s‖₂ for every s */
  gradientFlow: { layer: number; h: number[]; c?: number[] }[];
  /** the layers' cells, bottom first */
  cells: ('lstm' | 'gru' | 'rnn' | 'cell')[];
}

/** Reading a big data file before training (a corpus is read twice: counting, then encoding). */
export interface ReadingMessage {
  type: 'reading';
  file: string;
  /** bytes read in this pass, of size */
  bytes: number;
  size: number;
  pass: number;
  passes: number;
  /** the whole read: done in [0, 1], and the time it still needs (from the rate so far) */
  fraction: number;
  elapsedMs: number;
  remainingMs: number;
}

export interface LogMessage {
  type: 'log';
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
}

/** The run's result; the CLI prints it as its one JSON line. */
export interface Summary {
  model: string;
  device: 'cpu' | 'cuda';
  steps: number;
  epochs: number;
  trainLoss: number;
  validLoss: number | null;
  perplexity?: number;
  validPerplexity?: number;
  accuracy?: number;
  /** classification: rows = true class, columns = predicted, in the order of `classes` */
  confusion?: number[][];
  classes?: string[];
  /** adding task: validation mean squared error, and that of always answering 1.0 */
  mse?: number;
  baselineMse?: number;
  /** copy task: the memoryless baseline's cross-entropy, S·ln 8 / (D + 2S) */
  baselineLoss?: number;
  /** key-query task: the accuracy of guessing the value at the query, 1 / values */
  chanceAccuracy?: number;
  /** change-point task: the MSE of the mean of every value so far, and of the last value */
  runningMeanMse?: number;
  lastValueMse?: number;
  /** forecasts, in the series' units, on the validation part */
  rmse?: number;
  mae?: number;
  /** persistence (the last seen value) on the same targets */
  baselineRmse?: number;
  /** seasonal naive (the value one season earlier), with data.season */
  seasonalBaselineRmse?: number;
  tokensPerSecond: number;
  elapsedSeconds: number;
  checkpoint?: string;
  sample?: string;
  stopped?: boolean;
  /** early stopping ended the run; the weights are those of bestEpoch */
  stoppedEarly?: boolean;
  /** the epoch with the lowest validation loss */
  bestEpoch?: number;
  bestStep?: number;
}

export interface DoneMessage {
  type: 'done';
  summary: Summary;
}

export interface ErrorMessage {
  type: 'error';
  /** user: the model file, arguments or data are wrong (exit 2); runtime: anything else (exit 1) */
  kind: 'user' | 'runtime';
  message: string;
  where?: ProblemWhere;
  hint?: string;
  /** the step at which training failed, if it had started */
  step?: number;
  /** the last good checkpoint, if one was kept */
  checkpoint?: string;
  stack?: string;
}

export type FromWorker =
  | StartedMessage
  | ProgressMessage
  | EpochMessage
  | SampleMessage
  | CheckpointMessage
  | GatesMessage
  | LogMessage
  | ReadingMessage
  | ThroughMessage
  | DoneMessage
  | ErrorMessage;

export function isFromWorker(m: unknown): m is FromWorker {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}
