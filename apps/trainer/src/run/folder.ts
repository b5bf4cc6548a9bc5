/**
 * A run folder taken for writing: <outputDir>/<name> (name a single safe path component), locked
 * for the whole run, refused when it holds a run and this is not a resume, cleared of the temp
 * files a killed writer left.
 */
import * as path from 'node:path';
import { AdaptorkitError } from '@adaptorkit/core';
import type { RunConfig } from '../config.js';
import { exists } from '../fsutil.js';
import { cleanTempFiles } from './checkpoints.js';
import { acquireRunLock } from './lock.js';

/** Why `name` cannot name a run folder, or undefined: one path component of letters, digits, `.`, `-`, `_`, not `.` or `..`. */
export function runNameProblem(name: string): string | undefined {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) return 'use letters, digits, dot, dash and underscore (it names the run folder)';
  if (/^\.+$/.test(name)) return `'${name}' is not a folder name: use letters or digits too (it names the run folder)`;
  return undefined;
}

/** <outputDir>/<name>, absolute; INVALID_CONFIG when the name would not be one folder inside outputDir. */
export function runDirOf(cfg: Pick<RunConfig, 'outputDir' | 'name'>): string {
  const problem = runNameProblem(cfg.name);
  const out = path.resolve(cfg.outputDir);
  const dir = path.resolve(out, cfg.name);
  if (problem || path.dirname(dir) !== out) throw new AdaptorkitError('INVALID_CONFIG', `name: ${problem ?? `'${cfg.name}' must name one folder inside outputDir`}`);
  return dir;
}

const lost = new Map<string, Error>();

/** Throw if the lock of `dir` was lost while the run held it (another writer may be in the folder). */
export function assertRunLockHeld(dir: string): void {
  const e = lost.get(dir);
  if (e) throw new AdaptorkitError('RUN_LOCKED', `lost the lock of run folder ${dir} (${e.message}): stopping so two writers never share it`);
}

/** Run `fn` on the locked run folder of `cfg`; the lock is released when it settles. */
export async function withRunFolder<T>(cfg: RunConfig, o: { resume?: boolean; log?: (l: string) => void }, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = runDirOf(cfg);
  const release = await acquireRunLock(dir, { command: o.resume ? 'train --resume' : 'train', onCompromised: (e) => lost.set(dir, e) });
  try {
    if ((await exists(path.join(dir, 'run.json'))) && !o.resume) {
      throw new AdaptorkitError('INVALID_ARGUMENT', `run folder ${dir} already holds a run: pass --resume to continue it, or choose another name`);
    }
    const removed = await cleanTempFiles(dir);
    if (removed.length) o.log?.(`removed ${removed.length} temp file(s) a stopped run left: ${removed.map((r) => path.relative(dir, r)).join(', ')}`);
    return await fn(dir);
  } finally {
    lost.delete(dir);
    await release();
  }
}
