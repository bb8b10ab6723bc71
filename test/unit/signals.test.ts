// Ctrl+C as a terminal sends it (SIGINT to the whole process group: the CLI and its trainer), for
// every registered task: the first stops after the current K steps with a checkpoint and a summary
// with "stopped": true; a second one ends the run at once, leaving the last complete checkpoint.

import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TASKS } from '../../src/engine/tasks/registry';
import { readSafetensors } from '../../src/engine/util/safetensors';
import { CASES, caseDir } from './taskcases';

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/cli.js');

interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

/** The CLI in its own process group, as a terminal starts it. */
function start(dir: string, args: string[]): Proc {
  const child = spawn(process.execPath, [CLI, 'train', 'm.gatelab.yaml', ...args], { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function until(pred: () => boolean, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

const runDirOf = (dir: string) => {
  const runs = path.join(dir, '.gatelab', 'runs');
  const ids = fs.existsSync(runs) ? fs.readdirSync(runs) : [];
  return ids.length ? path.join(runs, ids[0]) : undefined;
};
const stepsDone = (run: string | undefined) => (run && fs.existsSync(path.join(run, 'metrics.jsonl')) ? fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"loss"')).length : 0);
const record = (run: string) => JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));

describe.each(Object.keys(TASKS))('Ctrl+C in a terminal: %s', (task) => {
  const c = CASES[task];
  const train = `{ ${c.trainKeys ?? ''}batchSize: 8, stepsPerRun: 2, steps: 1000000, seed: 3, optimizer: { type: adam, learningRate: 0.01 } }`;

  it('once: stops after the current steps with a checkpoint and "stopped": true; no process is left', async () => {
    const dir = caseDir(c, train);
    const p = start(dir, ['--checkpoint-every', '0']);
    await until(() => stepsDone(runDirOf(dir)) >= 4);
    process.kill(-p.child.pid!, 'SIGINT');
    const code = await p.exit;
    expect(code, p.stderr()).toBe(0);
    const summary = JSON.parse(p.stdout().trim().split('\n').pop()!);
    expect(summary.stopped).toBe(true);
    expect(summary.steps).toBeGreaterThanOrEqual(4);
    const run = runDirOf(dir)!;
    expect(record(run)).toMatchObject({ status: 'stopped', checkpoint: path.join(run, 'model.safetensors') });
    expect(readSafetensors(path.join(run, 'model.safetensors')).metadata['gatelab.step']).toBe(String(summary.steps));
    expect(p.stderr()).toMatch(/stopping after the current steps/);
    // the process group is gone: nothing outlives the run
    expect(() => process.kill(-p.child.pid!, 0)).toThrow();
  });

  it('twice: the second ends the run at once, leaving the last complete checkpoint', async () => {
    // slow K-step chunks (wide layers, K up to the epoch), so that the trainer is inside one when the second Ctrl+C comes
    const dir = caseDir(c, train.replace('stepsPerRun: 2', 'stepsPerRun: 1000'));
    const file = path.join(dir, 'm.gatelab.yaml');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/hidden: \d+/g, 'hidden: 768'));
    const p = start(dir, ['--checkpoint-every', '0.001']);
    await until(() => {
      const run = runDirOf(dir);
      return !!run && fs.existsSync(path.join(run, 'model.safetensors')) && stepsDone(run) >= 1;
    });
    process.kill(-p.child.pid!, 'SIGINT');
    await until(() => /stopping after the current steps/.test(p.stderr()));
    const t0 = Date.now();
    process.kill(-p.child.pid!, 'SIGINT');
    const code = await p.exit;
    const run = runDirOf(dir)!;
    const rec = record(run);
    expect(code, p.stderr()).toBe(130);
    expect(rec).toMatchObject({ status: 'stopped', checkpoint: path.join(run, 'model.safetensors') });
    expect(p.stderr()).toMatch(/last complete checkpoint is/);
    expect(Date.now() - t0).toBeLessThan(2000);
    const ck = readSafetensors(path.join(run, 'model.safetensors'));
    expect(Object.keys(ck.tensors)).toContain('fc.weight');
    expect(Number(ck.metadata['gatelab.step'])).toBeLessThanOrEqual(stepsDone(run));
  });
});
