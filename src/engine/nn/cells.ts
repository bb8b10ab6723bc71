// The recurrent cells, in one table: what every model builder (language models, sequence tasks, gate
// probes, ONNX export) needs of a layer's cell, so that none of them branches on the cell type.
//   lstm  PyTorch nn.LSTM and its variants (./lstm.ts)
//   gru   PyTorch nn.GRU (./gru.ts)
//   rnn   PyTorch nn.RNN, tanh or relu (./rnn.ts)
//   cell  equations written in the model file (./cellspec.ts, ./eqcell.ts)

import type { Graph, Value } from '../onnx/builder';
import type { GateName, SigmoidGateName } from '../../shared/protocol';
import { CellKind, cellKind, GateActivation, LstmForward, lstmLayer, lstmParams, lstmStep } from './lstm';
import { GruForward, gruLayer, gruParams, gruStep } from './gru';
import { RnnForward, rnnLayer, rnnParams, rnnStep } from './rnn';
import { cellParamName, EqCellForward, eqCellLayer, eqCellParams, eqCellStep } from './eqcell';
import { cellParams, CellSpec, equationRange, isGateEquation } from './cellspec';

export type LayerForward = LstmForward | GruForward | RnnForward | EqCellForward;
export type LayerInput = { ids: Value } | { x: Value };

export interface CellDef {
  kind: CellKind;
  /** the layer carries a cell state c beside h */
  hasCellState: boolean;
  /** layer k's parameters for one direction (PyTorch names, `suffix` '' or '_reverse') */
  params(k: number, H: number, inSize: number, suffix: string, gate?: GateActivation): { name: string; shape: number[] }[];
  /** the input projection and the recurrence from the state (h0, and c0 where the cell has one) */
  layer(g: Graph, P: Record<string, Value>, k: number, input: LayerInput, state: { h0: Value; c0?: Value }, gate: GateActivation | undefined, suffix: string): LayerForward;
  /**
   * one step of the layer from primitives, for unrolled programs whose every state is a value
   * differentiated by the rule table (gradients through time): x [B, I], the state before → after
   */
  step(g: Graph, P: Record<string, Value>, k: number, x: Value, state: { h: Value; c?: Value }, gate: GateActivation | undefined, suffix: string): { h: Value; c?: Value };
  /** the maps the gate views show, in display order, and which of them are sigmoid gates */
  maps: readonly GateName[];
  sigmoid: readonly SigmoidGateName[];
  /** the name of a layer-k weight whose columns are the layer input (its width: shape[1]) */
  inputWeight(k: number, suffix: string): string;
  /** histogram ranges of maps the built-in table (probe.ts HIST_RANGES) does not know */
  ranges?: Record<string, [number, number]>;
  /** an equation cell's equations as written, by name */
  formulas?: Record<string, string>;
}

export const CELLS: Record<Exclude<CellKind, 'cell'>, CellDef> = {
  lstm: {
    kind: 'lstm',
    inputWeight: (k, sfx) => `lstm.weight_ih_l${k}${sfx}`,
    hasCellState: true,
    params: lstmParams,
    layer: (g, P, k, input, s, gate, sfx) => lstmLayer(g, P, k, input, s.h0, s.c0 ?? s.h0, gate, sfx),
    step: (g, P, k, x, s, gate, sfx) => lstmStep(g, P, k, x, s.h, s.c ?? s.h, gate, sfx),
    maps: ['i', 'f', 'o', 'g', 'c', 'h'],
    sigmoid: ['i', 'f', 'o'],
  },
  gru: {
    kind: 'gru',
    inputWeight: (k, sfx) => `gru.weight_ih_l${k}${sfx}`,
    hasCellState: false,
    params: (k, H, inSize, sfx) => gruParams(k, H, inSize, sfx),
    layer: (g, P, k, input, s, gate, sfx) => gruLayer(g, P, k, input, s.h0, gate, sfx),
    step: (g, P, k, x, s, gate, sfx) => ({ h: gruStep(g, P, k, x, s.h, gate, sfx) }),
    maps: ['r', 'z', 'n', 'h'],
    sigmoid: ['r', 'z'],
  },
  rnn: {
    kind: 'rnn',
    inputWeight: (k, sfx) => `rnn.weight_ih_l${k}${sfx}`,
    hasCellState: false,
    params: (k, H, inSize, sfx) => rnnParams(k, H, inSize, sfx),
    layer: (g, P, k, input, s, gate, sfx) => rnnLayer(g, P, k, input, s.h0, gate?.activation ?? 'tanh', sfx),
    step: (g, P, k, x, s, gate, sfx) => ({ h: rnnStep(g, P, k, x, s.h, gate?.activation ?? 'tanh', sfx) }),
    maps: ['h'],
    sigmoid: [],
  },
};

const eqCells = new WeakMap<CellSpec, CellDef>();

/** The cell of an equation-defined layer: its maps are its equations, named as in the model file. */
function eqCellDef(spec: CellSpec): CellDef {
  const hit = eqCells.get(spec);
  if (hit) return hit;
  const def: CellDef = {
    kind: 'cell',
    inputWeight: (k, sfx) => cellParamName(k, sfx, cellParams(spec).find((p) => p.kind === 'matrix' && p.width === 'in')!.key),
    hasCellState: spec.states.length > 1,
    params: (k, H, inSize, sfx) => eqCellParams(spec, k, H, inSize, sfx),
    layer: (g, P, k, input, s, _gate, sfx) => eqCellLayer(g, spec, P, k, input, s, sfx),
    step: (g, P, k, x, s, _gate, sfx) => eqCellStep(g, spec, P, k, x, s, sfx),
    maps: spec.equations.map((q) => q.name),
    sigmoid: spec.equations.filter(isGateEquation).map((q) => q.name),
    ranges: Object.fromEntries(spec.equations.map((q) => [q.name, equationRange(q)])),
    formulas: Object.fromEntries(spec.equations.map((q) => [q.name, q.src ?? q.name])),
  };
  eqCells.set(spec, def);
  return def;
}

/** The cell of a layer, from its options. */
export function cellDef(gate: GateActivation | undefined | null): CellDef {
  const kind = cellKind(gate);
  if (kind === 'cell') {
    if (!gate?.equations) throw new Error('a cell layer needs its equations');
    return eqCellDef(gate.equations);
  }
  return CELLS[kind];
}
