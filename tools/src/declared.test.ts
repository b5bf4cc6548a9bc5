/**
 * Every workspace package (@adaptorkit/*) a file imports is declared in the package.json of the
 * package that file belongs to, and none is declared without being imported. dependency-cruiser
 * checks declarations of npm packages, but workspace packages resolve through their links, so
 * this test checks those: an undeclared one builds in the monorepo (it is hoisted) and breaks for
 * a user who installs the package alone; an unused one pulls its dependencies (e.g. sharp) in for nothing.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SKIP = new Set(['node_modules', 'dist', 'build', 'models', 'assets', 'native']);

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (SKIP.has(name)) continue;
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (/\.(ts|mts|mjs|js|cjs)$/.test(name)) out.push(p);
  }
  return out;
}

interface Manifest { name: string; dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>; peerDependencies?: Record<string, string>; devDependencies?: Record<string, string> }
const workspaces = ['packages', 'apps'].flatMap((d) => readdirSync(path.join(root, d)).map((n) => path.join(root, d, n))).concat([path.join(root, 'experiments')]); // not tools/: its tests plant imports on purpose
const SPEC = /(?:from\s+|import\s*\(\s*|import\s+|tryImport\(\s*)['"](@adaptorkit\/[a-z-]+)(?:\/[^'"]*)?['"]/g;

describe('workspace dependencies are declared where they are imported', () => {
  for (const dir of workspaces) {
    const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as Manifest;
    it(manifest.name, () => {
      const shipped = { ...manifest.dependencies, ...manifest.optionalDependencies, ...manifest.peerDependencies };
      const all = { ...shipped, ...manifest.devDependencies };
      const problems: string[] = [];
      const used = new Set<string>();
      for (const f of files(dir)) {
        const rel = path.relative(root, f);
        const test = /\.test\.ts$|\/testing\/|test-util|vitest\.|tsup\.config|\/fixtures\.ts$|\/test-bases\.ts$/.test(rel);
        for (const m of readFileSync(f, 'utf8').matchAll(SPEC)) {
          const dep = m[1]!;
          if (dep === manifest.name) continue;
          used.add(dep);
          if (!(dep in (test ? all : shipped))) problems.push(`${rel} imports ${dep}, which ${manifest.name} does not declare${dep in all ? ' outside devDependencies' : ''}`);
        }
      }
      for (const dep of Object.keys(all)) if (dep.startsWith('@adaptorkit/') && !used.has(dep)) problems.push(`${manifest.name} declares ${dep} but no file imports it`);
      expect(problems).toEqual([]);
    });
  }
});
