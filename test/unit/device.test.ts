// Execution-provider discovery (issue 5): the reasons given when CUDA cannot be used.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { chooseDevice, createSession, DeviceChoice, linkProviderDir, ortVersion, providerVersionMatches } from '../../src/engine/runtime/device';
import { calibrate, decide, syntheticFeeds } from '../../src/engine/runtime/calibrate';
import { measurePlacement, placementFromTrace } from '../../src/engine/runtime/placement';
import { buildTrainProgram } from '../../src/engine/train/program';
import { UserError } from '../../src/engine/errors';

describe('CUDA provider discovery', () => {
  it('a provider folder without the two libraries is reported by name', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-ep-'));
    expect(linkProviderDir(dir)).toBe(`GATELAB_CUDA_PROVIDER_DIR=${dir} lacks libonnxruntime_providers_shared.so, libonnxruntime_providers_cuda.so`);
  });

  it('a provider built for another onnxruntime version is refused', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatelab-ep-'));
    fs.writeFileSync(path.join(dir, 'libonnxruntime_providers_shared.so'), 'x');
    fs.writeFileSync(path.join(dir, 'libonnxruntime_providers_cuda.so'), 'ELF … onnxruntime 1.17.3 …');
    expect(providerVersionMatches(path.join(dir, 'libonnxruntime_providers_cuda.so'))).toBe(false);
    expect(linkProviderDir(dir)).toMatch(new RegExp(`not built for ONNX Runtime ${ortVersion().replace(/\./g, '\\.')}`));
    fs.writeFileSync(path.join(dir, 'libonnxruntime_providers_cuda.so'), `ELF … ${ortVersion()} …`);
    expect(providerVersionMatches(path.join(dir, 'libonnxruntime_providers_cuda.so'))).toBe(true);
  });

  it('device cuda without the provider is a user error with the reason; auto falls back to the CPU with it', () => {
    if (fs.existsSync(path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so'))) return;
    expect(() => chooseDevice('cuda')).toThrow(UserError);
    const auto = chooseDevice('auto');
    expect(auto.device).toBe('cpu');
    expect(auto.reason).toMatch(/CUDA execution provider is not installed/);
    expect(chooseDevice('cpu')).toEqual({ device: 'cpu' });
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
