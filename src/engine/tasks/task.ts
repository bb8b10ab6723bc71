// A task plug-in: what one kind of model (language model, classifier, forecaster, copy, adding, …)
// owns, and nothing else. The one training loop (../train/loop.ts) gives every task the same
// guarantees: device choice and calibration, sessions, K-step chunks, the non-finite check on the
// loss and the gradient norm, progress at a bounded rate, periodic / best / last-good checkpoints,
// evaluation, early stopping, stop requests, resume and the run record.
//
// A task (registered in ./registry.ts) has:
//   check(cfg)        what this task cannot train, as an error at the key (beyond the common checks)
//   generated         true when its data is drawn afresh every step (copy, adding): an "epoch" is
//                     then train.evaluateEvery steps, and evaluation follows it
//   setup(ctx)        reads and validates its data (vocabulary, classes, normalisation, generated
//                     data), builds its K-step training program (buildStepsProgram) and returns a TaskRun
//   grad(...)         `gatelab grad`: DESIGN §3's batch layout for this task → a float64 gradient program and its feeds
//   predict(...)      `gatelab predict` (classification, forecast)
//   sweepMetric       the summary key `gatelab sweep` compares settings by (validLoss, accuracy, rmse, …)
//
// A TaskRun (one per training run) holds the program and parameters, the minibatches of an epoch as
// feeds of K-step chunks, the evaluation (validation loss + the task's metrics and baselines), the
// checkpoint metadata, the gate probe input and optional hooks after each evaluation and at the end
// (a language model's samples). Adding a task is one file and one line in the registry.

import type * as ort from 'onnxruntime-node';
import type { ModelConfig, TaskKind } from '../config/types';
import type { ParamInfo } from '../nn/lm';
import type { Rng } from '../util/rng';
import type { CorpusIO } from '../data/text';
import type { Checkpoint, FloatData } from '../train/checkpoint';
import type { CarriedInput, Program } from '../train/program';
import type { DeviceChoice } from '../runtime/device';
import type { GatesMessage, SampleMessage, TrainJob } from '../../shared/protocol';

export type Feeds = Record<string, ort.Tensor>;
export type Params = Map<string, { shape: number[]; data: FloatData }>;
export type Log = (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void;

export interface TaskContext {
  cfg: ModelConfig;
  job: TrainJob;
  /** the weights the run starts from (--init, or the checkpoint of a resumed run) */
  init?: { ck: Checkpoint; file: string };
  /** the loop's data generator: a task that draws from it while setting up (a random split) does so here */
  rng: Rng;
  log: Log;
  /** reading a big data file: progress (sent on by the loop at a bounded rate), a stop asked for, the token cache */
  io: CorpusIO;
  /** an inference session of `model` on the run's device, created on first use and released by the loop */
  session(key: string, model: () => Uint8Array): Promise<ort.InferenceSession>;
}

/** A validation pass: the loss that best weights and early stopping follow (lower is better), and the task's metrics. */
export interface Scores {
  loss: number;
  /** in the epoch message, the metrics line and the summary (accuracy, rmse, confusion, …) */
  metrics: Record<string, unknown>;
  /** in the summary only (a confusion matrix and its classes) */
  summary?: Record<string, unknown>;
}

/** The minibatches of one epoch (or of one evaluation period of generated data). */
export interface EpochPlan {
  steps: number;
  /** feeds of steps i … i+k−1 of this epoch: the task's per-step inputs [k, ...] (not p.*, s.*, lr, dropout or carried state) */
  chunk(i: number, k: number): Feeds;
}

/** What a hook after an evaluation or at the end of a run may use. */
export interface RunView {
  step: number;
  /** the current weights (tensors of the parameters, by name) */
  params(): Params;
  device: DeviceChoice;
  emitSample(m: Omit<SampleMessage, 'type'>, temperature: number): void;
}

export interface GateSource {
  run(params: Feeds, step: number): Promise<GatesMessage>;
  /** a probe text typed in the dashboard (language models; absent when the probe is a fixed example) */
  setText?(text: string): void;
  release(): Promise<void>;
}

export interface TaskRun {
  /** the K-step training program (its params are the model's, in order) */
  program: Program;
  /** recurrent state carried between minibatches (language models), zero at the start of a run */
  carried?: CarriedInput[];
  /** dropout masks the loop draws per step from its seeded generator (none when p is 0) */
  dropout?: { p: number; shapes: { name: string; shape: number[] }[] };
  stepsPerEpoch: number;
  /** for the `started` message */
  started: { vocabulary?: number; tokensPerStep: number; trainTokens: number; validTokens: number };
  /** a line for the log once the data is read */
  describe?: string;
  epoch(rng: Rng): EpochPlan;
  /** undefined when there is nothing to validate on */
  evaluate(params: Feeds): Promise<Scores | undefined>;
  /** fields the training loss implies: in the epoch message and in the summary (a language model's perplexity) */
  trainMetrics?(trainLoss: number): { epoch: Record<string, number>; summary: Record<string, number> };
  /** constants beside the metrics (baselines), in every epoch's metrics line and in the summary */
  baselines?: Record<string, number>;
  metadata(step: number): Record<string, string>;
  probe?: GateSource;
  /** after each evaluation while the run goes on (a language model's periodic samples) */
  afterEvaluation?(run: RunView, last: boolean): Promise<void>;
  /** at the end of a run that took at least one step: summary fields (the final sample) */
  finish?(run: RunView): Promise<Record<string, unknown>>;
  release?(): Promise<void>;
}

/** What `gatelab grad` runs: a float64 program with outputs `loss` and `d.<param>`, and its feeds other than p.*. */
/** `gatelab probe --input`: the example's steps, its connectivity and gradient flow, its gates. */
export interface ThroughResult {
  tokens: string[];
  connectivity: number[][];
  gradientFlow: { layer: number; h: number[]; c?: number[] }[];
  layers: GatesMessage['layers'];
}

export interface GradPlan {
  params: ParamInfo[];
  program: Program;
  feeds: Feeds;
  /** "BxT" for the output's metadata */
  shape: string;
}

export interface PredictRequest {
  cfg: ModelConfig;
  init: string;
  /** `--input`: the task says what it is (a sentence, a CSV file) */
  input: string;
  steps?: number;
}

export interface Task {
  /** the summary key `gatelab sweep` compares settings by (lower is better for losses and errors, higher for accuracy) */
  sweepMetric: 'validLoss' | 'accuracy' | 'rmse' | 'mse';
  kind: TaskKind;
  generated?: boolean;
  check?(cfg: ModelConfig): void;
  setup(ctx: TaskContext): Promise<TaskRun>;
  grad(cfg: ModelConfig, ck: Checkpoint, ckFile: string, batchFile: string): GradPlan;
  /** the JSON object `gatelab predict` prints */
  predict?(req: PredictRequest): Promise<Record<string, unknown>>;
  /**
   * `gatelab probe` with `--input` (as `predict` takes it): the gradient of the prediction's loss (the
   * predicted class, the first forecast value) back through time: one connectivity row, the flow per layer
   */
  through?(req: PredictRequest): Promise<ThroughResult>;
}
