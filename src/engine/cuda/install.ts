// `gatelab cuda install` and `gatelab cuda remove`. Install: the package set of a build (manifest.ts)
// less the NVIDIA packages whose libraries the system already has; each package from a local folder
// (`--from`) or its registry, verified against the pinned digest; only the libraries unpacked into a
// new set folder, which `installed.json` (written atomically, last) then names. Until that write
// nothing is installed: a failure, a cancel or an offline machine leaves the previous state, with
// partial downloads kept for the next try to resume.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors';
import { processStartTime, sameProcess, writeFileAtomic } from '../util/fsx';
import { ortVersion, providerFiles, providerVersionMatches } from '../runtime/ortload';
import { CancelledInstall, NetworkError, download, Indexes, indexesFromEnv, locate, Located, Progress, verify } from './fetch';
import { findLibrary, loaderPathOf } from './libs';
import { activeManifest, Build, buildOf, Manifest, plan, PlannedPackage, platformKey, PackageSpec } from './manifest';
import { cudaDir, Installed, INSTALLED_FILE, InstalledPackage, readInstalled } from './state';
import { unpack } from './unpack';

export interface InstallOptions {
  /** the CUDA folder (default: GATELAB_CUDA_DIR or the per-user folder) */
  dir?: string;
  /** `12`, `13` or a build id; default: the platform's default (the official package) */
  build?: string;
  /** local package files, or folders holding them by their file names */
  from?: string[];
  indexes?: Indexes;
  manifest?: Manifest;
  platform?: string;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** where the loader finds a library on this system outside the CUDA folder (default: its real search) */
  systemHas?: (lib: string) => string | undefined;
  /** reinstall even when the same build is installed */
  force?: boolean;
  /** only the provider: the NVIDIA libraries come from the system (doctor names those it lacks) */
  providerOnly?: boolean;
}

/** Where the system's loader finds `lib`, not counting Gatelab's own CUDA folder. */
export function systemLibrary(dir: string, env: NodeJS.ProcessEnv = process.env): (lib: string) => string | undefined {
  const root = path.resolve(dir);
  const inside = (p: string) => path.resolve(p) === root || path.resolve(p).startsWith(root + path.sep);
  const lp = loaderPathOf(env);
  lp.ldLibraryPath = lp.ldLibraryPath.filter((d) => !inside(d));
  return (lib) => {
    const f = findLibrary(lib, undefined, lp);
    return f && !inside(f) ? f : undefined;
  };
}

export interface Plan {
  dir: string;
  build: Build;
  packages: PlannedPackage[];
}

export function planInstall(o: InstallOptions = {}): Plan {
  const dir = path.resolve(o.dir ?? cudaDir());
  const build = buildOf(o.build, o.platform ?? platformKey(), o.manifest ?? activeManifest());
  return { dir, build, packages: plan(build, o.systemHas ?? systemLibrary(dir)) };
}

/** A package file in `from` (a file of that name, or a folder holding it). */
function localFile(spec: PackageSpec, from: string[] = []): string | undefined {
  for (const f of from) {
    const st = fs.statSync(f, { throwIfNoEntry: false });
    if (!st) throw new UserError(`no such file or folder: ${f}`, { key: '--from' });
    if (st.isDirectory() && fs.existsSync(path.join(f, spec.file))) return path.join(f, spec.file);
    if (st.isFile() && path.basename(f) === spec.file) return f;
  }
  return undefined;
}

export interface InstallResult {
  installed: Installed;
  dir: string;
  /** bytes fetched from the network in this run */
  downloaded: number;
  alreadyInstalled?: boolean;
}

function setFolder(build: Build, ort: string): string {
  return `${build.id}-${ort}-${Date.now().toString(36)}`;
}

/**
 * Holds `dir/install.lock` while `fn` runs: a second install into the same folder (another window,
 * a terminal) is refused with the pid that holds it; a lock whose process is gone is taken over.
 */
async function locked<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  fs.mkdirSync(dir, { recursive: true });
  const lock = path.join(dir, 'install.lock');
  const me = JSON.stringify({ pid: process.pid, started: processStartTime(process.pid) });
  for (;;) {
    try {
      fs.writeFileSync(lock, me, { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let held: { pid?: number; started?: string } = {};
      try {
        held = JSON.parse(fs.readFileSync(lock, 'utf8'));
      } catch {
        // half-written by a process that died: stale
      }
      if (held.pid && sameProcess(held.pid, held.started))
        throw new UserError(`another CUDA install (process ${held.pid}) is installing into ${dir}`, { key: 'cuda install' }, 'wait for it to finish, or stop it');
      fs.rmSync(lock, { force: true });
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

export async function installCuda(o: InstallOptions = {}): Promise<InstallResult> {
  const dir = path.resolve(o.dir ?? cudaDir());
  return locked(dir, () => install({ ...o, dir }));
}

async function install(o: InstallOptions): Promise<InstallResult> {
  const manifest = o.manifest ?? activeManifest();
  if (manifest.onnxruntime !== ortVersion() && ortVersion() !== 'unknown')
    throw new UserError(`this manifest is for ONNX Runtime ${manifest.onnxruntime}, but onnxruntime-node is ${ortVersion()}`, { key: 'cuda install' });
  const p = planInstall(o);
  const { dir, build } = p;
  const before = readInstalled(dir);
  if (!o.force && before && before.build === build.id && before.onnxruntime === manifest.onnxruntime && fs.existsSync(path.join(dir, before.set)))
    return { installed: before, dir, downloaded: 0, alreadyInstalled: true };
  const indexes = o.indexes ?? indexesFromEnv();
  const downloads = path.join(dir, 'downloads');
  fs.mkdirSync(downloads, { recursive: true });
  const cleanup = () => {
    if (fs.existsSync(downloads) && fs.readdirSync(downloads).length === 0) fs.rmdirSync(downloads);
  };
  const todo = p.packages.filter((x) => !x.system && (x.role === 'provider' || !o.providerOnly));
  // every package's source first: an offline machine fails here, before any download starts
  const sources = new Map<PackageSpec, { local?: string; located?: Located }>();
  const files = new Map<PackageSpec, { file: string; from: string }>();
  let downloaded = 0;
  try {
    for (const { spec } of todo) {
      if (o.signal?.aborted) throw new CancelledInstall();
      const local = localFile(spec, o.from) ?? (fs.existsSync(path.join(downloads, spec.file)) ? path.join(downloads, spec.file) : undefined);
      if (local) sources.set(spec, { local });
      else {
        o.onProgress?.({ phase: 'metadata', package: spec.name });
        sources.set(spec, { located: await locate(spec, indexes, o.signal) });
      }
    }
    for (const { spec } of todo) {
      const src = sources.get(spec)!;
      if (src.local) {
        o.onProgress?.({ phase: 'verify', package: spec.name });
        if (!(await verify(src.local, spec, o.signal))) {
          if (src.local.startsWith(downloads)) fs.rmSync(src.local, { force: true });
          throw new UserError(`${src.local} does not match the pinned ${spec.digest.algorithm.toUpperCase()} digest of ${spec.name} ${spec.version}`, { key: '--from' }, 'use the file the registry publishes (see `gatelab cuda install --dry-run`)');
        }
        files.set(spec, { file: src.local, from: src.local.startsWith(downloads) ? spec.url : src.local });
        continue;
      }
      const dest = path.join(downloads, spec.file);
      const part = `${dest}.part`;
      const had = fs.existsSync(part) ? fs.statSync(part).size : 0;
      // NuGet's SHA-512 beside a pinned SHA-256: the bytes must match both
      const also = src.located!.digest.algorithm !== spec.digest.algorithm ? [src.located!.digest] : [];
      await download(src.located!.url, dest, spec, { signal: o.signal, onProgress: o.onProgress, also });
      downloaded += spec.size - had;
      files.set(spec, { file: dest, from: src.located!.url });
    }
  } catch (e) {
    if (e instanceof NetworkError) e.pending = todo.filter((x) => !sources.get(x.spec)?.local && !files.has(x.spec)).map((x) => x.spec.url);
    cleanup();
    throw e;
  }
  // unpack into a staging folder, check it, then commit
  const set = setFolder(build, manifest.onnxruntime);
  const staging = path.join(dir, `.staging-${set}`);
  const packages: InstalledPackage[] = [];
  try {
    for (const { spec } of todo) {
      o.onProgress?.({ phase: 'unpack', package: spec.name });
      const { file, from } = files.get(spec)!;
      const libs = await unpack(file, spec.extract, staging, o.signal);
      const lacking = spec.provides.filter((l) => !libs.includes(l));
      if (lacking.length) throw new UserError(`${spec.file} lacks ${lacking.join(', ')}`, { key: 'cuda install' }, 'the package does not hold what the manifest says; nothing was installed');
      packages.push({ registry: spec.registry, name: spec.name, version: spec.version, file: spec.file, digest: `${spec.digest.algorithm}-${spec.digest.value}`, from, libraries: libs.sort() });
    }
    const provider = path.join(staging, providerFiles(o.platform?.startsWith('win32') ? 'win32' : process.platform)[1]);
    if (!providerVersionMatches(provider, manifest.onnxruntime))
      throw new UserError(`the CUDA provider of ${build.provider.file} was not built for ONNX Runtime ${manifest.onnxruntime}`, { key: 'cuda install' });
    fs.renameSync(staging, path.join(dir, set));
  } catch (e) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw e;
  }
  const fromSystem: Record<string, string> = {};
  for (const x of p.packages) if (x.system) Object.assign(fromSystem, x.system);
  const installed: Installed = {
    onnxruntime: manifest.onnxruntime,
    platform: o.platform ?? platformKey(),
    build: build.id,
    cuda: build.cuda,
    set,
    installedAt: new Date().toISOString(),
    packages,
    fromSystem,
  };
  writeFileAtomic(path.join(dir, INSTALLED_FILE), JSON.stringify(installed, null, 2) + '\n');
  // the old set and its runtime folders go (processes that run from them keep their mapped files)
  if (before && before.set !== set) fs.rmSync(path.join(dir, before.set), { recursive: true, force: true });
  fs.rmSync(path.join(dir, 'runtime'), { recursive: true, force: true });
  for (const { file } of files.values()) if (file.startsWith(downloads)) fs.rmSync(file, { force: true });
  cleanup();
  o.onProgress?.({ phase: 'done', package: build.provider.name });
  return { installed, dir, downloaded };
}

export interface RemoveResult {
  dir: string;
  removed?: Installed;
  /** bytes freed */
  freed: number;
}

function sizeOf(p: string): number {
  const st = fs.lstatSync(p, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.isSymbolicLink() ? 0 : st.size;
  return fs.readdirSync(p).reduce((n, f) => n + sizeOf(path.join(p, f)), 0);
}

/** Removes the install of `dir`: first its record (so nothing uses it), then every file Gatelab put there. */
export function removeCuda(o: { dir?: string } = {}): RemoveResult {
  const dir = path.resolve(o.dir ?? cudaDir());
  if (!fs.existsSync(dir)) return { dir, freed: 0 };
  try {
    const held = JSON.parse(fs.readFileSync(path.join(dir, 'install.lock'), 'utf8')) as { pid?: number; started?: string };
    if (held.pid && sameProcess(held.pid, held.started)) throw new UserError(`a CUDA install (process ${held.pid}) is installing into ${dir}`, { key: 'cuda remove' }, 'wait for it to finish, or stop it');
  } catch (e) {
    if (e instanceof UserError) throw e;
    // no lock, or a stale one
  }
  const removed = readInstalled(dir);
  const ours = (f: string) => f === INSTALLED_FILE || f === 'install.lock' || f === 'runtime' || f === 'downloads' || f.startsWith('.staging-') || /^[a-z0-9][a-z0-9-]*-\d+\.\d+\.\d+-[a-z0-9]+$/.test(f) || f === removed?.set;
  const entries = fs.readdirSync(dir).filter(ours);
  const freed = entries.reduce((n, f) => n + sizeOf(path.join(dir, f)), 0);
  fs.rmSync(path.join(dir, INSTALLED_FILE), { force: true });
  for (const f of entries) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
  if (fs.readdirSync(dir).length === 0) fs.rmdirSync(dir);
  return { dir, removed, freed };
}
