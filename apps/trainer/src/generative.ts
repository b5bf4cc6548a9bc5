/**
 * The generative path of `adaptorkit train` / `eval` (IAA, MMA, DAMC, the frozen and full
 * baselines): instruction batches from a data source (ShapesWorld or a LLaVA-format file), scored
 * by greedy generation, plus the text skill of the model's text path next to the untouched base's.
 * The run folder, checkpoints and resume are run/lifecycle.ts's.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { AdaptorkitError, describeWeightStorage, initBackend, manualSeed } from '@adaptorkit/core';
import type { BackendInfo, CausalLM, GenerativeBase, GenerativeModel, VisionEncoder } from '@adaptorkit/core';
import { ShapesWorld, type Split } from '@adaptorkit/data';
import type { RunConfig } from './config.js';
import { limitLengths, type DataCounts } from './data/length.js';
import { makeLlavaSource } from './data/llava-source.js';
import { writeJsonAtomic } from './fsutil.js';
import { methodByName } from './registry.js';
import type { EvalLine, EvalResult, RunInfo } from './run-format.js';
import { makeProgress } from './progress.js';
import { withRunFolder } from './run/folder.js';
import { batchExamples, maskSeed, runFolderTraining, type TrainOptions } from './run/lifecycle.js';
import { prepareRunDir } from './run/prepare.js';
import { basePath, loadBases } from '@adaptorkit/shapes-bases';
import { shapesWorldSource, type DataSource, type SourceExample } from './sources.js';
import { buildBatch, padRight } from './vl/batch.js';

export const MAX_NEW_TOKENS: Record<string, number> = { vqa: 6, grounding: 24, caption: 48, common: 3, instruct: 24, text: 8 };

export interface Env {
  /** The ShapesWorld of `data.worldSeed` (ShapesWorld runs read their data through `source`). */
  sw: ShapesWorld;
  /** Where examples come from: ShapesWorld or a LLaVA-format file. */
  source: DataSource;
  bases: GenerativeBase;
  /** The method attached to the bases (core's GenerativeModel). */
  system: GenerativeModel;
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
  const bases: GenerativeBase = { lm, vision, placeholderIds: raw.placeholderIds, padId: tok.padId, eosId };
  const system = methodByName(cfg.method.name).attach(bases, cfg.method.config);
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

/** Train a generative method: one run folder (run/lifecycle.ts) over instruction batches. */
export async function runGenerativeTrain(cfg: RunConfig, o: TrainOptions = {}): Promise<{ dir: string; info: RunInfo; eval?: EvalResult }> {
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
        ...(env.dataCounts ? { data: env.dataCounts } : {}),
        beforeStep: async (step) => {
          for (let m = 0; m < Math.max(1, t.accumulation); m++) await source.prefetch(batchExamples(examples, cfg.seed, step, m, t.batchSize));
        },
        loss: (step, micro, meter) => {
          const batch = buildBatch(source, batchExamples(examples, cfg.seed, step, micro, t.batchSize), { tokensPerInput: system.tokensPerInput });
          meter.tokens += batch.lengths.reduce((a, b) => a + b, 0);
          return system.loss(batch, true, maskSeed(cfg.seed, step, micro));
        },
        evalVal: async () => (await evaluate(env, cfg.data.task, 'val', Math.min(cfg.data.evalExamples, 100))).metrics,
        finish: async (step) => {
          await system.save(path.join(dir, 'final'), { basePath: basePath(cfg.base.lm, 'lm') });
          if (o.noEval) return {};
          return { result: await finalEval(env, cfg, dir, { step }, log), extras: methodExtras(env) };
        },
      },
      o,
    );
  });
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
export async function finalEval(env: Env, cfg: RunConfig, dir: string, info: Pick<RunInfo, 'step'>, log: (l: string) => void, file = 'eval.json'): Promise<EvalResult> {
  const t0 = performance.now();
  const { metrics, byTemplate, samples } = await evaluate(env, cfg.data.task, 'test', cfg.data.evalExamples);
  const text = textSkill(env, cfg.data.textEvalExamples);
  const base = await baseTextSkill(cfg);
  const result: EvalResult = { step: info.step, split: 'test', task: cfg.data.task, metrics, ...(byTemplate ? { byTemplate } : {}), ...(text ? { textSkill: text } : {}), ...(base ? { baseTextSkill: base } : {}), samples };
  await writeJsonAtomic(path.join(dir, file), result);
  if (file === 'eval.json') await fs.appendFile(path.join(dir, 'metrics.jsonl'), `${JSON.stringify({ kind: 'eval', step: info.step, split: 'test', metrics, time: new Date().toISOString() } satisfies EvalLine)}\n`);
  const skill = text && base
    ? ` | text path: perplexity ${text.perplexity.toFixed(3)} (base ${base.perplexity.toFixed(3)}), text tasks ${(100 * text.textTaskAccuracy).toFixed(1)}% (base ${(100 * base.textTaskAccuracy).toFixed(1)}%)`
    : '';
  log(`test ${cfg.data.task}: ${JSON.stringify(metrics)}${skill} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return result;
}

/**
 * Method facts on fixed probes for run.json's extras (e.g. MMA's routing weights on ShapesWorld
 * text questions vs image questions); undefined when the method has none or the source is not ShapesWorld.
 */
export function methodExtras(env: Env): Record<string, unknown> | undefined {
  if (!env.system.extras || env.source.kind !== 'shapesworld') return undefined;
  const mk = (task: 'text' | 'vqa') => buildBatch(env.source, env.source.examples('val', task).slice(0, 16), { tokensPerInput: env.system.tokensPerInput, promptOnly: true });
  return env.system.extras({ text: mk('text'), image: mk('vqa') });
}
