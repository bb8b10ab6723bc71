// The resolved form of one model in a model file (DESIGN §2), after validation and defaults.
// The JSON Schema in ./schema.ts describes the file format; this is what the engine consumes.

export type TaskKind = 'language-model' | 'classification' | 'forecast' | 'copy' | 'adding' | 'key-query' | 'change-point';

/** The tasks whose data is generated (no data.source). */
export const GENERATED_TASKS: readonly TaskKind[] = ['copy', 'adding', 'key-query', 'change-point'];

export interface DataConfig {
  /** path relative to the model file (already resolved to absolute by the loader), or `builtin:<name>` */
  source: string;
  /** every source (classification may list several files), resolved */
  sources: string[];
  /** the source as written in the file */
  sourceAsWritten: string;
  /** validation part: the end of the data, a seeded random sample of examples, or (numeric sequences) groups of a group table */
  split: 'tail' | 'random' | GroupSplit;
  /** classification: last real step or mean over real steps */
  pooling: 'last' | 'mean';
  tokens: 'char' | 'word';
  /**
   * none: the text as is.
   * letters: d2l's rule: per line, every run of non-letters becomes one space, strip, lower-case;
   *          lines are then joined without a separator.
   */
  preprocess: 'none' | 'letters';
  /** tokens seen fewer times become <unk> (0 keeps every token) */
  minFrequency: number;
  sequenceLength: number;
  /** fraction of the token stream held out at its end for validation, 0 ≤ v < 1 */
  validation: number;
  /** language models: at most this many held-out tokens are evaluated per evaluation */
  validationTokens: number;
  /** sequential: d2l's seq_data_iter_sequential; random: seq_data_iter_random */
  partition: 'sequential' | 'random';
  /** forecast: CSV column, input window, values predicted per window, season of the seasonal-naive baseline */
  column?: string;
  /** forecast: the input columns in order; numeric sequences: the feature columns (absent: all) */
  columns?: string[];
  /** forecast: the column to predict */
  target?: string;
  /** forecast: columns one-hot encoded (categories sorted) */
  categorical: string[];
  /** missing cells (empty or NA) of numeric data */
  missing: 'error' | 'previous' | 'zero' | 'drop';
  /** numeric sequences, one CSV per sequence: the path pattern with {id} (resolved against the model file's folder) */
  sequences?: string;
  /** numeric sequences: the label table (file resolved), its id and label columns (absent: the first and second) */
  labels?: { file: string; id?: string; label?: string };
  /** numeric sequences from one long CSV: the id column */
  idColumn?: string;
  /** numeric sequences: the id of the sequence the gate views show */
  probe?: string;
  /** numeric sequences: z-scoring of the features with the training sequences */
  scale: 'standard' | 'none';
  /** whether data.sequenceLength is written (numeric sequences default to the longest) */
  sequenceLengthGiven: boolean;
  /** classification from CSV files: the header names of the sentence and label columns */
  textColumn?: string;
  labelColumn?: string;
  window: number;
  horizon: number;
  transform: 'none' | 'log' | 'difference' | 'log-difference';
  /** copy task: symbols to remember */
  copyLength: number;
  /** key-query task: the number of values a key can store */
  values: number;
  /** change-point task: the probability of a jump of the mean at each step, and the noise's standard deviation */
  rate: number;
  noise: number;
  season?: number;
}

/** A validation split by a group table: the sequences of the `valid` groups are held out. */
export interface GroupSplit {
  /** resolved against the model file's folder */
  file: string;
  id?: string;
  group: string;
  valid: (string | number)[];
}

export interface LayerConfig {
  type: 'lstm' | 'gru' | 'rnn' | 'cell';
  /** cell layers: equation name → equation, in the order written */
  equations?: Record<string, string>;
  /** cell layers: the carried states (default [h]) */
  state?: string[];
  /** cell layers: constants for named parameters (`f.b` → 1) */
  init?: Record<string, number>;
  hidden: number;
  /** rnn layers: tanh (default) or relu */
  activation: 'tanh' | 'relu';
  /** initial forget-gate bias added to PyTorch's default init (0 = PyTorch default) */
  forgetBias: number;
  peepholes: boolean;
  coupledGates: boolean;
  gateActivation: 'sigmoid' | 'hard-sigmoid';
  /** hard sigmoid: max(0, min(1, slope·x + offset)) */
  hardSigmoidSlope: number;
  hardSigmoidOffset: number;
  /** clip gate pre-activations to [−cellClip, cellClip]; 0 = off */
  cellClip: number;
  bidirectional: boolean;
}

export interface ModelSection {
  /** 0 = one-hot input, else the embedding size */
  embedding: number;
  layers: LayerConfig[];
  /** dropout between stacked layers and before the output layer */
  dropout: number;
  init: { input: 'pytorch' | 'xavier' | 'normal'; recurrent: 'pytorch' | 'orthogonal' | 'xavier' | 'normal' };
}

export interface ScheduleConfig {
  type: 'constant' | 'step' | 'cosine';
  warmupSteps: number;
  stepSize: number;
  gamma: number;
  minLearningRate: number;
}

export interface OptimizerConfig {
  type: 'sgd' | 'momentum' | 'adam' | 'adamw';
  learningRate: number;
  momentum: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
}

export interface TrainConfig {
  /** exactly one of epochs / steps is set after defaults */
  epochs?: number;
  steps?: number;
  batchSize: number;
  optimizer: OptimizerConfig;
  /** global gradient-norm clipping threshold; 0 = off */
  clipNorm: number;
  seed: number;
  device: 'auto' | 'cuda' | 'cpu';
  /** carry (h, c) across sequential minibatches (truncated BPTT); reset each epoch */
  carryState: boolean;
  /** optimizer steps per session.run (K) */
  stepsPerRun: number;
  /** generated-data tasks (copy, adding): steps between evaluations (an "epoch" of such a task) */
  evaluateEvery: number;
  schedule: ScheduleConfig;
  earlyStopping?: { patience: number; minDelta: number };
}

export interface ModelConfig {
  name: string;
  task: TaskKind;
  data: DataConfig;
  model: ModelSection;
  train: TrainConfig;
  /** where the model was read from */
  file: string;
  /** 1-based line of the model document's first key (CodeLens anchor) */
  line: number;
  /** dotted key path → position of the key in the file (for errors raised after loading) */
  positions?: Record<string, { line: number; column: number }>;
  /** `gatelab sweep`: key path → the values to try */
  sweep?: Record<string, (number | string | boolean)[]>;
}
