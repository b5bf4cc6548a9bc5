/**
 * The run folder every `adaptorkit train` leaves behind, readable by a colleague and by `report`.
 * Defined once, here: zod schemas (what the report validates when it reads a folder) and the TS
 * types the writers use, inferred from them.
 *
 *   runs/<name>/
 *     config.yaml        the resolved config (defaults filled in, CLI overrides applied)
 *     run.json           RunInfo: what ran, where, on which backend, status, sizes, timings
 *     metrics.jsonl      one MetricsLine per line: training steps and evaluations
 *     eval.json          EvalResult of the final evaluation (when run)
 *     summary.json       RunSummary: the headline numbers of a completed run
 *     checkpoints/step-NNNNNN/   adapter + optimizer state, written atomically (newest train.keepCheckpoints kept)
 *     final/             the trained adapter (adaptorkit_adapter.safetensors + adaptorkit_adapter.json)
 *     run.lock/, run.lock.json   present while a writer holds the run (run/lock.ts): its PID and host
 *
 * Objects are loose (a reader keeps fields a newer writer added). A NaN/inf number is written by
 * JSON.stringify as null: it reads back as NaN.
 */
import { z } from 'zod';
import type { DataCounts } from './data/length.js';

/** A number that may have been written as null (NaN / inf): reads back as NaN. */
const jsonNumber = z.number().nullable().transform((v) => v ?? Number.NaN);
const metricsSchema = z.record(z.string(), jsonNumber);
const textSkillSchema = z.object({ perplexity: jsonNumber, textTaskAccuracy: jsonNumber });

export const runStatusSchema = z.enum(['running', 'completed', 'failed', 'interrupted']);
export type RunStatus = z.infer<typeof runStatusSchema>;

export const machineInfoSchema = z.looseObject({
  hostname: z.string(),
  platform: z.string(),
  arch: z.string(),
  cpus: z.number(),
  cpuModel: z.string(),
  memoryGB: z.number(),
  node: z.string(),
});
export type MachineInfo = z.infer<typeof machineInfoSchema>;

/** run.json */
export const runInfoSchema = z.looseObject({
  name: z.string().min(1),
  /** Method name as in the trainer registry (iaa, mma, mwa, damc-naive, damc-decoupled, full, frozen, ...). */
  method: z.string(),
  status: runStatusSchema,
  /** Human-readable reason for failed / interrupted. */
  statusDetail: z.string().optional(),
  backend: z.looseObject({ name: z.string(), package: z.string(), gpu: z.boolean(), detail: z.string().optional() }),
  /** How the frozen base LM's matrices were held (base.weightsDtype); absent in runs before it existed (f32). */
  weightsDtype: z.enum(['f32', 'bf16']).optional(),
  /** train.recompute of the run; absent in runs before it existed (none). */
  recompute: z.enum(['none', 'layers']).optional(),
  machine: machineInfoSchema,
  seed: z.number(),
  startedAt: z.string(),
  finishedAt: z.string().optional(),
  /** Optimizer steps completed so far. */
  step: z.number().int().nonnegative(),
  totalSteps: z.number().int().nonnegative(),
  trainableParams: z.number().nonnegative(),
  totalParams: z.number().nonnegative(),
  /** 100 * trainable / total. */
  trainablePercent: z.number(),
  /** Median wall time of one optimizer step, ms. */
  medianStepMs: z.number().optional(),
  /** Median training throughput: non-padding tokens per second. */
  tokensPerSec: z.number().optional(),
  /** Peak resident set size of the process, MB. */
  peakRssMB: z.number().optional(),
  /** Training wall time, seconds (excluding evaluation). */
  trainSeconds: z.number().optional(),
  /** Method-specific extras a report can show, e.g. { routing: { text: number[][], image: number[][] } }. */
  extras: z.record(z.string(), z.unknown()).optional(),
  /** LLaVA data: the template used, records per split, and what data.maxLength / data.onTooLong did (data/length.ts). */
  data: z.custom<DataCounts>((v) => v === undefined || (typeof v === 'object' && v !== null)).optional(),
});
export type RunInfo = z.infer<typeof runInfoSchema>;

/** A training step line of metrics.jsonl. */
export const stepLineSchema = z.looseObject({
  kind: z.literal('step'),
  step: z.number().int().nonnegative(),
  loss: jsonNumber,
  lr: z.number(),
  gradNorm: jsonNumber.optional(),
  ms: z.number(),
  /** Non-padding tokens in the step's batches (all micro-batches). */
  tokens: z.number().optional(),
  tokensPerSec: z.number().optional(),
  /** ISO time. */
  time: z.string(),
});
export type StepLine = z.infer<typeof stepLineSchema>;

/** An evaluation line: metric name -> value (accuracies in 0..1, perplexity, R@K in 0..1). */
export const evalLineSchema = z.looseObject({
  kind: z.literal('eval'),
  step: z.number().int().nonnegative(),
  split: z.enum(['val', 'test']),
  metrics: metricsSchema,
  time: z.string(),
});
export type EvalLine = z.infer<typeof evalLineSchema>;

export const metricsLineSchema = z.discriminatedUnion('kind', [stepLineSchema, evalLineSchema]);
export type MetricsLine = z.infer<typeof metricsLineSchema>;

/** eval.json */
export const evalResultSchema = z.looseObject({
  step: z.number().int().nonnegative(),
  split: z.enum(['val', 'test']),
  /** The task scored (e.g. 'vqa', 'grounding', 'retrieval', 'common'). */
  task: z.string(),
  metrics: metricsSchema,
  /** Accuracy per question template, where the task has templates. */
  byTemplate: z.record(z.string(), z.object({ accuracy: jsonNumber, n: z.number() })).optional(),
  /** Text skill of the (possibly frozen) language path: held-out perplexity and text-task accuracy. */
  textSkill: textSkillSchema.optional(),
  /** The same measured on the untouched base LM (loaded afresh): what freezing must preserve. */
  baseTextSkill: textSkillSchema.optional(),
  /** A few generations for a human to read. */
  samples: z.array(z.object({ prompt: z.string(), answer: z.string(), prediction: z.string() })).optional(),
});
export type EvalResult = z.infer<typeof evalResultSchema>;

/** eval.json of a retrieval run: R@K of the trained model and of the frozen base on the same pairs. */
export const retrievalEvalResultSchema = evalResultSchema.extend({ frozenBaseMetrics: metricsSchema });
export type RetrievalEvalResult = z.infer<typeof retrievalEvalResultSchema>;

/** summary.json of a completed run (a retrieval run adds frozenBaseMetrics). */
export const runSummarySchema = z.looseObject({
  name: z.string(),
  method: z.string(),
  status: runStatusSchema,
  task: z.string().optional(),
  steps: z.number(),
  metrics: metricsSchema,
  textSkill: textSkillSchema.optional(),
  baseTextSkill: textSkillSchema.optional(),
  trainableParams: z.number(),
  totalParams: z.number(),
  trainablePercent: z.number(),
  medianStepMs: z.number().optional(),
  tokensPerSec: z.number().optional(),
  trainSeconds: z.number().optional(),
  peakRssMB: z.number().optional(),
  backend: z.string(),
});
export type RunSummary = z.infer<typeof runSummarySchema>;
