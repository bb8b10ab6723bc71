// Execution-provider discovery (issue 5): the reasons given when CUDA cannot be used.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { chooseDevice, createSession, cudaCheck, cudaFailure, DeviceChoice, failedLibrary, ortVersion, providerVersionMatches } from '../../src/engine/runtime/device';
import { calibrate, decide, syntheticFeeds } from '../../src/engine/runtime/calibrate';
import { measurePlacement, placementFromTrace } from '../../src/engine/runtime/placement';
import { buildTrainProgram } from '../../src/engine/train/program';
import { UserError } from '../../src/engine/errors';

describe('CUDA provider discovery', () => {
  const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-ep-'));

  it('a provider folder without the two libraries is reported by name', () => {
    const dir = tmp();
    const c = cudaCheck({ GATELAB_CUDA_PROVIDER_DIR: dir, GATELAB_CUDA_DIR: tmp() });
    expect(c.reason).toBe(`${dir} lacks libonnxruntime_providers_shared.so, libonnxruntime_providers_cuda.so`);
    expect(c.provider).toEqual({ dir, source: 'GATELAB_CUDA_PROVIDER_DIR' });
  });

  it('a provider built for another onnxruntime version is refused; the version string is searched across chunk boundaries', () => {
    const dir = tmp();
    const file = path.join(dir, 'libonnxruntime_providers_cuda.so');
    fs.writeFileSync(file, 'ELF … onnxruntime 1.17.3 …');
    expect(providerVersionMatches(file)).toBe(false);
    // the version string straddling the 4 MiB read size
    const big = Buffer.alloc((1 << 22) + 64, 0x20);
    Buffer.from(ortVersion()).copy(big, (1 << 22) - 2);
    const file2 = path.join(dir, 'straddle.so');
    fs.writeFileSync(file2, big);
    expect(providerVersionMatches(file2)).toBe(true);
  });

  it('device cuda without the provider is a user error with the reason; auto falls back to the CPU with it', () => {
    if (fs.existsSync(path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so'))) return;
    const env: NodeJS.ProcessEnv = { ...process.env, GATELAB_CUDA_DIR: tmp() };
    delete env.GATELAB_CUDA_PROVIDER_DIR;
    const saved = process.env;
    process.env = env;
    try {
      expect(() => chooseDevice('cuda')).toThrow(UserError);
      const auto = chooseDevice('auto');
      expect(auto.device).toBe('cpu');
      expect(auto.reason).toBe('the CUDA execution provider is not installed; run `gatelab cuda install` (in VS Code: Gatelab: Set Up CUDA)');
      expect(chooseDevice('cpu')).toEqual({ device: 'cpu' });
    } finally {
      process.env = saved;
    }
  });

  it("onnxruntime's load error is reduced to the library it could not open", () => {
    const log =
      '\x1b[1;31m2026-12-06 21:18:23.277 [E:onnxruntime:onnxruntime-node, provider_bridge_ort.cc:2146 Create] /onnxruntime_src/onnxruntime/core/session/provider_bridge_ort.cc:1988 onnxruntime::Provider& onnxruntime::ProviderLibrary::Get() [ONNXRuntimeError] : 1 : FAIL : Failed to load library /x/runtime/ab/libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot open shared object file: No such file or directory\n\x1b[m';
    expect(failedLibrary(log)).toBe('libcublasLt.so.13');
    expect(cudaFailure(new Error(log))).toBe('the CUDA provider cannot load: libcublasLt.so.13 is not on the loader path; run `gatelab cuda install` (in VS Code: Gatelab: Set Up CUDA)');
    expect(cudaFailure(new Error('CUDNN_STATUS_NOT_INITIALIZED\nmore'))).toBe('CUDA session failed: CUDNN_STATUS_NOT_INITIALIZED');
  });
});

describe('device auto: calibration between the CPU and CUDA', () => {
  const spec = { vocab: 12, embedding: 0, hidden: [16], dtype: 'float32' as const, gates: [{ kind: 'sigmoid' as const }] };
  const model = buildTrainProgram({ lm: spec, B: 4, T: 8, optimizer: { type: 'sgd', learningRate: 1 } as never, clipNorm: 1 }).graph.encode();
  const cpuSession = () => createSession(model, { device: 'cpu' });
  /** a stand-in for a CUDA session: the CPU program plus a fixed delay per run (or a failure) */
  const slowed = (s: ort.InferenceSession, extraMs: number, fail = false) =>
    ({
      inputMetadata: s.inputMetadata,
      run: async (f: Record<string, ort.Tensor>) => {
        if (fail) throw new Error('CUBLAS_STATUS_NOT_INITIALIZED');
        const r = await s.run(f);
        await new Promise((res) => setTimeout(res, extraMs));
        return r;
      },
      release: () => s.release(),
    }) as unknown as ort.InferenceSession;

  it('feeds of the program\'s own shapes, K from the steps per run', async () => {
    const { session } = await cpuSession();
    const feeds = syntheticFeeds(session, {}, { K: 3 });
    expect(feeds.x.dims).toEqual([3, 8, 4]);
    expect(feeds.x.type).toBe('int64');
    expect(feeds['p.lstm.weight_hh_l0'].dims).toEqual([64, 16]);
    const out = await session.run(feeds);
    expect(Number.isFinite((out.loss?.data as Float32Array | undefined)?.[0] ?? 0)).toBe(true);
  });

  it('keeps the CPU when CUDA is slower, and says so with both timings', async () => {
    const cuda = slowed((await cpuSession()).session, 40);
    const c = await calibrate(model, cuda, { runs: 3, stepsPerRun: 2 });
    expect(c.choice.device).toBe('cpu');
    expect(c.choice.reason).toMatch(/^calibration: a training step takes [\d.]+ ms on the CPU and [\d.]+ ms with CUDA; the CPU is [\d.]+× faster for this model$/);
    expect(c.calibration!.ms.cuda).toBeGreaterThan(c.calibration!.ms.cpu + 30);
    expect(c.session).not.toBe(cuda);
  });

  it('takes CUDA when it is faster, and the CPU with the reason when CUDA fails', async () => {
    const cuda = (await cpuSession()).session;
    const slowCpu = async (m: Uint8Array, ch: DeviceChoice) => ({ session: slowed((await createSession(m, ch)).session, 40) });
    const c = await calibrate(model, cuda, { runs: 3 }, slowCpu);
    expect(c.choice).toEqual({ device: 'cuda' });
    expect(c.session).toBe(cuda);
    const broken = await calibrate(model, slowed((await cpuSession()).session, 0, true), { runs: 1 });
    expect(broken.choice.device).toBe('cpu');
    expect(broken.choice.reason).toBe('calibration: the training program failed on CUDA (CUBLAS_STATUS_NOT_INITIALIZED)');
  });

  it('decides on ms per step', () => {
    expect(decide({ cpu: 10, cuda: 40 }, 4)).toMatchObject({ chosen: 'cpu', reason: 'calibration: a training step takes 2.50 ms on the CPU and 10.0 ms with CUDA; the CPU is 4.0× faster for this model' });
    expect(decide({ cpu: 90, cuda: 30 }).chosen).toBe('cuda');
  });
});

describe('placement: where each node of the training program runs', () => {
  it('a profiled run of the training program reports every node, Scan bodies included, on the CPU provider', async () => {
    const spec = { vocab: 12, embedding: 0, hidden: [16], dtype: 'float32' as const, gates: [{ kind: 'sigmoid' as const }] };
    const model = buildTrainProgram({ lm: spec, B: 4, T: 8, optimizer: { type: 'sgd', learningRate: 1 } as never, clipNorm: 1 }).graph.encode();
    const p = await measurePlacement(model, 'cpu', { dims: { K: 2 } });
    expect(p.allOnDevice).toBe(true);
    expect(p.elsewhere).toEqual([]);
    expect(Object.keys(p.nodesByProvider)).toEqual(['CPUExecutionProvider']);
    expect(p.nodesByProvider.CPUExecutionProvider).toBeGreaterThan(50);
  });

  it('names the nodes that ran elsewhere', () => {
    const ev = (name: string, op: string, provider: string) => [
      { cat: 'Node', name: `${name}_fence_before`, args: { op_name: op, provider } },
      { cat: 'Node', name: `${name}_kernel_time`, args: { op_name: op, provider } },
      { cat: 'Session', name: 'model_run' },
    ];
    const p = placementFromTrace([...ev('MatMul_1', 'MatMul', 'CUDAExecutionProvider'), ...ev('Scan_3', 'Scan', 'CUDAExecutionProvider'), ...ev('ReduceSum_9', 'ReduceSum', 'CPUExecutionProvider')], 'cuda');
    expect(p).toEqual({ device: 'cuda', nodesByProvider: { CUDAExecutionProvider: 2, CPUExecutionProvider: 1 }, elsewhere: ['ReduceSum ReduceSum_9'], allOnDevice: false });
  });
});
