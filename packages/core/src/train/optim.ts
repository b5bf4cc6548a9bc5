/**
 * AdamW with parameter groups (decoupled weight decay, PyTorch semantics), learning-rate
 * schedules, gradient clipping by global norm and gradient accumulation.
 *
 * The optimizer only ever sees the parameters it is given; frozen parameters are refused, so a
 * frozen weight can never be updated by mistake.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ADAMW, type AdamWAttrs } from '@adaptorkit/kernel-names';
import { AdaptorkitError } from '../errors.js';
import type { Module } from '../nn/module.js';
import type { Parameter } from '../nn/parameter.js';

export interface ParamGroup {
  params: Parameter[];
  /** Overrides the optimizer default. */
  weightDecay?: number;
  /** Multiplies the scheduled learning rate for this group. */
  lrScale?: number;
  name?: string;
}

export interface AdamWOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/**
 * Split trainable parameters into a decayed group and a no-decay group (biases and every 1-D
 * tensor, e.g. norms), the usual rule.
 */
export function defaultParamGroups(named: [string, Parameter][], weightDecay: number): ParamGroup[] {
  const decay: Parameter[] = [];
  const noDecay: Parameter[] = [];
  for (const [name, p] of named) {
    if (!p.trainable) continue;
    if (p.shape.length <= 1 || name.endsWith('.bias') || name === 'bias') noDecay.push(p);
    else decay.push(p);
  }
  const groups: ParamGroup[] = [];
  if (decay.length) groups.push({ params: decay, weightDecay, name: 'decay' });
  if (noDecay.length) groups.push({ params: noDecay, weightDecay: 0, name: 'no_decay' });
  return groups;
}

/**
 * A kernel a backend may register (@adaptorkit/backend-native does) to do one parameter's update in
 * one pass: {param, grad, m, v} -> [param', m', v'] with attrs {beta1, beta2, eps, sqrtBc2, decay,
 * stepSize}, the same float32 steps as the composed update below (which runs otherwise).
 */
export const FUSED_ADAMW = ADAMW; // spelled once in @adaptorkit/kernel-names

interface Slot {
  p: Parameter;
  m: tf.Tensor;
  v: tf.Tensor;
  wd: number;
  lrScale: number;
}

export class AdamW {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  private readonly slots = new Map<Parameter, Slot>();
  private t = 0;

  /** `groups`: parameter groups, a plain list (one group, default weight decay), or a Module (its trainable parameters, grouped by defaultParamGroups). */
  constructor(groups: ParamGroup[] | Parameter[] | Module, opts: AdamWOptions) {
    this.lr = opts.lr;
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    const wd = opts.weightDecay ?? 0.01;
    let gs: ParamGroup[];
    if (Array.isArray(groups)) {
      gs = groups.length > 0 && 'params' in (groups[0] as object) ? (groups as ParamGroup[]) : [{ params: groups as Parameter[] }];
    } else {
      gs = defaultParamGroups(groups.namedParameters(), wd);
    }
    for (const g of gs) {
      for (const p of g.params) {
        if (!p.trainable) throw new AdaptorkitError('NOT_TRAINABLE', 'AdamW was given a frozen parameter: pass only trainable parameters');
        if (this.slots.has(p)) throw new AdaptorkitError('INVALID_ARGUMENT', 'AdamW was given the same parameter twice');
        this.slots.set(p, { p, m: tf.keep(tf.zerosLike(p.value)), v: tf.keep(tf.zerosLike(p.value)), wd: g.weightDecay ?? wd, lrScale: g.lrScale ?? 1 });
      }
    }
  }

  get params(): Parameter[] {
    return [...this.slots.keys()];
  }

  get stepCount(): number {
    return this.t;
  }

  /** Apply one update from `grads` (a gradient per parameter; missing ones are skipped). */
  step(grads: Map<Parameter, tf.Tensor>): void {
    this.t++;
    const b1 = this.beta1;
    const b2 = this.beta2;
    const bc1 = 1 - b1 ** this.t;
    const bc2 = 1 - b2 ** this.t;
    const fused = tf.getKernel(FUSED_ADAMW, tf.getBackend()) !== undefined;
    for (const [p, g] of grads) {
      const s = this.slots.get(p);
      if (!s) throw new AdaptorkitError('INVALID_ARGUMENT', 'gradient given for a parameter this optimizer does not hold');
      if (!p.trainable) throw new AdaptorkitError('NOT_TRAINABLE', 'a parameter was frozen after the optimizer was built; rebuild the optimizer');
      const lr = this.lr * s.lrScale;
      if (fused) {
        const attrs: AdamWAttrs = { beta1: b1, beta2: b2, eps: this.eps, sqrtBc2: Math.sqrt(bc2), decay: s.wd !== 0 ? 1 - lr * s.wd : 1, stepSize: lr / bc1 };
        const [w, m, v] = tf.engine().runKernel(FUSED_ADAMW, { param: p.value, grad: g, m: s.m, v: s.v }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        p.value.assign(w!);
        w!.dispose();
        s.m.dispose();
        s.v.dispose();
        s.m = tf.keep(m!);
        s.v = tf.keep(v!);
        continue;
      }
      const [m, v] = tf.tidy(() => {
        const m2 = tf.add(tf.mul(s.m, b1), tf.mul(g, 1 - b1));
        const v2 = tf.add(tf.mul(s.v, b2), tf.mul(tf.square(g), 1 - b2));
        const denom = tf.add(tf.div(tf.sqrt(v2), Math.sqrt(bc2)), this.eps);
        let w: tf.Tensor = p.value;
        if (s.wd !== 0) w = tf.mul(w, 1 - lr * s.wd);
        w = tf.sub(w, tf.mul(tf.div(m2, denom), lr / bc1));
        p.value.assign(w);
        return [m2, v2];
      });
      s.m.dispose();
      s.v.dispose();
      s.m = tf.keep(m);
      s.v = tf.keep(v);
    }
  }

  /** Optimizer state for checkpoints: step count and moments by parameter index. */
  state(): { step: number; moments: { m: tf.Tensor; v: tf.Tensor }[] } {
    return { step: this.t, moments: [...this.slots.values()].map((s) => ({ m: s.m, v: s.v })) };
  }

  loadState(state: { step: number; moments: { m: tf.Tensor; v: tf.Tensor }[] }): void {
    const slots = [...this.slots.values()];
    if (state.moments.length !== slots.length) {
      throw new AdaptorkitError('SHAPE_MISMATCH', `optimizer state has ${state.moments.length} entries, optimizer holds ${slots.length} parameters`);
    }
    slots.forEach((s, i) => {
      const st = state.moments[i]!;
      if (st.m.size !== s.p.size || st.v.size !== s.p.size) {
        throw new AdaptorkitError('SHAPE_MISMATCH', `optimizer state entry ${i} does not match its parameter's size ${s.p.size}`);
      }
    });
    slots.forEach((s, i) => {
      const st = state.moments[i]!;
      s.m.dispose();
      s.v.dispose();
      s.m = tf.keep(tf.reshape(st.m, s.p.shape as number[]).clone());
      s.v = tf.keep(tf.reshape(st.v, s.p.shape as number[]).clone());
    });
    this.t = state.step;
  }

  dispose(): void {
    for (const s of this.slots.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.slots.clear();
  }
}

export interface ScheduleOptions {
  /** Peak learning rate. */
  lr: number;
  totalSteps: number;
  warmupSteps?: number;
  /** Final learning rate as a fraction of the peak (default 0). */
  minLrRatio?: number;
  kind?: 'cosine' | 'linear' | 'constant';
}

/** Learning rate at `step` (0-based): linear warmup from 0, then cosine/linear decay or constant. */
export function scheduledLr(step: number, o: ScheduleOptions): number {
  const warm = o.warmupSteps ?? 0;
  const minLr = o.lr * (o.minLrRatio ?? 0);
  if (warm > 0 && step < warm) return (o.lr * (step + 1)) / warm;
  const kind = o.kind ?? 'cosine';
  if (kind === 'constant') return o.lr;
  const span = Math.max(1, o.totalSteps - warm);
  const progress = Math.min(1, Math.max(0, (step - warm) / span));
  if (kind === 'linear') return minLr + (o.lr - minLr) * (1 - progress);
  return minLr + 0.5 * (o.lr - minLr) * (1 + Math.cos(Math.PI * progress));
}

/** Global L2 norm of all gradients. */
export function globalNorm(grads: Map<Parameter, tf.Tensor>): number {
  if (grads.size === 0) return 0;
  return tf.tidy(() => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))).dataSync()[0]!);
}

/**
 * Scale gradients in place so their global norm is at most maxNorm (PyTorch clip_grad_norm_:
 * factor maxNorm / (norm + 1e-6) when above). Returns the norm before clipping.
 */
export function clipGradNorm(grads: Map<Parameter, tf.Tensor>, maxNorm: number): number {
  const norm = globalNorm(grads);
  if (!Number.isFinite(norm) || norm <= maxNorm) return norm;
  const factor = maxNorm / (norm + 1e-6);
  for (const [p, g] of grads) {
    grads.set(p, tf.tidy(() => tf.mul(g, factor)));
    g.dispose();
  }
  return norm;
}

/** Sums gradients over micro-batches; `take()` returns their mean and resets. */
export class GradAccumulator {
  private sums = new Map<Parameter, tf.Tensor>();
  private n = 0;

  add(grads: Map<Parameter, tf.Tensor>): void {
    for (const [p, g] of grads) {
      const prev = this.sums.get(p);
      if (prev) {
        this.sums.set(p, tf.keep(tf.add(prev, g)));
        prev.dispose();
      } else {
        this.sums.set(p, tf.keep(g.clone()));
      }
    }
    this.n++;
  }

  get count(): number {
    return this.n;
  }

  take(): Map<Parameter, tf.Tensor> {
    const out = new Map<Parameter, tf.Tensor>();
    for (const [p, s] of this.sums) {
      out.set(p, tf.tidy(() => tf.div(s, this.n)));
      s.dispose();
    }
    this.sums = new Map();
    this.n = 0;
    return out;
  }

  dispose(): void {
    for (const s of this.sums.values()) s.dispose();
    this.sums.clear();
    this.n = 0;
  }
}

/** Dispose every tensor of a gradient map. */
export function disposeGrads(grads: Map<Parameter, tf.Tensor>): void {
  for (const g of grads.values()) g.dispose();
  grads.clear();
}
