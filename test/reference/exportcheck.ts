// The exported classification or forecast model (`gatelab export`) against the training graph's
// own forward, shared by the export tests (test/unit/export.test.ts, cells.test.ts).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';
import { Rng } from '../../src/engine/util/rng';

/**
 * The exported classification or forecast model against the training graph's own forward (the
 * predict programs) on the same weights: random inputs (sentences of lengths 7, 2, 5, 1), the
 * largest relative difference of the outputs (class probabilities or forecasts).
 */
export async function exportedAgainstTrainingForward(
  onnxFile: string,
  params: { name: string; shape: number[] }[],
  w: Map<string, { data: unknown }>,
  spec: { hidden: number[] },
  o: { forecast: boolean; V: number; C: number },
): Promise<number> {
  const { buildClassifyPredictProgram } = await import('../../src/engine/train/classify');
  const { buildForecastPredictProgram } = await import('../../src/engine/train/forecast');
  const theirs = await ort.InferenceSession.create(onnxFile);
  const rng = new Rng(4);
  const [T, N] = [7, 4];
  const pf: Record<string, ort.Tensor> = {};
  for (const p of params) pf[`p.${p.name}`] = new ort.Tensor('float32', w.get(p.name)!.data as Float32Array, p.shape);
  let ours: Float32Array;
  let got: Float32Array;
  if (o.forecast) {
    const x = Float32Array.from({ length: T * N }, () => rng.normal());
    const s = await ort.InferenceSession.create(buildForecastPredictProgram({ spec: spec as never, N, T }).graph.encode(), { logSeverityLevel: 3 });
    ours = (await s.run({ ...pf, x: new ort.Tensor('float32', x, [T, N, 1]) })).pred.data as Float32Array;
    got = (await theirs.run({ x: new ort.Tensor('float32', x, [T, N, 1]) })).pred.data as Float32Array;
    await s.release();
  } else {
    const lens = [7, 2, 5, 1];
    const Hl = spec.hidden[spec.hidden.length - 1];
    const x = BigInt64Array.from({ length: T * N }, () => BigInt(rng.int(0, o.V - 1)));
    const mask = new Float32Array(T * N);
    const last = new BigInt64Array(N * Hl);
    lens.forEach((n, b) => {
      for (let t = 0; t < n; t++) mask[t * N + b] = 1;
      last.fill(BigInt(n - 1), b * Hl, (b + 1) * Hl);
    });
    const s = await ort.InferenceSession.create(buildClassifyPredictProgram({ spec: spec as never, N, T }).graph.encode(), { logSeverityLevel: 3 });
    ours = (await s.run({ ...pf, x: new ort.Tensor('int64', x, [T, N]), mask: new ort.Tensor('float32', mask, [T, N]), last: new ort.Tensor('int64', last, [N, 1, Hl]) })).probs.data as Float32Array;
    got = (await theirs.run({ tokens: new ort.Tensor('int64', x, [T, N]), lengths: new ort.Tensor('int64', BigInt64Array.from(lens, BigInt), [N]) })).probs.data as Float32Array;
    expect(ours.length).toBe(N * o.C);
    await s.release();
  }
  await theirs.release();
  expect(got.length).toBe(ours.length);
  return got.reduce((a, v, i) => Math.max(a, Math.abs(v - ours[i]) / Math.max(1, Math.abs(ours[i]))), 0);
}

/**
 * A classification (two sentences, `d.tsv`) or forecast (`s.csv`, window 9, horizon 2) model file
 * with the given layers (YAML flow maps) in a fresh folder.
 */
export function writeSeqCase(c: { forecast?: boolean; pooling?: 'last' | 'mean'; embedding?: number; dropout?: number; layers: string[] }, prefix: string): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.writeFileSync(path.join(dir, 'd.tsv'), 'good\t1\nbad\t0\n');
  fs.writeFileSync(path.join(dir, 's.csv'), 'Month,Passengers\n' + Array.from({ length: 40 }, (_, i) => `m${i},${100 + i}`).join('\n') + '\n');
  const data = c.forecast ? 'data: { source: s.csv, column: Passengers, window: 9, horizon: 2 }\ntask: forecast\n' : `task: classification\ndata: { source: d.tsv, pooling: ${c.pooling} }\n`;
  const file = path.join(dir, 'm.gatelab.yaml');
  fs.writeFileSync(file, `name: m\n${data}model:\n  embedding: ${c.embedding ?? 0}\n${c.dropout ? `  dropout: ${c.dropout}\n` : ''}  layers:\n${c.layers.map((l) => `    - ${l}`).join('\n')}\n`);
  return { dir, file };
}
