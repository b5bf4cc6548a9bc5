/**
 * Transformer blocks: the pre-norm LLaMA decoder layer and the pre-norm ViT encoder layer.
 *
 * Both expose adapter slots, so a method package can add modules without subclassing:
 *   preAttn     y = slot(norm1(x))        fed to attention instead of norm1(x)   (MMA)
 *   postAttn    h = x + slot(attn(...))   on the attention output, before the residual (bottleneck adapters)
 *   preMlp      y = slot(norm2(h))        fed to the MLP instead of norm2(h)     (MMA option)
 *   postMlp     out = h + slot(mlp(...))  on the MLP output, before the residual (bottleneck adapters)
 *   mlpParallel h + mlp(norm2(h)) + slot(h)                                      (MWA-style extractor)
 *   post        out = slot(out)                                                  (enhancers)
 * A slot module is registered as a child under its slot name, so its parameters get structural
 * paths (`model.layers.3.preAttn.down.weight`).
 */
import type * as tf from '@tensorflow/tfjs-core';
import * as tfc from '@tensorflow/tfjs-core';
import { AdaptorkitError } from '../errors.js';
import { Attention, type AttentionInput } from './attention.js';
import type { Forward, ForwardContext } from './context.js';
import { LayerNorm, RMSNorm, type Activation } from './layers.js';
import { GatedMLP, MLP } from './mlp.js';
import { Module } from './module.js';

export type AdapterSlot = 'preAttn' | 'postAttn' | 'preMlp' | 'postMlp' | 'mlpParallel' | 'post';
export const ADAPTER_SLOTS: readonly AdapterSlot[] = ['preAttn', 'postAttn', 'preMlp', 'postMlp', 'mlpParallel', 'post'];

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
  ): tf.Tensor {
    return tfc.tidy(() => {
      let a = norm1.forward(x, ctx);
      const preAttn = this.slots.get('preAttn');
      if (preAttn) a = preAttn.forward(a, ctx);
      let att = attn(a); // [B, T, d]
      const postAttn = this.slots.get('postAttn');
      if (postAttn) att = postAttn.forward(att, ctx);
      const h = tfc.add(x, att); // [B, T, d]
      let m = norm2.forward(h, ctx);
      const preMlp = this.slots.get('preMlp');
      if (preMlp) m = preMlp.forward(m, ctx);
      let f = mlp.forward(m, ctx);
      const postMlp = this.slots.get('postMlp');
      if (postMlp) f = postMlp.forward(f, ctx);
      let out = tfc.add(h, f);
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
}

/** LLaMA decoder layer: h = x + attn(norm(x)); out = h + mlp(norm(h)). HF child names. */
export class DecoderLayer extends SlottedBlock {
  constructor(readonly opts: DecoderLayerOptions) {
    super();
    this.child(
      'self_attn',
      new Attention({ dim: opts.dim, numHeads: opts.numHeads, numKVHeads: opts.numKVHeads, headDim: opts.headDim, qkvBias: opts.attentionBias ?? false }),
    );
    this.child('mlp', new GatedMLP(opts.dim, opts.hidden, opts.act ?? 'silu', opts.mlpBias ?? false));
    this.child('input_layernorm', new RMSNorm(opts.dim, opts.rmsNormEps));
    this.child('post_attention_layernorm', new RMSNorm(opts.dim, opts.rmsNormEps));
  }
  get self_attn(): Attention { return this.getChild<Attention>('self_attn'); }
  get mlp(): Module & Forward { return this.getChild<Module & Forward>('mlp'); }

  /** x [B, T, d] -> [B, T, d] */
  forward(x: tf.Tensor, input: AttentionInput = {}): tf.Tensor {
    return this.runBlock(
      x,
      (a) => this.self_attn.forward(a, input),
      this.getChild<RMSNorm>('input_layernorm'),
      this.getChild<RMSNorm>('post_attention_layernorm'),
      this.mlp,
      input.ctx,
    );
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
