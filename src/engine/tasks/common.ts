// Small pieces several task plug-ins use: zero tensors, the checks of options a task does not have,
// a fixed gate-probe example as a GateSource, and the mean of a list.

import * as ort from 'onnxruntime-node';
import type { ModelConfig } from '../config/types';
import { whereOf } from '../config/load';
import { UserError } from '../errors';
import type { SeqGateProbe } from '../train/probe';
import type { GateSource } from './task';

export function zeros(shape: number[], dtype: 'float32' | 'float64' = 'float32'): ort.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return new ort.Tensor(dtype, dtype === 'float64' ? new Float64Array(n) : new Float32Array(n), shape);
}

/** A task whose model reads its sequence in one direction only: a bidirectional layer is an error at its key. */
export function noBidirectional(cfg: ModelConfig, what: string): void {
  cfg.model.layers.forEach((l, k) => {
    if (l.bidirectional)
      throw new UserError(`${what} is not supported yet`, whereOf(cfg, `model.layers.${k}.bidirectional`), 'set bidirectional: false; classification and forecast models have it');
  });
}

/** A task without dropout. */
export function noDropout(cfg: ModelConfig, what: string): void {
  if (cfg.model.dropout > 0) throw new UserError(`${what} is not supported yet`, whereOf(cfg, 'model.dropout'), 'set dropout: 0; language-model, classification and forecast models have it');
}

/** A task that reads its generated sequences once, forwards, without dropout (copy, adding). */
export function forwardOnly(cfg: ModelConfig): void {
  noBidirectional(cfg, `a bidirectional ${cfg.task} model`);
  noDropout(cfg, `dropout in ${/^[aeiou]/.test(cfg.task) ? 'an' : 'a'} ${cfg.task} model`);
}

/** The gate views of one fixed example (classification, forecast, adding). */
export function fixedProbe(probe: SeqGateProbe): GateSource {
  return { run: (params, step) => probe.run(params, step), release: () => probe.release() };
}

export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}
