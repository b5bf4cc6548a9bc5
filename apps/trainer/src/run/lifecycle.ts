/**
 * The run lifecycle every kind of run shares (generative.ts, retrieval.ts), inside the locked run
 * folder of folder.ts (see ../run-format.ts): optimizer and resume, run.json / config.yaml /
 * metrics.jsonl (repaired on resume), progress, SIGINT/SIGTERM/SIGHUP, periodic and final checkpoints
 * (pruned to train.keepCheckpoints), NaN stop, status (every exit path recorded), summary.json. Batches are drawn from a per-step
 * seeded RNG, so a run resumed from a checkpoint continues exactly as an uninterrupted one.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { AdamW, defaultParamGroups, Rng, tf, trainLoop } from '@adaptorkit/core';
import type { BackendInfo, Parameter } from '@adaptorkit/core';
import type { RunConfig } from '../config.js';
import { exists, writeFileAtomic, writeJsonAtomic } from '../fsutil.js';
import type { EvalLine, EvalResult, MachineInfo, RunInfo, RunSummary, StepLine } from '../run-format.js';
import type { Progress } from '../progress.js';
import { checkpointName, latestCheckpoint, loadCheckpoint, pruneCheckpoints, saveCheckpoint } from './checkpoints.js';
import { readRunInfo } from './files.js';
import { assertRunLockHeld } from './folder.js';
import { repairMetrics } from './metrics.js';
import { signalExitCode, watchStopSignals, writeJsonSyncAtomic } from './signals.js';
import { errorDetail, recordRunEnd } from './status.js';

export interface TrainOptions {
  resume?: boolean;
  log?: (line: string) => void;
  /** Stop after this many steps of this invocation (tests use it to simulate an interruption). */
  stopAfter?: number;
  /** Skip the final evaluation. */
  noEval?: boolean;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    hostname: os.hostname(),
    platform: os.platform(),
    arch: os.arch(),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  };
}

/** The examples of optimizer step `step`, micro-batch `micro`: a pure function of (seed, step, micro). */
export function batchExamples<E>(examples: readonly E[], seed: number, step: number, micro: number, batchSize: number): E[] {
  const rng = new Rng((seed * 1_000_003 + step * 131 + micro) >>> 0);
  return Array.from({ length: batchSize }, () => examples[rng.int(examples.length)]!);
}

/** Seed of the dropout / drop-path masks of optimizer step `step`, micro-batch `micro`. */
export function maskSeed(seed: number, step: number, micro: number): number {
  return (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca6b) ^ Math.imul(micro + 1, 0xc2b2ae35)) >>> 0;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : 0;
}

/** What differs between kinds of runs (instruction batches vs retrieval pairs); runFolderTraining does the rest. */
export interface RunSpec<R extends EvalResult> {
  cfg: RunConfig;
  dir: string;
  log: (line: string) => void;
  progress: Progress;
  backend: BackendInfo;
  named: [string, Parameter][];
  totalParams: number;
  /** What the run trains on, for the first log line (e.g. 'vqa', 'retrieval (3000 pairs)'). */
  what: string;
  /** Method facts known before training (run.json extras). */
  extras?: Record<string, unknown>;
  /** What the data length rule kept (run.json data). */
  data?: RunInfo['data'];
  beforeStep?: (step: number) => Promise<void>;
  /** Loss of micro-batch `micro` of step `step` (inside the loop's tidy); adds its non-padding tokens to meter.tokens. */
  loss: (step: number, micro: number, meter: { tokens: number }) => tf.Scalar;
  /** Metrics on the val split (every train.evalEvery steps). */
  evalVal: (step: number) => Promise<Record<string, number>>;
  /**
   * After the last step: save the adapter and, unless noEval, score the run at step `step`. Returns
   * what it found: the result (eval.json) and method facts measured after training (run.json extras).
   */
  finish: (step: number) => Promise<{ result?: R; extras?: Record<string, unknown> }>;
  /** Extra fields for summary.json. */
  summaryExtra?: (result: R) => Record<string, unknown>;
}

/**
 * The one training run every method kind uses: optimizer and resume, run.json / config.yaml /
 * metrics.jsonl, progress, SIGINT/SIGTERM/SIGHUP, periodic and final checkpoints, NaN stop (via trainLoop), status,
 * summary.json.
 */
export async function runFolderTraining<R extends EvalResult>(spec: RunSpec<R>, o: TrainOptions): Promise<{ dir: string; info: RunInfo; eval?: R }> {
  const { cfg, dir, log, backend, named } = spec;
  const runJson = path.join(dir, 'run.json');
  const trainableParams = named.reduce((s, [, p]) => s + p.size, 0);
  const t = cfg.train;
  const opt = new AdamW(defaultParamGroups(named, t.weightDecay), { lr: t.lr, betas: t.betas });
  let startStep = 0;
  let info: RunInfo | undefined;
  try {
    const ckpt = o.resume ? await latestCheckpoint(dir) : undefined;
    if (ckpt) {
      startStep = await loadCheckpoint(ckpt, named, opt, t.steps);
      log(`resuming ${cfg.name} from ${path.relative(process.cwd(), ckpt)} (step ${startStep})`);
    }
    const prevInfo = o.resume && (await exists(runJson)) ? await readRunInfo(runJson) : undefined;
    info = {
      name: cfg.name,
      method: cfg.method.name,
      status: 'running',
      backend: { name: backend.name, package: backend.package, gpu: backend.gpu, ...(backend.detail ? { detail: backend.detail } : {}) },
      weightsDtype: cfg.base.weightsDtype,
      recompute: cfg.train.recompute,
      machine: machineInfo(),
      seed: cfg.seed,
      startedAt: prevInfo?.startedAt ?? new Date().toISOString(),
      step: startStep,
      totalSteps: t.steps,
      trainableParams,
      totalParams: spec.totalParams,
      trainablePercent: (100 * trainableParams) / spec.totalParams,
      trainSeconds: prevInfo?.trainSeconds ?? 0,
      ...(spec.extras ? { extras: spec.extras } : {}),
      ...(spec.data ? { data: spec.data } : {}),
    };
    if (o.resume) {
      const r = await repairMetrics(path.join(dir, 'metrics.jsonl'), startStep);
      if (r.partialBytes || r.droppedLines) log(`metrics.jsonl: dropped ${r.droppedLines} line(s) after step ${startStep} and ${r.partialBytes} byte(s) of a partial line`);
    }
    await writeFileAtomic(path.join(dir, 'config.yaml'), toYaml(cfg));
    await writeJsonAtomic(runJson, info);
    return await trainInFolder(spec, o, opt, info, startStep);
  } catch (err) {
    opt.dispose();
    if (info) await recordRunEnd(runJson, info, 'failed', errorDetail(err), log);
    throw err;
  }
}

async function trainInFolder<R extends EvalResult>(spec: RunSpec<R>, o: TrainOptions, opt: AdamW, info: RunInfo, startStep: number): Promise<{ dir: string; info: RunInfo; eval?: R }> {
  const { cfg, dir, log, progress, named } = spec;
  const runJson = path.join(dir, 'run.json');
  const t = cfg.train;
  log(`${cfg.name}: ${cfg.method.name} on ${spec.what}, ${info.trainableParams.toLocaleString()} of ${spec.totalParams.toLocaleString()} parameters trainable (${info.trainablePercent.toFixed(2)}%)`);

  const metricsFile = path.join(dir, 'metrics.jsonl');
  const lines: string[] = [];
  const flush = async (): Promise<void> => {
    if (lines.length) await fs.appendFile(metricsFile, lines.splice(0).join(''));
  };
  const stepMs: number[] = [];
  const stepTps: number[] = [];
  const meter = { tokens: 0 };
  let peakRss = process.memoryUsage().rss;
  let lastSaved = startStep;
  const trainStart = performance.now();
  let stepsThisRun = 0;
  const save = async (step: number): Promise<void> => {
    await saveCheckpoint(dir, step, named, opt);
    lastSaved = step;
    await pruneCheckpoints(dir, t.keepCheckpoints);
  };
  const stopDetail = (why: string): string => `${why} at step ${info.step}; checkpoint ${checkpointName(lastSaved)} holds step ${lastSaved}: rerun with --resume`;
  const signals = watchStopSignals(
    (sig) => log(`${sig}: finishing this step, then writing a checkpoint`),
    (sig) => {
      info.status = 'interrupted';
      info.statusDetail = stopDetail(`stopped by a second ${sig}`);
      info.finishedAt = new Date().toISOString();
      writeJsonSyncAtomic(runJson, info);
    },
  );
  try {
    await trainLoop({
      named,
      optimizer: opt,
      startStep,
      steps: t.steps,
      lr: t.lr,
      warmupSteps: t.warmupSteps,
      schedule: t.schedule,
      minLrRatio: t.minLrRatio,
      clipNorm: t.clipNorm,
      accumulation: t.accumulation,
      beforeStep: spec.beforeStep,
      loss: (step, micro) => spec.loss(step, micro, meter),
      onStep: async ({ step, loss, lr, gradNorm, ms }) => {
        assertRunLockHeld(dir);
        stepsThisRun++;
        stepMs.push(ms);
        const tokens = meter.tokens;
        meter.tokens = 0;
        const tokensPerSec = ms > 0 ? (1000 * tokens) / ms : 0;
        stepTps.push(tokensPerSec);
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
        lines.push(`${JSON.stringify({ kind: 'step', step, loss, lr, gradNorm, ms, tokens, tokensPerSec, time: new Date().toISOString() } satisfies StepLine)}\n`);
        progress.update({ step, total: t.steps, loss, lr, ms, tokensPerSec });
        if (t.evalEvery > 0 && step % t.evalEvery === 0 && step < t.steps) {
          const metrics = await spec.evalVal(step);
          lines.push(`${JSON.stringify({ kind: 'eval', step, split: 'val', metrics, time: new Date().toISOString() } satisfies EvalLine)}\n`);
          log(`eval step ${step}: ${JSON.stringify(metrics)}`);
        }
        await flush();
        const stop = signals.signal !== undefined || (o.stopAfter !== undefined && stepsThisRun >= o.stopAfter);
        if ((t.saveEvery > 0 && step % t.saveEvery === 0) || stop) await save(step);
        info.step = step;
        return stop;
      },
    });
  } catch (err) {
    await flush().catch((e: unknown) => log(`could not append to ${metricsFile}: ${errorDetail(e)}`));
    throw err;
  } finally {
    progress.done();
    signals.dispose();
  }
  info.trainSeconds = (info.trainSeconds ?? 0) + (performance.now() - trainStart) / 1000;
  info.medianStepMs = median(stepMs);
  info.tokensPerSec = median(stepTps);
  info.peakRssMB = Math.round(peakRss / 2 ** 20);
  if (info.step < t.steps) {
    opt.dispose();
    const sig = signals.signal;
    await recordRunEnd(runJson, info, 'interrupted', stopDetail(sig ? `stopped by ${sig}` : 'stopped'), log);
    log(info.statusDetail!);
    if (sig) process.exitCode = signalExitCode(sig);
    return { dir, info };
  }
  if (lastSaved !== t.steps) await save(t.steps);
  opt.dispose();
  const { result, extras } = await spec.finish(info.step);
  if (extras) info.extras = extras;
  info.finishedAt = new Date().toISOString();
  await writeSummary(dir, { ...info, status: 'completed' }, result, result && spec.summaryExtra ? spec.summaryExtra(result) : {});
  info.status = 'completed';
  await writeJsonAtomic(runJson, info);
  return { dir, info, eval: result };
}

/** summary.json, the one file to read for a finished run's headline numbers (plus `extra` fields, e.g. a retrieval run's frozen-base R@K). */
export async function writeSummary(dir: string, info: RunInfo, result: EvalResult | undefined, extra: Record<string, unknown> = {}): Promise<RunSummary> {
  const summary: RunSummary = {
    name: info.name,
    method: info.method,
    status: info.status,
    task: result?.task,
    steps: info.step,
    metrics: result?.metrics ?? {},
    ...(result?.textSkill ? { textSkill: result.textSkill } : {}),
    ...(result?.baseTextSkill ? { baseTextSkill: result.baseTextSkill } : {}),
    trainableParams: info.trainableParams,
    totalParams: info.totalParams,
    trainablePercent: info.trainablePercent,
    medianStepMs: info.medianStepMs,
    tokensPerSec: info.tokensPerSec,
    trainSeconds: info.trainSeconds,
    peakRssMB: info.peakRssMB,
    backend: info.backend.name,
    ...extra,
  };
  await writeJsonAtomic(path.join(dir, 'summary.json'), summary);
  return summary;
}
