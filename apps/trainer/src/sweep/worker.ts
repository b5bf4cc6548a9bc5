/**
 * `adaptorkit worker --queue redis://...`: takes sweep jobs and trains them into the sweep's
 * folder (a path every worker sees). Each run is a child `adaptorkit train` process tied to the
 * worker (it stops when the worker dies); a run folder that is already completed is not trained
 * again; one with checkpoints is resumed. A failure is retried with backoff up to the sweep's
 * `attempts`, then recorded by BullMQ with its error (and in the run's run.json).
 */
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { AdaptorkitError } from '@adaptorkit/core';
import { runCli } from './child.js';
import { CLI_JOB_COMMANDS, DEFAULT_QUEUE_NAME, VERSION, checkRedis, versionKey, type JobData, type RedisTarget } from './queue.js';

export interface WorkerOptions {
  target: RedisTarget;
  queueName?: string;
  /** Jobs run at once (each its own child process). */
  concurrency?: number;
  /** Native threads per job (default: cores / concurrency). */
  threads?: number;
  /** Backend every run of this worker uses (default: the run config's). */
  backend?: string;
  /** How long a job's lock lives without renewal; a killed worker's job is taken over after it (ms). */
  lockDuration?: number;
  /** How often stalled jobs are looked for (ms). */
  stalledInterval?: number;
  log?: (line: string) => void;
  /** Stop after this many jobs (tests). */
  maxJobs?: number;
}

export interface JobResult {
  status: 'completed' | 'already-completed';
  run?: string;
  /** Worker host and pid that ran it. */
  by: string;
}

async function runStatus(dir: string): Promise<string | undefined> {
  try {
    return (JSON.parse(await fs.readFile(path.join(dir, 'run.json'), 'utf8')) as { status?: string }).status;
  } catch {
    return undefined;
  }
}

/** The processor: one job. Exported for tests. */
export async function processJob(job: Pick<Job<JobData>, 'data' | 'id' | 'attemptsMade'>, o: WorkerOptions): Promise<JobResult> {
  const d = job.data;
  const by = `${os.hostname()}:${process.pid}`;
  if (d.version !== VERSION) {
    throw new UnrecoverableError(`job ${job.id} was made by adaptorkit ${d.version}; this worker is ${VERSION}: run a worker of the same version`);
  }
  const log = o.log ?? ((l: string) => console.log(l));
  const threads = o.threads ?? Math.max(1, Math.floor(os.cpus().length / (o.concurrency ?? 1)));
  const env = { ...process.env, ADAPTORKIT_NATIVE_THREADS: String(threads) };
  if (d.kind === 'cli') {
    if (!CLI_JOB_COMMANDS.has(d.args[0] ?? '')) throw new UnrecoverableError(`job ${job.id}: command '${d.args[0]}' is not one a queue job may run`);
    log(`[${job.id}] adaptorkit ${d.args.join(' ')}`);
    const r = await runCli(d.args, { logFile: d.logFile, env, log: (l) => log(`[${job.id}] ${l}`) });
    if (r.code !== 0) throw new Error(`adaptorkit ${d.args[0]} exited with ${r.code ?? r.signal}: ${r.tail.slice(-3).join(' | ')}`);
    return { status: 'completed', by };
  }
  const dir = path.join(d.sweep, d.run);
  if ((await runStatus(dir)) === 'completed') {
    log(`[${job.id}] ${d.run} is already completed: not training it again`);
    return { status: 'already-completed', run: dir, by };
  }
  const resume = existsSync(path.join(dir, 'run.json'));
  const args = ['train', d.base, ...d.sets.flatMap((x) => ['--set', x]), '--set', `name=${d.run}`, '--set', `outputDir=${JSON.stringify(d.sweep)}`];
  if (o.backend) args.push('--set', `backend=${o.backend}`);
  if (resume) args.push('--resume');
  log(`[${job.id}] ${resume ? 'resuming' : 'training'} ${d.run} (attempt ${job.attemptsMade + 1}, ${threads} thread${threads === 1 ? '' : 's'})`);
  const r = await runCli(args, { logFile: path.join(d.sweep, `${d.run}.log`), env, log: (l) => { if (!/^step \d+\//.test(l)) log(`[${job.id}] ${l}`); } });
  const status = await runStatus(dir);
  if (r.code === 0 && status === 'completed') return { status: 'completed', run: dir, by };
  const why = r.tail.slice(-3).join(' | ');
  // a config the trainer refuses (exit 2) will not get better by retrying; a held lock or a crash may
  if (r.code === 2 && !/lock/i.test(why)) throw new UnrecoverableError(`${d.run}: adaptorkit train refused the run: ${why}`);
  throw new Error(`${d.run}: adaptorkit train exited with ${r.code ?? r.signal} (run status ${status ?? 'none'}): ${why}`);
}

/** Start a worker; resolves with it once connected. */
export async function startWorker(o: WorkerOptions): Promise<Worker<JobData, JobResult>> {
  const queueName = o.queueName ?? DEFAULT_QUEUE_NAME;
  const log = o.log ?? ((l: string) => console.log(l));
  await checkRedis(o.target);
  let done = 0;
  const worker = new Worker<JobData, JobResult>(queueName, (job) => processJob(job, o), {
    connection: { ...o.target.connection, maxRetriesPerRequest: null } as ConnectionOptions,
    concurrency: o.concurrency ?? 1,
    lockDuration: o.lockDuration ?? 30_000,
    stalledInterval: o.stalledInterval ?? 30_000,
    maxStalledCount: 3,
    autorun: false,
  });
  const client = await worker.client;
  const qv = await client.get(versionKey(queueName));
  if (qv && qv !== VERSION) {
    await worker.close();
    throw new AdaptorkitError('UNSUPPORTED', `queue '${queueName}' at ${o.target.url} holds jobs of adaptorkit ${qv}; this worker is ${VERSION}: start a worker of version ${qv}`);
  }
  let lost = false;
  worker.on('error', (e) => {
    if (!lost) log(`worker: lost the connection to Redis at ${o.target.url} (${e.message}); retrying`);
    lost = true;
  });
  worker.on('ready', () => {
    if (lost) log(`worker: reconnected to ${o.target.url}`);
    lost = false;
  });
  worker.on('completed', (job) => {
    log(`[${job.id}] done`);
    if (o.maxJobs !== undefined && ++done >= o.maxJobs) void worker.close();
  });
  worker.on('failed', (job, err) => log(`[${job?.id}] failed (attempt ${job?.attemptsMade ?? '?'}): ${err.message}`));
  log(`worker ${os.hostname()}:${process.pid} (adaptorkit ${VERSION}) on ${o.target.url} queue '${queueName}', concurrency ${o.concurrency ?? 1}`);
  void worker.run();
  return worker;
}
