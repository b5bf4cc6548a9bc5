/**
 * CausalLM, the LLaMA family and its HF cousins (llama, mistral, qwen2, qwen3, gemma, gemma2,
 * gemma3_text, phi3): embed (x embedScale) -> N decoder layers -> RMSNorm -> head (soft-capped
 * where the family does). Module paths equal HF tensor names (`model.layers.0.self_attn.q_proj.weight`).
 *
 * Numerics follow HF's definitions: RMSNorm in float32 with eps (Gemma: x (1 + w)), rotate-half
 * RoPE with rope_theta (gemma3 sliding layers: their own base), grouped-query attention (KV head j
 * serves query heads j*rep .. j*rep+rep-1), gated MLP (SwiGLU; Gemma GeGLU with tanh GELU).
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError, formatShape } from '../errors.js';
import type { KVSlot, RopeTables } from '../nn/attention.js';
import { DecoderLayer } from '../nn/blocks.js';
import type { ForwardContext } from '../nn/context.js';
import { Embedding, Linear, RMSNorm } from '../nn/layers.js';
import { bf16Linear } from '../nn/bf16.js';
import { recomputed, type RecomputeMode } from '../nn/recompute.js';
import type { Parameter } from '../nn/parameter.js';
import { Module, ModuleList } from '../nn/module.js';
import { RotaryTables } from '../nn/rope.js';
import { newDecoderLayer, resolveCausalLMConfig, type CausalLMConfig, type ResolvedCausalLMConfig } from './lm-config.js';

export { newDecoderLayer, resolveCausalLMConfig, LM_FAMILIES } from './lm-config.js';
export type { CausalLMConfig, ResolvedCausalLMConfig, LMFamily, LayerType } from './lm-config.js';

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
  /** Logits of the last position only ([B, 1, V]): all a decoding step reads (generate's prompt step sets it). */
  lastLogitsOnly?: boolean;
  ctx?: ForwardContext;
}

export interface LMForwardOutput {
  /** [B, T, V] unless skipHead ([B, 1, V] with lastLogitsOnly). */
  logits?: tf.Tensor3D;
  /** Final hidden state after the final norm: [B, T, d]. */
  lastHidden: tf.Tensor3D;
  /** hiddenStates[0] = input embeddings; hiddenStates[i] = output of layer i-1 (before the final norm). */
  hiddenStates?: tf.Tensor3D[];
}

export interface LayerRunOptions {
  rope: RopeTables;
  cache?: KVCache;
  mask?: tf.Tensor;
  ctx?: ForwardContext;
  /** Collect each layer's output here. */
  collect?: tf.Tensor3D[];
}

/** The final norm of this model's family (methods that copy it use this). */
export function newFinalNorm(c: ResolvedCausalLMConfig): RMSNorm {
  return new RMSNorm(c.hiddenSize, c.rmsNormEps, { unitOffset: c.unitOffsetNorms });
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
    this.layers = this.child('layers', new ModuleList(Array.from({ length: c.numLayers }, (_, i) => newDecoderLayer(c, i))));
    this.norm = this.child('norm', newFinalNorm(c));
  }
}

export class CausalLM extends Module {
  readonly config: ResolvedCausalLMConfig;
  readonly model: LlamaModel;
  readonly lm_head: Linear | undefined;
  /** 'layers': each decoder layer's activations are recomputed in the backward pass (nn/recompute.ts); not with a KV cache. */
  recompute: RecomputeMode = 'none';
  private readonly rotary: RotaryTables;
  private readonly localRotary: RotaryTables | undefined;

  constructor(config: CausalLMConfig) {
    super();
    this.config = resolveCausalLMConfig(config);
    const c = this.config;
    this.model = this.child('model', new LlamaModel(c));
    this.lm_head = c.tieWordEmbeddings ? undefined : this.child('lm_head', new Linear(c.hiddenSize, c.vocabSize));
    this.rotary = new RotaryTables(c.headDim, c.ropeTheta, c.ropeScaling);
    this.localRotary = c.localRopeTheta !== undefined ? new RotaryTables(c.headDim, c.localRopeTheta) : undefined;
  }

  get numLayers(): number {
    return this.config.numLayers;
  }

  createCache(): KVCache {
    return new KVCache(this.config.numLayers);
  }

  /**
   * int32 ids [B, T] -> [B, T, d]: the first layer's input for these tokens (times embedScale for
   * the Gemma families), which is also what `forward({ embeds })` takes.
   */
  embed(ids: tf.Tensor): tf.Tensor3D {
    if (ids.rank !== 2) throw new AdaptorkitError('SHAPE_MISMATCH', `CausalLM ids must be [B, T], got ${formatShape(ids.shape)}`);
    return tf.tidy(() => this.scaleEmbeddings(this.model.embed_tokens.forward(ids)));
  }

  /** Raw embedding rows -> first-layer input (x embedScale where the family has one). */
  scaleEmbeddings(e: tf.Tensor): tf.Tensor3D {
    const s = this.config.embedScale;
    return (s === undefined ? e : tf.mul(e, s)) as tf.Tensor3D;
  }

  /** Rotary tables for positions [offset, offset + length) (+ `local` ones for gemma3 sliding layers). */
  rope(offset: number, length: number): RopeTables {
    const g = this.rotary.slice(offset, length);
    return this.localRotary ? { ...g, local: this.localRotary.slice(offset, length) } : g;
  }

  /** Run decoder layers [start, end) on h [B, T, d]; a method can interleave its own layers. */
  runLayers(h: tf.Tensor, start: number, end: number, o: LayerRunOptions): tf.Tensor3D {
    if (start < 0 || end > this.config.numLayers || start > end) {
      throw new AdaptorkitError('INVALID_ARGUMENT', `layer span [${start}, ${end}) outside 0..${this.config.numLayers}`);
    }
    let x = h;
    for (let i = start; i < end; i++) {
      const layer = this.model.layers.at(i);
      const call = (xi: tf.Tensor, rope: RopeTables, mask: tf.Tensor | undefined) => layer.forward(xi, { rope, causal: true, mask, cache: o.cache?.slots[i], ctx: o.ctx });
      const next = this.recompute === 'layers' && !o.cache ? this.recomputedLayer(call, x, o, layer.trainableParameters()) : call(x, o.rope, o.mask);
      if (o.collect) o.collect.push(next as tf.Tensor3D);
      else if (x !== h) x.dispose();
      x = next;
    }
    return x as tf.Tensor3D;
  }

  /** One layer through nn/recompute.ts: RoPE tables and mask travel as kept tensors (the forward's own are disposed before the backward). */
  private recomputedLayer(call: (x: tf.Tensor, rope: RopeTables, mask: tf.Tensor | undefined) => tf.Tensor, x: tf.Tensor, o: LayerRunOptions, params: Parameter[]): tf.Tensor {
    const r = o.rope;
    const aux = [r.cos, r.sin, ...(r.local ? [r.local.cos, r.local.sin] : []), ...(o.mask ? [o.mask] : [])];
    return recomputed(
      (xi, a) => {
        const rope: RopeTables = r.local ? { cos: a[0]!, sin: a[1]!, local: { cos: a[2]!, sin: a[3]! } } : { cos: a[0]!, sin: a[1]! };
        return call(xi, rope, o.mask ? a[a.length - 1] : undefined);
      },
      x,
      aux,
      params,
    );
  }

  /** Head on final-normed hidden states: [B, T, d] -> [B, T, V] (soft-capped where the family does). */
  head(hNormed: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      let logits: tf.Tensor;
      if (this.lm_head) logits = this.lm_head.forward(hNormed);
      else {
        const [B, T, d] = hNormed.shape as [number, number, number];
        const w = this.model.embed_tokens.weight;
        const h2 = tf.reshape(hNormed, [B * T, d]);
        // tied head: logits = h E^T; a bf16-stored E [V, d] is already the [out, in] layout its kernel takes
        const flat = w.storage === 'bf16' ? bf16Linear(h2, w.packed, this.config.vocabSize, d) : tf.matMul(h2 as tf.Tensor2D, w.value as tf.Tensor2D, false, true);
        logits = tf.reshape(flat, [B, T, this.config.vocabSize]);
      }
      return this.softcapLogits(logits) as tf.Tensor3D;
    });
  }

  /** cap * tanh(logits / cap) when the family caps its final logits (gemma2), else the logits. */
  softcapLogits(logits: tf.Tensor): tf.Tensor {
    const cap = this.config.finalLogitSoftcap;
    return cap === undefined ? logits : tf.mul(tf.tanh(tf.div(logits, cap)), cap);
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
      if (!input.skipHead) out.logits = this.head(input.lastLogitsOnly && T > 1 ? (tf.slice(lastHidden, [0, T - 1, 0], [-1, 1, -1]) as tf.Tensor3D) : lastHidden);
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
    this.localRotary?.dispose();
  }
}
