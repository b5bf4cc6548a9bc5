/**
 * run.json's last word: whatever ends a run (an error, a full disk, a signal) is recorded as its
 * status, and a failure to record it never hides the error that ended the run.
 */
import type { RunInfo, RunStatus } from '../run-format.js';
import { writeJsonAtomic } from '../fsutil.js';

/** Set the final status and write run.json; a write failure is logged, never thrown. Returns whether it was written. */
export async function recordRunEnd(runJson: string, info: RunInfo, status: Exclude<RunStatus, 'running'>, detail: string | undefined, log: (l: string) => void): Promise<boolean> {
  info.status = status;
  if (detail !== undefined) info.statusDetail = detail;
  else delete info.statusDetail;
  info.finishedAt = new Date().toISOString();
  try {
    await writeJsonAtomic(runJson, info);
    return true;
  } catch (e) {
    log(`could not record status '${status}' in ${runJson}: ${(e as Error).message}`);
    return false;
  }
}

/** The message of what ended a run, for run.json. */
export const errorDetail = (err: unknown): string => (err instanceof Error ? err.message : String(err));
