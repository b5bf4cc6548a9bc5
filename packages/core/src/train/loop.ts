/**
 * The one training loop: scheduled AdamW steps over an explicit trainable list, gradient clipping
 * and accumulation, NaN stop, a hook per step. Callers give a loss per micro-batch index; the loop
 * owns no data. The trainer's runs (apps/trainer/src/run/lifecycle.ts) and its base pretraining use it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError } from '../errors.js';
import type { Parameter } from '../nn/parameter.js';
import { valueAndGrads } from './grad.js';
import { AdamW, clipGradNorm, defaultParamGroups, disposeGrads, GradAccumulator, scheduledLr } from './optim.js';

export interface LoopOptions {
  named: [string, Parameter][];
  /** Awaited before optimizer step `step` (0-based) starts, e.g. to decode its images. */
  beforeStep?: (step: number) => Promise<void>;
  /** Loss for micro-batch `micro` of optimizer step `step`; runs inside tf.tidy. */
  loss: (step: number, micro: number) => tf.Scalar;
  steps: number;
  lr: number;
  warmupSteps?: number;
  schedule?: 'cosine' | 'linear' | 'constant';
  minLrRatio?: number;
  weightDecay?: number;
  betas?: [number, number];
  clipNorm?: number;
  accumulation?: number;
  /** First step to run (resume). */
  startStep?: number;
  optimizer?: AdamW;
  /** Called after each optimizer step. Return true to stop early. */
  onStep?: (info: { step: number; loss: number; lr: number; gradNorm: number; ms: number }) => boolean | void | Promise<boolean | void>;
}

export interface LoopResult {
  optimizer: AdamW;
  losses: number[];
  stepsRun: number;
  stoppedEarly: boolean;
}

export async function trainLoop(o: LoopOptions): Promise<LoopResult> {
  const params = o.named.map(([, p]) => p);
  if (params.length === 0) throw new AdaptorkitError('INVALID_CONFIG', 'nothing to train: the model has no trainable parameters');
  const opt = o.optimizer ?? new AdamW(defaultParamGroups(o.named, o.weightDecay ?? 0), { lr: o.lr, betas: o.betas });
  const accum = Math.max(1, o.accumulation ?? 1);
  const losses: number[] = [];
  let stoppedEarly = false;
  let step = o.startStep ?? 0;
  for (; step < o.steps; step++) {
    const t0 = performance.now();
    await o.beforeStep?.(step);
    const lr = scheduledLr(step, { lr: o.lr, totalSteps: o.steps, warmupSteps: o.warmupSteps ?? 0, kind: o.schedule ?? 'cosine', minLrRatio: o.minLrRatio ?? 0 });
    opt.lr = lr;
    let grads: Map<Parameter, tf.Tensor>;
    let loss = 0;
    if (accum === 1) {
      const r = valueAndGrads(() => tf.tidy(() => o.loss(step, 0)), params);
      grads = r.grads;
      loss = r.loss;
    } else {
      const acc = new GradAccumulator();
      try {
        for (let m = 0; m < accum; m++) {
          const r = valueAndGrads(() => tf.tidy(() => o.loss(step, m)), params);
          acc.add(r.grads);
          disposeGrads(r.grads);
          loss += r.loss / accum;
        }
        grads = acc.take();
      } finally {
        acc.dispose(); // empty after take(); frees the kept sums when a later micro-batch's loss throws
      }
    }
    if (!Number.isFinite(loss)) {
      disposeGrads(grads);
      throw new AdaptorkitError('INVALID_ARGUMENT', nonFiniteLossMessage(loss, step, o.startStep ?? 0, params, lr));
    }
    const gradNorm = o.clipNorm ? clipGradNorm(grads, o.clipNorm) : 0;
    opt.step(grads);
    disposeGrads(grads);
    losses.push(loss);
    const stop = await o.onStep?.({ step: step + 1, loss, lr, gradNorm, ms: performance.now() - t0 });
    if (stop === true) {
      stoppedEarly = true;
      step++;
      break;
    }
  }
  return { optimizer: opt, losses, stepsRun: step - (o.startStep ?? 0), stoppedEarly };
}

/**
 * Why the loss of step `step` (0-based) is not finite, as far as can be told: the weights already
 * non-finite (a diverged update: the learning rate or missing clipping), the very first step of the
 * run (no update yet: the base weights or the data, never the learning rate), or finite weights
 * (too large an update or a bad row of this step).
 */
export function nonFiniteLossMessage(loss: number, step: number, startStep: number, params: readonly Parameter[], lr: number): string {
  const badWeights = params.filter((p) => tf.tidy(() => tf.logicalNot(tf.all(tf.isFinite(p.value))).dataSync()[0] === 1)).length;
  const head = `loss became ${loss} at step ${step + 1}: stopping; the last checkpoint is intact.`;
  if (badWeights > 0) return `${head} ${badWeights} of ${params.length} trainable tensors are no longer finite, so an earlier update diverged: lower train.lr (now ${lr.toExponential(2)}) or set train.clipNorm`;
  if (step === 0 && startStep === 0) return `${head} No update has been made yet and the weights are finite, so the learning rate is not the cause: check the base model's weights (e.g. overflow in a half-precision checkpoint) and the data of the first step`;
  return `${head} The trainable weights are finite: either the last update was too large (lower train.lr, now ${lr.toExponential(2)}, or set train.clipNorm) or a row of step ${step + 1} is bad (check its data${step === startStep ? '; this is the first step after resuming' : ''})`;
}
