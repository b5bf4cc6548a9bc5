/**
 * The README's "Your own model and data" recipe, run as written: the commands between
 * <!-- recipe:begin --> and <!-- recipe:end --> (but `npm ci && npm run build`, which the suite has
 * done) in a fresh folder holding only examples/llava-hf.yaml, `npx adaptorkit` being the built CLI.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = path.join(ROOT, 'apps/trainer/bin/adaptorkit.js');

/** The recipe's command lines, comments dropped. */
export function recipeCommands(readme: string): string[] {
  const m = /<!-- recipe:begin -->\n```sh\n([\s\S]*?)```\n<!-- recipe:end -->/.exec(readme);
  if (!m) throw new Error('README.md has no recipe block');
  return m[1]!.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l && l !== 'npm ci && npm run build');
}

/** A command line as argv (double-quoted arguments kept whole). */
function argv(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((x) => x[1] ?? x[2]!);
}

describe('README: your own model and data', () => {
  it('the recipe works as written', async () => {
    const cmds = recipeCommands(readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
    expect(cmds.map((c) => argv(c).slice(0, 3).join(' '))).toEqual([
      'node apps/trainer/scripts/tiny-hf.mjs my-models',
      'npx adaptorkit plan',
      'npx adaptorkit train',
      'npx adaptorkit generate',
      'npx adaptorkit chat',
    ]);
    const cwd = await fs.mkdtemp(path.join(os.tmpdir(), 'adaptorkit-recipe-'));
    await fs.mkdir(path.join(cwd, 'examples'));
    await fs.copyFile(path.join(ROOT, 'examples/llava-hf.yaml'), path.join(cwd, 'examples/llava-hf.yaml'));
    const outs: string[] = [];
    for (const line of cmds) {
      const [cmd, ...rest] = argv(line);
      let args = rest;
      if (cmd === 'npx' && args[0] === 'adaptorkit') args = [CLI, ...args.slice(1)];
      else if (cmd === 'node') args = [path.join(ROOT, args[0]!), ...args.slice(1)];
      else throw new Error(`unexpected recipe line: ${line}`);
      const input = args.includes('chat') ? 'What colour is this?\nAnd now?\n/quit\n' : '';
      const r = spawnSync(process.execPath, args, { cwd, input, encoding: 'utf8', timeout: 300_000 });
      const out = `${r.stdout}${r.stderr}`;
      expect(r.status, `${line}\n${out}`).toBe(0);
      outs.push(out);
    }
    expect(outs[1]).toMatch(/parameters: [\d,]+ \(trainable [\d,]+/);
    expect(outs[2]).toMatch(/run completed: .*runs\/llava-hf/);
    expect(outs[4]!.match(/^> /gm)).toHaveLength(2);
  }, 600_000);
});
