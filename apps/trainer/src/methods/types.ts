/** What the trainer needs from a method, whatever the method: the glue each registry entry provides. */
import type { CausalLM, Module, Parameter, tf, VisionEncoder } from '@adaptorkit/core';
import type { Modality, RetrievalPair, ShapesWorld } from '@adaptorkit/data';
import type { MMBatch } from '../vl/batch.js';

/** Decoding settings (`adaptorkit chat --temperature --top-k --top-p --seed`); empty = greedy. */
export interface Sampling {
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
}

export interface Bases {
  lm: CausalLM;
  vision: VisionEncoder;
  /** Token id of each modality placeholder. */
  placeholderIds: Partial<Record<Modality, number>>;
  padId: number;
  eosId: number;
}

export interface TrainSystem {
  /** The module whose trainable parameters are saved as the adapter (and counted). */
  module: Module;
  /** Explicit trainable list handed to the optimizer. */
  trainable(): [string, Parameter][];
  /** Every parameter involved (base + method), for trainable %. */
  totalParameters(): number;
  /** Feature vectors per modality placeholder. */
  tokensPerInput: Partial<Record<Modality, number>>;
  /**
   * Training loss of a batch (answer-only labels). `maskSeed` (training): restart the method's
   * dropout streams from it first, so a step's masks are a function of (seed, step, micro-batch)
   * and a resumed run draws exactly what the uninterrupted one did.
   */
  loss(batch: MMBatch, training: boolean, maskSeed?: number): tf.Scalar;
  /** Answers for prompt-only batches: greedy, or sampled when `sampling.temperature` > 0. */
  generate(batch: MMBatch, maxNewTokens: number, sampling?: Sampling): number[][];
  /** Sum of token NLL and token count of text-only ids through the model's text path. */
  textNll(ids: tf.Tensor2D): { nll: number; tokens: number };
  /** Answers on the text path for text-only prompts (greedy unless `sampling.temperature` > 0). */
  generateText(rows: number[][], maxNewTokens: number, sampling?: Sampling): number[][];
  /** Method-specific facts for run.json (e.g. routing weights per layer). */
  extras?(batches: { text: MMBatch; image: MMBatch }): Record<string, unknown>;
  /** Method name and config for adaptorkit_adapter.json. */
  describe(): { method: string; config: unknown };
}

export interface MethodEntry {
  name: string;
  description: string;
  /** Absent or 'generative': trained on instruction batches, scored by generation (TrainSystem). */
  kind?: 'generative';
  build(bases: Bases, config: Record<string, unknown>): TrainSystem;
}

/** Paired images and texts for contrastive training and retrieval (pair i: image i, text i). */
export interface RetrievalBatch {
  /** [B, H, W, 3] */
  pixels: tf.Tensor4D;
  /** int32 [B, T], padded */
  ids: tf.Tensor2D;
}

/** What scores retrieval: separate, L2-normalised image and text embeddings. */
export interface RetrievalEncoder {
  /** Build a batch from ShapesWorld pairs the way this model reads them (rendering, tokens, padding). */
  batch(sw: ShapesWorld, pairs: readonly RetrievalPair[]): RetrievalBatch;
  /** pixels [N, H, W, 3] -> [N, e] */
  encodeImages(pixels: tf.Tensor4D): tf.Tensor2D;
  /** ids [N, T] -> [N, e] */
  encodeTexts(ids: tf.Tensor2D): tf.Tensor2D;
  dispose(): void;
}

/** A retrieval method (e.g. MWA on a Multiway Transformer): contrastive training, R@K scoring, no generation. */
export interface RetrievalSystem extends RetrievalEncoder {
  /** The module whose trainable parameters are saved as the adapter (and counted). */
  module: Module;
  /** Explicit trainable list handed to the optimizer. */
  trainable(): [string, Parameter][];
  /** Every parameter involved (base + method), for trainable %. */
  totalParameters(): number;
  /**
   * Symmetric contrastive loss of a paired batch. `maskSeed` (training): restart the dropout /
   * drop-path masks from it; the trainer derives it from (run seed, step, micro-batch), so a resumed
   * run draws the same masks as an uninterrupted one.
   */
  loss(batch: RetrievalBatch, training: boolean, maskSeed?: number): tf.Scalar;
  /** The frozen base's checkpoint folder (recorded with the adapter). */
  basePath: string;
  /** Method-specific facts for run.json (e.g. parameter counts per module kind). */
  extras?(): Record<string, unknown>;
  describe(): { method: string; config: unknown };
}

export interface RetrievalMethodEntry {
  name: string;
  description: string;
  kind: 'retrieval';
  /** Load the frozen base named by the method config and attach the method. */
  build(config: Record<string, unknown>): Promise<RetrievalSystem>;
  /** The same base without the method: the frozen baseline a run is compared with. */
  frozenBase(config: Record<string, unknown>): Promise<RetrievalEncoder>;
}

/** Any registry entry. */
export type AnyMethodEntry = MethodEntry | RetrievalMethodEntry;
