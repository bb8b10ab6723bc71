// The change-point task (src/engine/tasks/changePoint.ts): the sequences and baselines it generates,
// its gradients (`gatelab grad`'s plan) against central differences, and an LSTM that tracks the
// jumping mean far better than either baseline.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { changePointBaselines, changePointBatch, changePointParams } from '../../src/engine/tasks/changePoint';
import { TASKS } from '../../src/engine/tasks/registry';
import { loadModelFile } from '../../src/engine/config/load';
import { initParams } from '../../src/engine/nn/init';
import { loadCheckpoint, saveCheckpoint } from '../../src/engine/train/checkpoint';
import { Rng } from '../../src/engine/util/rng';
import { fdAll } from '../reference/fd';

const CLI = path.resolve(__dirname, '../../dist/cli.js');

describe('change-point task', () => {
  it('a piecewise-constant mean that jumps at the given rate, plus noise of the given size; the baselines', () => {
    const [T, B, rate, noise] = [200, 100, 0.05, 0.5];
    const v = changePointBatch(new Rng(5), T, B, rate, noise);
    let jumps = 0;
    let se = 0;
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++) {
        if (t > 0 && v.y[t * B + b] !== v.y[(t - 1) * B + b]) jumps++;
        se += (v.x[t * B + b] - v.y[t * B + b]) ** 2;
      }
    expect(jumps / (B * (T - 1))).toBeCloseTo(rate, 1);
    expect(Math.sqrt(se / (T * B))).toBeCloseTo(noise, 1);
    const base = changePointBaselines(v, T, B);
    // the last value keeps all the noise; the mean of everything so far is wrong after every jump
    expect(base.lastValueMse).toBeCloseTo(noise * noise, 1);
    expect(base.runningMeanMse).toBeGreaterThan(base.lastValueMse);
  });

  it('`gatelab grad`: the per-step MSE and its gradients match central differences (float64)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-cp-'));
    fs.writeFileSync(path.join(dir, 'cp.gatelab.yaml'), 'name: cp\ntask: change-point\nmodel: { layers: [{ type: gru, hidden: 3 }, { type: lstm, hidden: 2 }] }\n');
    const cfg = loadModelFile(path.join(dir, 'cp.gatelab.yaml'));
    const params = changePointParams({ hidden: [3, 2], gates: [{ kind: 'sigmoid', cell: 'gru' }, { kind: 'sigmoid' }] });
    saveCheckpoint(path.join(dir, 'w.safetensors'), { params: initParams(params, cfg.model.layers, 2, 'float64'), metadata: {} });
    const rng = new Rng(9);
    const batch = { inputs: [0, 1, 2].map(() => Array.from({ length: 6 }, () => rng.normal())), targets: [0, 1, 2].map(() => Array.from({ length: 6 }, () => rng.normal())) };
    fs.writeFileSync(path.join(dir, 'b.json'), JSON.stringify(batch));
    const plan = TASKS['change-point'].grad!(cfg, loadCheckpoint(path.join(dir, 'w.safetensors')), 'w.safetensors', path.join(dir, 'b.json'));
    expect(plan.shape).toBe('3x6');
    const s = await ort.InferenceSession.create(plan.program.graph.encode(), { logSeverityLevel: 3 });
    const ck = loadCheckpoint(path.join(dir, 'w.safetensors'));
    const feeds: Record<string, ort.Tensor> = { ...plan.feeds };
    for (const p of plan.params) feeds[`p.${p.name}`] = new ort.Tensor('float64', Float64Array.from(ck.params.get(p.name)!.data), p.shape);
    await fdAll(s, feeds, plan.params, 'change-point');
    await s.release();
    // through the command line: the same loss
    const out = spawnSync(process.execPath, [CLI, 'grad', 'cp.gatelab.yaml', '--init', 'w.safetensors', '--batch', 'b.json', '--out', 'g.safetensors'], { cwd: dir, encoding: 'utf8' });
    expect(out.status, out.stderr).toBe(0);
    // a batch whose targets miss a step is an error naming its place
    fs.writeFileSync(path.join(dir, 'b.json'), JSON.stringify({ ...batch, targets: [batch.targets[0].slice(1), ...batch.targets.slice(1)] }));
    const bad = spawnSync(process.execPath, [CLI, 'grad', 'cp.gatelab.yaml', '--init', 'w.safetensors', '--batch', 'b.json', '--out', 'g.safetensors'], { cwd: dir, encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/targets\[0\]/);
  });

  it('an LSTM tracks the jumping mean: validation MSE well below both baselines', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-cp-'));
    fs.writeFileSync(
      path.join(dir, 'cp.gatelab.yaml'),
      'name: cp\ntask: change-point\ndata: { sequenceLength: 50, rate: 0.05, noise: 0.5 }\nmodel: { layers: [{ type: lstm, hidden: 16 }] }\ntrain: { steps: 1200, batchSize: 32, evaluateEvery: 400, seed: 1, clipNorm: 1, optimizer: { type: adam, learningRate: 0.01 } }\n',
    );
    const r = spawnSync(process.execPath, [CLI, 'train', 'cp.gatelab.yaml', '--no-record', '--quiet'], { cwd: dir, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.mse).toBeLessThan(0.6 * s.lastValueMse);
    expect(s.lastValueMse).toBeLessThan(s.runningMeanMse);
  });
});

describe('change-point: gatelab probe --input', () => {
  it('values from a CSV file or a list: the last prediction back through them, with the forget gate at every step', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-cp-probe-'));
    fs.writeFileSync(path.join(dir, 'cp.gatelab.yaml'), 'name: cp\ntask: change-point\ndata: { sequenceLength: 20 }\nmodel: { layers: [{ type: lstm, hidden: 6 }] }\ntrain: { steps: 20, batchSize: 8, evaluateEvery: 10 }\n');
    const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8' });
    expect(cli(['train', 'cp.gatelab.yaml', '--quiet', '--no-record', '--save', 'w.safetensors']).status).toBe(0);
    fs.writeFileSync(path.join(dir, 'v.csv'), 'value\n0.1\n0.2\n1.5\n1.4\n');
    const a = JSON.parse(cli(['probe', 'cp.gatelab.yaml', '--init', 'w.safetensors', '--input', 'v.csv', '--json']).stdout);
    const b = JSON.parse(cli(['probe', 'cp.gatelab.yaml', '--init', 'w.safetensors', '--input', '0.1, 0.2, 1.5, 1.4', '--json']).stdout);
    expect(a).toEqual(b);
    expect(a.tokens).toEqual(['0.1', '0.2', '1.5', '1.4']);
    expect(a.connectivity[0]).toHaveLength(4);
    expect(a.layers[0].values.f).toHaveLength(4 * 6);
    expect(cli(['probe', 'cp.gatelab.yaml', '--init', 'w.safetensors', '--input', 'abc']).stderr).toMatch(/--input needs at least two numbers/);
  });
});

describe('adding: gatelab probe --input', () => {
  it('values with the two to add marked *: the predicted sum back through the sequence', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-add-probe-'));
    fs.writeFileSync(path.join(dir, 'a.gatelab.yaml'), 'name: a\ntask: adding\ndata: { sequenceLength: 8 }\nmodel: { layers: [{ type: gru, hidden: 5 }] }\ntrain: { steps: 12, batchSize: 8, evaluateEvery: 12 }\n');
    const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8' });
    expect(cli(['train', 'a.gatelab.yaml', '--quiet', '--no-record', '--save', 'w.safetensors']).status).toBe(0);
    const r = cli(['probe', 'a.gatelab.yaml', '--init', 'w.safetensors', '--input', '0.3 0.5* 0.1 0.8* 0.2', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.tokens).toEqual(['0.3', '0.5*', '0.1', '0.8*', '0.2']);
    expect(out.connectivity[0]).toHaveLength(5);
    expect(out.gradientFlow[0].c).toBeUndefined();
    expect(cli(['probe', 'a.gatelab.yaml', '--init', 'w.safetensors', '--input', '0.3 x*']).stderr).toMatch(/--input: "x\*" \(item 2\) is not a number/);
  });
});
