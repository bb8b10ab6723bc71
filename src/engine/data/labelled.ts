// Labelled sentences for classification: TSV files of `sentence<TAB>label` lines (the UCI sentiment
// files), one or several. A line without a tab, or an empty sentence, is an error naming the file
// and line; a data set with a single class is an error too (nothing to learn).

import * as fs from 'node:fs';
import { UserError, Where } from '../errors';
import { tokenize, TextOptions, Vocab, buildVocab } from './text';

export interface Example {
  tokens: string[];
  label: string;
}

export function loadLabelled(files: string[], opts: TextOptions, where: Where): { examples: Example[]; classes: string[] } {
  const examples: Example[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      throw new UserError(`data file not found: ${file}`, where, 'the path is relative to the model file; fix data.source');
    }
    text.split(/\r?\n/).forEach((line, i) => {
      if (!line.trim()) return;
      const tab = line.lastIndexOf('\t');
      if (tab < 0) throw new UserError(`${file}:${i + 1}: no tab between the sentence and its label`, where, 'each line is: sentence<TAB>label');
      const label = line.slice(tab + 1).trim();
      const tokens = tokenize(line.slice(0, tab), opts);
      if (!label) throw new UserError(`${file}:${i + 1}: the label is empty`, where, 'each line is: sentence<TAB>label');
      if (tokens.length === 0) return; // a sentence with no tokens after preprocessing teaches nothing
      examples.push({ tokens, label });
    });
  }
  const classes = [...new Set(examples.map((e) => e.label))].sort();
  if (examples.length === 0) throw new UserError('the data has no examples', where, 'use TSV files of sentence<TAB>label lines');
  if (classes.length < 2) throw new UserError(`every example has the label "${classes[0]}": a classifier needs at least two classes`, where, 'check the label column of the data');
  return { examples, classes };
}

export function vocabOf(examples: Example[], minFrequency: number): Vocab {
  const counts = new Map<string, number>();
  for (const e of examples) for (const t of e.tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
  return buildVocab(counts, minFrequency);
}
