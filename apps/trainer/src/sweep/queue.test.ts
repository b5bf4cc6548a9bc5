/**
 * Sweeps on a real Redis (Debian's redis-server on a loopback port, started here; skipped with a
 * note where it is not installed): 6 runs on 2 worker processes, one killed with SIGKILL mid-run.
 * Every run completes exactly once, the killed run resumes from its checkpoint and its losses equal
 * a local run's with the same seed and thread count, the flow's parent job runs after its
 * children, and Redis restarting mid-sweep, an unreachable Redis and a version mismatch are
 * handled.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from './child.js';
import { enqueueSweep, parseRedisUrl, versionKey, type JobData } from './queue.js';
import { loadSweep } from './config.js';
import { sweepStatus } from './run.js';

const hasRedis = spawnSync('redis-server', ['--version']).status === 0;
const built = existsSync(path.join(path.dirname(CLI), '..', 'dist', 'cli.js'));
if (!hasRedis) console.warn('SKIPPED sweep queue tests: redis-server is not installed (Debian: apt-get install redis-server)');
if (hasRedis && !built) console.warn('SKIPPED sweep queue tests: the trainer is not built (npm run build)');

const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../examples');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
}

describe.skipIf(!hasRedis || !built)('sweeps on a Redis queue', () => {
  let dir = '';
  let port = 0;
  let redis: ChildProcess | undefined;
  const procs: ChildProcess[] = [];
  const url = (): string => `redis://127.0.0.1:${port}/0`;

  const startRedis = async (): Promise<void> => {
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--dir', dir, '--daemonize', 'no'], { stdio: 'ignore' });
    for (let i = 0; i < 50; i++) {
      if (spawnSync('redis-cli', ['-p', String(port), 'ping']).stdout?.toString().includes('PONG')) return;
      await sleep(100);
    }
    throw new Error('redis-server did not start');
  };
  const stopRedis = async (): Promise<void> => {
    const r = redis!;
    await new Promise<void>((resolve) => {
      r.once('exit', () => resolve());
      r.kill('SIGTERM');
    });
  };
  const worker = (name: string): { p: ChildProcess; log: string[] } => {
    const log: string[] = [];
    const p = spawn(process.execPath, [CLI, 'worker', '--queue', url(), '--lock-duration', '3000', '--stalled-interval', '1500', '--threads', '1'], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ADAPTORKIT_NATIVE_THREADS: '1' },
    });
    const take = (b: Buffer) => log.push(...b.toString().split('\n').filter(Boolean).map((l) => `${name}: ${l}`));
    p.stdout!.on('data', take);
    p.stderr!.on('data', take);
    procs.push(p);
    return { p, log };
  };
  const steps = (run: string): number => {
    const f = path.join(dir, 'out', 'grid', run, 'metrics.jsonl');
    if (!existsSync(f)) return 0;
    return new Set(readFileSync(f, 'utf8').split('\n').filter((l) => l.includes('"kind":"step"')).map((l) => (JSON.parse(l) as { step: number }).step)).size;
  };
  const losses = (f: string): Map<number, number> => {
    const m = new Map<number, number>();
    for (const l of readFileSync(f, 'utf8').split('\n')) {
      if (!l.trim()) continue;
      const x = JSON.parse(l) as { kind?: string; step: number; loss: number };
      if (x.kind === 'step') m.set(x.step, x.loss);
    }
    return m;
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sweep-queue-'));
    port = await freePort();
    await startRedis();
    writeFileSync(
      path.join(dir, 'grid.yaml'),
      [
        `base: ${path.join(EXAMPLES, 'frozen-shapes.yaml')}`,
        'name: grid',
        'outputDir: out',
        'set: [train.steps=16, train.saveEvery=4, train.batchSize=4, data.evalExamples=6, data.textEvalExamples=6, train.warmupSteps=2]',
        'grid:',
        '  seed: [0, 1, 2]',
        '  train.lr: [0.01, 0.02]',
        'after:',
        '  - { name: report, command: [report, "{dir}", -o, "{dir}/report.html"] }',
      ].join('\n'),
    );
  }, 30_000);

  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    if (redis && redis.exitCode === null) await stopRedis();
    rmSync(dir, { recursive: true, force: true });
  });

  it('6 runs on 2 workers, one killed mid-run: every run completes exactly once, resumed runs match a local run, the flow parent runs last', async () => {
    const s = await loadSweep(path.join(dir, 'grid.yaml'));
    const ids = await enqueueSweep(s, parseRedisUrl(url()));
    expect(ids).toHaveLength(7);
    const t0 = Date.now();
    const a = worker('A');
    const b = worker('B');
    // wait until worker A is part-way into a run, then kill it
    let victim: string | undefined;
    for (let i = 0; i < 600 && !victim; i++) {
      await sleep(100);
      const m = a.log.map((l) => /(?:training|resuming) (\S+) \(attempt/.exec(l)?.[1]).filter(Boolean).pop();
      if (m && steps(m) >= 6) victim = m;
    }
    expect(victim, a.log.join('\n')).toBeDefined();
    a.p.kill('SIGKILL');
    console.log(`killed worker A in ${victim} at step ${steps(victim!)} after ${Date.now() - t0} ms`);
    const killedAt = steps(victim!);
    expect(killedAt).toBeLessThan(16);

    const c = worker('C'); // a replacement machine joins
    // Redis restarts mid-sweep (state kept in its append-only file); the surviving worker reconnects
    await sleep(1000);
    await stopRedis();
    await sleep(500);
    await startRedis();

    const queue = new Queue<JobData>('adaptorkit', { connection: parseRedisUrl(url()).connection });
    try {
      for (let i = 0; i < 900; i++) {
        const c = await queue.getJobCounts('completed', 'failed');
        if ((c.completed ?? 0) + (c.failed ?? 0) >= 7) break;
        await sleep(200);
      }
      console.log(`all jobs finished after ${Date.now() - t0} ms`);
      const failed = await queue.getFailed();
      expect(failed.map((j) => `${j.id}: ${j.failedReason}`), [...b.log, ...c.log].join('\n')).toEqual([]);
      const done = await queue.getCompleted();
      expect(done).toHaveLength(7);
      const trains = done.filter((j) => j.data.kind === 'train');
      // exactly once: every run trained to completion by one job, none re-run after completing
      expect(trains.map((j) => j.returnvalue?.status)).toEqual(Array(6).fill('completed'));
      expect(new Set(trains.map((j) => j.data.kind === 'train' && j.data.run)).size).toBe(6);
      const parent = done.find((j) => j.data.kind === 'cli')!;
      expect(parent.finishedOn!).toBeGreaterThanOrEqual(Math.max(...trains.map((j) => j.finishedOn!)));
      expect(existsSync(path.join(dir, 'out', 'grid', 'report.html'))).toBe(true);
    } finally {
      await queue.close();
    }
    const st = await sweepStatus(path.join(dir, 'out', 'grid'));
    expect(st.rows.map((r) => r.status)).toEqual(Array(6).fill('completed'));
    expect([...b.log, ...c.log].some((l) => l.includes(`resuming ${victim}`))).toBe(true);

    // the resumed run's losses equal a local run's with the same seed and thread count
    const sets = s.runs.find((r) => r.name === victim)!.sets;
    const local = spawnSync(process.execPath, [CLI, 'train', s.base, ...sets.flatMap((x) => ['--set', x]), '--set', 'name=local', '--set', `outputDir=${JSON.stringify(path.join(dir, 'local'))}`, '--no-eval'], {
      env: { ...process.env, ADAPTORKIT_NATIVE_THREADS: '1' }, encoding: 'utf8',
    });
    expect(local.status, local.stderr).toBe(0);
    const want = losses(path.join(dir, 'local', 'local', 'metrics.jsonl'));
    const got = losses(path.join(dir, 'out', 'grid', victim!, 'metrics.jsonl'));
    expect(want.size).toBe(16);
    expect([...got.entries()].sort((x, y) => x[0] - y[0])).toEqual([...want.entries()].sort((x, y) => x[0] - y[0]));

    // enqueueing the finished sweep again runs nothing twice
    await enqueueSweep(s, parseRedisUrl(url()));
    await sleep(1500);
    const q2 = new Queue<JobData>('adaptorkit', { connection: parseRedisUrl(url()).connection });
    try {
      const c = await q2.getJobCounts('waiting', 'active', 'completed');
      expect([c.waiting, c.active, c.completed]).toEqual([0, 0, 7]);
    } finally {
      await q2.close();
    }
  }, 240_000);

  it('the DAMC composition as a flow: the two modality models train as children, the composition runs after them and equals a one-process run', async () => {
    const flags = ['--task', 'count', '--mode', 'decoupled', '--steps', '2', '--batch', '2', '--train', '8', '--test', '6', '--joint', '6', '--search', 'no'];
    const q = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;
    writeFileSync(
      path.join(dir, 'damc.yaml'),
      [
        'name: damc-flow',
        'outputDir: out',
        'commands:',
        `  - { name: image, command: ${q(['compose', ...flags, '--train-only', 'image', '--save', '{dir}/image'])} }`,
        `  - { name: sound, command: ${q(['compose', ...flags, '--train-only', 'sound', '--save', '{dir}/sound'])} }`,
        'after:',
        `  - { name: compose, command: ${q(['compose', ...flags, '--from', '{dir}/image,{dir}/sound', '--json', '{dir}/rows.json'])} }`,
      ].join('\n'),
    );
    const s = await loadSweep(path.join(dir, 'damc.yaml'));
    const ids = await enqueueSweep(s, parseRedisUrl(url()));
    expect(ids).toEqual(['damc-flow__cmd-image', 'damc-flow__cmd-sound', 'damc-flow__after-compose']);
    const w1 = worker('D1');
    const w2 = worker('D2');
    const queue = new Queue<JobData>('adaptorkit', { connection: parseRedisUrl(url()).connection });
    try {
      let parent = await queue.getJob('damc-flow__after-compose');
      for (let i = 0; i < 900 && !(await parent?.isCompleted()) && !(await parent?.isFailed()); i++) {
        await sleep(200);
        parent = await queue.getJob('damc-flow__after-compose');
      }
      expect(parent?.failedReason, [...w1.log, ...w2.log].join('\n')).toBeUndefined();
      const kids = await Promise.all(['damc-flow__cmd-image', 'damc-flow__cmd-sound'].map((id) => queue.getJob(id)));
      for (const k of kids) expect(parent!.processedOn!).toBeGreaterThanOrEqual(k!.finishedOn!);
    } finally {
      await queue.close();
    }
    const local = spawnSync(process.execPath, [CLI, 'compose', ...flags, '--json', path.join(dir, 'local-rows.json')], { encoding: 'utf8', env: { ...process.env, ADAPTORKIT_NATIVE_THREADS: '1' } });
    expect(local.status, local.stderr).toBe(0);
    const rows = (f: string) => (JSON.parse(readFileSync(f, 'utf8')) as { rows: { name: string; metrics: Record<string, number> }[] }).rows.map((r) => [r.name, r.metrics]);
    expect(rows(path.join(dir, 'out', 'damc-flow', 'rows.json'))).toEqual(rows(path.join(dir, 'local-rows.json')));
    w1.p.kill('SIGTERM');
    w2.p.kill('SIGTERM');
  }, 240_000);

  it('demo --queue: trainer rows as jobs and the DAMC group as flows give the table a local demo gives', async () => {
    const spec = [
      'title: queue demo',
      'set: [data.evalExamples=6, data.textEvalExamples=6, train.saveEvery=0, train.steps=4, train.batchSize=2]',
      'groups:',
      '  - id: rows',
      '    claim: trainer rows',
      '    metric: accuracy',
      '    margin: 0',
      '    rows:',
      `      - { id: q-frozen, label: frozen, config: ${JSON.stringify(path.join(EXAMPLES, 'frozen-shapes.yaml'))}, baseline: true }`,
      `      - { id: q-iaa, label: iaa, config: ${JSON.stringify(path.join(EXAMPLES, 'iaa-shapes.yaml'))}, expect: none }`,
      '  - id: damc',
      '    claim: composition',
      '    metric: all_acc',
      '    margin: 0',
      `    script: { run: ${JSON.stringify(CLI)}, args: [compose, --task, count, --mode, 'frozen,decoupled', --steps, '2', --batch, '2', --train, '8', --test, '6', --joint, '6', --search, 'no', --single, 'no'] }`,
      '    rows:',
      "      - { id: d-frozen, label: frozen composed, pick: 'frozen LLM composed (1/2, 1/2)', baseline: true }",
      "      - { id: d-damc, label: DAMC, pick: 'DAMC (1/2, 1/2)', expect: none }",
    ].join('\n');
    writeFileSync(path.join(dir, 'demo.yaml'), spec);
    const w1 = worker('E1');
    const w2 = worker('E2');
    const run = (out: string, extra: string[]) =>
      spawnSync(process.execPath, [CLI, 'demo', '--spec', path.join(dir, 'demo.yaml'), '--out', path.join(dir, out), '--no-png', ...extra], { encoding: 'utf8', env: { ...process.env, ADAPTORKIT_NATIVE_THREADS: '1' }, timeout: 200_000 });
    const q = run('demo-queue', ['--queue', url()]);
    expect(q.status, q.stdout + q.stderr).toBe(0);
    expect(q.stdout).toMatch(/queued demo group damc frozen: a flow of 3 jobs/);
    w1.p.kill('SIGTERM');
    w2.p.kill('SIGTERM');
    const l = run('demo-local', []);
    expect(l.status, l.stdout + l.stderr).toBe(0);
    const rows = (out: string) => (JSON.parse(readFileSync(path.join(dir, out, 'results.json'), 'utf8')) as { rows: { id: string; summary: { metrics: Record<string, number> } }[] }).rows.map((r) => [r.id, r.summary.metrics]);
    expect(rows('demo-queue')).toEqual(rows('demo-local'));
    expect(rows('demo-queue').map((r) => r[0])).toEqual(['q-frozen', 'q-iaa', 'd-frozen', 'd-damc']);
  }, 300_000);

  it('a worker of another adaptorkit version is refused with a clear message', async () => {
    const q = new Queue('vq', { connection: parseRedisUrl(url()).connection });
    await (await q.client).set(versionKey('vq'), '0.0.1-other');
    await q.close();
    const r = spawnSync(process.execPath, [CLI, 'worker', '--queue', url(), '--queue-name', 'vq'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/queue 'vq' .* holds jobs of adaptorkit 0\.0\.1-other; this worker is \d+\.\d+\.\d+/);
  }, 30_000);

  it('an unreachable queue is a clear error with exit code 2', () => {
    const r = spawnSync(process.execPath, [CLI, 'sweep', path.join(dir, 'grid.yaml'), '--queue', 'redis://127.0.0.1:1/0'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/cannot reach Redis at redis:\/\/127\.0\.0\.1:1\/0: ECONNREFUSED/);
  });
});
