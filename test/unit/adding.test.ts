// task: adding — the generator, and an LSTM that solves T = 50.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { addingBatch } from '../../src/engine/tasks/adding';
import { Rng } from '../../src/engine/util/rng';

const ROOT = path.resolve(__dirname, '../..');
const execFileP = promisify(execFile);

describe('adding problem', () => {
  it('each sequence marks exactly two values, one in each half; the target is their sum', () => {
    const [T, B] = [10, 50];
    const { x, y } = addingBatch(new Rng(1), T, B);
    for (let b = 0; b < B; b++) {
      const marked = Array.from({ length: T }, (_, t) => t).filter((t) => x[(t * B + b) * 2 + 1] === 1);
      expect(marked).toHaveLength(2);
      expect(marked[0]).toBeLessThan(T / 2);
      expect(marked[1]).toBeGreaterThanOrEqual(T / 2);
      expect(y[b]).toBeCloseTo(x[(marked[0] * B + b) * 2] + x[(marked[1] * B + b) * 2], 6);
    }
  });

  it('T = 50: test MSE ≤ 0.01 (always answering 1.0 gives about 0.167)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-add-'));
    fs.writeFileSync(
      path.join(dir, 'a.gatelab.yaml'),
      fs.readFileSync(path.join(ROOT, 'examples/adding.gatelab.yaml'), 'utf8').replace('steps: 3000', 'steps: 1500'),
    );
    // (asynchronously: a long synchronous child would starve the test worker's RPC)
    const r = await execFileP(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'train', 'a.gatelab.yaml', '--quiet'], { cwd: dir, encoding: 'utf8' });
    const s = JSON.parse(r.stdout);
    expect(s.baselineMse).toBeGreaterThan(0.15);
    expect(s.baselineMse).toBeLessThan(0.19);
    expect(s.mse).toBeLessThanOrEqual(0.01);
    // the gate views of a validation sequence, with the two marked steps labelled
    const run = fs.readdirSync(path.join(dir, '.gatelab/runs'))[0];
    const g = JSON.parse(fs.readFileSync(path.join(dir, '.gatelab/runs', run, 'gates.json'), 'utf8'));
    expect(g.tokens).toHaveLength(50);
    expect(g.tokens.filter((t: string) => t.startsWith('●'))).toHaveLength(2);
    expect(g.editable).toBe(false);
    expect(g.layers[0].values.f).toHaveLength(50 * 64);
  });
});
