// Training features: learning-rate schedules, initialisers, early stopping that restores the best
// weights, and seeded reproducibility.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { learningRateAt } from '../../src/engine/train/schedule';
import { initParams, orthogonal } from '../../src/engine/nn/init';
import { lmParams } from '../../src/engine/nn/lm';
import { Rng } from '../../src/engine/util/rng';
import { readSafetensors } from '../../src/engine/util/safetensors';

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/cli.js');
const sch = (o: object) => ({ type: 'constant' as const, warmupSteps: 0, stepSize: 1000, gamma: 0.1, minLearningRate: 0, ...o });

describe('learning-rate schedules', () => {
  it('warm-up, step decay and cosine annealing as PyTorch defines them', () => {
    expect([0, 1, 3, 4, 100].map((s) => learningRateAt(s, 200, 1, sch({ warmupSteps: 4 })))).toEqual([0.25, 0.5, 1, 1, 1]);
    expect([0, 9, 10, 25].map((s) => learningRateAt(s, 100, 2, sch({ type: 'step', stepSize: 10, gamma: 0.5 })))).toEqual([2, 2, 1, 0.5]);
    const cos = (s: number) => learningRateAt(s, 110, 1, sch({ type: 'cosine', warmupSteps: 10, minLearningRate: 0.1 }));
    expect(cos(10)).toBeCloseTo(1, 12);
    expect(cos(60)).toBeCloseTo(0.55, 12);
    expect(cos(110)).toBeCloseTo(0.1, 12);
  });
});

describe('initialisers', () => {
  it('orthogonal blocks are orthogonal; xavier and normal have their ranges; biases keep forgetBias', () => {
    const q = orthogonal(16, new Rng(1));
    for (let i = 0; i < 16; i++)
      for (let j = 0; j < 16; j++) {
        let d = 0;
        for (let k = 0; k < 16; k++) d += q[i * 16 + k] * q[j * 16 + k];
        expect(d).toBeCloseTo(i === j ? 1 : 0, 10);
      }
    const H = 8;
    const spec = { vocab: 5, embedding: 0, hidden: [H], dtype: 'float64' as const };
    const p = initParams(lmParams(spec), [{ hidden: H, forgetBias: 1 }], 3, 'float64', { input: 'xavier', recurrent: 'orthogonal' });
    const whh = p.get('lstm.weight_hh_l0')!.data;
    for (let b = 0; b < 4; b++) {
      let d = 0;
      for (let k = 0; k < H; k++) d += whh[b * H * H + k] * whh[b * H * H + k];
      expect(d).toBeCloseTo(1, 6); // each row of each gate block has unit norm
    }
    const k = Math.sqrt(6 / (5 + H));
    expect(Math.max(...Array.from(p.get('lstm.weight_ih_l0')!.data, Math.abs))).toBeLessThanOrEqual(k);
    const n = initParams(lmParams(spec), [{ hidden: H, forgetBias: 0 }], 3, 'float64', { input: 'normal', recurrent: 'normal' }).get('lstm.weight_hh_l0')!.data;
    const std = Math.sqrt(Array.from(n).reduce((a, v) => a + v * v, 0) / n.length);
    expect(std).toBeGreaterThan(0.007);
    expect(std).toBeLessThan(0.013);
    // forget-gate block (internal order i, f, o, g) of bias_ih is shifted by forgetBias
    const bias = p.get('lstm.bias_ih_l0')!.data;
    expect(Math.min(...Array.from(bias.subarray(H, 2 * H)))).toBeGreaterThan(1 - 1 / Math.sqrt(H) - 1e-12);
  });
});

function train(dir: string, args: string[] = []) {
  const r = spawnSync(process.execPath, [CLI, 'train', 'm.gatelab.yaml', '--quiet', ...args], { cwd: dir, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe('runs', () => {
  it('the same seed gives the same losses, step for step', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-seed-'));
    fs.writeFileSync(path.join(dir, 'c.txt'), fs.readFileSync(path.resolve(ROOT, 'examples/data/timemachine.txt'), 'utf8').slice(0, 20000));
    fs.writeFileSync(path.join(dir, 'm.gatelab.yaml'), 'name: m\ndata: { source: c.txt, preprocess: letters, sequenceLength: 10, partition: random }\nmodel: { layers: [{ hidden: 16 }], init: { recurrent: orthogonal } }\ntrain: { steps: 40, batchSize: 8, seed: 5, optimizer: { type: adamw }, schedule: { type: cosine, warmupSteps: 5 } }\n');
    train(dir, ['--metrics', 'a.jsonl', '--no-record']);
    train(dir, ['--metrics', 'b.jsonl', '--no-record']);
    const losses = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => 'loss' in m).map((m) => [m.loss, m.lr]);
    expect(losses('a.jsonl')).toEqual(losses('b.jsonl'));
    const lrs = losses('a.jsonl').map(([, lr]) => lr);
    expect(lrs[0]).toBeCloseTo(0.001 / 5, 9);
    expect(lrs[39]).toBeLessThan(lrs[10]);
  });

  it('early stopping ends the run when validation stops improving and restores the best weights', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-early-'));
    // the training text repeats one sentence; the held-out tail is different text, so once the
    // model memorises the sentence the validation loss rises
    const train_ = 'the quick brown fox jumps over the lazy dog '.repeat(300);
    const tail = fs.readFileSync(path.resolve(ROOT, 'examples/data/timemachine.txt'), 'utf8').slice(5000, 6500).toLowerCase().replace(/[^a-z ]+/g, ' ');
    fs.writeFileSync(path.join(dir, 'c.txt'), train_ + tail);
    fs.writeFileSync(path.join(dir, 'm.gatelab.yaml'), 'name: m\ndata: { source: c.txt, sequenceLength: 20, validation: 0.1 }\nmodel: { layers: [{ hidden: 64 }] }\ntrain: { epochs: 60, batchSize: 8, seed: 1, optimizer: { type: adam, learningRate: 0.01 }, earlyStopping: { patience: 2 } }\n');
    const s = train(dir, ['--save', 'final.safetensors']);
    expect(s.stoppedEarly).toBe(true);
    expect(s.epochs).toBeLessThan(60);
    expect(s.bestEpoch).toBeLessThanOrEqual(s.epochs - 2);
    const run = fs.readdirSync(path.join(dir, '.gatelab/runs'))[0];
    const best = readSafetensors(path.join(dir, '.gatelab/runs', run, 'best.safetensors'));
    const final = readSafetensors(path.join(dir, 'final.safetensors'));
    expect(Array.from(final.tensors['fc.weight'].data as Float32Array)).toEqual(Array.from(best.tensors['fc.weight'].data as Float32Array));
    expect(Number(best.metadata['gatelab.validLoss'])).toBeCloseTo(s.validLoss, 5);
  });
});

describe('dropout between layers and before the output layer (language models)', () => {
  it('gradients with a fixed mask match finite differences (float64)', async () => {
    const ort = await import('onnxruntime-node');
    const { buildGradProgram } = await import('../../src/engine/train/program');
    const lm = { vocab: 5, embedding: 3, hidden: [4, 3], dtype: 'float64' as const };
    const [B, T] = [2, 5];
    const prog = buildGradProgram({ lm, B, T, dropout: true });
    const s = await ort.InferenceSession.create(prog.graph.encode(), { logSeverityLevel: 3 });
    const rng = new Rng(4);
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
      x: new ort.Tensor('int64', BigInt64Array.from({ length: T * B }, () => BigInt(rng.int(0, 4))), [T, B]),
      y: new ort.Tensor('int64', BigInt64Array.from({ length: T * B }, () => BigInt(rng.int(0, 4))), [T, B]),
    };
    lm.hidden.forEach((H, k) => {
      feeds[`h.l${k}`] = new ort.Tensor('float64', new Float64Array(B * H), [B, H]);
      feeds[`c.l${k}`] = new ort.Tensor('float64', new Float64Array(B * H), [B, H]);
      feeds[`drop.l${k}`] = new ort.Tensor('float64', Float64Array.from({ length: T * B * H }, () => (rng.next() < 0.4 ? 0 : 1 / 0.6)), [T, B, H]);
    });
    for (const p of prog.params) feeds[`p.${p.name}`] = new ort.Tensor('float64', Float64Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-0.7, 0.7)), p.shape);
    const r = await s.run(feeds);
    const loss = async () => ((await s.run(feeds)).loss.data as Float64Array)[0];
    for (const p of prog.params) {
      const t = feeds[`p.${p.name}`].data as Float64Array;
      const d = r[`d.${p.name}`].data as Float64Array;
      for (let i = 0; i < t.length; i++) {
        const old = t[i];
        t[i] = old + 1e-6;
        const up = await loss();
        t[i] = old - 1e-6;
        const down = await loss();
        t[i] = old;
        const fd = (up - down) / 2e-6;
        expect(Math.abs(fd - d[i]), `${p.name}[${i}]`).toBeLessThanOrEqual(1e-8 + 1e-5 * Math.abs(fd));
      }
    }
    await s.release();
  });

  it('a word model trains with dropout, reproducibly; validation runs without it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-drop-'));
    fs.writeFileSync(path.join(dir, 'c.txt'), fs.readFileSync(path.resolve(ROOT, 'examples/data/timemachine.txt'), 'utf8').slice(0, 40000));
    fs.writeFileSync(path.join(dir, 'm.gatelab.yaml'), 'name: m\ndata: { source: c.txt, tokens: word, preprocess: letters, sequenceLength: 10 }\nmodel: { embedding: 16, layers: [{ hidden: 32 }, { hidden: 32 }], dropout: 0.3 }\ntrain: { steps: 60, batchSize: 8, optimizer: { type: adam, learningRate: 0.003 } }\n');
    const a = train(dir, ['--metrics', 'a.jsonl', '--no-record']);
    const b = train(dir, ['--metrics', 'b.jsonl', '--no-record']);
    expect(a.trainLoss).toBe(b.trainLoss);
    expect(typeof a.validLoss).toBe('number');
    const losses = fs.readFileSync(path.join(dir, 'a.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => 'loss' in m).map((m) => m.loss);
    expect(losses.slice(-10).reduce((x: number, y: number) => x + y, 0)).toBeLessThan(losses.slice(0, 10).reduce((x: number, y: number) => x + y, 0));
  });
});
