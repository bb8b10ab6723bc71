// task: forecast — CSV series, windows, transforms, baselines, gradients, bad input.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildForecastGradProgram, forecastParams } from '../../src/engine/train/forecast';
import { loadFrame } from '../../src/engine/data/frame';

/** One numeric column of a CSV, as a forecast reads it. */
const loadSeries = async (file: string, column: string) =>
  (await loadFrame(file, {}, { columns: [column], missing: 'error', whereColumn: () => ({ key: 'data.column' }), whereMissing: { key: 'data.missing' } })).numeric.get(column)!;
import { inverse } from '../../src/engine/tasks/forecast';
import { Rng } from '../../src/engine/util/rng';
import { readSafetensors } from '../../src/engine/util/safetensors';

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
    expect(Array.from(await loadSeries(f, 'Passengers, total'))).toEqual([112, 118, 132]);
    fs.writeFileSync(f, 'Month,Passengers\n1949-01,112\n\n1949-02,"1,5"\n');
    await expect(loadSeries(f, 'Passengers')).rejects.toMatchObject({ message: 'column "Passengers" holds "1,5", not a number', where: { file: f, line: 4, column: 2 } });
    await expect(loadSeries(f, 'Passenger')).rejects.toThrow(/has no column "Passenger"/);
    fs.writeFileSync(f, 'Month,Passengers\n1949-01,"112\n');
    await expect(loadSeries(f, 'Passengers')).rejects.toThrow(/s\.csv:\d+: .*quote/i);
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
    expect(r.stderr).toMatch(/bad\.csv:3:2: data\.column: column "Passengers" holds "n\/a", not a number/);
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

// ---- multivariate forecasts (issue 19) ----------------------------------------------------------------
import { parseModelFile, diagnoseModelText } from '../../src/engine/config/load';
import { featuresOf, forecastColumns, layoutOf, splitSeries } from '../../src/engine/tasks/forecast';
import { fillPrevious } from '../../src/engine/data/frame';

describe('multivariate forecasts: columns, categories, missing cells', () => {
  const CLI = path.resolve(__dirname, '../../dist/cli.js');
  const csv = ['No,pm2.5,TEMP,cbwd', '1,NA,-11,NW', '2,NA,-12,NW', '3,129,-11,SE', '4,148,NA,cv', '5,159,-9,', '6,181,-8,NW', '7,138,-7,SE', '8,109,-7,NW', '9,105,-6,cv', '10,124,-5,NE'].join('\n') + '\n';
  const model = (data: string) => `name: m\ntask: forecast\ndata: { source: p.csv, ${data} }\nmodel: { layers: [{ hidden: 4 }] }\ntrain: { steps: 4, batchSize: 2 }\n`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-mv-'));
  fs.writeFileSync(path.join(dir, 'p.csv'), csv);
  const frame = (missing: 'error' | 'previous' | 'zero' | 'drop', cols = ['pm2.5', 'TEMP', 'cbwd']) =>
    loadFrame(path.join(dir, 'p.csv'), {}, { columns: cols, textColumns: ['cbwd'], missing, whereColumn: () => ({ key: 'data.columns' }), whereMissing: { key: 'data.missing' } });

  it('missing cells: error names the file, line and column; previous fills forward (a leading gap from the first value after); zero; drop', async () => {
    await expect(frame('error')).rejects.toMatchObject({ message: 'column "pm2.5" has no value', where: { file: path.join(dir, 'p.csv'), line: 2, column: 2, key: 'data.missing' } });
    const prev = await frame('previous');
    expect(Array.from(prev.numeric.get('pm2.5')!)).toEqual([129, 129, 129, 148, 159, 181, 138, 109, 105, 124]);
    expect(Array.from(prev.numeric.get('TEMP')!).slice(2, 5)).toEqual([-11, -11, -9]);
    expect(prev.text.get('cbwd')!.slice(3, 6)).toEqual(['cv', 'cv', 'NW']);
    expect(Array.from((await frame('zero')).numeric.get('pm2.5')!).slice(0, 3)).toEqual([0, 0, 129]);
    const drop = await frame('drop');
    expect(drop.rows).toBe(6);
    expect(Array.from(drop.lines)).toEqual([4, 7, 8, 9, 10, 11]);
    expect(Array.from(fillPrevious(Float64Array.of(NaN, NaN)))).toEqual([0, 0]);
  });

  it('features: numeric inputs z-scored with the training part, categories one-hot and sorted, the target its transformed z', async () => {
    const [cfg] = parseModelFile(model('columns: [pm2.5, TEMP, cbwd], target: pm2.5, categorical: [cbwd], missing: previous, window: 3, validation: 0.3'), path.join(dir, 'm.gatelab.yaml'));
    const f = await frame('previous');
    const s = splitSeries(cfg, f.numeric.get('pm2.5')!);
    expect(s.nTrain).toBe(7);
    const layout = layoutOf(f, forecastColumns(cfg), s.nTrain);
    expect(layout.categories).toEqual({ cbwd: ['NE', 'NW', 'SE', 'cv'] });
    const temps = [-11, -12, -11, -11, -9, -8, -7];
    const m = temps.reduce((a, b) => a + b) / 7;
    expect(layout.mean.TEMP).toBeCloseTo(m, 12);
    expect(layout.std.TEMP).toBeCloseTo(Math.sqrt(temps.reduce((a, t) => a + (t - m) ** 2, 0) / 7), 12);
    const { F, x } = featuresOf(f, layout, s.x);
    expect(F).toBe(6);
    expect(x[0]).toBeCloseTo((129 - s.mean) / s.std, 12); // row 0: the target's z
    expect(x[1]).toBeCloseTo((-11 - m) / layout.std.TEMP, 12);
    expect(Array.from(x.subarray(2, 6))).toEqual([0, 1, 0, 0]); // NW
    expect(Array.from(x.subarray(9 * 6 + 2, 10 * 6))).toEqual([1, 0, 0, 0]); // NE
  });

  it('each new key gives its error at the key', () => {
    const at = (data: string) => diagnoseModelText(model(data), '/m/m.gatelab.yaml').map((p) => [p.error.where.key, p.error.message]);
    expect(at('columns: [pm2.5, TEMP]')).toEqual([['data.target', 'data.columns lists 2 columns: name the one to predict with data.target']]);
    expect(at('columns: [pm2.5, TEMP], target: pm2.5, categorical: [cbwd]')).toEqual([['data.categorical.0', 'categorical column "cbwd" is not among data.columns']]);
    expect(at('column: pm2.5, columns: [pm2.5]')).toEqual([['data.columns', 'data.column is the short form of columns: [X], target: X; give one of them']]);
    expect(at('columns: [pm2.5, cbwd], target: cbwd, categorical: [cbwd]')).toEqual([['data.target', 'the target "cbwd" cannot be categorical']]);
    expect(at('column: pm2.5, missing: previos')[0]).toEqual(['data.missing', '"previos" must be one of error, previous, zero, drop']);
  });

  it('from the CLI: a missing column lists those there are at its key; a multivariate model trains, predicts from a CSV and exports', async () => {
    const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8' });
    fs.writeFileSync(path.join(dir, 'bad.gatelab.yaml'), model('columns: [pm2.5, TEMPERATURE], target: pm2.5, missing: previous'));
    let r = run('train', 'bad.gatelab.yaml', '--no-record');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/bad\.gatelab\.yaml:3:\d+: data\.columns\.1: the CSV .*p\.csv has no column "TEMPERATURE" \(its columns: "No", "pm2\.5", "TEMP", "cbwd"\)/);
    fs.writeFileSync(path.join(dir, 'm.gatelab.yaml'), model('columns: [pm2.5, TEMP, cbwd], target: pm2.5, categorical: [cbwd], missing: previous, window: 3, validation: 0.3'));
    r = run('train', 'm.gatelab.yaml', '--save', 'w.safetensors', '--no-record', '--quiet');
    expect(r.status, r.stderr).toBe(0);
    const sum = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(sum.rmse).toBeGreaterThan(0);
    expect(sum.baselineRmse).toBeGreaterThan(0);
    expect(JSON.parse(readSafetensors(path.join(dir, 'w.safetensors')).metadata['gatelab.features'])).toMatchObject({ columns: ['pm2.5', 'TEMP', 'cbwd'], target: 'pm2.5', categories: { cbwd: ['NE', 'NW', 'SE', 'cv'] } });
    r = run('predict', 'm.gatelab.yaml', '--init', 'w.safetensors', '--input', 'p.csv');
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).forecast).toHaveLength(1);
    r = run('predict', 'm.gatelab.yaml', '--init', 'w.safetensors', '--input', 'p.csv', '--steps', '3');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/3 steps are more than the horizon 1, and the model reads other columns besides pm2\.5/);
    r = run('export', 'm.gatelab.yaml', '--init', 'w.safetensors', '--onnx', 'm.onnx');
    expect(r.status, r.stderr).toBe(0);
    const s = await ort.InferenceSession.create(path.join(dir, 'm.onnx'));
    expect((await s.run({ x: new ort.Tensor('float32', new Float32Array(3 * 2 * 6), [3, 2, 6]) })).pred.dims).toEqual([2, 1]);
    await s.release();
  });
});
