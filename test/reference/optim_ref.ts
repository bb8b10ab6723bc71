// Plain float64 reference of global-norm clipping and the optimizers, written from PyTorch's
// documented update rules (torch.nn.utils.clip_grad_norm_, torch.optim.SGD / Adam / AdamW with
// their defaults: no dampening, no Nesterov, no amsgrad), and a K-step trajectory driver with the
// train program's semantics (keep[k] = 0 resets the carried state before step k; the carried state
// is detached between steps).

import { OptimizerConfig } from '../../src/engine/config/types';
import { lmBackward, lmForward, RefParams, RefSpec, RefState, Tokens, zeroState } from './lstm_ref';

export interface OptState {
  /** momentum buffers, or Adam's exp_avg */
  m: Record<string, Float64Array>;
  /** Adam's exp_avg_sq */
  v: Record<string, Float64Array>;
  step: number;
}

export function initOptState(p: RefParams): OptState {
  const zeros = () => Object.fromEntries(Object.entries(p).map(([k, t]) => [k, new Float64Array(t.data.length)]));
  return { m: zeros(), v: zeros(), step: 0 };
}

/**
 * clip_grad_norm_: total = ‖all grads‖₂; if clip > 0, grads ×= min(1, clip / (total + 1e-6)).
 * Returns the norm before clipping (scales `grads` in place).
 */
export function clipGradNorm(grads: Record<string, Float64Array>, clip: number): number {
  let sq = 0;
  for (const g of Object.values(grads)) for (const v of g) sq += v * v;
  const total = Math.sqrt(sq);
  if (clip > 0) {
    const coef = Math.min(1, clip / (total + 1e-6));
    for (const g of Object.values(grads)) for (let i = 0; i < g.length; i++) g[i] *= coef;
  }
  return total;
}

/** One optimizer step, in place. */
export function optimizerStep(opt: OptimizerConfig, p: RefParams, grads: Record<string, Float64Array>, s: OptState, lr: number): void {
  s.step += 1;
  const t = s.step;
  for (const [k, tensor] of Object.entries(p)) {
    const w = tensor.data;
    const g = grads[k];
    const m = s.m[k];
    const v = s.v[k];
    for (let i = 0; i < w.length; i++) {
      let d = g[i];
      if (opt.weightDecay > 0 && opt.type !== 'adamw') d += opt.weightDecay * w[i]; // L2, coupled
      switch (opt.type) {
        case 'sgd':
          w[i] -= lr * d;
          break;
        case 'momentum':
          m[i] = opt.momentum * m[i] + d; // (first step: buf = grad, the same from a zero buffer)
          w[i] -= lr * m[i];
          break;
        case 'adam':
        case 'adamw': {
          if (opt.type === 'adamw') w[i] *= 1 - lr * opt.weightDecay; // decoupled
          m[i] = opt.beta1 * m[i] + (1 - opt.beta1) * d;
          v[i] = opt.beta2 * v[i] + (1 - opt.beta2) * d * d;
          const bc1 = 1 - Math.pow(opt.beta1, t);
          const bc2 = 1 - Math.pow(opt.beta2, t);
          const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + opt.epsilon;
          w[i] -= (lr / bc1) * (m[i] / denom);
          break;
        }
      }
    }
  }
}

/**
 * K optimizer steps over batches xs[k], ys[k] (time-major [T][B]) from the given start state, as
 * the train program runs them. Updates `p` in place; returns the per-step losses and pre-clip norms
 * and the final state.
 */
export function trainSteps(
  p: RefParams,
  spec: RefSpec,
  xs: Tokens[],
  ys: Tokens[],
  o: { opt: OptimizerConfig; clip: number; keep: number[]; lr: number[]; state?: RefState },
) {
  const B = xs[0][0].length;
  const s = initOptState(p);
  let state = o.state ?? zeroState(spec, B);
  const losses: number[] = [];
  const gnorms: number[] = [];
  xs.forEach((x, k) => {
    if (!o.keep[k]) state = zeroState(spec, B);
    const fwd = lmForward(p, spec, x, ys[k], state);
    const grads = lmBackward(p, spec, fwd).params;
    gnorms.push(clipGradNorm(grads, o.clip));
    optimizerStep(o.opt, p, grads, s, o.lr[k]);
    losses.push(fwd.loss);
    state = { h: fwd.hT, c: fwd.cT };
  });
  return { losses, gnorms, state, opt: s };
}
