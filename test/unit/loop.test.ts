// The one training loop's guarantees, for every registered task (src/engine/tasks/registry.ts): a
// task gets these tests by being registered and given a small case below. Runs in process through
// runTraining, the function the trainer process runs.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTraining, TrainingFailure, TrainRequest } from '../../src/engine/train/loop';
import { TASKS } from '../../src/engine/tasks/registry';
import { readRunRecord } from '../../src/engine/train/runrecord';
import { readSafetensors } from '../../src/engine/util/safetensors';
import { loadState } from '../../src/engine/train/state';
import type { FromWorker, Summary } from '../../src/shared/protocol';
import { CASES, caseDir as setup } from './taskcases';

interface Ran {
  summary?: Summary;
  error?: Error;
  messages: FromWorker[];
  runDir: string;
}

let counter = 0;

/** One run in process; `stopAt`: ask to stop once this many steps are done (0: before the first). */
async function train(dir: string, job: Partial<TrainRequest> & { stopAt?: number } = {}): Promise<Ran> {
  const messages: FromWorker[] = [];
  const runDir = job.resume ?? path.join(dir, 'runs', `r${counter++}`);
  let step = 0;
  const { stopAt, ...rest } = job;
  const hooks = {
    emit: (m: FromWorker) => {
      messages.push(m);
      if (m.type === 'progress') step = m.step;
    },
    shouldStop: () => stopAt !== undefined && step >= stopAt,
  };
  try {
    const summary = await runTraining({ modelFile: path.join(dir, 'm.gatelab.yaml'), runDir, progressEveryMs: 0, gatesEveryMs: 0, sampleAtEnd: false, ...rest }, hooks);
    return { summary, messages, runDir };
  } catch (e) {
    return { error: e as Error, messages, runDir };
  }
}

const of = <T extends FromWorker['type']>(r: Ran, type: T) => r.messages.filter((m): m is Extract<FromWorker, { type: T }> => m.type === type);
const stepLosses = (runDir: string) =>
  fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => 'loss' in m).map((m) => [m.step, m.loss] as [number, number]);
const weights = (file: string) => Object.fromEntries(Object.entries(readSafetensors(file).tensors).map(([k, t]) => [k, Array.from(t.data as Float32Array)]));

it('every registered task has a case here', () => {
  expect(Object.keys(CASES).sort()).toEqual(Object.keys(TASKS).sort());
});

describe.each(Object.keys(TASKS))('the training loop: %s', (task) => {
  const c = CASES[task];
  const base = (more = '') => `{ ${c.trainKeys ?? ''}batchSize: 8, stepsPerRun: 4, seed: 3, optimizer: { type: adam, learningRate: 0.01 }${more} }`;

  it('a stop before the first step saves the initial weights; evaluation after every epoch and once more at a run\'s end inside an epoch; best weights; gate snapshots', async () => {
    const dir = setup(c, base(', epochs: 1'));
    const dry = await train(dir, { stopAt: 0 });
    expect(dry.summary?.stopped, String(dry.error)).toBe(true);
    expect(dry.summary!.steps).toBe(0);
    expect(fs.existsSync(path.join(dry.runDir, 'model.safetensors'))).toBe(true);
    expect(readRunRecord(dry.runDir)!.status).toBe('stopped');
    const perEpoch = of(dry, 'started')[0].stepsPerEpoch;
    expect(perEpoch).toBeGreaterThan(2);

    // (a language model's epochs may hold a batch more than stepsPerEpoch says: d2l's random offset)
    const steps = 2 * perEpoch + Math.floor(perEpoch / 2);
    const r = await train(dir, { steps, gatesEveryMs: 1 });
    expect(r.error).toBeUndefined();
    const epochs = of(r, 'epoch');
    expect(epochs.length).toBe(3);
    expect(epochs[0].step).toBeGreaterThanOrEqual(perEpoch);
    expect(epochs[1].step - epochs[0].step).toBeGreaterThanOrEqual(perEpoch);
    expect(epochs[2].step).toBe(steps);
    expect(epochs[2].step - epochs[1].step).toBeLessThan(perEpoch);
    for (const e of epochs) expect(Number.isFinite(e.validLoss)).toBe(true);
    expect(r.summary!.validLoss).toBe(epochs[2].validLoss);
    const best = readSafetensors(path.join(r.runDir, 'best.safetensors'));
    expect(Number(best.metadata['gatelab.validLoss'])).toBeCloseTo(Math.min(...epochs.map((e) => e.validLoss!)), 6);
    expect(of(r, 'gates').length).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(r.runDir, 'gates.json'))).toBe(true);
    const rec = readRunRecord(r.runDir)!;
    expect(rec.status).toBe('done');
    expect(rec.overrides).toMatchObject({ steps });
    expect(rec.device).toBe('cpu');
  });

  it('periodic checkpoints, each with its training state; progress at a bounded rate carries every loss', async () => {
    const dir = setup(c, base(', steps: 24'));
    const r = await train(dir, { checkpointEvery: 0.000001, progressEveryMs: 1e9 });
    expect(r.error).toBeUndefined();
    const cks = of(r, 'checkpoint').map((m) => m.step);
    expect(cks.filter((s) => s < 24).length).toBeGreaterThan(2);
    const st = loadState(path.join(r.runDir, 'train-state.safetensors')).state;
    expect(st.step).toBe(24);
    expect(readSafetensors(path.join(r.runDir, 'model.safetensors')).metadata['gatelab.step']).toBe('24');
    const progress = of(r, 'progress');
    expect(progress.length).toBeLessThanOrEqual(2);
    expect(progress.flatMap((p) => p.losses).length).toBe(24);
  });

  it('early stopping ends the run and restores the best weights', async () => {
    const dir = setup(c, base(', epochs: 6, earlyStopping: { patience: 1, minDelta: 1000000 }'));
    const r = await train(dir);
    expect(r.error).toBeUndefined();
    expect(r.summary).toMatchObject({ stoppedEarly: true, bestEpoch: 1, epochs: 2 });
    expect(weights(path.join(r.runDir, 'model.safetensors'))).toEqual(weights(path.join(r.runDir, 'best.safetensors')));
    expect(r.summary!.validLoss).toBe(of(r, 'epoch')[0].validLoss);
  });

  it('a non-finite loss or gradient norm stops the run naming the step, keeping the weights from before the failing chunk', async () => {
    const dir = setup(c, `{ ${c.trainKeys ?? ''}batchSize: 8, stepsPerRun: 4, steps: 200, optimizer: { type: sgd, learningRate: 1e38 }, clipNorm: 0 }`);
    const r = await train(dir, { checkpointEvery: 0.000001 });
    expect(r.error).toBeInstanceOf(TrainingFailure);
    const f = r.error as TrainingFailure;
    expect(f.message).toMatch(/(the loss|the gradient norm) became (NaN|-?Infinity) at step \d+/);
    const ck = path.join(r.runDir, 'model.safetensors');
    expect(f.message).toContain(ck);
    expect(f.checkpoint).toBe(ck);
    const saved = readSafetensors(ck);
    for (const t of Object.values(saved.tensors)) for (const v of t.data as Float32Array) expect(Number.isFinite(v)).toBe(true);
    // the saved weights are those before the chunk that failed
    expect(Number(saved.metadata['gatelab.step'])).toBe(Math.floor((f.step - 1) / 4) * 4);
    const rec = readRunRecord(r.runDir)!;
    expect(rec).toMatchObject({ status: 'failed', checkpoint: ck });
    expect(rec.error).toBe(f.message);
    expect(rec.finished).toBeDefined();
  });

  it('a stop request ends after the current K steps with a checkpoint, its state and a last evaluation', async () => {
    const dir = setup(c, base(', steps: 400'));
    const r = await train(dir, { stopAt: 8 });
    expect(r.summary).toMatchObject({ stopped: true, steps: 8 });
    expect(Number.isFinite(r.summary!.validLoss)).toBe(true);
    expect(readRunRecord(r.runDir)).toMatchObject({ status: 'stopped', checkpoint: path.join(r.runDir, 'model.safetensors') });
    expect(loadState(path.join(r.runDir, 'train-state.safetensors')).state.step).toBe(8);
  });

  it('--init starts from the given weights', async () => {
    const dir = setup(c, base(', steps: 8'));
    const a = await train(dir, { save: path.join(dir, 'a.safetensors') });
    expect(a.error).toBeUndefined();
    const b = await train(dir, { init: path.join(dir, 'a.safetensors'), stopAt: 0 });
    expect(b.summary?.steps).toBe(0);
    expect(weights(path.join(b.runDir, 'model.safetensors'))).toEqual(weights(path.join(dir, 'a.safetensors')));
    expect(readRunRecord(b.runDir)!.overrides).toMatchObject({ init: path.join(dir, 'a.safetensors') });
  });

  it('resume: 10 steps, stopped, then resumed to 26 gives the losses of 26 steps in one go', async () => {
    const train_ = base(', steps: 26, schedule: { type: cosine, warmupSteps: 3 }');
    const dir = setup(c, train_, { dropout: c.dropout ? 0.2 : 0 });
    const once = await train(dir);
    expect(once.error).toBeUndefined();
    // a stop is taken between K-step chunks: asked once 10 steps are done, it comes at 12
    const first = await train(dir, { stopAt: 10 });
    expect(first.summary?.stopped).toBe(true);
    const stoppedAt = first.summary!.steps;
    expect(stoppedAt).toBeGreaterThanOrEqual(10);
    expect(stoppedAt).toBeLessThan(26);
    const resumed = await train(dir, { resume: first.runDir });
    expect(resumed.error).toBeUndefined();
    expect(resumed.summary!.steps).toBe(26);
    const a = stepLosses(once.runDir);
    const b = stepLosses(resumed.runDir);
    expect(b.map(([s]) => s)).toEqual(a.map(([s]) => s));
    for (let i = 0; i < a.length; i++) expect(Math.abs(b[i][1] - a[i][1]), `step ${a[i][0]}`).toBeLessThanOrEqual(1e-5);
    expect(weights(path.join(resumed.runDir, 'model.safetensors'))).toEqual(weights(path.join(once.runDir, 'model.safetensors')));
    const rec = readRunRecord(resumed.runDir)!;
    expect(rec.status).toBe('done');
    expect(rec.resumed).toEqual([{ step: stoppedAt, at: expect.any(String) }]);
  });
});
