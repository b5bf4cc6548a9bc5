/**
 * The demo's slow-backend guard: on wasm or cpu (no native backend, no GPU) the full demo takes
 * hours. Before any row runs, say so, measure one training step of the first row, estimate the
 * demo's training time from it, print the fix, and run the smoke-sized demo unless --full is given.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend, type BackendInfo, type BackendPreference } from '@adaptorkit/core';
import { applyOverrides, parseWith, readYaml } from './config-util.js';
import { RunConfigSchema, type RunConfig } from './config.js';
import type { DemoSpec } from './demo.js';
import { isSlowBackend, nativeFix } from './doctor.js';
import { runTrain } from './train.js';

export interface GuardOptions {
  /** --smoke was asked for. */
  smoke?: boolean;
  /** --full: run the full demo even on a slow backend. */
  full?: boolean;
  log: (line: string) => void;
}

export interface GuardResult {
  /** Whether the demo runs smoke-sized. */
  smoke: boolean;
  /** The backend the first trainer row gets (undefined when the demo has no trainer rows). */
  backend?: BackendInfo;
  /** The measured first step of the first row (slow backends, unless --smoke was asked for). */
  firstStepMs?: number;
  /** Training seconds estimated from it, for the full and the smoke demo (trainer rows). */
  estimate?: { full: number; smoke: number };
}

/** The trainer rows of the demo as run configs, full- or smoke-sized. */
async function rowConfigs(spec: DemoSpec, specDir: string, smoke: boolean): Promise<RunConfig[]> {
  const out: RunConfig[] = [];
  for (const g of spec.groups) {
    if (g.script) continue;
    for (const row of g.rows) {
      if (smoke && !row.smoke) continue;
      const file = path.resolve(specDir, row.config!);
      const sets = [...spec.set, ...row.set, ...(smoke ? [...spec.smokeSet, ...row.smokeSet] : []), `name=${row.id}`];
      out.push(parseWith(RunConfigSchema, applyOverrides(await readYaml(file), sets), `${file} (demo row ${g.id}/${row.id})`));
    }
  }
  return out;
}

/** Seconds of training for `rows` at `stepMs` per step of `ref` (a step's cost taken as proportional to its batch). */
function estimateSeconds(rows: RunConfig[], ref: RunConfig, stepMs: number): number {
  return rows.reduce((s, c) => s + (c.train.steps * c.train.batchSize * stepMs) / ref.train.batchSize, 0) / 1000;
}

const minutes = (s: number): string => (s >= 5400 ? `${(s / 3600).toFixed(1)} h` : `${Math.round(s / 60)} min`);

/** One training step of `cfg` on the active backend, in a scratch folder; its measured time in ms. */
async function measureFirstStep(cfg: RunConfig): Promise<number> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'adaptorkit-demo-guard-'));
  try {
    const one = { ...cfg, name: 'first-step', outputDir: tmp, train: { ...cfg.train, steps: 1, saveEvery: 0 } };
    const { info } = await runTrain(one, { log: () => {}, noEval: true });
    return info.medianStepMs ?? NaN;
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

export async function slowBackendGuard(spec: DemoSpec, specDir: string, o: GuardOptions): Promise<GuardResult> {
  const full = await rowConfigs(spec, specDir, false);
  const first = full[0];
  const smoke = o.smoke === true;
  if (first === undefined) return { smoke };
  const backend = await initBackend(first.backend as BackendPreference, { log: false });
  if (!isSlowBackend(backend)) return { smoke, backend };
  o.log(`slow backend: ${backend.name} (${backend.skipped.join('; ')})`);
  o.log(`  the fix (the native CPU backend, ~10x faster): ${nativeFix()}; \`adaptorkit doctor\` lists every option`);
  if (smoke) return { smoke, backend };
  const firstStepMs = await measureFirstStep(first);
  const estimate = { full: estimateSeconds(full, first, firstStepMs), smoke: estimateSeconds(await rowConfigs(spec, specDir, true), first, firstStepMs) };
  o.log(`  first step of ${first.name}: ${(firstStepMs / 1000).toFixed(1)} s measured; training alone would take about ${minutes(estimate.full)} for the full demo, ${minutes(estimate.smoke)} for the smoke-sized one`);
  o.log(o.full ? '  --full: running the full demo anyway' : '  running the smoke-sized demo (--full runs the full one anyway)');
  return { smoke: !o.full, backend, firstStepMs, estimate };
}
