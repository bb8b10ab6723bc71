// Parameter initialisation with PyTorch's defaults (so a fresh Gatelab model trains like the same
// PyTorch module): nn.LSTM and nn.GRU all weights and biases U(−1/√H, 1/√H); nn.Linear weight and bias
// U(−1/√fan_in, 1/√fan_in) (kaiming_uniform with a = √5); nn.Embedding N(0, 1).
// forgetBias is added to the forget-gate block of bias_ih (so b_ih + b_hh starts there on average).
// Equation cells (`type: cell`): every parameter U(−1/√H, 1/√H), then the layer's `init` constants.

import { Rng } from '../util/rng';
import { LayerConfig } from '../config/types';
import { ParamInfo } from './lm';
import { GATE_ORDERS, FloatData } from '../train/checkpoint';

export interface InitConfig {
  input: 'pytorch' | 'xavier' | 'normal';
  recurrent: 'pytorch' | 'orthogonal' | 'xavier' | 'normal';
}

/** An n×n orthogonal matrix (row-major): Gram–Schmidt on the rows of a Gaussian matrix, float64. */
export function orthogonal(n: number, rng: Rng): Float64Array {
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (;;) {
      for (let j = 0; j < n; j++) q[i * n + j] = rng.normal();
      for (let k = 0; k < i; k++) {
        let dot = 0;
        for (let j = 0; j < n; j++) dot += q[i * n + j] * q[k * n + j];
        for (let j = 0; j < n; j++) q[i * n + j] -= dot * q[k * n + j];
      }
      let norm = 0;
      for (let j = 0; j < n; j++) norm += q[i * n + j] ** 2;
      norm = Math.sqrt(norm);
      if (norm < 1e-8) continue; // (almost never) a dependent draw: draw again
      for (let j = 0; j < n; j++) q[i * n + j] /= norm;
      break;
    }
  }
  return q;
}

/** Fills one [blocks·H, fanIn] gated weight (LSTM 4 blocks, GRU 3) by the chosen scheme, gate block by gate block. */
function fillGated(data: FloatData, H: number, fanIn: number, scheme: InitConfig['recurrent'], rng: Rng, blocks = 4): boolean {
  if (scheme === 'pytorch') return false;
  for (let b = 0; b < blocks; b++) {
    const off = b * H * fanIn;
    if (scheme === 'orthogonal') {
      data.set(orthogonal(H, rng), off); // fanIn = H for recurrent weights
    } else if (scheme === 'xavier') {
      const k = Math.sqrt(6 / (fanIn + H));
      for (let i = 0; i < H * fanIn; i++) data[off + i] = rng.uniform(-k, k);
    } else {
      for (let i = 0; i < H * fanIn; i++) data[off + i] = 0.01 * rng.normal();
    }
  }
  return true;
}

export function initParams(
  params: ParamInfo[],
  layers: (Pick<LayerConfig, 'hidden' | 'forgetBias'> & Partial<Pick<LayerConfig, 'init'>>)[],
  seed: number,
  dtype: 'float32' | 'float64' = 'float32',
  init: InitConfig = { input: 'pytorch', recurrent: 'pytorch' },
): Map<string, { shape: number[]; data: FloatData }> {
  const rng = new Rng(seed);
  const out = new Map<string, { shape: number[]; data: FloatData }>();
  for (const p of params) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const data = dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
    const lstm = /^lstm\.\w+_l(\d+)/.exec(p.name);
    if (lstm) {
      const H = layers[Number(lstm[1])].hidden;
      const k = 1 / Math.sqrt(H);
      for (let i = 0; i < n; i++) data[i] = rng.uniform(-k, k);
      if (p.name.startsWith('lstm.weight_hh')) fillGated(data, H, p.shape[1], init.recurrent, rng);
      if (p.name.startsWith('lstm.weight_ih')) fillGated(data, H, p.shape[1], init.input, rng);
      const fb = layers[Number(lstm[1])].forgetBias;
      if (fb && p.name.startsWith('lstm.bias_ih')) {
        const f = GATE_ORDERS.internal.indexOf('f');
        for (let i = f * H; i < (f + 1) * H; i++) data[i] += fb;
      }
    } else if (/^(gru|rnn)\.\w+_l\d+/.test(p.name)) {
      // nn.GRU, nn.RNN: every weight and bias U(−1/√H, 1/√H); the weight schemes apply per gate block
      // (GRU: r, z, n; an RNN's weights are one block)
      const blocks = p.name.startsWith('gru.') ? 3 : 1;
      const H = p.shape[0] / blocks;
      const k = 1 / Math.sqrt(H);
      for (let i = 0; i < n; i++) data[i] = rng.uniform(-k, k);
      if (/^(gru|rnn)\.weight_hh/.test(p.name)) fillGated(data, H, p.shape[1], init.recurrent, rng, blocks);
      if (/^(gru|rnn)\.weight_ih/.test(p.name)) fillGated(data, H, p.shape[1], init.input, rng, blocks);
    } else if (/^cell\.l\d+(_reverse)?\./.test(p.name)) {
      // an equation cell: every parameter U(−1/√H, 1/√H), as PyTorch's recurrent layers; the
      // layer's init sets constants (`f.b: 1`)
      const m = /^cell\.l(\d+)(?:_reverse)?\.(.+)$/.exec(p.name)!;
      const layer = layers[Number(m[1])];
      const k = 1 / Math.sqrt(layer.hidden);
      const constant = layer.init?.[m[2]];
      for (let i = 0; i < n; i++) data[i] = rng.uniform(-k, k);
      if (constant !== undefined) data.fill(constant);
    } else if (p.name === 'embedding.weight') {
      for (let i = 0; i < n; i++) data[i] = rng.normal();
    } else if (p.name === 'fc.weight' || p.name === 'fc.bias') {
      const fanIn = p.name === 'fc.weight' ? p.shape[1] : params.find((q) => q.name === 'fc.weight')!.shape[1];
      const k = 1 / Math.sqrt(fanIn);
      for (let i = 0; i < n; i++) data[i] = rng.uniform(-k, k);
    } else {
      throw new Error(`initParams: no initialiser for ${p.name}`);
    }
    out.set(p.name, { shape: p.shape, data });
  }
  return out;
}
