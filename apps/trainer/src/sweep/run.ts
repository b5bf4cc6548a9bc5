/**
 * `adaptorkit sweep <sweep.yaml>` (local: `jobs` runs at once, no server), `--queue` (enqueue and
 * return), and `adaptorkit sweep status <sweep>` (from the run folders, the source of truth,
 * plus the queue's counts when it has one).
 */
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AdaptorkitError } from '@adaptorkit/core';
import { runCli } from './child.js';
import { loadSweep, writeSweepRecord, type SweepRecord } from './config.js';
import { DEFAULT_QUEUE_NAME, VERSION, enqueueSweep, jobIdOf, parseRedisUrl, queueCounts } from './queue.js';
import { processJob } from './worker.js';

export interface LocalSweepResult {
  dir: string;
  completed: string[];
  failed: { run: string; error: string }[];
}

/** Run a sweep here, `jobs` runs at once (each a child process with cores / jobs native threads). */
export async function runSweepLocal(file: string, o: { jobs?: number; backend?: string; log?: (l: string) => void } = {}): Promise<LocalSweepResult> {
  const s = await loadSweep(file);
  const log = o.log ?? ((l: string) => console.log(l));
  await writeSweepRecord(s, VERSION);
  const jobs = Math.max(1, o.jobs ?? s.sweep.jobs);
  const threads = Math.max(1, Math.floor(os.cpus().length / jobs));
  log(`sweep ${s.sweep.name}: ${s.runs.length} runs into ${s.dir}, ${jobs} at a time (${threads} native thread${threads === 1 ? '' : 's'} each)`);
  const completed: string[] = [];
  const failed: LocalSweepResult['failed'] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < s.runs.length) {
      const r = s.runs[next++]!;
      const job = { id: jobIdOf(s.sweep.name, r.name), attemptsMade: 0, data: { kind: 'train' as const, version: VERSION, sweep: s.dir, run: r.name, base: s.base, sets: r.sets } };
      try {
        await processJob(job, { target: parseRedisUrl('redis://127.0.0.1'), concurrency: jobs, threads, ...(o.backend ? { backend: o.backend } : {}), log });
        completed.push(r.name);
      } catch (e) {
        failed.push({ run: r.name, error: (e as Error).message });
        log(`${r.name} failed: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, s.runs.length) }, worker));
  for (const c of s.sweep.commands) {
    const args = c.command.map((x) => x.replaceAll('{dir}', s.dir));
    log(`command: adaptorkit ${args.join(' ')}`);
    const r = await runCli(args, { logFile: path.join(s.dir, `${c.name}.log`), log });
    if (r.code !== 0) failed.push({ run: `command ${c.name}`, error: `exited with ${r.code ?? r.signal}` });
    else completed.push(`command ${c.name}`);
  }
  if (failed.length === 0) {
    for (const a of s.sweep.after) {
      const args = a.command.map((x) => x.replaceAll('{dir}', s.dir));
      log(`after: adaptorkit ${args.join(' ')}`);
      const r = await runCli(args, { logFile: path.join(s.dir, `${a.name}.log`), log });
      if (r.code !== 0) {
        failed.push({ run: `after ${a.name}`, error: `exited with ${r.code ?? r.signal}` });
        break;
      }
      completed.push(`after ${a.name}`);
    }
  }
  return { dir: s.dir, completed, failed };
}

/** Enqueue a sweep on Redis and return. */
export async function runSweepQueued(file: string, url: string, queueName = DEFAULT_QUEUE_NAME): Promise<{ dir: string; jobs: string[] }> {
  const s = await loadSweep(file);
  const target = parseRedisUrl(url);
  const jobs = await enqueueSweep(s, target, queueName);
  
  return { dir: s.dir, jobs };
}

export interface SweepStatusRow {
  run: string;
  status: string;
  step?: number;
  totalSteps?: number;
}

/** The sweep folder of a sweep file or folder. */
async function sweepDir(p: string): Promise<string> {
  if (existsSync(path.join(p, 'sweep.json'))) return path.resolve(p);
  if (p.endsWith('.yaml') || p.endsWith('.yml')) return (await loadSweep(p)).dir;
  throw new AdaptorkitError('IO_ERROR', `${p} is neither a sweep folder (with sweep.json) nor a sweep YAML`);
}

/** Status of every run of a sweep, read from its run folders. */
export async function sweepStatus(p: string): Promise<{ dir: string; record: SweepRecord; rows: SweepStatusRow[]; queue?: Record<string, number> }> {
  const dir = await sweepDir(p);
  const rec = JSON.parse(await fs.readFile(path.join(dir, 'sweep.json'), 'utf8')) as SweepRecord;
  const rows: SweepStatusRow[] = [];
  for (const r of rec.runs) {
    try {
      const info = JSON.parse(await fs.readFile(path.join(dir, r.name, 'run.json'), 'utf8')) as { status: string; step?: number; totalSteps?: number };
      rows.push({ run: r.name, status: info.status, ...(info.step !== undefined ? { step: info.step } : {}), ...(info.totalSteps !== undefined ? { totalSteps: info.totalSteps } : {}) });
    } catch {
      rows.push({ run: r.name, status: 'pending' });
    }
  }
  let queue: Record<string, number> | undefined;
  if (rec.queue) {
    const [url, name] = rec.queue.split('#');
    queue = await queueCounts(parseRedisUrl(url!), name).catch(() => undefined);
  }
  return { dir, record: rec, rows, ...(queue ? { queue } : {}) };
}

/** The run folders of a sweep folder (for `adaptorkit report`). */
export async function sweepRunDirs(dir: string): Promise<string[] | undefined> {
  if (!existsSync(path.join(dir, 'sweep.json'))) return undefined;
  const rec = JSON.parse(await fs.readFile(path.join(dir, 'sweep.json'), 'utf8')) as SweepRecord;
  return rec.runs.map((r) => path.join(dir, r.name)).filter((d) => existsSync(path.join(d, 'run.json')));
}
