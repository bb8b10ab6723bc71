// The dashboard's chart data functions: smoothing, downsampling, binning, colour scales, unit order.

import { describe, expect, it } from 'vitest';
import { confusionView, diverging, downsampleMinMax, emaDebiased, epochChart, gateColor, minMaxIndices, orderUnits, sequential, toCsv, unitStats } from '../../webview/dashboard/chartdata';
import { histogram, saturation } from '../../src/engine/train/probe';

describe('EMA smoothing (TensorBoard, debiased)', () => {
  it('starts at the data, follows the recurrence, skips non-finite values', () => {
    expect(emaDebiased([5, 5, 5], 0.9)).toEqual([5, 5, 5].map((v) => expect.closeTo(v, 12)));
    const w = 0.6;
    const ys = [1, 3, 2];
    // last_k = w·last_{k−1} + (1−w)·y_k, divided by 1 − w^k
    const l1 = 0.4 * 1;
    const l2 = w * l1 + 0.4 * 3;
    const l3 = w * l2 + 0.4 * 2;
    expect(emaDebiased(ys, w)).toEqual([l1 / (1 - w), l2 / (1 - w ** 2), l3 / (1 - w ** 3)].map((v) => expect.closeTo(v, 12)));
    expect(emaDebiased([1, NaN, 1], 0.5)).toEqual([1, null, expect.closeTo(1, 12)]);
    expect(emaDebiased([1, 2], 0)).toEqual([1, 2]);
  });
});

describe('min/max downsampling', () => {
  it('keeps every point when there are few', () => {
    expect(downsampleMinMax([1, 2, 3], [3, 1, 2], 10)).toEqual([[1, 2, 3], [3, 1, 2]]);
  });

  it('keeps each bucket’s min and max, in x order, so spikes survive', () => {
    const n = 100_000;
    const xs = Array.from({ length: n }, (_, i) => i);
    const ys = xs.map((i) => (i === 54_321 ? 100 : i === 12_345 ? -100 : Math.sin(i / 1000)));
    const [dx, dy] = downsampleMinMax(xs, ys, 500);
    expect(dx.length).toBeLessThanOrEqual(1000);
    expect(dy).toContain(100);
    expect(dy).toContain(-100);
    for (let i = 1; i < dx.length; i++) expect(dx[i]).toBeGreaterThan(dx[i - 1]);
    expect(Math.max(...dy)).toBe(100);
    expect(Math.min(...dy)).toBe(-100);
  });

  it('restricts to the visible range plus one neighbour on each side', () => {
    const xs = Array.from({ length: 1000 }, (_, i) => i);
    const idx = minMaxIndices(xs, xs, 100, 500, 510);
    expect(idx[0]).toBe(499);
    expect(idx[idx.length - 1]).toBe(511);
  });
});

describe('binning and saturation', () => {
  it('histogram counts with clamped ends', () => {
    expect(histogram([0, 0.05, 0.5, 0.99, 1, 2, -1], 0, 1, 10)).toEqual([3, 0, 0, 0, 0, 1, 0, 0, 0, 3]);
  });
  it('saturation: fraction of steps below 0.1 and above 0.9 per unit', () => {
    // T = 4, H = 2, row-major [t][u]
    const v = [0.05, 0.5, 0.95, 0.5, 0.95, 0.01, 0.5, 0.99];
    expect(saturation(v, 4, 2)).toEqual({ low: [0.25, 0.25], high: [0.5, 0.25] });
  });
  it('unit statistics and ordering', () => {
    const v = [0, 1, 0.5, 1, 1, 0.5, 0.5, 1, 0.5]; // T = 3, H = 3: unit 1 always 1, unit 2 always ½, unit 0 varies
    expect(unitStats(v, 3, 3).mean).toEqual([expect.closeTo(0.5, 12), expect.closeTo(1, 12), expect.closeTo(0.5, 12)]);
    expect(orderUnits(v, 3, 3, 'mean')).toEqual([1, 0, 2]);
    expect(orderUnits(v, 3, 3, 'saturated-high', 1)).toEqual([1]);
    expect(orderUnits(v, 3, 3, 'variance')[0]).toBe(0);
    expect(orderUnits(v, 3, 3, 'index')).toEqual([0, 1, 2]);
  });
});

describe('colour scales', () => {
  it('sequential runs dark to bright over [0, 1] and clamps', () => {
    const lum = (c: number[]) => 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
    expect(lum(sequential(1))).toBeGreaterThan(lum(sequential(0.5)));
    expect(lum(sequential(0.5))).toBeGreaterThan(lum(sequential(0)));
    expect(sequential(2)).toEqual(sequential(1));
    expect(sequential(NaN)).toEqual(sequential(0));
  });
  it('diverging is white at 0, blue below, red above; gates pick their scale', () => {
    expect(diverging(0)).toEqual([247, 247, 247]);
    expect(diverging(-1)).toEqual([33, 102, 172]);
    expect(diverging(1)).toEqual([178, 24, 43]);
    expect(gateColor('f', 0.7)).toEqual(sequential(0.7));
    expect(gateColor('c', 1.5)).toEqual(diverging(0.5));
  });
  it('CSV export', () => {
    expect(toCsv({ step: [1, 2], loss: [0.5, null] })).toBe('step,loss\n1,0.5\n2,\n');
  });
});

describe('overlay alignment', () => {
  it('takes the other run’s last point at or before each x, null outside its range', async () => {
    const { alignTo } = await import('../../webview/dashboard/chartdata');
    expect(alignTo([1, 2, 3, 4, 5, 6], [2, 4, 5], [20, 40, 50])).toEqual([null, 20, 20, 40, 50, null]);
    expect(alignTo([1, 2], [], [])).toEqual([null, null]);
  });
});

describe('the per-epoch chart by task', () => {
  it('language models: perplexity (log scale), exp of the loss where a row lacks it', () => {
    const c = epochChart([{ epoch: 1, trainLoss: Math.log(8), trainPerplexity: 8, validLoss: Math.log(9) }, { epoch: 2, trainLoss: Math.log(6), trainPerplexity: 6 }]);
    expect(c.kind).toBe('perplexity');
    expect(c.log).toBe(true);
    expect(c.data[0]).toEqual([1, 2]);
    expect(c.data[1]).toEqual([8, 6]);
    expect(c.data[2][0]).toBeCloseTo(9, 12);
    expect(c.data[2][1]).toBeNull();
  });
  it('classification: validation accuracy in percent, linear scale', () => {
    const c = epochChart([{ epoch: 1, trainLoss: 0.6, validLoss: 0.5, accuracy: 0.75 }, { epoch: 2, trainLoss: 0.4, validLoss: 0.45, accuracy: 0.8 }]);
    expect(c).toMatchObject({ kind: 'accuracy', label: 'accuracy (%)', series: ['valid accuracy'], log: false });
    expect(c.data).toEqual([[1, 2], [75, 80]]);
  });
  it('forecasts: validation RMSE beside the persistence baseline; no validation: the losses', () => {
    const c = epochChart([{ epoch: 1, trainLoss: 0.1, rmse: 40, baselineRmse: 55 }, { epoch: 2, trainLoss: 0.05, rmse: Number.NaN, baselineRmse: 55 }]);
    expect(c.kind).toBe('rmse');
    expect(c.data).toEqual([[1, 2], [40, null], [55, 55]]);
    const l = epochChart([{ epoch: 1, trainLoss: 0.3 }]);
    expect(l).toMatchObject({ kind: 'loss', series: ['train loss', 'valid loss'] });
    expect(l.data).toEqual([[1], [0.3], [null]]);
  });
});

describe('the confusion matrix of a classifier', () => {
  it('row shares, recall per true class, precision per predicted class, accuracy', () => {
    const v = confusionView(
      [
        [50, 10],
        [5, 35],
      ],
      ['neg', 'pos'],
    );
    expect(v.total).toBe(100);
    expect(v.accuracy).toBeCloseTo(0.85, 12);
    expect(v.recall[0]).toBeCloseTo(50 / 60, 12);
    expect(v.recall[1]).toBeCloseTo(35 / 40, 12);
    expect(v.precision[0]).toBeCloseTo(50 / 55, 12);
    expect(v.precision[1]).toBeCloseTo(35 / 45, 12);
    expect(v.rowShare[1]).toEqual([5 / 40, 35 / 40]);
    // a class never seen in validation: no recall rather than a division by zero
    const w = confusionView([[3, 0, 1], [0, 0, 0], [1, 0, 2]], ['a', 'b', 'c']);
    expect(w.recall).toEqual([0.75, null, 2 / 3]);
    expect(w.precision[1]).toBeNull();
    expect(w.rowShare[1]).toEqual([0, 0, 0]);
  });
});
