// `gatelab cuda install` and `gatelab cuda remove` (engine/cuda/install.ts does the work): progress
// on stderr, the result on stdout; Ctrl+C cancels with nothing installed and the partial download
// kept for the next run to resume.

import { UserError } from '../engine/errors';
import { CancelledInstall, NetworkError, Progress } from '../engine/cuda/fetch';
import { installCuda, planInstall, removeCuda } from '../engine/cuda/install';
import { fmtSize, planText } from '../engine/cuda/manifest';
import { parse } from './args';

/** Prints download progress: a line rewritten in place on a terminal, every tenth otherwise. */
export function progressPrinter(write: (s: string) => void, tty: boolean): (p: Progress) => void {
  const shown = new Map<string, number>();
  let inPlace = false;
  const line = (s: string) => {
    if (tty) write(`\r\x1b[2K${s}`);
    else write(`${s}\n`);
    inPlace = tty;
  };
  const end = () => {
    if (inPlace) write('\n');
    inPlace = false;
  };
  return (p) => {
    if (p.phase === 'download' && p.total) {
      const pct = Math.floor((100 * (p.received ?? 0)) / p.total);
      if (p.resumedAt) {
        end();
        write(`resuming ${p.package} at ${fmtSize(p.resumedAt)} of ${fmtSize(p.total)}\n`);
      }
      const step = tty ? pct : Math.floor(pct / 10) * 10;
      if (shown.get(p.package) === step) return;
      shown.set(p.package, step);
      line(`downloading ${p.package}: ${fmtSize(p.received ?? 0)} of ${fmtSize(p.total)} (${pct}%)`);
      return;
    }
    end();
    if (p.phase === 'metadata') write(`asking the registry for ${p.package}\n`);
    else if (p.phase === 'verify') write(`checking ${p.package}'s digest\n`);
    else if (p.phase === 'unpack') write(`unpacking ${p.package}\n`);
  };
}

async function install(args: string[]): Promise<number> {
  const { values } = parse(
    args,
    {
      dir: { type: 'string' },
      cuda: { type: 'string' },
      from: { type: 'string', multiple: true },
      'dry-run': { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      'provider-only': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
    'cuda install',
  );
  const o = { dir: values.dir as string | undefined, build: values.cuda as string | undefined, from: values.from as string[] | undefined };
  if (values['dry-run']) {
    const p = planInstall(o);
    process.stdout.write(values.json ? JSON.stringify({ dir: p.dir, build: p.build.id, packages: p.packages.map((x) => ({ ...x.spec, role: x.role, system: x.system })) }) + '\n' : planText(p.build, p.packages, p.dir) + '\n');
    return 0;
  }
  const ac = new AbortController();
  const onInt = () => ac.abort();
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onInt);
  const err = (s: string) => process.stderr.write(s);
  try {
    const r = await installCuda({ ...o, force: values.force as boolean, providerOnly: values['provider-only'] as boolean, signal: ac.signal, onProgress: progressPrinter(err, !!process.stderr.isTTY) });
    if (values.json) process.stdout.write(JSON.stringify({ dir: r.dir, alreadyInstalled: !!r.alreadyInstalled, downloaded: r.downloaded, installed: r.installed }) + '\n');
    else {
      const i = r.installed;
      const lines = [
        r.alreadyInstalled ? `already installed: build ${i.build} in ${r.dir} (--force reinstalls)` : `installed build ${i.build} (CUDA ${i.cuda}) for ONNX Runtime ${i.onnxruntime} in ${r.dir}`,
        ...i.packages.map((p) => `  ${p.name} ${p.version}: ${p.libraries.join(', ')}`),
        ...Object.entries(i.fromSystem).map(([l, w]) => `  ${l}: the system's (${w})`),
        r.alreadyInstalled ? '' : `${fmtSize(r.downloaded)} downloaded; \`gatelab doctor\` checks it, \`--device cuda\` uses it`,
      ].filter(Boolean);
      process.stdout.write(lines.join('\n') + '\n');
    }
    return 0;
  } catch (e) {
    if (e instanceof CancelledInstall || ac.signal.aborted) {
      err(`\ngatelab: cancelled; nothing was installed (partial downloads are kept and resume next time)\n`);
      return 130;
    }
    if (e instanceof NetworkError) {
      err(
        `gatelab: ${e.message}; nothing was installed.\n` +
          `gatelab: connect and run \`gatelab cuda install\` again (downloads resume), point GATELAB_NUGET_INDEX / GATELAB_PYPI_INDEX at a mirror,\n` +
          `gatelab: or fetch these files on another machine and pass their folder with --from:\n` +
          e.pending.map((u) => `gatelab:   ${u}\n`).join(''),
      );
      return 1;
    }
    throw e;
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onInt);
  }
}

function remove(args: string[]): number {
  const { values } = parse(args, { dir: { type: 'string' }, json: { type: 'boolean', default: false } }, 'cuda remove');
  const r = removeCuda({ dir: values.dir as string | undefined });
  if (values.json) process.stdout.write(JSON.stringify(r) + '\n');
  else if (!r.removed && r.freed === 0) process.stdout.write(`no CUDA install in ${r.dir}\n`);
  else process.stdout.write(`removed ${r.removed ? `build ${r.removed.build} (${r.removed.packages.map((p) => `${p.name} ${p.version}`).join(', ')})` : 'leftover downloads'} from ${r.dir}; ${fmtSize(r.freed)} freed\n`);
  return 0;
}

export async function cuda(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'install') return install(rest);
  if (sub === 'remove') return remove(rest);
  throw new UserError(`unknown cuda command "${sub ?? ''}"`, { key: 'cuda' }, 'use `gatelab cuda install [--dry-run]` or `gatelab cuda remove`');
}
