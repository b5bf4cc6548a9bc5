/** Basic layers: Linear, Embedding, RMSNorm, LayerNorm, activations, dropout. */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError, formatShape } from '../errors.js';
import type { ForwardContext } from './context.js';
import { Module } from './module.js';
import type { Init, Parameter } from './parameter.js';
import type { Rng } from '../train/rng.js';
import { layerNormalize, rmsNormalize, silu } from './fused.js';
import { bf16Gather, bf16Linear } from './bf16.js';
import { dropoutMask } from './recompute.js';

export interface LinearOptions {
  bias?: boolean;
  /** Weight init; default PyTorch's kaiming-uniform bound 1/sqrt(in). */
  init?: Init;
  biasInit?: Init;
}

/**
 * y = x W + b with W stored [in, out] (the fast layout for tfjs matMul; HF's [out, in] is
 * transposed once at load/save, see Parameter.layout).
 */
export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | undefined;
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: LinearOptions = {}) {
    super();
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.param('weight', [inFeatures, outFeatures], opts.init ?? { kind: 'uniform', low: -bound, high: bound }, { layout: 'transpose', bf16Capable: true });
    this.bias = opts.bias ? this.param('bias', [outFeatures], opts.biasInit ?? { kind: 'zeros' }) : undefined;
  }

  forward(x: tf.Tensor, _ctx?: ForwardContext): tf.Tensor {
    return this.project(x, this.bias?.value);
  }

  /** x W + b with another bias (or none), whichever way the weight is stored (float32 or bf16). */
  project(x: tf.Tensor, b: tf.Tensor | undefined): tf.Tensor {
    if (this.weight.storage === 'bf16') return bf16Linear(x, this.weight.packed, this.outFeatures, this.inFeatures, b);
    return linear(x, this.weight.value, b);
  }
}

/** x [..., in] @ w [in, out] (+ b [out]) -> [..., out], as one 2-D matMul. */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  const inF = w.shape[0]!;
  const outF = w.shape[1]!;
  const lead = x.shape.slice(0, -1);
  if (x.shape[x.shape.length - 1] !== inF) {
    throw new AdaptorkitError('SHAPE_MISMATCH', `linear: input ${formatShape(x.shape)} does not end in ${inF}`);
  }
  const x2 = x.rank === 2 ? x : tf.reshape(x, [-1, inF]); // [N, in]
  let y = tf.matMul(x2 as tf.Tensor2D, w as tf.Tensor2D); // [N, out]
  if (b) y = tf.add(y, b);
  return x.rank === 2 ? y : tf.reshape(y, [...lead, outF]);
}

export class Embedding extends Module {
  readonly weight: Parameter;
  constructor(readonly numEmbeddings: number, readonly dim: number, opts: { init?: Init } = {}) {
    super();
    this.weight = this.param('weight', [numEmbeddings, dim], opts.init ?? { kind: 'normal', std: 0.02 }, { bf16Capable: true });
  }
  /** ids int32 [...] -> [..., dim] */
  forward(ids: tf.Tensor): tf.Tensor {
    if (ids.dtype !== 'int32') throw new AdaptorkitError('INVALID_ARGUMENT', `embedding ids must be int32, got ${ids.dtype}`);
    if (this.weight.storage === 'bf16') return bf16Gather(this.weight.packed, ids, this.numEmbeddings, this.dim);
    const flat = ids.rank === 1 ? ids : tf.reshape(ids, [-1]);
    const out = tf.gather(this.weight.value, flat); // [N, dim]
    return ids.rank === 1 ? out : tf.reshape(out, [...ids.shape, this.dim]);
  }
}

/**
 * RMSNorm: x * rsqrt(mean(x^2) + eps) * weight (LLaMA), or * (1 + weight) with `unitOffset`
 * (Gemma's norms, whose weights are stored as offsets from 1 and start at 0). Float32 throughout.
 */
export class RMSNorm extends Module {
  readonly weight: Parameter;
  readonly unitOffset: boolean;
  constructor(readonly dim: number, readonly eps = 1e-6, opts: { unitOffset?: boolean } = {}) {
    super();
    this.unitOffset = opts.unitOffset ?? false;
    this.weight = this.param('weight', [dim], { kind: this.unitOffset ? 'zeros' : 'ones' });
  }
  forward(x: tf.Tensor, _ctx?: ForwardContext): tf.Tensor {
    return tf.tidy(() => tf.mul(rmsNormalize(x, this.eps), this.unitOffset ? tf.add(this.weight.value, 1) : this.weight.value));
  }
}

/** LayerNorm over the last axis with affine weight and bias. */
export class LayerNorm extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  constructor(readonly dim: number, readonly eps = 1e-5) {
    super();
    this.weight = this.param('weight', [dim], { kind: 'ones' });
    this.bias = this.param('bias', [dim], { kind: 'zeros' });
  }
  forward(x: tf.Tensor, _ctx?: ForwardContext): tf.Tensor {
    return tf.tidy(() => tf.add(tf.mul(layerNormalize(x, this.eps), this.weight.value), this.bias.value));
  }
}

export type Activation = 'silu' | 'gelu' | 'gelu_tanh' | 'quick_gelu' | 'relu' | 'identity';
export const ACTIVATIONS: readonly Activation[] = ['silu', 'gelu', 'gelu_tanh', 'quick_gelu', 'relu', 'identity'];

/** Map HF `hidden_act` strings to ours. */
export function activationFromHF(name: string): Activation {
  switch (name) {
    case 'silu':
    case 'swish':
      return 'silu';
    case 'gelu':
      return 'gelu';
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast':
      return 'gelu_tanh';
    case 'quick_gelu':
      return 'quick_gelu';
    case 'relu':
      return 'relu';
    default:
      throw new AdaptorkitError('UNSUPPORTED', `unsupported activation '${name}': expected one of silu, gelu, gelu_new, gelu_pytorch_tanh, quick_gelu, relu`);
  }
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export function activate(x: tf.Tensor, act: Activation): tf.Tensor {
  switch (act) {
    case 'silu':
      return silu(x);
    case 'gelu':
      // exact erf GELU (PyTorch nn.GELU default)
      return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))));
    case 'gelu_tanh':
      return tf.tidy(() => {
        const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), SQRT_2_OVER_PI);
        return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(inner)));
      });
    case 'quick_gelu':
      return tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)));
    case 'relu':
      return tf.relu(x);
    case 'identity':
      return x;
  }
}

/** Inverted dropout with a seeded mask; identity unless ctx.training and p > 0. */
export function dropout(x: tf.Tensor, p: number, ctx: ForwardContext | undefined, rng: Rng): tf.Tensor {
  if (!ctx?.training || p <= 0) return x;
  return tf.tidy(() => {
    const n = x.size;
    const scale = 1 / (1 - p);
    const keep = dropoutMask(n, () => {
      const k = new Float32Array(n);
      for (let i = 0; i < n; i++) k[i] = rng.next() >= p ? scale : 0;
      return k;
    });
    return tf.mul(x, tf.tensor(keep, x.shape, 'float32'));
  });
}
