// `gatelab export`: the standard ONNX LSTM operator (gate order i, o, f, c) reproduces PyTorch's loss
// on the golden fixtures, for one-hot and embedding input, one and two layers.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors } from '../../src/engine/util/safetensors';

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/cli.js');

describe('export to the standard ONNX LSTM operator', () => {
  for (const name of ['lm1_T35', 'lm2_T35', 'lm_embed']) {
    it(`${name}: logits give PyTorch's loss`, async () => {
      const g = readSafetensors(path.join(ROOT, 'test/fixtures/golden', `${name}.safetensors`));
      const hidden: number[] = JSON.parse(g.metadata.hidden);
      const E = Number(g.metadata.embedding);
      const V = Number(g.metadata.vocab);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-export-'));
      writeSafetensors(path.join(dir, 'w.safetensors'), Object.fromEntries(Object.entries(g.tensors).filter(([k]) => /^(lstm|fc|embedding)\./.test(k))));
      fs.writeFileSync(path.join(dir, 'c.txt'), 'unused');
      fs.writeFileSync(path.join(dir, 'm.gatelab.yaml'), `name: m\ndata: { source: c.txt }\nmodel:\n  embedding: ${E}\n  layers: [${hidden.map((h) => `{ hidden: ${h} }`).join(', ')}]\n`);
      const r = spawnSync(process.execPath, [CLI, 'export', 'm.gatelab.yaml', '--init', 'w.safetensors', '--onnx', 'm.onnx'], { cwd: dir, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const s = await ort.InferenceSession.create(path.join(dir, 'm.onnx'));
      const [B, T] = g.tensors.x.shape;
      const x = g.tensors.x.data as BigInt64Array;
      const y = g.tensors.y.data as BigInt64Array;
      const tokens = new BigInt64Array(T * B);
      for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) tokens[t * B + b] = x[b * T + t];
      const out = await s.run({ tokens: new ort.Tensor('int64', tokens, [T, B]) });
      expect(out.logits.dims).toEqual([T, B, V]);
      const logits = out.logits.data as Float32Array;
      let loss = 0;
      for (let t = 0; t < T; t++)
        for (let b = 0; b < B; b++) {
          const row = logits.subarray((t * B + b) * V, (t * B + b + 1) * V);
          const m = Math.max(...row);
          const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
          loss += lse - row[Number(y[b * T + t])];
        }
      loss /= T * B;
      const want = (g.tensors.loss.data as Float64Array)[0];
      expect(Math.abs(loss - want) / want).toBeLessThan(1e-5);
      expect(s.outputNames).toEqual(['logits', ...hidden.flatMap((_, k) => [`h.l${k}`, `c.l${k}`])]);
      await s.release();
    });
  }
});
