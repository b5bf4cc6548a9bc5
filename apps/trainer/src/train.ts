/**
 * `adaptorkit train`: one config -> one run folder (see run-format.ts). The rooms:
 *   run/folder.ts      the run folder, locked for the whole run (run/lock.ts)
 *   run/lifecycle.ts   optimizer, resume, stop signals, checkpoints (run/checkpoints.ts), status, summary
 *   generative.ts      instruction batches, generation scoring, text skill (IAA, MMA, DAMC, baselines)
 *   retrieval.ts       image-caption pairs, R@K scoring (MWA)
 * This file only reads the config and hands the run to its path.
 */
import { loadRunConfigFile } from './config/run-config.js';
import type { RunConfig } from './config.js';
import { runGenerativeTrain } from './generative.js';
import { isRetrievalRun, runRetrievalTrain } from './retrieval.js';
import type { EvalResult, RunInfo } from './run-format.js';
import type { TrainOptions } from './run/lifecycle.js';

export { evaluate, finalEval, setup, textSkill, trainExamples, type Env } from './generative.js';
export { writeSummary, type TrainOptions } from './run/lifecycle.js';
export { latestCheckpoint, loadCheckpoint, saveCheckpoint } from './run/checkpoints.js';
export { runDirOf, withRunFolder } from './run/folder.js';
export { prepareRunDir } from './run/prepare.js';

/** Read a run YAML: validated, paths absolute (see config/run-config.ts). */
export async function loadRunConfig(file: string, overrides: readonly string[] = []): Promise<RunConfig> {
  return loadRunConfigFile(file, overrides);
}

export async function runTrain(cfg: RunConfig, o: TrainOptions = {}): Promise<{ dir: string; info: RunInfo; eval?: EvalResult }> {
  if (isRetrievalRun(cfg)) return runRetrievalTrain(cfg, o); // retrieval methods (MWA): image-caption pairs, R@K
  return runGenerativeTrain(cfg, o);
}
