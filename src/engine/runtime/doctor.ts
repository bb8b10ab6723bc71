// `gatelab doctor`: which execution providers load here and, if CUDA does not, exactly why: the
// provider (where it is, who put it there, which onnxruntime it was built for), the CUDA install,
// the NVIDIA driver and the CUDA version it runs, every library of the provider's chain that the
// loader will not find, and the library onnxruntime itself failed on. The live check (a session
// on a one-node model) runs in a child process started with the CUDA loader path, so that
// onnxruntime's own log stays out of the report and the loader path is the one trainers get.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { Graph } from '../onnx/builder';
import { Ops } from '../onnx/ops';
import { driverFits, driverInfo, DriverInfo, isSystemLibrary } from '../cuda/libs';
import { fmtSize, platformKey, platformProblem } from '../cuda/manifest';
import { planInstall } from '../cuda/install';
import { cudaDir, Installed, readInstalled } from '../cuda/state';
import { cudaCheck, CudaCheck, failedLibrary, loadError } from './device';
import { ortBinDir, ortEnv, ortLoad, ortVersion, providerFiles } from './ortload';

export interface LibraryState {
  lib: string;
  where?: string;
  neededBy?: string;
  /** opened only by some operators */
  optional?: boolean;
}

export interface DoctorReport {
  onnxruntime: string;
  platform: string;
  cpus: number;
  binDir: string;
  cpu: { ok: boolean; error?: string };
  cuda: { ok: boolean; reason?: string; failedLibrary?: string; installable: boolean };
  provider?: { dir: string; source: string; runtime?: string; cuda?: number };
  cudaDir: string;
  install?: Installed;
  driver: DriverInfo;
  /** whether the driver runs the provider's CUDA major */
  fits?: boolean;
  /** the CUDA libraries of the provider's chain (system libraries left out) */
  libraries: LibraryState[];
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

export interface ProbeResult {
  cpu: { ok: boolean; error?: string };
  cuda: { ok: boolean; tried: boolean; error?: string };
  check: Omit<CudaCheck, 'chain'> & { chain?: CudaCheck['chain'] };
  runtime?: string;
  driver: DriverInfo;
}

/**
 * The live check, in this process (the child `gatelab doctor --probe` runs it). CUDA is tried only
 * when nothing stands in its way (`tryAnyway`: regardless, to see onnxruntime's own failure).
 */
export async function probeHere(tryAnyway = false): Promise<ProbeResult> {
  const cpu = await tryProvider('cpu');
  const check = cudaCheck();
  const cuda = check.reason && !tryAnyway ? { ok: false, tried: false } : { ...(await tryProvider('cuda')), tried: true };
  return { cpu, cuda, check, runtime: ortLoad()?.runtime, driver: driverInfo() };
}

/** dist/cli.js beside this bundle, or the built one from the sources. */
export function defaultCliScript(): string {
  const candidates = [path.join(__dirname, 'cli.js'), path.resolve(__dirname, '../../../dist/cli.js')];
  return candidates.find((f) => fs.existsSync(f)) ?? candidates[0];
}

/** Runs the live check in a child started with the CUDA loader path; its stderr is onnxruntime's log. */
export function probeInChild(o: { cliScript?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<ProbeResult & { log: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [o.cliScript ?? defaultCliScript(), 'doctor', '--probe'], {
      env: { ...ortEnv(o.env ?? process.env), ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let log = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve({ ...(JSON.parse(line) as ProbeResult), log });
      } catch {
        reject(new Error(`the doctor's probe process ended (${signal ?? `exit ${code}`}) without a result: ${log.trim().split('\n').slice(-3).join(' | ')}`));
      }
    });
  });
}

export async function doctorReport(o: { cliScript?: string; env?: NodeJS.ProcessEnv } = {}): Promise<DoctorReport> {
  const env = o.env ?? process.env;
  const version = ortVersion();
  const binDir = ortBinDir();
  const probe = await probeInChild({ cliScript: o.cliScript, env });
  const check = probe.check;
  const failed = probe.cuda.tried && !probe.cuda.ok ? (failedLibrary(probe.log) ?? failedLibrary(probe.cuda.error ?? '')) : undefined;
  const dir = cudaDir(env);
  const install = readInstalled(dir);
  const driver = probe.driver;
  const libraries: LibraryState[] = [];
  if (check.chain) {
    for (const [lib, where] of Object.entries(check.chain.found)) if (!isSystemLibrary(lib)) libraries.push({ lib, where });
    for (const m of check.chain.missing) libraries.push({ lib: m.lib, neededBy: m.neededBy });
    for (const lib of check.optionalMissing ?? []) libraries.push({ lib, optional: true, neededBy: 'some operators (opened at run time)' });
  }
  const fits = check.cuda !== undefined && driver.cuda !== undefined ? driverFits(driver.cuda, check.cuda) : undefined;
  let reason = check.reason;
  if (!reason && probe.cuda.tried && !probe.cuda.ok)
    reason = failed
      ? `the CUDA provider cannot load: ${failed} is not on the loader path`
      : loadError(probe.log)
        ? `the CUDA provider failed to load: ${loadError(probe.log)}`
        : `a CUDA session failed: ${probe.cuda.error}`;
  const cuda = { ok: probe.cuda.ok, reason: probe.cuda.ok ? undefined : reason, failedLibrary: failed, installable: check.installable };

  const lines = [`onnxruntime-node ${version} (${platformKey()}), ${os.cpus().length} CPU cores`, `cpu:  ${probe.cpu.ok ? 'ok' : `FAILED: ${probe.cpu.error}`}`];
  lines.push(`cuda: ${cuda.ok ? 'ok' : `not available: ${cuda.reason}`}`);
  const p = check.provider;
  if (p) {
    const who = p.source === 'gatelab cuda install' ? `installed by \`gatelab cuda install\`${install ? ` (build ${install.build})` : ''}` : p.source === 'onnxruntime-node' ? "in onnxruntime-node's own folder" : 'named by GATELAB_CUDA_PROVIDER_DIR (gatelab.cudaProviderPath)';
    lines.push(`  provider:  ${who}`, `             ${p.dir}`);
    const have = providerFiles().filter((f) => fs.existsSync(path.join(p.dir, f)));
    if (have.length === providerFiles().length) lines.push(`             ${have.join(', ')}${check.cuda ? ` (CUDA ${check.cuda} build)` : ''}`);
    if (probe.runtime) lines.push(`  runtime:   ${probe.runtime} (onnxruntime-node's binaries beside the provider)`);
  } else lines.push('  provider:  not installed');
  if (install) {
    lines.push(`  installed: ${dir} (${install.installedAt.slice(0, 10)})`);
    for (const pk of install.packages) lines.push(`             ${pk.name} ${pk.version} (${pk.registry}, ${pk.digest.slice(0, 24)}…): ${pk.libraries.join(', ')}`);
    for (const [lib, where] of Object.entries(install.fromSystem)) lines.push(`             ${lib} from the system (${where})`);
  }
  const drv = driver.driver
    ? `NVIDIA ${driver.driver}${driver.cuda ? `, runs CUDA ${driver.cuda}` : ''}${driver.gpus.length ? ` (${driver.gpus.join(', ')})` : ''}`
    : 'no NVIDIA driver found (no nvidia-smi, no /proc/driver/nvidia/version)';
  lines.push(`  driver:    ${drv}${fits === undefined ? '' : fits ? ` — fits the CUDA ${check.cuda} provider` : ` — too old for the CUDA ${check.cuda} provider: update the driver`}`);
  if (libraries.length) {
    lines.push('  libraries the provider needs:');
    for (const l of libraries)
      lines.push(`    ${l.where ? 'found  ' : l.optional ? 'absent ' : 'MISSING'} ${l.lib}${l.where ? ` (${l.where})` : ` (needed by ${l.neededBy}${l.optional ? '; optional' : ''})`}`);
  }
  if (failed) lines.push(`  onnxruntime failed to load: ${failed}`);
  if (!cuda.ok && cuda.installable && !platformProblem()) {
    try {
      const plan = planInstall({ dir, build: install?.build });
      const todo = plan.packages.filter((x) => !x.system);
      lines.push(
        `  to fix:    gatelab cuda install${install ? ` --cuda ${install.build}` : ''}  (in VS Code: Gatelab: Set Up CUDA) — ${todo.length} package${todo.length === 1 ? '' : 's'}, ${fmtSize(todo.reduce((n, x) => n + x.spec.size, 0))}: ${todo.map((x) => `${x.spec.name} ${x.spec.version}`).join(', ')}`,
        `             (\`gatelab cuda install --dry-run\` lists URLs and digests; device: auto trains on the CPU meanwhile)`,
      );
    } catch {
      // no plan for this platform: the reason says so
    }
  }
  return {
    onnxruntime: version,
    platform: platformKey(),
    cpus: os.cpus().length,
    binDir,
    cpu: probe.cpu,
    cuda,
    provider: p ? { dir: p.dir, source: p.source, runtime: probe.runtime, cuda: check.cuda } : undefined,
    cudaDir: dir,
    install,
    driver,
    fits,
    libraries,
    text: lines.join('\n'),
  };
}
