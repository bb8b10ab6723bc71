// Numeric tables from CSV files: the named columns of a file (multivariate forecasts, numeric
// sequences), read as a stream (./csv.ts). Header names are trimmed and a leading `#` is ignored
// (`#sequence_ID, class_label` gives `sequence_ID` and `class_label`). A cell is missing when it is
// empty or `NA`; `missing` says what to do: stop at the first (naming its file, line and column),
// fill it from the previous value (a leading gap from the first value that follows), fill it with
// zero, or drop its row. Categorical columns keep their text; every other cell must be a number. A bad
// or missing cell is blamed at its place in the CSV (file, line, column) with the model key to change.

import { UserError, Where } from '../errors';
import { readRecords } from './csv';

export type MissingPolicy = 'error' | 'previous' | 'zero' | 'drop';

/** A header cell as a name: trimmed, a leading `#` ignored. */
export const headerName = (h: string) => h.trim().replace(/^#\s*/, '');

export interface Frame {
  file: string;
  /** every column of the file, by header name */
  header: string[];
  /** rows kept (after drop) */
  rows: number;
  /** the file line of each kept row */
  lines: Int32Array;
  /** numeric columns asked for */
  numeric: Map<string, Float64Array>;
  /** categorical columns asked for: each row's text */
  text: Map<string, string[]>;
}

export interface FrameOptions {
  /** the columns to read ('all': every column of the header) */
  columns: string[] | 'all';
  /** columns kept as text (categories, ids, labels) */
  textColumns?: string[];
  missing: MissingPolicy;
  /** where a column missing from the header is blamed (per column name) */
  whereColumn: (column: string) => Where;
  /** where a missing cell is blamed when missing is 'error' */
  whereMissing: Where;
}

const isMissing = (s: string) => s === '' || s === 'NA';

/** Reads the columns of a CSV file with a header line. */
export async function loadFrame(file: string, where: Where, o: FrameOptions): Promise<Frame> {
  let header: string[] | undefined;
  let cols: string[] = [];
  let idx: number[] = [];
  const text = new Set(o.textColumns ?? []);
  const num: number[][] = [];
  const txt: string[][] = [];
  const lines: number[] = [];
  await readRecords(file, where, { trim: true, missing: 'the path is relative to the model file' }, (r) => {
    if (!header) {
      header = r.fields.map(headerName);
      cols = o.columns === 'all' ? [...header] : o.columns;
      idx = cols.map((c) => {
        const i = header!.indexOf(c);
        if (i < 0) throw new UserError(`the CSV ${file} has no column "${c}"`, o.whereColumn(c), `its columns: ${header!.map((h) => `"${h}"`).join(', ')}`);
        return i;
      });
      cols.forEach(() => (num.push([]), txt.push([])));
      return;
    }
    const cells = idx.map((i) => r.fields[i] ?? '');
    if (o.missing === 'drop' && cells.some(isMissing)) return;
    cells.forEach((cell, j) => {
      const c = cols[j];
      if (isMissing(cell)) {
        if (o.missing === 'error')
          throw new UserError(`column "${c}" has no value`, { ...o.whereMissing, file, line: r.line, column: idx[j] + 1 }, 'fill the cell, or set data.missing to previous, zero or drop');
        if (text.has(c)) txt[j].push(o.missing === 'zero' ? '' : '\u0000'); // \0: to fill from the neighbours
        else num[j].push(o.missing === 'zero' ? 0 : NaN);
        return;
      }
      if (text.has(c)) {
        txt[j].push(cell);
        return;
      }
      const v = Number(cell);
      if (!Number.isFinite(v))
        throw new UserError(`column "${c}" holds "${cell}", not a number`, { ...o.whereColumn(c), file, line: r.line, column: idx[j] + 1 }, 'fix the cell, list the column under data.categorical if it holds categories, or remove the row');
      num[j].push(v);
    });
    lines.push(r.line);
  });
  if (!header) throw new UserError(`the CSV ${file} is empty`, where, 'use a CSV with a header line and data rows');
  const numeric = new Map<string, Float64Array>();
  const textOut = new Map<string, string[]>();
  cols.forEach((c, j) => {
    if (text.has(c)) textOut.set(c, fillText(txt[j]));
    else numeric.set(c, fillPrevious(Float64Array.from(num[j])));
  });
  return { file, header, rows: lines.length, lines: Int32Array.from(lines), numeric, text: textOut };
}

/** NaN cells from the previous value; a leading gap from the first value that follows (all NaN: zeros). */
export function fillPrevious(a: Float64Array): Float64Array {
  const first = a.findIndex((v) => !Number.isNaN(v));
  if (first < 0) return a.fill(0);
  for (let i = 0; i < first; i++) a[i] = a[first];
  for (let i = first + 1; i < a.length; i++) if (Number.isNaN(a[i])) a[i] = a[i - 1];
  return a;
}

function fillText(a: string[]): string[] {
  const first = a.findIndex((v) => v !== '\u0000');
  if (first < 0) return a.map(() => '');
  for (let i = 0; i < first; i++) a[i] = a[first];
  for (let i = first + 1; i < a.length; i++) if (a[i] === '\u0000') a[i] = a[i - 1];
  return a;
}

/** The first n rows of a frame. */
export function headFrame(f: Frame, n: number): Frame {
  return {
    ...f,
    rows: Math.min(n, f.rows),
    lines: f.lines.slice(0, n),
    numeric: new Map([...f.numeric].map(([k, v]) => [k, v.slice(0, n)])),
    text: new Map([...f.text].map(([k, v]) => [k, v.slice(0, n)])),
  };
}
