// The training state saved beside each checkpoint of a run (`train-state.safetensors`), so that
// `gatelab train --resume RUN_DIR` continues exactly where the run stopped: the optimizer state
// (momentum buffers, Adam's moments and step count), the recurrent state a language model carries
// between minibatches, the position in the data (epoch, step within it, the data and dropout
// generators), the schedule position (the step), and what evaluation and early stopping have seen.
// model.safetensors keeps exactly the model's parameters, so it still loads into PyTorch with
// load_state_dict. Written atomically; both files name their step, and resume refuses a pair whose
// steps differ.

import * as path from 'node:path';
import { UserError } from '../errors';
import { readSafetensors, StTensor, writeSafetensors } from '../util/safetensors';
import type { Scores } from '../tasks/task';

import { RUN_FILES } from './runrecord';

export const STATE_FILE = RUN_FILES.state;
const KEY = 'gatelab.state';

export interface Position {
  /** optimizer steps done */
  step: number;
  /** the epoch (1-based) these steps are in, and how many of its steps are done */
  epoch: number;
  stepInEpoch: number;
  /** the epoch ended (and was evaluated): resume starts the next one */
  epochComplete: boolean;
  /** the data generator at the start of the epoch, and now */
  rngEpoch: number[];
  rng: number[];
  dropRng: number[];
  /** losses of the epoch's steps so far */
  epochLosses: number[];
}

export interface TrainState extends Position {
  version: 1;
  totalSteps: number;
  lastTrainLoss: number | null;
  lastScores: Scores | null;
  /** the best evaluation so far (its weights are best.safetensors) */
  best: { loss: number; epoch: number; step: number; scores: Scores } | null;
  /** evaluations without improvement (early stopping) */
  waited: number;
  trainMs: number;
  /** tensors: `s.<optimizer state>` and the carried recurrent state by its input name */
}

export interface SavedState {
  state: TrainState;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

export function stateFile(runDir: string): string {
  return path.join(runDir, STATE_FILE);
}

export function saveState(file: string, state: TrainState, tensors: Map<string, { shape: number[]; data: Float32Array }>): void {
  const out: Record<string, StTensor> = {};
  for (const [name, t] of tensors) out[name] = { dtype: 'F32', shape: t.shape, data: t.data };
  writeSafetensors(file, out, { [KEY]: JSON.stringify(state) });
}

export function loadState(file: string): SavedState {
  let raw: ReturnType<typeof readSafetensors>;
  try {
    raw = readSafetensors(file);
  } catch (e) {
    throw new UserError(`cannot read the training state ${file}: ${(e as Error).message}`, { file, key: '--resume' }, 'resume a run that saved a checkpoint with this version of Gatelab');
  }
  let state: TrainState;
  try {
    state = JSON.parse(raw.metadata[KEY] ?? '') as TrainState;
  } catch {
    throw new UserError(`the training state ${file} has no "${KEY}" metadata`, { file, key: KEY }, 'resume a run that saved a checkpoint with this version of Gatelab');
  }
  if (state?.version !== 1) throw new UserError(`the training state ${file} has version ${state?.version}; this Gatelab reads version 1`, { file, key: KEY });
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of Object.entries(raw.tensors)) tensors.set(name, { shape: t.shape, data: t.data as Float32Array });
  return { state, tensors };
}
