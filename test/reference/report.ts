// What the gradient test files share: the worst error of each kind (printed with GRADIENTS_REPORT=1,
// the figures the notes quote), the relative-error assertion that records it, and the conversion
// between PyTorch's gate order (fixtures) and the engine's.

import { afterAll, expect } from 'vitest';
import { INTERNAL_FROM_TORCH, isGated, permuteGateBlocks, TORCH_FROM_INTERNAL } from '../../src/engine/train/checkpoint';
import { relError } from './lstm_ref';

export interface ErrorReport {
  /** keeps the largest `err` of each kind, with where it occurred */
  record(kind: string, err: number, where: string): void;
  /** asserts |got − want| ≤ tol·max(|want|, 1e-3·max|want|) and records the worst ratio */
  expectRel(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string, kind: string): void;
}

/** Call once at a test file's top level: the file's report, printed after its tests with GRADIENTS_REPORT. */
export function errorReport(): ErrorReport {
  const worst: Record<string, { err: number; where: string }> = {};
  const record = (kind: string, err: number, where: string) => {
    if (!worst[kind] || err > worst[kind].err) worst[kind] = { err, where };
  };
  afterAll(() => {
    if (!process.env.GRADIENTS_REPORT) return;
    for (const [k, v] of Object.entries(worst)) console.log(`${k}: worst ${v.err.toExponential(2)} (${v.where})`);
  });
  return {
    record,
    expectRel(got, want, tol, what, kind) {
      expect(got.length, `${what}: length`).toBe(want.length);
      const r = relError(got, want, { floorFrac: 1e-3, floor: 1e-300 });
      record(kind, r.worst, what);
      expect(r.worst, `${what}: worst relative error ${r.worst.toExponential(2)} at [${r.at}]: got ${r.got}, want ${r.want}`).toBeLessThanOrEqual(tol);
    },
  };
}

/** A PyTorch tensor (gate blocks i, f, g, o) in the engine's layout; other tensors unchanged. */
export const toInternal = (name: string, shape: number[], data: Float64Array) => (isGated(name) ? permuteGateBlocks(data, shape, INTERNAL_FROM_TORCH) : data);
/** An engine tensor in PyTorch's layout. */
export const toTorch = (name: string, shape: number[], data: Float64Array) => (isGated(name) ? permuteGateBlocks(data, shape, TORCH_FROM_INTERNAL) : data);
