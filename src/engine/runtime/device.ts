// Execution providers. `auto` tries CUDA and falls back to the CPU with the reason recorded;
// `cuda` fails with the reason; `cpu` uses the CPU. The CUDA provider is a separate download
// (libonnxruntime_providers_cuda.so + libonnxruntime_providers_shared.so next to onnxruntime-node's
// own libonnxruntime.so); without it a CUDA session cannot be created.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { UserError } from '../errors';

export type DeviceRequest = 'auto' | 'cpu' | 'cuda';
export type Device = 'cpu' | 'cuda';

export interface SessionOptions {
  threads?: number;
}

/** onnxruntime-node's folder of native binaries for this platform. */
export function ortBinDir(): string {
  const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
  return path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
}

export const PROVIDER_FILES = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];

/** The onnxruntime version of the installed onnxruntime-node (the provider must match it). */
export function ortVersion(): string {
  try {
    return JSON.parse(fs.readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

/**
 * Whether a provider library was built for this onnxruntime version: the CUDA provider embeds its
 * version string (e.g. "1.29.0"); a file without the expected one is reported, not loaded.
 */
export function providerVersionMatches(file: string, version = ortVersion()): boolean {
  try {
    const buf = fs.readFileSync(file);
    return buf.includes(Buffer.from(version));
  } catch {
    return false;
  }
}

/**
 * Makes the CUDA provider of a folder named by GATELAB_CUDA_PROVIDER_DIR (or the
 * `gatelab.cudaProviderPath` setting, passed as that variable) visible to onnxruntime, which loads
 * providers from the folder of its own library: the two files are linked there when missing.
 * Returns a problem to report, or undefined.
 */
export function linkProviderDir(dir = process.env.GATELAB_CUDA_PROVIDER_DIR): string | undefined {
  if (!dir || process.platform !== 'linux') return undefined;
  const bin = ortBinDir();
  const missing = PROVIDER_FILES.filter((f) => !fs.existsSync(path.join(dir, f)));
  if (missing.length) return `GATELAB_CUDA_PROVIDER_DIR=${dir} lacks ${missing.join(', ')}`;
  if (!providerVersionMatches(path.join(dir, 'libonnxruntime_providers_cuda.so')))
    return `the CUDA provider in ${dir} was not built for ONNX Runtime ${ortVersion()} (its version string is missing)`;
  for (const f of PROVIDER_FILES) {
    const to = path.join(bin, f);
    if (fs.existsSync(to)) continue;
    try {
      fs.symlinkSync(path.join(dir, f), to);
    } catch (e) {
      return `cannot link ${f} into ${bin} (${(e as NodeJS.ErrnoException).code}); copy the files from ${dir} there`;
    }
  }
  return undefined;
}

/** Why CUDA cannot be used here, or undefined when its provider files are present. */
export function cudaUnavailableReason(): string | undefined {
  if (process.platform !== 'linux' && process.platform !== 'win32') return `no CUDA provider for ${process.platform}`;
  const linkProblem = linkProviderDir();
  if (linkProblem) return linkProblem;
  const dir = ortBinDir();
  const ext = process.platform === 'win32' ? '.dll' : '.so';
  const prefix = process.platform === 'win32' ? '' : 'lib';
  const missing = ['onnxruntime_providers_shared', 'onnxruntime_providers_cuda']
    .map((n) => `${prefix}${n}${ext}`)
    .filter((f) => !fs.existsSync(path.join(dir, f)));
  if (missing.length) return `the CUDA execution provider is not installed (${missing.join(', ')} missing in ${dir}); run \`gatelab doctor\``;
  return undefined;
}

function options(device: Device, o: SessionOptions): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: device === 'cuda' ? [{ name: 'cuda' }] : ['cpu'],
    ...(o.threads && o.threads > 0 ? { intraOpNumThreads: o.threads } : {}),
    interOpNumThreads: 1,
    enableCpuMemArena: process.env.GATELAB_CPU_ARENA === '1',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  };
}

export interface DeviceChoice {
  device: Device;
  /** why auto did not pick CUDA */
  reason?: string;
}

/** Resolves a request once per process (auto: CUDA when its provider loads, else CPU). */
export function chooseDevice(req: DeviceRequest): DeviceChoice {
  if (req === 'cpu') return { device: 'cpu' };
  const why = cudaUnavailableReason();
  if (req === 'cuda') {
    if (why) throw new UserError(`device cuda requested but ${why}`, { key: 'train.device' }, 'use device: auto or cpu, or install the CUDA provider');
    return { device: 'cuda' };
  }
  return why ? { device: 'cpu', reason: why } : { device: 'cuda' };
}

/**
 * Creates a session on the chosen device. With `fallback` (device auto), a CUDA session that fails
 * to be created is retried on the CPU and the reason returned.
 */
export async function createSession(
  model: Uint8Array,
  choice: DeviceChoice,
  o: SessionOptions & { fallback?: boolean } = {},
): Promise<{ session: ort.InferenceSession; choice: DeviceChoice }> {
  try {
    return { session: await ort.InferenceSession.create(model, options(choice.device, o)), choice };
  } catch (e) {
    if (choice.device === 'cuda' && o.fallback) {
      const reason = `CUDA session failed: ${(e as Error).message}`;
      return { session: await ort.InferenceSession.create(model, options('cpu', o)), choice: { device: 'cpu', reason } };
    }
    throw e;
  }
}
