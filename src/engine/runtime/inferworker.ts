// The inference process of the notebook side panel: forked by the extension host with
// GATELAB_INFER=1 (bundled as dist/infer.js), it receives one `infer` message (src/shared/notebook.ts),
// runs it with a finished run's checkpoint and the model document that run was trained with (its
// snapshot), answers `result` or `error`, and exits. onnxruntime's session.run blocks its thread, so
// this never runs in the extension host. Sampling, classification and forecasting reuse what the
// `gatelab sample` / `gatelab predict` commands use.

import './preload';
import * as path from 'node:path';
import { parseModelFile, whereOf } from '../config/load';
import type { ModelConfig } from '../config/types';
import { isUserError, UserError, UserErrors } from '../errors';
import { sampleWithConfig } from '../train/oneshot';
import { Frame, headFrame } from '../data/frame';
import type { FromInference, InferenceJob, InferenceResult, ToInference } from '../../shared/notebook';

/** The run's model as it was trained: the snapshot's text, relative paths against the model file's folder. */
export function jobConfig(job: InferenceJob): ModelConfig {
  const models = parseModelFile(job.modelText, job.modelFile);
  const cfg = models.find((m) => m.name === job.modelName) ?? (models.length === 1 ? models[0] : undefined);
  if (!cfg) throw new UserError(`the run's model document has no model named "${job.modelName}"`, { file: job.modelFile });
  return cfg;
}

/** The rows a forecast model was trained on (its data source, its columns). */
async function frameOf(cfg: ModelConfig): Promise<Frame> {
  const { loadForecastFrame } = await import('../tasks/forecast');
  return loadForecastFrame(cfg, cfg.data.source, { ...whereOf(cfg, 'data.source'), key: 'data.source' });
}

/** The series a forecast model was trained on: its target column. */
export async function seriesOf(cfg: ModelConfig): Promise<Float64Array> {
  const { forecastColumns } = await import('../tasks/forecast');
  return (await frameOf(cfg)).numeric.get(forecastColumns(cfg).target)!;
}

export async function runInference(job: InferenceJob): Promise<InferenceResult> {
  const cfg = jobConfig(job);
  const r = job.request;
  if (r.kind === 'sample') {
    if (cfg.task !== 'language-model') throw new UserError(`${cfg.name} is a ${cfg.task} model; only language models sample text`, { file: job.modelFile, key: 'task' });
    return { kind: 'sample', text: await sampleWithConfig(cfg, { init: job.init, prefix: r.prefix, length: r.length, temperature: r.temperature, seed: job.seed ?? Date.now() % 1e9 }) };
  }
  if (r.kind === 'classify') {
    if (cfg.task !== 'classification') throw new UserError(`${cfg.name} is a ${cfg.task} model, not a classifier`, { file: job.modelFile, key: 'task' });
    const { predictClassification } = await import('../tasks/classification');
    const { isNumericClassification, predictSequence } = await import('../tasks/numericClassification');
    // a numeric classifier reads one sequence: the text is its CSV's path (relative to the model file)
    const p = isNumericClassification(cfg)
      ? await predictSequence(cfg, job.init, path.resolve(path.dirname(job.modelFile), r.text.trim()))
      : (await predictClassification({ cfg, init: job.init, texts: [r.text] })).predictions[0];
    const probabilities = Object.entries(p.probabilities).map(([label, v]) => ({ label, p: v })).sort((a, b) => b.p - a.p);
    return { kind: 'classify', label: p.label, probabilities };
  }
  if (cfg.task !== 'forecast') throw new UserError(`${cfg.name} is a ${cfg.task} model, not a forecaster`, { file: job.modelFile, key: 'task' });
  const frame = await frameOf(cfg);
  if (!(r.at >= 1 && r.at <= frame.rows)) throw new UserError(`the window must end inside the series (1…${frame.rows}), not at ${r.at}`, { key: 'at' });
  // predictForecast forecasts after the last row: hand it the rows up to the window's end
  const { predictForecast } = await import('../tasks/forecast');
  const f = await predictForecast({ cfg, init: job.init, input: headFrame(frame, r.at), steps: r.steps });
  return { kind: 'forecast', forecast: f.forecast };
}

function errorOf(e: unknown): FromInference {
  if (isUserError(e)) return { type: 'error', kind: 'user', message: e instanceof UserErrors ? e.format() : (e as Error).message };
  return { type: 'error', kind: 'runtime', message: (e as Error)?.message ?? String(e) };
}

if (process.env.GATELAB_INFER === '1' && process.send) {
  process.once('message', (m: ToInference) => {
    void (async () => {
      let reply: FromInference;
      try {
        reply = { type: 'result', result: await runInference(m.job) };
      } catch (e) {
        reply = errorOf(e);
      }
      process.send!(reply, undefined, {}, () => process.disconnect?.());
    })();
  });
}
