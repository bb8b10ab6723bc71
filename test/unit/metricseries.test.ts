// The dashboard's host-side series: metrics.jsonl (and the trainer's steps.bin) read in chunks into
// columns, refreshed as the trainer appends, windows of min/max buckets with the smoothed loss over
// the whole series, and a real run's two files agreeing (also after a resume rewrote them).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MetricsCache, RunSeries, snapshotSteps, windowAnswer, WHOLE_SERIES_LIMIT } from '../../src/host/metricseries';
import { appendSteps } from '../../src/engine/train/runrecord';
import { emaDebiased } from '../../webview/dashboard/chartdata';
import { runTraining } from '../../src/engine/train/loop';
import { CASES, caseDir } from './taskcases';

function runDir(lines: string[], withBin: boolean, end = '\n'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-series-'));
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.join('\n') + end);
  if (withBin) {
    const rows = lines.map((l) => { try { return JSON.parse(l); } catch { return undefined; } }).filter((m) => m && 'loss' in m);
    appendSteps(path.join(dir, 'steps.bin'), rows.map((m) => ({ step: m.step, loss: m.loss ?? NaN, gradNorm: m.gradNorm ?? NaN, lr: m.lr ?? NaN, time: m.time ?? NaN })));
  }
  return dir;
}

const stepLine = (i: number, loss: number | null = Math.sin(i) + 2) => JSON.stringify({ step: i, epoch: 1, loss, gradNorm: i / 10, lr: 0.1, time: i / 100 });

describe('a run\'s step series on the host', () => {
  for (const withBin of [false, true]) {
    it(`reads steps and epochs${withBin ? ' (steps from steps.bin)' : ''}: a failed step's null loss is NaN, a torn last line waits`, async () => {
      const lines = [stepLine(1), stepLine(2), JSON.stringify({ epoch: 1, step: 2, trainLoss: 2.5, validLoss: 2.1 }), JSON.stringify({ step: 3, epoch: 2, loss: null, gradNorm: null, error: 'non-finite' }), '{"step":4,"ep'];
      const dir = runDir(lines, withBin, ''); // the last line is torn
      const s = new RunSeries(dir);
      await s.refresh();
      expect(Array.from(s.column('step'))).toEqual([1, 2, 3]);
      expect(Array.from(s.column('loss')).map((v) => (Number.isNaN(v) ? 'NaN' : v))).toEqual([Math.sin(1) + 2, Math.sin(2) + 2, 'NaN']);
      expect(s.epochs).toEqual([{ epoch: 1, step: 2, trainLoss: 2.5, validLoss: 2.1 }]);
      // the trainer completes the torn line and appends more
      fs.appendFileSync(path.join(dir, 'metrics.jsonl'), 'och":2,"loss":1.5,"gradNorm":0.4,"lr":0.1,"time":0.04}\n' + stepLine(5) + '\n');
      if (withBin) appendSteps(path.join(dir, 'steps.bin'), [{ step: 4, loss: 1.5, gradNorm: 0.4, lr: 0.1, time: 0.04 }, { step: 5, loss: Math.sin(5) + 2, gradNorm: 0.5, lr: 0.1, time: 0.05 }]);
      await s.refresh();
      expect(Array.from(s.column('step'))).toEqual([1, 2, 3, 4, 5]);
      expect(s.column('loss')[3]).toBe(1.5);
      // a rewritten (shorter) record is read again from the start
      fs.writeFileSync(path.join(dir, 'metrics.jsonl'), stepLine(1) + '\n');
      if (withBin) {
        fs.rmSync(path.join(dir, 'steps.bin'));
        appendSteps(path.join(dir, 'steps.bin'), [{ step: 1, loss: Math.sin(1) + 2, gradNorm: 0.1, lr: 0.1, time: 0.01 }]);
      }
      await s.refresh();
      expect(Array.from(s.column('step'))).toEqual([1]);
      expect(s.epochs).toEqual([]);
    });
  }

  it('windows: every point when few; else each bucket\'s extremes of the loss and of the smoothed loss, smoothed over all steps', async () => {
    const n = 50_000;
    const lines = Array.from({ length: n }, (_, i) => stepLine(i + 1, i === 31_337 ? 40 : 1 + ((i * 7919) % 101) / 100));
    const s = new RunSeries(runDir(lines, true));
    await s.refresh();
    const all = s.window({ buckets: 5000, smoothing: 0.9, x0: 100, x1: 200 });
    expect(all.steps.step).toEqual(Array.from({ length: 103 }, (_, i) => 99 + i)); // the range and one neighbour each side
    const w = s.window({ buckets: 300, smoothing: 0.9 });
    expect(w.steps.step.length).toBeLessThanOrEqual(4 * 300);
    expect(w.steps.loss).toContain(40); // the spike survives
    const full = emaDebiased(s.column('loss'), 0.9);
    w.steps.step.forEach((st, k) => expect(w.smoothed[k]).toBe(full[st - 1]));
    expect(w.extent).toEqual([1, n]);
    // the snapshot of a long run is a window; a short run is posted whole
    const snap = snapshotSteps(s, { buckets: 300, smoothing: 0.9 });
    expect(snap.stepsTotal).toBe(n);
    expect(snap.steps.step.length).toBe(w.steps.step.length);
    const short = new RunSeries(runDir(lines.slice(0, 100), false));
    await short.refresh();
    expect(snapshotSteps(short).steps.step.length).toBe(100);
    expect(snapshotSteps(short).stepsTotal).toBeUndefined();
    expect(WHOLE_SERIES_LIMIT).toBeGreaterThan(100);
    // a request's bounds are clamped
    const a = windowAnswer(s, { type: 'series/window', requestId: 3, buckets: 1e9, smoothing: 7 });
    expect(a.requestId).toBe(3);
    expect(a.steps.step.length).toBeLessThanOrEqual(4 * 4096);
  });

  it('a real run writes steps.bin with the step lines of metrics.jsonl, and a resume rewrites both alike', async () => {
    const c = CASES['language-model'];
    const dir = caseDir(c, '{ batchSize: 8, stepsPerRun: 4, steps: 30, seed: 3 }');
    const run = path.join(dir, 'runs', 'r');
    let step = 0;
    const job = { modelFile: path.join(dir, 'm.gatelab.yaml'), runDir: run, progressEveryMs: 0, gatesEveryMs: 0, sampleAtEnd: false };
    await runTraining(job, { emit: (m) => m.type === 'progress' && (step = m.step), shouldStop: () => step >= 12 });
    const cache = new MetricsCache();
    const both = async () => {
      const fromBin = await cache.get(run);
      fs.renameSync(path.join(run, 'steps.bin'), path.join(run, 'steps.bak'));
      const fromJson = new RunSeries(run);
      await fromJson.refresh();
      fs.renameSync(path.join(run, 'steps.bak'), path.join(run, 'steps.bin'));
      return [fromBin, fromJson];
    };
    let [a, b] = await both();
    expect(Array.from(a.column('step'))).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    for (const col of ['step', 'loss', 'gradNorm', 'lr', 'time'] as const) expect(Array.from(a.column(col))).toEqual(Array.from(b.column(col)));
    await runTraining({ ...job, resume: run }, { emit: () => undefined, shouldStop: () => false });
    cache.forget(run);
    [a, b] = await both();
    expect(a.length).toBe(30);
    for (const col of ['step', 'loss', 'gradNorm', 'lr', 'time'] as const) expect(Array.from(a.column(col))).toEqual(Array.from(b.column(col)));
  });
});
