// Numeric sequences with a label each (classification of sensor, movement or telemetry data): either
// one CSV per sequence (`data.sequences: dir/name_{id}.csv`, the labels in a table `data.labels`), or
// one long CSV (`data.source` with `data.idColumn`: the rows of one id, in file order, are one
// sequence; the labels in `data.labels` or a column `data.labelColumn`). Tables have a header line;
// names are trimmed and a leading `#` ignored. Every problem names its key, and the file and line
// where there is one: a missing column lists those there are, a label row without an id gives its
// line, a sequence with no label (or a label with no sequence) is named.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ModelConfig } from '../config/types';
import { whereOf } from '../config/load';
import { UserError } from '../errors';
import { readRecords } from './csv';
import { Frame, headerName, loadFrame } from './frame';

export interface NumericSequences {
  /** sequence ids, in the order of the label table (or of first appearance) */
  ids: string[];
  labels: string[];
  /** per sequence: steps × features, row-major */
  steps: Float64Array[];
  /** per sequence: its number of steps */
  lengths: number[];
  /** the feature columns, in order */
  columns: string[];
  /** where each sequence was read: its file (and first line, for a long CSV) */
  origin: string[];
}

/** A two-column view of a table: the id column and another, row by row with their lines. */
async function readPairs(file: string, idCol: string | undefined, otherCol: string | undefined, keys: { at: string; id: string; other: string }, cfg: ModelConfig, otherDefault: 1 | undefined): Promise<{ rows: { id: string; value: string; line: number }[]; idName: string; otherName: string }> {
  let header: string[] | undefined;
  let iId = 0;
  let iOther = 1;
  const rows: { id: string; value: string; line: number }[] = [];
  await readRecords(file, whereOf(cfg, keys.at), { trim: true, missing: `the path is relative to the model file; fix ${keys.at}` }, (r) => {
    if (!header) {
      header = r.fields.map(headerName);
      const find = (name: string | undefined, dflt: number | undefined, key: string) => {
        if (name === undefined) {
          if (dflt === undefined || dflt >= header!.length) throw new UserError(`the table ${file} needs ${key.split('.').pop()}`, whereOf(cfg, key), `its columns: ${header!.join(', ')}`);
          return dflt;
        }
        const i = header!.indexOf(name);
        if (i < 0) throw new UserError(`the table ${file} has no column "${name}"`, whereOf(cfg, key), `its columns: ${header!.map((h) => `"${h}"`).join(', ')}`);
        return i;
      };
      iId = find(idCol, 0, keys.id);
      iOther = find(otherCol, otherDefault, keys.other);
      return;
    }
    const id = (r.fields[iId] ?? '').trim();
    if (!id) throw new UserError(`a row without an id`, { file, line: r.line, key: keys.id }, `every row of ${path.basename(file)} needs its sequence id in column "${header![iId]}"`);
    rows.push({ id, value: (r.fields[iOther] ?? '').trim(), line: r.line });
  });
  if (!header) throw new UserError(`the table ${file} is empty`, whereOf(cfg, keys.at), 'use a CSV with a header line and one row per sequence');
  return { rows, idName: header[iId], otherName: header[iOther] };
}

/** The label of every sequence id, from data.labels. */
async function labelTable(cfg: ModelConfig): Promise<Map<string, { label: string; line: number }>> {
  const l = cfg.data.labels!;
  const { rows } = await readPairs(l.file, l.id, l.label, { at: 'data.labels.file', id: 'data.labels.id', other: 'data.labels.label' }, cfg, 1);
  const out = new Map<string, { label: string; line: number }>();
  for (const r of rows) {
    if (out.has(r.id)) throw new UserError(`sequence ${r.id} has a second label`, { file: l.file, line: r.line, key: 'data.labels' }, `its first is on line ${out.get(r.id)!.line}`);
    if (!r.value) throw new UserError(`sequence ${r.id} has an empty label`, { file: l.file, line: r.line, key: 'data.labels.label' });
    out.set(r.id, { label: r.value, line: r.line });
  }
  return out;
}

/** The group of every sequence id, from a split by a group table. */
export async function groupTable(cfg: ModelConfig): Promise<Map<string, string>> {
  const s = cfg.data.split as Exclude<ModelConfig['data']['split'], string>;
  const { rows } = await readPairs(s.file, s.id, s.group, { at: 'data.split.file', id: 'data.split.id', other: 'data.split.group' }, cfg, undefined);
  return new Map(rows.map((r) => [r.id, r.value]));
}

/** Reads the numeric sequences and their labels of a classification model. */
export async function loadNumericSequences(cfg: ModelConfig): Promise<NumericSequences> {
  const frameOf = (file: string, where: ReturnType<typeof whereOf>, text: string[] = []): Promise<Frame> =>
    loadFrame(file, where, {
      columns: cfg.data.columns ? [...cfg.data.columns, ...text] : 'all',
      textColumns: text,
      missing: cfg.data.missing,
      whereColumn: (c) => whereOf(cfg, cfg.data.columns?.includes(c) ? `data.columns.${cfg.data.columns.indexOf(c)}` : c === cfg.data.idColumn ? 'data.idColumn' : 'data.labelColumn'),
      whereMissing: whereOf(cfg, 'data.missing'),
    });
  const out: NumericSequences = { ids: [], labels: [], steps: [], lengths: [], columns: [], origin: [] };
  const add = (id: string, label: string, f: Frame, columns: string[], origin: string, rows?: number[]) => {
    const idx = rows ?? Array.from({ length: f.rows }, (_, i) => i);
    const x = new Float64Array(idx.length * columns.length);
    columns.forEach((c, j) => {
      const a = f.numeric.get(c)!;
      idx.forEach((r, t) => (x[t * columns.length + j] = a[r]));
    });
    out.ids.push(id);
    out.labels.push(label);
    out.steps.push(x);
    out.lengths.push(idx.length);
    out.origin.push(origin);
  };

  if (cfg.data.sequences) {
    // one CSV per sequence: the label table's ids, each file from the pattern
    const pattern = cfg.data.sequences;
    const labels = await labelTable(cfg);
    const dir = path.dirname(pattern);
    const re = new RegExp('^' + path.basename(pattern).replace(/[.*+?^${}()|[\]\\]/g, (c) => `\\${c}`).replace('\\{id\\}', '(.+)') + '$');
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      throw new UserError(`the folder of data.sequences does not exist: ${dir}`, whereOf(cfg, 'data.sequences'), 'the pattern is relative to the model file');
    }
    const found = new Map<string, string>();
    for (const n of names) {
      const m = re.exec(n);
      if (m) found.set(m[1], path.join(dir, n));
    }
    for (const [id, file] of found)
      if (!labels.has(id)) throw new UserError(`sequence ${id} (${file}) has no label in ${cfg.data.labels!.file}`, whereOf(cfg, 'data.labels'), 'add its row to the label table, or move the file out of the folder');
    let columns: string[] | undefined;
    for (const [id, { label, line }] of labels) {
      const file = found.get(id);
      if (!file) throw new UserError(`no file ${pattern.replace('{id}', id)} for sequence ${id}`, { file: cfg.data.labels!.file, line, key: 'data.sequences' }, 'fix data.sequences, or remove the row from the label table');
      const f = await frameOf(file, whereOf(cfg, 'data.sequences'));
      const cols = cfg.data.columns ?? [...f.numeric.keys()];
      if (columns && cols.join() !== columns.join())
        throw new UserError(`${file} has the columns ${cols.join(', ')}, the other sequences ${columns.join(', ')}`, whereOf(cfg, 'data.sequences'), 'give every sequence file the same header, or list the columns to read in data.columns');
      columns = cols;
      if (f.rows === 0) throw new UserError(`sequence ${id} (${file}) has no rows`, whereOf(cfg, 'data.sequences'));
      add(id, label, f, cols, file);
    }
    out.columns = columns ?? [];
  } else {
    // one long CSV: rows grouped by the id column, in file order
    const idCol = cfg.data.idColumn!;
    const labelCol = cfg.data.labels ? undefined : cfg.data.labelColumn;
    const text = labelCol ? [idCol, labelCol] : [idCol];
    const f = await frameOf(cfg.data.source, { ...whereOf(cfg, 'data.source'), key: 'data.source' }, text);
    const ids = f.text.get(idCol)!;
    const groups = new Map<string, number[]>();
    ids.forEach((id, r) => {
      if (!id) throw new UserError(`a row without an id`, { file: cfg.data.source, line: f.lines[r], key: 'data.idColumn' }, `every row needs its sequence id in column "${idCol}"`);
      const g = groups.get(id);
      if (g) g.push(r);
      else groups.set(id, [r]);
    });
    const columns = cfg.data.columns ?? [...f.numeric.keys()];
    const table = cfg.data.labels ? await labelTable(cfg) : undefined;
    for (const [id, rows] of groups) {
      let label: string;
      if (table) {
        const l = table.get(id);
        if (!l) throw new UserError(`sequence ${id} (line ${f.lines[rows[0]]} of ${cfg.data.source}) has no label in ${cfg.data.labels!.file}`, whereOf(cfg, 'data.labels'), 'add its row to the label table');
        label = l.label;
      } else {
        const ls = f.text.get(labelCol!)!;
        label = ls[rows[0]];
        const other = rows.find((r) => ls[r] !== label);
        if (other !== undefined) throw new UserError(`sequence ${id} changes its label from "${label}" to "${ls[other]}"`, { file: cfg.data.source, line: f.lines[other], key: 'data.labelColumn' }, 'a sequence has one label: give all its rows the same');
        if (!label) throw new UserError(`sequence ${id} has no label`, { file: cfg.data.source, line: f.lines[rows[0]], key: 'data.labelColumn' });
      }
      add(id, label, f, columns, `${cfg.data.source}:${f.lines[rows[0]]}`, rows);
    }
    out.columns = columns;
  }
  if (out.ids.length === 0) throw new UserError('no sequences were found', whereOf(cfg, cfg.data.sequences ? 'data.sequences' : 'data.source'), 'check the label table and the file pattern');
  return out;
}
