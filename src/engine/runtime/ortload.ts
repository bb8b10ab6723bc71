// How a process gets onnxruntime with the CUDA provider, without writing into onnxruntime-node's
// (or the extension's) own files. onnxruntime loads provider libraries only from the folder of its
// own libonnxruntime.so, so a process that may use CUDA loads onnxruntime-node's binding from a
// private runtime folder under the CUDA folder: links to onnxruntime-node's binaries beside links
// to the provider. The loader finds the NVIDIA libraries through LD_LIBRARY_PATH (PATH on Windows),
// which it reads only when a process starts: parents start trainer, inference and probe processes
// with `ortEnv()`, and CLI commands that run onnxruntime in their own process re-execute themselves
// with it (cli/main.ts).
//
// This module must not import onnxruntime-node: `preloadOrt()` runs before anything else does.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cudaDir, installedLibDir } from '../cuda/state';

/** onnxruntime-node's folder of native binaries for this platform. */
export function ortBinDir(): string {
  const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
  return path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
}

/** The onnxruntime version of the installed onnxruntime-node (the provider must match it). */
export function ortVersion(): string {
  try {
    return JSON.parse(fs.readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

const versionSeen = new Map<string, boolean>();

/**
 * Whether a provider library was built for this onnxruntime version: the CUDA provider embeds its
 * version string (e.g. "1.29.0"); a file without the expected one is reported, not loaded. Reads the
 * file in chunks (it is some 200 MB), once per file and version in a process.
 */
export function providerVersionMatches(file: string, version = ortVersion()): boolean {
  let key: string;
  try {
    const st = fs.statSync(file);
    key = `${fs.realpathSync(file)}:${st.size}:${st.mtimeMs}:${version}`;
  } catch {
    return false;
  }
  const seen = versionSeen.get(key);
  if (seen !== undefined) return seen;
  const needle = Buffer.from(version);
  const chunk = Buffer.alloc(1 << 22);
  const fd = fs.openSync(file, 'r');
  let found = false;
  try {
    let carry = Buffer.alloc(0);
    for (let pos = 0; ; ) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, pos);
      if (n <= 0) break;
      const buf = Buffer.concat([carry, chunk.subarray(0, n)]);
      if (buf.includes(needle)) {
        found = true;
        break;
      }
      carry = buf.subarray(Math.max(0, buf.length - needle.length + 1));
      pos += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  versionSeen.set(key, found);
  return found;
}

/** The CUDA provider's two libraries on this platform: [shared, cuda]. */
export function providerFiles(platform = process.platform): string[] {
  return platform === 'win32'
    ? ['onnxruntime_providers_shared.dll', 'onnxruntime_providers_cuda.dll']
    : ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];
}

export const BINDING = 'onnxruntime_binding.node';

export interface ProviderLocation {
  dir: string;
  /** who named the folder */
  source: 'GATELAB_CUDA_PROVIDER_DIR' | 'gatelab cuda install' | 'onnxruntime-node';
}

const hasProvider = (dir: string) => providerFiles().every((f) => fs.existsSync(path.join(dir, f)));

/**
 * The folder whose CUDA provider this process uses: GATELAB_CUDA_PROVIDER_DIR (the
 * `gatelab.cudaProviderPath` setting) when set, else the set `gatelab cuda install` committed, else
 * onnxruntime-node's own folder when someone copied the provider there.
 */
export function providerLocation(env: NodeJS.ProcessEnv = process.env): ProviderLocation | undefined {
  if (env.GATELAB_CUDA_PROVIDER_DIR) return { dir: path.resolve(env.GATELAB_CUDA_PROVIDER_DIR), source: 'GATELAB_CUDA_PROVIDER_DIR' };
  const lib = installedLibDir(cudaDir(env));
  if (lib && hasProvider(lib)) return { dir: lib, source: 'gatelab cuda install' };
  try {
    const bin = ortBinDir();
    if (hasProvider(bin)) return { dir: bin, source: 'onnxruntime-node' };
  } catch {
    // onnxruntime-node not resolvable
  }
  return undefined;
}

/** Folders the loader must search for the provider's NVIDIA libraries, first first. */
export function loaderDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs: string[] = [];
  const p = providerLocation(env);
  if (p && p.source !== 'onnxruntime-node') dirs.push(p.dir);
  const lib = installedLibDir(cudaDir(env));
  if (lib && !dirs.includes(lib)) dirs.push(lib);
  return dirs;
}

const LOADER_VAR = process.platform === 'win32' ? 'PATH' : 'LD_LIBRARY_PATH';
const SEP = process.platform === 'win32' ? ';' : ':';

/** `base` with the CUDA folders in front of the loader path: the environment of a child process. */
export function ortEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const dirs = loaderDirs(base);
  if (dirs.length === 0 || process.platform === 'darwin') return base;
  const key = Object.keys(base).find((k) => k.toUpperCase() === LOADER_VAR) ?? LOADER_VAR;
  const have = (base[key] ?? '').split(SEP).filter(Boolean);
  return { ...base, [key]: [...dirs, ...have.filter((d) => !dirs.includes(d))].join(SEP) };
}

/** Whether this process was started with the loader path `ortEnv` gives (it cannot change now). */
export function loaderPathSet(env: NodeJS.ProcessEnv = process.env): boolean {
  const key = Object.keys(env).find((k) => k.toUpperCase() === LOADER_VAR) ?? LOADER_VAR;
  const have = (env[key] ?? '').split(SEP);
  return loaderDirs(env).every((d) => have.includes(d));
}

export interface OrtLoad {
  provider?: ProviderLocation;
  /** the private runtime folder the binding was loaded from */
  runtime?: string;
  /** why the provider could not be put beside onnxruntime */
  problem?: string;
}

let state: OrtLoad | undefined;

/**
 * The private runtime folder for onnxruntime-node's binaries in `bin` with the provider of
 * `providerDir`: created once (in a temporary folder, then renamed, so several processes may race),
 * reused while its links hold.
 */
export function runtimeFolder(bin: string, providerDir: string, root = cudaDir()): string {
  const key = createHash('sha256').update(`${fs.realpathSync(bin)}\0${path.resolve(providerDir)}`).digest('hex').slice(0, 16);
  const dir = path.join(root, 'runtime', key);
  const entries = [
    ...fs.readdirSync(bin).filter((f) => !providerFiles().includes(f)).map((f) => [f, path.join(bin, f)]),
    ...providerFiles().map((f) => [f, path.join(providerDir, f)]),
  ];
  const intact = () => entries.every(([f]) => fs.existsSync(path.join(dir, f)));
  if (fs.existsSync(dir) && intact()) return dir;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  fs.mkdirSync(tmp);
  try {
    for (const [f, from] of entries) {
      if (process.platform === 'win32') {
        // links need privileges on Windows: hard links where the volume allows, else copies
        try {
          fs.linkSync(from, path.join(tmp, f));
        } catch {
          fs.copyFileSync(from, path.join(tmp, f));
        }
      } else fs.symlinkSync(from, path.join(tmp, f));
    }
    if (fs.existsSync(dir)) fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    // another process made it meanwhile
    if (fs.existsSync(dir) && intact()) return dir;
    throw e;
  }
  return dir;
}

/**
 * Loads onnxruntime-node's binding from the private runtime folder when a CUDA provider outside
 * onnxruntime-node's folder is configured, so that onnxruntime finds the provider beside itself.
 * Must run before the first `require('onnxruntime-node')`; idempotent. Problems are kept for
 * `cudaUnavailableReason`, never thrown: the CPU still works.
 */
export function preloadOrt(env: NodeJS.ProcessEnv = process.env): OrtLoad {
  if (state) return state;
  state = {};
  if (process.platform !== 'linux' && process.platform !== 'win32') return state;
  const provider = providerLocation(env);
  state.provider = provider;
  if (!provider || provider.source === 'onnxruntime-node') return state;
  if (!hasProvider(provider.dir)) {
    state.problem = `${provider.source === 'GATELAB_CUDA_PROVIDER_DIR' ? `GATELAB_CUDA_PROVIDER_DIR=${provider.dir}` : provider.dir} lacks ${providerFiles()
      .filter((f) => !fs.existsSync(path.join(provider.dir, f)))
      .join(', ')}`;
    return state;
  }
  try {
    const bin = ortBinDir();
    const runtime = runtimeFolder(bin, provider.dir, cudaDir(env));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const Module = require('node:module') as { new (id: string): NodeModule & { filename: string; loaded: boolean }; _cache: Record<string, NodeModule> };
    const real = fs.realpathSync(path.join(bin, BINDING));
    const m = new Module(real);
    m.filename = real;
    process.dlopen(m, path.join(runtime, BINDING));
    m.loaded = true;
    Module._cache[real] = m;
    state.runtime = runtime;
  } catch (e) {
    state.problem = `cannot prepare onnxruntime with the CUDA provider of ${provider.dir}: ${(e as Error).message.split('\n')[0]}`;
  }
  return state;
}

/** What `preloadOrt` did in this process (undefined: it did not run). */
export function ortLoad(): OrtLoad | undefined {
  return state;
}
