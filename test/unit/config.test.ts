// Model files (src/engine/config): defaults, several models per file, JSON, every kind of error with
// its exact line, column, key, hint and quick fix, the tolerant CodeLens anchors, and the shipped JSON
// Schema (media/gatelab.schema.json) staying in sync with the one the loader validates against.
// Fixture files live in test/fixtures/config/.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { diagnoseModelText, didYouMean, loadModelFile, loadModelFiles, modelAnchors, parseModelFile, Problem, validateModelText, whereOf } from '../../src/engine/config/load';
import { JsonSchema, keysAt, MODEL_SCHEMA, SCHEMA_KEYS, schemaAt, schemaJson } from '../../src/engine/config/schema';
import { UserError, UserErrors } from '../../src/engine/errors';

const FILE = '/ws/models/m.gatelab.yaml';
const FIXTURES = path.resolve(__dirname, '../fixtures/config');
const fixture = (name: string) => path.join(FIXTURES, name);
const ROOT = path.resolve(__dirname, '../..');

const D2L = `name: timemachine-char
data:
  source: data/timemachine.txt
  preprocess: letters
model:
  layers:
    - hidden: 256
train:
  epochs: 100
  optimizer: { type: sgd, learningRate: 1 }
`;

/** The problems of a text, flattened for assertions. */
function problemsOf(text: string, file = FILE) {
  return diagnoseModelText(text, file).map((p) => ({ ...p.error.where, message: p.error.message, hint: p.error.hint, fix: p.fix?.replacement }));
}

/** What a call throws (fails the test when it does not throw). */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

/** Applies one quick fix to the text (1-based, end-exclusive range on one line). */
function applyFix(text: string, fix: NonNullable<Problem['fix']>): string {
  const lines = text.split('\n');
  const { line, column, endColumn } = fix.range;
  const l = lines[line - 1];
  lines[line - 1] = l.slice(0, column - 1) + fix.replacement + l.slice(endColumn - 1);
  return lines.join('\n');
}

describe('valid model files', () => {
  it('resolves a d2l-style file with every default filled in', () => {
    const file = fixture('d2l.gatelab.yaml');
    const m = loadModelFile(file);
    const { positions, ...rest } = m;
    expect(rest).toEqual({
      name: 'timemachine-char',
      task: 'language-model',
      file,
      line: 3,
      data: {
        source: path.join(ROOT, 'examples/data/timemachine.txt'),
        sources: [path.join(ROOT, 'examples/data/timemachine.txt')],
        sourceAsWritten: '../../../examples/data/timemachine.txt',
        split: 'tail',
        pooling: 'last',
        tokens: 'char',
        preprocess: 'letters',
        minFrequency: 0,
        sequenceLength: 35,
        validation: 0.1,
        validationTokens: 1_000_000,
        partition: 'sequential',
        column: undefined,
        columns: undefined,
        target: undefined,
        categorical: [],
        missing: 'error',
        sequences: undefined,
        labels: undefined,
        idColumn: undefined,
        scale: 'standard',
        sequenceLengthGiven: false,
        window: 12,
        horizon: 1,
        transform: 'none',
        copyLength: 10,
        values: 4,
        rate: 0.05,
        noise: 0.5,
        season: undefined,
      },
      model: {
        embedding: 0,
        dropout: 0,
        init: { input: 'pytorch', recurrent: 'pytorch' },
        layers: [{ type: 'lstm', hidden: 256, activation: 'tanh', forgetBias: 0, peepholes: false, coupledGates: false, gateActivation: 'sigmoid', hardSigmoidSlope: 0.2, hardSigmoidOffset: 0.5, cellClip: 0, bidirectional: false }],
      },
      train: {
        epochs: 50,
        steps: undefined,
        batchSize: 32,
        optimizer: { type: 'sgd', learningRate: 1, momentum: 0.9, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 },
        clipNorm: 1,
        seed: 42,
        device: 'auto',
        carryState: true,
        stepsPerRun: 16,
        evaluateEvery: 100,
        schedule: { type: 'constant', warmupSteps: 0, stepSize: 1000, gamma: 0.1, minLearningRate: 0 },
      },
    });
    expect(fs.existsSync(m.data.source)).toBe(true);
    expect(positions).toMatchObject({ name: { line: 3, column: 1 }, 'data.source': { line: 5, column: 3 }, 'model.layers.0': { line: 9, column: 7 }, 'model.layers.0.hidden': { line: 9, column: 7 }, 'train.optimizer.learningRate': { line: 12, column: 27 } });
  });

  it('resolves defaults and paths of inline text', () => {
    const [m] = parseModelFile(D2L, FILE);
    expect(m.line).toBe(1);
    expect(m.data).toMatchObject({ source: '/ws/models/data/timemachine.txt', sourceAsWritten: 'data/timemachine.txt', tokens: 'char', preprocess: 'letters' });
    expect(m.train.earlyStopping).toBeUndefined();
  });

  it('epochs default to 10 when neither epochs nor steps is given; steps replace epochs', () => {
    const [a] = parseModelFile(D2L.replace('  epochs: 100\n', ''), FILE);
    expect([a.train.epochs, a.train.steps]).toEqual([10, undefined]);
    const [b] = parseModelFile(D2L.replace('epochs: 100', 'steps: 500'), FILE);
    expect([b.train.epochs, b.train.steps]).toEqual([undefined, 500]);
  });

  it('gives each optimizer its own learning-rate and weight-decay defaults', () => {
    const opt = (o: string) => parseModelFile(D2L.replace('{ type: sgd, learningRate: 1 }', o), FILE)[0].train.optimizer;
    expect(opt('{ type: adamw }')).toMatchObject({ type: 'adamw', learningRate: 0.001, weightDecay: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
    expect(opt('{ type: adam }')).toMatchObject({ learningRate: 0.001, weightDecay: 0 });
    expect(opt('{ type: momentum }')).toMatchObject({ learningRate: 1, momentum: 0.9, weightDecay: 0 });
    expect(opt('{ type: adamw, weightDecay: 0 }')).toMatchObject({ weightDecay: 0 });
  });

  it('keeps builtin: sources and absolute paths, and lists every source of a classifier', () => {
    const [a] = parseModelFile(D2L.replace('data/timemachine.txt', 'builtin:timemachine'), FILE);
    expect([a.data.source, a.data.sourceAsWritten]).toEqual(['builtin:timemachine', 'builtin:timemachine']);
    const [b] = parseModelFile(D2L.replace('data/timemachine.txt', '/data/t.txt'), FILE);
    expect(b.data.source).toBe('/data/t.txt');
    const [c] = parseModelFile(D2L.replace('source: data/timemachine.txt', 'source: [pos.tsv, ../neg.tsv]').replace('name: timemachine-char', 'name: c\ntask: classification'), FILE);
    expect(c.data.sources).toEqual(['/ws/models/pos.tsv', '/ws/neg.tsv']);
    expect(c.data.source).toBe('/ws/models/pos.tsv');
  });

  it('early stopping gets its defaults, and needs a validation split', () => {
    const [m] = parseModelFile(D2L.replace('train:\n', 'train:\n  earlyStopping: { patience: 3 }\n'), FILE);
    expect(m.train.earlyStopping).toEqual({ patience: 3, minDelta: 0 });
    const text = D2L.replace('  preprocess: letters', '  preprocess: letters\n  validation: 0').replace('train:\n', 'train:\n  earlyStopping: { patience: 3 }\n');
    expect(problemsOf(text)).toEqual([expect.objectContaining({ key: 'train.earlyStopping', line: 10, column: 3, hint: 'set data.validation above 0 (e.g. 0.1)' })]);
  });

  it('reads several models from one YAML file, each with the line of its first key', () => {
    const ms = loadModelFiles(fixture('multi.gatelab.yaml'));
    expect(ms.map((m) => [m.name, m.line, m.task])).toEqual([
      ['small-lstm', 2, 'language-model'],
      ['gru-adam', 9, 'language-model'],
      ['adding-task', 24, 'adding'],
    ]);
    const [, gru, adding] = ms;
    expect(gru.data.tokens).toBe('word');
    expect(gru.model).toMatchObject({ embedding: 64, dropout: 0.2, layers: [{ type: 'gru', hidden: 128 }, { type: 'gru', hidden: 128 }] });
    expect(gru.train).toMatchObject({ steps: 2000, epochs: undefined, optimizer: { type: 'adam', learningRate: 0.001 } });
    expect(gru.positions!['model.layers.1.hidden']).toEqual({ line: 17, column: 20 });
    // copy and adding make their own data: no source needed
    expect(adding.data.sourceAsWritten).toBe('');
    expect(adding.model.layers[0].forgetBias).toBe(1);
    expect(adding.train).toMatchObject({ epochs: 10, optimizer: { type: 'adamw', learningRate: 0.01, weightDecay: 0.01 } });
    expect(modelAnchors(fs.readFileSync(fixture('multi.gatelab.yaml'), 'utf8'))).toEqual([
      { name: 'small-lstm', line: 2, column: 1 },
      { name: 'gru-adam', line: 9, column: 1 },
      { name: 'adding-task', line: 24, column: 1 },
    ]);
  });

  it('picks a model by name, else the first one', () => {
    expect(loadModelFile(fixture('multi.gatelab.yaml')).name).toBe('small-lstm');
    expect(loadModelFile(fixture('multi.gatelab.yaml'), 'adding-task').line).toBe(24);
  });

  it('reads a JSON file holding one model', () => {
    const [m] = loadModelFiles(fixture('one.gatelab.json'));
    expect(m).toMatchObject({ name: 'json-model', line: 2, data: { source: path.join(FIXTURES, 'corpus.txt'), sequenceLength: 20 }, train: { epochs: 3, batchSize: 8 } });
    expect(m.model.layers[0]).toMatchObject({ hidden: 16, peepholes: true });
    expect(modelAnchors(fs.readFileSync(fixture('one.gatelab.json'), 'utf8'))).toEqual([{ name: 'json-model', line: 2, column: 3 }]);
  });

  it('reads a JSON array as several models', () => {
    const ms = loadModelFiles(fixture('list.gatelab.json'));
    expect(ms.map((m) => [m.name, m.line, m.task])).toEqual([
      ['first', 3, 'language-model'],
      ['second', 8, 'copy'],
    ]);
    expect(ms[1].train.optimizer).toMatchObject({ type: 'momentum', learningRate: 1, momentum: 0.9 });
    expect(modelAnchors(fs.readFileSync(fixture('list.gatelab.json'), 'utf8')).map((a) => [a.name, a.line, a.column])).toEqual([
      ['first', 3, 5],
      ['second', 8, 5],
    ]);
  });

  it('follows YAML aliases', () => {
    const [m] = parseModelFile(D2L.replace('    - hidden: 256\n', '    - &l { hidden: 256, peepholes: true }\n    - *l\n'), FILE);
    expect(m.model.layers.map((l) => [l.hidden, l.peepholes])).toEqual([
      [256, true],
      [256, true],
    ]);
  });

  it('records key positions so that later errors can point at a key', () => {
    const [m] = parseModelFile(D2L, FILE);
    expect(whereOf(m, 'model.layers.0.hidden')).toEqual({ file: FILE, line: 7, column: 7, key: 'model.layers.0.hidden' });
    expect(whereOf(m, 'train.optimizer.learningRate')).toEqual({ file: FILE, line: 10, column: 27, key: 'train.optimizer.learningRate' });
    // a key that is not written falls back to its nearest written parent, then to the model's line
    expect(whereOf(m, 'train.batchSize')).toEqual({ file: FILE, line: 8, column: 1, key: 'train.batchSize' });
    expect(whereOf(m, 'model.layers.3.hidden')).toEqual({ file: FILE, line: 6, column: 3, key: 'model.layers.3.hidden' });
    expect(whereOf(m, 'task')).toEqual({ file: FILE, line: 1, key: 'task' });
    expect(whereOf({ ...m, positions: undefined }, 'data.source')).toEqual({ file: FILE, line: 1, key: 'data.source' });
  });
});

describe('errors name the line, column and key', () => {
  it('a file with many mistakes: every one, in order, with its hint and fix', () => {
    const text = fs.readFileSync(fixture('broken.gatelab.yaml'), 'utf8');
    const ps = problemsOf(text, 'broken.gatelab.yaml');
    expect(ps.map((p) => [p.line, p.column, p.key, p.message, p.hint, p.fix])).toEqual([
      [4, 11, 'data.tokens', '"chars" must be one of char, word', 'did you mean "char"?', 'char'],
      [5, 15, 'data.validation', '1.5 must be less than 1', undefined, undefined],
      [8, 7, 'model.layers.0.hidden', 'missing required key "hidden"', 'add hidden: … under model.layers.0', undefined],
      [9, 7, 'model.layers.0.hiden', 'unknown key "hiden"', 'did you mean "hidden"?', 'hidden'],
      [10, 18, 'model.layers.0.peepholes', 'expected true or false, got string "yes"', 'write true', 'true'],
      [13, 3, 'train.steps', 'give train.epochs or train.steps, not both', 'remove one of them', undefined],
      [14, 14, 'train.batchSize', 'expected an integer, got string "16"', 'write the number without quotes', '16'],
      [17, 5, 'train.optimizer.lerningRate', 'unknown key "lerningRate"', 'did you mean "learningRate"?', 'learningRate'],
      [18, 13, 'train.clipNorm', '-1 is below the minimum 0', 'use a value ≥ 0', '0'],
    ]);
    expect(ps.every((p) => p.file === 'broken.gatelab.yaml')).toBe(true);
    // validateModelText: the same, as UserErrors
    expect(validateModelText(text, 'broken.gatelab.yaml').map((e) => e.format())).toContain('broken.gatelab.yaml:17:5: train.optimizer.lerningRate: unknown key "lerningRate" (did you mean "learningRate"?)');
  });

  it('loading a broken file throws every problem together', () => {
    const file = fixture('broken.gatelab.yaml');
    const err = thrown(() => loadModelFile(file));
    expect(err).toBeInstanceOf(UserErrors);
    const problems = (err as UserErrors).problems;
    expect(problems).toHaveLength(9);
    expect(problems.every((p) => p instanceof UserError && p.where.file === file)).toBe(true);
    expect((err as UserErrors).format().split('\n')[0]).toBe(`${file}:4:11: data.tokens: "chars" must be one of char, word (did you mean "char"?)`);
  });

  it('quick fixes repair what they point at', () => {
    let text = fs.readFileSync(fixture('broken.gatelab.yaml'), 'utf8');
    // apply the fixes from the bottom up so that earlier ranges stay valid
    for (const p of diagnoseModelText(text, 'b.yaml').reverse()) if (p.fix) text = applyFix(text, p.fix);
    expect(problemsOf(text, 'b.yaml').map((p) => p.key)).toEqual(['data.validation', 'train.steps']);
    expect(text).toContain('      hidden: 64\n      peepholes: true\n');
    expect(text).toContain('    learningRate: 0.01\n  clipNorm: 0\n');
  });

  it('a single problem is thrown as one UserError', () => {
    const err = thrown(() => parseModelFile(D2L.replace('hidden: 256', 'hidden: lots'), FILE));
    expect(err).toBeInstanceOf(UserError);
    expect(err).not.toBeInstanceOf(UserErrors);
    expect((err as UserError).where).toEqual({ file: FILE, line: 7, column: 15, key: 'model.layers.0.hidden' });
    expect((err as UserError).format()).toBe(`${FILE}:7:15: model.layers.0.hidden: expected an integer, got string "lots"`);
  });

  it('unknown key, with a did-you-mean hint and a fix', () => {
    const [p] = diagnoseModelText(D2L.replace('learningRate', 'lerningRate'), FILE);
    expect(p.error.where).toEqual({ file: FILE, line: 10, column: 27, key: 'train.optimizer.lerningRate' });
    expect([p.error.message, p.error.hint]).toEqual(['unknown key "lerningRate"', 'did you mean "learningRate"?']);
    expect(p.fix).toEqual({ range: { line: 10, column: 27, endLine: 10, endColumn: 38 }, replacement: 'learningRate', title: 'Change to "learningRate"' });
    // no fix when the suggested key is already written (it would make a duplicate)
    const [q] = diagnoseModelText(D2L.replace('epochs: 100', 'epochs: 100\n  epoch: 3'), FILE);
    expect(q).toMatchObject({ error: { message: 'unknown key "epoch"', hint: 'did you mean "epochs"?' } });
    expect(q.fix).toBeUndefined();
  });

  it('unknown key without a close match lists the valid keys', () => {
    const [p] = problemsOf(D2L + 'banana: 1\n');
    expect(p).toMatchObject({ line: 11, column: 1, key: 'banana', message: 'unknown key "banana"', hint: 'valid keys here: name, task, data, model, train, sweep', fix: undefined });
  });

  it('wrong types', () => {
    expect(problemsOf(D2L.replace('hidden: 256', 'hidden: lots'))).toEqual([expect.objectContaining({ line: 7, column: 15, key: 'model.layers.0.hidden', message: 'expected an integer, got string "lots"' })]);
    expect(problemsOf(D2L.replace('epochs: 100', 'epochs: 2.5'))).toEqual([expect.objectContaining({ line: 9, column: 11, key: 'train.epochs', message: 'expected an integer, got number 2.5', hint: 'use a whole number', fix: '3' })]);
    expect(problemsOf(D2L.replace('  preprocess: letters', '  validation: abc'))).toEqual([expect.objectContaining({ line: 4, column: 15, key: 'data.validation', message: 'expected a number, got string "abc"' })]);
    expect(problemsOf(D2L.replace('  epochs: 100', '  epochs:'))).toEqual([expect.objectContaining({ line: 9, column: 3, key: 'train.epochs', message: 'expected an integer, got nothing' })]);
    expect(problemsOf(D2L.replace('    - hidden: 256', '    hidden: 256'))).toEqual([expect.objectContaining({ line: 7, column: 5, key: 'model.layers', message: 'expected a list, got a mapping' })]);
    expect(problemsOf(D2L.replace('  optimizer: { type: sgd, learningRate: 1 }', '  optimizer: sgd'))).toEqual([expect.objectContaining({ line: 10, column: 14, key: 'train.optimizer', message: 'expected a mapping of keys, got string "sgd"' })]);
    expect(problemsOf(D2L.replace('source: data/timemachine.txt', 'source: 5'))).toEqual([expect.objectContaining({ line: 3, column: 11, key: 'data.source', message: 'expected a string, got number 5' })]);
    expect(problemsOf(D2L.replace('source: data/timemachine.txt', 'source: [a.txt, 5]'))).toEqual([expect.objectContaining({ line: 3, column: 19, key: 'data.source.1', message: 'expected a string, got number 5' })]);
  });

  it('enum values, with a suggestion', () => {
    expect(problemsOf(D2L.replace('type: sgd', 'type: adm'))).toEqual([
      expect.objectContaining({ line: 10, column: 22, key: 'train.optimizer.type', message: '"adm" must be one of sgd, momentum, adam, adamw', hint: 'did you mean "adam"?', fix: 'adam' }),
    ]);
    expect(problemsOf(D2L.replace('type: sgd', 'type: SGD'))[0]).toMatchObject({ fix: 'sgd' });
    expect(problemsOf(D2L + '  device: GPU\n')[0]).toMatchObject({ line: 11, column: 11, key: 'train.device', fix: 'cuda' });
    expect(problemsOf(D2L.replace('name: timemachine-char', 'name: t\ntask: regression'))[0]).toMatchObject({ line: 2, column: 7, key: 'task', message: '"regression" must be one of language-model, classification, forecast, copy, adding, key-query, change-point', fix: undefined });
    expect(problemsOf(D2L.replace('preprocess: letters', 'preprocess: 3'))[0]).toMatchObject({ key: 'data.preprocess', message: 'expected a string, got number 3', hint: 'one of none, letters' });
  });

  it('out of range, with the nearest valid value as the fix where there is one', () => {
    expect(problemsOf(D2L.replace('hidden: 256', 'hidden: 0'))).toEqual([expect.objectContaining({ line: 7, column: 15, key: 'model.layers.0.hidden', message: '0 is below the minimum 1', fix: '1' })]);
    expect(problemsOf(D2L + '  stepsPerRun: 5000\n')).toEqual([expect.objectContaining({ line: 11, column: 16, key: 'train.stepsPerRun', message: '5000 is above the maximum 1000', fix: '1000' })]);
    expect(problemsOf(D2L.replace('  preprocess: letters', '  validation: 1'))).toEqual([expect.objectContaining({ line: 4, column: 15, key: 'data.validation', message: '1 must be less than 1', fix: undefined })]);
    expect(problemsOf(D2L.replace('learningRate: 1', 'learningRate: 0'))).toEqual([expect.objectContaining({ line: 10, column: 41, key: 'train.optimizer.learningRate', message: '0 must be greater than 0' })]);
    expect(problemsOf(D2L.replace('model:\n', 'model:\n  dropout: 1\n'))).toEqual([expect.objectContaining({ line: 6, key: 'model.dropout' })]);
  });

  it('names and strings', () => {
    expect(problemsOf(D2L.replace('name: timemachine-char', 'name: "my model"'))).toEqual([
      expect.objectContaining({ line: 1, column: 7, key: 'name', message: '"my model" is not a valid name', hint: 'use letters, digits, ".", "_" and "-", starting with a letter or digit' }),
    ]);
    expect(problemsOf(D2L.replace('source: data/timemachine.txt', 'source: ""'))).toEqual([expect.objectContaining({ line: 3, column: 11, key: 'data.source', message: 'must not be empty' })]);
  });

  it('missing required keys are blamed on the start of their mapping', () => {
    const p = problemsOf('name: x\nmodel:\n  layers: []\n');
    expect(p.map((x) => [x.line, x.column, x.key, x.message])).toEqual([
      [1, 1, 'data', 'missing required key "data"'],
      [3, 11, 'model.layers', 'needs at least 1 item'],
    ]);
    expect(problemsOf('data: { source: a }\nmodel:\n  embedding: 8\n').map((x) => [x.line, x.column, x.key, x.message])).toEqual([
      [1, 1, 'name', 'missing required key "name"'],
      [3, 3, 'model.layers', 'missing required key "layers"'],
    ]);
    expect(problemsOf('name: x\ndata: { source: a }\n')).toEqual([expect.objectContaining({ line: 1, column: 1, key: 'model', message: 'missing required key "model"', hint: 'add model: …' })]);
    const q = problemsOf('name: x\ndata:\n  tokens: word\nmodel:\n  layers:\n    - type: gru\n');
    expect(q.map((x) => [x.line, x.column, x.key, x.message, x.hint])).toEqual([
      [2, 1, 'data.source', 'missing required key "source"', 'a language-model model reads its data from data.source'],
      [6, 7, 'model.layers.0.hidden', 'missing required key "hidden"', 'add hidden: … under model.layers.0'],
    ]);
    // copy and adding need no data; a forecast needs its column
    expect(problemsOf('name: x\ntask: copy\nmodel: { layers: [{ hidden: 8 }] }\n')).toEqual([]);
    expect(problemsOf('name: x\ntask: forecast\ndata: { source: a.csv }\nmodel: { layers: [{ hidden: 8 }] }\n')).toEqual([expect.objectContaining({ line: 3, column: 1, key: 'data.column' })]);
  });

  it('epochs and steps together', () => {
    expect(problemsOf(D2L.replace('epochs: 100', 'epochs: 100\n  steps: 5'))).toEqual([
      expect.objectContaining({ key: 'train.steps', line: 10, column: 3, message: 'give train.epochs or train.steps, not both', hint: 'remove one of them' }),
    ]);
    expect(problemsOf(D2L.replace('epochs: 100', 'steps: 5\n  epochs: 100'))).toEqual([expect.objectContaining({ key: 'train.steps', line: 9, column: 3 })]);
  });

  it('duplicate model names and duplicate keys', () => {
    expect(problemsOf(`${D2L}---\n${D2L}`)).toEqual([expect.objectContaining({ key: 'name', line: 12, column: 1, message: 'a model named "timemachine-char" is already defined on line 1', hint: 'give each model in a file its own name' })]);
    expect(problemsOf(D2L.replace('  preprocess: letters', '  preprocess: letters\n  preprocess: none'))).toEqual([expect.objectContaining({ key: 'data.preprocess', line: 5, column: 3, message: 'duplicate key "preprocess"' })]);
  });

  it('problems of a later document carry their line in the file', () => {
    const text = `${D2L}---\n${D2L.replace('timemachine-char', 'second').replace('hidden: 256', 'hiden: 256')}`;
    // at one spot, in the order found: the unknown key, then the key it leaves missing
    expect(problemsOf(text).map((p) => [p.line, p.column, p.key])).toEqual([
      [18, 7, 'model.layers.0.hiden'],
      [18, 7, 'model.layers.0.hidden'],
    ]);
  });

  it('errors in JSON files point into the JSON text', () => {
    const json = '{\n  "name": "j",\n  "data": { "source": "x.txt" },\n  "model": { "layers": [{ "hidden": 8, "peephole": true }] },\n  "train": { "batchSize": 0 }\n}\n';
    expect(problemsOf(json, '/ws/a.gatelab.json').map((p) => [p.line, p.column, p.key, p.message, p.fix])).toEqual([
      [4, 40, 'model.layers.0.peephole', 'unknown key "peephole"', 'peepholes'],
      [5, 27, 'train.batchSize', '0 is below the minimum 1', '1'],
    ]);
    const list = `[${json.trim()}, {"name": "j", "model": {"layers": [{"hidden": 1}]}, "task": "copy"}]`;
    expect(problemsOf(list, '/ws/a.gatelab.json').map((p) => [p.line, p.key, p.message])).toEqual([
      [4, 'model.layers.0.peephole', 'unknown key "peephole"'],
      [5, 'train.batchSize', '0 is below the minimum 1'],
      [6, 'name', 'a model named "j" is already defined on line 2'],
    ]);
  });

  it('YAML syntax errors with their position', () => {
    const text = fs.readFileSync(fixture('syntax.gatelab.yaml'), 'utf8');
    expect(problemsOf(text, 'syntax.gatelab.yaml')).toEqual([
      {
        file: 'syntax.gatelab.yaml',
        line: 6,
        column: 1,
        message: 'syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]',
        hint: 'the file must be valid YAML',
        fix: undefined,
      },
    ]);
    expect(problemsOf('name: x\n\tdata: 1\n')).toEqual([expect.objectContaining({ line: 2, column: 1, message: 'syntax error: Tabs are not allowed as indentation' })]);
    // one mistake reported several ways by the parser is one problem
    expect(problemsOf('name: x\n- a\n')).toHaveLength(1);
    const err = thrown(() => loadModelFile(fixture('syntax.gatelab.yaml')));
    expect((err as UserError).format()).toBe(`${fixture('syntax.gatelab.yaml')}:6:1: syntax error: Flow sequence in block collection must be sufficiently indented and end with a ] (the file must be valid YAML)`);
  });

  it('JSON syntax errors with their position', () => {
    expect(problemsOf('{\n  "name": "x",\n  "data": {"source": "a" "b"}\n}\n', '/ws/a.gatelab.json')).toEqual([expect.objectContaining({ line: 3, column: 26, hint: 'the file must be valid JSON' })]);
  });

  it('a document that is not a mapping, and a file without models', () => {
    expect(problemsOf('hello\n')).toEqual([expect.objectContaining({ line: 1, column: 1, key: undefined, message: 'expected a mapping of keys, got string "hello"' })]);
    expect(problemsOf('')).toEqual([]);
    expect(thrown(() => parseModelFile('# only a comment\n', FILE))).toMatchObject({ message: 'the file holds no model', where: { file: FILE, line: 1 } });
  });

  it('a missing file names the path', () => {
    const missing = path.join(os.tmpdir(), 'gatelab-nonexistent', 'x.gatelab.yaml');
    const err = thrown(() => loadModelFile(missing)) as UserError;
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe(`model file not found: ${missing}`);
    expect(err.where).toEqual({ file: missing });
    expect(err.where.key).toBeUndefined();
    expect(err.hint).toBe('check the path');
    expect(thrown(() => loadModelFiles(FIXTURES))).toMatchObject({ message: expect.stringMatching(/^cannot read the model file/) });
  });

  it('an unknown model name lists the models of the file', () => {
    const file = fixture('multi.gatelab.yaml');
    const a = thrown(() => loadModelFile(file, 'gru-adma')) as UserError;
    expect(a).toBeInstanceOf(UserError);
    expect(a.message).toBe('no model named "gru-adma" in this file');
    expect(a.where).toEqual({ file, key: '--model' });
    expect(a.hint).toBe('did you mean "gru-adam"? (models: small-lstm, gru-adam, adding-task)');
    expect((thrown(() => loadModelFile(file, 'zzz')) as UserError).hint).toBe('models: small-lstm, gru-adam, adding-task');
  });
});

describe('CodeLens anchors', () => {
  it('survive broken text and never throw', () => {
    expect(modelAnchors('')).toEqual([]);
    expect(modelAnchors('name: a\ndata: [unclosed\n---\nname: b\nmodel: {}\n')).toEqual([
      { name: 'a', line: 1, column: 1 },
      { name: 'b', line: 4, column: 1 },
    ]);
    expect(modelAnchors('# a model being written\n\ndata: 1\n')).toEqual([{ name: undefined, line: 3, column: 1 }]);
    for (const text of [':::\n- - -\n{', 'name: a\n  bad: [\n', '{"name": ', '[1, 2, {"name": "x"}]', '&a [*a]', '---\n---\n', '\t\t\n', 'name: *nowhere\n'])
      expect(() => modelAnchors(text), JSON.stringify(text)).not.toThrow();
  });
});

describe('did you mean', () => {
  it('finds transpositions, typos, case and prefixes, and nothing far away', () => {
    const keys = ['learningRate', 'momentum', 'beta1', 'beta2', 'epsilon', 'weightDecay', 'type'];
    expect(didYouMean('lerningRate', keys)).toBe('learningRate');
    expect(didYouMean('momnetum', keys)).toBe('momentum');
    expect(didYouMean('learning', keys)).toBe('learningRate');
    expect(didYouMean('LearningRate', keys)).toBe('learningRate');
    expect(didYouMean('epsilon2', keys)).toBe('epsilon');
    expect(didYouMean('zzz', keys)).toBeUndefined();
    expect(didYouMean('t', keys)).toBeUndefined();
  });
});

describe('the schema', () => {
  it('media/gatelab.schema.json is generated from MODEL_SCHEMA (UPDATE_SCHEMA=1 rewrites it)', () => {
    const file = path.join(ROOT, 'media/gatelab.schema.json');
    if (process.env.UPDATE_SCHEMA) fs.writeFileSync(file, schemaJson());
    expect(fs.readFileSync(file, 'utf8'), 'media/gatelab.schema.json is out of date: run UPDATE_SCHEMA=1 npx vitest run test/unit/config.test.ts').toBe(schemaJson());
    const doc = JSON.parse(schemaJson());
    expect(doc.$schema).toBe('http://json-schema.org/draft-07/schema#');
    const { $schema, ...model } = MODEL_SCHEMA;
    expect($schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(doc.definitions.model).toEqual(JSON.parse(JSON.stringify(model)));
    expect(doc.oneOf).toEqual([{ $ref: '#/definitions/model' }, { type: 'array', items: { $ref: '#/definitions/model' }, minItems: 1 }]);
  });

  it('documents every property, forbids unknown keys everywhere, describes every enum value', () => {
    const walk = (s: JsonSchema, at: string) => {
      // (a sweep is the one free-form map: its entries are checked by the loader's cross-key rules;
      // a cell layer's equations and init are maps of free names whose values have one schema)
      if (s.type === 'object' && (at === 'model.model.layers[].equations' || at === 'model.model.layers[].init'))
        expect(typeof s.additionalProperties === 'object' && s.additionalProperties.description, `${at} additionalProperties`).toBeTruthy();
      else if (s.type === 'object') expect(s.additionalProperties, `${at} additionalProperties`).toBe(at === 'model.sweep');
      if (s.enumDescriptions) expect(s.enumDescriptions.length, `${at} enumDescriptions`).toBe(s.enum?.length);
      for (const [k, sub] of Object.entries(s.properties ?? {})) {
        expect(sub.description, `${at}.${k} description`).toBeTruthy();
        walk(sub, `${at}.${k}`);
      }
      if (s.items) walk(s.items, `${at}[]`);
    };
    walk(MODEL_SCHEMA, 'model');
  });

  it('a model with every key at its default is valid', () => {
    // values for the keys that have no default
    const given: Record<string, unknown> = {
      name: 'all-defaults',
      'data.source': 'a.txt',
      'data.column': 'y',
      // forecast keys (data.columns excludes data.column; they are checked in their own tests)
      'data.columns': undefined,
      'data.target': undefined,
      'data.categorical': undefined,
      'data.sequences': undefined,
      'data.labels': undefined,
      'data.idColumn': undefined,
      'data.scale': undefined,
      'data.probe': undefined,
      'data.textColumn': 'text',
      'data.labelColumn': 'label',
      'data.season': 12,
      'model.layers.*.hidden': 8,
      // the keys of a cell layer are valid on cell layers only
      'model.layers.*.type': 'cell',
      'model.layers.*.equations': { h: 'tanh(W x + U h + b)' },
      'model.layers.*.state': ['h'],
      'model.layers.*.init': { 'h.b': 0 },
      'train.epochs': 1,
      'train.optimizer.learningRate': 0.1,
      'train.optimizer.weightDecay': 0,
      'train.earlyStopping.patience': 2,
    };
    const build = (s: JsonSchema, at: string): unknown => {
      if (at in given) return given[at];
      if (s.anyOf && s.default !== undefined) return s.default;
      if (s.default !== undefined) return s.default;
      if (s.type === 'object') return Object.fromEntries(Object.entries(s.properties ?? {}).flatMap(([k, sub]) => (k === 'steps' ? [] : [[k, build(sub, at ? `${at}.${k}` : k)]])));
      if (s.type === 'array') return [build(s.items!, `${at}.*`)];
      throw new Error(`no value for ${at}`);
    };
    const doc = build(MODEL_SCHEMA, '') as Record<string, unknown>;
    expect(problemsOf(JSON.stringify(doc, null, 2), '/ws/all.gatelab.json')).toEqual([]);
    // every key was written: the positions know them all
    const [m] = parseModelFile(JSON.stringify(doc, null, 2), '/ws/all.gatelab.json');
    const unwritten = Object.keys(given).filter((g) => given[g] === undefined);
    for (const k of SCHEMA_KEYS.filter((k) => k !== 'train.steps' && !unwritten.some((u) => k === u || k.startsWith(`${u}.`)))) expect(m.positions![k.replace('*', '0')], k).toBeDefined();
  });

  it('looks keys up by dotted path', () => {
    expect(SCHEMA_KEYS).toContain('train.optimizer.learningRate');
    expect(SCHEMA_KEYS).toContain('model.layers.*.hidden');
    expect(new Set(SCHEMA_KEYS).size).toBe(SCHEMA_KEYS.length);
    expect(schemaAt('model.layers.0.hidden')).toMatchObject({ type: 'integer', minimum: 1 });
    expect(schemaAt('model.layers.*.hidden')).toBe(schemaAt('model.layers.3.hidden'));
    expect(schemaAt('train.optimizer.type')?.enum).toEqual(['sgd', 'momentum', 'adam', 'adamw']);
    expect(schemaAt('')).toBe(MODEL_SCHEMA);
    expect(schemaAt('train.nope.deeper')).toBeUndefined();
    expect(keysAt('train.optimizer')).toEqual(['type', 'learningRate', 'momentum', 'beta1', 'beta2', 'epsilon', 'weightDecay']);
    expect(keysAt('')).toEqual(['name', 'task', 'data', 'model', 'train', 'sweep']);
  });
});
