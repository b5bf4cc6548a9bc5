/**
 * The run folder's own files read back (config.yaml, run.json, checkpoints/step-N/state.json):
 * one safe loader each, used by every command, so a corrupt or hostile file is an AdaptorkitError
 * naming it (never a stack trace, never a silently wrong resume).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { AdaptorkitError } from '@adaptorkit/core';
import { formatZodError, parseWith, readYaml } from '../config-util.js';
import { RunConfigSchema, type RunConfig } from '../config.js';
import type { RunInfo } from '../run-format.js';

/** Parse a JSON file of the run folder, or BAD_FILE naming it. */
export async function readRunJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new AdaptorkitError('IO_ERROR', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new AdaptorkitError('BAD_FILE', `${file} is not valid JSON (${(e as Error).message}): the run folder is damaged; restore the file or start the run afresh`);
  }
}

function check<S extends z.ZodType>(schema: S, value: unknown, file: string, hint: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new AdaptorkitError('BAD_FILE', `${formatZodError(r.error, file)}\n${hint}`);
  return r.data;
}

/** A run's config.yaml through the same YAML loader and schema as `train` uses for its config. */
export async function readRunConfigFile(file: string): Promise<RunConfig> {
  return parseWith(RunConfigSchema, await readYaml(file), file);
}

/** The method name in a run's config.yaml, without validating the rest (undefined when absent). */
export async function readRunMethodName(file: string): Promise<string | undefined> {
  const raw = (await readYaml(file)) as { method?: { name?: unknown } } | null;
  const name = raw?.method?.name;
  return typeof name === 'string' ? name : undefined;
}

const RunInfoSchema = z
  .object({
    name: z.string(),
    method: z.string(),
    status: z.enum(['running', 'completed', 'failed', 'interrupted']),
    startedAt: z.string(),
    step: z.number().int().min(0),
    totalSteps: z.number().int().positive(),
    trainSeconds: z.number().min(0).optional(),
  })
  .loose();

/** run.json, checked for the fields the trainer reads back. */
export async function readRunInfo(file: string): Promise<RunInfo> {
  return check(RunInfoSchema, await readRunJsonFile(file), file, 'run.json is written by `adaptorkit train`; restore it or start the run afresh') as unknown as RunInfo;
}

/** A checkpoint's state.json: the optimizer step it holds (`losses` is the same step, kept for old readers). */
export const CheckpointStateSchema = z
  .object({
    step: z.number().int().positive().describe('Optimizer steps taken when the checkpoint was written.'),
    losses: z.number().int().min(0).optional(),
  })
  .strict();
export type CheckpointState = z.infer<typeof CheckpointStateSchema>;

/**
 * Read and check `<ckpt>/state.json`: a positive integer step that matches the folder name
 * (step-NNNNNN) and does not pass the run's train.steps.
 */
export async function readCheckpointState(ckpt: string, totalSteps: number): Promise<CheckpointState> {
  const file = path.join(ckpt, 'state.json');
  const hint = `remove the checkpoint folder ${ckpt} to resume from the one before it`;
  const state = check(CheckpointStateSchema, await readRunJsonFile(file), file, hint);
  if (state.step > totalSteps) {
    throw new AdaptorkitError('INVALID_CONFIG', `${file}: the checkpoint is at step ${state.step} but train.steps is ${totalSteps}: set train.steps to at least ${state.step} to resume it`);
  }
  const m = /^step-(\d+)$/.exec(path.basename(ckpt));
  if (m && Number(m[1]) !== state.step) throw new AdaptorkitError('BAD_FILE', `${file}: step ${state.step} does not match its folder ${path.basename(ckpt)}; ${hint}`);
  return state;
}
