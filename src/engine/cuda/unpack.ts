// Unpacks only the wanted libraries of a package, flat, into a folder: NuGet packages and wheels are
// zip files (yauzl), npm packages gzipped tarballs (tar).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import * as yauzl from 'yauzl';
import { CancelledInstall } from './fetch';
import { memberMatches } from './manifest';

/** Unpacks the members of `archive` that match `patterns` into `to` under their base names; returns those names. */
export async function unpack(archive: string, patterns: string[], to: string, signal?: AbortSignal): Promise<string[]> {
  fs.mkdirSync(to, { recursive: true });
  return /\.(tgz|tar\.gz)$/i.test(archive) ? unpackTgz(archive, patterns, to) : unpackZip(archive, patterns, to, signal);
}

async function unpackZip(archive: string, patterns: string[], to: string, signal?: AbortSignal): Promise<string[]> {
  const zip = await yauzl.openPromise(archive, { lazyEntries: true, autoClose: false });
  const out: string[] = [];
  try {
    const entries: yauzl.Entry[] = await new Promise((resolve, reject) => {
      const list: yauzl.Entry[] = [];
      zip.on('entry', (e: yauzl.Entry) => {
        if (!e.fileName.endsWith('/') && memberMatches(e.fileName, patterns)) list.push(e);
        zip.readEntry();
      });
      zip.on('end', () => resolve(list));
      zip.on('error', reject);
      zip.readEntry();
    });
    for (const e of entries) {
      if (signal?.aborted) throw new CancelledInstall();
      const name = path.posix.basename(e.fileName);
      await pipeline(await zip.openReadStreamPromise(e), fs.createWriteStream(path.join(to, name), { mode: 0o755 }));
      out.push(name);
    }
  } finally {
    zip.close();
  }
  return out;
}

async function unpackTgz(archive: string, patterns: string[], to: string): Promise<string[]> {
  const tmp = fs.mkdtempSync(path.join(to, '.tar-'));
  const out: string[] = [];
  try {
    await tar.x({ file: archive, cwd: tmp, filter: (p) => memberMatches(p, patterns) });
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const f = path.join(d, e.name);
        if (e.isDirectory()) walk(f);
        else if (e.isFile()) {
          fs.renameSync(f, path.join(to, e.name));
          fs.chmodSync(path.join(to, e.name), 0o755);
          out.push(e.name);
        }
      }
    };
    walk(tmp);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return out;
}
