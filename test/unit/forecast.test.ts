// task: forecast — CSV series, windows, transforms, baselines, gradients, bad input.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildForecastGradProgram, forecastParams } from '../../src/engine/train/forecast';
import { loadSeries } from '../../src/engine/data/series';
import { inverse } from '../../src/engine/tasks/forecast';
import { Rng } from '../../src/engine/util/rng';

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/cli.js');
const AIRLINE = path.resolve(ROOT, 'examples/data/airline-passengers.csv');

function run(dir: string, args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function model(dir: string, data: string, extra = ''): string {
  const f = path.join(dir, 'f.gatelab.yaml');
  fs.writeFileSync(f, `name: f\ntask: forecast\ndata:\n  source: ${data}\n  column: Passengers\n  window: 12\n  season: 12\n  transform: log-difference\n  validation: 0.1667\n${extra}model:\n  layers:\n    - { type: lstm, hidden: 32 }\ntrain:\n  epochs: 300\n  batchSize: 16\n  optimizer: { type: adam, learningRate: 0.01 }\n  seed: 42\n`);
  return f;
}

describe('forecast', () => {
  it('airline passengers, last 24 months held out: RMSE below the seasonal-naive forecast (season 12)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-fc-'));
    const r = run(dir, ['train', model(dir, AIRLINE), '--quiet', '--save', 'w.safetensors']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(Object.keys(s).slice(0, 8)).toEqual(['model', 'device', 'steps', 'trainLoss', 'validLoss', 'rmse', 'mae', 'baselineRmse']);
    expect(s.rmse).toBeLessThan(s.seasonalBaselineRmse);
    expect(s.rmse).toBeLessThan(s.baselineRmse);
    expect(s.mae).toBeLessThanOrEqual(s.rmse);
    // the baselines are the textbook ones: computed here independently
    const ys = fs.readFileSync(AIRLINE, 'utf8').trim().split('\n').slice(1).map((l) => Number(l.split(',')[1]));
    const held = ys.slice(120);
    const rm = (f: (i: number) => number) => Math.sqrt(held.reduce((a, y, k) => a + (f(120 + k) - y) ** 2, 0) / held.length);
    expect(s.seasonalBaselineRmse).toBeCloseTo(rm((i) => ys[i - 12]), 9);
    expect(s.baselineRmse).toBeCloseTo(rm((i) => ys[i - 1]), 9);
    // predict: the next 12 months after the series, autoregressively
    const p = run(dir, ['predict', 'f.gatelab.yaml', '--init', 'w.safetensors', '--input', AIRLINE, '--steps', '12']);
    expect(p.code, p.stderr).toBe(0);
    const f = JSON.parse(p.stdout);
    expect(f.forecast).toHaveLength(12);
    for (const v of f.forecast) expect(v).toBeGreaterThan(200);
    expect(f.after).toBe(432);
  });

  it('transforms map forecasts back to the series’ units', () => {
    const series = Float64Array.of(100, 110, 121);
    const s = { series, mean: 0, std: 1 };
    expect(inverse({ ...s, transform: 'none' }, [5], 2)).toEqual([5]);
    expect(inverse({ ...s, transform: 'difference' }, [11, 2], 2)).toEqual([121, 123]);
    expect(inverse({ ...s, transform: 'log-difference' }, [Math.log(1.1)], 2)[0]).toBeCloseTo(121, 9);
    expect(inverse({ ...s, transform: 'log' }, [Math.log(7)], 2)[0]).toBeCloseTo(7, 9);
  });

  it('a series read as a stream: quoted cells, spaces around them, CRLF, blank lines; a bad cell names its line', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-series-'));
    const f = path.join(dir, 's.csv');
    fs.writeFileSync(f, 'Month,"Passengers, total"\r\n"1949-01",112\n"1949-02", 118 \n\n1949-03, "132" \n');
    expect(Array.from(await loadSeries(f, 'Passengers, total', {}))).toEqual([112, 118, 132]);
    fs.writeFileSync(f, 'Month,Passengers\n1949-01,112\n\n1949-02,"1,5"\n');
    await expect(loadSeries(f, 'Passengers', {})).rejects.toThrow(/s\.csv:4: column "Passengers" holds "1,5", not a number/);
    await expect(loadSeries(f, 'Passenger', {})).rejects.toThrow(/has no column "Passenger"/);
    fs.writeFileSync(f, 'Month,Passengers\n1949-01,"112\n');
    await expect(loadSeries(f, 'Passengers', {})).rejects.toThrow(/s\.csv:\d+: .*quote/i);
  });

  it('gradients of every parameter match central finite differences (float64)', async () => {
    const spec = { hidden: [4, 3], horizon: 2, dtype: 'float64' as const };
    const [B, T] = [3, 6];
    const prog = buildForecastGradProgram({ spec, B, T });
    const s = await ort.InferenceSession.create(prog.graph.encode(), { logSeverityLevel: 3 });
    const rng = new Rng(3);
    const feeds: Record<string, ort.Tensor> = {
      x: new ort.Tensor('float64', Float64Array.from({ length: T * B }, () => rng.normal()), [T, B, 1]),
      y: new ort.Tensor('float64', Float64Array.from({ length: B * 2 }, () => rng.normal()), [B, 2]),
    };
    for (const p of forecastParams(spec)) feeds[`p.${p.name}`] = new ort.Tensor('float64', Float64Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-0.8, 0.8)), p.shape);
    const r = await s.run(feeds);
    const loss = async () => ((await s.run(feeds)).loss.data as Float64Array)[0];
    for (const p of forecastParams(spec)) {
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

  it('bad input: a cell that is not a number, a missing column, a window longer than the series', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-fc-'));
    fs.writeFileSync(path.join(dir, 'bad.csv'), '"Month","Passengers"\n"1949-01",112\n"1949-02",n/a\n');
    let r = run(dir, ['train', model(dir, 'bad.csv')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.csv:3: column "Passengers" holds "n\/a", not a number/);
    expect(r.stderr).toMatch(/f\.gatelab\.yaml:\d+:\d+: data\.column/);
    fs.writeFileSync(path.join(dir, 'other.csv'), '"Month","Count"\n"1949-01",112\n');
    r = run(dir, ['train', model(dir, 'other.csv')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/has no column "Passengers" \(its columns: "Month", "Count"\)/);
    fs.writeFileSync(path.join(dir, 'short.csv'), '"Month","Passengers"\n' + Array.from({ length: 10 }, (_, i) => `"m${i}",${100 + i}`).join('\n') + '\n');
    r = run(dir, ['train', model(dir, 'short.csv')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/data\.window: the series has 10 values/);
    for (const x of [r.stderr]) expect(x).not.toMatch(/\n\s+at /);
  });
});
