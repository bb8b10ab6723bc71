// A clone of the repository alone passes its tests: nothing under src/, test/ or .ci/ reads a path
// outside the repository (the team's ../shared folder is not there in a user's clone).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '../..');
const SELF = path.relative(ROOT, __filename);

function files(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && e.name !== '__snapshots__' && e.name !== 'golden') out.push(...files(rel));
    } else if (/\.(ts|mjs|js|sh|py)$|^run$/.test(e.name)) out.push(rel);
  }
  return out;
}

describe('the repository is self-contained', () => {
  const all = [...files('src'), ...files('test'), ...files('.ci')].filter((f) => f !== SELF);

  it('scans the sources, the tests and CI', () => {
    expect(all.length).toBeGreaterThan(50);
    expect(all).toContain(path.join('.ci', 'run'));
  });

  it('no file names the team folder ../shared (data, docs, gpu, hooks)', () => {
    const bad = all.flatMap((f) =>
      fs
        .readFileSync(path.join(ROOT, f), 'utf8')
        .split('\n')
        .map((line, i) => ({ f, line: i + 1, text: line }))
        .filter((l) => /shared\/(data|docs|gpu|hooks)\b/.test(l.text)),
    );
    expect(bad.map((b) => `${b.f}:${b.line}: ${b.text.trim()}`)).toEqual([]);
  });

  it('no path built from the repository root or a file\'s folder leads outside the repository', () => {
    const outside: string[] = [];
    for (const f of all) {
      const text = fs.readFileSync(path.join(ROOT, f), 'utf8');
      const base = path.dirname(path.join(ROOT, f));
      // path.resolve / path.join of __dirname or ROOT with a literal relative path
      for (const m of text.matchAll(/path\.(?:resolve|join)\(\s*(__dirname|ROOT)\s*,\s*'([^']+)'(?:\s*,\s*'([^']+)')*/g)) {
        const from = m[1] === '__dirname' ? base : ROOT;
        const target = path.resolve(from, m[2]);
        const rel = path.relative(ROOT, target);
        if (rel.startsWith('..') || path.isAbsolute(rel)) outside.push(`${f}: ${m[0]} → ${target}`);
      }
    }
    expect(outside).toEqual([]);
  });
});
