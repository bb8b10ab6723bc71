// What the CodeLens shows above each model of a model file, as a pure function of the text and
// the runs (unit-tested without VS Code): ▶ Train or ■ Stop, Sample, Dashboard, and the last run's
// result (`ppl 4.31 · 52k tok/s · cpu · 3 min ago`).

import { parseAllDocuments } from 'yaml';
import { modelAnchors } from '../engine/config/load';
import { COMMANDS, ModelRef } from './commands';
import { describeRun, RunInfo } from './runs';

export interface LensSpec {
  /** 0-based line */
  line: number;
  title: string;
  tooltip: string;
  command: string;
  args: unknown[];
}

/** The number of runs of each model's sweep (tolerant: a broken document has none). */
function sweepSizes(text: string): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const d of parseAllDocuments(text)) {
      const js = d.toJS() as { name?: unknown; sweep?: Record<string, unknown> } | null;
      if (!js || typeof js.name !== 'string' || !js.sweep || typeof js.sweep !== 'object') continue;
      const sizes = Object.values(js.sweep).map((v) => (Array.isArray(v) ? v.length : 0));
      if (sizes.length && sizes.every((n) => n > 0)) out.set(js.name, sizes.reduce((a, b) => a * b, 1));
    }
  } catch {
    // no lens for what does not parse
  }
  return out;
}

export function lensesFor(text: string, file: string, runs: { latest(file: string, model: string): RunInfo | undefined }, now = Date.now()): LensSpec[] {
  const out: LensSpec[] = [];
  const sweeps = text.includes('sweep') ? sweepSizes(text) : new Map<string, number>();
  for (const a of modelAnchors(text)) {
    const line = a.line - 1;
    if (!a.name) continue;
    const ref: ModelRef = { file, model: a.name };
    const run = runs.latest(file, a.name);
    const live = run && (run.status === 'running' || run.status === 'queued');
    if (live) out.push({ line, title: '$(debug-stop) Stop', tooltip: `Stop training ${a.name}`, command: COMMANDS.stop.id, args: [{ runId: run.id }] });
    else out.push({ line, title: '$(play) Train', tooltip: `Train ${a.name}`, command: COMMANDS.train.id, args: [ref] });
    const n = sweeps.get(a.name);
    if (n) out.push({ line, title: `$(beaker) Sweep (${n} runs)`, tooltip: `Train every combination of ${a.name}'s sweep: values`, command: COMMANDS.sweep.id, args: [ref] });
    // sampling and ONNX export are for language models (the other tasks predict from the CLI)
    const lm = !run?.task || run.task === 'language-model';
    const hasCk = !!(run?.checkpoint || run?.summary?.checkpoint);
    if (!lm && hasCk && (run?.task === 'classification' || run?.task === 'forecast'))
      out.push({ line, title: 'Predict', tooltip: `${run.task === 'forecast' ? 'Forecast the next values' : 'Classify a sentence'} with the last checkpoint of ${a.name}`, command: COMMANDS.predict.id, args: [ref] });
    if (lm && hasCk) {
      out.push({ line, title: 'Sample', tooltip: `Generate text with the last checkpoint of ${a.name}`, command: COMMANDS.sample.id, args: [ref] });
      if (!live) out.push({ line, title: 'Export ONNX', tooltip: `Save ${a.name} as an ONNX model with the standard LSTM operator`, command: COMMANDS.exportOnnx.id, args: [ref] });
      if (!live) out.push({ line, title: 'PyTorch Job', tooltip: `Export ${a.name} as a PyTorch training job (python or torchrun) from its last checkpoint; its runs are recorded here`, command: COMMANDS.exportPytorch.id, args: [ref] });
    }
    out.push({ line, title: 'Dashboard', tooltip: `Open the dashboard of ${a.name}`, command: COMMANDS.openDashboard.id, args: [run ? { runId: run.id } : ref] });
    if (run) out.push({ line, title: describeRun(run, now), tooltip: `Last run: ${run.id}`, command: COMMANDS.lensRunResult.id, args: [run.id] });
  }
  return out;
}
