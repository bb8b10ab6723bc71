// task: copy — the generator, and learning beats the memoryless baseline on a short delay.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { copyBatch } from '../../src/engine/tasks/copy';
import { Rng } from '../../src/engine/util/rng';

describe('copy task', () => {
  it('symbols, delay with the delimiter last, blanks; targets repeat the symbols at the end', () => {
    const [S, D, B] = [3, 4, 5];
    const { x, y, T } = copyBatch(new Rng(2), S, D, B);
    expect(T).toBe(10);
    for (let b = 0; b < B; b++) {
      const xs = Array.from({ length: T }, (_, t) => x[t * B + b]);
      const ys = Array.from({ length: T }, (_, t) => y[t * B + b]);
      expect(xs.slice(0, S).every((v) => v >= 1 && v <= 8)).toBe(true);
      expect(xs.slice(S)).toEqual([0, 0, 0, 9, 0, 0, 0]);
      expect(ys.slice(0, S + D)).toEqual(new Array(S + D).fill(0));
      expect(ys.slice(S + D)).toEqual(xs.slice(0, S));
    }
  });

  it('a short delay is learned well below the memoryless baseline', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-copy-'));
    fs.writeFileSync(path.join(dir, 'c.gatelab.yaml'), 'name: c\ntask: copy\ndata: { copyLength: 3, sequenceLength: 3 }\nmodel: { layers: [{ hidden: 64 }] }\ntrain: { steps: 800, batchSize: 32, optimizer: { type: adam, learningRate: 0.01 }, seed: 1 }\n');
    const r = spawnSync(process.execPath, [path.resolve(__dirname, '../../dist/cli.js'), 'train', 'c.gatelab.yaml', '--quiet', '--no-record'], { cwd: dir, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.baselineLoss).toBeCloseTo((3 * Math.log(8)) / 9, 9);
    expect(s.validLoss).toBeLessThan(s.baselineLoss / 2);
    expect(s.accuracy).toBeGreaterThan(0.5);
  });
});
