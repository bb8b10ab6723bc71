// Minibatches of B sequences × T steps from a token stream, as d2l's seq_data_iter_sequential and
// seq_data_iter_random, and the validation split (the tail of the stream). An epoch is a plan, not
// its batches: batch k is cut from the id array when the loop asks for it, so a corpus of a billion
// tokens costs its ids and nothing per batch (random partitioning adds 4 bytes per subsequence).
//
// Batches are time-major: x[t·B + b] is token t of sequence b; y is x shifted by one token.

import type { TokenIds } from './text';
import { Rng } from '../util/rng';

/** A token stream: a corpus's ids (any unsigned width) or a part of them. */
export type Ids = TokenIds | Int32Array;

export interface Batch {
  /** [T, B] */
  x: Int32Array;
  /** [T, B] */
  y: Int32Array;
}

export interface Epoch {
  /** batches in this epoch */
  count: number;
  /** sequential partitioning: each batch continues the previous one row by row */
  contiguous: boolean;
  /** batch k (0 ≤ k < count), cut from the stream now */
  batch(k: number): Batch;
}

/** B rows of T tokens starting at start(b), and their successors. */
function cut(ids: Ids, B: number, T: number, start: (b: number) => number): Batch {
  const x = new Int32Array(T * B);
  const y = new Int32Array(T * B);
  for (let b = 0; b < B; b++) {
    const base = start(b);
    for (let t = 0; t < T; t++) {
      x[t * B + b] = ids[base + t];
      y[t * B + b] = ids[base + t + 1];
    }
  }
  return { x, y };
}

/**
 * d2l seq_data_iter_sequential: a random offset in [0, T], the stream cut into B rows, batches
 * of T consecutive columns, so row b of batch k+1 continues row b of batch k.
 */
export function sequentialEpoch(ids: Ids, B: number, T: number, rng: Rng): Epoch {
  const offset = rng.int(0, T);
  const numTokens = Math.floor((ids.length - offset - 1) / B) * B;
  const rowLen = numTokens / B;
  return { count: Math.max(0, Math.floor(rowLen / T)), contiguous: true, batch: (k) => cut(ids, B, T, (b) => offset + b * rowLen + k * T) };
}

/**
 * d2l seq_data_iter_random: a random offset in [0, T−1], the stream cut into subsequences of T,
 * shuffled, B per batch.
 */
export function randomEpoch(ids: Ids, B: number, T: number, rng: Rng): Epoch {
  const offset = rng.int(0, T - 1);
  const numSubseqs = Math.max(0, Math.floor((ids.length - offset - 1) / T));
  const order = new Uint32Array(numSubseqs);
  for (let i = 0; i < numSubseqs; i++) order[i] = i;
  rng.shuffle(order);
  return { count: Math.floor(numSubseqs / B), contiguous: false, batch: (k) => cut(ids, B, T, (b) => offset + order[k * B + b] * T) };
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
export function validationBatches(ids: Ids, B: number, T: number): Epoch & { B: number } {
  const rows = Math.max(1, Math.min(B, Math.floor((ids.length - 1) / T)));
  const rowLen = Math.floor((ids.length - 1) / rows);
  return { B: rows, count: Math.floor(rowLen / T), contiguous: true, batch: (k) => cut(ids, rows, T, (b) => b * rowLen + k * T) };
}

/** Splits the stream: the first (1 − fraction) for training, the rest for validation. */
export function splitTail<A extends Ids>(ids: A, fraction: number): { train: A; valid: A } {
  if (fraction <= 0) return { train: ids, valid: ids.subarray(0, 0) as A };
  const cut = Math.round(ids.length * (1 - fraction));
  return { train: ids.subarray(0, cut) as A, valid: ids.subarray(cut) as A };
}
