/**
 * Sweeps on a queue: BullMQ on Redis. `adaptorkit sweep --queue redis://host:port/db` enqueues one
 * job per run (and a flow for `after` jobs); `adaptorkit worker --queue ...` on any machine takes
 * them. BullMQ provides the distribution, stalled-job recovery (a killed worker's job returns to
 * the queue when its lock expires), retries with backoff and parent/child flows; the run folder
 * provides resume (a retried run continues from its last checkpoint) and the run lock keeps two
 * workers off one folder.
 *
 * A queue is a trust boundary: whoever can write to it runs adaptorkit commands on the workers
 * (train / eval / generate / merge / report only, with paths the job names).
 */
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { FlowProducer, Queue, type FlowJob, type JobsOptions } from 'bullmq';
import { AdaptorkitError } from '@adaptorkit/core';
import { CLI } from './child.js';
import { writeSweepRecord, type ResolvedSweep } from './config.js';

/** The adaptorkit version a queue and its workers must share. */
export const VERSION: string = (JSON.parse(readFileSync(path.join(path.dirname(path.dirname(CLI)), 'package.json'), 'utf8')) as { version: string }).version;

export const DEFAULT_QUEUE_NAME = 'adaptorkit';

/** What a job asks a worker to do. */
export type JobData =
  | { kind: 'train'; version: string; sweep: string; run: string; base: string; sets: string[] }
  | { kind: 'cli'; version: string; sweep: string; name: string; args: string[]; logFile: string };

/** CLI commands a `cli` job may run: the ones a sweep file may name (checked when it is read). */
export { CLI_JOB_COMMANDS } from './config.js';

export interface RedisTarget {
  url: string;
  connection: { host: string; port: number; db: number; password?: string; username?: string };
}

/** Parse redis://[user:password@]host[:port][/db]. */
export function parseRedisUrl(url: string): RedisTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new AdaptorkitError('INVALID_ARGUMENT', `--queue '${url}': expected redis://host:port/db`);
  }
  if (u.protocol !== 'redis:') throw new AdaptorkitError('INVALID_ARGUMENT', `--queue '${url}': only redis:// URLs are supported`);
  const db = u.pathname && u.pathname !== '/' ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new AdaptorkitError('INVALID_ARGUMENT', `--queue '${url}': the database must be a number, e.g. redis://localhost:6379/0`);
  const port = u.port ? Number(u.port) : 6379;
  const connection: RedisTarget['connection'] = { host: u.hostname || '127.0.0.1', port, db };
  if (u.password) connection.password = decodeURIComponent(u.password);
  if (u.username) connection.username = decodeURIComponent(u.username);
  return { url: `redis://${connection.host}:${port}/${db}`, connection };
}

/**
 * Check that Redis answers within `timeoutMs` (a PING over a plain socket), so a wrong address is a
 * clear error instead of a client retrying for ever.
 */
export async function checkRedis(t: RedisTarget, timeoutMs = 3000): Promise<void> {
  const { host, port, password, username } = t.connection;
  await new Promise<void>((resolve, reject) => {
    const sock = net.connect({ host, port });
    let buf = '';
    const fail = (why: string): void => {
      sock.destroy();
      reject(new AdaptorkitError('IO_ERROR', `cannot reach Redis at ${t.url}: ${why} (is redis-server running there? start one with: redis-server --port ${port})`));
    };
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    sock.on('error', (e) => {
      clearTimeout(timer);
      fail((e as NodeJS.ErrnoException).code ?? e.message);
    });
    sock.on('connect', () => {
      const cmds = password ? [username ? ['AUTH', username, password] : ['AUTH', password], ['PING']] : [['PING']];
      for (const c of cmds) sock.write(`*${c.length}\r\n${c.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    });
    sock.on('data', (d) => {
      buf += d.toString();
      if (/-(NOAUTH|WRONGPASS|ERR)[^\r]*\r\n/.test(buf)) {
        clearTimeout(timer);
        fail(buf.trim());
      } else if (buf.includes('+PONG')) {
        clearTimeout(timer);
        sock.end();
        resolve();
      }
    });
  });
}

/** Redis key holding the adaptorkit version of a queue's jobs. */
export const versionKey = (queue: string): string => `bull:${queue}:adaptorkit-version`;

/** BullMQ job ids cannot contain ':'. */
export const jobIdOf = (sweep: string, run: string): string => `${sweep}__${run}`.replace(/:/g, '_');

/**
 * Enqueue every run of a sweep (and its `after` jobs as a flow over them). Jobs have fixed ids, so
 * enqueueing the same sweep again adds only what is not already there: a finished run never runs
 * twice. Returns the job ids.
 */
export async function enqueueSweep(s: ResolvedSweep, t: RedisTarget, queueName = DEFAULT_QUEUE_NAME): Promise<string[]> {
  await checkRedis(t);
  const connection = t.connection;
  const queue = new Queue<JobData>(queueName, { connection });
  try {
    const client = await queue.client;
    const prev = await client.get(versionKey(queueName));
    if (prev && prev !== VERSION) {
      throw new AdaptorkitError('UNSUPPORTED', `queue '${queueName}' at ${t.url} holds jobs of adaptorkit ${prev}; this is ${VERSION}: use another queue name (--queue-name) or drain that one`);
    }
    await client.set(versionKey(queueName), VERSION);
    await writeSweepRecord(s, VERSION, `${t.url}#${queueName}`);
    const opts = (id: string): JobsOptions => ({
      jobId: id, attempts: s.sweep.attempts, backoff: { type: 'exponential', delay: 2000 }, removeOnComplete: false, removeOnFail: false,
    });
    const runJobs = s.runs.map((r) => ({
      name: `train ${s.sweep.name}/${r.name}`,
      data: { kind: 'train' as const, version: VERSION, sweep: s.dir, run: r.name, base: s.base, sets: r.sets },
      opts: opts(jobIdOf(s.sweep.name, r.name)),
    }));
    const cliJob = (where: string, a: { name: string; command: string[] }, id: string) => {
      const args = a.command.map((x) => x.replaceAll('{dir}', s.dir));
      return { name: `${where} ${s.sweep.name}/${a.name}`, data: { kind: 'cli' as const, version: VERSION, sweep: s.dir, name: a.name, args, logFile: path.join(s.dir, `${a.name}.log`) }, opts: opts(id) };
    };
    const first = [...runJobs, ...s.sweep.commands.map((c) => cliJob('commands', c, jobIdOf(s.sweep.name, `cmd-${c.name}`)))];
    if (s.sweep.after.length === 0) {
      await queue.addBulk(first);
      return first.map((j) => j.opts.jobId!);
    }
    // a chain of flows: the first `after` job waits for every run and command, each next one for the one before
    let children: FlowJob[] = first.map((j) => ({ ...j, queueName, opts: { ...j.opts, failParentOnFailure: true } }));
    let top: FlowJob | undefined;
    for (const a of s.sweep.after) {
      const j = cliJob('after', a, jobIdOf(s.sweep.name, `after-${a.name}`));
      top = { ...j, queueName, opts: { ...j.opts, failParentOnFailure: true }, children };
      children = [top];
    }
    const flows = new FlowProducer({ connection });
    try {
      await flows.add(top!);
    } finally {
      await flows.close();
    }
    return [...first.map((j) => j.opts.jobId!), ...s.sweep.after.map((a) => jobIdOf(s.sweep.name, `after-${a.name}`))];
  } finally {
    await queue.close();
  }
}

/** Job counts of a queue (for `sweep status --queue`). */
export async function queueCounts(t: RedisTarget, queueName = DEFAULT_QUEUE_NAME): Promise<Record<string, number>> {
  await checkRedis(t);
  const queue = new Queue(queueName, { connection: t.connection });
  try {
    return await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'waiting-children');
  } finally {
    await queue.close();
  }
}
