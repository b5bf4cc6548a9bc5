/**
 * `adaptorkit train`: one config -> one run folder (see run-format.ts). Batches are drawn from a
 * per-step seeded RNG, so a run resumed from a checkpoint continues exactly as an uninterrupted
 * one; checkpoints are written to a temp folder and renamed, so a crash never leaves half of one.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { AdamW, AdaptorkitError, defaultParamGroups, describeWeightStorage, initBackend, manualSeed, Rng, saveAdapter, tf } from '@adaptorkit/core';
import type { BackendInfo, CausalLM, Parameter, VisionEncoder } from '@adaptorkit/core';
import { ShapesWorld, type Split } from '@adaptorkit/data';
import { loadRunConfigFile } from './config/run-config.js';
import type { RunConfig } from './config.js';
import { limitLengths, type DataCounts } from './data/length.js';
import { makeLlavaSource } from './data/llava-source.js';
import { exists, writeFileAtomic, writeJsonAtomic } from './fsutil.js';
import { checkpointName, latestCheckpoint, loadCheckpoint, pruneCheckpoints, saveCheckpoint } from './run/checkpoints.js';
import { readRunInfo } from './run/files.js';
import { assertRunLockHeld, withRunFolder } from './run/folder.js';
import { prepareRunDir } from './run/prepare.js';
import { repairMetrics } from './run/metrics.js';
import { signalExitCode, watchStopSignals, writeJsonSyncAtomic } from './run/signals.js';
import { errorDetail, recordRunEnd } from './run/status.js';
import { trainLoop } from '@adaptorkit/core';
import { methodByName, type Bases, type TrainSystem } from './methods/index.js';
import { isRetrievalRun, maskSeed, runRetrievalTrain } from './retrieval.js';
import type { EvalLine, EvalResult, MachineInfo, RunInfo, RunSummary, StepLine } from './run-format.js';
import { makeProgress, type Progress } from './progress.js';
import { basePath, loadBases } from '@adaptorkit/shapes-bases';
import { shapesWorldSource, type DataSource, type SourceExample } from './sources.js';
import { buildBatch, padRight } from './vl/batch.js';

export const MAX_NEW_TOKENS: Record<string, number> = { vqa: 6, grounding: 24, caption: 48, common: 3, instruct: 24, text: 8 };

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

/** Read a run YAML: validated, paths absolute (see config/run-config.ts). */
export async function loadRunConfig(file: string, overrides: readonly string[] = []): Promise<RunConfig> {
  return loadRunConfigFile(file, overrides);
}

export interface TrainOptions {
  resume?: boolean;
  log?: (line: string) => void;
  /** Stop after this many steps of this invocation (tests use it to simulate an interruption). */
  stopAfter?: number;
  /** Skip the final evaluation. */
  noEval?: boolean;
}

export interface Env {
  /** The ShapesWorld of `data.worldSeed` (ShapesWorld runs read their data through `source`). */
  sw: ShapesWorld;
  /** Where examples come from: ShapesWorld or a LLaVA-format file. */
  source: DataSource;
  bases: Bases;
  system: TrainSystem;
  backend: BackendInfo;
  /** LLaVA data: records per split and how many were too long (run.json `data`). */
  dataCounts?: DataCounts;
}

async function makeSource(cfg: RunConfig, sw: ShapesWorld, lm: CausalLM, vision: VisionEncoder, log: (l: string) => void): Promise<DataSource> {
  if (cfg.data.source === 'shapesworld') {
    if (lm.config.vocabSize !== sw.tokenizer.vocabSize) {
      throw new AdaptorkitError('INVALID_CONFIG', `base.lm has vocabulary ${lm.config.vocabSize} but the ShapesWorld tokenizer has ${sw.tokenizer.vocabSize}: use the ShapesWorld base LM (base.lm: shapesworld) for ShapesWorld tasks, or data.source: llava for a real model`);
    }
    return shapesWorldSource(sw);
  }
  return makeLlavaSource(cfg, lm, vision, log); // data/llava-source.ts
}

export async function setup(cfg: RunConfig, log: (l: string) => void): Promise<Env> {
  const backend = await initBackend(cfg.backend as never, { log });
  // New weights (e.g. the image projector) draw from core's init RNG: seed it per run, or a run's
  // starting point depends on what else this process built before (the demo once ran its rows in one
  // process, and its LoRA row scored 32.0% there against 26.7% on its own).
  manualSeed(cfg.seed);
  const sw = new ShapesWorld({ seed: cfg.data.worldSeed });
  const { lm, vision } = await loadBases(cfg.base.lm, cfg.base.vision, { weightsDtype: cfg.base.weightsDtype });
  if (cfg.base.weightsDtype === 'bf16') log(`base.lm ${describeWeightStorage(lm)}`);
  const raw = await makeSource(cfg, sw, lm, vision, log);
  const tok = raw.tokenizer;
  const eosId = raw.stopIds?.[0] ?? tok.eosId ?? tok.padId; // a chat template's end-of-turn token ends answers
  const bases: Bases = { lm, vision, placeholderIds: raw.placeholderIds, padId: tok.padId, eosId };
  const system = methodByName(cfg.method.name).build(bases, cfg.method.config);
  lm.recompute = cfg.train.recompute;
  const { source, counts } = limitLengths(raw, cfg, lm.config.maxPositionEmbeddings, system.tokensPerInput, log); // data/length.ts
  return { sw, source, bases, system, backend, ...(counts ? { dataCounts: counts } : {}) };
}

/** Decode generated ids to answer strings. */
function decodeAll(source: DataSource, rows: number[][]): string[] {
  return rows.map((r) => source.tokenizer.decode(r));
}

export async function evaluate(env: Env, task: string, split: Split, n: number, batchSize = 32): Promise<{ metrics: Record<string, number>; byTemplate?: EvalResult['byTemplate']; samples: EvalResult['samples'] }> {
  const { source, system } = env;
  const examples = source.examples(split, task).slice(0, n);
  if (!examples.length) throw new AdaptorkitError('INVALID_CONFIG', `no ${split} examples to evaluate ${task} on`);
  const preds: string[] = [];
  for (let i = 0; i < examples.length; i += batchSize) {
    const chunk = examples.slice(i, i + batchSize);
    await source.prefetch(chunk);
    const batch = buildBatch(source, chunk, { tokensPerInput: system.tokensPerInput, promptOnly: true, padLeft: true });
    preds.push(...decodeAll(source, system.generate(batch, MAX_NEW_TOKENS[task] ?? 32)));
  }
  const { metrics, byTemplate } = source.score(task, preds, examples);
  const samples = examples.slice(0, 8).map((e, i) => ({ prompt: e.prompt, answer: e.answer, prediction: preds[i]! }));
  return { metrics, ...(byTemplate ? { byTemplate } : {}), samples };
}

/**
 * Held-out perplexity and exact-answer text-task accuracy through the model's text path; undefined
 * when the data source has no text world (LLaVA files).
 */
export function textSkill(env: Env, n = 200): { perplexity: number; textTaskAccuracy: number } | undefined {
  const { source, system } = env;
  const data = source.textSkillData?.(n);
  if (!data) return undefined;
  const tok = source.tokenizer;
  const bos = tok.bosId !== undefined ? [tok.bosId] : [];
  const eos = tok.eosId !== undefined ? [tok.eosId] : [];
  let nll = 0;
  let tokens = 0;
  for (let i = 0; i < data.lines.length; i += 50) {
    const t = padRight(data.lines.slice(i, i + 50).map((l) => [...bos, ...tok.encode(l), ...eos]), tok.padId);
    const r = system.textNll(t);
    t.dispose();
    nll += r.nll;
    tokens += r.tokens;
  }
  const qa = data.questions;
  const preds: string[] = [];
  for (let i = 0; i < qa.length; i += 50) {
    const rows = qa.slice(i, i + 50).map((e) => [...bos, ...tok.encode(e.prompt)]);
    preds.push(...decodeAll(source, system.generateText(rows, MAX_NEW_TOKENS.text!)));
  }
  return { perplexity: Math.exp(nll / Math.max(1, tokens)), textTaskAccuracy: source.score('text', preds, qa).metrics.accuracy ?? NaN };
}

/** The run's training examples: the task's train split (or its first N), plus replayed pretraining text when data.textReplay > 0. */
export function trainExamples(source: DataSource, cfg: RunConfig): SourceExample[] {
  const all = source.examples('train', cfg.data.task);
  if (!all.length) throw new AdaptorkitError('INVALID_CONFIG', `no training examples for ${cfg.data.task}`);
  const task = cfg.data.trainExamples ? all.slice(0, cfg.data.trainExamples) : all;
  const r = cfg.data.textReplay;
  if (!r) return task;
  if (!source.replayLines) throw new AdaptorkitError('INVALID_CONFIG', `data.textReplay: the ${source.kind} source has no pretraining text to replay (ShapesWorld only)`);
  // rows drawn uniformly from task + replay examples, so a fraction r of them are replayed lines
  const lines = source.replayLines(Math.round((task.length * r) / (1 - r)));
  return [...task, ...lines.map((l, i) => ({ id: `replay-${i}`, task: 'replay', inputs: [], prompt: '', answer: l }))];
}

/** The examples of optimizer step `step`, micro-batch `micro`: a pure function of (seed, step, micro). */
export function batchExamples<E>(examples: readonly E[], seed: number, step: number, micro: number, batchSize: number): E[] {
  const rng = new Rng((seed * 1_000_003 + step * 131 + micro) >>> 0);
  return Array.from({ length: batchSize }, () => examples[rng.int(examples.length)]!);
}

export { latestCheckpoint, loadCheckpoint, saveCheckpoint };
export { runDirOf, withRunFolder } from './run/folder.js';

export { prepareRunDir } from './run/prepare.js';

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
  /** After the last step: save the adapter and, unless noEval, score the run. */
  finish: (info: RunInfo) => Promise<R | undefined>;
  /** Extra fields for summary.json. */
  summaryExtra?: (result: R) => Record<string, unknown>;
}

/**
 * The one training run every method kind uses: optimizer and resume, run.json / config.yaml /
 * metrics.jsonl, progress, SIGINT, periodic and final checkpoints, NaN stop (via trainLoop), status,
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
  const result = await spec.finish(info);
  info.finishedAt = new Date().toISOString();
  await writeSummary(dir, { ...info, status: 'completed' }, result, result && spec.summaryExtra ? spec.summaryExtra(result) : {});
  info.status = 'completed';
  await writeJsonAtomic(runJson, info);
  return { dir, info, eval: result };
}

export async function runTrain(cfg: RunConfig, o: TrainOptions = {}): Promise<{ dir: string; info: RunInfo; eval?: EvalResult }> {
  if (isRetrievalRun(cfg)) return runRetrievalTrain(cfg, o); // retrieval methods (MWA): image-caption pairs, R@K (retrieval.ts)
  const { progress, log } = makeProgress(o.log);
  await prepareRunDir(cfg, o);
  const env = await setup(cfg, log); // a config refused here leaves no run folder
  const { system, source } = env;
  const examples = trainExamples(source, cfg);
  const t = cfg.train;
  return withRunFolder(cfg, { ...o, log }, async (dir) => {
    return runFolderTraining(
      {
        cfg,
        dir,
        log,
        progress,
        backend: env.backend,
        named: system.trainable(),
        totalParams: system.totalParameters(),
        what: cfg.data.source === 'llava' ? 'LLaVA data' : cfg.data.task,
        data: env.dataCounts,
        beforeStep: async (step) => {
          for (let m = 0; m < Math.max(1, t.accumulation); m++) await source.prefetch(batchExamples(examples, cfg.seed, step, m, t.batchSize));
        },
        loss: (step, micro, meter) => {
          const batch = buildBatch(source, batchExamples(examples, cfg.seed, step, micro, t.batchSize), { tokensPerInput: system.tokensPerInput });
          meter.tokens += batch.lengths.reduce((a, b) => a + b, 0);
          return system.loss(batch, true, maskSeed(cfg.seed, step, micro));
        },
        evalVal: async () => (await evaluate(env, cfg.data.task, 'val', Math.min(cfg.data.evalExamples, 100))).metrics,
        finish: async (info) => {
          await saveAdapter(path.join(dir, 'final'), system.module, { ...system.describe(), basePath: basePath(cfg.base.lm, 'lm') });
          return o.noEval ? undefined : finalEval(env, cfg, dir, info, log);
        },
      },
      o,
    );
  });
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

/**
 * Text skill of the untouched base LM, loaded afresh from disk (a full fine-tune changes the
 * in-memory copy): the reference a frozen method's text path must equal.
 */
const baseSkillCache = new Map<string, { perplexity: number; textTaskAccuracy: number } | undefined>();

export async function baseTextSkill(cfg: RunConfig): Promise<{ perplexity: number; textTaskAccuracy: number } | undefined> {
  // Measured once per process for the same base files and text eval set (the demo runs many rows on one base).
  const key = JSON.stringify([basePath(cfg.base.lm, 'lm'), cfg.data.source, cfg.data.worldSeed, cfg.data.textEvalExamples, cfg.backend]);
  if (baseSkillCache.has(key)) {
    const hit = baseSkillCache.get(key);
    return hit && { ...hit };
  }
  const env = await setup({ ...cfg, method: { name: 'frozen', config: {} } }, () => {});
  try {
    const r = textSkill(env, cfg.data.textEvalExamples);
    baseSkillCache.set(key, r);
    return r && { ...r };
  } finally {
    env.system.module.dispose();
    env.bases.lm.dispose();
    env.bases.vision.dispose();
  }
}

/** Score the run; writes `file` (eval.json by default; `adaptorkit eval --task` writes eval-<task>-<n>.json beside it). */
export async function finalEval(env: Env, cfg: RunConfig, dir: string, info: RunInfo, log: (l: string) => void, file = 'eval.json'): Promise<EvalResult> {
  const t0 = performance.now();
  const { metrics, byTemplate, samples } = await evaluate(env, cfg.data.task, 'test', cfg.data.evalExamples);
  const text = textSkill(env, cfg.data.textEvalExamples);
  const base = await baseTextSkill(cfg);
  const result: EvalResult = { step: info.step, split: 'test', task: cfg.data.task, metrics, ...(byTemplate ? { byTemplate } : {}), ...(text ? { textSkill: text } : {}), ...(base ? { baseTextSkill: base } : {}), samples };
  await writeJsonAtomic(path.join(dir, file), result);
  if (file === 'eval.json') await fs.appendFile(path.join(dir, 'metrics.jsonl'), `${JSON.stringify({ kind: 'eval', step: info.step, split: 'test', metrics, time: new Date().toISOString() } satisfies EvalLine)}\n`);
  if (env.system.extras && env.source.kind === 'shapesworld') {
    // Method facts on fixed probes: ShapesWorld text questions vs image questions (e.g. MMA routing).
    const mk = (task: 'text' | 'vqa') => buildBatch(env.source, env.source.examples('val', task).slice(0, 16), { tokensPerInput: env.system.tokensPerInput, promptOnly: true });
    info.extras = env.system.extras({ text: mk('text'), image: mk('vqa') });
  }
  const skill = text && base
    ? ` | text path: perplexity ${text.perplexity.toFixed(3)} (base ${base.perplexity.toFixed(3)}), text tasks ${(100 * text.textTaskAccuracy).toFixed(1)}% (base ${(100 * base.textTaskAccuracy).toFixed(1)}%)`
    : '';
  log(`test ${cfg.data.task}: ${JSON.stringify(metrics)}${skill} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return result;
}
