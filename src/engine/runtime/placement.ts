// Where the nodes of a program run. onnxruntime assigns each node to an execution provider and
// silently falls back to the CPU for nodes the chosen provider lacks a kernel for — each such node
// costs two copies across PCIe per run. This runs a program once with onnxruntime's profiler on and
// reads the trace: every node event names its provider (nodes inside Scan bodies included).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { Device } from './device';
import { syntheticFeeds } from './calibrate';

export interface Placement {
  device: Device;
  /** distinct nodes per provider (e.g. CUDAExecutionProvider: 212, CPUExecutionProvider: 3) */
  nodesByProvider: Record<string, number>;
  /** nodes that did not run on the provider of `device`: "OpType name" */
  elsewhere: string[];
  /** true when every node ran on the device's provider */
  allOnDevice: boolean;
}

export const PROVIDER_OF: Record<Device, string> = { cpu: 'CPUExecutionProvider', cuda: 'CUDAExecutionProvider' };

interface TraceEvent {
  cat?: string;
  name?: string;
  args?: { op_name?: string; provider?: string };
}

/** Reads an onnxruntime profiling trace (Chrome trace JSON) into a placement report. */
export function placementFromTrace(events: readonly TraceEvent[], device: Device): Placement {
  const byNode = new Map<string, { op: string; provider: string }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.args?.provider || !e.name) continue;
    // one node gives several events (fence_before, kernel_time, fence_after): key by node name
    const node = e.name.replace(/_(kernel_time|fence_before|fence_after)$/, '');
    byNode.set(node, { op: e.args.op_name ?? '?', provider: e.args.provider });
  }
  const nodesByProvider: Record<string, number> = {};
  const elsewhere: string[] = [];
  for (const [name, n] of byNode) {
    nodesByProvider[n.provider] = (nodesByProvider[n.provider] ?? 0) + 1;
    if (n.provider !== PROVIDER_OF[device]) elsewhere.push(`${n.op} ${name}`);
  }
  return { device, nodesByProvider, elsewhere: elsewhere.sort(), allOnDevice: elsewhere.length === 0 && byNode.size > 0 };
}

/**
 * Runs `model` once on `device` with profiling and reports where its nodes ran. Inputs not in
 * `feeds` are zeros of the program's shapes (symbolic dimensions from `dims`).
 */
export async function measurePlacement(
  model: Uint8Array,
  device: Device,
  o: { feeds?: Record<string, ort.Tensor>; dims?: Record<string, number>; threads?: number } = {},
): Promise<Placement> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-profile-'));
  const prefix = path.join(dir, 'trace');
  try {
    const session = await ort.InferenceSession.create(model, {
      executionProviders: device === 'cuda' ? [{ name: 'cuda' }] : ['cpu'],
      enableProfiling: true,
      profileFilePrefix: prefix,
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
      ...(o.threads ? { intraOpNumThreads: o.threads } : {}),
    });
    await session.run(syntheticFeeds(session, o.feeds, o.dims));
    session.endProfiling();
    await session.release();
    const file = fs.readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) throw new Error(`onnxruntime wrote no profiling trace in ${dir}`);
    return placementFromTrace(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as TraceEvent[], device);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
