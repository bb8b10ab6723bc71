// Getting a package of the manifest: its registry's metadata (NuGet v3 registration and catalog,
// PyPI's JSON API, the npm registry) gives the download URL and a digest that must equal the pinned
// one; the download resumes a partial file with an HTTP Range request, reports progress, stops on an
// AbortSignal and is kept only when its bytes match the digest.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { UserError } from '../errors';
import type { Digest, PackageSpec } from './manifest';

/** Where the registries are: the public ones, or mirrors (GATELAB_NUGET_INDEX, GATELAB_PYPI_INDEX, GATELAB_NPM_REGISTRY). */
export interface Indexes {
  /** a NuGet v3 service index */
  nuget: string;
  /** a PyPI host serving /pypi/NAME/VERSION/json */
  pypi: string;
  npm: string;
}

export const PUBLIC_INDEXES: Indexes = { nuget: 'https://api.nuget.org/v3/index.json', pypi: 'https://pypi.org', npm: 'https://registry.npmjs.org' };

export function indexesFromEnv(env: NodeJS.ProcessEnv = process.env): Indexes {
  return {
    nuget: env.GATELAB_NUGET_INDEX || PUBLIC_INDEXES.nuget,
    pypi: (env.GATELAB_PYPI_INDEX || PUBLIC_INDEXES.pypi).replace(/\/+$/, ''),
    npm: (env.GATELAB_NPM_REGISTRY || PUBLIC_INDEXES.npm).replace(/\/+$/, ''),
  };
}

/** A registry or download that could not be reached: nothing is installed, partial downloads stay. */
export class NetworkError extends UserError {
  /** URLs of the packages still to be fetched (set by the installer) */
  pending: string[] = [];
  constructor(
    readonly url: string,
    readonly code: string,
    what: string,
  ) {
    super(`cannot reach ${new URL(url).host} (${code}) ${what}`);
    this.name = 'NetworkError';
  }
}

export class CancelledInstall extends Error {
  constructor() {
    super('cancelled');
    this.name = 'CancelledInstall';
  }
}

function networkCode(e: unknown): string | undefined {
  const err = e as { name?: string; code?: string; cause?: { code?: string; name?: string; message?: string } };
  if (err?.name === 'AbortError') return undefined;
  return err?.cause?.code ?? err?.code ?? (err?.name === 'TypeError' ? (err.cause?.message ?? 'fetch failed') : undefined);
}

async function get(url: string, what: string, signal?: AbortSignal, headers: Record<string, string> = {}): Promise<Response> {
  try {
    return await fetch(url, { headers: { 'user-agent': 'gatelab-cuda-installer', ...headers }, signal, redirect: 'follow' });
  } catch (e) {
    if (signal?.aborted) throw new CancelledInstall();
    const code = networkCode(e);
    if (code) throw new NetworkError(url, code, what);
    throw e;
  }
}

async function json(url: string, what: string, signal?: AbortSignal): Promise<Record<string, unknown>> {
  const r = await get(url, what, signal, { accept: 'application/json' });
  if (!r.ok) throw new UserError(`${what}: ${url} answered ${r.status} ${r.statusText}`, { key: 'cuda install' }, 'the registry does not have this package version; check the mirror or the manifest');
  return (await r.json()) as Record<string, unknown>;
}

export interface Located {
  url: string;
  size?: number;
  digest: Digest;
}

function sameDigest(a: Digest, b: Digest): boolean {
  const norm = (d: Digest) => (d.encoding === 'hex' ? Buffer.from(d.value, 'hex') : Buffer.from(d.value, 'base64')).toString('base64');
  return a.algorithm === b.algorithm && norm(a) === norm(b);
}

/**
 * Asks the package's registry where its file is and what digest it has; a digest that differs from
 * the pinned one stops the install (the registry's package is not the one the manifest names).
 */
export async function locate(spec: PackageSpec, ix: Indexes, signal?: AbortSignal): Promise<Located> {
  const what = `for the metadata of ${spec.name} ${spec.version}`;
  let found: Located;
  if (spec.registry === 'nuget') {
    const index = await json(ix.nuget, what, signal);
    const resources = (index.resources ?? []) as { '@id': string; '@type': string }[];
    const reg = resources.find((r) => r['@type'].startsWith('RegistrationsBaseUrl'))?.['@id'];
    const base = resources.find((r) => r['@type'].startsWith('PackageBaseAddress'))?.['@id'];
    if (!reg) throw new UserError(`${ix.nuget} is not a NuGet v3 service index (no RegistrationsBaseUrl)`, { key: 'GATELAB_NUGET_INDEX' });
    const id = spec.name.toLowerCase();
    const v = spec.version.toLowerCase();
    const leaf = await json(`${reg.replace(/\/?$/, '/')}${id}/${v}.json`, what, signal);
    const entryUrl = typeof leaf.catalogEntry === 'string' ? leaf.catalogEntry : (leaf.catalogEntry as { '@id'?: string })?.['@id'];
    if (!entryUrl) throw new UserError(`NuGet registration of ${spec.name} ${spec.version} has no catalogEntry`, { key: 'cuda install' });
    const entry = await json(entryUrl, what, signal);
    const alg = String(entry.packageHashAlgorithm ?? '').toLowerCase().replace('-', '');
    if (alg !== 'sha512' || typeof entry.packageHash !== 'string') throw new UserError(`NuGet catalog entry of ${spec.name} ${spec.version} has no SHA-512 packageHash`, { key: 'cuda install' });
    found = {
      url: (leaf.packageContent as string) ?? `${(base ?? '').replace(/\/?$/, '/')}${id}/${v}/${id}.${v}.nupkg`,
      size: typeof entry.packageSize === 'number' ? entry.packageSize : undefined,
      digest: { algorithm: 'sha512', value: entry.packageHash, encoding: 'base64' },
    };
  } else if (spec.registry === 'pypi') {
    const meta = await json(`${ix.pypi}/pypi/${spec.name}/${spec.version}/json`, what, signal);
    const file = ((meta.urls ?? []) as { filename: string; url: string; size: number; digests: { sha256?: string } }[]).find((u) => u.filename === spec.file);
    if (!file?.digests?.sha256) throw new UserError(`PyPI has no file ${spec.file} for ${spec.name} ${spec.version}`, { key: 'cuda install' }, 'the manifest names a wheel the registry lacks');
    found = { url: file.url, size: file.size, digest: { algorithm: 'sha256', value: file.digests.sha256, encoding: 'hex' } };
  } else {
    const meta = await json(`${ix.npm}/${spec.name.replace('/', '%2f')}/${spec.version}`, what, signal);
    const dist = (meta.dist ?? {}) as { tarball?: string; integrity?: string };
    const m = /^sha512-(.+)$/.exec(dist.integrity ?? '');
    if (!dist.tarball || !m) throw new UserError(`the npm registry gives no tarball with a SHA-512 integrity for ${spec.name}@${spec.version}`, { key: 'cuda install' });
    found = { url: dist.tarball, digest: { algorithm: 'sha512', value: m[1], encoding: 'base64' } };
  }
  // a registry digest in another algorithm than the pinned one (NuGet's SHA-512 beside a pinned
  // SHA-256) cannot be compared here: the download is checked against both
  if (found.digest.algorithm === spec.digest.algorithm && !sameDigest(found.digest, spec.digest))
    throw new UserError(
      `the registry's digest of ${spec.name} ${spec.version} (${found.digest.value}) differs from the pinned ${spec.digest.value}`,
      { key: 'cuda install' },
      'nothing was installed: the package on the registry is not the one this Gatelab release was made for',
    );
  if (found.size !== undefined && found.size !== spec.size)
    throw new UserError(`the registry's size of ${spec.name} ${spec.version} (${found.size}) differs from the pinned ${spec.size}`, { key: 'cuda install' });
  return found;
}

/** The file's digest in the encoding `d` uses. */
export async function fileDigest(file: string, d: Pick<Digest, 'algorithm' | 'encoding'>, signal?: AbortSignal): Promise<string> {
  const h = createHash(d.algorithm);
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) {
    if (signal?.aborted) throw new CancelledInstall();
    h.update(chunk as Buffer);
  }
  return h.digest(d.encoding);
}

/** Whether `file` matches the pinned digest of `spec` and every digest in `also` (the registry's). */
export async function verify(file: string, spec: PackageSpec, signal?: AbortSignal, also: Digest[] = []): Promise<boolean> {
  for (const d of [spec.digest, ...also]) if (!sameDigest({ ...d, value: await fileDigest(file, d, signal) }, d)) return false;
  return true;
}

export interface Progress {
  phase: 'metadata' | 'download' | 'verify' | 'unpack' | 'done';
  package: string;
  /** bytes so far and in all (download) */
  received?: number;
  total?: number;
  resumedAt?: number;
}

/**
 * Downloads `url` to `dest`, resuming `dest.part`; verifies the digest of the whole file and keeps
 * it only when it matches (a mismatch deletes the partial file, so the next try starts afresh).
 */
export async function download(
  url: string,
  dest: string,
  spec: PackageSpec,
  o: { signal?: AbortSignal; onProgress?: (p: Progress) => void; stallMs?: number; also?: Digest[] } = {},
): Promise<void> {
  const part = `${dest}.part`;
  let have = fs.existsSync(part) ? fs.statSync(part).size : 0;
  if (have > spec.size) {
    fs.rmSync(part);
    have = 0;
  }
  if (have < spec.size) {
    const stall = new AbortController();
    const signal = o.signal ? AbortSignal.any([o.signal, stall.signal]) : stall.signal;
    const res = await get(url, `to download ${spec.file}`, signal, have ? { range: `bytes=${have}-` } : {});
    if (res.status === 416) {
      fs.rmSync(part, { force: true });
      return download(url, dest, spec, o);
    }
    if (!res.ok) throw new UserError(`downloading ${spec.file}: ${url} answered ${res.status} ${res.statusText}`, { key: 'cuda install' });
    const resumed = res.status === 206 && have > 0;
    if (!resumed) have = 0;
    o.onProgress?.({ phase: 'download', package: spec.name, received: have, total: spec.size, ...(resumed ? { resumedAt: have } : {}) });
    const fd = fs.openSync(part, resumed ? 'a' : 'w');
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => stall.abort(), o.stallMs ?? 60_000);
    };
    try {
      arm();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        arm();
        have += chunk.length;
        if (have > spec.size) throw new UserError(`${spec.file} is larger than its pinned ${spec.size} bytes`, { key: 'cuda install' }, 'the download was deleted; run again');
        fs.writeSync(fd, chunk);
        o.onProgress?.({ phase: 'download', package: spec.name, received: have, total: spec.size });
      }
    } catch (e) {
      if (o.signal?.aborted) throw new CancelledInstall();
      if (e instanceof UserError) {
        fs.rmSync(part, { force: true });
        throw e;
      }
      const code = stall.signal.aborted ? 'no data for a minute' : (networkCode(e) ?? (e as Error).message);
      throw new NetworkError(url, code, `while downloading ${spec.file}: stopped at ${have} of ${spec.size} bytes; run again to resume`);
    } finally {
      clearTimeout(timer);
      fs.closeSync(fd);
    }
    if (have < spec.size) throw new NetworkError(url, 'connection closed early', `while downloading ${spec.file}: got ${have} of ${spec.size} bytes; run again to resume`);
  }
  o.onProgress?.({ phase: 'verify', package: spec.name });
  if (!(await verify(part, spec, o.signal, o.also))) {
    fs.rmSync(part, { force: true });
    throw new UserError(
      `${spec.file} does not match its ${[spec.digest, ...(o.also ?? [])].map(digestName).join(' and ')} digest: the download is corrupt`,
      { key: 'cuda install' },
      'it was deleted; run `gatelab cuda install` again',
    );
  }
  fs.renameSync(part, dest);
}

function digestName(d: Digest): string {
  return d.algorithm === 'sha512' ? 'SHA-512' : 'SHA-256';
}
