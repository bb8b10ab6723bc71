// Sweeps: a model document's `sweep:` key maps key paths to the values to try; every combination is
// one run (its model document: the original with the setting applied and the sweep removed), and the
// runs are grouped by their setting without train.seed, each group's task metric given as mean ±
// standard deviation over its seeds (the sample standard deviation; 0 for a single run).

import { isMap, parseAllDocuments, stringify } from 'yaml';
import type { ModelConfig } from './config/types';
import { parseModelFile, pickModel, whereOf } from './config/load';
import { UserError } from './errors';
import type { Setting, SweepGroup, SweepValue } from '../shared/sweep';

export { sweepGroups } from '../shared/sweep';
export type { Setting, SweepGroup, SweepValue } from '../shared/sweep';


/** Every combination of the sweep's values, the first key varying slowest (the order of the file). */
export function sweepSettings(sweep: Record<string, SweepValue[]>): Setting[] {
  let out: Setting[] = [{}];
  for (const [key, values] of Object.entries(sweep)) out = out.flatMap((s) => values.map((v) => ({ ...s, [key]: v })));
  return out;
}

/** A key path as the YAML document's path: numbers for list indices. */
function docPath(key: string): (string | number)[] {
  return key.split('.').map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}

/**
 * The model document of one setting: the named model's document of `text` with each key path set and
 * the sweep removed, checked as a model file (an impossible value is an error at the sweep's key).
 */
export function variantText(cfg: ModelConfig, text: string, setting: Setting): string {
  const docs = parseAllDocuments(text);
  const doc = docs.find((d) => isMap(d.contents) && d.get('name') === cfg.name) ?? docs[0];
  const copy = doc.clone();
  copy.delete('sweep');
  for (const [key, value] of Object.entries(setting)) copy.setIn(docPath(key), value);
  const out = stringify(copy.toJS());
  try {
    pickModel(parseModelFile(out, cfg.file), cfg.name, cfg.file);
  } catch (e) {
    const key = Object.keys(setting).find((k) => ((e as UserError).where?.key ?? '').startsWith(k)) ?? Object.keys(setting)[0];
    throw new UserError(`sweep: ${key}: ${JSON.stringify(setting[key])} does not make a valid model: ${(e as UserError).message}`, whereOf(cfg, `sweep.${key}`), 'change or remove that value');
  }
  return out;
}

/** The table `gatelab sweep` prints: one row per group. */
export function sweepTable(groups: SweepGroup[]): string {
  const keys = [...new Set(groups.flatMap((g) => Object.keys(g.setting)))];
  const metric = groups[0]?.metric ?? 'metric';
  const fmt = (v: number) => (Number.isFinite(v) ? (Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4)) : '–');
  const head = [...keys, 'runs', `${metric} (mean ± std)`];
  const rows = groups.map((g) => [...keys.map((k) => (k in g.setting ? JSON.stringify(g.setting[k]) : '')), String(g.runs), `${fmt(g.mean)} ± ${fmt(g.std)}`]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
