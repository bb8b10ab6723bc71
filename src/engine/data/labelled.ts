// Labelled sentences for classification: TSV files of `sentence<TAB>label` lines (the UCI sentiment
// files), or CSV files with a header whose sentence and label columns the model file names
// (data.textColumn, data.labelColumn), one file or several. A line without a tab, a short CSV row or
// an empty label is an error naming the file and line; a data set with a single class is an error
// too (nothing to learn).

import { UserError, Where } from '../errors';
import { tokenize, TextOptions, Vocab, buildVocab } from './text';
import { readRecords } from './csv';
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

export async function loadLabelled(files: string[], opts: TextOptions, where: Where, columns: CsvColumns = {}): Promise<{ examples: Example[]; classes: string[] }> {
  const examples: Example[] = [];
  const add = (file: string, line: number, sentence: string, rawLabel: string, hint: string) => {
    const label = rawLabel.trim();
    if (!label) throw new UserError(`${file}:${line}: the label is empty`, where, hint);
    const tokens = tokenize(sentence, opts);
    if (tokens.length === 0) return; // a sentence with no tokens after preprocessing teaches nothing
    examples.push({ tokens, label });
  };
  const missing = 'the path is relative to the model file; fix data.source';
  for (const file of files) {
    if (/\.csv$/i.test(file)) {
      await loadCsv(file, columns, where, missing, add);
      continue;
    }
    // sentence<TAB>label: the label after the last tab, quotes are part of the sentence
    await readRecords(file, where, { delimiter: '\t', quotes: false, missing }, (r) => {
      if (r.fields.length < 2) throw new UserError(`${file}:${r.line}: no tab between the sentence and its label`, where, 'each line is: sentence<TAB>label (or use a CSV file with data.textColumn and data.labelColumn)');
      add(file, r.line, r.fields.slice(0, -1).join('\t'), r.fields[r.fields.length - 1], 'each line is: sentence<TAB>label');
    });
  }
  const classes = [...new Set(examples.map((e) => e.label))].sort();
  if (examples.length === 0) throw new UserError('the data has no examples', where, 'use TSV files of sentence<TAB>label lines, or CSV files with a header');
  if (classes.length < 2) throw new UserError(`every example has the label "${classes[0]}": a classifier needs at least two classes`, where, 'check the label column of the data');
  return { examples, classes };
}

/** A CSV file with a header line: the sentence and the label from the named columns. */
async function loadCsv(file: string, c: CsvColumns, where: Where, missing: string, add: (file: string, line: number, sentence: string, label: string, hint: string) => void): Promise<void> {
  let header: string[] | undefined;
  let ti = -1;
  let li = -1;
  let hint = '';
  const column = (h: string[], name: string | undefined, key: 'textColumn' | 'labelColumn', w: Where | undefined): number => {
    const at = { ...(w ?? where), key: `data.${key}` };
    const cols = h.map((x) => `"${x}"`).join(', ');
    if (name === undefined) throw new UserError(`the CSV ${file} needs data.${key}: which column holds the ${key === 'textColumn' ? 'sentence' : 'label'}?`, at, `its columns: ${cols}`);
    const i = h.indexOf(name);
    if (i >= 0) return i;
    const guess = didYouMean(name, h);
    throw new UserError(`the CSV ${file} has no column "${name}"${guess ? ` (did you mean "${guess}"?)` : ''}`, at, `its columns: ${cols}`);
  };
  await readRecords(file, where, { missing }, (r) => {
    if (!header) {
      header = r.fields.map((h) => h.trim());
      ti = column(header, c.text, 'textColumn', c.whereText);
      li = column(header, c.label, 'labelColumn', c.whereLabel);
      hint = `each row needs the columns "${header[ti]}" and "${header[li]}"`;
      return;
    }
    if (Math.max(ti, li) >= r.fields.length)
      throw new UserError(`${file}:${r.line}: the row has ${r.fields.length} field${r.fields.length === 1 ? '' : 's'}, the header ${header.length}`, where, `${hint}; quote fields that hold commas`);
    add(file, r.line, r.fields[ti], r.fields[li], hint);
  });
  if (!header) throw new UserError(`the CSV ${file} is empty`, where, 'use a CSV file with a header line and one row per example');
}

export function vocabOf(examples: Example[], minFrequency: number): Vocab {
  const counts = new Map<string, number>();
  for (const e of examples) for (const t of e.tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
  return buildVocab(counts, minFrequency);
}
