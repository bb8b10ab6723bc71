// The multivariate forecast of examples/beijing.gatelab.yaml against the same pipeline and model
// written in PyTorch (bench/torch_forecast.py: filling, one-hot, z-scoring, windows, nn.LSTM 32 +
// Linear, Adam, clipping): the same windows and persistence baseline exactly, and Gatelab's
// validation RMSE within 10% of PyTorch's after the same epochs with the same seed. Debian's
// python3-torch is installed when missing and possible (test/reference/ensure-torch.sh); where it
// cannot be, the test is skipped and says why.

import { spawnSync } from 'node:child_process';
import { runAsync } from '../reference/spawn';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '../..');
const torch = spawnSync('bash', [path.join(ROOT, 'test/reference/ensure-torch.sh')], { encoding: 'utf8' }).stdout.trim();
if (torch !== 'OK') console.warn(`torch-forecast.test.ts skipped: ${torch}`);

describe.skipIf(torch !== 'OK')('multivariate forecast: Gatelab against PyTorch', () => {
  it('Beijing PM2.5 (11 features, window 24): the same windows and baseline; validation RMSE within 10% of PyTorch\'s', async () => {
    const EPOCHS = 4;
    const py = await runAsync('/usr/bin/python3', [path.join(ROOT, 'bench/torch_forecast.py'), '--epochs', String(EPOCHS), '--seeds', '1']);
    expect(py.status, py.stderr).toBe(0);
    const t = JSON.parse(py.stdout.trim().split('\n').pop()!);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-torch-fc-'));
    const file = path.join(dir, 'beijing.gatelab.yaml');
    const text = fs.readFileSync(path.join(ROOT, 'examples/beijing.gatelab.yaml'), 'utf8');
    fs.writeFileSync(file, text.replace('seed: 42', 'seed: 1').replace('source: data/beijing-pm25.csv', `source: ${path.join(ROOT, 'examples/data/beijing-pm25.csv')}`));
    try {
      const g = await runAsync(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'train', file, '--epochs', String(EPOCHS), '--no-record', '--quiet']);
      expect(g.status, g.stderr).toBe(0);
      const r = JSON.parse(g.stdout.trim().split('\n').pop()!);
      expect(r.baselineRmse).toBeCloseTo(t.baselineRmse, 9);
      expect(t.trainWindows).toBe(35035);
      expect(t.validWindows).toBe(8765);
      expect(Math.abs(r.rmse - t.rmse) / t.rmse, `Gatelab RMSE ${r.rmse}, PyTorch ${t.rmse}`).toBeLessThan(0.1);
      expect(r.rmse).toBeLessThan(r.baselineRmse);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);
});
