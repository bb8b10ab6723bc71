// CSV and TSV files read as a stream with csv-parse (RFC 4180: quoted fields may hold the delimiter,
// doubled quotes and line breaks; CRLF, LF or CR line ends; a byte-order mark is dropped). The bytes
// are checked as UTF-8 text on the way (TextCheck), blank records are skipped, and each record
// carries the 1-based line it starts on, so errors name the file and line.

import * as fs from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse';
import { UserError, Where } from '../errors';
import { TextCheck } from './text';

export interface CsvRecord {
  fields: string[];
  /** the line the record starts on */
  line: number;
}

export interface CsvOptions {
  /** ',' (default) or '\t' */
  delimiter?: string;
  /** quoted fields (default true); false for TSV files whose sentences hold quotes */
  quotes?: boolean;
  /** spaces around fields (and around their quotes) are dropped */
  trim?: boolean;
  /** what to do when the file does not exist */
  missing: string;
}

/** Calls `each` for every record of the file, in order. */
export async function readRecords(file: string, where: Where, o: CsvOptions, each: (r: CsvRecord) => void): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new UserError(`data file not found: ${file}`, where, o.missing);
  }
  if (!stat.isFile()) throw new UserError(`data source is not a file: ${file}`, where, o.missing);
  const check = new TextCheck(file, where);
  const checker = new Transform({
    transform(chunk: Buffer, _enc, done) {
      try {
        check.push(chunk);
        done(null, chunk);
      } catch (e) {
        done(e as Error);
      }
    },
    flush(done) {
      try {
        check.end();
        done();
      } catch (e) {
        done(e as Error);
      }
    },
  });
  const parser = parse({
    delimiter: o.delimiter ?? ',',
    quote: o.quotes === false ? false : '"',
    record_delimiter: ['\r\n', '\n', '\r'],
    relax_column_count: true,
    relax_quotes: true, // a quote inside an unquoted field is a character
    trim: o.trim ?? false,
    skip_empty_lines: true,
    bom: true,
    info: true,
  });
  const consume = async function* (records: AsyncIterable<{ record: string[]; info: { lines: number } }>) {
    for await (const { record, info } of records) {
      if (record.every((f) => !f.trim())) continue; // a line of blanks
      // info.lines is the line the record ends on; its quoted line breaks came before
      let breaks = 0;
      for (const f of record) for (let i = f.indexOf('\n'); i >= 0; i = f.indexOf('\n', i + 1)) breaks++;
      each({ fields: record, line: info.lines - breaks });
    }
  };
  try {
    await pipeline(fs.createReadStream(file, { highWaterMark: 1 << 22 }), checker, parser, consume);
  } catch (e) {
    if (e instanceof UserError) throw e;
    const err = e as Error & { code?: string; lines?: number };
    if (err.code?.startsWith('CSV_'))
      throw new UserError(`${file}:${err.lines ?? '?'}: ${err.message.replace(/ at line \d+/, '')}`, where, 'quote fields that hold the delimiter, quotes or line breaks, and double the quotes inside them ("")');
    throw e;
  }
}

/** Every record of a file (small files, and tests). */
export async function allRecords(file: string, where: Where, o: CsvOptions): Promise<CsvRecord[]> {
  const out: CsvRecord[] = [];
  await readRecords(file, where, o, (r) => out.push(r));
  return out;
}
