// Trainer messages → dashboard messages (pure, shared by the dashboard panel and the browser tests
// that replay a recorded run).

import type { HostToDashboard, RunHeader, StepSeries } from '../shared/dashboard';
import type { FromWorker } from '../shared/protocol';

export function toDashboard(m: FromWorker, header: () => RunHeader, summary?: () => Record<string, unknown> | undefined): HostToDashboard | undefined {
  switch (m.type) {
    case 'started':
      return { type: 'run/didChangeStatus', run: header() };
    case 'progress': {
      const n = m.losses.length;
      const steps: StepSeries = {
        step: m.losses.map((_, i) => m.step - n + 1 + i),
        loss: m.losses,
        gradNorm: m.gradNorms,
        lr: m.losses.map(() => m.learningRate),
        time: m.losses.map(() => m.elapsedMs / 1000),
      };
      return { type: 'run/didStep', steps, tokensPerSecond: m.tokensPerSecond, epoch: m.epoch, remainingMs: m.remainingMs };
    }
    case 'epoch':
      return { type: 'run/didEpoch', row: { epoch: m.epoch, step: m.step, trainLoss: m.trainLoss, validLoss: m.validLoss, trainPerplexity: m.trainPerplexity, validPerplexity: m.validPerplexity, accuracy: m.accuracy, rmse: m.rmse, mae: m.mae, baselineRmse: m.baselineRmse } };
    case 'sample':
      return { type: 'run/didSample', step: m.step, text: m.text };
    case 'gates':
      return { type: 'gates/didSnapshot', gates: m };
    case 'done':
    case 'error':
      return { type: 'run/didChangeStatus', run: header(), summary: summary?.() };
    default:
      return undefined;
  }
}
