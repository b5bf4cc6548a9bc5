/**
 * `adaptorkit demo`: the papers' central claims at ShapesWorld scale, side by side with honest
 * baselines, from one spec (examples/demo.yaml). Every row is an ordinary training run, in its own
 * process and its own run folder under <out>/; every number in the table is read back from those
 * folders, and each claim is checked against its group's baseline rather than asserted.
 */
import { openDemoQueue, type DemoRunner } from './demo-queue.js';
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { AdaptorkitError } from '@adaptorkit/core';
import { parseWith, readYaml } from './config-util.js';
import { resolveRunConfig } from './config/run-config.js';
import { SafeName } from './config.js';
import { readJson, writeFileAtomic, writeJsonAtomic } from './fsutil.js';
import { slowBackendGuard } from './demo-guard.js';
import { findChromium } from './report/chromium.js';
import { readRun, writeReport } from './report/index.js';
import type { RunSummary } from './run-format.js';

const Id = SafeName;

const RowSchema = z
  .object({
    id: Id.describe('Run folder name under the demo output folder.'),
    label: z.string().describe('Row label in the table.'),
    config: z.string().optional().describe('Run config YAML, relative to the demo spec (rows of a script group have none).'),
    pick: z.string().optional().describe("Script groups: the row's name in the script's JSON output."),
    set: z.array(z.string()).default([]).describe('Overrides (key.path=value) on top of the config.'),
    smokeSet: z.array(z.string()).default([]).describe('Extra overrides for --smoke.'),
    baseline: z.boolean().default(false).describe("The group's baseline: every other row is compared with it."),
    smoke: z.boolean().default(true).describe('Run this row under --smoke too.'),
    textSame: z.boolean().default(false).describe("The run's text path must measure exactly the base's text skill (a frozen LLM)."),
    expect: z.enum(['beat', 'none']).default('beat').describe("'beat': the row must beat the baseline on the group's metric by the group's margin."),
    cost: z.number().positive().optional().describe('Relative cost, only to start the longest runs first under --jobs (default: train.steps x train.batchSize; script groups first).'),
  })
  .strict();

const GroupSchema = z
  .object({
    id: Id,
    claim: z.string().describe('The claim (paper) the rows test.'),
    metric: z.string().describe("The group's headline metric, a key of eval.json's metrics (e.g. accuracy, i2t_r1)."),
    metricLabel: z.string().optional(),
    extraMetrics: z.array(z.string()).default([]).describe('Further metric keys shown in the table.'),
    margin: z.number().min(0).default(0.05).describe('How much a row must beat the baseline by (metric units).'),
    smokeMargin: z.number().min(0).optional().describe('The margin under --smoke (default: margin).'),
    baselineFrom: z
      .enum(['row', 'frozenBaseMetrics'])
      .default('row')
      .describe("'row': the group's baseline row; 'frozenBaseMetrics': each run's own score of its untouched frozen base (retrieval runs record it)."),
    note: z.string().optional().describe('A line printed under the group table.'),
    claims: z
      .array(z.object({ row: Id, beats: Id, what: z.string() }).strict())
      .default([])
      .describe("Head-to-head claims between rows on the group metric, e.g. MWA's enhancer over extractors alone."),
    script: z
      .object({
        run: z.string().describe('A node script, relative to the demo spec, run as `node <run> ...args --json <file>`.'),
        args: z.array(z.string()).default([]),
        smokeArgs: z.array(z.string()).default([]).describe('Extra arguments under --smoke, appended after args (a script should let the last of a repeated flag win).'),
      })
      .strict()
      .optional()
      .describe("An experiment that is not one trainer run per row (e.g. DAMC's composition of two models): the script trains and scores every row and writes them as JSON { rows: [{ name, metrics, trainableParams, totalParams, trainSeconds, medianStepMs, peakRssMB }] }."),
    rows: z.array(RowSchema).min(1),
  })
  .strict()
  .superRefine((g, ctx) => {
    g.rows.forEach((r, i) => {
      if (g.script && !r.pick) ctx.addIssue({ code: 'custom', path: ['rows', i, 'pick'], message: `row '${r.id}' of script group '${g.id}' needs pick (its name in the script's output)` });
      if (!g.script && !r.config) ctx.addIssue({ code: 'custom', path: ['rows', i, 'config'], message: `row '${r.id}' needs a run config` });
    });
  });

export const DemoSpecSchema = z
  .object({
    title: z.string().default('adaptorkit demo'),
    set: z.array(z.string()).default([]).describe('Overrides applied to every row.'),
    smokeSet: z.array(z.string()).default([]).describe('Overrides applied to every row under --smoke.'),
    groups: z.array(GroupSchema).min(1),
  })
  .strict();

export type DemoSpec = z.infer<typeof DemoSpecSchema>;

export interface DemoRowResult {
  group: string;
  id: string;
  label: string;
  baseline: boolean;
  dir: string;
  summary: RunSummary;
  /** metric - baseline metric (undefined for the baseline itself). */
  delta?: number;
  /** Whether the row met its expectation against the baseline (undefined when there is none). */
  beats?: boolean;
}

export interface DemoResult {
  title: string;
  smoke: boolean;
  startedAt: string;
  seconds: number;
  backend: string;
  machine: string;
  rows: DemoRowResult[];
  /** Rows that did not meet their expectation. */
  failures: string[];
  table: string;
  report?: string;
  pngs: string[];
}

export interface DemoOptions {
  specFile: string;
  out: string;
  smoke?: boolean;
  /** Run the full demo even on a slow backend (wasm, cpu), where it otherwise runs smoke-sized (demo-guard.ts). */
  full?: boolean;
  /** Only these groups (ids). */
  only?: string[];
  /** Write the report PNGs (needs Chromium; skipped with a note when absent). */
  png?: boolean;
  /**
   * Rows trained at once, each in its own process with cores/jobs native threads (default 1: one
   * row at a time with every core). On 2 cores, 2 single-threaded rows finish sooner than the same
   * rows one after the other (a row's small kernels keep 2 threads ~80% busy), but each row's own
   * step time is then its 1-thread time.
   */
  jobs?: number;
  /** Run every row as a job on this Redis queue (redis://host:port/db) for `adaptorkit worker`s (demo-queue.ts). */
  queue?: string;
  log?: (line: string) => void;
}

export async function loadDemoSpec(file: string): Promise<DemoSpec> {
  return parseWith(DemoSpecSchema, await readYaml(file), file);
}

const pct = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '–' : `${(100 * v).toFixed(1)}`);
const num = (v: number | undefined, d = 3): string => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(d));

function metricCell(v: number | undefined, key: string): string {
  if (v === undefined) return '–';
  // accuracies and recalls are fractions; anything else (perplexity) prints as is
  return /acc|r\d|recall|accuracy/i.test(key) && v <= 1 ? pct(v) : num(v);
}

const signed = (d: number, key: string): string => `${d >= 0 ? '+' : '−'}${metricCell(Math.abs(d), key)}`;

/** The markdown results table (one per group) with the run facts every row reports. */
export function demoTable(spec: DemoSpec, rows: readonly DemoRowResult[]): string {
  const out: string[] = [];
  for (const g of spec.groups) {
    const mine = rows.filter((r) => r.group === g.id);
    if (!mine.length) continue;
    const keys = [g.metric, ...g.extraMetrics];
    out.push(`**${g.claim}**`, '');
    out.push(`| row | ${keys.map((k) => (k === g.metric && g.metricLabel ? g.metricLabel : k)).join(' | ')} | vs baseline | text ppl (base → run) | text acc % (base → run) | trainable | train s | s/step | peak RSS MB |`);
    out.push(`|---|${keys.map(() => '---:').join('|')}|---:|---|---|---:|---:|---:|---:|`);
    const fb = g.baselineFrom === 'frozenBaseMetrics' ? mine.map(frozenBase).find((x) => x) : undefined;
    if (fb) out.push(`| frozen base, no training (baseline) | ${keys.map((k) => metricCell(fb[k], k)).join(' | ')} | baseline | – | – | 0 | – | – | – |`);
    for (const r of mine) {
      const m = r.summary.metrics;
      const ts = r.summary.textSkill;
      const bs = r.summary.baseTextSkill;
      const ppl = ts && bs ? `${num(bs.perplexity, 4)} → ${num(ts.perplexity, 4)}${ts.perplexity === bs.perplexity ? ' (same)' : ''}` : '–';
      const tacc = ts && bs ? `${pct(bs.textTaskAccuracy)} → ${pct(ts.textTaskAccuracy)}` : '–';
      const vs = r.baseline ? 'baseline' : r.delta === undefined ? '–' : `${signed(r.delta, g.metric)}${r.beats === false ? ' ✗' : r.beats ? ' ✓' : ''}`;
      const trainable = `${r.summary.trainableParams.toLocaleString('en-US')} (${r.summary.trainablePercent.toFixed(2)}%)`;
      const cells = keys.map((k) => metricCell(m[k], k));
      out.push(`| ${r.label} | ${cells.join(' | ')} | ${vs} | ${ppl} | ${tacc} | ${trainable} | ${num(r.summary.trainSeconds, 0)} | ${num((r.summary.medianStepMs ?? NaN) / 1000, 3)} | ${r.summary.peakRssMB ?? '–'} |`);
    }
    if (g.note) out.push('', g.note);
    out.push('');
  }
  return out.join('\n');
}

function frozenBase(r: DemoRowResult): Record<string, number> | undefined {
  return (r.summary as RunSummary & { frozenBaseMetrics?: Record<string, number> }).frozenBaseMetrics;
}

/** Compare each row with its group's baseline on the group metric. */
export function judge(spec: DemoSpec, rows: DemoRowResult[], smoke: boolean): string[] {
  const failures: string[] = [];
  for (const g of spec.groups) {
    const mine = rows.filter((r) => r.group === g.id);
    const base = mine.find((r) => r.baseline);
    const margin = smoke ? (g.smokeMargin ?? g.margin) : g.margin;
    for (const r of mine) {
      const rowSpec = g.rows.find((x) => x.id === r.id);
      if (rowSpec?.textSame) {
        const t = r.summary.textSkill;
        const bt = r.summary.baseTextSkill;
        if (!t || !bt || t.perplexity !== bt.perplexity || t.textTaskAccuracy !== bt.textTaskAccuracy) {
          failures.push(`${g.id}/${r.id}: text skill is not the base's (perplexity ${t?.perplexity} vs ${bt?.perplexity})`);
        }
      }
      if (r.baseline) continue;
      const b = g.baselineFrom === 'row' ? base?.summary.metrics[g.metric] : frozenBase(r)?.[g.metric];
      const v = r.summary.metrics[g.metric];
      if (rowSpec?.expect === 'none' && v === undefined) continue; // a reference row without the group metric (e.g. a single model in a composition group)
      if (v === undefined || b === undefined) {
        r.beats = false;
        failures.push(`${g.id}/${r.id}: metric '${g.metric}' missing (row ${v ?? 'missing'}, baseline ${b ?? 'missing'})`);
        continue;
      }
      r.delta = v - b;
      if (rowSpec?.expect === 'beat') {
        r.beats = r.delta >= margin;
        if (!r.beats) failures.push(`${g.id}/${r.id}: ${g.metric} ${v.toFixed(4)} vs baseline ${b.toFixed(4)} (needs +${margin})`);
      }
    }
    for (const c of g.claims) {
      const a = mine.find((r) => r.id === c.row);
      const z2 = mine.find((r) => r.id === c.beats);
      if (!a || !z2) continue; // a row left out (e.g. under --smoke)
      const va = a.summary.metrics[g.metric];
      const vb = z2.summary.metrics[g.metric];
      if (va === undefined || vb === undefined || !(va > vb)) {
        failures.push(`${g.id}: ${c.what}: ${a.label} ${g.metric} ${va?.toFixed(4)} does not beat ${z2.label} ${vb?.toFixed(4)}`);
      }
    }
  }
  return failures;
}

function machineLine(): string {
  const c = os.cpus();
  return `${c.length} × ${c[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.arch()}, Node ${process.version}`;
}

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const spec = await loadDemoSpec(o.specFile);
  const specDir = path.dirname(path.resolve(o.specFile));
  o = { ...o, smoke: (await slowBackendGuard(spec, specDir, { smoke: o.smoke, full: o.full, log })).smoke };
  const out = path.resolve(o.out);
  const groups = o.only?.length ? spec.groups.filter((g) => o.only!.includes(g.id)) : spec.groups;
  if (o.only?.length) {
    const unknown = o.only.filter((id) => !spec.groups.some((g) => g.id === id));
    if (unknown.length) throw new AdaptorkitError('INVALID_ARGUMENT', `--only: no group ${unknown.join(', ')} in ${o.specFile} (groups: ${spec.groups.map((g) => g.id).join(', ')})`);
  }
  // A previous demo's folder is kept as <out>.previous rather than deleted.
  if (existsSync(out)) {
    const prev = `${out}.previous`;
    await fs.rm(prev, { recursive: true, force: true });
    await fs.rename(out, prev);
    log(`moved the previous demo to ${path.relative(process.cwd(), prev) || prev}`);
  }
  if (groups.some((g) => !g.script) && !existsSync(fileURLToPath(new URL('../dist/cli.js', import.meta.url)))) {
    throw new AdaptorkitError('IO_ERROR', `the demo trains each row with the built CLI (${CLI} -> dist/cli.js), which is missing: run npm run build first`);
  }
  await fs.mkdir(out, { recursive: true });
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const runner = o.queue ? await openDemoQueue(o.queue, out, log) : undefined;
  const jobs = runner ? Number.MAX_SAFE_INTEGER : Math.max(1, Math.floor(o.jobs ?? 1)); // on a queue the workers decide how many at once
  const threads = Math.max(1, Math.floor(os.cpus().length / jobs));
  const env = jobs > 1 && !process.env['ADAPTORKIT_NATIVE_THREADS'] ? { ...process.env, ADAPTORKIT_NATIVE_THREADS: String(threads) } : process.env;
  // One task per trainer row and per script group; with jobs > 1 the longest start first (script
  // groups, then by steps x batch) and every log line carries its row's id.
  interface Task { order: number; cost: number; group: DemoSpec['groups'][number]; run: () => Promise<DemoRowResult[]> }
  const tasks: Task[] = [];
  for (const g of groups) {
    if (g.script) {
      if (o.smoke && !g.rows.some((r) => r.smoke)) continue;
      const glog = jobs > 1 ? (l: string) => log(`[${g.id}] ${l}`) : log;
      tasks.push({ order: tasks.length, cost: Infinity, group: g, run: () => runScriptGroup(g, specDir, out, !!o.smoke, glog, env, runner) });
      continue;
    }
    for (const row of g.rows) {
      if (o.smoke && !row.smoke) continue;
      const cfgFile = path.resolve(specDir, row.config!);
      const sets = [...spec.set, ...row.set, ...(o.smoke ? [...spec.smokeSet, ...row.smokeSet] : []), `name=${row.id}`, `outputDir=${JSON.stringify(out)}`];
      const cfg = resolveRunConfig(await readYaml(cfgFile), cfgFile, sets, `${cfgFile} (demo row ${g.id}/${row.id})`);
      const rlog = jobs > 1 ? (l: string) => log(`[${row.id}] ${l.trimStart()}`) : log;
      tasks.push({
        order: tasks.length,
        cost: row.cost ?? cfg.train.steps * cfg.train.batchSize,
        group: g,
        run: async () => {
          const r0 = performance.now();
          rlog(`-- ${row.label} (${cfg.method.name}, ${cfg.train.steps} steps)`);
          // Each row trains in its own process (the built CLI), so its step time and peak RSS are its own:
          // in one process, later rows inherited the memory earlier rows left (MWA's rows showed 1.1-1.4 GB
          // peak RSS after the MMA rows; alone they peak near 340 MB).
          const dir = path.resolve(cfg.outputDir, cfg.name);
          await fs.mkdir(dir, { recursive: true });
          const trainArgs = ['train', cfgFile, ...sets.flatMap((x) => ['--set', x])];
          if (runner) await runner.run(trainArgs, path.join(dir, 'train.log'), `demo row ${g.id}/${row.id}`);
          else await runChild([CLI, ...trainArgs], path.join(dir, 'train.log'), (l) => { if (!/^step \d+\//.test(l) || /step \d+\/\d+ .*ETA 0s/.test(l)) rlog(`   ${l}`); }, `demo row ${g.id}/${row.id}: adaptorkit train`, env);
          const summary = await readJson<RunSummary>(path.join(dir, 'summary.json'));
          rlog(`   ${g.metric} ${metricCell(summary.metrics[g.metric], g.metric)} in ${((performance.now() - r0) / 1000).toFixed(0)} s`);
          return [{ group: g.id, id: row.id, label: row.label, baseline: row.baseline, dir, summary }];
        },
      });
    }
  }
  const queue = jobs > 1 ? [...tasks].sort((a, b) => b.cost - a.cost) : tasks;
  if (runner) log(`${queue.length} demo tasks, all queued at once`);
  else if (jobs > 1) log(`${queue.length} runs, ${jobs} at a time (${threads} native thread${threads === 1 ? '' : 's'} each)`);
  const done: DemoRowResult[][] = [];
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (next < queue.length && failed === undefined) {
      const t = queue[next++]!;
      if (jobs === 1 && tasks[t.order - 1]?.group !== t.group) log(`\n== ${t.group.id}: ${t.group.claim}`);
      try {
        done[t.order] = await t.run();
      } catch (e) {
        failed ??= e; // let the runs already going finish; start no more
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, worker));
  } finally {
    await runner?.close();
  }
  if (failed !== undefined) throw failed;
  const rows = done.flat(); // spec order, whatever order they ran in
  const backend = rows.find((r) => r.summary.backend)?.summary.backend ?? '';
  const failures = judge({ ...spec, groups }, rows, !!o.smoke);
  const seconds = (performance.now() - t0) / 1000;
  const header = [
    `${spec.title}${o.smoke ? ' (smoke)' : ''} — ${startedAt.slice(0, 10)}, ${machineLine()}, backend ${backend}, ${Math.round(seconds)} s in all${runner ? ' (rows trained by queue workers)' : jobs > 1 ? ` (runs ${jobs} at a time, ${threads} native thread${threads === 1 ? '' : 's'} each)` : ''}`,
    '',
  ].join('\n');
  const table = header + demoTable({ ...spec, groups }, rows);
  const result: DemoResult = { title: spec.title, smoke: !!o.smoke, startedAt, seconds, backend, machine: machineLine(), rows, failures, table, pngs: [] };

  const runs = await Promise.all(rows.filter((r) => r.dir && existsSync(path.join(r.dir, 'run.json'))).map((r) => readRun(r.dir)));
  const reportFile = path.join(out, 'report.html');
  const canPng = o.png !== false && !!findChromium();
  if (runs.length) {
    // the claims table first: it also holds the rows that are not trainer runs (script groups, frozen bases)
    const preface = { title: 'Claims and results', markdown: `${table}${failures.length ? `\n\n**Not reproduced:**\n${failures.join('\n')}` : ''}` };
    const written = await writeReport(runs, reportFile, { png: canPng, pagePng: canPng, title: `${spec.title}${o.smoke ? ' (smoke)' : ''}`, preface });
    result.report = written.html;
    result.pngs = written.pngs;
    if (o.png !== false && !canPng) log('no Chromium found: wrote report.html without PNG charts (apt-get install -y chromium, or set ADAPTORKIT_CHROMIUM)');
  }
  await writeFileAtomic(path.join(out, 'results.md'), `${table}\n${failures.length ? `\nNot reproduced:\n${failures.map((f) => `- ${f}`).join('\n')}\n` : ''}`);
  await writeJsonAtomic(path.join(out, 'results.json'), { ...result, table: undefined });
  return result;
}

/** One row of a script group's JSON output. */
interface ScriptRow {
  name: string;
  metrics: Record<string, number>;
  trainableParams?: number;
  totalParams?: number;
  trainSeconds?: number;
  medianStepMs?: number;
  peakRssMB?: number;
  steps?: number;
}

/** The trainer's CLI entry (apps/trainer/bin), from src/ and from dist/ alike. */
const CLI = fileURLToPath(new URL('../bin/adaptorkit.js', import.meta.url));

/** Run `node ...args`, pass its output lines to `log`, keep them in `logFile`; a non-zero exit is an error naming `what`. */
async function runChild(args: string[], logFile: string, log: (l: string) => void, what: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const lines: string[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    const take = (b: Buffer) => {
      for (const l of b.toString().split('\n')) if (l.trim()) { lines.push(l); log(l); }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', reject);
    child.on('close', resolve);
  });
  await writeFileAtomic(logFile, `${lines.join('\n')}\n`);
  if (code !== 0) throw new AdaptorkitError('IO_ERROR', `${what} exited with code ${code} (log: ${logFile})`);
}

/** Run a script group's experiment and turn the rows it wrote into demo rows. */
async function runScriptGroup(g: DemoSpec['groups'][number], specDir: string, out: string, smoke: boolean, log: (l: string) => void, env: NodeJS.ProcessEnv, runner?: DemoRunner): Promise<DemoRowResult[]> {
  const script = g.script!;
  const dir = path.join(out, g.id);
  await fs.mkdir(dir, { recursive: true });
  const json = path.join(dir, 'rows.json');
  const file = path.resolve(specDir, script.run);
  const args = [file, ...script.args, ...(smoke ? script.smokeArgs : []), '--json', json];
  log(`-- node ${path.relative(process.cwd(), file)} ${args.slice(1).join(' ')}`);
  if (runner) {
    if (file !== CLI || args[1] !== 'compose') throw new AdaptorkitError('UNSUPPORTED', `demo group ${g.id}: only adaptorkit compose runs on a queue, not ${path.relative(process.cwd(), file)}`);
    await runner.composeFlow(args.slice(2), dir, json, `demo group ${g.id}`);
  } else {
    await runChild(args, path.join(dir, 'log.txt'), (l) => log(`   ${l}`), `demo group ${g.id}: ${path.relative(process.cwd(), file)}`, env);
  }
  const produced = (await readJson<{ rows: ScriptRow[]; backend?: string }>(json)).rows;
  const result: DemoRowResult[] = [];
  for (const row of g.rows) {
    if (smoke && !row.smoke) continue;
    const r = produced.find((x) => x.name === row.pick);
    if (!r) throw new AdaptorkitError('INVALID_CONFIG', `demo group ${g.id}: the script wrote no row '${row.pick}' (it wrote: ${produced.map((x) => x.name).join(', ')})`);
    const summary: RunSummary = {
      name: row.id, method: g.id, status: 'completed', steps: r.steps ?? 0, metrics: r.metrics,
      trainableParams: r.trainableParams ?? 0, totalParams: r.totalParams ?? 0,
      trainablePercent: r.totalParams ? (100 * (r.trainableParams ?? 0)) / r.totalParams : 0,
      trainSeconds: r.trainSeconds, medianStepMs: r.medianStepMs, peakRssMB: r.peakRssMB, backend: '',
    };
    await writeJsonAtomic(path.join(dir, `${row.id}.summary.json`), summary);
    result.push({ group: g.id, id: row.id, label: row.label, baseline: row.baseline, dir: '', summary });
  }
  return result;
}

/** Replace the text between `<!-- demo:begin -->` and `<!-- demo:end -->` in a README with `body`. */
export async function writeIntoReadme(readme: string, body: string): Promise<void> {
  const text = await fs.readFile(readme, 'utf8');
  const a = text.indexOf('<!-- demo:begin -->');
  const b = text.indexOf('<!-- demo:end -->');
  if (a < 0 || b < a) throw new AdaptorkitError('INVALID_ARGUMENT', `${readme} has no <!-- demo:begin --> ... <!-- demo:end --> block to write the table into`);
  await writeFileAtomic(readme, `${text.slice(0, a)}<!-- demo:begin -->\n${body}\n${text.slice(b)}`);
}
