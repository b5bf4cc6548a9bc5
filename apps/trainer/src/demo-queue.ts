/**
 * `adaptorkit demo --queue redis://...`: the demo's rows as BullMQ jobs that `adaptorkit worker`s
 * take (the demo's output folder must be a path every worker sees). Trainer rows are `train` jobs;
 * the DAMC composition group is a flow per mode: its image and sound models train as child jobs,
 * the composition and its scoring run as their parent (compose --train-only / --from). The demo
 * waits for every job, then reads the run folders and writes the table as a local run does.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { FlowProducer, Queue, QueueEvents, type Job } from 'bullmq';
import { AdaptorkitError } from '@adaptorkit/core';
import { parseComposeArgs } from './compose/options.js';
import type { ComposeResult } from './compose/run.js';
import { writeJsonAtomic } from './fsutil.js';
import { DEFAULT_QUEUE_NAME, VERSION, checkRedis, parseRedisUrl, versionKey, type JobData } from './sweep/queue.js';

export interface DemoRunner {
  /** Run `adaptorkit ...args` as a job; resolves when it finished, throws with its error when it failed. */
  run(args: string[], logFile: string, what: string): Promise<void>;
  /** The composition experiment as one flow per mode; writes the rows of every mode to `json`. */
  composeFlow(args: string[], dir: string, json: string, what: string): Promise<void>;
  close(): Promise<void>;
}

export async function openDemoQueue(url: string, out: string, log: (l: string) => void, queueName = DEFAULT_QUEUE_NAME): Promise<DemoRunner> {
  const target = parseRedisUrl(url);
  await checkRedis(target);
  const connection = target.connection;
  const queue = new Queue<JobData>(queueName, { connection });
  const flows = new FlowProducer({ connection });
  const events = new QueueEvents(queueName, { connection });
  await events.waitUntilReady();
  const client = await queue.client;
  const prev = await client.get(versionKey(queueName));
  if (prev && prev !== VERSION) throw new AdaptorkitError('UNSUPPORTED', `queue '${queueName}' at ${target.url} holds jobs of adaptorkit ${prev}; this is ${VERSION}`);
  await client.set(versionKey(queueName), VERSION);
  const stamp = Date.now().toString(36);
  let n = 0;
  const opts = (name: string) => ({ jobId: `demo-${stamp}-${++n}-${name}`.replace(/[^A-Za-z0-9_.-]/g, '-'), attempts: 2, backoff: { type: 'exponential' as const, delay: 2000 }, removeOnComplete: false, removeOnFail: false });
  const data = (name: string, args: string[], logFile: string): JobData => ({ kind: 'cli', version: VERSION, sweep: out, name, args, logFile });
  const wait = async (job: Job, what: string): Promise<void> => {
    try {
      await job.waitUntilFinished(events);
    } catch (e) {
      throw new AdaptorkitError('IO_ERROR', `${what}: job ${job.id} failed on a worker: ${(e as Error).message}`);
    }
  };
  log(`demo on queue '${queueName}' at ${target.url}: jobs go to the workers (adaptorkit worker --queue ${url}); runs are written to ${out}`);
  return {
    async run(args, logFile, what) {
      const job = await queue.add(what, data(what, args, logFile), opts(what));
      log(`   queued ${what} as job ${job.id}`);
      await wait(job, what);
    },
    async composeFlow(args, dir, json, what) {
      const o = parseComposeArgs(args);
      const parents: Job[] = [];
      const jsons: string[] = [];
      for (const mode of o.modes) {
        const base = [...args, '--mode', mode];
        const save = (m: string) => path.join(dir, `${mode}-${m}`);
        const j = path.join(dir, `${mode}.json`);
        jsons.push(j);
        const child = (m: 'image' | 'sound') => ({
          name: `${what} ${mode} ${m}`, queueName,
          data: data(`${mode}-${m}`, ['compose', ...base, '--train-only', m, '--save', save(m)], path.join(dir, `${mode}-${m}.log`)),
          opts: { ...opts(`${mode}-${m}`), failParentOnFailure: true },
        });
        const node = await flows.add({
          name: `${what} ${mode}`, queueName,
          data: data(`${mode}-compose`, ['compose', ...base, '--from', `${save('image')},${save('sound')}`, '--json', j], path.join(dir, `${mode}-compose.log`)),
          opts: opts(`${mode}-compose`),
          children: [child('image'), child('sound')],
        });
        log(`   queued ${what} ${mode}: a flow of 3 jobs (image and sound models, then the composition ${node.job.id})`);
        parents.push(node.job);
      }
      for (const p of parents) await wait(p, what);
      const rows = (await Promise.all(jsons.map(async (f) => (JSON.parse(await fs.readFile(f, 'utf8')) as ComposeResult).rows))).flat();
      await writeJsonAtomic(json, { rows });
    },
    async close() {
      await Promise.all([events.close(), flows.close(), queue.close()]);
    },
  };
}
