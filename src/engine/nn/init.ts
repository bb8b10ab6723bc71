// Parameter initialisation with PyTorch's defaults (so a fresh Gatelab model trains like the same
// PyTorch module): nn.LSTM all weights and biases U(−1/√H, 1/√H); nn.Linear weight and bias
// U(−1/√fan_in, 1/√fan_in) (kaiming_uniform with a = √5); nn.Embedding N(0, 1).
// forgetBias is added to the forget-gate block of bias_ih (so b_ih + b_hh starts there on average).

import { Rng } from '../util/rng';
import { LayerConfig } from '../config/types';
import { ParamInfo } from './lm';
import { GATE_ORDERS, FloatData } from '../train/checkpoint';

export function initParams(
  params: ParamInfo[],
  layers: Pick<LayerConfig, 'hidden' | 'forgetBias'>[],
  seed: number,
  dtype: 'float32' | 'float64' = 'float32',
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
      const fb = layers[Number(lstm[1])].forgetBias;
      if (fb && p.name.startsWith('lstm.bias_ih')) {
        const f = GATE_ORDERS.internal.indexOf('f');
        for (let i = f * H; i < (f + 1) * H; i++) data[i] += fb;
      }
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
