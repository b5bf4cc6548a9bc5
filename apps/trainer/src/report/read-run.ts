/**
 * Read a run folder (format and schemas: ../run-format.ts) for the report: run.json, metrics.jsonl, eval.json and
 * config.yaml, each validated. A missing or corrupt file is an error naming the file (and the line
 * for metrics.jsonl). A run still running, failed or interrupted is read as it is, not refused: its
 * status is shown on the page.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseYamlText } from '../config-util.js';
import { z } from 'zod';
import { AdaptorkitError } from '@adaptorkit/core';
import { evalResultSchema, metricsLineSchema, runInfoSchema, type EvalLine, type EvalResult, type RunInfo, type StepLine } from '../run-format.js';

const finite = z.number().refine(Number.isFinite, 'expected a finite number');

/** Router weights per modality: per layer either one weight or the weights of each branch. */
export type RoutingWeights = Record<string, (number | number[])[]>;

const routingSchema = z.record(z.string(), z.array(z.union([finite, z.array(finite).min(1)])));

/** A run folder as the report sees it. */
export interface LoadedRun {
  /** The folder read. */
  dir: string;
  info: RunInfo;
  steps: StepLine[];
  evals: EvalLine[];
  /** eval.json, when the run has one. */
  final?: EvalResult;
  /** config.yaml parsed, when present. */
  config?: unknown;
  /** extras.routing, validated, when present. */
  routing?: RoutingWeights;
  /** Things tolerated while reading (e.g. a half-written last line of a running run). */
  warnings: string[];
}

function issues(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AdaptorkitError('IO_ERROR', `cannot read ${file}: ${(e as Error).message}`);
  }
}

function parseJsonFile(file: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new AdaptorkitError('BAD_FILE', `${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Read and validate one run folder. */
export async function readRun(dir: string): Promise<LoadedRun> {
  const stat = await fs.stat(dir).catch(() => undefined);
  if (!stat?.isDirectory()) {
    throw new AdaptorkitError('IO_ERROR', `run folder ${dir} does not exist (give the folder a train run wrote, e.g. runs/<name>)`);
  }
  const warnings: string[] = [];

  // run.json: required.
  const runFile = path.join(dir, 'run.json');
  const runText = await readText(runFile);
  if (runText === undefined) {
    throw new AdaptorkitError('BAD_FILE', `${runFile} is missing: ${dir} is not a run folder written by \`adaptorkit train\``);
  }
  const infoParsed = runInfoSchema.safeParse(parseJsonFile(runFile, runText));
  if (!infoParsed.success) throw new AdaptorkitError('BAD_FILE', `${runFile} is not a valid run record: ${issues(infoParsed.error)}`);
  const info: RunInfo = infoParsed.data;
  const unfinished = info.status !== 'completed';

  // metrics.jsonl: required for a completed run; an unfinished run may not have written it yet.
  const metricsFile = path.join(dir, 'metrics.jsonl');
  const metricsText = await readText(metricsFile);
  const steps: StepLine[] = [];
  const evals: EvalLine[] = [];
  if (metricsText === undefined) {
    if (!unfinished) throw new AdaptorkitError('BAD_FILE', `${metricsFile} is missing (run ${info.name} is marked completed)`);
    warnings.push(`${metricsFile} does not exist yet`);
  } else {
    const lines = metricsText.split('\n');
    const lastNonEmpty = lines.reduce((last, l, i) => (l.trim() ? i : last), -1);
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (!line.trim()) continue;
      const where = `${metricsFile}:${i + 1}`;
      let value: unknown;
      try {
        value = JSON.parse(line) as unknown;
      } catch (e) {
        // A running (or killed) run may have a half-written last line: tolerate exactly that one.
        if (unfinished && i === lastNonEmpty && !metricsText.endsWith('\n')) {
          warnings.push(`${where}: ignored a half-written last line`);
          continue;
        }
        throw new AdaptorkitError('BAD_FILE', `${where} is not valid JSON: ${(e as Error).message}`);
      }
      const r = metricsLineSchema.safeParse(value);
      if (!r.success) throw new AdaptorkitError('BAD_FILE', `${where} is not a step or eval line: ${issues(r.error)}`);
      if (r.data.kind === 'step') steps.push(r.data);
      else evals.push(r.data);
    }
  }
  steps.sort((a, b) => a.step - b.step);
  evals.sort((a, b) => a.step - b.step);

  // eval.json: optional.
  const evalFile = path.join(dir, 'eval.json');
  const evalText = await readText(evalFile);
  let final: EvalResult | undefined;
  if (evalText !== undefined) {
    const r = evalResultSchema.safeParse(parseJsonFile(evalFile, evalText));
    if (!r.success) throw new AdaptorkitError('BAD_FILE', `${evalFile} is not a valid eval result: ${issues(r.error)}`);
    final = r.data;
  }

  // config.yaml: optional, shown as a diff between runs.
  const configFile = path.join(dir, 'config.yaml');
  const configText = await readText(configFile);
  let config: unknown;
  if (configText !== undefined) {
    config = parseYamlText(configText, configFile); // the one safe loader: bounded aliases, no prototype keys
  }

  // extras.routing: optional, validated so the chart never draws garbage.
  let routing: RoutingWeights | undefined;
  const rawRouting = info.extras?.routing;
  if (rawRouting !== undefined) {
    const r = routingSchema.safeParse(rawRouting);
    if (!r.success) {
      throw new AdaptorkitError(
        'BAD_FILE',
        `${runFile}: extras.routing must map a modality to per-layer weights (numbers or arrays of numbers): ${issues(r.error)}`,
      );
    }
    routing = r.data;
  }

  return {
    dir,
    info,
    steps,
    evals,
    ...(final ? { final } : {}),
    ...(config !== undefined ? { config } : {}),
    ...(routing ? { routing } : {}),
    warnings,
  };
}

/** Read several run folders, in order; the first bad one throws. */
export async function readRuns(dirs: readonly string[]): Promise<LoadedRun[]> {
  if (dirs.length === 0) throw new AdaptorkitError('INVALID_ARGUMENT', 'report needs at least one run folder');
  const runs: LoadedRun[] = [];
  for (const d of dirs) runs.push(await readRun(d));
  return runs;
}
