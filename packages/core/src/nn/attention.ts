/**
 * Multi-head / grouped-query self-attention with optional causal mask, sliding window, extra
 * additive mask, rotary positions and a KV cache. Projections are children (q_proj, k_proj, v_proj,
 * o_proj; or Phi-3's fused qkv_proj) so a method can replace them (e.g. LoRA) with `replaceChild`.
 *
 * Family features (HF definitions): per-head q/k RMSNorm before RoPE (qwen3, gemma3), a score
 * scale other than 1/sqrt(head_dim) (gemma2/3 `query_pre_attn_scalar`), logit soft-capping
 * cap * tanh(scores / cap) before the mask (gemma2), and a sliding window: a query at position i
 * sees keys j with i - window < j <= i (mistral, qwen2, phi3, gemma2/3 local layers), applied as a
 * mask over absolute positions, so it holds under the KV cache too.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError, formatShape } from '../errors.js';
import type { Forward, ForwardContext } from './context.js';
import { Linear, RMSNorm } from './layers.js';
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
  /** One fused `qkv_proj` [d -> (H + 2 Hkv) hd] instead of q_proj / k_proj / v_proj (phi3). */
  fusedQKV?: boolean;
  /** Per-head RMSNorm of q and k (children q_norm, k_norm) before RoPE: 'plain' (qwen3) or 'unit-offset' (gemma3, 1 + w). */
  qkNorm?: 'plain' | 'unit-offset';
  /** Epsilon of the q/k norms (default 1e-6). */
  qkNormEps?: number;
  /** Score scale (default 1/sqrt(headDim)). */
  scale?: number;
  /** Soft-cap of the scaled scores: cap * tanh(s / cap) (gemma2 attn_logit_softcapping). */
  logitSoftcap?: number;
  /** Sliding window (in positions) of causal attention; undefined = global. */
  slidingWindow?: number;
}

/** One layer's cached keys and values: [B, Hkv, S, hd] each. */
export interface LayerKV {
  k: tf.Tensor4D;
  v: tf.Tensor4D;
}

/** Rotary tables for the new positions: [T, hd] each; `local` for layers with their own rope (gemma3 sliding layers). */
export interface RopeTables {
  cos: tf.Tensor;
  sin: tf.Tensor;
  local?: { cos: tf.Tensor; sin: tf.Tensor };
}

export interface AttentionInput {
  /** [T, hd] tables for the new positions (omit for no rotary embedding). */
  rope?: RopeTables;
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

/**
 * Additive sliding-window mask [T, S] (the part the causal mask does not cover): the query at
 * absolute position past + i drops keys j <= past + i - window. Undefined when nothing is dropped.
 */
export function slidingWindowMask(t: number, past: number, window: number): tf.Tensor2D | undefined {
  const s = past + t;
  if (past + t - 1 - window < 0) return undefined;
  const m = new Float32Array(t * s);
  for (let i = 0; i < t; i++) for (let j = 0; j < s; j++) m[i * s + j] = j <= past + i - window ? NEG : 0;
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
    if (opts.slidingWindow !== undefined && (!Number.isInteger(opts.slidingWindow) || opts.slidingWindow <= 0)) {
      throw new AdaptorkitError('INVALID_CONFIG', `attention: sliding window must be a positive integer, got ${opts.slidingWindow}`);
    }
    const qkvBias = opts.qkvBias ?? false;
    const [q, kv] = [this.numHeads * this.headDim, this.numKVHeads * this.headDim];
    if (opts.fusedQKV) {
      this.child('qkv_proj', new Linear(opts.dim, q + 2 * kv, { bias: qkvBias }));
    } else {
      this.child('q_proj', new Linear(opts.dim, q, { bias: qkvBias }));
      this.child('k_proj', new Linear(opts.dim, kv, { bias: qkvBias }));
      this.child('v_proj', new Linear(opts.dim, kv, { bias: qkvBias }));
    }
    this.child(this.outName, new Linear(q, opts.dim, { bias: opts.outBias ?? false }));
    if (opts.qkNorm) {
      const o = { unitOffset: opts.qkNorm === 'unit-offset' };
      this.child('q_norm', new RMSNorm(this.headDim, opts.qkNormEps ?? 1e-6, o));
      this.child('k_norm', new RMSNorm(this.headDim, opts.qkNormEps ?? 1e-6, o));
    }
  }

  get q_proj(): Forward { return this.getChild<Module & Forward>('q_proj'); }
  get k_proj(): Forward { return this.getChild<Module & Forward>('k_proj'); }
  get v_proj(): Forward { return this.getChild<Module & Forward>('v_proj'); }
  get o_proj(): Forward { return this.getChild<Module & Forward>(this.outName); }

  /** x [B, T, d] -> q [B, T, H hd], k and v [B, T, Hkv hd]. */
  private project(x: tf.Tensor, ctx: ForwardContext | undefined): [tf.Tensor, tf.Tensor, tf.Tensor] {
    if (!this.opts.fusedQKV) return [this.q_proj.forward(x, ctx), this.k_proj.forward(x, ctx), this.v_proj.forward(x, ctx)];
    const q = this.numHeads * this.headDim;
    const kv = this.numKVHeads * this.headDim;
    const qkv = this.getChild<Module & Forward>('qkv_proj').forward(x, ctx); // [B, T, q + 2 kv]
    return tf.split(qkv, [q, kv, kv], -1) as [tf.Tensor, tf.Tensor, tf.Tensor];
  }

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
      const [qx, kx, vx] = this.project(x, ctx);
      let q = split(qx, H);
      let k = split(kx, Hkv);
      let v = split(vx, Hkv);
      if (this.opts.qkNorm) {
        q = this.getChild<RMSNorm>('q_norm').forward(q) as tf.Tensor4D; // per head, over hd
        k = this.getChild<RMSNorm>('k_norm').forward(k) as tf.Tensor4D;
      }
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
      let mask = input.mask;
      const window = this.opts.slidingWindow;
      if (input.causal && window !== undefined) {
        const wm = slidingWindowMask(T, past, window); // [T, S]
        if (wm) mask = mask ? tf.add(mask, wm) : wm;
      }
      // softmax(scores * scale + causal mask + mask): one kernel each way where the backend fuses it
      let scale = this.opts.scale ?? 1 / Math.sqrt(hd);
      let logits: tf.Tensor = scores;
      const cap = this.opts.logitSoftcap;
      if (cap !== undefined) {
        logits = tf.mul(tf.tanh(tf.mul(scores, scale / cap)), cap); // cap * tanh(s * scale / cap), before any mask
        scale = 1;
      }
      const probs = attentionSoftmax(logits, scale, { causal: !!input.causal, past, mask, causalMask: () => causalMask(T, past) }); // [B, H, T, S]
      const out = tf.matMul(tf.reshape(probs, [B, Hkv, rep * T, S]), v); // [B, Hkv, rep*T, hd]
      const merged = tf.reshape(tf.transpose(tf.reshape(out, [B, H, T, hd]), [0, 2, 1, 3]), [B, T, H * hd]); // [B, T, H*hd]
      return this.o_proj.forward(merged, ctx);
    });
  }
}
