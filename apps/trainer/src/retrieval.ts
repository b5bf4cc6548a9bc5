/**
 * Training and scoring runs of retrieval methods (MWA): the same run folder, checkpoints, resume,
 * SIGINT and NaN handling as `adaptorkit train` (see run-format.ts), but contrastive batches of
 * ShapesWorld image-caption pairs instead of instruction batches, and R@1/5/10 in both directions
 * instead of generated answers. eval.json also holds the frozen base's scores on the same pairs
 * (`frozenBaseMetrics`): the baseline the method must beat.
 *
 * runTrain (train.ts) hands a run to runRetrievalTrain when the method's kind is 'retrieval'; the run
 * folder, checkpoints and resume are run/lifecycle.ts's.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { AdaptorkitError, initBackend, manualSeed, tf } from '@adaptorkit/core';
import type { BackendInfo, BaseLocator, RetrievalEncoder, RetrievalMethod, RetrievalModel } from '@adaptorkit/core';
import { ShapesWorld, type Split } from '@adaptorkit/data';
import type { RunConfig } from './config.js';
import { exists, writeJsonAtomic } from './fsutil.js';
import { METHODS, retrievalMethod } from './registry.js';
import { basePath, retrievalMetrics } from '@adaptorkit/shapes-bases';
import type { EvalLine, RetrievalEvalResult, RunInfo } from './run-format.js';
import { makeProgress } from './progress.js';
import { readRunConfigFile, readRunInfo, readRunMethodName } from './run/files.js';
import { withRunFolder } from './run/folder.js';
import { batchExamples, maskSeed, runFolderTraining, writeSummary, type TrainOptions } from './run/lifecycle.js';
import { prepareRunDir } from './run/prepare.js';

export type { RetrievalEvalResult } from './run-format.js';

export interface RetrievalEnv {
  sw: ShapesWorld;
  method: RetrievalMethod;
  system: RetrievalModel;
  backend: BackendInfo;
}

/** Bases by spec: 'shapesworld' is the shipped folder (models/shapesworld/<part>), anything else a user path. */
const BASES: BaseLocator = { path: basePath };

/** True when the run's method is a retrieval method (unknown names throw, naming the allowed ones). */
export function isRetrievalRun(cfg: RunConfig): boolean {
  return retrievalMethod(cfg.method.name) !== undefined;
}

export async function setupRetrieval(cfg: RunConfig, log: (l: string) => void): Promise<RetrievalEnv> {
  const method = retrievalMethod(cfg.method.name);
  if (!method) throw new AdaptorkitError('INVALID_ARGUMENT', `method '${cfg.method.name}' is not a retrieval method`);
  if (cfg.data.task !== 'retrieval') {
    throw new AdaptorkitError('INVALID_CONFIG', `data.task: '${cfg.data.task}' cannot train method '${method.name}', a retrieval method: set data.task: retrieval`);
  }
  if (cfg.data.source !== 'shapesworld') {
    throw new AdaptorkitError('UNSUPPORTED', `data.source '${cfg.data.source}': retrieval runs use ShapesWorld image-caption pairs so far`);
  }
  const backend = await initBackend(cfg.backend as never, { log });
  manualSeed(cfg.seed); // as in setup (train.ts): a run's initial weights must not depend on what ran before it
  const sw = new ShapesWorld({ seed: cfg.data.worldSeed });
  const system = await method.attach(BASES, cfg.method.config);
  return { sw, method, system, backend };
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

export async function runRetrievalTrain(cfg: RunConfig, o: TrainOptions = {}): Promise<{ dir: string; info: RunInfo; eval?: RetrievalEvalResult }> {
  const { progress, log } = makeProgress(o.log);
  await prepareRunDir(cfg, o); // name, existing run, what --resume may change: checked before the folder is taken
  return withRunFolder(cfg, { ...o, log }, async (dir) => {
    const env = await setupRetrieval(cfg, log);
    const { sw, system } = env;
    const all = sw.retrieval('train');
    const pairs = cfg.data.trainExamples ? all.slice(0, cfg.data.trainExamples) : all;
    const t = cfg.train;
    return runFolderTraining<RetrievalEvalResult>(
      {
        cfg,
        dir,
        log,
        progress,
        backend: env.backend,
        named: system.trainable(),
        totalParams: system.totalParameters(),
        what: `retrieval (${pairs.length} pairs)`,
        ...(system.extras ? { extras: system.extras() } : {}),
        // the loop's tidy disposes the batch tensors; batch and masks are pure functions of (seed, step, micro)
        loss: (step, micro) => system.loss(system.batch(sw, batchExamples(pairs, cfg.seed, step, micro, t.batchSize)), true, maskSeed(cfg.seed, step, micro)),
        evalVal: async () => scoreRetrievalSplit(sw, system, 'val', Math.min(cfg.data.evalExamples, 100)),
        finish: async (step) => {
          await system.save(path.join(dir, 'final'), { basePath: system.basePath });
          return o.noEval ? {} : { result: await finalRetrievalEval(env, cfg, dir, { step }, log) };
        },
        summaryExtra: (result) => ({ frozenBaseMetrics: result.frozenBaseMetrics }),
      },
      o,
    );
  });
}

/**
 * Score the trained model and the frozen base on the first `data.evalExamples` test pairs; writes
 * `file` (eval.json by default) and, for eval.json, a test line in metrics.jsonl.
 */
export async function finalRetrievalEval(env: RetrievalEnv, cfg: RunConfig, dir: string, info: Pick<RunInfo, 'step'>, log: (l: string) => void, file = 'eval.json'): Promise<RetrievalEvalResult> {
  const t0 = performance.now();
  const n = cfg.data.evalExamples;
  const metrics = scoreRetrievalSplit(env.sw, env.system, 'test', n);
  const base = await env.method.frozenBase(BASES, cfg.method.config);
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
  const name = await readRunMethodName(file);
  return name !== undefined && METHODS.some((m) => m.name === name && m.kind === 'retrieval');
}

/**
 * `adaptorkit eval <run>` for a retrieval run: load the base, attach the method, load the trained
 * adapter, score it and the frozen base. Writes eval.json, or eval-retrieval-<n>.json with `n`.
 */
export async function evalRetrievalRun(dir: string, o: { task?: string; n?: number; log?: (l: string) => void } = {}): Promise<RetrievalEvalResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  if (o.task !== undefined && o.task !== 'retrieval') throw new AdaptorkitError('INVALID_ARGUMENT', `--task '${o.task}': a retrieval run is scored on retrieval only`);
  if (o.n !== undefined && (!Number.isInteger(o.n) || o.n <= 0)) throw new AdaptorkitError('INVALID_ARGUMENT', `--n must be a positive integer, got ${o.n}`);
  const cfgFile = path.join(dir, 'config.yaml');
  const cfg = await readRunConfigFile(cfgFile);
  const adapterDir = path.join(dir, 'final');
  if (!(await exists(adapterDir))) {
    throw new AdaptorkitError('INVALID_ARGUMENT', `run ${dir} has no final adapter (final/): it did not complete; continue it with \`adaptorkit train ${cfgFile} --resume\``);
  }
  if (o.n) cfg.data.evalExamples = o.n;
  const env = await setupRetrieval(cfg, log);
  try {
    await env.system.load(adapterDir);
    const info = await readRunInfo(path.join(dir, 'run.json'));
    const result = await finalRetrievalEval(env, cfg, dir, info, log, o.n ? `eval-retrieval-${o.n}.json` : 'eval.json');
    if (!o.n) await writeSummary(dir, info, result, { frozenBaseMetrics: result.frozenBaseMetrics });
    return result;
  } finally {
    env.system.dispose();
  }
}
