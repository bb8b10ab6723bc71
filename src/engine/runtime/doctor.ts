// `gatelab doctor`: which execution providers load here and, if CUDA does not, exactly why. Each
// check tries the real thing (a session on a one-node model), not just a file lookup.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { Graph } from '../onnx/builder';
import { Ops } from '../onnx/ops';
import { cudaUnavailableReason, ortBinDir } from './device';

export interface DoctorReport {
  onnxruntime: string;
  platform: string;
  cpus: number;
  binDir: string;
  cpu: { ok: boolean; error?: string };
  cuda: { ok: boolean; reason?: string; providerFiles: Record<string, boolean> };
  libraries?: Record<string, string | undefined>;
  text: string;
}

function probeModel(): Uint8Array {
  const g = new Graph('doctor');
  const op = new Ops(g);
  const x = g.input('x', 'float32', [2, 2]);
  g.output(op.MatMul(x, x), 'y');
  return g.encode();
}

async function tryProvider(ep: 'cpu' | 'cuda'): Promise<{ ok: boolean; error?: string }> {
  try {
    const s = await ort.InferenceSession.create(probeModel(), { executionProviders: [ep], logSeverityLevel: 4 });
    await s.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2, 3, 4), [2, 2]) });
    await s.release();
    return { ok: true };
  } catch (e) {
    return { ok: false, error: (e as Error).message.split('\n')[0] };
  }
}

/** Where the CUDA libraries the provider needs are, from the loader cache and LD_LIBRARY_PATH. */
export function cudaLibraries(): Record<string, string | undefined> {
  const wanted = ['libcudart.so', 'libcublas.so', 'libcublasLt.so', 'libcudnn.so', 'libcufft.so'];
  const found: Record<string, string | undefined> = Object.fromEntries(wanted.map((w) => [w, undefined]));
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean)];
  try {
    const cache = require('node:child_process').execFileSync('ldconfig', ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }) as string;
    for (const line of cache.split('\n')) {
      const m = /^\s*(\S+) .*=> (\S+)$/.exec(line);
      if (!m) continue;
      for (const w of wanted) if (!found[w] && m[1].startsWith(w)) found[w] = m[2];
    }
  } catch {
    // no ldconfig: only LD_LIBRARY_PATH
  }
  for (const d of dirs) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(d);
    } catch {
      continue;
    }
    for (const w of wanted) if (!found[w]) {
      const n = names.find((x) => x.startsWith(w));
      if (n) found[w] = path.join(d, n);
    }
  }
  return found;
}

export async function doctorReport(): Promise<DoctorReport> {
  let version = 'unknown';
  try {
    version = JSON.parse(fs.readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')).version;
  } catch {
    /* keep unknown */
  }
  const binDir = ortBinDir();
  const providerFiles: Record<string, boolean> = {};
  for (const f of ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'])
    providerFiles[f] = fs.existsSync(path.join(binDir, f));
  const cpu = await tryProvider('cpu');
  const libs = cudaLibraries();
  const missing = cudaUnavailableReason();
  let cuda: DoctorReport['cuda'];
  if (missing) cuda = { ok: false, reason: missing, providerFiles };
  else {
    const r = await tryProvider('cuda');
    cuda = {
      ok: r.ok,
      reason: r.ok
        ? undefined
        : `the CUDA provider is installed but a session failed: ${r.error} (CUDA 12/13 runtime, cuBLAS and cuDNN 9 must be on the loader path, LD_LIBRARY_PATH)`,
      providerFiles,
    };
  }
  const lines = [
    `onnxruntime-node ${version} (${process.platform}-${process.arch}), ${os.cpus().length} CPU cores`,
    `binaries: ${binDir}`,
    `cpu:  ${cpu.ok ? 'ok' : `FAILED: ${cpu.error}`}`,
    `cuda: ${cuda.ok ? 'ok' : `not available: ${cuda.reason?.replace(/; run `gatelab doctor`$/, '')}`}`,
  ];
  if (!cuda.ok) {
    for (const [f, ok] of Object.entries(providerFiles)) lines.push(`      ${ok ? 'found  ' : 'missing'} ${f}`);
    for (const [lib, where] of Object.entries(libs)) lines.push(`      ${where ? 'found  ' : 'missing'} ${lib}${where ? ` (${where})` : ''}`);
    if (Object.values(libs).some((w) => !w)) lines.push('      (the CUDA runtime, cuBLAS and cuDNN 9 must be on the loader path: ldconfig or LD_LIBRARY_PATH)');
    if (process.env.GATELAB_CUDA_PROVIDER_DIR) lines.push(`      GATELAB_CUDA_PROVIDER_DIR=${process.env.GATELAB_CUDA_PROVIDER_DIR}`);
    if (!Object.values(providerFiles).every(Boolean))
      lines.push(
        `      to get them: the CUDA provider of ONNX Runtime ${version} for linux-x64 (e.g. the npm package`,
        `      com.github.asus4.onnxruntime.linux-x64-gpu), copied into the folder above; CUDA and cuDNN 9 libraries`,
        `      must be on LD_LIBRARY_PATH. Training falls back to the CPU with device: auto.`,
      );
  }
  return { onnxruntime: version, platform: `${process.platform}-${process.arch}`, cpus: os.cpus().length, binDir, cpu, cuda, libraries: libs, text: lines.join('\n') };
}
