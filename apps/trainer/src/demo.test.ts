import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { demoTable, judge, loadDemoSpec, runDemo, writeIntoReadme, type DemoRowResult, type DemoSpec } from './demo.js';
import type { RunSummary } from './run-format.js';

const specFile = fileURLToPath(new URL('../../../examples/demo.yaml', import.meta.url));

function row(group: string, id: string, accuracy: number, baseline = false): DemoRowResult {
  const summary: RunSummary = {
    name: id, method: 'x', status: 'completed', task: 'vqa', steps: 1, metrics: { accuracy },
    textSkill: { perplexity: 2.5, textTaskAccuracy: 0.5 }, baseTextSkill: { perplexity: 2.5, textTaskAccuracy: 0.5 },
    trainableParams: 10, totalParams: 100, trainablePercent: 10, medianStepMs: 100, trainSeconds: 1, peakRssMB: 1, backend: 'cpu',
  };
  return { group, id, label: id, baseline, dir: '', summary };
}

const spec: DemoSpec = {
  title: 't', set: [], smokeSet: [],
  groups: [{ id: 'g', claim: 'c', metric: 'accuracy', extraMetrics: [], margin: 0.1, smokeMargin: 0.02, baselineFrom: 'row', claims: [{ row: 'm', beats: 'b', what: 'm over b' }], rows: [
    { id: 'b', label: 'b', config: 'x', set: [], smokeSet: [], baseline: true, smoke: true, textSame: true, expect: 'beat' },
    { id: 'm', label: 'm', config: 'x', set: [], smokeSet: [], baseline: false, smoke: true, textSame: false, expect: 'beat' },
  ] }],
};

describe('demo table and checks', () => {
  it('judges rows against the baseline with the margin (smoke margin under --smoke)', () => {
    const rows = [row('g', 'b', 0.3, true), row('g', 'm', 0.35)];
    expect(judge(spec, rows, false)).toEqual([expect.stringMatching(/g\/m: accuracy 0\.3500 vs baseline 0\.3000 \(needs \+0\.1\)/)]);
    expect(rows[1]!.beats).toBe(false);
    expect(judge(spec, rows, true)).toEqual([]);
    expect(rows[1]!.beats).toBe(true);
    const table = demoTable(spec, rows);
    expect(table).toContain('| m | 35.0 | +5.0 ✓ | 2.5000 → 2.5000 (same) |');
    expect(table).toContain('| b | 30.0 | baseline |');
  });

  it('checks text skill equality and head-to-head claims', () => {
    const rows = [row('g', 'b', 0.3, true), row('g', 'm', 0.25)];
    rows[0]!.summary.textSkill = { perplexity: 2.5000001, textTaskAccuracy: 0.5 };
    const f = judge(spec, rows, true);
    expect(f).toContain('g/b: text skill is not the base\'s (perplexity 2.5000001 vs 2.5)');
    expect(f.some((x) => /m over b: m accuracy 0\.2500 does not beat b 0\.3000/.test(x))).toBe(true);
  });

  it('reports a missing metric as a failure, not a pass', () => {
    const rows = [row('g', 'b', 0.3, true), row('g', 'm', 0.9)];
    delete (rows[1]!.summary.metrics as Record<string, number>).accuracy;
    expect(judge(spec, rows, true)[0]).toMatch(/metric 'accuracy' missing/);
  });

  it('the shipped spec parses and names configs that exist', async () => {
    const s = await loadDemoSpec(specFile);
    for (const g of s.groups) {
      if (g.script) await fs.access(path.resolve(path.dirname(specFile), g.script.run));
      for (const r of g.rows) if (r.config) await fs.access(path.resolve(path.dirname(specFile), r.config));
    }
    expect(s.groups.every((g) => g.rows.filter((r) => r.baseline).length <= 1)).toBe(true);
  });

  it('runs a script group: rows come from the JSON the script writes; a failing script or a missing row is an error', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'demo-script-'));
    // a stand-in experiment: writes two rows whose numbers depend on its arguments
    await fs.writeFile(path.join(dir, 'exp.mjs'), `
      import { writeFileSync } from 'node:fs';
      const a = process.argv.slice(2);
      if (a.includes('--fail')) { console.error('boom'); process.exit(3); }
      const k = Number(a[a.lastIndexOf('--k') + 1]);
      writeFileSync(a[a.indexOf('--json') + 1], JSON.stringify({ rows: [
        { name: 'base model', metrics: { common_acc: 0.25 }, trainableParams: 0, totalParams: 10 },
        { name: 'one input', metrics: { image_acc: 0.5 }, trainableParams: 1, totalParams: 10 },
        { name: 'merged', metrics: { common_acc: 0.25 + k }, trainableParams: 5, totalParams: 10, trainSeconds: 2, medianStepMs: 20, peakRssMB: 100 },
      ] }));
    `);
    const yaml = (args: string, pick = 'merged') => `groups:
  - id: comp
    claim: merging helps
    metric: common_acc
    script: { run: exp.mjs, args: [${args}], smokeArgs: ['--k', '0.01'] }
    rows:
      - { id: base, label: base, pick: 'base model', baseline: true }
      - { id: single, label: single, pick: 'one input', expect: none }
      - { id: merged, label: merged, pick: '${pick}' }
`;
    await fs.writeFile(path.join(dir, 'demo.yaml'), yaml("'--k', '0.5'"));
    const r = await runDemo({ specFile: path.join(dir, 'demo.yaml'), out: path.join(dir, 'out'), png: false, log: () => {} });
    expect(r.failures).toEqual([]);
    expect(r.rows.map((x) => [x.id, x.summary.metrics.common_acc])).toEqual([['base', 0.25], ['single', undefined], ['merged', 0.75]]);
    expect(r.table).toContain('| merged | 75.0 | +50.0 ✓ |');
    expect(r.table).toContain('| single | – | – |'); // a reference row without the group metric is shown, not judged
    expect(r.rows[2]!.summary.trainablePercent).toBe(50);
    // under --smoke the smoke arguments come last and win: +1 point is below the 5-point margin
    const smoke = await runDemo({ specFile: path.join(dir, 'demo.yaml'), out: path.join(dir, 'out'), smoke: true, png: false, log: () => {} });
    expect(smoke.failures).toEqual([expect.stringMatching(/comp\/merged: common_acc 0\.2600 vs baseline 0\.2500/)]);
    await fs.writeFile(path.join(dir, 'demo.yaml'), yaml("'--fail'"));
    await expect(runDemo({ specFile: path.join(dir, 'demo.yaml'), out: path.join(dir, 'out'), png: false, log: () => {} })).rejects.toThrow(/exp\.mjs exited with code 3 \(log: /);
    await fs.writeFile(path.join(dir, 'demo.yaml'), yaml("'--k', '0.5'", 'nope'));
    await expect(runDemo({ specFile: path.join(dir, 'demo.yaml'), out: path.join(dir, 'out'), png: false, log: () => {} })).rejects.toThrow(/wrote no row 'nope' \(it wrote: base model, one input, merged\)/);
    await fs.writeFile(path.join(dir, 'demo.yaml'), yaml("'--k', '0.5'").replace("pick: 'base model', ", ''));
    await expect(loadDemoSpec(path.join(dir, 'demo.yaml'))).rejects.toThrow(/rows\.0\.pick: row 'base' of script group 'comp' needs pick/);
  });

  it('--jobs: runs go two at a time with a share of the cores each; the rows come back in spec order; a failure stops the queue', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'demo-jobs-'));
    // a stand-in run: sleeps, then reports when it ran and the thread count it was given
    await fs.writeFile(path.join(dir, 'exp.mjs'), `
      import { writeFileSync, appendFileSync } from 'node:fs';
      const a = process.argv.slice(2);
      const get = (k) => a[a.lastIndexOf(k) + 1];
      const t0 = Date.now();
      await new Promise((r) => setTimeout(r, Number(get('--ms'))));
      appendFileSync(${JSON.stringify(path.join(dir, 'ran.txt'))}, get('--id') + '\\n');
      if (a.includes('--fail')) process.exit(3);
      writeFileSync(get('--json'), JSON.stringify({ rows: [
        { name: 'base', metrics: { acc: 0.25, start: t0, end: Date.now(), threads: Number(process.env.ADAPTORKIT_NATIVE_THREADS ?? 0) } },
        { name: 'run', metrics: { acc: 0.5 } },
      ] }));
    `);
    const group = (id: string, ms: number, extra = '') => `  - id: ${id}
    claim: ${id}
    metric: acc
    script: { run: exp.mjs, args: ['--id', '${id}', '--ms', '${ms}'${extra}] }
    rows:
      - { id: ${id}-base, label: base, pick: base, baseline: true }
      - { id: ${id}-run, label: run, pick: run }
`;
    await fs.writeFile(path.join(dir, 'demo.yaml'), `groups:\n${group('a', 300)}${group('b', 600)}${group('c', 300)}`);
    const saved = process.env['ADAPTORKIT_NATIVE_THREADS'];
    delete process.env['ADAPTORKIT_NATIVE_THREADS'];
    try {
      const r = await runDemo({ specFile: path.join(dir, 'demo.yaml'), out: path.join(dir, 'out'), png: false, log: () => {}, jobs: 2 });
      expect(r.failures).toEqual([]);
      expect(r.rows.map((x) => x.id)).toEqual(['a-base', 'a-run', 'b-base', 'b-run', 'c-base', 'c-run']);
      const m = (g: string) => r.rows.find((x) => x.id === `${g}-base`)!.summary.metrics as Record<string, number>;
      expect(m('a')['start']! < m('b')['end']! && m('b')['start']! < m('a')['end']!, 'a and b overlap').toBe(true);
      expect(m('c')['start']!).toBeGreaterThanOrEqual(Math.min(m('a')['end']!, m('b')['end']!) - 50); // c waits for a slot
      expect(m('a')['threads']).toBe(Math.max(1, Math.floor(os.cpus().length / 2)));
      expect(r.table).toContain('at a time');
      // a failing run: the one already going finishes, no new one starts, the error names the failure
      await fs.writeFile(path.join(dir, 'ran.txt'), '');
      await fs.writeFile(path.join(dir, 'demo.yaml'), `groups:\n${group('a', 100, ", '--fail'")}${group('b', 600)}${group('c', 10)}`);
      await expect(runDemo({ specFile: path.join(dir, 'demo.yaml'), out: path.join(dir, 'out'), png: false, log: () => {}, jobs: 2 })).rejects.toThrow(/demo group a: .*exited with code 3/);
      expect((await fs.readFile(path.join(dir, 'ran.txt'), 'utf8')).split('\n').filter(Boolean).sort()).toEqual(['a', 'b']);
    } finally {
      if (saved !== undefined) process.env['ADAPTORKIT_NATIVE_THREADS'] = saved;
    }
  });

  it('writes the table between the README markers only', async () => {
    const f = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'readme-')), 'README.md');
    await fs.writeFile(f, 'a\n<!-- demo:begin -->\nold\n<!-- demo:end -->\nb\n');
    await writeIntoReadme(f, 'new table');
    expect(await fs.readFile(f, 'utf8')).toBe('a\n<!-- demo:begin -->\nnew table\n<!-- demo:end -->\nb\n');
    await fs.writeFile(f, 'no markers');
    await expect(writeIntoReadme(f, 'x')).rejects.toThrow(/no <!-- demo:begin -->/);
  });
});
