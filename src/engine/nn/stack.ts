// A stack of recurrent layers (LSTM or GRU, each one- or two-directional) as the sequence tasks
// (classification, forecast) build it: its parameters under PyTorch's names, the width of its last
// output, and the shapes of the dropout masks between its layers and before the head.

import type { GateActivation } from './lstm';
import { gruParams, isGru } from './gru';
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
    for (const sfx of dirs.map((d) => DIRECTION_SUFFIX[d])) {
      if (isGru(s.gates?.[k])) {
        ps.push(...gruParams(k, H, inSize, sfx));
        continue;
      }
      ps.push({ name: `lstm.weight_ih_l${k}${sfx}`, shape: [4 * H, inSize] });
      ps.push({ name: `lstm.weight_hh_l${k}${sfx}`, shape: [4 * H, H] });
      ps.push({ name: `lstm.bias_ih_l${k}${sfx}`, shape: [4 * H] });
      ps.push({ name: `lstm.bias_hh_l${k}${sfx}`, shape: [4 * H] });
      if (s.gates?.[k]?.peepholes) ps.push({ name: `lstm.weight_peephole_l${k}${sfx}`, shape: [3, H] });
    }
    inSize = H * dirs.length;
  });
  return ps;
}
