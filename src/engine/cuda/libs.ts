// Where the dynamic loader will find a library, as glibc searches (RPATH, LD_LIBRARY_PATH, RUNPATH
// with $ORIGIN, the ldconfig cache, the default folders), and the NVIDIA driver's CUDA version.
// Used to name the exact library of the CUDA provider's chain that is missing before onnxruntime
// tries to load it, and to say whether an installed CUDA set fits the driver.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readDynamic } from './elf';

let cacheEntries: Map<string, string> | undefined;

/** soname → path from `ldconfig -p` (x86-64 entries), read once per process. */
export function ldconfigCache(): Map<string, string> {
  if (cacheEntries) return cacheEntries;
  cacheEntries = new Map();
  for (const exe of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    let out: string;
    try {
      out = execFileSync(exe, ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
    } catch {
      continue;
    }
    for (const line of out.split('\n')) {
      const m = /^\s*(\S+) \(([^)]*)\) => (\S+)$/.exec(line);
      if (!m || (process.arch === 'x64' && !m[2].includes('x86-64'))) continue;
      if (!cacheEntries.has(m[1])) cacheEntries.set(m[1], m[3]);
    }
    break;
  }
  return cacheEntries;
}

const DEFAULT_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib', '/usr/lib/wsl/lib'];

export interface LoaderPath {
  /** LD_LIBRARY_PATH as the process was started with (the loader read it then) */
  ldLibraryPath: string[];
}

export function loaderPathOf(env: NodeJS.ProcessEnv = process.env): LoaderPath {
  return { ldLibraryPath: (env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean) };
}

/** The file the loader opens for `lib` needed by the object at `from`, or undefined. */
export function findLibrary(lib: string, from: string | undefined, lp: LoaderPath): string | undefined {
  if (lib.includes('/')) return fs.existsSync(lib) ? lib : undefined;
  const info = from ? readDynamic(from) : undefined;
  const origin = from ? path.dirname(from) : '';
  const expand = (d: string) => d.replace(/\$\{?ORIGIN\}?/g, origin);
  const dirs = [...lp.ldLibraryPath, ...(info?.runpath ?? []).map(expand)];
  for (const d of dirs) {
    const f = path.join(d, lib);
    if (fs.existsSync(f)) return f;
  }
  const cached = ldconfigCache().get(lib);
  if (cached && fs.existsSync(cached)) return cached;
  for (const d of DEFAULT_DIRS) {
    const f = path.join(d, lib);
    if (fs.existsSync(f)) return f;
  }
  return undefined;
}

/** The C and C++ runtime libraries every program links: nothing of the CUDA set, not worth following or listing. */
export function isSystemLibrary(lib: string): boolean {
  return /^(lib(c|m|dl|rt|pthread|stdc\+\+|gcc_s|z)\.so|ld-linux)/.test(lib);
}

export interface Resolution {
  /** library → where it was found */
  found: Record<string, string>;
  /** libraries the loader will not find, each with the library that needs it */
  missing: { lib: string; neededBy: string }[];
}

/**
 * Follows the DT_NEEDED chain of `file` (and `extra` libraries opened at run time with dlopen, such
 * as cuDNN), reporting what the loader finds and what it does not.
 */
export function resolveChain(file: string, lp: LoaderPath = loaderPathOf(), extra: string[] = []): Resolution {
  const res: Resolution = { found: {}, missing: [] };
  const seen = new Set<string>();
  const queue: { lib: string; from: string | undefined; by: string }[] = [];
  const push = (from: string) => {
    for (const lib of readDynamic(from)?.needed ?? []) queue.push({ lib, from, by: path.basename(from) });
  };
  push(file);
  for (const lib of extra) queue.push({ lib, from: file, by: `${path.basename(file)}, at run time` });
  while (queue.length) {
    const q = queue.shift()!;
    if (seen.has(q.lib)) continue;
    seen.add(q.lib);
    const at = findLibrary(q.lib, q.from, lp);
    if (!at) {
      res.missing.push({ lib: q.lib, neededBy: q.by });
      continue;
    }
    res.found[q.lib] = at;
    // system libraries need nothing the CUDA set provides: follow only the others
    if (!isSystemLibrary(q.lib)) push(at);
  }
  return res;
}

export interface DriverInfo {
  /** the kernel driver's version, e.g. 580.65.06 */
  driver?: string;
  /** the newest CUDA version the driver runs, e.g. 13.0 */
  cuda?: string;
  gpus: string[];
}

/** Minimum Linux driver of each CUDA release (NVIDIA's CUDA Toolkit release notes, table 3). */
const MIN_DRIVER: [string, string][] = [
  ['13.0', '580.65.06'],
  ['12.9', '575.51.03'],
  ['12.8', '570.26'],
  ['12.6', '560.28.03'],
  ['12.5', '555.42.02'],
  ['12.4', '550.54.14'],
  ['12.3', '545.23.06'],
  ['12.2', '535.54.03'],
  ['12.1', '530.30.02'],
  ['12.0', '525.60.13'],
  ['11.8', '520.61.05'],
];

function versionAtLeast(a: string, b: string): boolean {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0);
  }
  return true;
}

/** The newest CUDA a driver version runs (from the table above). */
export function cudaForDriver(driver: string): string | undefined {
  return MIN_DRIVER.find(([, min]) => versionAtLeast(driver, min))?.[0];
}

/** Whether a driver that runs CUDA `driverCuda` runs libraries built for CUDA major `major`. */
export function driverFits(driverCuda: string | undefined, major: number): boolean {
  return driverCuda !== undefined && Number(driverCuda.split('.')[0]) >= major;
}

/** Whether an NVIDIA driver is installed (a cheap check, without running nvidia-smi). */
export function hasNvidiaDriver(): boolean {
  if (process.platform === 'win32') return fs.existsSync(path.join(process.env.SystemRoot ?? 'C:\\Windows', 'System32', 'nvcuda.dll'));
  return fs.existsSync('/proc/driver/nvidia/version') || fs.existsSync('/usr/lib/wsl/lib/libcuda.so.1');
}

/** The NVIDIA driver here: nvidia-smi when it is on PATH, else /proc/driver/nvidia/version. */
export function driverInfo(): DriverInfo {
  const info: DriverInfo = { gpus: [] };
  try {
    const out = execFileSync('nvidia-smi', [], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 15_000 });
    info.driver = /Driver Version:\s*([\d.]+)/.exec(out)?.[1];
    info.cuda = /CUDA Version:\s*([\d.]+)/.exec(out)?.[1];
    const names = execFileSync('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 15_000 });
    info.gpus = names.split('\n').map((s) => s.trim()).filter(Boolean);
  } catch {
    // no nvidia-smi: the kernel module's version
  }
  if (!info.driver) {
    try {
      info.driver = /Kernel Module\s+(?:for \S+\s+)?([\d.]+)/.exec(fs.readFileSync('/proc/driver/nvidia/version', 'utf8'))?.[1];
    } catch {
      // no NVIDIA kernel driver
    }
  }
  if (info.driver && !info.cuda) info.cuda = cudaForDriver(info.driver);
  return info;
}
