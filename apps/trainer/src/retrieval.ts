/**
 * Training and scoring runs of retrieval methods (MWA): the same run folder, checkpoints, resume,
 * SIGINT and NaN handling as `adaptorkit train` (see run-format.ts), but contrastive batches of
 * ShapesWorld image-caption pairs instead of instruction batches, and R@1/5/10 in both directions
 * instead of generated answers. eval.json also holds the frozen base's scores on the same pairs
 * (`frozenBaseMetrics`): the baseline the method must beat.
 *
 * runTrain hands a run to runRetrievalTrain when the method's registry entry has kind 'retrieval'.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { AdamW, AdaptorkitError, defaultParamGroups, initBackend, loadAdapter, Rng, saveAdapter, tf } from '@adaptorkit/core';
import type { BackendInfo } from '@adaptorkit/core';
import { ShapesWorld, type RetrievalPair, type Split } from '@adaptorkit/data';
import { parseWith } from './config-util.js';
import { RunConfigSchema, type RunConfig } from './config.js';
import { exists, readJson, writeFileAtomic, writeJsonAtomic } from './fsutil.js';
import { trainLoop } from './loop.js';
import { METHODS, retrievalMethod, type RetrievalEncoder, type RetrievalMethodEntry, type RetrievalSystem } from './methods/index.js';
import type { EvalLine, EvalResult, RunInfo, StepLine } from './run-format.js';
import { retrievalMetrics } from './shapes/multiway.js';
import { latestCheckpoint, loadCheckpoint, machineInfo, saveCheckpoint, writeSummary, type TrainOptions } from './train.js';

/** eval.json of a retrieval run: R@K of the trained model and of the frozen base on the same pairs. */
export interface RetrievalEvalResult extends EvalResult {
  frozenBaseMetrics: Record<string, number>;
}

export interface RetrievalEnv {
  sw: ShapesWorld;
  entry: RetrievalMethodEntry;
  system: RetrievalSystem;
  backend: BackendInfo;
}

/** True when the run's method is a retrieval method (unknown names throw, naming the allowed ones). */
export function isRetrievalRun(cfg: RunConfig): boolean {
  return retrievalMethod(cfg.method.name) !== undefined;
}

export async function setupRetrieval(cfg: RunConfig, log: (l: string) => void): Promise<RetrievalEnv> {
  const entry = retrievalMethod(cfg.method.name);
  if (!entry) throw new AdaptorkitError('INVALID_ARGUMENT', `method '${cfg.method.name}' is not a retrieval method`);
  if (cfg.data.task !== 'retrieval') {
    throw new AdaptorkitError('INVALID_CONFIG', `data.task: '${cfg.data.task}' cannot train method '${entry.name}', a retrieval method: set data.task: retrieval`);
  }
  if (cfg.data.source !== 'shapesworld') {
    throw new AdaptorkitError('UNSUPPORTED', `data.source '${cfg.data.source}': retrieval runs use ShapesWorld image-caption pairs so far`);
  }
  const backend = await initBackend(cfg.backend as never, { log });
  const sw = new ShapesWorld({ seed: cfg.data.worldSeed });
  const system = await entry.build(cfg.method.config);
  return { sw, entry, system, backend };
}

/** The pairs of optimizer step `step`, micro-batch `micro`: a pure function of (seed, step, micro), so a resumed run draws the same. */
export function batchPairs(pairs: readonly RetrievalPair[], seed: number, step: number, micro: number, batchSize: number): RetrievalPair[] {
  const rng = new Rng((seed * 1_000_003 + step * 131 + micro) >>> 0);
  return Array.from({ length: batchSize }, () => pairs[rng.int(pairs.length)]!);
}

/** Seed of the dropout / drop-path masks of optimizer step `step`, micro-batch `micro`. */
export function maskSeed(seed: number, step: number, micro: number): number {
  return (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca6b) ^ Math.imul(micro + 1, 0xc2b2ae35)) >>> 0;
}

/** R@1/5/10 both ways (fractions) of an encoder on the first `n` pairs of a split. */
export function scoreRetrievalSplit(sw: ShapesWorld, enc: RetrievalEncoder, split: Split, n: number): Record<string, number> {
  const pairs = sw.retrieval(split).slice(0, n);
  const batch = enc.batch(sw, pairs);
  try {
    return retrievalMetrics({ images: (px) => enc.encodeImages(px), texts: (ids) => enc.encodeTexts(ids) }, batch);
  } finally {
    tf.dispose([batch.pixels, batch.ids]);
  }
}

const fmt = (m: Record<string, number>): string =>
  `i->t R@1/5/10 ${[m.i2t_r1, m.i2t_r5, m.i2t_r10].map((x) => (100 * (x ?? 0)).toFixed(1)).join('/')}, ` +
  `t->i ${[m.t2i_r1, m.t2i_r5, m.t2i_r10].map((x) => (100 * (x ?? 0)).toFixed(1)).join('/')}`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : 0;
}

export async function runRetrievalTrain(cfg: RunConfig, o: TrainOptions = {}): Promise<{ dir: string; info: RunInfo; eval?: RetrievalEvalResult }> {
  const log = o.log ?? ((l: string) => console.log(l));
  const dir = path.resolve(cfg.outputDir, cfg.name);
  const runJson = path.join(dir, 'run.json');
  if ((await exists(runJson)) && !o.resume) {
    throw new AdaptorkitError('INVALID_ARGUMENT', `run folder ${dir} already holds a run: pass --resume to continue it, or choose another name`);
  }
  await fs.mkdir(dir, { recursive: true });
  const env = await setupRetrieval(cfg, log);
  const { sw, system, backend } = env;
  const named = system.trainable();
  const trainableParams = named.reduce((s, [, p]) => s + p.size, 0);
  const totalParams = system.totalParameters();
  const all = sw.retrieval('train');
  const pairs = cfg.data.trainExamples ? all.slice(0, cfg.data.trainExamples) : all;
  const t = cfg.train;
  const opt = new AdamW(defaultParamGroups(named, t.weightDecay), { lr: t.lr, betas: t.betas });
  let startStep = 0;
  const ckpt = o.resume ? await latestCheckpoint(dir) : undefined;
  if (ckpt) {
    startStep = await loadCheckpoint(ckpt, named, opt);
    log(`resuming ${cfg.name} from ${path.relative(process.cwd(), ckpt)} (step ${startStep})`);
  }
  const prevInfo = o.resume && (await exists(runJson)) ? await readJson<RunInfo>(runJson) : undefined;
  const info: RunInfo = {
    name: cfg.name,
    method: cfg.method.name,
    status: 'running',
    backend: { name: backend.name, package: backend.package, gpu: backend.gpu, ...(backend.detail ? { detail: backend.detail } : {}) },
    machine: machineInfo(),
    seed: cfg.seed,
    startedAt: prevInfo?.startedAt ?? new Date().toISOString(),
    step: startStep,
    totalSteps: t.steps,
    trainableParams,
    totalParams,
    trainablePercent: (100 * trainableParams) / totalParams,
    trainSeconds: prevInfo?.trainSeconds ?? 0,
    ...(system.extras ? { extras: system.extras() } : {}),
  };
  await writeFileAtomic(path.join(dir, 'config.yaml'), toYaml(cfg));
  await writeJsonAtomic(runJson, info);
  log(`${cfg.name}: ${cfg.method.name} on retrieval (${pairs.length} pairs), ${trainableParams.toLocaleString()} of ${totalParams.toLocaleString()} parameters trainable (${info.trainablePercent.toFixed(2)}%)`);

  const metricsFile = path.join(dir, 'metrics.jsonl');
  const lines: string[] = [];
  const flush = async (): Promise<void> => {
    if (lines.length) await fs.appendFile(metricsFile, lines.splice(0).join(''));
  };
  let interrupted = false;
  const onSigint = (): void => {
    interrupted = true;
    log('interrupt: finishing this step, then writing a checkpoint');
  };
  process.once('SIGINT', onSigint);
  const stepMs: number[] = [];
  let peakRss = process.memoryUsage().rss;
  let lastSaved = startStep;
  const trainStart = performance.now();
  let stepsThisRun = 0;
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
      // the loop's tidy disposes the batch tensors; batch and masks are pure functions of (seed, step, micro)
      loss: (step, micro) => system.loss(system.batch(sw, batchPairs(pairs, cfg.seed, step, micro, t.batchSize)), true, maskSeed(cfg.seed, step, micro)),
      onStep: async ({ step, loss, lr, gradNorm, ms }) => {
        stepsThisRun++;
        stepMs.push(ms);
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
        lines.push(`${JSON.stringify({ kind: 'step', step, loss, lr, gradNorm, ms, time: new Date().toISOString() } satisfies StepLine)}\n`);
        if (step % 10 === 0 || step === t.steps) log(`step ${step}/${t.steps} loss ${loss.toFixed(4)} lr ${lr.toExponential(2)} (${ms.toFixed(0)} ms)`);
        if (t.evalEvery > 0 && step % t.evalEvery === 0 && step < t.steps) {
          const metrics = scoreRetrievalSplit(sw, system, 'val', Math.min(cfg.data.evalExamples, 100));
          lines.push(`${JSON.stringify({ kind: 'eval', step, split: 'val', metrics, time: new Date().toISOString() } satisfies EvalLine)}\n`);
          log(`eval step ${step}: ${fmt(metrics)}`);
        }
        await flush();
        const stop = interrupted || (o.stopAfter !== undefined && stepsThisRun >= o.stopAfter);
        if ((t.saveEvery > 0 && step % t.saveEvery === 0) || stop) {
          await saveCheckpoint(dir, step, named, opt);
          lastSaved = step;
        }
        info.step = step;
        return stop;
      },
    });
  } catch (err) {
    await flush();
    info.status = 'failed';
    info.statusDetail = (err as Error).message;
    info.finishedAt = new Date().toISOString();
    await writeJsonAtomic(runJson, info);
    throw err;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
  info.trainSeconds = (info.trainSeconds ?? 0) + (performance.now() - trainStart) / 1000;
  info.medianStepMs = median(stepMs);
  info.peakRssMB = Math.round(peakRss / 2 ** 20);
  if (info.step < t.steps) {
    info.status = 'interrupted';
    info.statusDetail = `stopped at step ${info.step}; checkpoint step-${String(lastSaved).padStart(6, '0')} holds it: rerun with --resume`;
    await writeJsonAtomic(runJson, info);
    log(info.statusDetail);
    opt.dispose();
    return { dir, info };
  }
  if (lastSaved !== t.steps) await saveCheckpoint(dir, t.steps, named, opt);
  opt.dispose();
  await saveAdapter(path.join(dir, 'final'), system.module, { ...system.describe(), basePath: system.basePath });
  let result: RetrievalEvalResult | undefined;
  if (!o.noEval) result = await finalRetrievalEval(env, cfg, dir, info, log);
  info.status = 'completed';
  info.finishedAt = new Date().toISOString();
  await writeJsonAtomic(runJson, info);
  await writeRetrievalSummary(dir, info, result);
  return { dir, info, eval: result };
}

/** summary.json as for every run, plus the frozen base's R@K (the baseline) when the run was scored. */
async function writeRetrievalSummary(dir: string, info: RunInfo, result: RetrievalEvalResult | undefined): Promise<void> {
  const summary = await writeSummary(dir, info, result);
  if (result) await writeJsonAtomic(path.join(dir, 'summary.json'), { ...summary, frozenBaseMetrics: result.frozenBaseMetrics });
}

/**
 * Score the trained model and the frozen base on the first `data.evalExamples` test pairs; writes
 * `file` (eval.json by default) and, for eval.json, a test line in metrics.jsonl.
 */
export async function finalRetrievalEval(env: RetrievalEnv, cfg: RunConfig, dir: string, info: RunInfo, log: (l: string) => void, file = 'eval.json'): Promise<RetrievalEvalResult> {
  const t0 = performance.now();
  const n = cfg.data.evalExamples;
  const metrics = scoreRetrievalSplit(env.sw, env.system, 'test', n);
  const base = await env.entry.frozenBase(cfg.method.config);
  let frozenBaseMetrics: Record<string, number>;
  try {
    frozenBaseMetrics = scoreRetrievalSplit(env.sw, base, 'test', n);
  } finally {
    base.dispose();
  }
  const result: RetrievalEvalResult = { step: info.step, split: 'test', task: 'retrieval', metrics, frozenBaseMetrics };
  await writeJsonAtomic(path.join(dir, file), result);
  if (file === 'eval.json') await fs.appendFile(path.join(dir, 'metrics.jsonl'), `${JSON.stringify({ kind: 'eval', step: info.step, split: 'test', metrics, time: new Date().toISOString() } satisfies EvalLine)}\n`);
  log(`test retrieval (${n} pairs): ${fmt(metrics)} | frozen base: ${fmt(frozenBaseMetrics)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return result;
}

/** Whether `dir` holds a run of a retrieval method (reads its config.yaml; false when there is none). */
export async function isRetrievalRunFolder(dir: string): Promise<boolean> {
  const file = path.join(dir, 'config.yaml');
  if (!(await exists(file))) return false;
  const { parse } = await import('yaml');
  const name = (parse(await fs.readFile(file, 'utf8')) as { method?: { name?: unknown } } | null)?.method?.name;
  return typeof name === 'string' && METHODS.some((m) => m.name === name && m.kind === 'retrieval');
}

/**
 * `adaptorkit eval <run>` for a retrieval run: load the base, attach the method, load the trained
 * adapter, score it and the frozen base. Writes eval.json, or eval-retrieval-<n>.json with `n`.
 */
export async function evalRetrievalRun(dir: string, o: { task?: string; n?: number; log?: (l: string) => void } = {}): Promise<RetrievalEvalResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  if (o.task !== undefined && o.task !== 'retrieval') throw new AdaptorkitError('INVALID_ARGUMENT', `--task '${o.task}': a retrieval run is scored on retrieval only`);
  if (o.n !== undefined && (!Number.isInteger(o.n) || o.n <= 0)) throw new AdaptorkitError('INVALID_ARGUMENT', `--n must be a positive integer, got ${o.n}`);
  const { parse } = await import('yaml');
  const cfgFile = path.join(dir, 'config.yaml');
  const cfg = parseWith(RunConfigSchema, parse(await fs.readFile(cfgFile, 'utf8')), cfgFile);
  const adapterDir = path.join(dir, 'final');
  if (!(await exists(adapterDir))) {
    throw new AdaptorkitError('INVALID_ARGUMENT', `run ${dir} has no final adapter (final/): it did not complete; continue it with \`adaptorkit train ${cfgFile} --resume\``);
  }
  if (o.n) cfg.data.evalExamples = o.n;
  const env = await setupRetrieval(cfg, log);
  try {
    await loadAdapter(adapterDir, env.system.module);
    const info = await readJson<RunInfo>(path.join(dir, 'run.json'));
    const result = await finalRetrievalEval(env, cfg, dir, info, log, o.n ? `eval-retrieval-${o.n}.json` : 'eval.json');
    if (!o.n) await writeRetrievalSummary(dir, info, result);
    return result;
  } finally {
    env.system.dispose();
  }
}
