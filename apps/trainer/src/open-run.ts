/** Open a finished run folder: its resolved config, the bases, the method with the trained adapter loaded. */
import * as path from 'node:path';
import { AdaptorkitError, loadAdapter } from '@adaptorkit/core';
import { TASKS, type RunConfig } from './config.js';
import { exists } from './fsutil.js';
import { readRunConfigFile, readRunInfo } from './run/files.js';
import type { RunInfo } from './run-format.js';
import { setup, type Env } from './train.js';

export interface OpenRun {
  dir: string;
  cfg: RunConfig;
  info: RunInfo;
  env: Env;
}

export async function openRun(dir: string, o: { task?: string; evalExamples?: number; log?: (l: string) => void } = {}): Promise<OpenRun> {
  const cfgFile = path.join(dir, 'config.yaml');
  if (!(await exists(cfgFile))) throw new AdaptorkitError('INVALID_ARGUMENT', `${dir} is not a run folder (no config.yaml): pass a folder written by \`adaptorkit train\``);
  const adapterDir = path.join(dir, 'final');
  if (!(await exists(adapterDir))) {
    throw new AdaptorkitError('INVALID_ARGUMENT', `run ${dir} has no final adapter (final/): it did not complete; continue it with \`adaptorkit train ${cfgFile} --resume\``);
  }
  const cfg = await readRunConfigFile(cfgFile);
  if (o.task !== undefined) {
    if (!(TASKS as readonly string[]).includes(o.task)) throw new AdaptorkitError('INVALID_ARGUMENT', `--task '${o.task}' is not a task (allowed: ${TASKS.join(', ')})`);
    cfg.data.task = o.task as RunConfig['data']['task'];
  }
  if (o.evalExamples !== undefined) {
    if (!Number.isInteger(o.evalExamples) || o.evalExamples <= 0) throw new AdaptorkitError('INVALID_ARGUMENT', `--n must be a positive integer, got ${o.evalExamples}`);
    cfg.data.evalExamples = o.evalExamples;
  }
  const env = await setup(cfg, o.log ?? (() => {}));
  await loadAdapter(adapterDir, env.system.module);
  const info = await readRunInfo(path.join(dir, 'run.json'));
  return { dir, cfg, info, env };
}
