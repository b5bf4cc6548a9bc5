/**
 * CausalLM, the LLaMA family (llama, mistral, qwen2): embed -> N decoder layers -> RMSNorm -> head.
 * Module paths equal HF tensor names (`model.layers.0.self_attn.q_proj.weight`, `lm_head.weight`).
 *
 * Numerics follow HF's LlamaForCausalLM: RMSNorm in float32 with eps, rotate-half RoPE with
 * rope_theta, grouped-query attention (KV head j serves query heads j*rep .. j*rep+rep-1), SwiGLU.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError, formatShape } from '../errors.js';
import type { KVSlot } from '../nn/attention.js';
import { DecoderLayer } from '../nn/blocks.js';
import type { ForwardContext } from '../nn/context.js';
import { Embedding, Linear, RMSNorm, type Activation } from '../nn/layers.js';
import { Module, ModuleList } from '../nn/module.js';
import { RotaryTables, type RopeScaling } from '../nn/rope.js';

export interface CausalLMConfig {
  modelType?: 'llama' | 'mistral' | 'qwen2';
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKVHeads?: number;
  headDim?: number;
  rmsNormEps?: number;
  ropeTheta?: number;
  ropeScaling?: RopeScaling;
  maxPositionEmbeddings?: number;
  tieWordEmbeddings?: boolean;
  /** q/k/v biases (qwen2 sets this). */
  attentionBias?: boolean;
  mlpBias?: boolean;
  hiddenAct?: Activation;
}

export type ResolvedCausalLMConfig = Required<Omit<CausalLMConfig, 'ropeScaling'>> & { ropeScaling?: RopeScaling };

export function resolveCausalLMConfig(c: CausalLMConfig): ResolvedCausalLMConfig {
  const out: ResolvedCausalLMConfig = {
    modelType: c.modelType ?? 'llama',
    vocabSize: c.vocabSize,
    hiddenSize: c.hiddenSize,
    intermediateSize: c.intermediateSize,
    numLayers: c.numLayers,
    numHeads: c.numHeads,
    numKVHeads: c.numKVHeads ?? c.numHeads,
    headDim: c.headDim ?? c.hiddenSize / c.numHeads,
    rmsNormEps: c.rmsNormEps ?? 1e-6,
    ropeTheta: c.ropeTheta ?? 10000,
    maxPositionEmbeddings: c.maxPositionEmbeddings ?? 2048,
    tieWordEmbeddings: c.tieWordEmbeddings ?? false,
    attentionBias: c.attentionBias ?? false,
    mlpBias: c.mlpBias ?? false,
    hiddenAct: c.hiddenAct ?? 'silu',
    ...(c.ropeScaling ? { ropeScaling: c.ropeScaling } : {}),
  };
  for (const k of ['vocabSize', 'hiddenSize', 'intermediateSize', 'numLayers', 'numHeads', 'numKVHeads', 'headDim'] as const) {
    if (!Number.isInteger(out[k]) || out[k] <= 0) throw new AdaptorkitError('INVALID_CONFIG', `CausalLM config ${k} must be a positive integer, got ${out[k]}`);
  }
  if (out.numHeads % out.numKVHeads !== 0) {
    throw new AdaptorkitError('INVALID_CONFIG', `CausalLM config numHeads (${out.numHeads}) must be a multiple of numKVHeads (${out.numKVHeads})`);
  }
  return out;
}

/** Keys and values for every layer, grown as tokens are decoded. Dispose when done. */
export class KVCache {
  readonly slots: KVSlot[];
  constructor(numLayers: number) {
    this.slots = Array.from({ length: numLayers }, () => ({}));
  }
  /** Number of cached positions. */
  get length(): number {
    return this.slots[0]?.kv?.k.shape[2] ?? 0;
  }
  dispose(): void {
    for (const s of this.slots) {
      s.kv?.k.dispose();
      s.kv?.v.dispose();
      s.kv = undefined;
    }
  }
}

export interface LMForwardInput {
  /** int32 [B, T] token ids (or give `embeds`). */
  ids?: tf.Tensor;
  /** [B, T, d] ready input embeddings, e.g. with projected image features spliced in. */
  embeds?: tf.Tensor;
  cache?: KVCache;
  /** Extra additive attention mask broadcastable to [B, H, T, S]. */
  mask?: tf.Tensor;
  /** Position of the first new token (default: cache length, else 0). */
  positionOffset?: number;
  /** Also return the hidden state after every layer. */
  outputHiddenStates?: boolean;
  /** Skip the LM head (return hidden states only). */
  skipHead?: boolean;
  ctx?: ForwardContext;
}

export interface LMForwardOutput {
  /** [B, T, V] unless skipHead. */
  logits?: tf.Tensor3D;
  /** Final hidden state after the final norm: [B, T, d]. */
  lastHidden: tf.Tensor3D;
  /** hiddenStates[0] = input embeddings; hiddenStates[i] = output of layer i-1 (before the final norm). */
  hiddenStates?: tf.Tensor3D[];
}

export interface LayerRunOptions {
  rope: { cos: tf.Tensor; sin: tf.Tensor };
  cache?: KVCache;
  mask?: tf.Tensor;
  ctx?: ForwardContext;
  /** Collect each layer's output here. */
  collect?: tf.Tensor3D[];
}

/** A decoder layer of this model's shape (methods that add layers of the LLM's own shape use it). */
export function newDecoderLayer(c: ResolvedCausalLMConfig): DecoderLayer {
  return new DecoderLayer({
    dim: c.hiddenSize,
    hidden: c.intermediateSize,
    numHeads: c.numHeads,
    numKVHeads: c.numKVHeads,
    headDim: c.headDim,
    rmsNormEps: c.rmsNormEps,
    act: c.hiddenAct,
    attentionBias: c.attentionBias,
    mlpBias: c.mlpBias,
  });
}

/** The decoder stack (HF `model.`): embed_tokens, layers, norm. */
export class LlamaModel extends Module {
  readonly embed_tokens: Embedding;
  readonly layers: ModuleList<DecoderLayer>;
  readonly norm: RMSNorm;
  constructor(readonly config: ResolvedCausalLMConfig) {
    super();
    const c = config;
    this.embed_tokens = this.child('embed_tokens', new Embedding(c.vocabSize, c.hiddenSize));
    this.layers = this.child('layers', new ModuleList(Array.from({ length: c.numLayers }, () => newDecoderLayer(c))));
    this.norm = this.child('norm', new RMSNorm(c.hiddenSize, c.rmsNormEps));
  }
}

export class CausalLM extends Module {
  readonly config: ResolvedCausalLMConfig;
  readonly model: LlamaModel;
  readonly lm_head: Linear | undefined;
  private readonly rotary: RotaryTables;

  constructor(config: CausalLMConfig) {
    super();
    this.config = resolveCausalLMConfig(config);
    const c = this.config;
    this.model = this.child('model', new LlamaModel(c));
    this.lm_head = c.tieWordEmbeddings ? undefined : this.child('lm_head', new Linear(c.hiddenSize, c.vocabSize));
    this.rotary = new RotaryTables(c.headDim, c.ropeTheta, c.ropeScaling);
  }

  get numLayers(): number {
    return this.config.numLayers;
  }

  createCache(): KVCache {
    return new KVCache(this.config.numLayers);
  }

  /** int32 ids [B, T] -> [B, T, d] */
  embed(ids: tf.Tensor): tf.Tensor3D {
    if (ids.rank !== 2) throw new AdaptorkitError('SHAPE_MISMATCH', `CausalLM ids must be [B, T], got ${formatShape(ids.shape)}`);
    return this.model.embed_tokens.forward(ids) as tf.Tensor3D;
  }

  /** Rotary tables for positions [offset, offset + length). */
  rope(offset: number, length: number): { cos: tf.Tensor; sin: tf.Tensor } {
    return this.rotary.slice(offset, length);
  }

  /** Run decoder layers [start, end) on h [B, T, d]; a method can interleave its own layers. */
  runLayers(h: tf.Tensor, start: number, end: number, o: LayerRunOptions): tf.Tensor3D {
    if (start < 0 || end > this.config.numLayers || start > end) {
      throw new AdaptorkitError('INVALID_ARGUMENT', `layer span [${start}, ${end}) outside 0..${this.config.numLayers}`);
    }
    let x = h;
    for (let i = start; i < end; i++) {
      const next = this.model.layers.at(i).forward(x, { rope: o.rope, causal: true, mask: o.mask, cache: o.cache?.slots[i], ctx: o.ctx });
      if (o.collect) o.collect.push(next as tf.Tensor3D);
      else if (x !== h) x.dispose();
      x = next;
    }
    return x as tf.Tensor3D;
  }

  /** Final norm + head: [B, T, d] -> [B, T, V]. */
  head(hNormed: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      if (this.lm_head) return this.lm_head.forward(hNormed) as tf.Tensor3D;
      const [B, T, d] = hNormed.shape as [number, number, number];
      const logits = tf.matMul(tf.reshape(hNormed, [B * T, d]) as tf.Tensor2D, this.model.embed_tokens.weight.value as tf.Tensor2D, false, true);
      return tf.reshape(logits, [B, T, this.config.vocabSize]) as tf.Tensor3D;
    });
  }

  forward(input: LMForwardInput): LMForwardOutput {
    return tf.tidy(() => {
      const h0 = input.embeds ?? (input.ids ? this.embed(input.ids) : undefined);
      if (!h0) throw new AdaptorkitError('INVALID_ARGUMENT', 'CausalLM.forward needs ids or embeds');
      if (h0.rank !== 3 || h0.shape[2] !== this.config.hiddenSize) {
        throw new AdaptorkitError('SHAPE_MISMATCH', `CausalLM input embeddings must be [B, T, ${this.config.hiddenSize}], got ${formatShape(h0.shape)}`);
      }
      const T = h0.shape[1]!;
      const offset = input.positionOffset ?? input.cache?.length ?? 0;
      const collect: tf.Tensor3D[] | undefined = input.outputHiddenStates ? [h0 as tf.Tensor3D] : undefined;
      const h = this.runLayers(h0, 0, this.config.numLayers, {
        rope: this.rope(offset, T),
        cache: input.cache,
        mask: input.mask,
        ctx: input.ctx,
        collect,
      });
      const lastHidden = this.model.norm.forward(h) as tf.Tensor3D;
      const out: LMForwardOutput = { lastHidden };
      if (!input.skipHead) out.logits = this.head(lastHidden);
      if (collect) out.hiddenStates = collect;
      return out as unknown as tf.TensorContainer;
    }) as unknown as LMForwardOutput;
  }

  /** int32 [B, T] -> logits [B, T, V]. */
  logits(ids: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => this.forward({ ids }).logits!);
  }

  override dispose(): void {
    super.dispose();
    this.rotary.dispose();
  }
}
