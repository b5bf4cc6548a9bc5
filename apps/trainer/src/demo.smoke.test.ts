/**
 * The smoke version of `npm run demo`, in its own vitest project ('demo-smoke', vitest.smoke.config.ts)
 * that runs after every other project (sequence.groupOrder 1), so it trains alone on the 2 CI cores:
 * about 70 s here (with larger budgets it took 131 s sharing the cores with parallel files, 121 s alone).
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadDemoSpec, runDemo } from './demo.js';
import type { RunSummary } from './run-format.js';

const specFile = fileURLToPath(new URL('../../../examples/demo.yaml', import.meta.url));

describe('npm run demo, smoke version', () => {
  // Every group but MMA runs here, each with its frozen baseline: IAA (50 steps) and MWA (40) at reduced
  // budgets, DAMC (frozen-LLM composition vs DAMC) at the demo's 80 steps with fewer examples. MMA is left out:
  // it does not beat the projector-only baseline at any budget that fits (80 steps: 30-36% vs 33%
  // for lr 2e-3 to 1e-2, rank 32, adapters before attention and FFN; packages/mma/README.md).
  it('the smoke rows beat the frozen baseline on their task by the smoke margin, text skill unchanged', async () => {
    const out = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'demo-smoke-')), 'demo');
    const r = await runDemo({ specFile, out, smoke: true, png: false, log: () => {} });
    expect(r.failures, r.table).toEqual([]);
    const s = await loadDemoSpec(specFile);
    expect(r.rows.length).toBeGreaterThanOrEqual(2);
    expect(s.groups.filter((g) => !g.rows.some((x) => x.smoke)).map((g) => g.id)).toEqual(['mma']);
    for (const g of s.groups) {
      const mine = r.rows.filter((x) => x.group === g.id);
      expect(mine.length, g.id).toBe(g.rows.filter((x) => x.smoke).length);
      if (g.id === 'mma') continue;
      // a frozen baseline (a row, or the frozen base's own scores) and at least one method judged against it
      expect(mine.some((x) => x.baseline) || g.baselineFrom === 'frozenBaseMetrics', g.id).toBe(true);
      expect(mine.filter((x) => !x.baseline).length, g.id).toBeGreaterThan(0);
      expect(mine.filter((x) => !x.baseline).every((x) => x.beats === true), g.id).toBe(true);
    }
    // rows that are not trainer runs (the DAMC composition) are in the report's results table
    const report = await fs.readFile(path.join(out, 'report.html'), 'utf8');
    expect(report).toContain('<td>DAMC (text deltas averaged, modality deltas kept)</td>');
    // the table is read back from the run folders
    const first = r.rows[0]!;
    const summary = JSON.parse(await fs.readFile(path.join(first.dir, 'summary.json'), 'utf8')) as RunSummary;
    expect(r.table).toContain(`| ${first.label} | ${(100 * summary.metrics[s.groups[0]!.metric]!).toFixed(1)} |`);
    expect(await fs.readFile(path.join(out, 'results.md'), 'utf8')).toContain(first.label);
    expect(report).toContain(first.id);
  }, 300_000);
});
