/**
 * What a run folder promises (issue 23): one writer at a time, a status that tells the truth on
 * every exit path, a resume that trusts nothing it reads back, and metrics.jsonl without partial
 * or duplicate lines. Kill and signal tests run the built CLI as a child process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdaptorkitError, initBackend, Parameter, tf } from '@adaptorkit/core';
import { applyOverrides, parseWith } from './config-util.js';
import { RunConfigSchema, type RunConfig } from './config.js';
import { trainLoop } from '@adaptorkit/core';
import { openRun } from './open-run.js';
import { isRetrievalRunFolder } from './retrieval.js';
import type { RunInfo, StepLine } from './run-format.js';
import { writeTinyBases } from './test-bases.js';
import { runTrain } from './train.js';

let tmp = '';
let lmDir = '';
let visionDir = '';
const quiet = (): void => {};
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

beforeAll(async () => {
  await initBackend('cpu', { log: false });
  ({ tmp, lmDir, visionDir } = await writeTinyBases('adaptorkit-runfolder-'));
});

function config(name: string, over: string[] = []): RunConfig {
  const raw = {
    name,
    backend: 'cpu',
    outputDir: path.join(tmp, 'runs'),
    base: { lm: lmDir, vision: visionDir },
    method: { name: 'iaa', config: { depths: [1] } },
    data: { task: 'vqa', evalExamples: 8, textEvalExamples: 16 },
    train: { steps: 4, batchSize: 2, lr: 1e-3, warmupSteps: 1, saveEvery: 0 },
  };
  return parseWith(RunConfigSchema, applyOverrides(raw, over), `${name} (test)`);
}

const runDir = (cfg: RunConfig): string => path.join(cfg.outputDir, cfg.name);
const readInfo = async (dir: string): Promise<RunInfo> => JSON.parse(await fs.readFile(path.join(dir, 'run.json'), 'utf8')) as RunInfo;

/** Start `adaptorkit train` on cfg (as a child) and resolve once it has logged `step <at>/`. */
async function startChild(cfg: RunConfig, at: number): Promise<{ child: ChildProcess; exit: Promise<number | null>; out: () => string }> {
  const file = path.join(tmp, `${cfg.name}.yaml`);
  await fs.writeFile(file, JSON.stringify(cfg));
  const child = spawn(process.execPath, [cli, 'train', file, '--no-eval'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(`step ${at}/`)) resolve();
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    void exit.then(() => reject(new Error(`child exited before step ${at}:\n${out}`)));
  });
  return { child, exit, out: () => out };
}

describe('run folder: one writer', () => {
  it('refuses a second writer naming the holder; a holder killed -9 does not block --resume, which repairs metrics.jsonl and clears temp folders', async () => {
    const cfg = config('locked', ['train.steps=400', 'train.saveEvery=5']);
    const dir = runDir(cfg);
    const { child, exit } = await startChild(cfg, 10);
    try {
      const holder = new RegExp(`in use by process ${child.pid} on host ${os.hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`);
      await expect(runTrain(cfg, { log: quiet, noEval: true, resume: true, stopAfter: 1 })).rejects.toThrow(holder);
      await expect(runTrain(cfg, { log: quiet, noEval: true, stopAfter: 1 })).rejects.toThrow(holder);
    } finally {
      child.kill('SIGKILL');
      await exit;
    }
    // what a kill leaves: a temp checkpoint folder, a step line past the checkpoint, a partial line
    const ckpts = (await fs.readdir(path.join(dir, 'checkpoints'))).filter((c) => /^step-\d{6}$/.test(c)).sort();
    const last = Number(ckpts[ckpts.length - 1]!.slice(5));
    await fs.mkdir(path.join(dir, 'checkpoints', `step-${String(last + 1).padStart(6, '0')}.tmp-999999`));
    await fs.appendFile(path.join(dir, 'metrics.jsonl'), `${JSON.stringify({ kind: 'step', step: last + 1, loss: 9, lr: 0, ms: 1, time: '' })}\n{"kind":"step","st`);
    const resumed = await runTrain(config('locked', [`train.steps=${last + 2}`, 'train.saveEvery=5']), { log: quiet, noEval: true, resume: true });
    expect(resumed.info.status).toBe('completed');
    const lines = (await fs.readFile(path.join(dir, 'metrics.jsonl'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as StepLine);
    expect(lines.filter((l) => l.kind === 'step').map((l) => l.step)).toEqual(Array.from({ length: last + 2 }, (_, i) => i + 1));
    expect(lines.some((l) => l.loss === 9)).toBe(false);
    expect((await fs.readdir(path.join(dir, 'checkpoints'))).some((c) => c.includes('.tmp'))).toBe(false);
    expect((await fs.readdir(dir)).filter((f) => f.startsWith('run.lock'))).toEqual([]); // released
  });
});

describe('run folder: status on every exit path', () => {
  it.each([
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const)('%s finishes the step, checkpoints and marks the run interrupted (real process)', async (sig, code) => {
    const cfg = config(`sig-${sig}`, ['train.steps=400']);
    const { child, exit, out } = await startChild(cfg, 10);
    child.kill(sig);
    expect(await exit, out()).toBe(code);
    const info = await readInfo(runDir(cfg));
    expect(info.status).toBe('interrupted');
    expect(info.statusDetail).toContain(sig);
    expect(await fs.readdir(path.join(runDir(cfg), 'checkpoints'))).toContain(`step-${String(info.step).padStart(6, '0')}`);
  });

  it('a failure while writing the final checkpoint ends the run failed, with that error thrown and recorded', async () => {
    const cfg = config('final-ckpt-fails', ['train.steps=2']);
    await fs.mkdir(runDir(cfg), { recursive: true });
    await fs.writeFile(path.join(runDir(cfg), 'checkpoints'), 'a file where the checkpoints folder goes');
    const err = (await runTrain(cfg, { log: quiet, noEval: true }).then(() => new Error('resolved'), (e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(AdaptorkitError);
    expect(err.message).toMatch(/checkpoint.*step-000002/);
    const info = await readInfo(runDir(cfg));
    expect(info.status).toBe('failed');
    expect(info.statusDetail).toBe(err.message);
  });

  it('the CLI prints the error that ended the run (exit 2), the one run.json records', async () => {
    const cfg = config('cli-failure', ['train.steps=1']);
    await fs.mkdir(runDir(cfg), { recursive: true });
    await fs.writeFile(path.join(runDir(cfg), 'checkpoints'), 'a file where the checkpoints folder goes');
    const file = path.join(tmp, 'cli-failure.yaml');
    await fs.writeFile(file, JSON.stringify(cfg));
    const child = spawn(process.execPath, [cli, 'train', file, '--no-eval'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, err).toBe(2);
    const info = await readInfo(runDir(cfg));
    expect(info.status).toBe('failed');
    expect(err.trim()).toBe(`adaptorkit: ${info.statusDetail}`);
    expect(info.statusDetail).toMatch(/writing checkpoint .*step-000001 failed: ENOTDIR/);
  });

  it('keeps only train.keepCheckpoints checkpoints', async () => {
    const cfg = config('keep', ['train.steps=5', 'train.saveEvery=1', 'train.keepCheckpoints=2']);
    await runTrain(cfg, { log: quiet, noEval: true });
    expect((await fs.readdir(path.join(runDir(cfg), 'checkpoints'))).sort()).toEqual(['step-000004', 'step-000005']);
  });
});

describe('run folder: nothing read back is trusted', () => {
  it.each([
    ['{"step":"x"}', /state\.json[\s\S]*step/],
    ['{"step":1e9}', /step 1000000000 but train\.steps is 4/],
    ['{"step":2.5}', /state\.json[\s\S]*step/],
    ['{"step":', /state\.json is not valid JSON/],
    ['{"step":3}', /step 3 does not match its folder step-000002/],
  ])('a checkpoint state.json of %s is refused with a clear error', async (text, msg) => {
    const cfg = config(`state-${Buffer.from(text).toString('hex')}`);
    await runTrain(cfg, { log: quiet, noEval: true, stopAfter: 2 });
    await fs.writeFile(path.join(runDir(cfg), 'checkpoints', 'step-000002', 'state.json'), text);
    const err = (await runTrain(cfg, { log: quiet, noEval: true, resume: true }).then(() => new Error('resolved'), (e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(AdaptorkitError);
    expect(err.message).toMatch(msg);
    expect((await readInfo(runDir(cfg))).status).toBe('interrupted'); // not 'completed' with no steps trained
  });

  it("a YAML alias bomb in a finished run's config.yaml is a clear error for eval/generate, as it is for train", async () => {
    const cfg = config('bomb', ['train.steps=1']);
    await runTrain(cfg, { log: quiet, noEval: true });
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
    await fs.writeFile(path.join(runDir(cfg), 'config.yaml'), `${lines.join('\n')}\n`);
    await expect(openRun(runDir(cfg))).rejects.toBeInstanceOf(AdaptorkitError);
    await expect(isRetrievalRunFolder(runDir(cfg))).rejects.toBeInstanceOf(AdaptorkitError);
    await fs.writeFile(path.join(runDir(cfg), 'config.yaml'), 'name: bomb\n');
    await fs.writeFile(path.join(runDir(cfg), 'run.json'), '{"name":');
    await expect(runTrain(cfg, { log: quiet, noEval: true, resume: true })).rejects.toThrow(/run\.json is not valid JSON/);
  });

  it("run names '.' and '..' are refused (the run folder must be one folder inside outputDir)", () => {
    expect(() => config('..')).toThrow(/name: /);
    expect(() => config('.')).toThrow(/name: /);
    expect(config('a..b').name).toBe('a..b');
  });

  it('AdamW betas outside [0, 1) are refused', () => {
    expect(() => config('betas', ['train.betas=[1.5, 0.999]'])).toThrow(/train\.betas\.0/);
    expect(() => config('betas', ['train.betas=[0.9, -0.1]'])).toThrow(/train\.betas\.1/);
  });

  it('a loss that is not finite before any update does not blame the learning rate', async () => {
    const p = new Parameter([3], { kind: 'ones' });
    const run = trainLoop({ named: [['w', p]], steps: 2, lr: 1e-3, loss: () => tf.mul(tf.sum(p.value), Number.NaN) as tf.Scalar });
    await expect(run).rejects.toThrow(/loss became NaN at step 1.*learning rate is not the cause/s);
    p.dispose();
  });
});

describe('run folder: memory with periodic evaluation', () => {
  it('numTensors is flat and the V8 heap after a full collection is flat across evaluations (RSS growth between collections is garbage, not a leak)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const samples: { tensors: number; heapMB: number }[] = [];
    const cfg = config('memory', ['train.steps=12', 'train.evalEvery=2']);
    await runTrain(cfg, {
      noEval: true,
      log: (line) => {
        if (!line.startsWith('eval step')) return;
        gc();
        samples.push({ tensors: tf.memory().numTensors, heapMB: process.memoryUsage().heapUsed / 2 ** 20 });
      },
    });
    expect(samples.length).toBe(5);
    expect(new Set(samples.map((x) => x.tensors)).size).toBe(1);
    const after = samples.slice(2).map((x) => x.heapMB); // the first evaluations compile code and fill caches
    expect(Math.max(...after) - Math.min(...after)).toBeLessThan(4);
  });
});
