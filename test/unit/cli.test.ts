// The `gatelab` command as users (and the acceptance checks) call it: the built dist/cli.js in a
// child process, real files in a temporary folder, The Time Machine from examples/data.

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors } from '../../src/engine/util/safetensors';

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/cli.js');
const CORPUS = path.resolve(ROOT, 'examples/data/timemachine.txt');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function gatelab(args: string[], cwd: string): Result {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-cli-'));
}

/** A small, fast language model on a slice of The Time Machine. */
function smallModel(dir: string, o: { extra?: string; name?: string; hidden?: number; text?: string; lr?: number; clip?: number } = {}): string {
  const data = path.join(dir, 'corpus.txt');
  if (!fs.existsSync(data)) fs.writeFileSync(data, o.text ?? fs.readFileSync(CORPUS, 'utf8').slice(0, 20000));
  const file = path.join(dir, 'small.gatelab.yaml');
  fs.writeFileSync(
    file,
    `name: ${o.name ?? 'small'}
task: language-model
data:
  source: corpus.txt
  tokens: char
  preprocess: letters
  sequenceLength: 10
  validation: 0.1
model:
  embedding: 0
  layers:
    - type: lstm
      hidden: ${o.hidden ?? 16}
train:
  steps: 30
  batchSize: 8
  optimizer: { type: sgd, learningRate: ${o.lr ?? 1} }
  clipNorm: ${o.clip ?? 1}
  seed: 7
  device: cpu
${o.extra ?? ''}`,
  );
  return file;
}

function expectUserError(r: Result, ...parts: (string | RegExp)[]): void {
  expect(r.code, `exit status (stderr: ${r.stderr})`).toBe(2);
  for (const p of parts) {
    if (typeof p === 'string') expect(r.stderr).toContain(p);
    else expect(r.stderr).toMatch(p);
  }
  expect(r.stderr, 'no stack trace for user errors').not.toMatch(/\n\s+at /);
  expect(r.stdout).toBe('');
}

beforeAll(() => {
  if (!fs.existsSync(CLI)) throw new Error('dist/cli.js is missing: run `node esbuild.mjs` (npm test does)');
});

describe('gatelab train', () => {
  it('trains, prints one JSON summary line, saves a loadable checkpoint and records the run', () => {
    const dir = tmpdir();
    const file = smallModel(dir);
    const r = gatelab(['train', file, '--save', 'w.safetensors', '--metrics', 'm.jsonl', '--quiet'], dir);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const s = JSON.parse(lines[0]);
    expect(Object.keys(s).slice(0, 7)).toEqual(['model', 'device', 'steps', 'trainLoss', 'validLoss', 'perplexity', 'tokensPerSecond']);
    expect(s.model).toBe('small');
    expect(s.device).toBe('cpu');
    expect(s.steps).toBe(30);
    expect(s.trainLoss).toBeGreaterThan(0);
    expect(s.trainLoss).toBeLessThan(Math.log(28));
    expect(s.perplexity).toBeCloseTo(Math.exp(s.trainLoss), 6);
    expect(typeof s.validLoss).toBe('number');
    expect(s.tokensPerSecond).toBeGreaterThan(0);
    expect(typeof s.sample).toBe('string');

    const ck = readSafetensors(path.join(dir, 'w.safetensors'));
    expect(Object.keys(ck.tensors).sort()).toEqual(['fc.bias', 'fc.weight', 'lstm.bias_hh_l0', 'lstm.bias_ih_l0', 'lstm.weight_hh_l0', 'lstm.weight_ih_l0']);
    expect(ck.tensors['lstm.weight_ih_l0'].shape).toEqual([64, 28]);
    expect(JSON.parse(ck.metadata['gatelab.vocab'])).toHaveLength(28);
    expect(ck.metadata.format).toBe('pt');

    const metrics = fs.readFileSync(path.join(dir, 'm.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics.filter((m) => 'step' in m && 'loss' in m && !('epoch' in m && 'trainLoss' in m))).toHaveLength(30);

    const runs = fs.readdirSync(path.join(dir, '.gatelab/runs'));
    expect(runs).toHaveLength(1);
    const rec = JSON.parse(fs.readFileSync(path.join(dir, '.gatelab/runs', runs[0], 'run.json'), 'utf8'));
    expect(rec.status).toBe('done');
    expect(rec.summary.steps).toBe(30);
    expect(fs.existsSync(path.join(dir, '.gatelab/runs', runs[0], 'model.safetensors'))).toBe(true);
  });

  it('continues from --init and samples from the checkpoint', () => {
    const dir = tmpdir();
    const file = smallModel(dir);
    expect(gatelab(['train', file, '--save', 'a.safetensors', '--quiet', '--no-record'], dir).code).toBe(0);
    const r = gatelab(['train', file, '--init', 'a.safetensors', '--steps', '5', '--save', 'b.safetensors', '--quiet', '--no-record'], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).steps).toBe(5);
    const s = gatelab(['sample', file, '--init', 'b.safetensors', '--prefix', 'the time', '--length', '40', '--temperature', '0.5', '--seed', '1'], dir);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout.startsWith('the time')).toBe(true);
    expect(s.stdout.trim().length).toBe('the time'.length + 40);
    expect(s.stdout).toMatch(/^[a-z ]+\n$/);
  });

  it('--resume continues a run in its folder; --runs records elsewhere; a finished run needs more steps to resume', () => {
    const dir = tmpdir();
    const file = smallModel(dir);
    const a = gatelab(['train', file, '--steps', '12', '--runs', 'elsewhere', '--quiet'], dir);
    expect(a.code, a.stderr).toBe(0);
    expect(fs.existsSync(path.join(dir, '.gatelab', 'runs'))).toBe(false); // (.gatelab/cache holds the token cache)
    const run = path.join(dir, 'elsewhere', fs.readdirSync(path.join(dir, 'elsewhere'))[0]);
    const again = gatelab(['train', '--resume', run], dir);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/has already trained 12 of its 12 steps/);
    const r = gatelab(['train', '--resume', run, '--steps', '30'], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resuming run .* at step 12 of 30/);
    const s = JSON.parse(r.stdout.trim());
    expect(s.steps).toBe(30);
    const once = gatelab(['train', file, '--steps', '30', '--no-record', '--metrics', 'once.jsonl', '--quiet'], dir);
    expect(once.code).toBe(0);
    const losses = (f: string) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => 'loss' in m).map((m) => [m.step, m.loss]);
    // the first 12 steps were scheduled for a 12-step run: with a constant rate they are the same steps
    expect(losses(path.join(run, 'metrics.jsonl'))).toEqual(losses(path.join(dir, 'once.jsonl')));
    const rec = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
    expect(rec).toMatchObject({ status: 'done', overrides: { steps: 30 }, resumed: [{ step: 12 }] });
    expectUserError(gatelab(['train', file, '--resume', run, '--init', 'x.safetensors'], dir), '--init', 'own folder');
    expectUserError(gatelab(['train', '--resume', dir], dir), '--resume', 'no run record');
  });

  it('train.evaluateEvery belongs to the tasks with generated data', () => {
    const dir = tmpdir();
    const file = smallModel(dir, { extra: '  evaluateEvery: 50\n' });
    expectUserError(gatelab(['train', file], dir), 'small.gatelab.yaml:', 'train.evaluateEvery', 'copy, adding');
  });

  it('--steps overrides the model file; --steps and --epochs together are an error', () => {
    const dir = tmpdir();
    const file = smallModel(dir);
    const r = gatelab(['train', file, '--steps', '3', '--quiet', '--no-record'], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).steps).toBe(3);
    expectUserError(gatelab(['train', file, '--steps', '3', '--epochs', '1'], dir), '--steps');
    expectUserError(gatelab(['train', file, '--steps', 'ten'], dir), '--steps', 'positive integer');
    expectUserError(gatelab(['train', file, '--bogus'], dir), '--bogus');
    expectUserError(gatelab(['train', file, '--device', 'tpu'], dir), '--device');
  });
});

describe('bad input exits 2 naming file, line and key', () => {
  it('a missing data file', () => {
    const dir = tmpdir();
    const file = smallModel(dir);
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('source: corpus.txt', 'source: nowhere.txt'));
    expectUserError(gatelab(['train', file], dir), 'small.gatelab.yaml:4', 'data.source', 'nowhere.txt');
  });

  it('an unknown key, with a suggestion', () => {
    const dir = tmpdir();
    const file = smallModel(dir);
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('learningRate', 'lerningRate'));
    expectUserError(gatelab(['train', file], dir), /small\.gatelab\.yaml:17:\d+/, 'lerningRate', 'learningRate');
  });

  it('a value of the wrong type', () => {
    const dir = tmpdir();
    const file = smallModel(dir);
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('hidden: 16', 'hidden: lots'));
    expectUserError(gatelab(['train', file], dir), /small\.gatelab\.yaml:13:\d+/, 'model.layers.0.hidden');
  });

  it('an empty corpus', () => {
    const dir = tmpdir();
    const file = smallModel(dir, { text: '1234 5678\n\n' });
    expectUserError(gatelab(['train', file], dir), 'small.gatelab.yaml:4', 'data.source', 'no tokens');
  });

  it('a checkpoint whose shapes do not match the model file (train --init and grad)', () => {
    const dir = tmpdir();
    const file = smallModel(dir);
    expect(gatelab(['train', file, '--steps', '2', '--save', 'w16.safetensors', '--quiet', '--no-record'], dir).code).toBe(0);
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('hidden: 16', 'hidden: 20'));
    expectUserError(gatelab(['train', file, '--init', 'w16.safetensors'], dir), 'w16.safetensors', 'small.gatelab.yaml:13', 'model.layers.0.hidden', '[80, 28]');
    fs.writeFileSync(path.join(dir, 'b.json'), JSON.stringify({ inputs: [[1, 2, 3]], targets: [[2, 3, 4]] }));
    expectUserError(
      gatelab(['grad', file, '--init', 'w16.safetensors', '--batch', 'b.json', '--out', 'g.safetensors'], dir),
      'w16.safetensors',
      'small.gatelab.yaml:13',
      'model.layers.0.hidden',
    );
  });

  it('a malformed batch JSON', () => {
    const dir = tmpdir();
    const file = smallModel(dir);
    expect(gatelab(['train', file, '--steps', '2', '--save', 'w.safetensors', '--quiet', '--no-record'], dir).code).toBe(0);
    const grad = () => gatelab(['grad', file, '--init', 'w.safetensors', '--batch', 'b.json', '--out', 'g.safetensors'], dir);
    fs.writeFileSync(path.join(dir, 'b.json'), '{"inputs": [[1, 2, 3],\n  [4, 5 6]],\n "targets": [[1,2,3],[4,5,6]]}');
    expectUserError(grad(), /b\.json:2:\d+/, 'malformed JSON');
    fs.writeFileSync(path.join(dir, 'b.json'), '{"inputs": [[1, 2, 3],\n  [4, 5]],\n "targets": [[1,2,3],[4,5,6]]}');
    expectUserError(grad(), /b\.json:2:3/, 'inputs[1]', 'has 2 steps');
    fs.writeFileSync(path.join(dir, 'b.json'), '{"inputs": [[1, 2, 3]],\n "targets": [[1, 99, 3]]}');
    expectUserError(grad(), /b\.json:2:\d+/, 'targets[0][1]', 'outside the vocabulary');
    fs.writeFileSync(path.join(dir, 'b.json'), '{"inputs": [[1, 2.5, 3]], "targets": [[1, 2, 3]]}');
    expectUserError(grad(), /b\.json:1:\d+/, 'inputs[0][1]', 'integer');
    fs.writeFileSync(path.join(dir, 'b.json'), '{"inputs": [[1, 2, 3]], "target": [[1, 2, 3]]}');
    expectUserError(grad(), 'b.json:1', 'target');
    expect(fs.existsSync(path.join(dir, 'g.safetensors'))).toBe(false);
  });

  it('a document nested 5,000 levels deep is refused at its line, not by a stack overflow', () => {
    const dir = tmpdir();
    fs.writeFileSync(path.join(dir, 'deep.gatelab.yaml'), 'name: d\ndata: { source: c.txt }\nmodel:\n  x: ' + '['.repeat(5000) + ']'.repeat(5000) + '\n');
    expectUserError(gatelab(['train', 'deep.gatelab.yaml'], dir), /deep\.gatelab\.yaml:4:\d+: the document nests deeper than 64 levels/);
    fs.writeFileSync(path.join(dir, 'deep2.gatelab.yaml'), 'name: d\ndata:\n' + Array.from({ length: 5000 }, (_, i) => `${'  '.repeat(i + 1)}k${i}:\n`).join(''));
    expectUserError(gatelab(['train', 'deep2.gatelab.yaml'], dir), /deep2\.gatelab\.yaml:66:\d+: the document nests deeper/);
  });

  it('a binary file or a text that is not UTF-8 as data: refused, naming the first offending byte', () => {
    const dir = tmpdir();
    const file = smallModel(dir);
    fs.writeFileSync(path.join(dir, 'corpus.txt'), Buffer.concat([Buffer.from('the time traveller\nfor so\x7fELF'), Buffer.from([0, 1, 2])]));
    expectUserError(gatelab(['train', file, '--no-record'], dir), 'small.gatelab.yaml:4', 'data.source', 'corpus.txt:2:11: the data holds a NUL byte (byte offset 29)');
    fs.writeFileSync(path.join(dir, 'corpus.txt'), Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9]), Buffer.from(' au lait\n')]));
    expectUserError(gatelab(['train', file, '--no-record'], dir), 'corpus.txt:1:4: the data holds an incomplete UTF-8 character before byte 0x20');
    // the same check guards the CSV and TSV readers
    fs.writeFileSync(path.join(dir, 's.csv'), Buffer.concat([Buffer.from('v\n1\n'), Buffer.from([0xff]), Buffer.from('\n')]));
    fs.writeFileSync(path.join(dir, 'f.gatelab.yaml'), 'name: f\ntask: forecast\ndata: { source: s.csv, column: v, window: 1 }\nmodel: { layers: [{ hidden: 4 }] }\n');
    expectUserError(gatelab(['train', 'f.gatelab.yaml', '--no-record'], dir), 's.csv:3:1: the data holds byte 0xff, which is not UTF-8');
  });

  it('a missing model file and a missing command argument', () => {
    const dir = tmpdir();
    expectUserError(gatelab(['train', 'nope.gatelab.yaml'], dir), 'nope.gatelab.yaml');
    expectUserError(gatelab(['train'], dir), 'FILE');
    expectUserError(gatelab(['grad', smallModel(dir), '--batch', 'b.json'], dir), '--init');
    expectUserError(gatelab(['frobnicate'], dir), 'frobnicate');
  });
});

describe('gatelab grad', () => {
  it('writes the loss and every gradient under the checkpoint names, matching PyTorch', () => {
    const fixture = path.join(ROOT, 'test/fixtures/golden/lm1_T35.safetensors');
    if (!fs.existsSync(fixture)) throw new Error(`missing golden fixture ${fixture}`);
    const g = readSafetensors(fixture);
    const dir = tmpdir();
    // weights in PyTorch names and gate order, as a user would save them from PyTorch
    const params = Object.fromEntries(Object.entries(g.tensors).filter(([k]) => /^(lstm|fc|embedding)\./.test(k)));
    writeSafetensors(path.join(dir, 'w.safetensors'), params);
    const H = params['lstm.weight_hh_l0'].shape[1];
    const file = smallModel(dir, { hidden: H });
    const x = g.tensors.x;
    const y = g.tensors.y;
    const [B, T] = x.shape;
    const rows = (t: typeof x) => Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, s) => Number((t.data as BigInt64Array)[b * T + s])));
    fs.writeFileSync(path.join(dir, 'b.json'), JSON.stringify({ inputs: rows(x), targets: rows(y) }));
    const r = gatelab(['grad', file, '--init', 'w.safetensors', '--batch', 'b.json', '--out', 'g.safetensors'], dir);
    expect(r.code, r.stderr).toBe(0);
    const out = readSafetensors(path.join(dir, 'g.safetensors'));
    expect(Object.keys(out.tensors).sort()).toEqual([...Object.keys(params), 'loss'].sort());
    expect(out.tensors.loss.shape).toEqual([]);
    const loss = (out.tensors.loss.data as Float64Array)[0];
    const want = (g.tensors.loss.data as Float64Array)[0];
    expect(Math.abs(loss - want) / want).toBeLessThan(1e-9);
    for (const name of Object.keys(params)) {
      const a = out.tensors[name].data as Float64Array;
      const b = g.tensors[`grad.${name}`].data as Float64Array;
      expect(out.tensors[name].shape).toEqual(params[name].shape);
      let scale = 0;
      for (const v of b) scale = Math.max(scale, Math.abs(v));
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i]), `${name}[${i}]`).toBeLessThanOrEqual(1e-6 * scale + 1e-12);
    }
  });
});

describe('gatelab bench', () => {
  it('--json prints one line with a result per configuration (shape only; speed is never asserted)', () => {
    const r = gatelab(['bench', '--quick', '--json', '--only', 'C1,C4', '--device', 'cpu'], os.tmpdir());
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim());
    expect(out.results.map((x: { id: string }) => x.id)).toEqual(['C1', 'C4']);
    expect(Object.keys(out.results[0])).toEqual(['id', 'device', 'msPerStep', 'tokensPerSecond', 'ceilingRatio', 'peakRssMB']);
    expect(Object.keys(out.results[1])).toEqual(['id', 'device', 'msPerToken', 'ceilingRatio', 'peakRssMB']);
    for (const x of out.results) for (const v of Object.values(x)) if (typeof v === 'number') expect(v).toBeGreaterThan(0);
    expectUserError(gatelab(['bench', '--only', 'C9'], os.tmpdir()), '--only');
  });

  it('G1 and G4 (the GRU configurations) only when asked for', () => {
    const r = gatelab(['bench', '--quick', '--json', '--only', 'G1,G4', '--device', 'cpu'], os.tmpdir());
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim());
    expect(out.results.map((x: { id: string }) => x.id)).toEqual(['G1', 'G4']);
    expect(Object.keys(out.results[1])).toEqual(['id', 'device', 'msPerToken', 'ceilingRatio', 'peakRssMB']);
    for (const x of out.results) expect(x.ceilingRatio).toBeGreaterThan(0);
  });

  it('--placement reports where the training program\'s nodes ran (always on CUDA)', () => {
    const r = gatelab(['bench', '--quick', '--json', '--only', 'C2', '--device', 'cpu', '--placement'], os.tmpdir());
    expect(r.code, r.stderr).toBe(0);
    const [c2] = JSON.parse(r.stdout.trim()).results;
    expect(c2.placement.elsewhere).toEqual([]);
    expect(Object.keys(c2.placement.nodesByProvider)).toEqual(['CPUExecutionProvider']);
  });
});

describe('failures during training', () => {
  it('a loss that becomes NaN or infinite stops the run naming the step and keeps the last good checkpoint', () => {
    const dir = tmpdir();
    const file = smallModel(dir, { lr: 1e38, clip: 0 });
    const r = gatelab(['train', file, '--save', 'w.safetensors', '--quiet'], dir);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/became (NaN|-?Infinity) at step \d+/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const ck = readSafetensors(path.join(dir, 'w.safetensors'));
    for (const [name, t] of Object.entries(ck.tensors)) {
      for (const v of t.data as Float32Array) expect(Number.isFinite(v), name).toBe(true);
    }
    const runs = fs.readdirSync(path.join(dir, '.gatelab/runs'));
    const rec = JSON.parse(fs.readFileSync(path.join(dir, '.gatelab/runs', runs[0], 'run.json'), 'utf8'));
    expect(rec.status).toBe('failed');
  });

  it('a killed trainer leaves no half-written file', async () => {
    const dir = tmpdir();
    const file = smallModel(dir, { hidden: 64 });
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('steps: 30', 'steps: 100000'));
    const child = spawn(process.execPath, [CLI, 'train', file, '--save', 'w.safetensors', '--checkpoint-every', '0.05', '--quiet'], { cwd: dir });
    const deadline = Date.now() + 60_000;
    while (!fs.existsSync(path.join(dir, 'w.safetensors')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 700));
    // kill the whole process group: the CLI and its trainer, mid-write if it happens to be writing
    const pids = spawnSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean).map(Number);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const leftovers = fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'));
    // a temporary file may remain, but the checkpoint itself is whole
    const ck = readSafetensors(path.join(dir, 'w.safetensors'));
    expect(Object.keys(ck.tensors)).toContain('fc.weight');
    for (const f of leftovers) expect(f.startsWith('.w.safetensors.')).toBe(true);
  });
});
