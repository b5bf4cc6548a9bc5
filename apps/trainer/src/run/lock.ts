/**
 * The run-folder lock: one writer per run folder (train, --resume, a sweep worker). Built on
 * proper-lockfile (an atomic mkdir of `<run>/run.lock`, its mtime refreshed while held); the
 * holder's PID, host and start time go in `<run>/run.lock.json` so a refused writer can say who
 * holds it.
 *
 * Staleness: a holder on this host whose PID is gone (killed -9, machine crash) is stale at once;
 * a holder on another host (a shared file system) only when its lock has not been refreshed for
 * STALE_MS. That window is long on purpose: a training step runs synchronously and can keep the
 * event loop (and so the refresh) busy for minutes on a big model.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import lockfile from 'proper-lockfile';
import { AdaptorkitError } from '@adaptorkit/core';

export const LOCK_DIR = 'run.lock';
export const LOCK_INFO = 'run.lock.json';
/** A lock not refreshed for this long is stale (holders on other hosts). */
export const STALE_MS = 10 * 60_000;
/** How often the holder refreshes the lock's mtime. */
export const UPDATE_MS = 15_000;

export interface LockHolder {
  pid: number;
  host: string;
  startedAt: string;
  command?: string;
}

export interface AcquireOptions {
  /** Called if the lock is lost while held (its folder removed or refreshed by someone else): stop writing. */
  onCompromised?: (err: Error) => void;
  /** What holds it, for the refusal message of a second writer (e.g. 'train', 'sweep worker 3'). */
  command?: string;
}

/** Release the lock (idempotent). */
export type ReleaseRunLock = () => Promise<void>;

async function readHolder(dir: string): Promise<LockHolder | undefined> {
  try {
    const v = JSON.parse(await fs.readFile(path.join(dir, LOCK_INFO), 'utf8')) as Partial<LockHolder>;
    if (typeof v.pid === 'number' && Number.isInteger(v.pid) && v.pid > 0 && typeof v.host === 'string') {
      return { pid: v.pid, host: v.host, startedAt: String(v.startedAt ?? '?'), ...(typeof v.command === 'string' ? { command: v.command } : {}) };
    }
  } catch {
    /* absent or unreadable: the holder is unknown */
  }
  return undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/** Who holds the lock of `runDir`, if it is held (for messages and sweep workers). */
export async function runLockHolder(runDir: string): Promise<LockHolder | undefined> {
  const dir = path.resolve(runDir);
  const held = await fs.stat(path.join(dir, LOCK_DIR)).then(() => true, () => false);
  return held ? ((await readHolder(dir)) ?? { pid: 0, host: 'unknown', startedAt: '?' }) : undefined;
}

/**
 * Take the lock of `runDir` (created if missing) or throw RUN_LOCKED naming the holder. Hold it for
 * the whole run; the returned function releases it. The lock is also removed if the process exits.
 */
export async function acquireRunLock(runDir: string, o: AcquireOptions = {}): Promise<ReleaseRunLock> {
  const dir = path.resolve(runDir);
  await fs.mkdir(dir, { recursive: true });
  const take = (): Promise<() => Promise<void>> =>
    lockfile.lock(dir, {
      lockfilePath: path.join(dir, LOCK_DIR),
      stale: STALE_MS,
      update: UPDATE_MS,
      realpath: false,
      retries: 0,
      onCompromised: (err) => (o.onCompromised ? o.onCompromised(err) : undefined),
    });
  let release: () => Promise<void>;
  try {
    release = await take();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') {
      throw new AdaptorkitError('IO_ERROR', `cannot lock run folder ${dir}: ${(e as Error).message}`, { cause: e });
    }
    const holder = await readHolder(dir);
    if (holder && holder.host === os.hostname() && holder.pid !== process.pid && !alive(holder.pid)) {
      // the holder died without releasing (kill -9, OOM): its lock is stale now, not in STALE_MS
      await fs.rm(path.join(dir, LOCK_DIR), { recursive: true, force: true });
      return acquireRunLock(runDir, o);
    }
    const who = holder ? `process ${holder.pid} on host ${holder.host}${holder.command ? ` (${holder.command})` : ''}, since ${holder.startedAt}` : 'another process (its run.lock.json is not written yet or unreadable)';
    throw new AdaptorkitError(
      'RUN_LOCKED',
      `run folder ${dir} is in use by ${who}: wait for it to finish or stop it first. If that process is gone (a crash on another host), remove ${path.join(dir, LOCK_DIR)} or wait ${STALE_MS / 60_000} minutes for the lock to go stale.`,
    );
  }
  const info: LockHolder = { pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString(), ...(o.command ? { command: o.command } : {}) };
  try {
    await fs.writeFile(path.join(dir, LOCK_INFO), `${JSON.stringify(info, null, 2)}\n`);
  } catch (e) {
    await release().catch(() => undefined);
    throw new AdaptorkitError('IO_ERROR', `cannot write ${path.join(dir, LOCK_INFO)}: ${(e as Error).message}`, { cause: e });
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await fs.rm(path.join(dir, LOCK_INFO), { force: true }).catch(() => undefined);
    await release().catch(() => undefined); // already lost (compromised): nothing left to release
  };
}
