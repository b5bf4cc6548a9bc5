/**
 * Transformer blocks: the pre-norm LLaMA decoder layer and the pre-norm ViT encoder layer.
 *
 * Both expose adapter slots, so a method package can add modules without subclassing:
 *   preAttn     y = slot(norm1(x))        fed to attention instead of norm1(x)   (MMA)
 *   preMlp      y = slot(norm2(h))        fed to the MLP instead of norm2(h)     (MMA option)
 *   mlpParallel h + mlp(norm2(h)) + slot(h)                                      (MWA-style extractor)
 *   post        out = slot(out)                                                  (enhancers)
 * A slot module is registered as a child under its slot name, so its parameters get structural
 * paths (`model.layers.3.preAttn.down.weight`).
 */
import type * as tf from '@tensorflow/tfjs-core';
import * as tfc from '@tensorflow/tfjs-core';
import { AdaptorkitError } from '../errors.js';
import { Attention, type AttentionInput, type AttentionOptions } from './attention.js';
import type { Forward, ForwardContext } from './context.js';
import { LayerNorm, RMSNorm, type Activation } from './layers.js';
import { FusedGatedMLP, GatedMLP, MLP } from './mlp.js';
import { Module } from './module.js';

export type AdapterSlot = 'preAttn' | 'preMlp' | 'mlpParallel' | 'post';
export const ADAPTER_SLOTS: readonly AdapterSlot[] = ['preAttn', 'preMlp', 'mlpParallel', 'post'];

abstract class SlottedBlock extends Module {
  private readonly slots = new Map<AdapterSlot, Module & Forward>();

  /** Put `m` in `slot` (registered as a child named after the slot). */
  setAdapter(slot: AdapterSlot, m: Module & Forward): void {
    if (!ADAPTER_SLOTS.includes(slot)) throw new AdaptorkitError('INVALID_ARGUMENT', `unknown adapter slot '${slot}': expected one of ${ADAPTER_SLOTS.join(', ')}`);
    if (this.slots.has(slot)) throw new AdaptorkitError('INVALID_ARGUMENT', `adapter slot '${slot}' is already taken`);
    this.addChild(slot, m);
    this.slots.set(slot, m);
  }

  /** Take the module out of `slot` (not disposed). */
  clearAdapter(slot: AdapterSlot): (Module & Forward) | undefined {
    const m = this.slots.get(slot);
    if (m) {
      this.removeChild(slot);
      this.slots.delete(slot);
    }
    return m;
  }

  getAdapter(slot: AdapterSlot): (Module & Forward) | undefined {
    return this.slots.get(slot);
  }

  protected runBlock(
    x: tf.Tensor,
    attn: (h: tf.Tensor) => tf.Tensor,
    norm1: Forward,
    norm2: Forward,
    mlp: Forward,
    ctx: ForwardContext | undefined,
    postNorms?: { attn: Forward; mlp: Forward },
  ): tf.Tensor {
    return tfc.tidy(() => {
      let a = norm1.forward(x, ctx);
      const preAttn = this.slots.get('preAttn');
      if (preAttn) a = preAttn.forward(a, ctx);
      const attnOut = attn(a);
      const h = tfc.add(x, postNorms ? postNorms.attn.forward(attnOut, ctx) : attnOut); // [B, T, d]
      let m = norm2.forward(h, ctx);
      const preMlp = this.slots.get('preMlp');
      if (preMlp) m = preMlp.forward(m, ctx);
      const mlpOut = mlp.forward(m, ctx);
      let out = tfc.add(h, postNorms ? postNorms.mlp.forward(mlpOut, ctx) : mlpOut);
      const par = this.slots.get('mlpParallel');
      if (par) out = tfc.add(out, par.forward(h, ctx));
      const post = this.slots.get('post');
      if (post) out = post.forward(out, ctx);
      return out;
    });
  }
}

export interface DecoderLayerOptions {
  dim: number;
  hidden: number;
  numHeads: number;
  numKVHeads: number;
  headDim?: number;
  rmsNormEps: number;
  act?: Activation;
  attentionBias?: boolean;
  mlpBias?: boolean;
  /** Gemma norms: RMSNorm scaling by (1 + w). */
  unitOffsetNorms?: boolean;
  /**
   * Gemma2/3 "sandwich" norms: input_layernorm -> attn -> post_attention_layernorm -> +x, then
   * pre_feedforward_layernorm -> mlp -> post_feedforward_layernorm -> +h. Otherwise LLaMA's
   * input_layernorm -> attn -> +x, post_attention_layernorm -> mlp -> +h.
   */
  sandwichNorms?: boolean;
  /** Phi-3: fused qkv_proj and gate_up_proj. */
  fused?: boolean;
  /** Attention extras (see AttentionOptions): q/k norm, score scale, soft-cap, sliding window. */
  qkNorm?: AttentionOptions['qkNorm'];
  attnScale?: number;
  attnLogitSoftcap?: number;
  slidingWindow?: number;
  /** Use the `local` rope tables when the input has them (gemma3 sliding layers). */
  localRope?: boolean;
}

/**
 * Decoder layer, HF child names. LLaMA: h = x + attn(norm(x)); out = h + mlp(norm(h)); Gemma2/3
 * add post-norms on the attention and MLP outputs (sandwichNorms).
 */
export class DecoderLayer extends SlottedBlock {
  constructor(readonly opts: DecoderLayerOptions) {
    super();
    const o = opts;
    this.child(
      'self_attn',
      new Attention({
        dim: o.dim, numHeads: o.numHeads, numKVHeads: o.numKVHeads, headDim: o.headDim, qkvBias: o.attentionBias ?? false,
        fusedQKV: o.fused, qkNorm: o.qkNorm, qkNormEps: o.rmsNormEps, scale: o.attnScale, logitSoftcap: o.attnLogitSoftcap, slidingWindow: o.slidingWindow,
      }),
    );
    const act = o.act ?? 'silu';
    this.child('mlp', o.fused ? new FusedGatedMLP(o.dim, o.hidden, act, o.mlpBias ?? false) : new GatedMLP(o.dim, o.hidden, act, o.mlpBias ?? false));
    const norm = (): RMSNorm => new RMSNorm(o.dim, o.rmsNormEps, { unitOffset: o.unitOffsetNorms ?? false });
    this.child('input_layernorm', norm());
    this.child('post_attention_layernorm', norm());
    if (o.sandwichNorms) {
      this.child('pre_feedforward_layernorm', norm());
      this.child('post_feedforward_layernorm', norm());
    }
  }
  get self_attn(): Attention { return this.getChild<Attention>('self_attn'); }
  get mlp(): Module & Forward { return this.getChild<Module & Forward>('mlp'); }

  /** x [B, T, d] -> [B, T, d] */
  forward(x: tf.Tensor, input: AttentionInput = {}): tf.Tensor {
    const rope = this.opts.localRope && input.rope?.local ? input.rope.local : input.rope;
    const attn = (a: tf.Tensor): tf.Tensor => this.self_attn.forward(a, { ...input, rope });
    const n = (name: string): RMSNorm => this.getChild<RMSNorm>(name);
    if (this.opts.sandwichNorms) {
      return this.runBlock(x, attn, n('input_layernorm'), n('pre_feedforward_layernorm'), this.mlp, input.ctx, {
        attn: n('post_attention_layernorm'),
        mlp: n('post_feedforward_layernorm'),
      });
    }
    return this.runBlock(x, attn, n('input_layernorm'), n('post_attention_layernorm'), this.mlp, input.ctx);
  }
}

export interface EncoderLayerOptions {
  dim: number;
  hidden: number;
  numHeads: number;
  layerNormEps: number;
  act: Activation;
}

/** ViT encoder layer (CLIP/SigLIP): pre-LayerNorm, biased attention (out_proj), fc1/fc2 MLP. */
export class EncoderLayer extends SlottedBlock {
  constructor(readonly opts: EncoderLayerOptions) {
    super();
    this.child('self_attn', new Attention({ dim: opts.dim, numHeads: opts.numHeads, qkvBias: true, outBias: true, outName: 'out_proj' }));
    this.child('layer_norm1', new LayerNorm(opts.dim, opts.layerNormEps));
    this.child('mlp', new MLP(opts.dim, opts.hidden, opts.dim, opts.act));
    this.child('layer_norm2', new LayerNorm(opts.dim, opts.layerNormEps));
  }
  get self_attn(): Attention { return this.getChild<Attention>('self_attn'); }

  /** x [B, N, d] -> [B, N, d] (bidirectional attention) */
  forward(x: tf.Tensor, input: AttentionInput = {}): tf.Tensor {
    return this.runBlock(
      x,
      (a) => this.self_attn.forward(a, { ...input, causal: false }),
      this.getChild<LayerNorm>('layer_norm1'),
      this.getChild<LayerNorm>('layer_norm2'),
      this.getChild<MLP>('mlp'),
      input.ctx,
    );
  }
}
