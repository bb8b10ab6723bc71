// The committed package set for the CUDA provider, pinned to the onnxruntime version Gatelab ships
// (manifest.json): for each platform, builds of the provider (the official NuGet package first) and
// the NVIDIA runtime packages from PyPI each build needs, every one with its URL, size and the
// registry's digest. `gatelab cuda install --dry-run` prints it without touching the network.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors';
import COMMITTED from './manifest.json';

export type Registry = 'nuget' | 'pypi' | 'npm';

export interface Digest {
  /** NuGet and npm publish SHA-512 (base64), PyPI SHA-256 (hex) */
  algorithm: 'sha512' | 'sha256';
  value: string;
  encoding: 'base64' | 'hex';
}

export interface PackageSpec {
  registry: Registry;
  name: string;
  version: string;
  /** the package file's name (also how `--from FOLDER` finds it) */
  file: string;
  url: string;
  size: number;
  /** the pinned digest the bytes must match */
  digest: Digest;
  /** the registry publishes a digest in another algorithm: it is read at install time and checked too */
  registryDigest?: 'sha512' | 'sha256';
  /** members to unpack: archive paths, `*` matching within one path segment */
  extract: string[];
  /** the libraries it gives, by the names the loader looks for */
  provides: string[];
  note?: string;
}

export interface Build {
  id: string;
  cuda: number;
  cudnn: number;
  official: boolean;
  description: string;
  provider: PackageSpec;
  runtime: PackageSpec[];
  /** libraries the provider opens at run time (not in its DT_NEEDED) and cannot do without: cuDNN */
  dlopened: string[];
  /** libraries it opens at run time for some operators only (cuFFT, NVRTC) */
  optional: string[];
}

export interface PlatformSet {
  default: string;
  builds: Build[];
}

export interface Manifest {
  onnxruntime: string;
  /** where each fact of the committed manifest was read */
  sources: string[];
  platforms: Record<string, PlatformSet>;
  /** platforms (or platform prefixes) without a package set, and what to do there */
  notWhere: Record<string, string>;
}

/** The manifest as stored: builds name their packages. */
export interface StoredManifest {
  onnxruntime: string;
  sources: string[];
  platforms: Record<string, { default: string; builds: (Omit<Build, 'provider' | 'runtime'> & { provider: string; runtime: string[] })[]; packages: Record<string, Omit<PackageSpec, 'name'>> }>;
  notWhere?: Record<string, string>;
}

/** Resolves the package names of a stored manifest (a name it lacks is an error in the manifest). */
export function resolveManifest(m: StoredManifest): Manifest {
  const platforms: Record<string, PlatformSet> = {};
  for (const [key, p] of Object.entries(m.platforms)) {
    const spec = (name: string): PackageSpec => {
      const s = p.packages[name];
      if (!s) throw new Error(`manifest ${key}: no package "${name}"`);
      return { name, ...s };
    };
    platforms[key] = { default: p.default, builds: p.builds.map((b) => ({ ...b, provider: spec(b.provider), runtime: b.runtime.map(spec) })) };
  }
  return { onnxruntime: m.onnxruntime, sources: m.sources, platforms, notWhere: m.notWhere ?? {} };
}

export const MANIFEST = resolveManifest(COMMITTED as StoredManifest);

/**
 * The manifest in force: GATELAB_CUDA_MANIFEST names another one (an organisation's own pinned set
 * on its mirror, or a test's), else the committed one.
 */
export function activeManifest(env: NodeJS.ProcessEnv = process.env): Manifest {
  const file = env.GATELAB_CUDA_MANIFEST;
  if (!file) return MANIFEST;
  const where = { file, key: 'GATELAB_CUDA_MANIFEST' };
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read the CUDA manifest (${(e as NodeJS.ErrnoException).code})`, where, 'unset GATELAB_CUDA_MANIFEST to use the one Gatelab ships');
  }
  try {
    return resolveManifest(JSON.parse(text) as StoredManifest);
  } catch (e) {
    throw new UserError(`not a CUDA manifest: ${(e as Error).message}`, where, 'it has the form of src/engine/cuda/manifest.json');
  }
}

export function platformKey(platform = process.platform, arch = process.arch): string {
  return `${platform}-${arch}`;
}

/** Platform limits, said plainly. */
export function platformProblem(key = platformKey(), m: Manifest = activeManifest()): string | undefined {
  if (m.platforms[key]) return undefined;
  const said = m.notWhere[key] ?? m.notWhere[key.split('-')[0]];
  return `no CUDA package set of ONNX Runtime ${m.onnxruntime} for ${key}: ${said ?? `there are sets for ${Object.keys(m.platforms).join(', ')} only`}`;
}

export function buildOf(buildId: string | undefined, key = platformKey(), m: Manifest = activeManifest()): Build {
  const problem = platformProblem(key, m);
  if (problem) throw new UserError(problem, { key: 'cuda install' });
  const set = m.platforms[key];
  const id = buildId ?? set.default;
  const b = set.builds.find((x) => x.id === id || String(x.cuda) === id);
  if (!b) throw new UserError(`no build "${id}" for ${key}`, { key: '--cuda' }, `use ${[...new Set(set.builds.map((x) => String(x.cuda)))].join(', ')}, or a build: ${set.builds.map((x) => x.id).join(', ')}`);
  return b;
}

/** The build whose provider needs libcudart of `major` (how doctor finds the dlopened libraries). */
export function buildForCuda(major: number, key = platformKey(), m: Manifest = activeManifest()): Build | undefined {
  return m.platforms[key]?.builds.find((b) => b.cuda === major);
}

export interface PlannedPackage {
  spec: PackageSpec;
  role: 'provider' | 'runtime';
  /** set when the system already has every library the package gives (library → where) */
  system?: Record<string, string>;
}

/**
 * The packages of `build`: the provider always, each NVIDIA package unless the system already has
 * all the libraries it gives (`has` says where the loader finds a library, outside Gatelab's own folder).
 */
export function plan(build: Build, has: (lib: string) => string | undefined): PlannedPackage[] {
  const out: PlannedPackage[] = [{ spec: build.provider, role: 'provider' }];
  for (const spec of build.runtime) {
    const where = spec.provides.map((l) => [l, has(l)] as const);
    out.push(where.every(([, w]) => w) ? { spec, role: 'runtime', system: Object.fromEntries(where) as Record<string, string> } : { spec, role: 'runtime' });
  }
  return out;
}

/** Whether an archive member matches one of the `extract` patterns. */
export function memberMatches(member: string, patterns: string[]): boolean {
  return patterns.some((p) => {
    const re = new RegExp(`^${p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}$`);
    return re.test(member);
  });
}

export function fmtSize(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(0)} kB`;
}

export function digestText(d: Digest): string {
  return `${d.algorithm.toUpperCase().replace('SHA', 'SHA-')} ${d.value}`;
}

/** The package set as `--dry-run` prints it. */
export function planText(build: Build, planned: PlannedPackage[], dir: string, m: Manifest = activeManifest()): string {
  const lines = [
    `CUDA provider for ONNX Runtime ${m.onnxruntime}, ${platformKey()}: build ${build.id} (CUDA ${build.cuda}, cuDNN ${build.cudnn}${build.official ? ', official' : ''})`,
    `  ${build.description}`,
    `into ${path.join(dir)}`,
    '',
  ];
  let total = 0;
  for (const p of planned) {
    const s = p.spec;
    const state = p.system ? `system has it: ${Object.entries(p.system).map(([l, w]) => `${l} (${w})`).join(', ')}` : 'to download';
    if (!p.system) total += s.size;
    lines.push(
      `${p.role === 'provider' ? 'provider' : 'runtime '} ${s.name} ${s.version} (${s.registry}) — ${state}`,
      `  ${s.url}`,
      `  ${fmtSize(s.size)} (${s.size} bytes), ${digestText(s.digest)}`,
      `  gives ${s.provides.join(', ')}`,
    );
    if (s.note) lines.push(`  note: ${s.note}`);
  }
  lines.push('', `${planned.filter((p) => !p.system).length} of ${planned.length} packages to download, ${fmtSize(total)}`);
  const others = (m.platforms[platformKey()]?.builds ?? []).filter((b) => b.id !== build.id);
  for (const b of others) lines.push(`other build: --cuda ${b.id} (CUDA ${b.cuda}${b.official ? ', official' : ''}): ${b.description}`);
  return lines.join('\n');
}
