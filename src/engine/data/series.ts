// Numeric series from CSV files (forecasts): one column by its header name, every cell a number.
// The file is read as a stream (csv.ts: csv-parse), so a long series never exists as one string. A bad
// cell is an error naming the CSV file, its line, the column and the text found; a missing column
// lists the ones there are. Quoted fields ("1949-01") are understood; values are float64.

import { UserError, Where } from '../errors';
import { readRecords } from './csv';

export async function loadSeries(file: string, column: string, where: Where): Promise<Float64Array> {
  let col = -1;
  let values = new Float64Array(1024);
  let n = 0;
  let header = true;
  await readRecords(file, where, { trim: true, missing: 'the path is relative to the model file; fix data.source' }, (r) => {
    const fields = r.fields;
    if (header) {
      header = false;
      col = fields.indexOf(column);
      if (col < 0) throw new UserError(`the CSV ${file} has no column "${column}"`, { ...where, key: 'data.column' }, `its columns: ${fields.map((h) => `"${h}"`).join(', ')}`);
      return;
    }
    const cell = fields[col] ?? '';
    const v = cell === '' ? NaN : Number(cell);
    if (!Number.isFinite(v))
      throw new UserError(`${file}:${r.line}: column "${column}" holds "${cell}", not a number`, { ...where, key: 'data.column' }, 'fix the cell, or remove the row');
    if (n === values.length) {
      const grown = new Float64Array(2 * n);
      grown.set(values);
      values = grown;
    }
    values[n++] = v;
  });
  if (header) throw new UserError(`the CSV ${file} is empty`, where, 'use a CSV with a header line and data rows');
  if (n === 0) throw new UserError(`the CSV ${file} has no rows`, where, 'use a CSV with a header line and data rows');
  return values.slice(0, n);
}
