// The recurrent cells, in one table: what every model builder (language models, sequence tasks, gate
// probes, ONNX export) needs of a layer's cell, so that none of them branches on the cell type.
//   lstm  PyTorch nn.LSTM and its variants (./lstm.ts)
//   gru   PyTorch nn.GRU (./gru.ts)
//   rnn   PyTorch nn.RNN, tanh or relu (./rnn.ts)

import type { Graph, Value } from '../onnx/builder';
import type { GateName, SigmoidGateName } from '../../shared/protocol';
import { CellKind, cellKind, GateActivation, LstmForward, lstmLayer, lstmParams, lstmStep } from './lstm';
import { GruForward, gruLayer, gruParams, gruStep } from './gru';
import { RnnForward, rnnLayer, rnnParams, rnnStep } from './rnn';

export type LayerForward = LstmForward | GruForward | RnnForward;
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
}

export const CELLS: Record<CellKind, CellDef> = {
  lstm: {
    kind: 'lstm',
    hasCellState: true,
    params: lstmParams,
    layer: (g, P, k, input, s, gate, sfx) => lstmLayer(g, P, k, input, s.h0, s.c0 ?? s.h0, gate, sfx),
    step: (g, P, k, x, s, gate, sfx) => lstmStep(g, P, k, x, s.h, s.c ?? s.h, gate, sfx),
    maps: ['i', 'f', 'o', 'g', 'c', 'h'],
    sigmoid: ['i', 'f', 'o'],
  },
  gru: {
    kind: 'gru',
    hasCellState: false,
    params: (k, H, inSize, sfx) => gruParams(k, H, inSize, sfx),
    layer: (g, P, k, input, s, gate, sfx) => gruLayer(g, P, k, input, s.h0, gate, sfx),
    step: (g, P, k, x, s, gate, sfx) => ({ h: gruStep(g, P, k, x, s.h, gate, sfx) }),
    maps: ['r', 'z', 'n', 'h'],
    sigmoid: ['r', 'z'],
  },
  rnn: {
    kind: 'rnn',
    hasCellState: false,
    params: (k, H, inSize, sfx) => rnnParams(k, H, inSize, sfx),
    layer: (g, P, k, input, s, gate, sfx) => rnnLayer(g, P, k, input, s.h0, gate?.activation ?? 'tanh', sfx),
    step: (g, P, k, x, s, gate, sfx) => ({ h: rnnStep(g, P, k, x, s.h, gate?.activation ?? 'tanh', sfx) }),
    maps: ['h'],
    sigmoid: [],
  },
};

/** The cell of a layer, from its options. */
export function cellDef(gate: GateActivation | undefined | null): CellDef {
  return CELLS[cellKind(gate)];
}
