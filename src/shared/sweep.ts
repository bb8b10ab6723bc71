// The statistics of a sweep (pure, shared by the CLI, the host and the side panel's webview): runs
// grouped by their setting without train.seed, the metric's mean and sample standard deviation.

export type SweepValue = number | string | boolean;
export type Setting = Record<string, SweepValue>;

export interface SweepGroup {
  /** the setting without train.seed */
  setting: Setting;
  runs: number;
  metric: string;
  mean: number;
  std: number;
}

/** Groups finished runs by their setting without train.seed; the metric's mean and sample standard deviation. */
export function sweepGroups(results: { setting: Setting; value: number | undefined }[], metric: string): SweepGroup[] {
  const groups = new Map<string, { setting: Setting; values: number[]; runs: number }>();
  for (const r of results) {
    const setting = Object.fromEntries(Object.entries(r.setting).filter(([k]) => k !== 'train.seed'));
    const key = JSON.stringify(setting);
    const g = groups.get(key) ?? { setting, values: [], runs: 0 };
    g.runs++;
    if (r.value !== undefined && Number.isFinite(r.value)) g.values.push(r.value);
    groups.set(key, g);
  }
  return [...groups.values()].map((g) => {
    const n = g.values.length;
    const mean = n ? g.values.reduce((a, b) => a + b, 0) / n : NaN;
    const std = n > 1 ? Math.sqrt(g.values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : n === 1 ? 0 : NaN;
    return { setting: g.setting, runs: g.runs, metric, mean, std };
  });
}

