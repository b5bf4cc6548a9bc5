/** `adaptorkit sweep` and `adaptorkit worker` on the CLI (one call in cli.ts). */
import type { Command } from 'commander';
import { AdaptorkitError } from '@adaptorkit/core';
import { DEFAULT_QUEUE_NAME, parseRedisUrl } from './queue.js';
import { runSweepLocal, runSweepQueued, sweepStatus } from './run.js';
import { startWorker } from './worker.js';

const int = (what: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new AdaptorkitError('INVALID_ARGUMENT', `${what} must be a positive integer, got '${v}'`);
  return n;
};

export function registerSweepCommands(program: Command): void {
  program
    .command('sweep')
    .description('Run a sweep (a base run config + a grid / list of overrides) here, or enqueue it on Redis for workers; `sweep status <sweep>` shows progress.')
    .argument('<sweep>', "sweep YAML, or 'status'")
    .argument('[target]', "with 'status': a sweep YAML or folder")
    .option('--queue <url>', 'enqueue on this Redis (redis://host:port/db) and return; workers train the runs')
    .option('--queue-name <name>', 'BullMQ queue name', DEFAULT_QUEUE_NAME)
    .option('--jobs <n>', 'local sweep: runs at once (default: the sweep file\'s jobs)', int('--jobs'))
    .option('--backend <name>', 'local sweep: backend of every run')
    .action(async (first: string, target: string | undefined, o: { queue?: string; queueName: string; jobs?: number; backend?: string }) => {
      if (first === 'status') {
        if (!target) throw new AdaptorkitError('INVALID_ARGUMENT', 'sweep status needs a sweep YAML or folder');
        const st = await sweepStatus(target);
        const done = st.rows.filter((r) => r.status === 'completed').length;
        console.log(`sweep ${st.record.name} (${st.dir}): ${done}/${st.rows.length} completed${st.queue ? `; queue: ${Object.entries(st.queue).map(([k, v]) => `${k} ${v}`).join(', ')}` : ''}`);
        for (const r of st.rows) console.log(`  ${r.run.padEnd(32)} ${r.status}${r.step !== undefined ? ` (step ${r.step}/${r.totalSteps ?? '?'})` : ''}`);
        return;
      }
      if (target) throw new AdaptorkitError('INVALID_ARGUMENT', `unexpected argument '${target}' (did you mean: adaptorkit sweep status ${target}?)`);
      if (o.queue) {
        const r = await runSweepQueued(first, o.queue, o.queueName);
        console.log(`enqueued ${r.jobs.length} jobs on ${o.queue} (queue '${o.queueName}'); runs go to ${r.dir}`);
        console.log(`start workers with: adaptorkit worker --queue ${o.queue}${o.queueName !== DEFAULT_QUEUE_NAME ? ` --queue-name ${o.queueName}` : ''}; progress: adaptorkit sweep status ${r.dir}`);
        return;
      }
      const r = await runSweepLocal(first, { ...(o.jobs ? { jobs: o.jobs } : {}), ...(o.backend ? { backend: o.backend } : {}) });
      console.log(`sweep done: ${r.completed.length} completed, ${r.failed.length} failed (${r.dir}); compare them with: adaptorkit report ${r.dir}`);
      for (const f of r.failed) console.log(`  failed ${f.run}: ${f.error}`);
      if (r.failed.length) process.exitCode = 1;
    });

  program
    .command('worker')
    .description('Take sweep jobs from a Redis queue and train them into their sweep folders (which this machine must see).')
    .requiredOption('--queue <url>', 'Redis URL, redis://host:port/db')
    .option('--queue-name <name>', 'BullMQ queue name', DEFAULT_QUEUE_NAME)
    .option('--concurrency <n>', 'jobs at once', int('--concurrency'), 1)
    .option('--threads <n>', 'native threads per job (default cores / concurrency)', int('--threads'))
    .option('--backend <name>', 'backend of every run this worker trains')
    .option('--lock-duration <ms>', "a job's lock lifetime: a killed worker's job is taken over after it", int('--lock-duration'), 30_000)
    .option('--stalled-interval <ms>', 'how often to look for stalled jobs', int('--stalled-interval'), 30_000)
    .action(async (o: { queue: string; queueName: string; concurrency: number; threads?: number; backend?: string; lockDuration: number; stalledInterval: number }) => {
      const worker = await startWorker({
        target: parseRedisUrl(o.queue), queueName: o.queueName, concurrency: o.concurrency, lockDuration: o.lockDuration, stalledInterval: o.stalledInterval,
        ...(o.threads ? { threads: o.threads } : {}), ...(o.backend ? { backend: o.backend } : {}),
      });
      const stop = (): void => {
        console.log('worker: finishing the running jobs, then stopping (signal again to stop at once)');
        process.once('SIGINT', () => process.exit(130));
        void worker.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await new Promise(() => undefined); // runs until stopped
    });
}
