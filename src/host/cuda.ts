// "Gatelab: Set Up CUDA": the package set `gatelab cuda install` would fetch, confirmed by the user,
// downloaded with progress and cancel into the extension's global storage, then checked by the
// doctor. The work is the engine's (engine/cuda/install.ts); this file is only its VS Code face.

import * as vscode from 'vscode';
import { isUserError } from '../engine/errors';
import { CancelledInstall, NetworkError, Progress } from '../engine/cuda/fetch';
import { installCuda, planInstall } from '../engine/cuda/install';
import { fmtSize, MANIFEST, PlannedPackage, planText, platformProblem } from '../engine/cuda/manifest';
import type { DoctorReport } from '../engine/runtime/doctor';
import type { Log } from './log';

export const SET_UP_CUDA = 'Set Up CUDA';

export interface CudaSetupDeps {
  /** the CUDA folder (the extension's global storage) */
  dir: string;
  log: Log;
  doctor: () => Promise<DoctorReport>;
}

/** The packages to fetch, in words: the provider, then the NVIDIA libraries the machine lacks. */
export function describeTodo(planned: PlannedPackage[], ort: string): string {
  const one = (x: PlannedPackage) => `${x.spec.name} ${x.spec.version}, ${fmtSize(x.spec.size)}`;
  const todo = planned.filter((x) => !x.system);
  const provider = todo.filter((x) => x.role === 'provider').map(one);
  const runtime = todo.filter((x) => x.role === 'runtime').map(one);
  const parts = [provider.length ? `The CUDA provider of ONNX Runtime ${ort} (${provider.join('; ')})` : ''];
  if (runtime.length) parts.push(`${provider.length ? 'and t' : 'T'}he NVIDIA libraries this machine lacks (${runtime.join('; ')})`);
  else if (planned.some((x) => x.system)) parts.push(`${provider.length ? '; t' : 'T'}his machine has the NVIDIA libraries it needs`);
  return parts.filter(Boolean).join(' ').replace(' ; ', '; ') + '.';
}

/** Installs the CUDA set; resolves to whether CUDA is usable afterwards. */
export async function setUpCuda(d: CudaSetupDeps): Promise<boolean> {
  const problem = platformProblem();
  if (problem) {
    void vscode.window.showWarningMessage(`Gatelab: ${problem}.`);
    return false;
  }
  const plan = planInstall({ dir: d.dir });
  const todo = plan.packages.filter((x) => !x.system);
  const total = todo.reduce((n, x) => n + x.spec.size, 0);
  d.log.channel.appendLine('── Gatelab: Set Up CUDA ──');
  d.log.channel.appendLine(planText(plan.build, plan.packages, plan.dir));
  const choice = await vscode.window.showInformationMessage(
    `Set up CUDA for Gatelab: download ${todo.length} package${todo.length === 1 ? '' : 's'} (${fmtSize(total)})?`,
    {
      modal: true,
      detail: `${describeTodo(plan.packages, MANIFEST.onnxruntime)}\n\nEach is checked against its pinned digest and only its libraries are unpacked, into Gatelab's own storage (${plan.dir}); nothing else on the machine changes. The Gatelab log lists every URL and digest.`,
    },
    'Download and Install',
  );
  if (!choice) return false;
  try {
    const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Gatelab: setting up CUDA', cancellable: true }, async (progress, token) => {
      const ac = new AbortController();
      token.onCancellationRequested(() => ac.abort());
      const got = new Map<string, number>();
      let shown = 0;
      return installCuda({
        dir: d.dir,
        signal: ac.signal,
        onProgress: (p: Progress) => {
          if (p.phase === 'download' && p.total) {
            got.set(p.package, p.received ?? 0);
            const pct = total ? (100 * [...got.values()].reduce((a, b) => a + b, 0)) / total : 0;
            progress.report({ message: `${p.package}: ${fmtSize(p.received ?? 0)} of ${fmtSize(p.total)}`, increment: Math.max(0, pct - shown) });
            shown = Math.max(shown, pct);
          } else if (p.phase !== 'done') progress.report({ message: `${p.phase === 'metadata' ? 'asking the registry for' : p.phase === 'verify' ? 'checking' : 'unpacking'} ${p.package}` });
        },
      });
    });
    d.log.info(`CUDA set ${r.installed.build} installed in ${r.dir}: ${r.installed.packages.map((p) => `${p.name} ${p.version}`).join(', ')}`);
  } catch (e) {
    if (e instanceof CancelledInstall) {
      void vscode.window.showInformationMessage('Gatelab: CUDA setup cancelled; nothing was installed. Partial downloads resume next time.');
      return false;
    }
    if (e instanceof NetworkError) {
      d.log.error(`${e.message}; still to fetch:\n${e.pending.join('\n')}`);
      void vscode.window
        .showErrorMessage(`Gatelab: ${e.message}; nothing was installed. Connect and run Set Up CUDA again (downloads resume).`, 'Show Log')
        .then((c) => c && d.log.channel.show(true));
      return false;
    }
    d.log.error(`Set Up CUDA: ${(e as Error).stack ?? e}`);
    void vscode.window.showErrorMessage(`Gatelab: CUDA setup failed: ${isUserError(e) ? e.format() : (e as Error).message}`);
    return false;
  }
  const report = await d.doctor();
  d.log.channel.appendLine(report.text);
  if (report.cuda.ok) void vscode.window.showInformationMessage('Gatelab: CUDA is set up. New runs with device auto or cuda use it.');
  else void vscode.window.showWarningMessage(`Gatelab: the CUDA set is installed, but ${report.cuda.reason}`, 'Show Log').then((c) => c && d.log.channel.show(true));
  return report.cuda.ok;
}
