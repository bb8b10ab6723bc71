// The `gatelab` command (DESIGN §3). Training runs in a forked trainer process (the same one the
// extension uses); progress goes to stderr, the result as one JSON line to stdout. Exit status: 0 ok,
// 2 bad model file / arguments / data (message names file, line and key; no stack trace), 1 runtime
// failure.

import '../engine/runtime/preload';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from './args';
import { formatProblem, isUserError, UserError, UserErrors } from '../engine/errors';
import { loadModelFile, readModel } from '../engine/config/load';
import { sweepGroups, sweepSettings, sweepTable, variantText } from '../engine/sweep';
import { TrainerProcess } from '../engine/runtime/client';
import { defaultRunsDir, newRunId, readRunRecord, RunRecord, settleRecord } from '../engine/train/runrecord';
import { checkModel, TASKS } from '../engine/tasks/registry';
import { computeGradients, probeFromCheckpoint, sampleFromCheckpoint } from '../engine/train/oneshot';
import { doctorReport, probeHere } from '../engine/runtime/doctor';
import { cuda } from './cuda';
import { loaderDirs, loaderPathSet, ortEnv } from '../engine/runtime/ortload';
import { runBench } from '../engine/bench/bench';
import { exportOnnx } from '../engine/train/export';
import { exportPytorchJob } from '../engine/pytorch/job';
import { chooseDevice } from '../engine/runtime/device';
import type { FromWorker, Summary } from '../shared/protocol';

const VERSION: string = (() => {
  try {
    return JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version;
  } catch {
    return 'dev';
  }
})();

const USAGE = `gatelab ${VERSION} — train and inspect LSTM sequence models

usage:
  gatelab train FILE [--model NAME] [--steps N | --epochs N] [--device auto|cpu|cuda]
                     [--init W.safetensors] [--save W.safetensors] [--metrics M.jsonl] [--quiet]
                     [--runs DIR | --no-record] [--checkpoint-every SECONDS]
                     [--no-cache] [--cache-max SIZE]
  gatelab train [FILE] --resume RUN_DIR [--steps N | --epochs N]
  gatelab sweep FILE [--model NAME] [--runs DIR] [--quiet]
  gatelab grad FILE --init W.safetensors --batch B.json --out G.safetensors [--model NAME]
  gatelab sample FILE --init W.safetensors [--prefix TEXT] [--length N] [--temperature T] [--model NAME]
  gatelab predict FILE --init W.safetensors --input TEXT_OR_CSV [--steps N] [--model NAME]
  gatelab probe FILE --init W.safetensors (--text TEXT | --input TEXT_OR_CSV) [--json] [--model NAME]
  gatelab export FILE --init W.safetensors --onnx OUT.onnx [--model NAME]
  gatelab export FILE --pytorch DIR [--init W.safetensors] [--runs RUNS_DIR] [--model NAME]
  gatelab bench [--device cpu|cuda] [--json] [--only C1,C2] [--threads N] [--placement]
  gatelab doctor [--json]
  gatelab cuda install [--cuda 13|BUILD] [--dir DIR] [--from PATH ...] [--dry-run] [--force] [--provider-only]
  gatelab cuda remove [--dir DIR]

  train    trains the model; progress on stderr, a one-line JSON summary on stdout;
           the run is recorded in .gatelab/runs/ beside the model file (or --runs DIR);
           --resume continues a stopped or failed run where it stopped (weights,
           optimizer state, data order), in its own folder; a corpus's token ids are
           kept in .gatelab/cache beside the model file for the next run (--no-cache:
           tokenise every time; --cache-max 8G: the cache's limit, oldest removed first)
  sweep    trains every combination of the model's sweep: values (in turn, each a recorded run
           with its setting), then prints a table of each setting's metric as mean ± std over
           the train.seed values and a final JSON line
  grad     loss and gradient of every parameter for one explicit batch (no update; any task)
  sample   generated text on stdout (temperature 0 = greedy)
  predict  class probabilities of a sentence, or forecasts after the end of a CSV series
  probe    gradients through time of a language model for a text: how much each earlier
           input still matters to each prediction, and the gradient of the last one's loss
           through every layer's states (--json: one JSON line with the gate values too)
  export   an inference model with the standard ONNX LSTM operator
  bench    training-step and generation speed of C1–C4 against onnxruntime's own ceilings
  doctor   which execution providers load here and, if CUDA does not, why: the provider, the
           CUDA install, the driver's CUDA version and every NVIDIA library the loader lacks
  cuda     install: the CUDA provider of this onnxruntime and the NVIDIA libraries the system
           lacks, from nuget.org and PyPI (or mirrors: GATELAB_NUGET_INDEX, GATELAB_PYPI_INDEX,
           GATELAB_NPM_REGISTRY; or package files in --from), each checked against the pinned
           digest, into DIR (default GATELAB_CUDA_DIR or ~/.local/share/gatelab/cuda); downloads
           resume; --dry-run prints the package set, URLs and digests offline; --provider-only
           leaves the NVIDIA libraries to the system. remove: deletes what install put there.
           Linux x64 (macOS has no CUDA; Windows: see doctor)

exit status: 0 ok, 2 bad model file or arguments, 1 runtime failure`;

function positiveInt(v: string | undefined, key: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`expected a positive integer, got "${v}"`, { key });
  return n;
}

function number(v: string | undefined, key: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new UserError(`expected a number ≥ ${min}, got "${v}"`, { key });
  return n;
}

/** A size such as 8G, 512M, 1.5G or a number of bytes (powers of 1024). */
export function byteSize(v: string | undefined, key: string): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$/i.exec(v.trim());
  if (!m) throw new UserError(`expected a size such as 8G, 512M or a number of bytes, got "${v}"`, { key });
  return Math.round(Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase()));
}

function oneFile(positionals: string[], command: string): string {
  if (positionals.length === 0) throw new UserError('missing the model file', { key: 'FILE' }, `usage: gatelab ${command} FILE ...`);
  if (positionals.length > 1) throw new UserError(`unexpected argument "${positionals[1]}"`, { key: positionals[1] }, `usage: gatelab ${command} FILE ...`);
  return path.resolve(positionals[0]);
}

/** The record of a run to resume (its folder must hold one). */
function resumedRecord(dir: string): RunRecord {
  const rec = readRunRecord(dir);
  if (!rec) throw new UserError(`no run record (run.json) in ${dir}`, { key: '--resume' }, 'give a run folder, e.g. .gatelab/runs/<id>');
  return rec;
}

function required(v: string | undefined, key: string, what: string): string {
  if (v === undefined || v === '') throw new UserError(`${key} is required`, { key }, what);
  return v;
}

function fmtDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

function fmtBytes(n: number): string {
  return n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(2)} GiB` : n >= 1024 ** 2 ? `${(n / 1024 ** 2).toFixed(0)} MiB` : `${Math.ceil(n / 1024)} KiB`;
}

function fmtRate(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0);
}

async function train(args: string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      model: { type: 'string' },
      steps: { type: 'string' },
      epochs: { type: 'string' },
      device: { type: 'string' },
      init: { type: 'string' },
      save: { type: 'string' },
      metrics: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      threads: { type: 'string' },
      'checkpoint-every': { type: 'string' },
      'no-record': { type: 'boolean', default: false },
      'no-cache': { type: 'boolean', default: false },
      'cache-max': { type: 'string' },
      runs: { type: 'string' },
      resume: { type: 'string' },
    },
    'train',
  );
  const resume = values.resume ? path.resolve(values.resume as string) : undefined;
  const record = resume ? resumedRecord(resume) : undefined;
  if (resume && (values.init || values['no-record'] || values.runs || values.model))
    throw new UserError('--resume continues a run in its own folder with its own model and weights', { key: values.init ? '--init' : values['no-record'] ? '--no-record' : values.runs ? '--runs' : '--model' }, 'drop that argument, or train a new run');
  const file = record && positionals.length === 0 ? record.modelFile : oneFile(positionals, 'train');
  if (record && path.resolve(file) !== path.resolve(record.modelFile))
    throw new UserError(`the run ${record.id} was trained from ${record.modelFile}, not ${file}`, { key: '--resume' }, 'give that model file, or none');
  const steps = positiveInt(values.steps as string | undefined, '--steps');
  const epochs = positiveInt(values.epochs as string | undefined, '--epochs');
  if (steps !== undefined && epochs !== undefined) throw new UserError('give --steps or --epochs, not both', { key: '--steps' });
  const device = values.device as string | undefined;
  if (device !== undefined && !['auto', 'cpu', 'cuda'].includes(device))
    throw new UserError(`unknown device "${device}"`, { key: '--device' }, 'use auto, cpu or cuda');
  const init = values.init ? path.resolve(values.init as string) : undefined;
  if (init && !fs.existsSync(init)) throw new UserError(`checkpoint not found: ${init}`, { key: '--init' });
  // validate the model file here, so a bad file fails before a process is forked
  const cfg = record ? undefined : loadModelFile(file, values.model as string | undefined);
  const quiet = values.quiet as boolean;
  const runs = values.runs ? path.resolve(values.runs as string) : defaultRunsDir(file);
  const runDir = resume ?? (values['no-record'] ? undefined : path.join(runs, newRunId(cfg!.name)));
  const tty = process.stderr.isTTY && !quiet;
  let lastLine = 0;
  let started: Extract<FromWorker, { type: 'started' }> | undefined;
  let latestLoss = NaN;
  let tps = 0;
  const err = (s: string) => {
    if (tty) process.stderr.write('\r\x1b[K');
    process.stderr.write(s + '\n');
  };

  const onMessage = (m: FromWorker) => {
    if (quiet && m.type !== 'error') return;
    switch (m.type) {
      case 'started':
        started = m;
        err(
          `training ${m.model} on ${m.device}: ${m.parameters.toLocaleString('en-US')} parameters, ` +
            (m.vocabulary !== undefined ? `vocabulary ${m.vocabulary}, ` : '') +
            `${m.epochs} epoch${m.epochs === 1 ? '' : 's'} × ${m.stepsPerEpoch} steps` +
            (runDir ? `\nrun record: ${path.relative(process.cwd(), runDir)}` : ''),
        );
        break;
      case 'progress': {
        latestLoss = m.losses[m.losses.length - 1];
        tps = m.tokensPerSecond;
        const line = `step ${m.step}/${started?.totalSteps ?? '?'}  epoch ${m.epoch}  loss ${latestLoss.toFixed(4)}  ${fmtRate(tps)} tok/s  ${fmtDuration(m.elapsedMs)} elapsed, ${fmtDuration(m.remainingMs)} left`;
        if (tty) process.stderr.write('\r\x1b[K' + line);
        else if (Date.now() - lastLine > 10_000) {
          process.stderr.write(line + '\n');
          lastLine = Date.now();
        }
        break;
      }
      case 'epoch':
        err(
          `epoch ${m.epoch}/${started?.epochs ?? '?'}  step ${m.step}  train loss ${m.trainLoss.toFixed(4)}${m.trainPerplexity != null ? ` ppl ${m.trainPerplexity.toFixed(2)}` : ''}` +
            (m.validLoss != null ? `  valid loss ${m.validLoss.toFixed(4)}${m.validPerplexity != null ? ` ppl ${m.validPerplexity.toFixed(2)}` : ''}` : '') +
            `  ${fmtRate(tps)} tok/s  ${fmtDuration(m.elapsedMs)}`,
        );
        break;
      case 'reading': {
        const line = `reading ${path.basename(m.file)}: pass ${m.pass}/${m.passes}, ${fmtBytes(m.bytes)} of ${fmtBytes(m.size)}  ${Math.floor(m.fraction * 100)}%  ${fmtDuration(m.remainingMs)} left`;
        if (tty) process.stderr.write('\r\x1b[K' + line);
        else if (Date.now() - lastLine > 10_000) {
          process.stderr.write(line + '\n');
          lastLine = Date.now();
        }
        break;
      }
      case 'sample':
        err(`sample: ${m.text}`);
        break;
      case 'log':
        if (m.level !== 'debug') err(`${m.level === 'info' ? '' : m.level + ': '}${m.message}`);
        break;
      case 'checkpoint':
      case 'done':
        break;
      case 'error':
        break;
    }
  };

  const proc = new TrainerProcess(
    {
      modelFile: file,
      modelName: values.model as string | undefined,
      steps,
      epochs,
      device: device as 'auto' | 'cpu' | 'cuda' | undefined,
      init,
      save: values.save ? path.resolve(values.save as string) : undefined,
      metrics: values.metrics ? path.resolve(values.metrics as string) : undefined,
      threads: positiveInt(values.threads as string | undefined, '--threads'),
      checkpointEvery: number(values['checkpoint-every'] as string | undefined, '--checkpoint-every', 0),
      ...(values['no-cache'] ? { cache: false } : {}),
      cacheMaxBytes: byteSize(values['cache-max'] as string | undefined, '--cache-max'),
      ...(resume ? { resume, modelName: record!.model } : {}),
    },
    onMessage,
    { runDir },
  );
  // Ctrl+C: the first stops after the K steps running now, with a checkpoint (the trainer ignores the
  // terminal's SIGINT and waits for this stop message); the second kills the trainer at once
  let interrupts = 0;
  const onSignal = () => {
    interrupts++;
    if (interrupts === 1) {
      err('stopping after the current steps, with a checkpoint (press Ctrl+C again to kill the trainer)…');
      void proc.stop(null);
    } else proc.kill();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const outcome = await proc.finished;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (runDir && outcome.type === 'error') {
    // a trainer killed by a second Ctrl+C (or that crashed) could not finish its record
    const rec = settleRecord(runDir, interrupts >= 2 ? 'stopped' : 'failed', interrupts >= 2 ? 'killed by a second Ctrl+C; the checkpoint is the last complete one' : outcome.message);
    if (rec && interrupts >= 2) {
      process.stderr.write(`gatelab: the trainer was killed${rec.checkpoint ? `; the last complete checkpoint is ${rec.checkpoint}` : ' before it saved a checkpoint'}\n`);
      return 130;
    }
  }
  if (outcome.type === 'done') {
    process.stdout.write(JSON.stringify(orderSummary(outcome.summary)) + '\n');
    return 0;
  }
  if (outcome.kind === 'user') {
    process.stderr.write(`gatelab: ${formatProblem(outcome.message, outcome.where ?? {}, outcome.hint)}\n`);
    return 2;
  }
  process.stderr.write(`gatelab: error: ${outcome.message}\n`);
  if (process.env.GATELAB_DEBUG && outcome.stack) process.stderr.write(outcome.stack + '\n');
  return 1;
}

/** The summary with the contract's keys first. */
function orderSummary(s: Summary): Record<string, unknown> {
  const { model, device, steps, trainLoss, validLoss, perplexity, accuracy, rmse, mae, baselineRmse, tokensPerSecond, ...rest } = s;
  return {
    model,
    device,
    steps,
    trainLoss,
    validLoss,
    ...(perplexity !== undefined ? { perplexity } : {}),
    ...(accuracy !== undefined ? { accuracy } : {}),
    ...(rmse !== undefined ? { rmse, mae, baselineRmse } : {}),
    tokensPerSecond,
    ...rest,
  };
}

async function grad(args: string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    { init: { type: 'string' }, batch: { type: 'string' }, out: { type: 'string' }, model: { type: 'string' } },
    'grad',
  );
  const file = oneFile(positionals, 'grad');
  const init = path.resolve(required(values.init as string, '--init', 'give the weights: --init W.safetensors'));
  const batch = path.resolve(required(values.batch as string, '--batch', 'give the batch: --batch B.json'));
  const out = path.resolve(required(values.out as string, '--out', 'give the output file: --out G.safetensors'));
  if (!fs.existsSync(init)) throw new UserError(`checkpoint not found: ${init}`, { key: '--init' });
  const r = await computeGradients({ modelFile: file, modelName: values.model as string | undefined, init, batch, out });
  process.stdout.write(JSON.stringify({ loss: r.loss, out, tensors: r.tensors }) + '\n');
  return 0;
}

async function sample(args: string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      init: { type: 'string' },
      prefix: { type: 'string' },
      length: { type: 'string' },
      temperature: { type: 'string' },
      model: { type: 'string' },
      seed: { type: 'string' },
      device: { type: 'string' },
    },
    'sample',
  );
  const file = oneFile(positionals, 'sample');
  const init = path.resolve(required(values.init as string, '--init', 'give the weights: --init W.safetensors'));
  if (!fs.existsSync(init)) throw new UserError(`checkpoint not found: ${init}`, { key: '--init' });
  const text = await sampleFromCheckpoint({
    modelFile: file,
    modelName: values.model as string | undefined,
    init,
    prefix: values.prefix as string | undefined,
    length: positiveInt(values.length as string | undefined, '--length') ?? 200,
    temperature: number(values.temperature as string | undefined, '--temperature', 0) ?? 1,
    seed: values.seed !== undefined ? Number(values.seed) : Date.now() % 1e9,
  });
  process.stdout.write(text + '\n');
  return 0;
}

async function bench(args: string[]): Promise<number> {
  const { values } = parse(
    args,
    { device: { type: 'string' }, json: { type: 'boolean', default: false }, only: { type: 'string' }, threads: { type: 'string' }, quick: { type: 'boolean', default: false }, placement: { type: 'boolean', default: false } },
    'bench',
  );
  const device = (values.device as string | undefined) ?? 'cpu';
  if (!['auto', 'cpu', 'cuda'].includes(device)) throw new UserError(`unknown device "${device}"`, { key: '--device' }, 'use cpu, cuda or auto');
  // ids as written in RESULTS (C1-cell), matched case-insensitively
  const IDS = ['C1', 'C2', 'C3', 'C4', 'G1', 'G4', 'C1-cell'];
  const only = values.only ? (values.only as string).split(',').map((s) => { const t = s.trim(); return IDS.find((id) => id.toLowerCase() === t.toLowerCase()) ?? t; }) : undefined;
  for (const id of only ?? []) if (!IDS.includes(id)) throw new UserError(`unknown configuration "${id}"`, { key: '--only' }, 'use C1, C2, C3, C4 (DESIGN §6), G1, G4 (C1 and C4 with a GRU layer) or C1-cell (C1 with the LSTM written as equations)');
  const threads = positiveInt(values.threads as string | undefined, '--threads');
  const results = await runBench({
    device: chooseDevice(device as 'auto' | 'cpu' | 'cuda'),
    threads,
    only,
    quick: values.quick as boolean,
    placement: values.placement as boolean,
    log: values.json ? undefined : (s) => process.stderr.write(s + '\n'),
  });
  if (values.json) {
    process.stdout.write(
      JSON.stringify({
        results: results.map((r) =>
          r.id === 'C4' || r.id === 'G4'
            ? { id: r.id, device: r.device, msPerToken: r.msPerToken, ceilingRatio: r.ceilingRatio, peakRssMB: r.peakRssMB }
            : { id: r.id, device: r.device, msPerStep: r.msPerStep, tokensPerSecond: r.tokensPerSecond, ceilingRatio: r.ceilingRatio, peakRssMB: r.peakRssMB, ...(r.placement ? { placement: r.placement } : {}) },
        ),
      }) + '\n',
    );
    return 0;
  }
  const lines = [`gatelab bench — ${results[0]?.device ?? device}, ${threads ?? 'default'} threads`, ''];
  for (const r of results) {
    if (r.id === 'C4' || r.id === 'G4')
      lines.push(`${r.id}  ${r.config}\n    ${r.msPerToken!.toFixed(3)} ms/token; fused ONNX ${r.id === 'G4' ? 'GRU' : 'LSTM'} op ${r.ceilingMs.toFixed(3)} ms/token; ratio ${r.ceilingRatio.toFixed(2)} (target ≤ 1.2); peak RSS ${r.peakRssMB.toFixed(0)} MB`);
    else
      lines.push(`${r.id}  ${r.config}\n    ${r.msPerStep!.toFixed(2)} ms/step, ${Math.round(r.tokensPerSecond!).toLocaleString('en-US')} tokens/s; MatMul ceiling ${r.ceilingMs.toFixed(2)} ms; ratio ${r.ceilingRatio.toFixed(2)}; peak RSS ${r.peakRssMB.toFixed(0)} MB${r.mustHoldMB ? ` (${(r.peakRssMB / r.mustHoldMB).toFixed(2)}× the ${r.mustHoldMB.toFixed(0)} MB a step must hold)` : ''}${r.placement ? `\n    placement: ${Object.entries(r.placement.nodesByProvider).map(([p, n]) => `${n} nodes on ${p}`).join(', ')}${r.placement.elsewhere.length ? `; not on the device: ${r.placement.elsewhere.join(', ')}` : ''}` : ''}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

async function exportCmd(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { init: { type: 'string' }, onnx: { type: 'string' }, pytorch: { type: 'string' }, runs: { type: 'string' }, model: { type: 'string' } }, 'export');
  const file = oneFile(positionals, 'export');
  if (values.pytorch !== undefined) {
    // a PyTorch training job (its initial weights optional: PyTorch's initialisation without)
    if (values.onnx !== undefined) throw new UserError('--onnx and --pytorch export different things: give one of them', { key: '--pytorch' });
    const init = values.init === undefined ? undefined : path.resolve(values.init as string);
    if (init && !fs.existsSync(init)) throw new UserError(`checkpoint not found: ${init}`, { key: '--init' });
    const r = await exportPytorchJob({ modelFile: file, modelName: values.model as string | undefined, init, dir: values.pytorch as string, runs: values.runs as string | undefined });
    process.stdout.write(JSON.stringify({ pytorch: r.dir, files: r.files, run: `python3 ${path.join(r.dir, 'train.py')}` }) + '\n');
    return 0;
  }
  const init = path.resolve(required(values.init as string, '--init', 'give the weights: --init W.safetensors'));
  const out = path.resolve(required(values.onnx as string, '--onnx', 'give the output file: --onnx OUT.onnx'));
  if (!fs.existsSync(init)) throw new UserError(`checkpoint not found: ${init}`, { key: '--init' });
  const r = exportOnnx({ modelFile: file, modelName: values.model as string | undefined, init, out });
  process.stdout.write(JSON.stringify({ onnx: out, bytes: r.bytes, vocabulary: r.vocab, inputs: r.inputs ?? ['tokens'], outputs: r.outputs ?? ['logits'] }) + '\n');
  return 0;
}

async function sweep(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { model: { type: 'string' }, runs: { type: 'string' }, quiet: { type: 'boolean', default: false } }, 'sweep');
  const file = oneFile(positionals, 'sweep');
  const { cfg, text } = readModel(file, values.model as string | undefined);
  if (!cfg.sweep || Object.keys(cfg.sweep).length === 0)
    throw new UserError(`model "${cfg.name}" has no sweep`, { file: cfg.file, line: cfg.line, key: 'sweep' }, 'add e.g. sweep: { model.layers.0.forgetBias: [0, 1], train.seed: [1, 2, 3] } to the model');
  const metric = checkModel(cfg).sweepMetric;
  const settings = sweepSettings(cfg.sweep);
  // every variant is checked before the first one trains
  const variants = settings.map((s) => variantText(cfg, text, s));
  const runs = values.runs ? path.resolve(values.runs as string) : defaultRunsDir(file);
  const quiet = values.quiet as boolean;
  const results: { setting: Record<string, unknown>; value: number | undefined; run: string; status: string }[] = [];
  let interrupted = false;
  let current: TrainerProcess | undefined;
  const onSignal = () => {
    // the first Ctrl+C stops the run that trains (with a checkpoint) and starts no other; the second kills it
    if (!interrupted) {
      interrupted = true;
      process.stderr.write('\nstopping the sweep after the current steps of this run (Ctrl+C again to kill it)…\n');
      void current?.stop(null);
    } else current?.kill();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    for (let i = 0; i < settings.length && !interrupted; i++) {
      const setting = settings[i];
      const runDir = path.join(runs, newRunId(cfg.name));
      const label = Object.entries(setting).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ');
      if (!quiet) process.stderr.write(`[${i + 1}/${settings.length}] ${label}\n`);
      current = new TrainerProcess({ modelFile: cfg.file, modelName: cfg.name, modelText: variants[i], sweep: { name: cfg.name, setting, metric } }, () => undefined, { runDir });
      const outcome = await current.finished;
      const summary = outcome.type === 'done' ? (outcome.summary as unknown as Record<string, unknown>) : undefined;
      const value = typeof summary?.[metric] === 'number' ? (summary[metric] as number) : undefined;
      if (outcome.type === 'error') settleRecord(runDir, interrupted ? 'stopped' : 'failed', outcome.message);
      results.push({ setting, value, run: path.basename(runDir), status: outcome.type === 'done' ? (summary?.stopped ? 'stopped' : 'done') : 'failed' });
      if (!quiet) process.stderr.write(`        ${metric} ${value === undefined ? (outcome.type === 'error' ? `failed: ${outcome.message.split('\n')[0]}` : '–') : value.toPrecision(4)}  (${path.relative(process.cwd(), runDir)})\n`);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const groups = sweepGroups(results as { setting: Record<string, string | number | boolean>; value: number | undefined }[], metric);
  process.stdout.write(sweepTable(groups) + '\n');
  process.stdout.write(JSON.stringify({ sweep: cfg.name, runs: results.length, groups }) + '\n');
  return interrupted ? 130 : results.some((r) => r.status === 'failed') ? 1 : 0;
}

async function probe(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { init: { type: 'string' }, text: { type: 'string' }, input: { type: 'string' }, model: { type: 'string' }, json: { type: 'boolean', default: false } }, 'probe');
  const file = oneFile(positionals, 'probe');
  const init = path.resolve(required(values.init as string, '--init', 'give the weights: --init W.safetensors'));
  if (!fs.existsSync(init)) throw new UserError(`checkpoint not found: ${init}`, { key: '--init' });
  const cfg = loadModelFile(file, values.model as string | undefined);
  const task = checkModel(cfg);
  let r: { tokens: string[]; connectivity: number[][]; gradientFlow: { layer: number; h: number[]; c?: number[] }[]; layers: unknown[] };
  if (cfg.task === 'language-model') {
    const text = required(values.text as string, '--text', 'give the text to probe: --text "the time traveller"');
    r = await probeFromCheckpoint({ modelFile: file, modelName: values.model as string | undefined, init, text });
  } else {
    if (!task.through) {
      const can = ['language-model', ...Object.values(TASKS).filter((t) => t.through).map((t) => t.kind)].join(', ');
      throw new UserError(`\`gatelab probe\` works on ${can} models; "${cfg.name}" is a ${cfg.task} model`, { file: cfg.file, line: cfg.line, key: 'task' });
    }
    const input = required(values.input as string, '--input', 'give the input as `gatelab predict` takes it: --input "a sentence" (classification) or --input SERIES.csv (forecast)');
    r = await task.through({ cfg, init, input });
  }
  if (values.json) {
    process.stdout.write(JSON.stringify(r) + '\n');
    return 0;
  }
  // a table for the last prediction that has a target: how much each input and state still matters
  const T = r.tokens.length;
  // a language model: the last prediction with a target; a classifier or forecaster: its one prediction
  const last = r.connectivity[r.connectivity.length - 1];
  const fmt = (v: number) => (v === 0 ? '0' : v.toExponential(2));
  const heads = ['s', 'token', `‖∂ℓ/∂x_s‖`, ...r.gradientFlow.flatMap((f) => [`‖∂ℓ/∂h_s‖ l${f.layer}`, ...(f.c ? [`‖∂ℓ/∂c_s‖ l${f.layer}`] : [])])];
  const rows = r.tokens.map((tok, s) => [String(s), JSON.stringify(tok), fmt(last[s]), ...r.gradientFlow.flatMap((f) => [fmt(f.h[s]), ...(f.c ? [fmt(f.c[s])] : [])])]);
  const widths = heads.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  process.stdout.write(
    cfg.task === 'language-model'
      ? `the loss of predicting ${JSON.stringify(r.tokens[T - 1])} after ${JSON.stringify(r.tokens[T - 2])} (position ${T - 2}), back through time:\n`
      : `the ${{ forecast: 'first forecast value', 'change-point': 'prediction at the last step', 'key-query': 'loss of the answer at the QUERY' }[cfg.task as string] ?? 'loss of the predicted class'} after ${T} steps, back through time:\n`,
  );
  process.stdout.write([line(heads), ...rows.map(line)].join('\n') + '\n');
  return 0;
}

async function predict(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { init: { type: 'string' }, input: { type: 'string' }, model: { type: 'string' }, steps: { type: 'string' } }, 'predict');
  const file = oneFile(positionals, 'predict');
  const init = path.resolve(required(values.init as string, '--init', 'give the weights: --init W.safetensors'));
  const input = required(values.input as string, '--input', 'give the input: --input "a sentence" (classification) or --input SERIES.csv (forecast)');
  if (!fs.existsSync(init)) throw new UserError(`checkpoint not found: ${init}`, { key: '--init' });
  const cfg = loadModelFile(file, values.model as string | undefined);
  const task = checkModel(cfg);
  if (!task.predict) {
    const can = Object.values(TASKS).filter((t) => t.predict).map((t) => t.kind).join(' and ');
    throw new UserError(`\`gatelab predict\` works on ${can} models; "${cfg.name}" is a ${cfg.task} model`, { file: cfg.file, line: cfg.line, key: 'task' }, cfg.task === 'language-model' ? 'use `gatelab sample`' : undefined);
  }
  const r = await task.predict({ cfg, init, input, steps: positiveInt(values.steps as string | undefined, '--steps') });
  process.stdout.write(JSON.stringify(r) + '\n');
  return 0;
}

async function doctor(args: string[]): Promise<number> {
  const { values } = parse(args, { json: { type: 'boolean', default: false }, probe: { type: 'boolean', default: false }, 'try-cuda': { type: 'boolean', default: false } }, 'doctor');
  if (values.probe) {
    // the live check, in the child `doctorReport` starts with the CUDA loader path
    process.stdout.write(JSON.stringify(await probeHere(values['try-cuda'] as boolean)) + '\n');
    return 0;
  }
  const report = await doctorReport({ cliScript: __filename });
  if (values.json) process.stdout.write(JSON.stringify(report) + '\n');
  else process.stdout.write(report.text + '\n');
  return 0;
}

/** Commands that run onnxruntime in this process (the others start trainers with the loader path). */
const IN_PROCESS = new Set(['grad', 'sample', 'predict', 'probe', 'bench']);

/**
 * Runs this command again in a child started with the CUDA folder on the loader path (which the
 * loader reads only when a process starts); signals go to the child, its exit status is ours.
 */
function reexec(argv: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, __filename, ...argv], { stdio: 'inherit', env: { ...ortEnv(process.env), GATELAB_REEXEC: '1' } });
    const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
    const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => [sig, forward(sig)] as const);
    for (const [sig, h] of handlers) process.on(sig, h);
    child.on('exit', (code, signal) => {
      for (const [sig, h] of handlers) process.off(sig, h);
      resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 1) : 1));
    });
    child.on('error', (e) => {
      process.stderr.write(`gatelab: error: cannot start onnxruntime with the CUDA loader path: ${e.message}\n`);
      resolve(1);
    });
  });
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === 'help' || command === '--help' || command === '-h') {
      process.stdout.write(USAGE + '\n');
      return command ? 0 : 2;
    }
    if (command === '--version' || command === '-v') {
      process.stdout.write(VERSION + '\n');
      return 0;
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    if (IN_PROCESS.has(command) && loaderDirs().length && !loaderPathSet() && !process.env.GATELAB_REEXEC) return await reexec(argv);
    switch (command) {
      case 'train':
        return await train(rest);
      case 'grad':
        return await grad(rest);
      case 'sample':
        return await sample(rest);
      case 'doctor':
        return await doctor(rest);
      case 'bench':
        return await bench(rest);
      case 'export':
        return await exportCmd(rest);
      case 'predict':
        return await predict(rest);
      case 'probe':
        return await probe(rest);
      case 'sweep':
        return await sweep(rest);
      case 'cuda':
        return await cuda(rest);
      default:
        throw new UserError(`unknown command "${command}"`, { key: command }, 'commands: train, sweep, grad, sample, predict, probe, export, bench, doctor, cuda');
    }
  } catch (e) {
    if (isUserError(e)) {
      const text = e instanceof UserErrors ? e.format() : e.format();
      process.stderr.write(`gatelab: ${text.split('\n').join('\ngatelab: ')}\n`);
      return 2;
    }
    process.stderr.write(`gatelab: error: ${(e as Error)?.message ?? e}\n`);
    if (process.env.GATELAB_DEBUG) process.stderr.write(`${(e as Error)?.stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`gatelab: error: ${e?.message ?? e}\n`);
      process.exitCode = 1;
    },
  );
}
