/**
 * Configs that cannot be misread (issue 21 item 4, issue 23 items 2 and 4): unknown keys refused
 * with a hint, paths relative to the config file, forbidden keys, safe YAML everywhere, names
 * that stay inside outputDir, no run folder for a refused config, and what --resume may change.
 * The CLI cases run the built CLI (dist/), as a user would, and check exit code 2.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@adaptorkit/core';
import { applyOverrides, parseYamlText } from '../config-util.js';
import { writeTinyBases } from '../test-bases.js';
import { prepareRunDir, runTrain } from '../train.js';
import { checkResumeConfig } from './resume.js';
import { loadRunConfigFile } from './run-config.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
let tmp = '';
let lmDir = '';
let visionDir = '';

beforeAll(async () => {
  await initBackend('cpu', { log: false });
  ({ tmp, lmDir, visionDir } = await writeTinyBases('adaptorkit-config-'));
});

const quiet = (): void => {};

/** A valid run YAML in `tmp/<sub>/`, its bases given relative to that folder. */
async function writeRun(file: string, body: (rel: { lm: string; vision: string }) => string): Promise<string> {
  const f = path.join(tmp, file);
  await fs.mkdir(path.dirname(f), { recursive: true });
  const rel = { lm: path.relative(path.dirname(f), lmDir), vision: path.relative(path.dirname(f), visionDir) };
  await fs.writeFile(f, body(rel));
  return f;
}

const good = (name: string, extra = '') => (rel: { lm: string; vision: string }): string => `
name: ${name}
backend: cpu
outputDir: runs
base: { lm: ${rel.lm}, vision: ${rel.vision} }
method: { name: iaa, config: { depths: [1] } }
data: { task: vqa, evalExamples: 4, textEvalExamples: 4 }
train: { steps: 2, batchSize: 2, warmupSteps: 0, saveEvery: 0 }
${extra}`;

function cli(args: string[], cwd = tmp): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('run configs through the built CLI', () => {
  it('refuses an unknown key (a --set typo, a YAML typo, a method-config typo) with exit code 2 and a hint', async () => {
    const f = await writeRun('cli/typo.yaml', good('typo'));
    let r = cli(['train', f, '--set', 'train.stepz=1']);
    expect(r.code, r.out).toBe(2);
    expect(r.out).toMatch(/train\.stepz: unknown key \(did you mean 'train\.steps'\?\)/);
    const y = await writeRun('cli/trian.yaml', (rel) => good('trian')(rel).replace('train:', 'trian:'));
    r = cli(['train', y]);
    expect(r.code, r.out).toBe(2);
    expect(r.out).toMatch(/trian: unknown key \(did you mean 'train'\?\)/);
    const m = await writeRun('cli/dephts.yaml', (rel) => good('dephts')(rel).replace('depths:', 'dephts:'));
    r = cli(['train', m]);
    expect(r.code, r.out).toBe(2);
    expect(r.out).toMatch(/method\.config\.dephts: unknown key \(did you mean 'method\.config\.depths'\?\)/);
    r = cli(['train', f, '--set', 'data.llava.jsn=x.json']);
    expect(r.code, r.out).toBe(2);
    expect(r.out).toMatch(/data\.llava\.jsn: unknown key \(did you mean 'data\.llava\.json'\?\)/);
    for (const name of ['typo', 'trian', 'dephts']) expect(existsSync(path.join(tmp, 'cli', 'runs', name))).toBe(false);
  });

  it('refuses prototype keys, unparsable values and alias bombs as clear exit-2 errors', async () => {
    const f = await writeRun('cli/proto.yaml', good('proto'));
    for (const set of ['__proto__.x=1', 'constructor.prototype.x=1', 'train.prototype=1']) {
      const r = cli(['train', f, '--set', set]);
      expect(r.code, `${set}: ${r.out}`).toBe(2);
      expect(r.out).toMatch(/is not allowed in a config/);
    }
    let r = cli(['train', f, '--set', 'train.steps=[']);
    expect(r.code, r.out).toBe(2);
    expect(r.out).toMatch(/--set 'train\.steps=\[': the value is not valid YAML/);
    expect(r.out).not.toMatch(/YAMLParseError|\n\s+at /);
    const y = await writeRun('cli/proto-yaml.yaml', (rel) => `${good('proto2')(rel)}\n__proto__: { polluted: true }\n`);
    r = cli(['train', y]);
    expect(r.code, r.out).toBe(2);
    expect(r.out).toMatch(/__proto__: the key '__proto__' is not allowed/);
    // a run folder whose config.yaml is an alias bomb: generate and eval refuse it cleanly
    const bomb = path.join(tmp, 'cli', 'bomb-run');
    await fs.mkdir(path.join(bomb, 'final'), { recursive: true });
    let text = 'a: &a [x, x, x, x, x, x, x, x, x]\n';
    let prev = 'a';
    for (let i = 0; i < 8; i++) {
      text += `b${i}: &b${i} [${Array(9).fill(`*${prev}`).join(', ')}]\n`;
      prev = `b${i}`;
    }
    await fs.writeFile(path.join(bomb, 'config.yaml'), text);
    for (const cmd of [['generate', bomb, '--prompt', 'hi'], ['eval', bomb]]) {
      r = cli(cmd);
      expect(r.code, r.out).toBe(2);
      expect(r.out).toMatch(/config\.yaml is not valid YAML: Excessive alias count/);
    }
  });

  it("refuses the run names '.' and '..' (they would write outside outputDir)", async () => {
    const f = await writeRun('cli/dots/names.yaml', good('x'));
    for (const name of ['..', '.']) {
      const r = cli(['train', f, '--set', `name=${JSON.stringify(name)}`]);
      expect(r.code, r.out).toBe(2);
      expect(r.out).toMatch(/name: '\.' and '\.\.' are not names/);
    }
    expect(existsSync(path.join(tmp, 'cli', 'dots', 'runs', 'run.json'))).toBe(false);
    expect(existsSync(path.join(tmp, 'cli', 'dots', 'run.json'))).toBe(false);
  });

  it('a missing base folder names its config key', async () => {
    const f = await writeRun('cli/missing.yaml', (rel) => good('missing')({ ...rel, lm: 'no-such-model' }));
    const r = cli(['train', f]);
    expect(r.code, r.out).toBe(2);
    expect(r.out).toContain(`base.lm: ${path.join(tmp, 'cli', 'no-such-model')} does not exist`);
    expect(existsSync(path.join(tmp, 'cli', 'runs', 'missing'))).toBe(false);
  });
});

describe('run config resolution', () => {
  it('resolves every relative path in the file against the file, and --set paths against the working directory', async () => {
    const f = await writeRun('nested/dir/rel.yaml', (rel) => `${good('rel')(rel)}`.replace('data: {', 'data: { llava: { json: d/x.json, imageRoot: d }, '));
    const cfg = await loadRunConfigFile(f, ['base.vision=some/vision']);
    const here = path.join(tmp, 'nested', 'dir');
    expect(cfg.base.lm).toBe(lmDir);
    expect(cfg.outputDir).toBe(path.join(here, 'runs'));
    expect(cfg.data.llava!.json).toBe(path.join(here, 'd', 'x.json'));
    expect(cfg.data.llava!.imageRoot).toBe(path.join(here, 'd'));
    expect(cfg.base.vision).toBe(path.resolve('some/vision'));
    const shipped = await loadRunConfigFile(f, ['base.lm=shapesworld']);
    expect(shipped.base.lm).toBe('shapesworld');
  });

  it('applyOverrides never touches Object.prototype', () => {
    expect(() => applyOverrides({}, ['__proto__.polluted=1'])).toThrow(/not allowed/);
    expect(() => applyOverrides({}, ['constructor.prototype.polluted=1'])).toThrow(/not allowed/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(() => parseYamlText('a:\n  constructor: 1\n', 'x.yaml')).toThrow(/x\.yaml: a\.constructor: the key 'constructor' is not allowed/);
    expect(() => parseYamlText('a: 1\na: 2\n', 'x.yaml')).toThrow(/x\.yaml is not valid YAML: .*unique/i);
  });

  it('a config refused at setup leaves no run folder', async () => {
    const f = await writeRun('nofolder/run.yaml', good('refused'));
    const cfg = await loadRunConfigFile(f, ['method.config.depths=[7]']); // layer 7 of a 2-layer LM: refused by attachIaa
    await expect(runTrain(cfg, { log: quiet })).rejects.toThrow();
    expect(existsSync(path.join(tmp, 'nofolder', 'runs', 'refused'))).toBe(false);
  });

  it('--resume accepts the documented keys and refuses any other change, naming it', async () => {
    const f = await writeRun('resume/run.yaml', good('resumed'));
    const first = await runTrain(await loadRunConfigFile(f), { log: quiet, noEval: true, stopAfter: 1 });
    expect(first.info.status).toBe('interrupted');
    const changed = await loadRunConfigFile(f, ['train.lr=0.5', 'method.config.depths=[0]']);
    await expect(prepareRunDir(changed, { resume: true })).rejects.toThrow(/--resume: the config differs.*\n {2}method\.config\.depths: was \[1\], now \[0\]\n {2}train\.lr: was 0\.001, now 0\.5/);
    const longer = await loadRunConfigFile(f, ['train.steps=3', 'train.saveEvery=1', 'data.evalExamples=2']);
    const r = await runTrain(longer, { log: quiet, noEval: true, resume: true });
    expect(r.info.status).toBe('completed');
    expect(r.info.step).toBe(3);
    const base = await loadRunConfigFile(f);
    expect(() => checkResumeConfig(base, { ...base, seed: 5 }, 'x')).toThrow(/seed: was 0, now 5/);
  });
});
