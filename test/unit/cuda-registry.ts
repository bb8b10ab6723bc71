// A NuGet v3 + PyPI + npm registry on 127.0.0.1 for the CUDA installer's tests: registry-shaped
// metadata (service index, registration leaf, catalog entry with packageHash; PyPI's JSON API; the
// npm version document) and package files the test builds, served with HTTP Range support. Faults
// on demand: corrupt bytes, a connection dropped after N bytes, a registry that reports another digest.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as yazl from 'yazl';
import { MANIFEST, resolveManifest, type Manifest, type StoredManifest } from '../../src/engine/cuda/manifest';
import type { Indexes } from '../../src/engine/cuda/fetch';
import { ortVersion } from '../../src/engine/runtime/ortload';
import { runAsync } from '../reference/spawn';

export function zip(entries: Record<string, Buffer | string>): Promise<Buffer> {
  const z = new yazl.ZipFile();
  for (const [name, data] of Object.entries(entries)) z.addBuffer(Buffer.isBuffer(data) ? data : Buffer.from(data), name, { compress: false });
  z.end();
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    z.outputStream.on('data', (c: Buffer) => chunks.push(c));
    z.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    z.outputStream.on('error', reject);
  });
}

/** Library-like bytes: a header, the text and filler, so files have some size (downloads come in several chunks). */
function lib(text: string, size = 300_000): Buffer {
  const b = Buffer.alloc(size, 0x2e);
  Buffer.from(`\x7fELF fake ${text}`).copy(b);
  return b;
}

export interface Served {
  bytes: Buffer;
  sha256: string;
  sha512: string;
}

function served(bytes: Buffer): Served {
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex'), sha512: createHash('sha512').update(bytes).digest('base64') };
}

export interface Registry {
  url: string;
  indexes: Indexes;
  manifest: Manifest;
  /** the manifest as a file stores it (for GATELAB_CUDA_MANIFEST) */
  stored: StoredManifest;
  files: Record<string, Served>;
  /** every request: method, path, Range header */
  requests: { path: string; range?: string }[];
  /** files served with one byte flipped */
  corrupt: Set<string>;
  /** file → bytes after which the next response for it is cut off (once) */
  dropAfter: Map<string, number>;
  /** a PyPI digest to report instead of the true one */
  lieAbout: Map<string, string>;
  close(): Promise<void>;
}

export const NUPKG = 'microsoft.ml.onnxruntime.gpu.linux.1.29.0.nupkg';
export const CUBLAS = 'nvidia_cublas-13.1.1.3-py3-none-manylinux_2_27_x86_64.whl';
export const CUDART = 'nvidia_cuda_runtime-13.0.96-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl';

/**
 * Starts the registry with a provider package and two NVIDIA wheels made here; with `npmTarball`
 * (the real com.github.asus4.onnxruntime.linux-x64-gpu tarball) also an npm package and a build
 * `cuda13-npm` of the real provider with no NVIDIA packages.
 */
export async function startRegistry(o: { npmTarball?: string } = {}): Promise<Registry> {
  const ver = ortVersion();
  const files: Record<string, Served> = {
    [NUPKG]: served(
      await zip({
        '[Content_Types].xml': '<Types/>',
        'runtimes/linux-x64/native/libonnxruntime.so': lib('core'),
        'runtimes/linux-x64/native/libonnxruntime_providers_cuda.so': lib(`cuda provider onnxruntime ${ver}`, 1_500_000),
        'runtimes/linux-x64/native/libonnxruntime_providers_shared.so': lib('shared'),
        'runtimes/linux-x64/native/libonnxruntime_providers_tensorrt.so': lib('tensorrt'),
      }),
    ),
    [CUBLAS]: served(await zip({ 'nvidia/cu13/lib/libcublas.so.13': lib('cublas'), 'nvidia/cu13/lib/libcublasLt.so.13': lib('cublasLt'), 'nvidia/cu13/include/cublas.h': '/* */' })),
    [CUDART]: served(await zip({ 'nvidia/cu13/lib/libcudart.so.13': lib('cudart') })),
  };
  const npmSpec = MANIFEST.platforms['linux-x64'].builds.find((b) => b.id === 'cuda13-npm')!.provider;
  if (o.npmTarball) files[npmSpec.file] = served(fs.readFileSync(o.npmTarball));
  const r: Registry = { url: '', indexes: { nuget: '', pypi: '', npm: '' }, manifest: undefined as never, stored: undefined as never, files, requests: [], corrupt: new Set(), dropAfter: new Map(), lieAbout: new Map(), close: async () => undefined };
  const sendFile = (req: http.IncomingMessage, res: http.ServerResponse, name: string) => {
    const f = files[name];
    if (!f) return res.writeHead(404).end();
    let body = f.bytes;
    if (r.corrupt.has(name)) {
      body = Buffer.from(body);
      body[body.length >> 1] ^= 0xff;
    }
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m) {
      start = Number(m[1]);
      if (start >= body.length) return res.writeHead(416).end();
      res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}`, 'accept-ranges': 'bytes' });
    } else res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
    const drop = r.dropAfter.get(name);
    if (drop !== undefined) {
      r.dropAfter.delete(name);
      res.write(body.subarray(start, start + drop), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(body.subarray(start));
  };
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', r.url);
    r.requests.push({ path: u.pathname, range: req.headers.range });
    const json = (v: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(v));
    let m: RegExpExecArray | null;
    if (u.pathname === '/v3/index.json')
      return json({ version: '3.0.0', resources: [{ '@id': `${r.url}/v3/registration/`, '@type': 'RegistrationsBaseUrl/3.6.0' }, { '@id': `${r.url}/v3/flat/`, '@type': 'PackageBaseAddress/3.0.0' }] });
    if ((m = /^\/v3\/registration\/([^/]+)\/([^/]+)\.json$/.exec(u.pathname)))
      return json({ '@id': u.href, catalogEntry: `${r.url}/v3/catalog/${m[1]}.${m[2]}.json`, packageContent: `${r.url}/v3/flat/${m[1]}/${m[2]}/${m[1]}.${m[2]}.nupkg` });
    if ((m = /^\/v3\/catalog\/(.+)\.json$/.exec(u.pathname))) {
      const f = files[`${m[1]}.nupkg`];
      return f ? json({ id: m[1], packageHash: f.sha512, packageHashAlgorithm: 'SHA512', packageSize: f.bytes.length }) : res.writeHead(404).end();
    }
    if ((m = /^\/v3\/flat\/[^/]+\/[^/]+\/([^/]+)$/.exec(u.pathname))) return sendFile(req, res, m[1]);
    if ((m = /^\/pypi\/([^/]+)\/([^/]+)\/json$/.exec(u.pathname))) {
      const spec = Object.values(r.manifest.platforms['linux-x64'].builds[0].runtime).find((s) => s.name === m![1] && s.version === m![2]);
      if (!spec) return res.writeHead(404).end();
      const f = files[spec.file];
      return json({ info: { name: spec.name, version: spec.version }, urls: [{ filename: spec.file, url: `${r.url}/files/${spec.file}`, size: f.bytes.length, digests: { sha256: r.lieAbout.get(spec.file) ?? f.sha256 } }] });
    }
    if ((m = /^\/files\/(.+)$/.exec(u.pathname))) return sendFile(req, res, m[1]);
    if (u.pathname === `/npm/${npmSpec.name}/${npmSpec.version}` && files[npmSpec.file])
      return json({ name: npmSpec.name, version: npmSpec.version, dist: { tarball: `${r.url}/files/${npmSpec.file}`, integrity: `sha512-${files[npmSpec.file].sha512}` } });
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  r.indexes = { nuget: `${r.url}/v3/index.json`, pypi: r.url, npm: `${r.url}/npm` };
  r.close = () => new Promise((resolve) => server.close(() => resolve()));
  const wheel = (name: string, version: string, file: string, provides: string[]) => ({
    registry: 'pypi' as const,
    version,
    file,
    url: `https://files.pythonhosted.org/x/${file}`,
    size: files[file].bytes.length,
    digest: { algorithm: 'sha256' as const, encoding: 'hex' as const, value: files[file].sha256 },
    extract: provides.map((l) => `nvidia/cu13/lib/${l}`),
    provides,
  });
  const stored: StoredManifest = {
    onnxruntime: ver,
    sources: ['built by the test'],
    platforms: {
      'linux-x64': {
        default: 'cuda13',
        builds: [{ id: 'cuda13', cuda: 13, cudnn: 9, official: true, description: 'test build', provider: 'Microsoft.ML.OnnxRuntime.Gpu.Linux', runtime: ['nvidia-cublas', 'nvidia-cuda-runtime'], dlopened: [], optional: [] }],
        packages: {
          'Microsoft.ML.OnnxRuntime.Gpu.Linux': {
            registry: 'nuget',
            version: '1.29.0',
            file: NUPKG,
            url: `https://api.nuget.org/v3-flatcontainer/x/${NUPKG}`,
            size: files[NUPKG].bytes.length,
            // as the committed manifest: a pinned SHA-256, NuGet's SHA-512 read from the catalog
            digest: { algorithm: 'sha256', encoding: 'hex', value: files[NUPKG].sha256 },
            registryDigest: 'sha512',
            extract: ['runtimes/linux-x64/native/libonnxruntime_providers_cuda.so', 'runtimes/linux-x64/native/libonnxruntime_providers_shared.so'],
            provides: ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'],
          },
          'nvidia-cublas': wheel('nvidia-cublas', '13.1.1.3', CUBLAS, ['libcublas.so.13', 'libcublasLt.so.13']),
          'nvidia-cuda-runtime': wheel('nvidia-cuda-runtime', '13.0.96', CUDART, ['libcudart.so.13']),
          ...(o.npmTarball ? { [npmSpec.name]: (({ name: _n, ...rest }) => rest)(npmSpec) } : {}),
        },
      },
    },
  };
  if (o.npmTarball)
    stored.platforms['linux-x64'].builds.push({ id: 'cuda13-npm', cuda: 13, cudnn: 9, official: false, description: 'the real CUDA 13 provider from npm', provider: npmSpec.name, runtime: [], dlopened: ['libcudnn.so.9'], optional: [] });
  r.stored = stored;
  r.manifest = resolveManifest(stored);
  return r;
}

/** The npm package's tarball, fetched once into a cache folder (npm's own cache makes a re-fetch local). */
export async function providerTarball(): Promise<string> {
  const SPEC = MANIFEST.platforms['linux-x64'].builds.find((b) => b.id === 'cuda13-npm')!.provider;
  const cache = path.join(os.tmpdir(), 'gatelab-test-packages');
  const file = path.join(cache, SPEC.file);
  if (fs.existsSync(file) && fs.statSync(file).size === SPEC.size) return file;
  fs.mkdirSync(cache, { recursive: true });
  const r = await runAsync('npm', ['pack', `${SPEC.name}@${SPEC.version}`, '--prefer-offline', '--pack-destination', cache, '--silent'], { timeoutMs: 600_000 });
  if (r.status !== 0 || !fs.existsSync(file)) throw new Error(`this test needs the npm package ${SPEC.name}@${SPEC.version} from the npm registry (as \`npm ci\` does): ${r.stderr}`);
  return file;
}

export function tmpdir(prefix = 'gatelab-cuda-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A port nothing listens on: an offline machine, as far as the installer can tell. */
export async function closedPort(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
