/** Checks of a run folder made before a run loads anything (see prepareRunDir). */
import * as path from 'node:path';
import { AdaptorkitError } from '@adaptorkit/core';
import { checkResumeConfig } from '../config/resume.js';
import type { RunConfig } from '../config.js';
import { exists } from '../fsutil.js';
import { readRunConfigFile, readRunInfo } from './files.js';
import { runDirOf } from './folder.js';
import { runLockHolder } from './lock.js';

/**
 * Checks made before anything is loaded or written: the name makes one folder inside outputDir, a
 * folder holding a run needs --resume, and a resume keeps the run's config but for the keys
 * config/resume.ts lists. Creates nothing: with setup() also before the run folder is taken, a
 * refused config leaves no folder behind (withRunFolder re-checks under the lock).
 */
export async function prepareRunDir(cfg: RunConfig, o: { resume?: boolean }): Promise<string> {
  const dir = runDirOf(cfg);
  if (await runLockHolder(dir)) return dir; // another writer (or a stale lock): withRunFolder decides, naming the holder
  const runJson = path.join(dir, 'run.json');
  if (await exists(runJson)) {
    if (!o.resume) throw new AdaptorkitError('INVALID_ARGUMENT', `run folder ${dir} already holds a run: pass --resume to continue it, or choose another name`);
    await readRunInfo(runJson); // a damaged run.json is refused before anything loads
  }
  const savedFile = path.join(dir, 'config.yaml');
  if (o.resume && (await exists(savedFile))) checkResumeConfig(await readRunConfigFile(savedFile), cfg, dir);
  return dir;
}
