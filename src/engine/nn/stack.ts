// A stack of recurrent layers (LSTM, GRU or RNN, each one- or two-directional) as the sequence tasks
// (classification, forecast) build it: its parameters under PyTorch's names, the width of its last
// output, and the shapes of the dropout masks between its layers and before the head.

import type { GateActivation } from './lstm';
import { cellDef } from './cells';
import { DIRECTION_SUFFIX, directionsOf } from './direction';
import type { ParamInfo } from './lm';

export interface StackSpec {
  hidden: number[];
  gates?: (GateActivation | undefined)[];
  /** per layer: a forward and a reverse direction */
  bidirectional?: boolean[];
}

/** Width of the last layer's output: its hidden size times its directions. */
export function stackFeatures(s: StackSpec): number {
  const L = s.hidden.length;
  return s.hidden[L - 1] * directionsOf(s.bidirectional?.[L - 1]).length;
}

/** Shapes of the dropout masks of one step: `drop.l<k>` for every layer but the last, then `drop.head`. */
export function stackDropShapes(s: StackSpec, B: number, T: number): { name: string; shape: number[] }[] {
  const layers = s.hidden.slice(0, -1).map((H, k) => ({ name: `drop.l${k}`, shape: [T, B, H * directionsOf(s.bidirectional?.[k]).length] }));
  return [...layers, { name: 'drop.head', shape: [B, stackFeatures(s)] }];
}

/** The layers' parameters, bottom first, each direction's after the forward one (PyTorch's order). */
export function stackParams(s: StackSpec, inputSize: number): ParamInfo[] {
  const ps: ParamInfo[] = [];
  let inSize = inputSize;
  s.hidden.forEach((H, k) => {
    const dirs = directionsOf(s.bidirectional?.[k]);
    for (const sfx of dirs.map((d) => DIRECTION_SUFFIX[d])) ps.push(...cellDef(s.gates?.[k]).params(k, H, inSize, sfx, s.gates?.[k]));
    inSize = H * dirs.length;
  });
  return ps;
}
