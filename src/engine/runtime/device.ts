// Execution providers. `auto` tries CUDA and falls back to the CPU with the reason recorded;
// `cuda` fails with the reason; `cpu` uses the CPU. The CUDA provider is a separate download
// (`gatelab cuda install`, runtime/ortload.ts puts it beside onnxruntime); before onnxruntime tries
// to load it, the provider's library chain is followed here so that a missing NVIDIA library is
// named in one line instead of onnxruntime's "Failed to load shared library".

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { UserError } from '../errors';
import { resolveChain, loaderPathOf, Resolution } from '../cuda/libs';
import { buildForCuda, platformKey, platformProblem } from '../cuda/manifest';
import { readDynamic } from '../cuda/elf';
import { cudaDir, installedLibDir } from '../cuda/state';
import { loaderPathSet, ortLoad, ortVersion, providerFiles, providerLocation, providerVersionMatches, ProviderLocation } from './ortload';

export { ortBinDir, ortVersion, providerVersionMatches } from './ortload';

export type DeviceRequest = 'auto' | 'cpu' | 'cuda';
export type Device = 'cpu' | 'cuda';

export interface SessionOptions {
  threads?: number;
}

export interface CudaCheck {
  /** why CUDA cannot be used here, in one line; undefined when nothing stands in the way */
  reason?: string;
  provider?: ProviderLocation;
  /** the provider file onnxruntime will load */
  providerFile?: string;
  /** the provider's library chain, with the libraries it opens at run time */
  chain?: Resolution;
  /** optional run-time libraries the loader will not find */
  optionalMissing?: string[];
  /** CUDA major the provider was built for (from its libcudart) */
  cuda?: number;
  /** whether the fix is `gatelab cuda install` (false: the NVIDIA driver is missing, or the platform has none) */
  installable: boolean;
}

/** The CUDA major a provider library was built for, read from the libcudart it needs. */
export function providerCudaMajor(file: string): number | undefined {
  const lib = readDynamic(file)?.needed.find((n) => n.startsWith('libcudart.so.'));
  return lib ? Number(lib.slice('libcudart.so.'.length).split('.')[0]) : undefined;
}

const INSTALL_HINT = 'run `gatelab cuda install` (in VS Code: Gatelab: Set Up CUDA)';

/** Everything that stands between this process and a CUDA session, without creating one. */
export function cudaCheck(env: NodeJS.ProcessEnv = process.env): CudaCheck {
  const platform = platformProblem(platformKey());
  if (platform && process.platform !== 'linux') return { reason: platform.replace(/^no CUDA package set of ONNX Runtime \S+ for \S+: /, ''), installable: false };
  const load = ortLoad();
  const provider = load?.provider ?? providerLocation(env);
  if (!provider) return { reason: `the CUDA execution provider is not installed; ${INSTALL_HINT}`, installable: !platform };
  if (load?.problem) return { reason: load.problem, provider, installable: !platform };
  const missingFiles = providerFiles().filter((f) => !fs.existsSync(path.join(provider.dir, f)));
  if (missingFiles.length) return { reason: `${provider.dir} lacks ${missingFiles.join(', ')}`, provider, installable: !platform };
  if (provider.source !== 'onnxruntime-node' && !load?.runtime)
    return { reason: 'this process loaded onnxruntime before the CUDA provider could be put beside it (start it through gatelab, or set the loader path before it starts)', provider, installable: false };
  const dir = load?.runtime ?? provider.dir;
  const providerFile = path.join(dir, providerFiles()[1]);
  if (!providerVersionMatches(providerFile))
    return { reason: `the CUDA provider in ${provider.dir} was not built for ONNX Runtime ${ortVersion()} (its version string is missing)`, provider, providerFile, installable: !platform };
  if (process.platform !== 'linux') return { provider, providerFile, installable: false };
  const cuda = providerCudaMajor(providerFile);
  const build = cuda ? buildForCuda(cuda) : undefined;
  const lp = loaderPathOf(env);
  // one walk of the chain: the libraries opened at run time, the optional ones reported apart
  const optional = build?.optional ?? [];
  const walked = resolveChain(providerFile, lp, [...(build?.dlopened ?? []), ...optional]);
  const chain = { found: walked.found, missing: walked.missing.filter((m) => !optional.includes(m.lib)) };
  const optionalMissing = walked.missing.filter((m) => optional.includes(m.lib)).map((m) => m.lib);
  const out: CudaCheck = { provider, providerFile, chain, optionalMissing, cuda, installable: !platform };
  const driver = chain.missing.find((m) => m.lib.startsWith('libcuda.so'));
  const others = chain.missing.filter((m) => m !== driver).map((m) => m.lib);
  const started = installedLibDir(cudaDir(env)) && !loaderPathSet(env) ? '; this process was started without the CUDA folder on LD_LIBRARY_PATH' : '';
  if (driver)
    return { ...out, reason: `no NVIDIA driver here (${driver.lib} not found): install the NVIDIA driver to use CUDA${others.length ? `; the provider also lacks ${others.join(', ')} (\`gatelab cuda install\` gets them)` : ''}${started}`, installable: false };
  if (chain.missing.length) {
    const names = chain.missing.map((m) => m.lib);
    return { ...out, reason: `the CUDA provider cannot load: ${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} not on the loader path (needed by ${chain.missing[0].neededBy})${started}; ${INSTALL_HINT}` };
  }
  return out;
}

/** Why CUDA cannot be used here, or undefined when its provider and libraries are found. */
export function cudaUnavailableReason(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return cudaCheck(env).reason;
}

/**
 * A CUDA session failure in one line: the library onnxruntime failed to load (from its error text,
 * else from the chain the loader would follow), never its multi-line log.
 */
export function cudaFailure(e: unknown, env: NodeJS.ProcessEnv = process.env): string {
  const msg = (e as Error)?.message ?? String(e);
  const lib = failedLibrary(msg);
  if (lib) return `the CUDA provider cannot load: ${lib} is not on the loader path; ${INSTALL_HINT}`;
  if (/Failed to load shared library|providers_cuda|LoadLibrary/i.test(msg)) return cudaUnavailableReason(env) ?? `the CUDA provider failed to load (${msg.split('\n')[0]})`;
  return `CUDA session failed: ${msg.split('\n')[0]}`;
}

/** What onnxruntime's provider-load error says after "with error:" (e.g. "… invalid ELF header"). */
export function loadError(text: string): string | undefined {
  return /Failed to load library \S+ with error: ([^\n\x1b]+)/.exec(text)?.[1]?.trim();
}

/** The library named in onnxruntime's load error ("… with error: libcublasLt.so.13: cannot open shared object file"). */
export function failedLibrary(text: string): string | undefined {
  return /with error: (?:\S*\/)?([^\s/:]+\.so[.\d]*): cannot open shared object file/.exec(text)?.[1] ?? /([\w.-]+\.dll)\b.*(?:not found|could not be found|error 126)/i.exec(text)?.[1];
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
    if (why) throw new UserError(`device cuda requested but ${why}`, { key: 'train.device' }, 'or use device: auto or cpu');
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
      const reason = cudaFailure(e);
      return { session: await ort.InferenceSession.create(model, options('cpu', o)), choice: { device: 'cpu', reason } };
    }
    if (choice.device === 'cuda') throw new UserError(cudaFailure(e), { key: 'train.device' }, 'or use device: auto or cpu');
    throw e;
  }
}
