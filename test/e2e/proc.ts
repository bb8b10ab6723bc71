// Long-running helper commands for the browser and e2e tiers, run without blocking the test worker:
// a synchronous call (execFileSync) that takes more than a minute — installing Chromium or
// code-server, packaging the VSIX — starves vitest's worker RPC ("Timeout calling onTaskUpdate").

import { spawn, SpawnOptions } from 'node:child_process';

/** Runs a command to completion; resolves with its stdout (stderr goes to ours), rejects on failure. */
export function run(cmd: string, args: string[], o: SpawnOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...o, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} ${signal ? `was killed by ${signal}` : `exited with ${code}`}`))));
  });
}

/** test/e2e/install.sh (KEY=VALUE lines on stdout) as an object. */
export async function install(onlyBrowser = false): Promise<Record<string, string>> {
  const out = await run('bash', [`${__dirname}/install.sh`], { env: { ...process.env, ...(onlyBrowser ? { GATELAB_E2E_ONLY_BROWSER: '1' } : {}) } });
  return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}
