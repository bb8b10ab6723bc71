// Messages between the extension host and a dashboard webview (one panel per run). Three kinds, by
// direction and tense: webview→host commands (`training/stop`), host→webview notifications in the
// past tense (`run/didStep`), and the handshake: the webview sends `webview/ready` (again after a
// reload) and the host answers with a full snapshot, then streams deltas. Plain JSON only.

export interface RunHeader {
  id: string;
  model: string;
  modelFile: string;
  status: 'queued' | 'running' | 'done' | 'failed' | 'stopped';
  device?: string;
  totalSteps?: number;
  epochs?: number;
  stepsPerEpoch?: number;
  parameters?: number;
  error?: string;
}

/** Columnar series (smaller to post and to chart than arrays of objects). */
export interface StepSeries {
  step: number[];
  loss: number[];
  gradNorm: number[];
  lr: number[];
  /** seconds since the run started */
  time: number[];
}

export interface EpochRow {
  epoch: number;
  step: number;
  trainLoss: number;
  validLoss?: number;
  trainPerplexity?: number;
  validPerplexity?: number;
  /** validation metrics by task (see EpochMessage) */
  accuracy?: number;
  rmse?: number;
  mae?: number;
  baselineRmse?: number;
}

import type { GateLayer, GatesMessage, ThroughMessage } from './protocol';

/** One gate snapshot's summary (histograms and saturation per layer), for views over training. */
export interface GateHistoryRow {
  step: number;
  /** per layer and direction, as the snapshot's layers (direction absent: forward) */
  layers: (Pick<GateLayer, 'layer' | 'histograms' | 'saturation'> & { direction?: GateLayer['direction'] })[];
}

export type HostToDashboard =
  | {
      type: 'run/didSnapshot';
      run: RunHeader;
      steps: StepSeries;
      /**
       * a long run's steps are posted downsampled (the minimum and maximum of each pixel bucket): the
       * number of steps there are, and the smoothed loss at the posted steps (computed over all of
       * them); the webview asks for finer windows with `series/window` as it zooms
       */
      stepsTotal?: number;
      /** the first and last step of a downsampled run */
      stepsExtent?: [number, number];
      smoothed?: (number | null)[];
      epochs: EpochRow[];
      samples: { step: number; text: string }[];
      tokensPerSecond?: number;
      summary?: Record<string, unknown>;
      gates?: GatesMessage;
      gateHistory: GateHistoryRow[];
      /** other runs of the same model, to overlay on the loss chart (downsampled) */
      overlays?: Overlay[];
      /** the runs chosen to compare with (the side panel's Compare), kept in the webview's state */
      compare?: string[];
    }
  | { type: 'gates/didSnapshot'; gates: GatesMessage }
  | { type: 'gates/didFail'; message: string }
  /** the gradients through time of this run and the runs compared with it, for one probe text */
  | { type: 'through/didCompute'; text: string; results: ThroughResult[] }
  | { type: 'through/didFail'; message: string }
  | { type: 'run/didStep'; steps: StepSeries; tokensPerSecond: number; epoch: number; remainingMs: number }
  /** the points of a window of a downsampled run (the answer to series/window) */
  | { type: 'series/didWindow'; requestId: number; steps: StepSeries; smoothed: (number | null)[]; total: number; extent: [number, number] }
  | { type: 'run/didEpoch'; row: EpochRow }
  | { type: 'run/didSample'; step: number; text: string }
  | { type: 'run/didChangeStatus'; run: RunHeader; summary?: Record<string, unknown> };

export type DashboardToHost =
  /** the view's smoothing and the loss chart's width in pixels shape the first window of a long run */
  | { type: 'webview/ready'; smoothing?: number; width?: number }
  /** the points of the steps in [x0, x1] (all when absent) for a chart `buckets` pixels wide, smoothed with this weight */
  | { type: 'series/window'; requestId: number; x0?: number; x1?: number; buckets: number; smoothing: number }
  /** export every step of a downsampled run (the host has them) */
  | { type: 'export/metrics'; format: 'csv' | 'json' }
  | { type: 'training/stop' }
  | { type: 'training/restart' }
  | { type: 'source/reveal' }
  /** recompute the gate views for this text (live runs: at the next K steps; finished: from the checkpoint) */
  | { type: 'gates/setProbe'; text: string }
  /** the gradients through time of this run and the compared ones for this text (from their checkpoints) */
  | { type: 'through/compute'; text: string }
  /** save exported data or a picture (the host asks where) */
  | { type: 'export/save'; fileName: string; content: string; encoding: 'utf8' | 'base64' };

/** One run's gradients through time (or why there are none). */
export interface ThroughResult {
  runId: string;
  label: string;
  through?: ThroughMessage;
  error?: string;
}

export interface Overlay {
  id: string;
  label: string;
  step: number[];
  loss: number[];
}

export function emptySeries(): StepSeries {
  return { step: [], loss: [], gradNorm: [], lr: [], time: [] };
}
