// `gatelab cuda install` / `remove` (issue 17) against a registry on 127.0.0.1 that serves
// NuGet- and PyPI-shaped metadata and packages built by the test: a full install, a corrupted
// download rejected by its checksum, a resumed download, an offline machine, `remove`; and the
// committed manifest printed offline by --dry-run.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledInstall, NetworkError, Progress } from '../../src/engine/cuda/fetch';
import { installCuda, removeCuda } from '../../src/engine/cuda/install';
import { MANIFEST } from '../../src/engine/cuda/manifest';
import { readInstalled } from '../../src/engine/cuda/state';
import { UserError } from '../../src/engine/errors';
import { processStartTime } from '../../src/engine/util/fsx';
import { loaderDirs, ortEnv, providerLocation } from '../../src/engine/runtime/ortload';
import { closedPort, CUBLAS, CUDART, NUPKG, Registry, startRegistry, tmpdir } from './cuda-registry';

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/cli.js');
const none = () => undefined;

/** Everything in `dir` but the downloads folder (what "installed" means). */
function installedFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => f !== 'downloads');
}

let reg: Registry;
beforeAll(async () => {
  reg = await startRegistry();
});
afterAll(async () => {
  await reg.close();
});

describe('cuda install from a registry', () => {
  it('a full install: metadata, downloads verified against the pinned and the registry digests, only the libraries unpacked, committed by installed.json', async () => {
    const dir = tmpdir();
    const events: Progress[] = [];
    reg.requests.length = 0;
    const r = await installCuda({ dir, manifest: reg.manifest, indexes: reg.indexes, systemHas: none, onProgress: (p) => events.push(p) });
    expect(r.alreadyInstalled).toBeUndefined();
    expect(r.downloaded).toBe(reg.files[NUPKG].bytes.length + reg.files[CUBLAS].bytes.length + reg.files[CUDART].bytes.length);
    const inst = readInstalled(dir)!;
    expect(inst).toMatchObject({ build: 'cuda13', cuda: 13, platform: 'linux-x64', fromSystem: {} });
    expect(inst.packages.map((p) => [p.name, p.libraries])).toEqual([
      ['Microsoft.ML.OnnxRuntime.Gpu.Linux', ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so']],
      ['nvidia-cublas', ['libcublas.so.13', 'libcublasLt.so.13']],
      ['nvidia-cuda-runtime', ['libcudart.so.13']],
    ]);
    expect(inst.packages[1].from).toBe(`${reg.url}/files/${CUBLAS}`);
    // the set holds the libraries and nothing else; the downloads are gone
    expect(fs.readdirSync(path.join(dir, inst.set)).sort()).toEqual(['libcublas.so.13', 'libcublasLt.so.13', 'libcudart.so.13', 'libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so']);
    expect(fs.readFileSync(path.join(dir, inst.set, 'libcublasLt.so.13')).subarray(0, 18).toString()).toBe('\x7fELF fake cublasLt');
    expect(fs.readdirSync(dir).sort()).toEqual([inst.set, 'installed.json'].sort());
    // the registry was asked the NuGet way (service index → registration → catalog) and the PyPI way
    const paths = reg.requests.map((q) => q.path);
    expect(paths.slice(0, 3)).toEqual(['/v3/index.json', '/v3/registration/microsoft.ml.onnxruntime.gpu.linux/1.29.0.json', `/v3/catalog/microsoft.ml.onnxruntime.gpu.linux.1.29.0.json`]);
    expect(paths).toContain('/pypi/nvidia-cublas/13.1.1.3/json');
    expect(events.map((e) => e.phase)).toEqual(expect.arrayContaining(['metadata', 'download', 'verify', 'unpack', 'done']));
    const last = events.filter((e) => e.phase === 'download' && e.package === 'nvidia-cublas').pop()!;
    expect(last.received).toBe(last.total);
    // the layout trainers use: the set is the provider folder and on the loader path
    const env = { GATELAB_CUDA_DIR: dir, LD_LIBRARY_PATH: '/opt/x' };
    expect(providerLocation(env)).toEqual({ dir: path.join(dir, inst.set), source: 'gatelab cuda install' });
    expect(loaderDirs(env)).toEqual([path.join(dir, inst.set)]);
    expect(ortEnv(env).LD_LIBRARY_PATH).toBe(`${path.join(dir, inst.set)}:/opt/x`);
    // installing the same build again is a no-op; --force makes a new set and drops the old one
    expect((await installCuda({ dir, manifest: reg.manifest, indexes: reg.indexes, systemHas: none })).alreadyInstalled).toBe(true);
    const again = await installCuda({ dir, manifest: reg.manifest, indexes: reg.indexes, systemHas: none, force: true });
    expect(again.installed.set).not.toBe(inst.set);
    expect(fs.existsSync(path.join(dir, inst.set))).toBe(false);
  });

  it('NVIDIA packages whose libraries the system has are not fetched, and recorded as the system\'s', async () => {
    const dir = tmpdir();
    const r = await installCuda({ dir, manifest: reg.manifest, indexes: reg.indexes, systemHas: (l) => (l === 'libcudart.so.13' ? '/usr/local/cuda/lib64/libcudart.so.13' : undefined) });
    expect(r.installed.packages.map((p) => p.name)).toEqual(['Microsoft.ML.OnnxRuntime.Gpu.Linux', 'nvidia-cublas']);
    expect(r.installed.fromSystem).toEqual({ 'libcudart.so.13': '/usr/local/cuda/lib64/libcudart.so.13' });
  });

  it('a corrupted download is rejected by its checksum, deleted, and nothing is installed', async () => {
    const dir = tmpdir();
    reg.corrupt.add(CUBLAS);
    try {
      const e = await installCuda({ dir, manifest: reg.manifest, indexes: reg.indexes, systemHas: none }).catch((x) => x);
      expect(e).toBeInstanceOf(UserError);
      expect(e.message).toBe(`${CUBLAS} does not match its SHA-256 digest: the download is corrupt`);
      expect(e.hint).toBe('it was deleted; run `gatelab cuda install` again');
    } finally {
      reg.corrupt.delete(CUBLAS);
    }
    expect(readInstalled(dir)).toBeUndefined();
    expect(installedFiles(dir)).toEqual([]);
    // the good download before it is kept; the corrupt one is gone, so the next run fetches it afresh
    expect(fs.readdirSync(path.join(dir, 'downloads')).sort()).toEqual([NUPKG]);
    const r = await installCuda({ dir, manifest: reg.manifest, indexes: reg.indexes, systemHas: none });
    expect(r.downloaded).toBe(reg.files[CUBLAS].bytes.length + reg.files[CUDART].bytes.length);
  });

  it('the NuGet SHA-512 from the catalog is checked as well as the pinned SHA-256', async () => {
    const dir = tmpdir();
    reg.corrupt.add(NUPKG);
    try {
      const e = await installCuda({ dir, manifest: reg.manifest, indexes: reg.indexes, systemHas: none }).catch((x) => x);
      expect(e.message).toBe(`${NUPKG} does not match its SHA-256 and SHA-512 digest: the download is corrupt`);
    } finally {
      reg.corrupt.delete(NUPKG);
    }
    expect(installedFiles(dir)).toEqual([]);
  });

  it('a registry whose digest differs from the pinned one is refused before any download', async () => {
    const dir = tmpdir();
    reg.lieAbout.set(CUBLAS, 'ab'.repeat(32));
    reg.requests.length = 0;
    try {
      const e = await installCuda({ dir, manifest: reg.manifest, indexes: reg.indexes, systemHas: none }).catch((x) => x);
      expect(e.message).toMatch(/^the registry's digest of nvidia-cublas 13\.1\.1\.3 \(abab.*\) differs from the pinned [0-9a-f]{64}$/);
    } finally {
      reg.lieAbout.delete(CUBLAS);
    }
    expect(reg.requests.some((q) => q.path.startsWith('/files/') || q.path.startsWith('/v3/flat/'))).toBe(false);
    expect(installedFiles(dir)).toEqual([]);
  });

  it('a download cut off midway resumes from where it stopped with a Range request', async () => {
    const dir = tmpdir();
    const size = reg.files[NUPKG].bytes.length;
    reg.dropAfter.set(NUPKG, 400_000);
    const e = await installCuda({ dir, manifest: reg.manifest, indexes: reg.indexes, systemHas: none }).catch((x) => x);
    expect(e).toBeInstanceOf(NetworkError);
    expect(e.message).toMatch(new RegExp(`^cannot reach 127\\.0\\.0\\.1:\\d+ \\(.+\\) while downloading ${NUPKG.replace(/\./g, '\\.')}: stopped at \\d+ of ${size} bytes; run again to resume$`));
    const part = path.join(dir, 'downloads', `${NUPKG}.part`);
    const had = fs.statSync(part).size;
    expect(had).toBeGreaterThanOrEqual(400_000);
    expect(had).toBeLessThan(size);
    expect(readInstalled(dir)).toBeUndefined();
    reg.requests.length = 0;
    const resumed: Progress[] = [];
    const r = await installCuda({ dir, manifest: reg.manifest, indexes: reg.indexes, systemHas: none, onProgress: (p) => p.resumedAt && resumed.push(p) });
    expect(reg.requests.find((q) => q.path.endsWith(NUPKG))?.range).toBe(`bytes=${had}-`);
    expect(resumed).toEqual([{ phase: 'download', package: 'Microsoft.ML.OnnxRuntime.Gpu.Linux', received: had, total: size, resumedAt: had }]);
    expect(r.downloaded).toBe(size - had + reg.files[CUBLAS].bytes.length + reg.files[CUDART].bytes.length);
    expect(fs.readFileSync(path.join(dir, r.installed.set, 'libonnxruntime_providers_cuda.so')).includes(Buffer.from('cuda provider'))).toBe(true);
  });

  it('an offline machine gets a clear message, nothing half-installed, and the previous install untouched', async () => {
    const dir = tmpdir();
    const first = await installCuda({ dir, manifest: reg.manifest, indexes: reg.indexes, systemHas: none });
    const before = fs.readFileSync(path.join(dir, 'installed.json'), 'utf8');
    const off = await closedPort();
    const e = await installCuda({ dir, manifest: reg.manifest, indexes: { nuget: `${off}/v3/index.json`, pypi: off, npm: off }, systemHas: none, force: true }).catch((x) => x);
    expect(e).toBeInstanceOf(NetworkError);
    expect(e.message).toBe(`cannot reach ${new URL(off).host} (ECONNREFUSED) for the metadata of Microsoft.ML.OnnxRuntime.Gpu.Linux 1.29.0`);
    expect(e.pending).toHaveLength(3);
    expect(fs.readFileSync(path.join(dir, 'installed.json'), 'utf8')).toBe(before);
    expect(fs.readdirSync(dir).sort()).toEqual([first.installed.set, 'installed.json'].sort());
  });

  it('a cancel stops the download, keeps the partial file and installs nothing', async () => {
    const dir = tmpdir();
    const ac = new AbortController();
    const e = await installCuda({
      dir,
      manifest: reg.manifest,
      indexes: reg.indexes,
      systemHas: none,
      signal: ac.signal,
      onProgress: (p) => p.phase === 'download' && (p.received ?? 0) > 0 && ac.abort(),
    }).catch((x) => x);
    expect(e).toBeInstanceOf(CancelledInstall);
    expect(readInstalled(dir)).toBeUndefined();
    expect(installedFiles(dir)).toEqual([]);
  });

  it('packages from a local folder (--from) need no network; a file that does not match its digest is refused', async () => {
    const dir = tmpdir();
    const from = tmpdir('gatelab-from-');
    for (const f of [NUPKG, CUBLAS, CUDART]) fs.writeFileSync(path.join(from, f), reg.files[f].bytes);
    const off = await closedPort();
    const r = await installCuda({ dir, manifest: reg.manifest, indexes: { nuget: off, pypi: off, npm: off }, systemHas: none, from: [from] });
    expect(r.downloaded).toBe(0);
    expect(r.installed.packages.map((p) => p.from)).toEqual([NUPKG, CUBLAS, CUDART].map((f) => path.join(from, f)));
    fs.writeFileSync(path.join(from, CUBLAS), Buffer.concat([reg.files[CUBLAS].bytes.subarray(1), Buffer.from('x')]));
    const e = await installCuda({ dir: tmpdir(), manifest: reg.manifest, indexes: { nuget: off, pypi: off, npm: off }, systemHas: none, from: [from] }).catch((x) => x);
    expect(e.message).toBe(`${path.join(from, CUBLAS)} does not match the pinned SHA256 digest of nvidia-cublas 13.1.1.3`);
    expect(e.where.key).toBe('--from');
  });

  it('one install at a time into a folder: a live holder of the lock is named, a stale lock is taken over', async () => {
    const dir = tmpdir();
    fs.writeFileSync(path.join(dir, 'install.lock'), JSON.stringify({ pid: process.pid, started: processStartTime(process.pid) }));
    const e = await installCuda({ dir, manifest: reg.manifest, indexes: reg.indexes, systemHas: none }).catch((x) => x);
    expect(e.message).toBe(`another CUDA install (process ${process.pid}) is installing into ${dir}`);
    expect(() => removeCuda({ dir })).toThrow(`a CUDA install (process ${process.pid}) is installing into ${dir}`);
    fs.writeFileSync(path.join(dir, 'install.lock'), JSON.stringify({ pid: process.pid, started: 'another start' }));
    expect((await installCuda({ dir, manifest: reg.manifest, indexes: reg.indexes, systemHas: none })).installed.build).toBe('cuda13');
    expect(fs.existsSync(path.join(dir, 'install.lock'))).toBe(false);
  });

  it('remove deletes the record first, then every file the installer put there', async () => {
    const dir = tmpdir();
    const { installed } = await installCuda({ dir, manifest: reg.manifest, indexes: reg.indexes, systemHas: none });
    fs.mkdirSync(path.join(dir, 'runtime', 'abc'), { recursive: true });
    const r = removeCuda({ dir });
    expect(r.removed?.set).toBe(installed.set);
    expect(r.freed).toBeGreaterThan(reg.files[CUBLAS].bytes.length / 2);
    expect(fs.existsSync(dir)).toBe(false);
    expect(removeCuda({ dir })).toEqual({ dir, freed: 0 });
    expect(providerLocation({ GATELAB_CUDA_DIR: dir })?.source).not.toBe('gatelab cuda install');
  });
});

describe('the gatelab cuda command', () => {
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });

  it('--dry-run prints the pinned package set for onnxruntime 1.29.0 with real names, versions, URLs, sizes and digests, offline', async () => {
    const off = await closedPort();
    const r = cli(['cuda', 'install', '--dry-run', '--dir', tmpdir()], { GATELAB_NUGET_INDEX: off, GATELAB_PYPI_INDEX: off, GATELAB_NPM_REGISTRY: off });
    expect(r.status).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/^CUDA provider for ONNX Runtime 1\.29\.0, linux-x64: build cuda13 \(CUDA 13, cuDNN 9, official\)/);
    const build = MANIFEST.platforms['linux-x64'].builds[0];
    for (const s of [build.provider, ...build.runtime]) {
      expect(out).toContain(`${s.name} ${s.version} (${s.registry})`);
      expect(out).toContain(s.url);
      expect(out).toContain(`(${s.size} bytes), ${s.digest.algorithm === 'sha256' ? 'SHA-256' : 'SHA-512'} ${s.digest.value}`);
    }
    expect(out).toContain('https://api.nuget.org/v3-flatcontainer/microsoft.ml.onnxruntime.gpu.linux/1.29.0/microsoft.ml.onnxruntime.gpu.linux.1.29.0.nupkg');
    expect(out).toContain('nvidia-cudnn-cu13 9.20.0.48 (pypi)');
    expect(out).toContain('other build: --cuda cuda13-npm');
    const j = JSON.parse(cli(['cuda', 'install', '--dry-run', '--json'], { GATELAB_CUDA_DIR: tmpdir() }).stdout);
    expect(j.packages.map((p: { name: string }) => p.name)).toEqual(['Microsoft.ML.OnnxRuntime.Gpu.Linux', 'nvidia-cuda-runtime', 'nvidia-cublas', 'nvidia-curand', 'nvidia-cufft', 'nvidia-cuda-nvrtc', 'nvidia-cudnn-cu13']);
  });

  it('every package of the committed manifest is fully pinned', () => {
    for (const [key, p] of Object.entries(MANIFEST.platforms))
      for (const b of p.builds)
        for (const s of [b.provider, ...b.runtime]) {
          expect(s.url, `${key} ${s.name}`).toMatch(/^https:\/\/(api\.nuget\.org|files\.pythonhosted\.org|registry\.npmjs\.org)\//);
          expect(s.url.endsWith(`/${s.file}`) || s.url.endsWith(`/${s.file.toLowerCase()}`)).toBe(true);
          expect(Number.isInteger(s.size) && s.size > 0).toBe(true);
          expect(s.digest.value).toMatch(s.digest.encoding === 'hex' ? /^[0-9a-f]{64}$/ : /^[A-Za-z0-9+/]{86}==$/);
          expect(s.provides.length).toBeGreaterThan(0);
        }
  });

  it('offline, install says so, names the files to fetch elsewhere, exits 1 and installs nothing', async () => {
    const off = await closedPort();
    const dir = tmpdir();
    const r = cli(['cuda', 'install', '--dir', dir], { GATELAB_NUGET_INDEX: `${off}/v3/index.json`, GATELAB_PYPI_INDEX: off });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`gatelab: cannot reach ${new URL(off).host} (ECONNREFUSED) for the metadata of Microsoft.ML.OnnxRuntime.Gpu.Linux 1.29.0; nothing was installed.`);
    expect(r.stderr).toContain('gatelab:   https://api.nuget.org/v3-flatcontainer/microsoft.ml.onnxruntime.gpu.linux/1.29.0/microsoft.ml.onnxruntime.gpu.linux.1.29.0.nupkg');
    expect(installedFiles(dir)).toEqual([]);
    expect(cli(['cuda', 'remove', '--dir', dir]).stdout).toBe(`no CUDA install in ${dir}\n`);
  });

  it('a bad subcommand or argument names it', () => {
    const r = cli(['cuda', 'instal']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('gatelab: cuda: unknown cuda command "instal" (use `gatelab cuda install [--dry-run]` or `gatelab cuda remove`)\n');
    const b = cli(['cuda', 'install', '--cuda', '11', '--dry-run']);
    expect(b.status).toBe(2);
    expect(b.stderr).toBe('gatelab: --cuda: no build "11" for linux-x64 (use 13, or a build: cuda13, cuda13-npm)\n');
  });
});
