// Bidirectional recurrent layers, as PyTorch's `bidirectional=True`: a layer runs once per direction,
// each with its own parameters (PyTorch's names: `lstm.weight_ih_l0` and `lstm.weight_ih_l0_reverse`),
// and its output is the concatenation [h_fwd, h_bwd] (2H) at every step. The reverse direction reads
// each sequence backwards from its own last real step: the layer input goes through ReverseSequence
// with the sequence lengths (the padding after a sequence stays after it, so it is read last and
// changes nothing before it), the layer runs forward over that, and its outputs are reversed back the
// same way into input time order. Nothing here knows the cell: `run` is called once per direction,
// so any recurrent layer (LSTM, GRU) can be made bidirectional with it.
//
// Legend: T = time, B = batch, H = hidden units of one direction, D = directions (1 or 2).

import { Graph, Value } from '../onnx/builder';
import { Ops } from '../onnx/ops';

export type Direction = 'forward' | 'reverse';

/** Parameter-name suffix of each direction (PyTorch's). */
export const DIRECTION_SUFFIX: Record<Direction, string> = { forward: '', reverse: '_reverse' };

/** The directions of a layer, in PyTorch's order. */
export function directionsOf(bidirectional: boolean | undefined): Direction[] {
  return bidirectional ? ['forward', 'reverse'] : ['forward'];
}

export interface DirectionRun<F> {
  direction: Direction;
  /** what `run` returned (its hs in the order the direction read the input) */
  result: F;
  /** [T, B, H] the direction's outputs in input time order */
  hs: Value;
}

export interface LayerRun<F> {
  /** [T, B, D·H] the layer's output: [h_fwd, h_bwd] at each step */
  hs: Value;
  dirs: DirectionRun<F>[];
}

/**
 * Runs one layer in its directions.
 * @param input the layer's input, time-major [T, B, ...] (token ids or features)
 * @param lens int64 [B]: each sequence's real length (null: every sequence fills T)
 * @param run one direction: gets the input in the order it reads it and the parameter-name suffix,
 *   returns at least hs [T, B, H] in that same order
 */
export function runDirections<F extends { hs: Value }>(
  g: Graph,
  input: Value,
  lens: Value | null,
  bidirectional: boolean | undefined,
  run: (input: Value, suffix: string, direction: Direction) => F,
): LayerRun<F> {
  const op = new Ops(g);
  const dirs = directionsOf(bidirectional).map((direction): DirectionRun<F> => {
    if (direction === 'forward') {
      const result = run(input, DIRECTION_SUFFIX.forward, direction);
      return { direction, result, hs: result.hs };
    }
    return g.scope('reverse', () => {
      const L = lens ?? fullLengths(g, input);
      const result = run(op.ReverseSequence(input, L, 0, 1), DIRECTION_SUFFIX.reverse, direction);
      return { direction, result, hs: op.ReverseSequence(result.hs, L, 0, 1) };
    });
  });
  return { hs: op.Concat(dirs.map((d) => d.hs), 2), dirs };
}

/** int64 [B] filled with T, for sequences without padding (T and B must be static). */
export function fullLengths(g: Graph, x: Value): Value {
  const [T, B] = x.shape;
  if (typeof T !== 'number' || typeof B !== 'number') throw new Error(`reverse direction: the lengths of [${x.shape}] need static T and B`);
  return g.const(new Array(B).fill(T), 'int64', [B]);
}

/**
 * The summary of a (possibly bidirectional) layer's outputs that PyTorch calls h_n, for sequences of
 * the given last real steps: [h_fwd at the last real step, h_bwd at step 0] (the reverse direction's
 * final state, having read the sequence from its end back to its start).
 * @param last [B, 1, H] int64: each sequence's last real step, repeated over H; null = step T − 1
 * @returns [B, D·H]
 */
export function finalStates(g: Graph, run: LayerRun<{ hs: Value }>, last: Value | null): Value {
  const op = new Ops(g);
  const parts = run.dirs.map((d) => {
    const [T, B, H] = d.hs.shape as number[];
    if (d.direction === 'reverse') return op.Reshape(op.Slice(d.hs, [0], [1], [0]), [B, H]);
    if (!last) return op.Reshape(op.Slice(d.hs, [T - 1], [T], [0]), [B, H]);
    return op.Reshape(op.GatherElements(op.Transpose(d.hs, [1, 0, 2]), last, 1), [B, H]);
  });
  return op.Concat(parts, 1);
}
