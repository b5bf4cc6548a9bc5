/** Types of MmaModel's inputs and outputs. */
import type { CausalLM, ForwardContext, tf, VisionEncoder } from '@adaptorkit/core';
import type { MmaAdapter } from './adapter.js';

/** The frozen base MMA attaches to. */
export interface MmaBase {
  lm: CausalLM;
  /** Optional: without it MMA is text-only (LLM adapters + modality token). */
  vision?: VisionEncoder;
  /** Image placeholder token id (overrides config.imageTokenId). */
  imageTokenId?: number;
}

export interface MmaForwardInput {
  /** int32 [B, T] WITHOUT the modality token; each image already expanded to numVisualTokens placeholder ids. */
  ids: tf.Tensor;
  /**
   * Normalised pixels NHWC: either one per row [B, H, W, 3] (rows without placeholders ignore
   * theirs) or one per image row, in row order [B_img, H, W, 3].
   */
  images?: tf.Tensor;
  /** Modality row per sample (1 = image, 0 = text-only); default: 1 where the row holds image placeholders. */
  modality?: readonly number[];
  /** Also return the logits of the modality token's position (default: dropped, outputs align with ids). */
  skipHead?: boolean;
  /** Passed to every layer; `training: true` turns dropout on. MMA's routing state goes under ctx.mma. */
  ctx?: ForwardContext;
}

export interface MmaForwardOutput {
  /** [B, T, V] (unless skipHead), aligned with ids. */
  logits?: tf.Tensor3D;
  /** [B, T, d] after the final norm, aligned with ids. */
  lastHidden: tf.Tensor3D;
}

export interface MmaBatch extends MmaForwardInput {
  /** int32 [B, T] aligned with ids: the token at t where trained (answer + EOS), IGNORE_INDEX (-100) elsewhere. Image placeholders are always ignored. */
  labels: tf.Tensor;
}

/** Where an adapter sits. */
export interface MmaAdapterSite {
  tower: 'lm' | 'vision';
  layer: number;
  slot: 'preAttn' | 'preMlp';
  adapter: MmaAdapter;
}

/** Routing weights of one adapter for one batch. */
export interface MmaLayerRouting {
  tower: 'lm' | 'vision';
  layer: number;
  slot: 'preAttn' | 'preMlp';
  /** [B][N]: per-sample weights (per-token routing: the mean over the row's tokens). */
  weights: number[][];
  /** [B][T][N] when routing is per token. */
  perToken?: number[][][];
}

export interface MmaRoutingReport {
  /** Modality row used per sample. */
  modality: number[];
  lm: MmaLayerRouting[];
  vision: MmaLayerRouting[];
}

/** Trainable-parameter counts by part. */
export interface MmaPartCounts {
  lmAdapters: number;
  visionAdapters: number;
  projector: number;
  modalityEmbedding: number;
  total: number;
}

export interface MmaGenerateOptions {
  /** Prompt rows WITHOUT the modality token (image placeholders expanded); ragged rows are left-padded and masked. */
  ids: number[][] | tf.Tensor;
  images?: tf.Tensor;
  modality?: readonly number[];
  maxNewTokens: number;
  /** Stop a row at this token (not included in the output). */
  eosId?: number;
  /** Fill id for left padding (default 0; pad keys are masked). */
  padId?: number;
  /** 0 (default) = greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** Token ids never generated (default: the image placeholder). */
  suppressTokens?: number[];
}

export interface MmaGenerateResult {
  tokens: number[][];
  /** Routing weights used for every decode step (computed once at prefill). */
  routing: MmaRoutingReport;
}
