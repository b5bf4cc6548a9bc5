/**
 * The layering lint (.dependency-cruiser.cjs, run by `npm run lint`) reports what it should: a
 * miniature monorepo in a temp folder (workspace packages linked under node_modules as npm does)
 * gets one planted violation per rule, and each must come back as an error of that rule; a clean
 * downward import must not. (That a workspace package is declared where it is imported is checked
 * by declared.test.ts.) The same check by hand: plant `import '@adaptorkit/trainer'` in any
 * packages/<pkg>/src file and run `npm run lint`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const config = path.join(root, '.dependency-cruiser.cjs');
const bin = path.join(root, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

interface Violation { from: string; to: string; rule: { name: string; severity: string }; cycle?: unknown[] }

let tmp: string;
let violations: Violation[];

function pkg(dir: string, name: string, deps: string[] = []): void {
  mkdirSync(path.join(tmp, dir, 'src'), { recursive: true });
  const dependencies = Object.fromEntries(deps.map((d) => [d, '0.1.0']));
  const manifest = { name, version: '0.1.0', type: 'module', exports: { '.': { source: './src/index.ts', default: './src/index.ts' } }, dependencies };
  writeFileSync(path.join(tmp, dir, 'package.json'), JSON.stringify(manifest));
  writeFileSync(path.join(tmp, dir, 'src/index.ts'), 'export const x = 1;\n');
  mkdirSync(path.join(tmp, 'node_modules/@adaptorkit'), { recursive: true });
  symlinkSync(path.join(tmp, dir), path.join(tmp, 'node_modules', name));
}
const file = (rel: string, text: string) => writeFileSync(path.join(tmp, rel), text);

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'adaptorkit-layering-'));
  writeFileSync(path.join(tmp, 'package.json'), JSON.stringify({ name: 'mini', private: true, workspaces: ['packages/*', 'apps/*'] }));
  pkg('packages/core', '@adaptorkit/core');
  pkg('packages/data', '@adaptorkit/data', ['@adaptorkit/core', '@adaptorkit/iaa']);
  pkg('packages/iaa', '@adaptorkit/iaa', ['@adaptorkit/core', '@adaptorkit/mma']);
  pkg('packages/mma', '@adaptorkit/mma', ['@adaptorkit/core']);
  pkg('apps/trainer', '@adaptorkit/trainer', ['@adaptorkit/core', '@adaptorkit/iaa', '@adaptorkit/mma']);
  // planted: an upward import (a package importing the app), by name and undeclared
  file('packages/core/src/upward.ts', "import { x } from '@adaptorkit/trainer';\nexport const y = x;\n");
  // planted: core -> data -> core is also a cycle across packages; data -> a method package is upward
  file('packages/data/src/upward.ts', "import { x } from '@adaptorkit/iaa';\nexport const y = x;\n");
  // planted: a method package importing another method package
  file('packages/iaa/src/sideways.ts', "import { x } from '@adaptorkit/mma';\nexport const y = x;\n");
  // planted: a cycle inside a package
  file('packages/mma/src/a.ts', "import { b } from './b.js';\nexport const a = () => b();\n");
  file('packages/mma/src/b.ts', "import { a } from './a.js';\nexport const b = () => a;\n");
  // planted: a relative import into another package
  file('packages/mma/src/relative.ts', "import { x } from '../../core/src/index.js';\nexport const y = x;\n");
  // clean: the app importing a method, a method importing core (both declared)
  file('apps/trainer/src/ok.ts', "import { x } from '@adaptorkit/iaa';\nimport { x as c } from '@adaptorkit/core';\nexport const y = x + c;\n");
  const r = spawnSync(process.execPath, [bin, 'packages', 'apps', '--config', config, '--output-type', 'json'], { cwd: tmp, encoding: 'utf8' });
  expect(r.stdout, r.stderr).toContain('"summary"');
  violations = (JSON.parse(r.stdout) as { summary: { violations: Violation[] } }).summary.violations;
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const rulesFor = (from: string) => violations.filter((v) => v.from === from || (v.cycle && v.from.startsWith(path.dirname(from)))).map((v) => v.rule.name);

describe('the layering lint reports planted violations', () => {
  it('a package importing the app', () => {
    expect(rulesFor('packages/core/src/upward.ts')).toContain('packages-not-to-apps');
  });
  it('a foundation package importing a method package (even when declared)', () => {
    expect(rulesFor('packages/data/src/upward.ts')).toContain('data-down-only');
  });
  it('a method package importing another method package (even when declared)', () => {
    expect(rulesFor('packages/iaa/src/sideways.ts')).toContain('method-not-to-method');
  });
  it('a cycle', () => {
    const cyc = violations.filter((v) => v.rule.name === 'no-circular').map((v) => v.from);
    expect(cyc).toEqual(expect.arrayContaining(['packages/mma/src/a.ts']));
  });
  it('a relative import into another package', () => {
    expect(rulesFor('packages/mma/src/relative.ts')).toContain('no-relative-cross-package');
  });
  it('every violation is an error, and clean downward imports pass', () => {
    expect(violations.every((v) => v.rule.severity === 'error')).toBe(true);
    expect(violations.filter((v) => v.from.startsWith('apps/'))).toEqual([]);
  });
});
