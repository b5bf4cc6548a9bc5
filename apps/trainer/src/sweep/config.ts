/**
 * A sweep: one base run config and a set of `--set`-style overrides, expanded into named runs.
 *
 *   base: ../examples/iaa-shapes.yaml     # relative to the sweep file
 *   name: iaa-depths                      # the sweep's folder under outputDir
 *   outputDir: runs/sweeps                # relative to the sweep file; every worker must see it
 *   set: [train.steps=100]                # applied to every run
 *   grid:                                 # every combination
 *     method.config.depths: [[1], [3], [1, 3]]
 *     seed: [0, 1]
 *   runs:                                 # and/or explicit runs, each a map of overrides
 *     - { method.name: frozen }
 *   after:                                # jobs that need every run above first (a flow)
 *     - { name: compose, command: [compose, ...] }
 *
 * A run's name is derived from its overrides (`depths-1-3_seed-0`) unless it gives `name`.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { AdaptorkitError } from '@adaptorkit/core';
import { parseWith, readYaml } from '../config-util.js';
import { writeJsonAtomic } from '../fsutil.js';

const overrideValue = z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(z.unknown()), z.record(z.string(), z.unknown())]);
const overrides = z.record(z.string().regex(/^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$/, 'a config key path like train.lr'), overrideValue);

/** CLI commands a sweep's `commands` and `after` steps may run (locally and as queue jobs alike). */
export const CLI_JOB_COMMANDS: ReadonlySet<string> = new Set(['train', 'eval', 'generate', 'merge', 'merge-adapter', 'report', 'compose']);

const cliStep = (about: string) =>
  z.strictObject({
    name: z.string().min(1),
    command: z
      .array(z.string())
      .min(1)
      .refine((c) => CLI_JOB_COMMANDS.has(c[0]!), { message: `the first word must be one of ${[...CLI_JOB_COMMANDS].join(', ')}` })
      .describe(about),
  });

export const SweepSchema = z.strictObject({
  base: z.string().min(1).optional().describe('The run config every run starts from (relative to the sweep file); needed when grid or runs list runs.'),
  name: z.string().min(1).describe('The sweep folder name under outputDir.'),
  outputDir: z.string().min(1).default('runs/sweeps').describe('Where the sweep folder goes (relative to the sweep file); every worker must see this path.'),
  set: z.array(z.string()).default([]).describe('key=value overrides applied to every run.'),
  grid: z.record(z.string(), z.array(overrideValue).min(1, { message: 'a grid axis needs at least one value' })).default({}).describe('Every combination of these values.'),
  runs: z.array(overrides.and(z.object({ name: z.string().optional() }))).default([]).describe('Explicit runs, each a map of overrides (and an optional name).'),
  jobs: z.number().int().min(1).default(1).describe('Runs trained at once by a local sweep (each with cores / jobs native threads).'),
  attempts: z.number().int().min(1).max(20).default(3).describe('Tries per run on a queue before it is recorded as failed.'),
  commands: z
    .array(cliStep('adaptorkit CLI arguments; {dir} is the sweep folder.'))
    .default([])
    .describe('Other jobs that run beside the runs (adaptorkit CLI commands, e.g. one phase of a split experiment).'),
  after: z
    .array(cliStep('adaptorkit CLI arguments run once every run has finished; {dir} is the sweep folder.'))
    .default([])
    .describe('Jobs that depend on every run and command of the sweep (a BullMQ flow on a queue; run last locally), each on the one before.'),
});
export type Sweep = z.infer<typeof SweepSchema>;

/** One expanded run. */
export interface SweepRun {
  name: string;
  /** key=value overrides, in order (the sweep's `set` first). */
  sets: string[];
}

export interface ResolvedSweep {
  sweep: Sweep;
  /** Absolute path of the sweep file. */
  file: string;
  /** Absolute path of the base run config ('' when the sweep has only commands). */
  base: string;
  /** The sweep folder: outputDir/name, absolute. */
  dir: string;
  runs: SweepRun[];
}

const SAFE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** A value as a short, path-safe name fragment. */
function fragment(v: unknown): string {
  const s = Array.isArray(v) ? v.map(fragment).join('-') : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
  return s.replace(/[^A-Za-z0-9.]+/g, '-').replace(/^-+|-+$/g, '') || 'x';
}

/** `method.config.depths=[1,3]` -> `depths-1-3`: the last key segment and the value. */
export function runNameOf(over: Record<string, unknown>): string {
  const parts = Object.entries(over).map(([k, v]) => `${k.split('.').pop()}-${fragment(v)}`);
  return parts.join('_') || 'base';
}

/** `key=value` with the value as JSON (valid YAML, which applyOverrides parses back). */
export function setOf(key: string, value: unknown): string {
  return `${key}=${JSON.stringify(value)}`;
}

/** Expand grid x runs into named runs; names are unique, safe path components. */
export function expandSweep(s: Sweep): SweepRun[] {
  const axes = Object.entries(s.grid);
  let combos: Record<string, unknown>[] = [{}];
  for (const [k, values] of axes) combos = combos.flatMap((c) => values.map((v) => ({ ...c, [k]: v })));
  if (axes.length === 0) combos = s.runs.length || (s.commands.length && s.base === undefined) ? [] : [{}];
  const out: SweepRun[] = [];
  const add = (over: Record<string, unknown>, name?: string): void => {
    const n = name ?? runNameOf(over);
    if (!SAFE.test(n) || n.length > 120) throw new AdaptorkitError('INVALID_CONFIG', `sweep run name '${n}' is not a safe folder name (letters, digits, . _ -; at most 120): give the run a name`);
    if (out.some((r) => r.name === n)) throw new AdaptorkitError('INVALID_CONFIG', `sweep: two runs are named '${n}': give one of them a name`);
    out.push({ name: n, sets: [...s.set, ...Object.entries(over).map(([k, v]) => setOf(k, v))] });
  };
  for (const c of combos) add(c);
  for (const r of s.runs) {
    const { name, ...over } = r;
    add(over, name);
  }
  if (out.length === 0 && s.commands.length === 0) throw new AdaptorkitError('INVALID_CONFIG', 'sweep: neither grid, runs nor commands lists a job');
  return out;
}

/** Read, validate and expand a sweep file. */
export async function loadSweep(file: string): Promise<ResolvedSweep> {
  const raw = await readYaml(file); // the one safe loader (config-util.ts)
  const sweep = parseWith(SweepSchema, raw, file);
  if (!SAFE.test(sweep.name)) throw new AdaptorkitError('INVALID_CONFIG', `${file}: name '${sweep.name}' must be a safe folder name (letters, digits, . _ -)`);
  const here = path.dirname(path.resolve(file));
  const runs = expandSweep(sweep);
  if (runs.length > 0 && sweep.base === undefined) throw new AdaptorkitError('INVALID_CONFIG', `${file}: base: the run config the runs start from is missing`);
  const base = sweep.base === undefined ? '' : path.resolve(here, sweep.base);
  if (base) {
    await fs.access(base).catch(() => {
      throw new AdaptorkitError('IO_ERROR', `${file}: base: ${base} does not exist`);
    });
  }
  return { sweep, file: path.resolve(file), base, dir: path.join(path.resolve(here, sweep.outputDir), sweep.name), runs };
}

/** What a sweep folder records about itself (sweep.json). */
export interface SweepRecord {
  name: string;
  file: string;
  base: string;
  runs: SweepRun[];
  commands?: Sweep['commands'];
  after: Sweep['after'];
  version: string;
  queue?: string;
  createdAt: string;
}

/** Write (or refresh) the sweep folder's sweep.json. */
export async function writeSweepRecord(s: ResolvedSweep, version: string, queue?: string): Promise<void> {
  await fs.mkdir(s.dir, { recursive: true });
  const file = path.join(s.dir, 'sweep.json');
  const prev = await fs.readFile(file, 'utf8').then((t) => JSON.parse(t) as SweepRecord).catch(() => undefined);
  const rec: SweepRecord = {
    name: s.sweep.name, file: s.file, base: s.base, runs: s.runs, commands: s.sweep.commands, after: s.sweep.after, version,
    ...(queue ? { queue } : {}), createdAt: prev?.createdAt ?? new Date().toISOString(),
  };
  await writeJsonAtomic(file, rec);
}
