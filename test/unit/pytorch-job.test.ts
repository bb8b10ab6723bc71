// `gatelab export FILE --pytorch DIR` (src/engine/pytorch/): the exported job trains the Time Machine
// LSTM as Gatelab does — from the same initial checkpoint its first 20 training losses are Gatelab's
// to 1e-4 relative (the same minibatches: data.py draws them with Gatelab's generator) — under
// `torchrun --nproc_per_node 2` (gloo, CPU) too, and records a Gatelab run whose checkpoint `gatelab
// sample` reads. Needs Debian's python3-torch (installed when missing and possible, else skipped
// with the reason: test/reference/ensure-torch.sh).

import { spawnSync } from 'node:child_process';
import { runAsync } from '../reference/spawn';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readRunRecord } from '../../src/engine/train/runrecord';
import { readSafetensors } from '../../src/engine/util/safetensors';

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/cli.js');
const torch = spawnSync('bash', [path.join(ROOT, 'test/reference/ensure-torch.sh')], { encoding: 'utf8' }).stdout.trim();
if (torch !== 'OK') console.warn(`pytorch-job.test.ts: the PyTorch runs are skipped: ${torch}`);

const stepLosses = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((m) => typeof m.step === 'number' && typeof m.loss === 'number' && m.trainLoss === undefined)
    .map((m) => m.loss as number);

describe('export as a PyTorch job', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-pyjob-'));
  fs.mkdirSync(path.join(dir, 'data'));
  fs.copyFileSync(path.join(ROOT, 'examples/data/timemachine.txt'), path.join(dir, 'data/timemachine.txt'));
  fs.copyFileSync(path.join(ROOT, 'examples/timemachine.gatelab.yaml'), path.join(dir, 'tm.gatelab.yaml'));
  // asynchronous: a training job blocking the test worker for long starves vitest's own messages
  const run = (args: string[], cmd = process.execPath) => runAsync(cmd, cmd === process.execPath ? [CLI, ...args] : args, { cwd: dir });

  /** Gatelab's and the exported job's first `steps` losses from the same checkpoint (one Gatelab step from the model's init), and the job's run folder. */
  const both = async (model: string, name: string, steps = 20) => {
    let r = await run(['train', model, '--steps', '1', '--save', `${name}0.safetensors`, '--no-record', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    r = await run(['train', model, '--init', `${name}0.safetensors`, '--steps', String(steps), '--metrics', `${name}.jsonl`, '--no-record', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
    r = await run(['export', model, '--pytorch', `${name}job`, '--init', `${name}0.safetensors`, '--runs', `${name}runs`]);
    expect(r.status, r.stderr).toBe(0);
    r = await run([path.join(dir, `${name}job/train.py`), '--steps', String(steps), '--device', 'cpu'], '/usr/bin/python3');
    expect(r.status, r.stderr).toBe(0);
    const one = path.join(dir, `${name}runs`, fs.readdirSync(path.join(dir, `${name}runs`))[0]);
    const ours = stepLosses(path.join(dir, `${name}.jsonl`));
    const theirs = stepLosses(path.join(one, 'metrics.jsonl'));
    expect(theirs).toHaveLength(steps);
    ours.slice(0, steps).forEach((l, i) => expect(Math.abs(theirs[i] - l) / l, `step ${i + 1}: Gatelab ${l}, PyTorch ${theirs[i]}`).toBeLessThan(1e-4));
    return { one, summary, theirs };
  };

  it('writes the project; models it cannot export yet are errors at their key', async () => {
    let r = await run(['train', 'tm.gatelab.yaml', '--steps', '1', '--save', 'w0.safetensors', '--no-record', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    r = await run(['export', 'tm.gatelab.yaml', '--pytorch', 'job', '--init', 'w0.safetensors', '--runs', 'runs']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).files.sort()).toEqual(['README.md', 'config.json', 'data.py', 'model.py', 'requirements.txt', 'st.py', 'train.py']);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'job/config.json'), 'utf8'));
    expect(cfg.vocab.slice(0, 3)).toEqual(['<unk>', ' ', 'e']);
    expect(path.join(cfg.dataRoot, cfg.sourceRelative)).toBe(path.join(dir, 'data/timemachine.txt'));
    expect(fs.readFileSync(path.join(dir, 'job/README.md'), 'utf8')).toContain('torchrun --redirects 1 --tee 1 --nproc_per_node 2');
    fs.writeFileSync(path.join(dir, 'cls.gatelab.yaml'), 'name: c\ntask: copy\nmodel: { layers: [{ hidden: 4 }] }\n');
    r = await run(['export', 'cls.gatelab.yaml', '--pytorch', 'job2']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/cls\.gatelab\.yaml:2:1: task: the PyTorch job exports language models, forecasters and classifiers so far/);
    fs.writeFileSync(path.join(dir, 'bi.gatelab.yaml'), 'name: p\ntask: forecast\ndata: { source: data/a.csv, column: y }\nmodel:\n  layers:\n    - { hidden: 4, bidirectional: true, peepholes: true }\n');
    r = await run(['export', 'bi.gatelab.yaml', '--pytorch', 'job3']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/model\.layers\.0\.bidirectional: the PyTorch job has no bidirectional explicit cells yet/);
  });

  it.skipIf(torch !== 'OK')("from the same checkpoint, the job's first 20 training losses are Gatelab's to 1e-4; torchrun with 2 processes gives the same; the run is a Gatelab run", async () => {
    let r = await run(['train', 'tm.gatelab.yaml', '--init', 'w0.safetensors', '--steps', '20', '--metrics', 'g.jsonl', '--no-record', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    const ours = stepLosses(path.join(dir, 'g.jsonl'));
    r = await run([path.join(dir, 'job/train.py'), '--steps', '20', '--device', 'cpu'], '/usr/bin/python3');
    expect(r.status, r.stderr).toBe(0);
    const runs = path.join(dir, 'runs');
    const one = path.join(runs, fs.readdirSync(runs)[0]);
    const theirs = stepLosses(path.join(one, 'metrics.jsonl'));
    expect(theirs).toHaveLength(20);
    ours.slice(0, 20).forEach((l, i) => expect(Math.abs(theirs[i] - l) / l, `step ${i + 1}: Gatelab ${l}, PyTorch ${theirs[i]}`).toBeLessThan(1e-4));
    const rec = readRunRecord(one)!;
    expect(rec.status).toBe('done');
    expect(rec.summary?.steps).toBe(20);
    // the job's checkpoint is a Gatelab checkpoint
    r = await run(['sample', 'tm.gatelab.yaml', '--init', path.join(one, 'model.safetensors'), '--prefix', 'the time ', '--length', '10']);
    expect(r.status, r.stderr).toBe(0);
    r = await run(['export', 'tm.gatelab.yaml', '--init', path.join(one, 'model.safetensors'), '--onnx', 'job.onnx']);
    expect(r.status, r.stderr).toBe(0);
    r = await run(['train', 'tm.gatelab.yaml', '--init', path.join(one, 'model.safetensors'), '--steps', '2', '--no-record', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    // two processes (DDP, gloo): each takes half the rows of every minibatch; the same steps
    r = await runAsync('torchrun', ['--redirects', '1', '--tee', '1', '--nproc_per_node', '2', path.join(dir, 'job/train.py'), '--steps', '5', '--device', 'cpu', '--runs', path.join(dir, 'runs2')], { cwd: dir });
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    const two = path.join(dir, 'runs2', fs.readdirSync(path.join(dir, 'runs2'))[0]);
    const ddp = stepLosses(path.join(two, 'metrics.jsonl'));
    expect(ddp).toHaveLength(5);
    ddp.forEach((l, i) => expect(Math.abs(l - theirs[i]) / theirs[i]).toBeLessThan(1e-5));
    expect(readRunRecord(two)!.status).toBe('done');
    // the data moved: --data-root names the folder the data paths are relative to
    const moved = path.join(dir, 'moved');
    fs.mkdirSync(path.join(moved, 'data'), { recursive: true });
    fs.copyFileSync(path.join(dir, 'data/timemachine.txt'), path.join(moved, 'data/timemachine.txt'));
    r = await run([path.join(dir, 'job/train.py'), '--steps', '2', '--device', 'cpu', '--data-root', moved, '--runs', path.join(dir, 'runs3')], '/usr/bin/python3');
    expect(r.status, r.stderr).toBe(0);
    r = await run([path.join(dir, 'job/train.py'), '--steps', '2', '--device', 'cpu', '--data-root', path.join(dir, 'nowhere'), '--runs', path.join(dir, 'runs4')], '/usr/bin/python3');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/nowhere/);
  }, 300_000);

  it.skipIf(torch !== 'OK')("a forecaster (airline passengers, log-difference): from the same checkpoint, the first 20 losses are Gatelab's to 1e-4; RMSE beside persistence in the record", async () => {
    fs.copyFileSync(path.join(ROOT, 'examples/data/airline-passengers.csv'), path.join(dir, 'data/airline-passengers.csv'));
    fs.copyFileSync(path.join(ROOT, 'examples/airline.gatelab.yaml'), path.join(dir, 'air.gatelab.yaml'));
    const { one } = await both('air.gatelab.yaml', 'air');
    let r;
    const rec = readRunRecord(one)!;
    expect(rec.task).toBe('forecast');
    expect(rec.summary).toMatchObject({ steps: 20 });
    expect((rec.summary as unknown as { baselineRmse: number }).baselineRmse).toBeCloseTo(51.782, 2);
    // the job's checkpoint forecasts with gatelab predict
    r = await run(['predict', 'air.gatelab.yaml', '--init', path.join(one, 'model.safetensors'), '--input', 'data/airline-passengers.csv']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).forecast).toHaveLength(1);
  }, 300_000);

  it.skipIf(torch !== 'OK')("a GRU sentence classifier (random split, vocabulary of the training sentences): the first 20 losses are Gatelab's to 1e-4, and so are its accuracy and confusion matrix", async () => {
    fs.cpSync(path.join(ROOT, 'examples/data/sentiment'), path.join(dir, 'data/sentiment'), { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'gru.gatelab.yaml'),
      'name: gru-sentiment\ntask: classification\ndata:\n  source: [data/sentiment/amazon_cells_labelled.txt, data/sentiment/yelp_labelled.txt]\n  tokens: word\n  preprocess: letters\n  minFrequency: 2\n  sequenceLength: 30\n  validation: 0.2\n  split: random\nmodel:\n  embedding: 16\n  layers: [{ type: gru, hidden: 24 }]\ntrain: { epochs: 3, batchSize: 32, optimizer: { type: adam, learningRate: 0.005 }, clipNorm: 1, seed: 7 }\n',
    );
    const { one, summary } = await both('gru.gatelab.yaml', 'c');
    let r;
    const rec = readRunRecord(one)!;
    expect(rec.summary).toMatchObject({ accuracy: summary.accuracy, confusion: summary.confusion, classes: summary.classes });
    // its checkpoint classifies with gatelab predict (the vocabulary and classes in its metadata)
    r = await run(['predict', 'gru.gatelab.yaml', '--init', path.join(one, 'model.safetensors'), '--input', 'great phone']);
    expect(r.status, r.stderr).toBe(0);
    expect(Object.keys(JSON.parse(r.stdout).probabilities).sort()).toEqual(['0', '1']);
  }, 300_000);

  it.skipIf(torch !== 'OK')("the variants PyTorch lacks as explicit cells (LSTM peepholes, cell clipping, hard-sigmoid gates; coupled gates; a hard-sigmoid GRU): the first 20 losses are Gatelab's to 1e-4", async () => {
    fs.writeFileSync(path.join(dir, 'data/tm-short.txt'), fs.readFileSync(path.join(ROOT, 'examples/data/timemachine.txt'), 'utf8').slice(0, 20000));
    fs.writeFileSync(
      path.join(dir, 'variants.gatelab.yaml'),
      'name: variants\ndata: { source: data/tm-short.txt, preprocess: letters, sequenceLength: 12, validation: 0.1 }\nmodel:\n  embedding: 8\n  layers:\n    - { hidden: 16, peepholes: true, cellClip: 1.5, gateActivation: hard-sigmoid, hardSigmoidSlope: 0.25, hardSigmoidOffset: 0.45 }\n    - { hidden: 12, coupledGates: true }\n    - { type: gru, hidden: 10, gateActivation: hard-sigmoid, hardSigmoidSlope: 0.3 }\ntrain: { steps: 20, batchSize: 8, optimizer: { type: adam, learningRate: 0.01 }, clipNorm: 1, seed: 3 }\n',
    );
    const { one } = await both('variants.gatelab.yaml', 'v');
    expect(readRunRecord(one)!.summary).toMatchObject({ steps: 20 });
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'vjob/config.json'), 'utf8'));
    expect(cfg.layers[0]).toMatchObject({ peepholes: true, cellClip: 1.5, gateActivation: 'hard-sigmoid' });
  }, 300_000);

  it.skipIf(torch !== 'OK')("equation cells (an LSTM with a peephole vector, hard-sigmoid and softsign; an MGU over it) as explicit cells from Gatelab's trees: the first 20 losses are Gatelab's to 1e-4", async () => {
    fs.writeFileSync(path.join(dir, 'data/tm-short.txt'), fs.readFileSync(path.join(ROOT, 'examples/data/timemachine.txt'), 'utf8').slice(0, 20000));
    fs.writeFileSync(
      path.join(dir, 'cells.gatelab.yaml'),
      [
        'name: cells',
        'data: { source: data/tm-short.txt, preprocess: letters, sequenceLength: 12, validation: 0.1 }',
        'model:',
        '  layers:',
        '    - type: cell',
        '      hidden: 10',
        '      equations:',
        '        i: sigmoid(W x + U h + b)',
        '        f: sigmoid(W x + U h + b + p * c)',
        '        g: tanh(W x + U h + b)',
        '        o: hardsigmoid(W x + U h + b, 0.25, 0.5)',
        '        c: f * c + i * g',
        '        h: o * softsign(c) - 0.1 * relu(-h)',
        '      state: [h, c]',
        '      init: { f.b: 1 }',
        '    - type: cell',
        '      hidden: 8',
        '      equations:',
        '        f: sigmoid(W x + U h + b)',
        '        n: tanh(W x + U (f * h) + b)',
        '        h: (1 - f) * h + f * n',
        'train: { steps: 20, batchSize: 8, optimizer: { type: adam, learningRate: 0.01 }, clipNorm: 1, seed: 3 }',
        '',
      ].join('\n'),
    );
    const { one } = await both('cells.gatelab.yaml', 'e');
    // the job's checkpoint has Gatelab's cell names and samples with gatelab sample
    const r = await run(['sample', 'cells.gatelab.yaml', '--init', path.join(one, 'model.safetensors'), '--prefix', 'the ', '--length', '10']);
    expect(r.status, r.stderr).toBe(0);
  }, 300_000);

  it.skipIf(torch !== 'OK')("bidirectional layers: a classifier of padded sentences (packed sequences; last and mean pooling) and a forecaster, the first 20 losses Gatelab's to 1e-4", async () => {
    fs.cpSync(path.join(ROOT, 'examples/data/sentiment'), path.join(dir, 'data/sentiment'), { recursive: true });
    for (const pooling of ['last', 'mean']) {
      fs.writeFileSync(
        path.join(dir, `bi-${pooling}.gatelab.yaml`),
        `name: bi\ntask: classification\ndata:\n  source: [data/sentiment/amazon_cells_labelled.txt]\n  tokens: word\n  preprocess: letters\n  sequenceLength: 25\n  validation: 0.2\n  split: random\n  pooling: ${pooling}\nmodel:\n  embedding: 12\n  layers:\n    - { type: lstm, hidden: 10, bidirectional: true }\n    - { type: gru, hidden: 8, bidirectional: true }\ntrain: { epochs: 2, batchSize: 24, optimizer: { type: adam, learningRate: 0.005 }, clipNorm: 1, seed: 5 }\n`,
      );
      await both(`bi-${pooling}.gatelab.yaml`, `bi${pooling}`);
    }
    fs.copyFileSync(path.join(ROOT, 'examples/data/airline-passengers.csv'), path.join(dir, 'data/airline-passengers.csv'));
    const air = fs.readFileSync(path.join(ROOT, 'examples/airline.gatelab.yaml'), 'utf8').replace('    - type: lstm\n      hidden: 32\n', '    - { type: lstm, hidden: 8, bidirectional: true }\n    - { type: gru, hidden: 6, bidirectional: true }\n');
    expect(air).toContain('bidirectional: true');
    fs.writeFileSync(path.join(dir, 'biair.gatelab.yaml'), air);
    await both('biair.gatelab.yaml', 'biair');
  }, 300_000);

  it.skipIf(torch !== 'OK')('a classifier of numeric sequences (Indoor Movement: one CSV per sequence, the label table, the cross-room group split): the first 20 losses are Gatelab\'s to 1e-4, and so is its accuracy', async () => {
    fs.cpSync(path.join(ROOT, 'examples/data/indoor-movement'), path.join(dir, 'data/indoor-movement'), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'examples/indoor-movement.gatelab.yaml'), path.join(dir, 'im.gatelab.yaml'));
    const both2 = async (name: string) => {
      // the second model of the file: the --model flag for every command
      let r = await run(['train', 'im.gatelab.yaml', '--model', 'indoor-movement-rooms', '--steps', '1', '--save', `${name}0.safetensors`, '--no-record', '--quiet']);
      expect(r.status, r.stderr).toBe(0);
      r = await run(['train', 'im.gatelab.yaml', '--model', 'indoor-movement-rooms', '--init', `${name}0.safetensors`, '--steps', '20', '--metrics', `${name}.jsonl`, '--no-record', '--quiet']);
      expect(r.status, r.stderr).toBe(0);
      const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
      r = await run(['export', 'im.gatelab.yaml', '--model', 'indoor-movement-rooms', '--pytorch', `${name}job`, '--init', `${name}0.safetensors`, '--runs', `${name}runs`]);
      expect(r.status, r.stderr).toBe(0);
      r = await run([path.join(dir, `${name}job/train.py`), '--steps', '20', '--device', 'cpu'], '/usr/bin/python3');
      expect(r.status, r.stderr).toBe(0);
      const one = path.join(dir, `${name}runs`, fs.readdirSync(path.join(dir, `${name}runs`))[0]);
      const ours = stepLosses(path.join(dir, `${name}.jsonl`));
      const theirs = stepLosses(path.join(one, 'metrics.jsonl'));
      ours.slice(0, 20).forEach((l, i) => expect(Math.abs(theirs[i] - l) / l, `step ${i + 1}: Gatelab ${l}, PyTorch ${theirs[i]}`).toBeLessThan(1e-4));
      return { one, summary };
    };
    const { one, summary } = await both2('im');
    expect(readRunRecord(one)!.summary).toMatchObject({ accuracy: summary.accuracy, confusion: summary.confusion });
    // its checkpoint classifies a sequence with gatelab predict (classes and scaling in its metadata)
    const r = await run(['predict', 'im.gatelab.yaml', '--model', 'indoor-movement-rooms', '--init', path.join(one, 'model.safetensors'), '--input', 'data/indoor-movement/dataset/MovementAAL_RSS_1.csv']);
    expect(r.status, r.stderr).toBe(0);
    expect(Object.keys(JSON.parse(r.stdout).probabilities).sort()).toEqual(['-1', '1']);
  }, 300_000);

  it.skipIf(torch !== 'OK')('early stopping as Gatelab: the same epochs, the same best epoch, the best weights restored into the checkpoint', async () => {
    fs.copyFileSync(path.join(ROOT, 'examples/data/airline-passengers.csv'), path.join(dir, 'data/airline-passengers.csv'));
    const air = fs.readFileSync(path.join(ROOT, 'examples/airline.gatelab.yaml'), 'utf8').replace(/epochs: \d+/, 'epochs: 60\n  earlyStopping: { patience: 3, minDelta: 0 }');
    expect(air).toContain('earlyStopping');
    fs.writeFileSync(path.join(dir, 'es.gatelab.yaml'), air);
    let r = await run(['train', 'es.gatelab.yaml', '--steps', '1', '--save', 'es0.safetensors', '--no-record', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    r = await run(['train', 'es.gatelab.yaml', '--init', 'es0.safetensors', '--no-record', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    const ours = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(ours.stoppedEarly).toBe(true);
    r = await run(['export', 'es.gatelab.yaml', '--pytorch', 'esjob', '--init', 'es0.safetensors', '--runs', 'esruns']);
    expect(r.status, r.stderr).toBe(0);
    r = await run([path.join(dir, 'esjob/train.py'), '--device', 'cpu'], '/usr/bin/python3');
    expect(r.status, r.stderr).toBe(0);
    const theirs = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect([theirs.epochs, theirs.bestEpoch, theirs.stoppedEarly]).toEqual([ours.epochs, ours.bestEpoch, true]);
    // the checkpoint holds the best weights: gatelab predict from it gives what the best epoch gave
    const one = path.join(dir, 'esruns', fs.readdirSync(path.join(dir, 'esruns'))[0]);
    const [last, best] = ['model', 'best'].map((n) => readSafetensors(path.join(one, `${n}.safetensors`)).tensors);
    expect(Object.keys(last).sort()).toEqual(Object.keys(best).sort());
    for (const k of Object.keys(best)) expect(Array.from(last[k].data as Float32Array), k).toEqual(Array.from(best[k].data as Float32Array));
  }, 300_000);
});
