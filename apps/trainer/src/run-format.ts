/**
 * The run folder every `adaptorkit train` leaves behind, readable by a colleague and by `report`:
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
 */
import type { DataCounts } from './data/length.js';

export type RunStatus = 'running' | 'completed' | 'failed' | 'interrupted';

export interface MachineInfo {
  hostname: string;
  platform: string;
  arch: string;
  cpus: number;
  cpuModel: string;
  memoryGB: number;
  node: string;
}

export interface RunInfo {
  name: string;
  /** Method name as in the trainer registry (iaa, mma, mwa, damc-naive, damc-decoupled, full, frozen, ...). */
  method: string;
  status: RunStatus;
  /** Human-readable reason for failed / interrupted. */
  statusDetail?: string;
  backend: { name: string; package: string; gpu: boolean; detail?: string };
  /** How the frozen base LM's matrices were held (base.weightsDtype); absent in runs before it existed (f32). */
  weightsDtype?: 'f32' | 'bf16';
  /** train.recompute of the run; absent in runs before it existed (none). */
  recompute?: 'none' | 'layers';
  machine: MachineInfo;
  seed: number;
  startedAt: string;
  finishedAt?: string;
  /** Optimizer steps completed so far. */
  step: number;
  totalSteps: number;
  trainableParams: number;
  totalParams: number;
  /** 100 * trainable / total. */
  trainablePercent: number;
  /** Median wall time of one optimizer step, ms. */
  medianStepMs?: number;
  /** Median training throughput: non-padding tokens per second. */
  tokensPerSec?: number;
  /** Peak resident set size of the process, MB. */
  peakRssMB?: number;
  /** Training wall time, seconds (excluding evaluation). */
  trainSeconds?: number;
  /** Method-specific extras a report can show, e.g. { routing: { text: number[][], image: number[][] } }. */
  extras?: Record<string, unknown>;
  /** LLaVA data: the template used, records per split, and what data.maxLength / data.onTooLong did. */
  data?: DataCounts;
}

/** A training step line. */
export interface StepLine {
  kind: 'step';
  step: number;
  loss: number;
  lr: number;
  gradNorm?: number;
  ms: number;
  /** Non-padding tokens in the step's batches (all micro-batches). */
  tokens?: number;
  tokensPerSec?: number;
  /** ISO time. */
  time: string;
}

/** An evaluation line: metric name -> value (accuracies in 0..1, perplexity, R@K in 0..1). */
export interface EvalLine {
  kind: 'eval';
  step: number;
  split: 'val' | 'test';
  metrics: Record<string, number>;
  time: string;
}

export type MetricsLine = StepLine | EvalLine;

export interface EvalResult {
  step: number;
  split: 'val' | 'test';
  /** The task scored (e.g. 'vqa', 'grounding', 'retrieval', 'common'). */
  task: string;
  metrics: Record<string, number>;
  /** Accuracy per question template, where the task has templates. */
  byTemplate?: Record<string, { accuracy: number; n: number }>;
  /** Text skill of the (possibly frozen) language path: held-out perplexity and text-task accuracy. */
  textSkill?: { perplexity: number; textTaskAccuracy: number };
  /** The same measured on the untouched base LM (loaded afresh): what freezing must preserve. */
  baseTextSkill?: { perplexity: number; textTaskAccuracy: number };
  /** A few generations for a human to read. */
  samples?: { prompt: string; answer: string; prediction: string }[];
}

/** summary.json of a completed run. */
export interface RunSummary {
  name: string;
  method: string;
  status: RunStatus;
  task?: string;
  steps: number;
  metrics: Record<string, number>;
  textSkill?: { perplexity: number; textTaskAccuracy: number };
  baseTextSkill?: { perplexity: number; textTaskAccuracy: number };
  trainableParams: number;
  totalParams: number;
  trainablePercent: number;
  medianStepMs?: number;
  tokensPerSec?: number;
  trainSeconds?: number;
  peakRssMB?: number;
  backend: string;
}
