/**
 * CausalLMConfig: one config shape for every supported decoder family (HF model_type llama,
 * mistral, qwen2, qwen3, gemma, gemma2, gemma3_text, phi3). The family features are explicit
 * fields, so a config built by hand means the same thing as one parsed from config.json
 * (io/hf-lm-config.ts), and `newDecoderLayer(c, i)` builds layer i of exactly this model.
 */
import { AdaptorkitError } from '../errors.js';
import { DecoderLayer } from '../nn/blocks.js';
import type { Activation } from '../nn/layers.js';
import type { RopeScaling } from '../nn/rope.js';

export const LM_FAMILIES = ['llama', 'mistral', 'qwen2', 'qwen3', 'gemma', 'gemma2', 'gemma3_text', 'phi3'] as const;
export type LMFamily = (typeof LM_FAMILIES)[number];
export type LayerType = 'full_attention' | 'sliding_attention';

export interface CausalLMConfig {
  modelType?: LMFamily;
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
  /** Per-head q/k RMSNorm before RoPE: 'plain' (qwen3) or 'unit-offset' (gemma3). */
  qkNorm?: 'plain' | 'unit-offset';
  /** Every RMSNorm scales by (1 + w) (the Gemma families). */
  unitOffsetNorms?: boolean;
  /** Post-norms around attention and MLP (gemma2, gemma3). */
  sandwichNorms?: boolean;
  /** Fused qkv_proj and gate_up_proj (phi3). */
  fusedProjections?: boolean;
  /** Token embeddings are multiplied by this (Gemma: sqrt(hidden), rounded to the checkpoint dtype). */
  embedScale?: number;
  /** Attention score scale (default 1/sqrt(headDim); gemma2/3: query_pre_attn_scalar^-0.5). */
  attnScale?: number;
  /** cap * tanh(scores / cap) on attention scores (gemma2). */
  attnLogitSoftcap?: number;
  /** cap * tanh(logits / cap) on the final logits (gemma2). */
  finalLogitSoftcap?: number;
  /** Window of the sliding-attention layers (positions). */
  slidingWindow?: number;
  /** Attention kind per layer (default: every layer full). Sliding layers need slidingWindow. */
  layerTypes?: LayerType[];
  /** Rope base of the sliding layers, without scaling (gemma3 rope_local_base_freq). */
  localRopeTheta?: number;
}

type OptionalKeys = 'ropeScaling' | 'qkNorm' | 'embedScale' | 'attnScale' | 'attnLogitSoftcap' | 'finalLogitSoftcap' | 'slidingWindow' | 'localRopeTheta';
export type ResolvedCausalLMConfig = Required<Omit<CausalLMConfig, OptionalKeys>> & Pick<CausalLMConfig, OptionalKeys>;

function positive(v: number | undefined, what: string): void {
  if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new AdaptorkitError('INVALID_CONFIG', `CausalLM config ${what} must be a positive number, got ${v}`);
}

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
    unitOffsetNorms: c.unitOffsetNorms ?? false,
    sandwichNorms: c.sandwichNorms ?? false,
    fusedProjections: c.fusedProjections ?? false,
    layerTypes: c.layerTypes ?? Array.from({ length: c.numLayers }, () => 'full_attention' as const),
  };
  for (const k of ['ropeScaling', 'qkNorm', 'embedScale', 'attnScale', 'attnLogitSoftcap', 'finalLogitSoftcap', 'slidingWindow', 'localRopeTheta'] as const) {
    if (c[k] !== undefined) (out as Record<string, unknown>)[k] = c[k];
  }
  for (const k of ['vocabSize', 'hiddenSize', 'intermediateSize', 'numLayers', 'numHeads', 'numKVHeads', 'headDim'] as const) {
    if (!Number.isInteger(out[k]) || out[k] <= 0) throw new AdaptorkitError('INVALID_CONFIG', `CausalLM config ${k} must be a positive integer, got ${out[k]}`);
  }
  if (out.numHeads % out.numKVHeads !== 0) {
    throw new AdaptorkitError('INVALID_CONFIG', `CausalLM config numHeads (${out.numHeads}) must be a multiple of numKVHeads (${out.numKVHeads})`);
  }
  for (const k of ['embedScale', 'attnScale', 'attnLogitSoftcap', 'finalLogitSoftcap', 'localRopeTheta'] as const) positive(out[k], k);
  if (out.slidingWindow !== undefined && (!Number.isInteger(out.slidingWindow) || out.slidingWindow <= 0)) {
    throw new AdaptorkitError('INVALID_CONFIG', `CausalLM config slidingWindow must be a positive integer, got ${out.slidingWindow}`);
  }
  if (out.layerTypes.length !== out.numLayers) {
    throw new AdaptorkitError('INVALID_CONFIG', `CausalLM config layerTypes has ${out.layerTypes.length} entries for ${out.numLayers} layers`);
  }
  const bad = out.layerTypes.find((t) => t !== 'full_attention' && t !== 'sliding_attention');
  if (bad !== undefined) throw new AdaptorkitError('UNSUPPORTED', `CausalLM config layerTypes: layer type ${JSON.stringify(bad)} is not supported (full_attention, sliding_attention)`);
  if (out.layerTypes.includes('sliding_attention') && out.slidingWindow === undefined) {
    throw new AdaptorkitError('INVALID_CONFIG', 'CausalLM config has sliding_attention layers but no slidingWindow');
  }
  return out;
}

/**
 * Decoder layer `layerIndex` of this model's shape (its attention kind and rope: sliding layers get
 * the window and, in gemma3, the local rope). Methods that add layers of the LLM's own shape use
 * it; pass the index of the base layer the new one copies (default: a full-attention layer).
 */
export function newDecoderLayer(c: ResolvedCausalLMConfig, layerIndex?: number): DecoderLayer {
  const sliding = layerIndex !== undefined && c.layerTypes[layerIndex] === 'sliding_attention';
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
    unitOffsetNorms: c.unitOffsetNorms,
    sandwichNorms: c.sandwichNorms,
    fused: c.fusedProjections,
    qkNorm: c.qkNorm,
    attnScale: c.attnScale,
    attnLogitSoftcap: c.attnLogitSoftcap,
    slidingWindow: sliding ? c.slidingWindow : undefined,
    localRope: sliding && c.localRopeTheta !== undefined,
  });
}
