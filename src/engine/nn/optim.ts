// Global-norm gradient clipping and the optimizers (SGD, momentum, Adam, AdamW) as plain ONNX ops,
// with PyTorch's semantics (torch.nn.utils.clip_grad_norm_, torch.optim.*).

import { Graph, Value } from '../onnx/builder';
import { Ops } from '../onnx/ops';
import { OptimizerConfig } from '../config/types';
import { ParamInfo } from './lm';

/** Optimizer state tensors, in order: per parameter buffers, then a step counter where needed. */
export function optimizerState(opt: OptimizerConfig, params: ParamInfo[]): ParamInfo[] {
  switch (opt.type) {
    case 'sgd':
      return [];
    case 'momentum':
      return params.map((p) => ({ name: `momentum_buffer.${p.name}`, shape: p.shape }));
    case 'adam':
    case 'adamw':
      return [
        ...params.map((p) => ({ name: `exp_avg.${p.name}`, shape: p.shape })),
        ...params.map((p) => ({ name: `exp_avg_sq.${p.name}`, shape: p.shape })),
        { name: 'step', shape: [] },
      ];
  }
}

/** ‖g‖₂ over all gradients, and the gradients scaled by min(1, maxNorm / (‖g‖ + 1e-6)). */
export function clipByGlobalNorm(g: Graph, grads: Value[], maxNorm: number): { norm: Value; grads: Value[] } {
  const op = new Ops(g);
  return g.scope('clip', () => {
    const norm = op.Sqrt(op.Sum(...grads.map((d) => op.ReduceSumSquare(d))));
    if (!(maxNorm > 0)) return { norm, grads };
    const coef = op.Min(op.Div(op.c(norm, maxNorm), op.Add(norm, op.c(norm, 1e-6))), op.c(norm, 1));
    return { norm, grads: grads.map((d) => op.Mul(d, coef)) };
  });
}

/**
 * One optimizer step. `lr` is a scalar value (so schedules can feed it per step).
 * Returns the new parameters and the new optimizer state (same order as optimizerState()).
 */
export function optimizerStep(
  g: Graph,
  opt: OptimizerConfig,
  params: Value[],
  grads: Value[],
  state: Value[],
  lr: Value,
): { params: Value[]; state: Value[] } {
  const op = new Ops(g);
  return g.scope(opt.type, () => {
    const n = params.length;
    const c = (v: number) => op.c(lr, v);
    // L2 weight decay (added to the gradient) for sgd, momentum, adam; decoupled for adamw
    const gr =
      opt.weightDecay > 0 && opt.type !== 'adamw'
        ? grads.map((d, i) => op.Add(d, op.Mul(params[i], c(opt.weightDecay))))
        : grads;
    switch (opt.type) {
      case 'sgd':
        return { params: params.map((p, i) => op.Sub(p, op.Mul(gr[i], lr))), state: [] };
      case 'momentum': {
        const bufs = state.map((b, i) => op.Add(op.Mul(b, c(opt.momentum)), gr[i]));
        return { params: params.map((p, i) => op.Sub(p, op.Mul(bufs[i], lr))), state: bufs };
      }
      case 'adam':
      case 'adamw': {
        const t = op.Add(state[2 * n], c(1));
        const bc1 = op.Sub(c(1), op.Pow(c(opt.beta1), t));
        const bc2 = op.Sub(c(1), op.Pow(c(opt.beta2), t));
        const m = state.slice(0, n).map((mi, i) => op.Add(op.Mul(mi, c(opt.beta1)), op.Mul(gr[i], c(1 - opt.beta1))));
        const v = state
          .slice(n, 2 * n)
          .map((vi, i) => op.Add(op.Mul(vi, c(opt.beta2)), op.Mul(op.Mul(gr[i], gr[i]), c(1 - opt.beta2))));
        const stepSize = op.Div(lr, bc1);
        const sqrtBc2 = op.Sqrt(bc2);
        const out = params.map((p, i) => {
          const decayed = opt.type === 'adamw' && opt.weightDecay > 0 ? op.Mul(p, op.Sub(c(1), op.Mul(lr, c(opt.weightDecay)))) : p;
          const denom = op.Add(op.Div(op.Sqrt(v[i]), sqrtBc2), c(opt.epsilon));
          return op.Sub(decayed, op.Mul(stepSize, op.Div(m[i], denom)));
        });
        return { params: out, state: [...m, ...v, t] };
      }
    }
  });
}
