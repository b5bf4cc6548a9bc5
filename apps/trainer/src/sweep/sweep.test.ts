import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { applyOverrides } from '../config-util.js';
import { expandSweep, loadSweep, runNameOf, setOf, SweepSchema } from './config.js';
import { checkRedis, jobIdOf, parseRedisUrl } from './queue.js';

const dir = mkdtempSync(path.join(tmpdir(), 'sweep-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sweep expansion', () => {
  it('expands a grid into every combination, then the listed runs, with names from the overrides', () => {
    const s = SweepSchema.parse({
      base: 'x.yaml', name: 's', set: ['train.steps=5'],
      grid: { 'method.config.depths': [[1], [1, 3]], 'train.seed': [0, 1] },
      runs: [{ 'method.name': 'frozen' }, { name: 'mine', 'train.lr': 0.5 }],
    });
    const runs = expandSweep(s);
    expect(runs.map((r) => r.name)).toEqual(['depths-1_seed-0', 'depths-1_seed-1', 'depths-1-3_seed-0', 'depths-1-3_seed-1', 'name-frozen', 'mine']);
    expect(runs[2]!.sets).toEqual(['train.steps=5', 'method.config.depths=[1,3]', 'train.seed=0']);
    // the sets parse back to the values they were made from
    const cfg = applyOverrides({}, runs[2]!.sets) as { method: { config: { depths: number[] } }; train: { seed: number; steps: number } };
    expect(cfg.method.config.depths).toEqual([1, 3]);
    expect(cfg.train).toEqual({ steps: 5, seed: 0 });
    expect(applyOverrides({}, [setOf('method.name', 'frozen')])).toEqual({ method: { name: 'frozen' } });
    expect(runNameOf({ 'a.b': 'x y/z' })).toBe('b-x-y-z');
  });

  it('refuses duplicate and unsafe names, empty sweeps and unknown keys', () => {
    const base = { base: 'x.yaml', name: 's' };
    expect(() => expandSweep(SweepSchema.parse({ ...base, runs: [{ name: 'a', 'train.seed': 1 }, { name: 'a', 'train.seed': 2 }] }))).toThrow(/two runs are named 'a'/);
    expect(() => expandSweep(SweepSchema.parse({ ...base, runs: [{ name: '..', 'train.seed': 1 }] }))).toThrow(/not a safe folder name/);
    expect(() => SweepSchema.parse({ ...base, grdi: {} })).toThrow();
    expect(() => expandSweep(SweepSchema.parse({ ...base, runs: [] }))).not.toThrow(); // no grid, no runs: the base itself
    expect(expandSweep(SweepSchema.parse(base)).map((r) => r.name)).toEqual(['base']);
  });

  it('loads a sweep file: paths against the file, clear errors naming it', async () => {
    writeFileSync(path.join(dir, 'base.yaml'), 'name: b\n');
    writeFileSync(path.join(dir, 'ok.yaml'), 'base: base.yaml\nname: s1\noutputDir: out\ngrid: { train.seed: [0, 1] }\n');
    const s = await loadSweep(path.join(dir, 'ok.yaml'));
    expect(s.base).toBe(path.join(dir, 'base.yaml'));
    expect(s.dir).toBe(path.join(dir, 'out', 's1'));
    expect(s.runs.map((r) => r.name)).toEqual(['seed-0', 'seed-1']);
    writeFileSync(path.join(dir, 'bad.yaml'), 'base: missing.yaml\nname: s2\n');
    await expect(loadSweep(path.join(dir, 'bad.yaml'))).rejects.toThrow(/bad.yaml: base: .*missing.yaml does not exist/);
    writeFileSync(path.join(dir, 'typo.yaml'), 'base: base.yaml\nname: s3\ngird: {}\n');
    await expect(loadSweep(path.join(dir, 'typo.yaml'))).rejects.toThrow(/typo.yaml/);
    // commands and after steps run adaptorkit CLI commands only, locally as on a queue
    writeFileSync(path.join(dir, 'cmd.yaml'), 'name: s4\ncommands: [{ name: x, command: [report, "{dir}"] }]\nafter: [{ name: y, command: [sweep, status] }]\n');
    await expect(loadSweep(path.join(dir, 'cmd.yaml'))).rejects.toThrow(/after\.0\.command: the first word must be one of train, eval/);
  });
});

describe('queue addresses', () => {
  it('parses redis URLs and refuses others', () => {
    expect(parseRedisUrl('redis://h:7000/2').connection).toEqual({ host: 'h', port: 7000, db: 2 });
    expect(parseRedisUrl('redis://u:p%40ss@h/0').connection).toEqual({ host: 'h', port: 6379, db: 0, username: 'u', password: 'p@ss' });
    expect(() => parseRedisUrl('http://h')).toThrow(/only redis:\/\//);
    expect(() => parseRedisUrl('redis://h/x')).toThrow(/database must be a number/);
    expect(jobIdOf('s', 'a:b')).toBe('s__a_b');
  });

  it('a Redis that is not there is a clear error within the timeout, not a hang', async () => {
    const t0 = Date.now();
    await expect(checkRedis(parseRedisUrl('redis://127.0.0.1:1/0'), 2000)).rejects.toThrow(/cannot reach Redis at redis:\/\/127.0.0.1:1\/0: ECONNREFUSED/);
    expect(Date.now() - t0).toBeLessThan(2500);
  });
});
