// Device auto-calibration (`device: auto`). CUDA is not always faster: a small LSTM's training step
// is a chain of tiny kernels whose launch costs exceed the CPU's whole step. When the CUDA provider
// loads, `auto` times the model's own training program on both providers (one warm-up run, then the
// median of a few runs, on inputs of the real shapes) and keeps the faster, saying why in the log and
// the run record. Sessions are pure functions of their feeds, so the timing runs change nothing.

import * as ort from 'onnxruntime-node';
import { createSession, Device, DeviceChoice, SessionOptions } from './device';

export interface Calibration {
  /** median ms per session.run, by device */
  ms: Record<Device, number>;
  chosen: Device;
  /** one line for the log and the run record */
  reason: string;
}

/**
 * Zero-filled tensors for the inputs `given` lacks, from the session's own input metadata; symbolic
 * dimensions (the K of a K-step program) take their size from `dims`, else 1.
 */
export function syntheticFeeds(session: Pick<ort.InferenceSession, 'inputMetadata'>, given: Record<string, ort.Tensor> = {}, dims: Record<string, number> = {}): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = { ...given };
  for (const m of session.inputMetadata) {
    if (feeds[m.name] || !m.isTensor) continue;
    const shape = m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : typeof d === 'string' ? (dims[d] ?? 1) : 1));
    const n = shape.reduce((a, b) => a * b, 1);
    switch (m.type) {
      case 'float32':
        feeds[m.name] = new ort.Tensor('float32', new Float32Array(n), shape);
        break;
      case 'float64':
        feeds[m.name] = new ort.Tensor('float64', new Float64Array(n), shape);
        break;
      case 'int64':
        feeds[m.name] = new ort.Tensor('int64', new BigInt64Array(n), shape);
        break;
      case 'int32':
        feeds[m.name] = new ort.Tensor('int32', new Int32Array(n), shape);
        break;
      case 'bool':
        feeds[m.name] = new ort.Tensor('bool', new Uint8Array(n), shape);
        break;
      default:
        throw new Error(`calibration: input ${m.name} has type ${m.type}`);
    }
  }
  return feeds;
}

/** Median wall time of `runs` calls after one warm-up call. */
export async function timeRuns(session: Pick<ort.InferenceSession, 'run'>, feeds: Record<string, ort.Tensor>, runs = 3): Promise<number> {
  await session.run(feeds);
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await session.run(feeds);
    ts.push(performance.now() - t);
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)];
}

/** The decision, given the two timings: CUDA only when it is faster. */
export function decide(ms: Record<Device, number>, stepsPerRun = 1): Calibration {
  const per = (d: Device) => `${(ms[d] / stepsPerRun).toFixed(ms[d] / stepsPerRun < 10 ? 2 : 1)} ms`;
  const chosen: Device = ms.cuda < ms.cpu ? 'cuda' : 'cpu';
  const faster = chosen === 'cuda' ? `CUDA is ${(ms.cpu / ms.cuda).toFixed(1)}× faster` : `the CPU is ${(ms.cuda / ms.cpu).toFixed(1)}× faster for this model`;
  return { ms, chosen, reason: `calibration: a training step takes ${per('cpu')} on the CPU and ${per('cuda')} with CUDA; ${faster}` };
}

export interface CalibratedSession {
  session: ort.InferenceSession;
  choice: DeviceChoice;
  calibration?: Calibration;
}

/**
 * For `device: auto` once CUDA has been chosen: creates a CPU session of the same program, times
 * both and returns the faster (the other is released). `feeds` may give the real inputs; the rest
 * are zeros of the right shapes. Any failure while timing CUDA keeps the CPU, with the reason.
 */
export async function calibrate(
  model: Uint8Array,
  cuda: ort.InferenceSession,
  /** stepsPerRun: the K of a K-step program (its symbolic dimension K, and the divisor for ms per step) */
  o: SessionOptions & { feeds?: Record<string, ort.Tensor>; runs?: number; stepsPerRun?: number },
  create: (model: Uint8Array, choice: DeviceChoice, o: SessionOptions) => Promise<{ session: ort.InferenceSession }> = createSession,
): Promise<CalibratedSession> {
  const cpu = (await create(model, { device: 'cpu' }, o)).session;
  const feeds = syntheticFeeds(cpu, o.feeds, { K: o.stepsPerRun ?? 1 });
  const ms = { cpu: await timeRuns(cpu, feeds, o.runs), cuda: Number.POSITIVE_INFINITY } as Record<Device, number>;
  try {
    ms.cuda = await timeRuns(cuda, feeds, o.runs);
  } catch (e) {
    await cuda.release().catch(() => undefined);
    return { session: cpu, choice: { device: 'cpu', reason: `calibration: the training program failed on CUDA (${(e as Error).message})` } };
  }
  const c = decide(ms, o.stepsPerRun);
  if (c.chosen === 'cpu') {
    await cuda.release().catch(() => undefined);
    return { session: cpu, choice: { device: 'cpu', reason: c.reason }, calibration: c };
  }
  await cpu.release().catch(() => undefined);
  return { session: cuda, choice: { device: 'cuda' }, calibration: c };
}
