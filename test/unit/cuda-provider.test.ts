// The layout `gatelab cuda install` produces is the one doctor and the trainer use (issue 17): the
// real CUDA 13 provider of ONNX Runtime 1.29.0 from the npm package
// com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9, installed through the installer's own code path
// as a local package source; doctor then reports it installed and names the NVIDIA libraries the
// machine lacks; onnxruntime loads the provider from the private runtime folder (never from, or
// into, onnxruntime-node's own folder); `device: cuda` fails in one line naming the library.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { MANIFEST } from '../../src/engine/cuda/manifest';
import { failedLibrary } from '../../src/engine/runtime/device';
import type { DoctorReport } from '../../src/engine/runtime/doctor';
import { ortBinDir } from '../../src/engine/runtime/ortload';
import { providerTarball, tmpdir } from './cuda-registry';

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/cli.js');
const SPEC = MANIFEST.platforms['linux-x64'].builds.find((b) => b.id === 'cuda13-npm')!.provider;
/** The CUDA libraries the 1.29.0 CUDA 13 provider needs (readelf -d) and cuDNN, which it opens at run time. */
const NEEDED = ['libcublasLt.so.13', 'libcublas.so.13', 'libcurand.so.10', 'libcudart.so.13', 'libcuda.so.1', 'libcudnn.so.9'];

function cli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd, env: { ...process.env, ...env }, timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe.runIf(process.platform === 'linux' && process.arch === 'x64')('the CUDA 13 provider from npm, installed as a local package source', () => {
  let dir: string;
  let set: string;
  beforeAll(async () => {
    const tgz = await providerTarball();
    dir = tmpdir();
    const r = cli(['cuda', 'install', '--cuda', 'cuda13-npm', '--from', tgz, '--provider-only', '--dir', dir]);
    expect(r.stderr).toContain(`checking ${SPEC.name}'s digest`);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^installed build cuda13-npm \(CUDA 13\) for ONNX Runtime 1\.29\.0 in /);
    set = JSON.parse(fs.readFileSync(path.join(dir, 'installed.json'), 'utf8')).set;
  }, 900_000);

  it('doctor reports the provider installed and names every NVIDIA library the machine lacks', () => {
    const r = cli(['doctor', '--json'], { GATELAB_CUDA_DIR: dir });
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(report.provider).toMatchObject({ dir: path.join(dir, set), source: 'gatelab cuda install', cuda: 13 });
    expect(report.provider!.runtime!.startsWith(path.join(dir, 'runtime') + path.sep)).toBe(true);
    expect(report.install).toMatchObject({ build: 'cuda13-npm', cuda: 13, onnxruntime: '1.29.0' });
    expect(report.install!.packages.map((p) => [p.name, p.version, p.libraries])).toEqual([[SPEC.name, SPEC.version, ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so']]]);
    const byLib = new Map(report.libraries.map((l) => [l.lib, l]));
    for (const lib of NEEDED) {
      const l = byLib.get(lib);
      expect(l, lib).toBeDefined();
      if (l!.where) expect(fs.existsSync(l!.where), l!.where).toBe(true);
      else {
        expect(l!.neededBy).toMatch(/^libonnxruntime_providers_cuda\.so/);
        expect(report.text).toContain(`MISSING ${lib} (needed by`);
      }
    }
    const missing = report.libraries.filter((l) => !l.where && !l.optional).map((l) => l.lib);
    expect(report.cuda.ok).toBe(false);
    if (!byLib.get('libcuda.so.1')!.where) {
      expect(report.cuda.reason).toMatch(/^no NVIDIA driver here \(libcuda\.so\.1 not found\): install the NVIDIA driver to use CUDA/);
      for (const lib of missing.filter((l) => l !== 'libcuda.so.1')) expect(report.cuda.reason).toContain(lib);
    } else if (missing.length) expect(report.cuda.reason).toContain(missing[0]);
    // one account of the provider: it is installed, and no line says its files are missing
    expect(report.text).toContain('provider:  installed by `gatelab cuda install` (build cuda13-npm)');
    expect(report.text).not.toMatch(/missing\s+libonnxruntime_providers/i);
    expect(report.text).not.toContain('[E:onnxruntime');
  });

  it("onnxruntime loads the provider from the private runtime folder, and its error names the library that failed", () => {
    const r = cli(['doctor', '--probe', '--try-cuda'], { GATELAB_CUDA_DIR: dir });
    const probe = JSON.parse(r.stdout.trim());
    expect(probe.cuda).toMatchObject({ ok: false, tried: true });
    expect(probe.runtime.startsWith(path.join(dir, 'runtime'))).toBe(true);
    expect(r.stderr).toContain(`Failed to load library ${probe.runtime}/libonnxruntime_providers_cuda.so with error: `);
    const lib = failedLibrary(r.stderr);
    expect(probe.check.chain.missing.map((m: { lib: string }) => m.lib)).toContain(lib);
    // the runtime folder links onnxruntime-node's binaries and the installed provider; onnxruntime-node's folder is untouched
    const bin = ortBinDir();
    expect(fs.readlinkSync(path.join(probe.runtime, 'libonnxruntime.so.1'))).toBe(path.join(bin, 'libonnxruntime.so.1'));
    expect(fs.readlinkSync(path.join(probe.runtime, 'libonnxruntime_providers_cuda.so'))).toBe(path.join(dir, set, 'libonnxruntime_providers_cuda.so'));
    expect(fs.readdirSync(bin).filter((f) => f.includes('providers'))).toEqual([]);
  });

  it('device cuda fails in one line naming what is missing; commands that run onnxruntime in-process re-execute with the loader path', () => {
    const work = tmpdir('gatelab-cuda-train-');
    fs.writeFileSync(path.join(work, 'corpus.txt'), fs.readFileSync(path.join(ROOT, 'examples/data/timemachine.txt'), 'utf8').slice(0, 5000));
    fs.writeFileSync(
      path.join(work, 'm.gatelab.yaml'),
      'name: m\ntask: language-model\ndata: { source: corpus.txt, tokens: char, sequenceLength: 8 }\nmodel: { layers: [{ type: lstm, hidden: 8 }] }\ntrain: { steps: 2, batchSize: 4, optimizer: { type: sgd, learningRate: 1 } }\n',
    );
    const t = cli(['train', 'm.gatelab.yaml', '--device', 'cuda', '--no-record', '--quiet'], { GATELAB_CUDA_DIR: dir }, work);
    expect(t.code).toBe(2);
    const line = t.stderr.trim().split('\n').filter((l) => l.startsWith('gatelab:'));
    expect(line).toHaveLength(1);
    expect(line[0]).toMatch(/device cuda requested but (no NVIDIA driver here \(libcuda\.so\.1 not found\)|the CUDA provider cannot load: libcu)/);
    expect(t.stderr).not.toContain('Failed to load shared library');
    expect(t.stderr).not.toContain('started without the CUDA folder');
    // device auto trains on the CPU and says why
    const a = cli(['train', 'm.gatelab.yaml', '--device', 'auto', '--no-record', '--quiet'], { GATELAB_CUDA_DIR: dir }, work);
    expect(a.code).toBe(0);
    expect(JSON.parse(a.stdout.trim().split('\n').pop()!)).toMatchObject({ device: 'cpu' });
    // bench runs onnxruntime in its own process: it re-executes itself with the CUDA folder on the loader path
    const b = cli(['bench', '--device', 'cuda', '--only', 'C4', '--quick'], { GATELAB_CUDA_DIR: dir });
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/^gatelab: train\.device: device cuda requested but /);
    expect(b.stderr).not.toContain('started without the CUDA folder');
    const noReexec = cli(['bench', '--device', 'cuda', '--only', 'C4', '--quick'], { GATELAB_CUDA_DIR: dir, GATELAB_REEXEC: '1' });
    expect(noReexec.stderr).toContain('this process was started without the CUDA folder on LD_LIBRARY_PATH');
  });

  it('remove takes it all away; doctor then says the provider is not installed', () => {
    const r = cli(['cuda', 'remove', '--dir', dir]);
    expect(r.stdout).toMatch(new RegExp(`^removed build cuda13-npm \\(${SPEC.name.replace(/\./g, '\\.')} 0\\.4\\.9\\) from ${dir.replace(/[.]/g, '\\.')}; \\d+\\.\\d MB freed\\n$`));
    expect(fs.existsSync(dir)).toBe(false);
    const d = JSON.parse(cli(['doctor', '--json'], { GATELAB_CUDA_DIR: dir }).stdout) as DoctorReport;
    expect(d.provider).toBeUndefined();
    expect(d.cuda.reason).toBe('the CUDA execution provider is not installed; run `gatelab cuda install` (in VS Code: Gatelab: Set Up CUDA)');
  });
});
