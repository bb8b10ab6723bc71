// Minibatches of B sequences × T steps from a token stream, as d2l's seq_data_iter_sequential and
// seq_data_iter_random, and the validation split (the tail of the stream).
//
// Batches are time-major: x[t·B + b] is token t of sequence b; y is x shifted by one token.

import { Rng } from '../util/rng';

export interface Batch {
  /** [T, B] */
  x: Int32Array;
  /** [T, B] */
  y: Int32Array;
}

export interface Epoch {
  batches: Batch[];
  /** sequential partitioning: each batch continues the previous one row by row */
  contiguous: boolean;
}

/**
 * d2l seq_data_iter_sequential: a random offset in [0, T], the stream cut into B rows, batches
 * of T consecutive columns, so row b of batch k+1 continues row b of batch k.
 */
export function sequentialEpoch(ids: Int32Array, B: number, T: number, rng: Rng): Epoch {
  const offset = rng.int(0, T);
  const numTokens = Math.floor((ids.length - offset - 1) / B) * B;
  const rowLen = numTokens / B;
  const numBatches = Math.floor(rowLen / T);
  const batches: Batch[] = [];
  for (let k = 0; k < numBatches; k++) {
    const x = new Int32Array(T * B);
    const y = new Int32Array(T * B);
    for (let b = 0; b < B; b++) {
      const base = offset + b * rowLen + k * T;
      for (let t = 0; t < T; t++) {
        x[t * B + b] = ids[base + t];
        y[t * B + b] = ids[base + t + 1];
      }
    }
    batches.push({ x, y });
  }
  return { batches, contiguous: true };
}

/**
 * d2l seq_data_iter_random: a random offset in [0, T−1], the stream cut into subsequences of T,
 * shuffled, B per batch.
 */
export function randomEpoch(ids: Int32Array, B: number, T: number, rng: Rng): Epoch {
  const offset = rng.int(0, T - 1);
  const numSubseqs = Math.floor((ids.length - offset - 1) / T);
  const starts = Array.from({ length: numSubseqs }, (_, i) => offset + i * T);
  rng.shuffle(starts);
  const numBatches = Math.floor(numSubseqs / B);
  const batches: Batch[] = [];
  for (let k = 0; k < numBatches; k++) {
    const x = new Int32Array(T * B);
    const y = new Int32Array(T * B);
    for (let b = 0; b < B; b++) {
      const s = starts[k * B + b];
      for (let t = 0; t < T; t++) {
        x[t * B + b] = ids[s + t];
        y[t * B + b] = ids[s + t + 1];
      }
    }
    batches.push({ x, y });
  }
  return { batches, contiguous: false };
}

/** Batches per epoch without building them (for progress and step budgets). */
export function batchesPerEpoch(n: number, B: number, T: number, partition: 'sequential' | 'random'): number {
  if (partition === 'sequential') {
    // the offset varies in [0, T]; report the count for the largest offset (the minimum)
    return Math.floor(Math.floor((n - T - 1) / B) / T);
  }
  return Math.floor(Math.floor((n - T) / T) / B);
}

/**
 * Validation batches: the held-out tail cut sequentially into as many rows as fit (at most B),
 * without a random offset, so the validation loss is comparable across epochs.
 */
export function validationBatches(ids: Int32Array, B: number, T: number): { batches: Batch[]; B: number } {
  const rows = Math.max(1, Math.min(B, Math.floor((ids.length - 1) / T)));
  const rowLen = Math.floor((ids.length - 1) / rows);
  const numBatches = Math.floor(rowLen / T);
  const batches: Batch[] = [];
  for (let k = 0; k < numBatches; k++) {
    const x = new Int32Array(T * rows);
    const y = new Int32Array(T * rows);
    for (let b = 0; b < rows; b++) {
      const base = b * rowLen + k * T;
      for (let t = 0; t < T; t++) {
        x[t * rows + b] = ids[base + t];
        y[t * rows + b] = ids[base + t + 1];
      }
    }
    batches.push({ x, y });
  }
  return { batches, B: rows };
}

/** Splits the stream: the first (1 − fraction) for training, the rest for validation. */
export function splitTail(ids: Int32Array, fraction: number): { train: Int32Array; valid: Int32Array } {
  if (fraction <= 0) return { train: ids, valid: new Int32Array(0) };
  const cut = Math.round(ids.length * (1 - fraction));
  return { train: ids.subarray(0, cut), valid: ids.subarray(cut) };
}
