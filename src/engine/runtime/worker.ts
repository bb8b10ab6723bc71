// The trainer process: forked by the CLI or the extension host (runtime/client.ts), it receives one
// `train` message, streams protocol messages back over the IPC channel and exits. A `stop` message
// ends training after the K-step program that is running, with a checkpoint. Every failure becomes
// an `error` message (kind `user` for problems the user can fix, `runtime` otherwise).

import './preload';
import { isUserError, UserErrors } from '../errors';
import { runTraining, TrainingFailure } from '../train/loop';
import { gatesFromCheckpoint, throughFromCheckpoint } from '../train/oneshot';
import type { FromWorker, ToWorker, ErrorMessage } from '../../shared/protocol';

let stopRequested = false;
let probeText: string | undefined;

function send(m: FromWorker): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(m, undefined, {}, () => resolve());
  });
}

export function errorMessage(e: unknown): ErrorMessage {
  if (isUserError(e)) {
    return {
      type: 'error',
      kind: 'user',
      message: e instanceof UserErrors ? e.format() : e.message,
      where: e.where,
      hint: e.hint,
    };
  }
  if (e instanceof TrainingFailure) {
    return { type: 'error', kind: 'runtime', message: e.message, step: e.step, checkpoint: e.checkpoint };
  }
  const err = e as Error;
  return { type: 'error', kind: 'runtime', message: err?.message ?? String(e), stack: err?.stack };
}

async function handle(m: ToWorker): Promise<void> {
  if (m.type === 'stop') {
    stopRequested = true;
    return;
  }
  if (m.type === 'probe') {
    probeText = m.text;
    return;
  }
  if (m.type === 'gates' || m.type === 'through') {
    let code = 0;
    try {
      await send(m.type === 'gates' ? await gatesFromCheckpoint(m.job) : await throughFromCheckpoint(m.job));
    } catch (e) {
      const msg = errorMessage(e);
      code = msg.kind === 'user' ? 2 : 1;
      await send(msg);
    }
    process.exitCode = code;
    process.disconnect?.();
    return;
  }
  if (m.type === 'train') {
    let code = 0;
    try {
      const summary = await runTraining(m.job, {
        emit: (msg) => void send(msg),
        shouldStop: () => stopRequested,
        takeProbe: () => {
          const t = probeText;
          probeText = undefined;
          return t;
        },
      });
      await send({ type: 'done', summary });
    } catch (e) {
      const msg = errorMessage(e);
      code = msg.kind === 'user' ? 2 : 1;
      await send(msg);
    }
    process.exitCode = code;
    process.disconnect?.();
  }
}

if (require.main === module) {
  if (!process.send) {
    console.error('gatelab worker: must be started by the gatelab CLI or the extension (no IPC channel)');
    process.exit(2);
  }
  process.on('message', (m: ToWorker) => void handle(m));
  // Ctrl+C in a terminal signals the whole process group: the trainer stops only when its parent
  // asks (the CLI's first Ctrl+C sends a stop message, its second kills), so it ignores SIGINT
  process.on('SIGINT', () => undefined);
  // the parent went away: stop like a stop message would, so the run ends with a checkpoint
  process.on('disconnect', () => {
    stopRequested = true;
  });
}
