/**
 * Multi-head / grouped-query self-attention with optional causal mask, extra additive mask, rotary
 * positions and a KV cache. Projections are children (q_proj, k_proj, v_proj, o_proj) so a method
 * can replace them (e.g. LoRA) with `replaceChild`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError, formatShape } from '../errors.js';
import type { Forward, ForwardContext } from './context.js';
import { Linear } from './layers.js';
import { Module } from './module.js';
import { attentionSoftmax } from './fused.js';
import { applyRope } from './rope.js';

export interface AttentionOptions {
  dim: number;
  numHeads: number;
  numKVHeads?: number;
  headDim?: number;
  /** q/k/v biases (qwen2, CLIP). */
  qkvBias?: boolean;
  /** o_proj bias (CLIP). */
  outBias?: boolean;
  /** Name of the output projection child (HF: 'o_proj' for LLaMA, 'out_proj' for CLIP). */
  outName?: string;
}

/** One layer's cached keys and values: [B, Hkv, S, hd] each. */
export interface LayerKV {
  k: tf.Tensor4D;
  v: tf.Tensor4D;
}

export interface AttentionInput {
  /** [T, hd] tables for the new positions (omit for no rotary embedding). */
  rope?: { cos: tf.Tensor; sin: tf.Tensor };
  /** Apply the causal rule: a query at absolute position i sees keys at positions <= i. */
  causal?: boolean;
  /** Extra additive mask broadcastable to [B, H, T, S] (0 = keep, large negative = drop). */
  mask?: tf.Tensor;
  /** Cache of this layer: read and replaced (old tensors disposed, new ones kept). */
  cache?: KVSlot;
  ctx?: ForwardContext;
}

/** A mutable holder for one layer's cache, owned by a KVCache. */
export interface KVSlot {
  kv?: LayerKV;
}

const NEG = -1e9;

/** Additive causal mask [T, S] for T new queries after `past` cached positions. */
export function causalMask(t: number, past: number): tf.Tensor2D {
  const s = past + t;
  const m = new Float32Array(t * s);
  for (let i = 0; i < t; i++) for (let j = 0; j < s; j++) m[i * s + j] = j <= past + i ? 0 : NEG;
  return tf.tensor2d(m, [t, s]);
}

export class Attention extends Module {
  readonly numHeads: number;
  readonly numKVHeads: number;
  readonly headDim: number;
  readonly outName: string;
  constructor(readonly opts: AttentionOptions) {
    super();
    this.numHeads = opts.numHeads;
    this.numKVHeads = opts.numKVHeads ?? opts.numHeads;
    this.headDim = opts.headDim ?? opts.dim / opts.numHeads;
    this.outName = opts.outName ?? 'o_proj';
    if (!Number.isInteger(this.headDim)) {
      throw new AdaptorkitError('INVALID_CONFIG', `attention: dim ${opts.dim} is not divisible by ${opts.numHeads} heads`);
    }
    if (this.numHeads % this.numKVHeads !== 0) {
      throw new AdaptorkitError('INVALID_CONFIG', `attention: ${this.numHeads} heads is not a multiple of ${this.numKVHeads} KV heads`);
    }
    const qkvBias = opts.qkvBias ?? false;
    this.child('q_proj', new Linear(opts.dim, this.numHeads * this.headDim, { bias: qkvBias }));
    this.child('k_proj', new Linear(opts.dim, this.numKVHeads * this.headDim, { bias: qkvBias }));
    this.child('v_proj', new Linear(opts.dim, this.numKVHeads * this.headDim, { bias: qkvBias }));
    this.child(this.outName, new Linear(this.numHeads * this.headDim, opts.dim, { bias: opts.outBias ?? false }));
  }

  get q_proj(): Forward { return this.getChild<Module & Forward>('q_proj'); }
  get k_proj(): Forward { return this.getChild<Module & Forward>('k_proj'); }
  get v_proj(): Forward { return this.getChild<Module & Forward>('v_proj'); }
  get o_proj(): Forward { return this.getChild<Module & Forward>(this.outName); }

  /** x [B, T, d] -> [B, T, d] */
  forward(x: tf.Tensor, input: AttentionInput = {}): tf.Tensor {
    const [B, T] = x.shape as [number, number, number];
    const H = this.numHeads;
    const Hkv = this.numKVHeads;
    const hd = this.headDim;
    const rep = H / Hkv;
    const ctx = input.ctx;
    return tf.tidy(() => {
      const split = (t: tf.Tensor, heads: number): tf.Tensor4D =>
        tf.transpose(tf.reshape(t, [B, T, heads, hd]), [0, 2, 1, 3]) as tf.Tensor4D; // [B, heads, T, hd]
      let q = split(this.q_proj.forward(x, ctx), H);
      let k = split(this.k_proj.forward(x, ctx), Hkv);
      let v = split(this.v_proj.forward(x, ctx), Hkv);
      if (input.rope) {
        q = applyRope(q, input.rope.cos, input.rope.sin) as tf.Tensor4D;
        k = applyRope(k, input.rope.cos, input.rope.sin) as tf.Tensor4D;
      }
      let past = 0;
      if (input.cache) {
        const prev = input.cache.kv;
        if (prev) {
          if (prev.k.shape[0] !== B) {
            throw new AdaptorkitError('SHAPE_MISMATCH', `KV cache batch ${prev.k.shape[0]} != input batch ${B}`);
          }
          past = prev.k.shape[2];
          k = tf.concat([prev.k, k], 2) as tf.Tensor4D; // [B, Hkv, S, hd]
          v = tf.concat([prev.v, v], 2) as tf.Tensor4D;
          prev.k.dispose();
          prev.v.dispose();
        }
        input.cache.kv = { k: tf.keep(k), v: tf.keep(v) };
      }
      const S = past + T;
      // Grouped-query attention without repeating K/V: the `rep` query heads sharing one KV head are
      // contiguous (HF repeat_kv order), so fold them into the query-length axis.
      const qg = tf.reshape(q, [B, Hkv, rep * T, hd]); // [B, Hkv, rep*T, hd]
      const scores = tf.reshape(tf.matMul(qg, k, false, true), [B, H, T, S]); // unscaled
      if (input.mask) {
        const m = input.mask;
        if (m.shape[m.rank - 1] !== S) {
          throw new AdaptorkitError('SHAPE_MISMATCH', `attention mask ${formatShape(m.shape)} must end in key length ${S}`);
        }
      }
      // softmax(scores / sqrt(hd) + causal mask + mask): one kernel each way where the backend fuses it
      const probs = attentionSoftmax(scores, 1 / Math.sqrt(hd), { causal: !!input.causal, past, mask: input.mask, causalMask: () => causalMask(T, past) }); // [B, H, T, S]
      const out = tf.matMul(tf.reshape(probs, [B, Hkv, rep * T, S]), v); // [B, Hkv, rep*T, hd]
      const merged = tf.reshape(tf.transpose(tf.reshape(out, [B, H, T, hd]), [0, 2, 1, 3]), [B, T, H * hd]); // [B, T, H*hd]
      return this.o_proj.forward(merged, ctx);
    });
  }
}
