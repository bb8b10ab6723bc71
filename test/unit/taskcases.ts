// A small, fast case of every registered task (its data from examples/data), for the tests that
// check a guarantee of the training loop or the CLI for every task (loop.test.ts, signals.test.ts).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const DATA = path.join(ROOT, 'examples/data');

export interface Case {
  /** writes the case's data into dir */
  data(dir: string): void;
  /** the model document with this train section (YAML flow map) */
  model(train: string, o?: { dropout?: number }): string;
  /** train keys of this task (generated data: the evaluation period) */
  trainKeys?: string;
  dropout: boolean;
}

export const CASES: Record<string, Case> = {
  'language-model': {
    data: (dir) => fs.writeFileSync(path.join(dir, 'c.txt'), fs.readFileSync(path.join(DATA, 'timemachine.txt'), 'utf8').slice(2000, 6000)),
    model: (train, o) => `name: lm\ntask: language-model\ndata: { source: c.txt, preprocess: letters, sequenceLength: 10, validation: 0.15 }\nmodel: { layers: [{ hidden: 12 }], dropout: ${o?.dropout ?? 0} }\ntrain: ${train}\n`,
    dropout: true,
  },
  classification: {
    data: (dir) => fs.writeFileSync(path.join(dir, 'd.tsv'), fs.readFileSync(path.join(DATA, 'sentiment/amazon_cells_labelled.txt'), 'utf8').split('\n').slice(0, 150).join('\n')),
    model: (train, o) => `name: cls\ntask: classification\ndata: { source: d.tsv, tokens: word, preprocess: letters, sequenceLength: 12, validation: 0.2, split: random }\nmodel: { embedding: 8, layers: [{ hidden: 8 }], dropout: ${o?.dropout ?? 0} }\ntrain: ${train}\n`,
    dropout: true,
  },
  forecast: {
    data: (dir) => fs.copyFileSync(path.join(DATA, 'airline-passengers.csv'), path.join(dir, 'a.csv')),
    model: (train, o) => `name: fc\ntask: forecast\ndata: { source: a.csv, column: Passengers, window: 12, horizon: 2, validation: 0.2 }\nmodel: { layers: [{ hidden: 8 }], dropout: ${o?.dropout ?? 0} }\ntrain: ${train}\n`,
    dropout: true,
  },
  copy: {
    data: () => undefined,
    model: (train) => `name: copy\ntask: copy\ndata: { copyLength: 2, sequenceLength: 3 }\nmodel: { layers: [{ hidden: 8 }] }\ntrain: ${train}\n`,
    trainKeys: 'evaluateEvery: 12, ',
    dropout: false,
  },
  adding: {
    data: () => undefined,
    model: (train) => `name: add\ntask: adding\ndata: { sequenceLength: 8 }\nmodel: { layers: [{ hidden: 8 }] }\ntrain: ${train}\n`,
    trainKeys: 'evaluateEvery: 12, ',
    dropout: false,
  },  'change-point': {
    data: () => undefined,
    model: (train) => `name: cp\ntask: change-point\ndata: { sequenceLength: 10, rate: 0.2 }\nmodel: { layers: [{ hidden: 8 }] }\ntrain: ${train}\n`,
    trainKeys: 'evaluateEvery: 12, ',
    dropout: false,
  },
  'key-query': {
    data: () => undefined,
    model: (train) => `name: kq\ntask: key-query\ndata: { sequenceLength: 8, values: 3 }\nmodel: { embedding: 4, layers: [{ hidden: 8 }] }\ntrain: ${train}\n`,
    trainKeys: 'evaluateEvery: 12, ',
    dropout: false,
  },
};


/** A temporary folder with the case's data and its model as m.gatelab.yaml. */
export function caseDir(c: Case, trainSection: string, o?: { dropout?: number }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-loop-'));
  c.data(dir);
  fs.writeFileSync(path.join(dir, 'm.gatelab.yaml'), c.model(trainSection, o));
  return dir;
}

