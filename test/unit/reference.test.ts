// The float64 TypeScript reference (test/reference/lstm_ref.ts) checked on its own: its hand-written
// BPTT against central finite differences of its forward pass (ε = 1e-6, every entry of every
// parameter and of the initial state), and a case small enough to work out by hand.
//
// Tolerance: central differences of a loss of order 1 carry ~1e-10 of rounding noise
// (1e-16 / 1e-6) and ~ε² of truncation error, so |backward − FD| ≤ 1e-8 + 1e-5·|FD|.

import { describe, expect, it } from 'vitest';
import {
  finiteDifference,
  lcg,
  lmBackward,
  lmForward,
  randomParams,
  randomTokens,
  RefSpec,
  RefState,
  sigmoid,
  zeroState,
} from '../reference/lstm_ref';
import { handCase, HAND_EXPECTED } from '../reference/hand_case';

const EPS = 1e-6;
const FD_ATOL = 1e-8;
const FD_RTOL = 1e-5;

/** Worst |a − fd| / (atol + rtol·|fd|) (≤ 1 passes), with where it happens. */
function fdRatio(a: ArrayLike<number>, fd: ArrayLike<number>) {
  let worst = 0;
  let at = -1;
  let maxAbs = 0;
  for (let i = 0; i < fd.length; i++) {
    const d = Math.abs(a[i] - fd[i]);
    maxAbs = Math.max(maxAbs, d);
    const r = d / (FD_ATOL + FD_RTOL * Math.abs(fd[i]));
    if (!(r <= worst)) {
      worst = r;
      at = i;
    }
  }
  return { worst, at, maxAbs, got: a[at], want: fd[at] };
}

interface CaseOpts {
  /** multiplies the LSTM weights and biases (saturates the gates) */
  lstmScale?: number;
  /** random nonzero h0 in ±1 and c0 in ±2, else zeros */
  carried?: boolean;
}

/** Reference backward vs FD for every parameter and the initial state; returns the worst abs error. */
function checkAgainstFd(spec: RefSpec, B: number, T: number, seed: number, o: CaseOpts = {}) {
  const rng = lcg(seed);
  const p = randomParams(spec, rng, o.lstmScale ?? 1);
  const x = randomTokens(T, B, spec.vocab, rng);
  const y = randomTokens(T, B, spec.vocab, rng);
  const state: RefState = o.carried
    ? {
        h: spec.hidden.map((H) => Float64Array.from({ length: B * H }, () => 2 * rng() - 1)),
        c: spec.hidden.map((H) => Float64Array.from({ length: B * H }, () => 4 * rng() - 2)),
      }
    : zeroState(spec, B);
  const fwd = lmForward(p, spec, x, y, state);
  const grads = lmBackward(p, spec, fwd);
  const loss = () => lmForward(p, spec, x, y, state).loss;

  const checked: [string, Float64Array, Float64Array][] = Object.entries(p).map(([k, t]) => [k, grads.params[k], t.data]);
  spec.hidden.forEach((_, k) => {
    checked.push([`h0.l${k}`, grads.h0[k], state.h[k]]);
    checked.push([`c0.l${k}`, grads.c0[k], state.c[k]]);
  });
  let worstAbs = 0;
  for (const [name, g, data] of checked) {
    const fd = finiteDifference(loss, data, EPS);
    const r = fdRatio(g, fd);
    worstAbs = Math.max(worstAbs, r.maxAbs);
    expect(r.worst, `${name}[${r.at}]: backward ${r.got} vs central FD ${r.want}`).toBeLessThanOrEqual(1);
  }
  return { fwd, grads, worstAbs };
}

describe('reference backward matches central finite differences (float64, ε = 1e-6)', () => {
  it('one layer, T = 1', () => {
    checkAgainstFd({ vocab: 5, embedding: 0, hidden: [4] }, 2, 1, 1);
  });

  it('two layers of different sizes, T = 1', () => {
    checkAgainstFd({ vocab: 5, embedding: 0, hidden: [4, 3] }, 2, 1, 2);
  });

  it('one layer, T = 35', () => {
    checkAgainstFd({ vocab: 5, embedding: 0, hidden: [3] }, 2, 35, 3);
  });

  it('two layers of different sizes, T = 35', () => {
    checkAgainstFd({ vocab: 4, embedding: 0, hidden: [3, 2] }, 2, 35, 4);
  });

  it('carried-in nonzero h0, c0 (two layers)', () => {
    const { grads } = checkAgainstFd({ vocab: 5, embedding: 0, hidden: [3, 4] }, 2, 6, 5, { carried: true });
    // the state gradients are not trivially zero
    for (const d of [...grads.h0, ...grads.c0]) expect(Math.max(...Array.from(d, Math.abs))).toBeGreaterThan(1e-4);
  });

  it('embedding input, two layers', () => {
    const { grads } = checkAgainstFd({ vocab: 7, embedding: 3, hidden: [4, 2] }, 3, 6, 6);
    expect(Math.max(...Array.from(grads.params['embedding.weight'], Math.abs))).toBeGreaterThan(1e-4);
  });

  it('saturated gates: pre-activations up to ~±30, gradients still agree with FD where they do not vanish', () => {
    // LSTM weights ×20 (uniform ±20/√3): many |z| > 10, the largest near 30. σ'(30) ≈ 1e-13, so the
    // paths through those gates vanish, while the unsaturated ones keep gradients of order 1e-3
    // that FD resolves well above its ~1e-10 noise.
    const spec = { vocab: 5, embedding: 0, hidden: [3] };
    const { fwd, grads } = checkAgainstFd(spec, 2, 8, 7, { lstmScale: 20, carried: true });
    const z = Array.from(fwd.layers[0].pre, Math.abs);
    const maxZ = Math.max(...z);
    expect(maxZ, 'largest |pre-activation|').toBeGreaterThan(25);
    expect(maxZ, 'largest |pre-activation|').toBeLessThan(60);
    expect(z.filter((v) => v > 10).length / z.length, 'fraction of |z| > 10').toBeGreaterThan(0.25);
    const gmax = Math.max(...Array.from(grads.params['lstm.weight_hh_l0'], Math.abs));
    expect(gmax, 'some recurrent-weight gradient survives').toBeGreaterThan(1e-4);
  });

  it('state carried across two calls equals one call over the whole sequence', () => {
    const spec = { vocab: 6, embedding: 0, hidden: [3, 2] };
    const rng = lcg(8);
    const p = randomParams(spec, rng);
    const x = randomTokens(10, 2, 6, rng);
    const y = randomTokens(10, 2, 6, rng);
    const whole = lmForward(p, spec, x, y);
    const a = lmForward(p, spec, x.slice(0, 4), y.slice(0, 4));
    const b = lmForward(p, spec, x.slice(4), y.slice(4), { h: a.hT, c: a.cT });
    expect(Array.from(b.hT[1])).toEqual(Array.from(whole.hT[1]));
    expect(Array.from(b.cT[0])).toEqual(Array.from(whole.cT[0]));
    expect((4 * a.loss + 6 * b.loss) / 10).toBeCloseTo(whole.loss, 14);
  });
});

describe('a hand-computed case (H = 1, V = 2, T = 1; derivation in test/reference/hand_case.ts)', () => {
  const h = handCase();
  const fwd = lmForward(h.params, h.spec, h.x, h.y, h.state);
  const grads = lmBackward(h.params, h.spec, fwd);
  const close = (got: ArrayLike<number>, want: number[], what: string) => {
    expect(got.length, what).toBe(want.length);
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]), `${what}[${i}]: ${got[i]} vs ${want[i]}`).toBeLessThan(1e-15);
  };

  it('forward: gates ½, c = ½ ln 3, h = ¼, loss = ln 2', () => {
    expect(sigmoid(0)).toBe(0.5);
    close(fwd.gates[0], HAND_EXPECTED.gates, 'gates (i, f, g, o)');
    close(fwd.cT[0], [HAND_EXPECTED.cT], 'cT');
    close(fwd.hT[0], [HAND_EXPECTED.hT], 'hT');
    close(fwd.logits, [1, 1], 'logits');
    close([fwd.loss], [HAND_EXPECTED.loss], 'loss');
  });

  it('backward: every gradient as derived by hand', () => {
    for (const [k, want] of Object.entries(HAND_EXPECTED.grads)) close(grads.params[k], want, k);
    close(grads.h0[0], [HAND_EXPECTED.dh0], 'dh0');
    close(grads.c0[0], [HAND_EXPECTED.dc0], 'dc0');
  });

  it('and the hand values agree with finite differences', () => {
    const loss = () => lmForward(h.params, h.spec, h.x, h.y, h.state).loss;
    for (const [k, want] of Object.entries(HAND_EXPECTED.grads)) {
      const r = fdRatio(want, finiteDifference(loss, h.params[k].data, EPS));
      expect(r.worst, `${k}[${r.at}]`).toBeLessThanOrEqual(1);
    }
    expect(fdRatio([HAND_EXPECTED.dh0], finiteDifference(loss, h.state.h[0], EPS)).worst).toBeLessThanOrEqual(1);
    expect(fdRatio([HAND_EXPECTED.dc0], finiteDifference(loss, h.state.c[0], EPS)).worst).toBeLessThanOrEqual(1);
  });
});
