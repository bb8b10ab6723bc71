// Sweeps (src/engine/sweep.ts, `gatelab sweep`): the grid of settings, each a recorded run of its
// variant, the groups' means and standard deviations over the seeds, and the model-file checks.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sweepGroups, sweepSettings } from '../../src/engine/sweep';
import { validateModelText } from '../../src/engine/config/load';
import { readRunRecord } from '../../src/engine/train/runrecord';

const CLI = path.resolve(__dirname, '../../dist/cli.js');
const MODEL = 'name: add\ntask: adding\ndata: { sequenceLength: 8 }\nmodel: { layers: [{ type: lstm, hidden: 6 }] }\ntrain: { steps: 24, batchSize: 8, evaluateEvery: 12, optimizer: { type: adam, learningRate: 0.01 } }\n';

describe('sweeps', () => {
  it('the grid: every combination, the first key slowest; groups without the seed, mean and sample std', () => {
    expect(sweepSettings({ a: [0, 1], 'train.seed': [1, 2, 3] })).toEqual([
      { a: 0, 'train.seed': 1 }, { a: 0, 'train.seed': 2 }, { a: 0, 'train.seed': 3 },
      { a: 1, 'train.seed': 1 }, { a: 1, 'train.seed': 2 }, { a: 1, 'train.seed': 3 },
    ]);
    const g = sweepGroups(
      [
        { setting: { a: 0, 'train.seed': 1 }, value: 1 },
        { setting: { a: 0, 'train.seed': 2 }, value: 3 },
        { setting: { a: 1, 'train.seed': 1 }, value: 5 },
        { setting: { a: 1, 'train.seed': 2 }, value: undefined },
      ],
      'mse',
    );
    expect(g).toEqual([
      { setting: { a: 0 }, runs: 2, metric: 'mse', mean: 2, std: Math.SQRT2 },
      { setting: { a: 1 }, runs: 2, metric: 'mse', mean: 5, std: 0 },
    ]);
  });

  it('`gatelab sweep`: a recorded run per setting (its variant and setting in the record), then the table and one JSON line', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-sweep-'));
    fs.writeFileSync(path.join(dir, 'a.gatelab.yaml'), MODEL + 'sweep:\n  model.layers.0.hidden: [4, 6]\n  train.seed: [1, 2, 3]\n');
    const r = spawnSync(process.execPath, [CLI, 'sweep', 'a.gatelab.yaml', '--quiet'], { cwd: dir, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const out = JSON.parse(lines[lines.length - 1]);
    expect(out).toMatchObject({ sweep: 'add', runs: 6 });
    expect(out.groups.map((g: { setting: unknown; runs: number; metric: string }) => [g.setting, g.runs, g.metric])).toEqual([
      [{ 'model.layers.0.hidden': 4 }, 3, 'mse'],
      [{ 'model.layers.0.hidden': 6 }, 3, 'mse'],
    ]);
    expect(lines[0].split(/\s{2,}/)).toEqual(['model.layers.0.hidden', 'runs', 'mse (mean ± std)']);
    expect(lines[2]).toMatch(/^4\s+3\s+\d\.\d+ ± \d\.\d+/);
    const runsDir = path.join(dir, '.gatelab', 'runs');
    const records = fs.readdirSync(runsDir).map((d) => readRunRecord(path.join(runsDir, d))!);
    expect(records).toHaveLength(6);
    expect(records.every((x) => x.status === 'done' && x.sweep?.name === 'add')).toBe(true);
    const settings = records.map((x) => x.sweep!.setting).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    expect(settings[0]).toEqual({ 'model.layers.0.hidden': 4, 'train.seed': 1 });
    // each run trained its variant: the snapshot has the setting and no sweep; the mean of a group is its runs'
    for (const x of records) {
      const snap = fs.readFileSync(path.join(runsDir, x.id, 'model.gatelab.yaml'), 'utf8');
      expect(snap).not.toMatch(/sweep/);
      expect(snap).toContain(`hidden: ${x.sweep!.setting['model.layers.0.hidden']}`);
      expect(snap).toContain(`seed: ${x.sweep!.setting['train.seed']}`);
    }
    const four = records.filter((x) => x.sweep!.setting['model.layers.0.hidden'] === 4).map((x) => x.summary!.mse!);
    expect(out.groups[0].mean).toBeCloseTo(four.reduce((a, b) => a + b, 0) / 3, 12);
  });

  it('a sweep key that is not a settable key, a value that is not a list, and an impossible value are errors at their place', () => {
    const problems = (sweep: string) => validateModelText(MODEL + sweep, '/ws/a.gatelab.yaml').map((e) => ({ line: e.where.line, key: e.where.key, message: e.message, hint: e.hint }));
    expect(problems('sweep:\n  model.layers.0.hiden: [4]\n')).toEqual([{ line: 7, key: 'sweep.model.layers.0.hiden', message: 'sweep: "model.layers.0.hiden" is not a key a sweep can set', hint: 'did you mean "model.layers.0.hidden"?' }]);
    expect(problems('sweep:\n  train.seed: 3\n')).toEqual([{ line: 7, key: 'sweep.train.seed', message: 'sweep: train.seed needs a list of the values to try', hint: 'e.g. train.seed: [1, 2]' }]);
    expect(problems('sweep:\n  model: [1]\n')[0].message).toBe('sweep: "model" is not a key a sweep can set');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-sweep-'));
    fs.writeFileSync(path.join(dir, 'a.gatelab.yaml'), MODEL + 'sweep:\n  model.layers.0.hidden: [4, -1]\n');
    const r = spawnSync(process.execPath, [CLI, 'sweep', 'a.gatelab.yaml'], { cwd: dir, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/a\.gatelab\.yaml:7:\d+: sweep\.model\.layers\.0\.hidden: sweep: model\.layers\.0\.hidden: -1 does not make a valid model/);
    expect(fs.existsSync(path.join(dir, '.gatelab', 'runs')), 'nothing trained before every variant was checked').toBe(false);
    fs.writeFileSync(path.join(dir, 'b.gatelab.yaml'), MODEL);
    const none = spawnSync(process.execPath, [CLI, 'sweep', 'b.gatelab.yaml'], { cwd: dir, encoding: 'utf8' });
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/model "add" has no sweep/);
  });
});
