// Model files: defaults, several models per file, JSON, and every kind of error with its exact
// position, key and hint; the shipped JSON Schema stays in sync with the one the loader uses.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { diagnoseModelText, didYouMean, loadModelFile, modelAnchors, parseModelFile, whereOf } from '../../src/engine/config/load';
import { JsonSchema, MODEL_SCHEMA, schemaJson } from '../../src/engine/config/schema';
import { UserError, UserErrors } from '../../src/engine/errors';

const FILE = '/ws/models/m.gatelab.yaml';

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

function problemsOf(text: string, file = FILE) {
  return diagnoseModelText(text, file).map((p) => ({ ...p.error.where, message: p.error.message, hint: p.error.hint, fix: p.fix?.replacement }));
}

describe('valid model files', () => {
  it('resolves defaults and paths', () => {
    const [m] = parseModelFile(D2L, FILE);
    expect(m.name).toBe('timemachine-char');
    expect(m.task).toBe('language-model');
    expect(m.line).toBe(1);
    expect(m.data).toMatchObject({ source: '/ws/models/data/timemachine.txt', sourceAsWritten: 'data/timemachine.txt', tokens: 'char', preprocess: 'letters', sequenceLength: 35, validation: 0.1, partition: 'sequential', minFrequency: 0 });
    expect(m.model).toEqual({
      embedding: 0,
      dropout: 0,
      init: { input: 'pytorch', recurrent: 'pytorch' },
      layers: [{ type: 'lstm', hidden: 256, forgetBias: 0, peepholes: false, coupledGates: false, gateActivation: 'sigmoid', hardSigmoidSlope: 0.2, hardSigmoidOffset: 0.5, cellClip: 0, bidirectional: false }],
    });
    expect(m.train).toMatchObject({ epochs: 100, steps: undefined, batchSize: 32, clipNorm: 1, seed: 42, device: 'auto', carryState: true, stepsPerRun: 16 });
    expect(m.train.optimizer).toMatchObject({ type: 'sgd', learningRate: 1, weightDecay: 0 });
    expect(m.train.schedule).toEqual({ type: 'constant', warmupSteps: 0, stepSize: 1000, gamma: 0.1, minLearningRate: 0 });
    expect(m.train.earlyStopping).toBeUndefined();
  });

  it('early stopping needs a validation split', () => {
    const text = D2L.replace('  preprocess: letters', '  preprocess: letters\n  validation: 0').replace('train:\n', 'train:\n  earlyStopping: { patience: 3 }\n');
    expect(problemsOf(text)).toEqual([expect.objectContaining({ key: 'train.earlyStopping', line: 10, hint: 'set data.validation above 0 (e.g. 0.1)' })]);
    const [m] = parseModelFile(D2L.replace('train:\n', 'train:\n  earlyStopping: { patience: 3 }\n'), FILE);
    expect(m.train.earlyStopping).toEqual({ patience: 3, minDelta: 0 });
  });

  it('gives adam its own learning-rate default and adamw its weight decay', () => {
    const [a] = parseModelFile(D2L.replace('{ type: sgd, learningRate: 1 }', '{ type: adamw }'), FILE);
    expect(a.train.optimizer).toMatchObject({ type: 'adamw', learningRate: 0.001, weightDecay: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
  });

  it('steps replace epochs', () => {
    const [m] = parseModelFile(D2L.replace('epochs: 100', 'steps: 500'), FILE);
    expect(m.train.steps).toBe(500);
    expect(m.train.epochs).toBeUndefined();
  });

  it('reads several models from one YAML file, each with its line', () => {
    const text = `${D2L}---\n${D2L.replace('timemachine-char', 'second').replace('hidden: 256', 'hidden: 64')}`;
    const ms = parseModelFile(text, FILE);
    expect(ms.map((m) => [m.name, m.line, m.model.layers[0].hidden])).toEqual([
      ['timemachine-char', 1, 256],
      ['second', 12, 64],
    ]);
    expect(modelAnchors(text)).toEqual([
      { name: 'timemachine-char', line: 1, column: 1 },
      { name: 'second', line: 12, column: 1 },
    ]);
  });

  it('reads JSON: one model or a list', () => {
    const one = { name: 'j', data: { source: 'x.txt' }, model: { layers: [{ hidden: 8 }] } };
    expect(parseModelFile(JSON.stringify(one, null, 2), '/ws/a.gatelab.json')[0].name).toBe('j');
    const two = [one, { ...one, name: 'k' }];
    expect(parseModelFile(JSON.stringify(two, null, 2), '/ws/a.gatelab.json').map((m) => m.name)).toEqual(['j', 'k']);
  });

  it('records key positions for later errors', () => {
    const [m] = parseModelFile(D2L, FILE);
    expect(whereOf(m, 'model.layers.0.hidden')).toEqual({ file: FILE, line: 7, column: 7, key: 'model.layers.0.hidden' });
    // a key that is not written falls back to its nearest written parent
    expect(whereOf(m, 'train.batchSize')).toMatchObject({ line: 8, key: 'train.batchSize' });
  });
});

describe('errors name the line, column and key', () => {
  it('unknown key, with a did-you-mean hint and a fix', () => {
    const p = problemsOf(D2L.replace('learningRate', 'lerningRate'));
    expect(p).toEqual([
      expect.objectContaining({ line: 10, column: 27, key: 'train.optimizer.lerningRate', message: 'unknown key "lerningRate"', hint: 'did you mean "learningRate"?', fix: 'learningRate' }),
    ]);
  });

  it('unknown key without a close match lists the valid keys', () => {
    const p = problemsOf(D2L + 'banana: 1\n');
    expect(p[0]).toMatchObject({ line: 11, column: 1, key: 'banana' });
    expect(p[0].hint).toContain('valid keys here: name, task, data, model, train');
  });

  it('wrong type', () => {
    const p = problemsOf(D2L.replace('hidden: 256', 'hidden: lots'));
    expect(p).toEqual([expect.objectContaining({ line: 7, column: 15, key: 'model.layers.0.hidden', message: 'expected an integer, got string "lots"' })]);
    const q = problemsOf(D2L.replace('epochs: 100', 'epochs: 2.5'));
    expect(q[0]).toMatchObject({ line: 9, column: 11, key: 'train.epochs', hint: 'use a whole number' });
  });

  it('enum value with a suggestion', () => {
    const p = problemsOf(D2L.replace('type: sgd', 'type: adm'));
    expect(p[0]).toMatchObject({ line: 10, column: 22, key: 'train.optimizer.type', message: '"adm" must be one of sgd, momentum, adam, adamw', fix: 'adam' });
  });

  it('out of range, with the bound as the fix', () => {
    const p = problemsOf(D2L.replace('hidden: 256', 'hidden: 0'));
    expect(p[0]).toMatchObject({ line: 7, key: 'model.layers.0.hidden', message: '0 is below the minimum 1', fix: '1' });
    const q = problemsOf(D2L.replace('  preprocess: letters', '  validation: 1'));
    expect(q[0]).toMatchObject({ line: 4, key: 'data.validation', message: '1 must be less than 1' });
  });

  it('missing required keys', () => {
    const p = problemsOf('name: x\nmodel:\n  layers: []\n');
    expect(p.map((x) => [x.key, x.line])).toEqual([
      ['model.layers', 3],
      ['data', 1],
    ]);
    expect(p[0].message).toBe('needs at least 1 item');
  });

  it('epochs and steps together', () => {
    const p = problemsOf(D2L.replace('epochs: 100', 'epochs: 100\n  steps: 5'));
    expect(p).toEqual([expect.objectContaining({ key: 'train.steps', line: 10, message: 'give train.epochs or train.steps, not both' })]);
  });

  it('duplicate model names and duplicate keys', () => {
    const p = problemsOf(`${D2L}---\n${D2L}`);
    expect(p).toEqual([expect.objectContaining({ key: 'name', line: 12, message: 'a model named "timemachine-char" is already defined on line 1' })]);
    const q = problemsOf(D2L.replace('  preprocess: letters', '  preprocess: letters\n  preprocess: none'));
    expect(q[0]).toMatchObject({ key: 'data.preprocess', line: 5, message: 'duplicate key "preprocess"' });
  });

  it('YAML syntax errors with their position', () => {
    const p = problemsOf('name: x\ndata: [unclosed\nmodel:\n');
    expect(p.length).toBeGreaterThan(0);
    expect(p[0].message).toMatch(/^syntax error/);
    expect(p[0].line).toBeGreaterThanOrEqual(2);
  });

  it('collects every problem and throws them together', () => {
    const bad = D2L.replace('hidden: 256', 'hidden: -1').replace('epochs: 100', 'epoch: 100');
    let err: unknown;
    try {
      parseModelFile(bad, FILE);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserErrors);
    const text = (err as UserErrors).format();
    expect(text).toContain(`${FILE}:7:15: model.layers.0.hidden: -1 is below the minimum 1`);
    expect(text).toContain(`${FILE}:9:3: train.epoch: unknown key "epoch" (did you mean "epochs"?)`);
  });

  it('missing file and unknown model name', () => {
    expect(() => loadModelFile('/nonexistent/x.gatelab.yaml')).toThrow(/model file not found/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-cfg-'));
    const f = path.join(dir, 'a.gatelab.yaml');
    fs.writeFileSync(f, D2L);
    expect(loadModelFile(f).name).toBe('timemachine-char');
    try {
      loadModelFile(f, 'timemachine-chr');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      expect((e as UserError).hint).toContain('did you mean "timemachine-char"?');
    }
  });

  it('anchors survive broken text', () => {
    expect(modelAnchors('name: a\n  bad: [\n')).toBeInstanceOf(Array);
    expect(modelAnchors(':::\n- - -\n{')).toBeInstanceOf(Array);
    expect(modelAnchors('')).toEqual([]);
  });
});

describe('did you mean', () => {
  it('finds transpositions, typos and prefixes', () => {
    const keys = ['learningRate', 'momentum', 'beta1', 'beta2', 'epsilon', 'weightDecay', 'type'];
    expect(didYouMean('lerningRate', keys)).toBe('learningRate');
    expect(didYouMean('momnetum', keys)).toBe('momentum');
    expect(didYouMean('learning', keys)).toBe('learningRate');
    expect(didYouMean('zzz', keys)).toBeUndefined();
  });
});

describe('the schema', () => {
  it('media/gatelab.schema.json is generated from MODEL_SCHEMA (UPDATE_SCHEMA=1 rewrites it)', () => {
    const file = path.resolve(__dirname, '../../media/gatelab.schema.json');
    if (process.env.UPDATE_SCHEMA) fs.writeFileSync(file, schemaJson());
    expect(fs.readFileSync(file, 'utf8'), 'run UPDATE_SCHEMA=1 npx vitest run test/unit/config.test.ts').toBe(schemaJson());
  });

  it('documents every property and forbids unknown keys everywhere', () => {
    const walk = (s: JsonSchema, at: string) => {
      if (s.type === 'object') expect(s.additionalProperties, `${at} additionalProperties`).toBe(false);
      for (const [k, sub] of Object.entries(s.properties ?? {})) {
        expect(sub.description, `${at}.${k} description`).toBeTruthy();
        walk(sub, `${at}.${k}`);
      }
      if (s.items) walk(s.items, `${at}[]`);
    };
    walk(MODEL_SCHEMA, 'model');
  });
});
