import { it } from 'vitest';
import * as fs from 'node:fs';
import { RunSeries } from '../../src/host/metricseries';
it('speed', async () => {
  fs.mkdirSync('/tmp/m1run', { recursive: true });
  if (!fs.existsSync('/tmp/m1run/metrics.jsonl')) fs.copyFileSync('/tmp/m1.jsonl', '/tmp/m1run/metrics.jsonl');
  const t = Date.now();
  const s = new RunSeries('/tmp/m1run');
  await s.refresh();
  const t1 = Date.now();
  const w = s.window({ buckets: 1200, smoothing: 0.6 });
  console.log('n', s.length, 'read ms', t1 - t, 'window ms', Date.now() - t1, 'points', w.steps.step.length, 'bytes', JSON.stringify(w).length);
});
