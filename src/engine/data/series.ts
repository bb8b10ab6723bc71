// Numeric series from CSV files (forecasts): one column by its header name, every cell a number.
// A bad cell is an error naming the CSV file, its line, the column and the text found; a missing
// column lists the ones there are. Quoted fields ("1949-01") are understood; values are float64.

import * as fs from 'node:fs';
import { UserError, Where } from '../errors';
import { readTextFile } from './text';

/** Splits one CSV line (RFC 4180 quotes, no embedded newlines). */
export function csvFields(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (q) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') q = false;
      else cur += ch;
    } else if (ch === '"') q = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((f) => f.trim());
}

/**
 * The records of a whole CSV text (RFC 4180): quoted fields may hold the delimiter, doubled quotes
 * and line breaks; CRLF or LF line ends; a final line break is optional; blank lines are skipped.
 * Each record carries the 1-based line it starts on. Fields are not trimmed.
 */
export function csvRecords(text: string, delimiter = ','): { fields: string[]; line: number }[] {
  const out: { fields: string[]; line: number }[] = [];
  let fields: string[] = [];
  let cur = '';
  let q = false;
  let line = 1;
  let start = 1;
  let any = false; // the record has content (so a blank line is not a record)
  const endRecord = () => {
    fields.push(cur);
    if (any || fields.length > 1) out.push({ fields, line: start });
    fields = [];
    cur = '';
    any = false;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (q) {
      if (ch === '"' && text[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') q = false;
      else {
        if (ch === '\n') line++;
        cur += ch;
      }
      continue;
    }
    if (ch === '"') {
      q = true;
      any = true;
    } else if (ch === delimiter) {
      fields.push(cur);
      cur = '';
      any = true;
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      line++;
      start = line;
    } else {
      cur += ch;
      if (ch.trim()) any = true;
    }
  }
  if (cur || fields.length || any) endRecord();
  return out;
}

export function loadSeries(file: string, column: string, where: Where): Float64Array {
  const text = readTextFile(file, where, 'the path is relative to the model file; fix data.source');
  const lines = text.split(/\r?\n/);
  const header = csvFields(lines[0] ?? '');
  const col = header.indexOf(column);
  if (col < 0)
    throw new UserError(`the CSV ${file} has no column "${column}"`, { ...where, key: 'data.column' }, `its columns: ${header.map((h) => `"${h}"`).join(', ')}`);
  const values: number[] = [];
  for (let i = 1; i < lines.length; i++) {
    if (!lines[i].trim()) continue;
    const cell = csvFields(lines[i])[col] ?? '';
    const v = cell === '' ? NaN : Number(cell);
    if (!Number.isFinite(v))
      throw new UserError(`${file}:${i + 1}: column "${column}" holds "${cell}", not a number`, { ...where, key: 'data.column' }, 'fix the cell, or remove the row');
    values.push(v);
  }
  if (values.length === 0) throw new UserError(`the CSV ${file} has no rows`, where, 'use a CSV with a header line and data rows');
  return Float64Array.from(values);
}
