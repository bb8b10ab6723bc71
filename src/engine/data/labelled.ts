// Labelled sentences for classification: TSV files of `sentence<TAB>label` lines (the UCI sentiment
// files), or CSV files with a header whose sentence and label columns the model file names
// (data.textColumn, data.labelColumn), one file or several. A line without a tab, a short CSV row or
// an empty label is an error naming the file and line; a data set with a single class is an error
// too (nothing to learn).

import * as fs from 'node:fs';
import { UserError, Where } from '../errors';
import { tokenize, TextOptions, Vocab, buildVocab, readTextFile } from './text';
import { csvRecords } from './series';
import { didYouMean } from '../config/load';

export interface Example {
  tokens: string[];
  label: string;
}

/** Where the columns of CSV files are named (classification from CSV). */
export interface CsvColumns {
  text?: string;
  label?: string;
  /** the model file's place of data.textColumn and data.labelColumn, for errors */
  whereText?: Where;
  whereLabel?: Where;
}

export function loadLabelled(files: string[], opts: TextOptions, where: Where, columns: CsvColumns = {}): { examples: Example[]; classes: string[] } {
  const examples: Example[] = [];
  const add = (file: string, line: number, sentence: string, rawLabel: string, hint: string) => {
    const label = rawLabel.trim();
    if (!label) throw new UserError(`${file}:${line}: the label is empty`, where, hint);
    const tokens = tokenize(sentence, opts);
    if (tokens.length === 0) return; // a sentence with no tokens after preprocessing teaches nothing
    examples.push({ tokens, label });
  };
  for (const file of files) {
    const text = readTextFile(file, where, 'the path is relative to the model file; fix data.source');
    if (/\.csv$/i.test(file)) {
      loadCsv(file, text, columns, where, add);
      continue;
    }
    text.split(/\r?\n/).forEach((line, i) => {
      if (!line.trim()) return;
      const tab = line.lastIndexOf('\t');
      if (tab < 0) throw new UserError(`${file}:${i + 1}: no tab between the sentence and its label`, where, 'each line is: sentence<TAB>label (or use a CSV file with data.textColumn and data.labelColumn)');
      add(file, i + 1, line.slice(0, tab), line.slice(tab + 1), 'each line is: sentence<TAB>label');
    });
  }
  const classes = [...new Set(examples.map((e) => e.label))].sort();
  if (examples.length === 0) throw new UserError('the data has no examples', where, 'use TSV files of sentence<TAB>label lines, or CSV files with a header');
  if (classes.length < 2) throw new UserError(`every example has the label "${classes[0]}": a classifier needs at least two classes`, where, 'check the label column of the data');
  return { examples, classes };
}

/** A CSV file with a header line: the sentence and the label from the named columns. */
function loadCsv(file: string, text: string, c: CsvColumns, where: Where, add: (file: string, line: number, sentence: string, label: string, hint: string) => void): void {
  const records = csvRecords(text.replace(/^\uFEFF/, ''));
  if (records.length === 0) throw new UserError(`the CSV ${file} is empty`, where, 'use a CSV file with a header line and one row per example');
  const header = records[0].fields.map((h) => h.trim());
  const column = (name: string | undefined, key: 'textColumn' | 'labelColumn', w: Where | undefined): number => {
    const at = { ...(w ?? where), key: `data.${key}` };
    const cols = header.map((h) => `"${h}"`).join(', ');
    if (name === undefined) throw new UserError(`the CSV ${file} needs data.${key}: which column holds the ${key === 'textColumn' ? 'sentence' : 'label'}?`, at, `its columns: ${cols}`);
    const i = header.indexOf(name);
    if (i >= 0) return i;
    const guess = didYouMean(name, header);
    throw new UserError(`the CSV ${file} has no column "${name}"${guess ? ` (did you mean "${guess}"?)` : ''}`, at, `its columns: ${cols}`);
  };
  const ti = column(c.text, 'textColumn', c.whereText);
  const li = column(c.label, 'labelColumn', c.whereLabel);
  const hint = `each row needs the columns "${header[ti]}" and "${header[li]}"`;
  for (const r of records.slice(1)) {
    if (r.fields.length < header.length && Math.max(ti, li) >= r.fields.length)
      throw new UserError(`${file}:${r.line}: the row has ${r.fields.length} field${r.fields.length === 1 ? '' : 's'}, the header ${header.length}`, where, `${hint}; quote fields that hold commas`);
    add(file, r.line, r.fields[ti], r.fields[li], hint);
  }
}

export function vocabOf(examples: Example[], minFrequency: number): Vocab {
  const counts = new Map<string, number>();
  for (const e of examples) for (const t of e.tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
  return buildVocab(counts, minFrequency);
}
