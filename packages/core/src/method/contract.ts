/**
 * The AdaptorMethod contract: what every method package exports and the trainer registers. A method
 * is a plain value (no global registration, no import side effects):
 *
 *   name, paper, kind, description    who it is
 *   configSchema                      a strict zod schema (unknown keys refused, defaults filled)
 *   attach(base, config)              freeze the base, add the method's modules -> an adapted model
 *
 * The adapted model carries everything a run needs: its trainable parameters (an explicit list for
 * the optimizer), parameter counts, the loss on a batch, decoding (through core's one `generate`),
 * extras for the report, and adapter save/load. Kinds:
 *   generative   instruction batches, scored by generation (IAA, MMA, bottleneck adapters, baselines)
 *   composition  generative models whose adapters are composed afterwards by merging (DAMC)
 *   retrieval    contrastive image-text pairs, scored by R@K (MWA)
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { z } from 'zod';
import type { CausalLM } from '../models/causal-lm.js';
import type { VisionEncoder } from '../models/vision.js';
import type { Module } from '../nn/module.js';
import type { Parameter } from '../nn/parameter.js';

export type MethodKind = 'generative' | 'retrieval' | 'composition';

/** The publication a method implements. */
export interface Paper {
  title: string;
  authors: string;
  venue: string;
  url: string;
}

/** One non-text input of a batch row (an image [H, W, 3] normalised for the encoder, a sound, ...). */
export interface MethodInput {
  modality: string;
  /** Row of the batch the input belongs to. */
  row: number;
  data: Float32Array;
}

/** A multimodal batch as methods read it: placeholders already expanded to tokensPerInput ids. */
export interface MethodBatch {
  B: number;
  T: number;
  /** [B * T] token ids; pad = the tokenizer's pad id (right-padded for training, left-padded for generation). */
  ids: Int32Array;
  /** [B * T] answer tokens, IGNORE_INDEX elsewhere. */
  labels: Int32Array;
  /** Unpadded length of each row. */
  lengths: number[];
  /** Non-text inputs in row order, and within a row in placeholder order. */
  inputs: MethodInput[];
}

/** The frozen base a generative method attaches to. */
export interface GenerativeBase {
  lm: CausalLM;
  vision: VisionEncoder;
  /** Token id of each modality placeholder (e.g. { image: 5 }). */
  placeholderIds: Partial<Record<string, number>>;
  padId: number;
  /** Decoding stops at this id; it is not part of the returned tokens (see generate/generate.ts). */
  eosId: number;
}

/** What every adapted model has, whatever its kind. */
export interface AdaptedModel<Batch> {
  /** The module whose trainable parameters are the adapter (saved, loaded, counted). */
  module: Module;
  /** The explicit trainable list handed to the optimizer (names are checkpoint tensor names). */
  trainable(): [string, Parameter][];
  /** Every parameter involved (base + method), for trainable %. */
  totalParameters(): number;
  /**
   * Training loss of a batch. `maskSeed` (training): restart the method's dropout streams from it
   * first, so a step's masks are a function of (seed, step, micro-batch) and a resumed run draws
   * exactly what the uninterrupted one did. Runs inside the caller's tf.tidy.
   */
  loss(batch: Batch, training: boolean, maskSeed?: number): tf.Scalar;
  /** Method name and resolved config, recorded in adaptorkit_adapter.json. */
  describe(): { method: string; config: unknown };
  /** Write the adapter (trainable tensors + adaptorkit_adapter.json) to `dir`, atomically. */
  save(dir: string, o?: { basePath?: string }): Promise<void>;
  /** Load an adapter written by save into this model (strict: names, shapes, base fingerprint). */
  load(dir: string): Promise<void>;
}

/** Decoding settings (`adaptorkit chat --temperature --top-k --top-p --seed`); empty = greedy. */
export interface Sampling {
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
}

/** An adapted generative model: instruction batches in, tokens out. */
export interface GenerativeModel extends AdaptedModel<MethodBatch> {
  /** Feature vectors each modality placeholder expands to. */
  tokensPerInput: Partial<Record<string, number>>;
  /** Answers for left-padded prompt-only batches, decoded by core's generate (EOS not included): greedy, or sampled when `sampling.temperature` > 0. */
  generate(batch: MethodBatch, maxNewTokens: number, sampling?: Sampling): number[][];
  /**
   * Logits [B, V] of the token after each row of an unpadded prompt-only batch, by one full forward
   * (no cache): what greedy decoding must follow step by step (the contract tests check it).
   */
  nextTokenLogits(batch: MethodBatch): tf.Tensor2D;
  /** Sum of token NLL and token count of right-padded text-only ids [B, T] through the model's text path. */
  textNll(ids: tf.Tensor2D): { nll: number; tokens: number };
  /** Answers on the text path for text-only prompt rows (ragged); greedy unless `sampling.temperature` > 0. */
  generateText(rows: number[][], maxNewTokens: number, sampling?: Sampling): number[][];
  /** Method facts for the report (e.g. MMA's routing weights on text vs image probes). */
  extras?(probes: { text: MethodBatch; image: MethodBatch }): Record<string, unknown>;
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
  /** Build a batch from the data's pairs the way this model reads them (rendering, tokens, padding). */
  batch(data: unknown, pairs: readonly unknown[]): RetrievalBatch;
  /** pixels [N, H, W, 3] -> [N, e] */
  encodeImages(pixels: tf.Tensor4D): tf.Tensor2D;
  /** ids [N, T] -> [N, e] */
  encodeTexts(ids: tf.Tensor2D): tf.Tensor2D;
  dispose(): void;
}

/** An adapted retrieval model (e.g. MWA on a Multiway Transformer). */
export interface RetrievalModel extends AdaptedModel<RetrievalBatch>, RetrievalEncoder {
  /** The frozen base's checkpoint folder (recorded with the adapter). */
  basePath: string;
  /** Method facts for run.json (e.g. parameter counts per module kind). */
  extras?(): Record<string, unknown>;
}

/** Where a retrieval method finds its base: resolves a base spec ('shapesworld' or a folder) to a folder. */
export interface BaseLocator {
  path(spec: string, part: string): string;
}

interface MethodInfo<S extends z.ZodType> {
  readonly name: string;
  readonly paper: Paper;
  /** One line for `adaptorkit methods`. */
  readonly description: string;
  /** Strict schema of the method's config (z.strictObject): defaults and help text live here. */
  readonly configSchema: S;
}

export interface GenerativeMethod<S extends z.ZodType = z.ZodType> extends MethodInfo<S> {
  readonly kind: 'generative' | 'composition';
  /** Freeze the base, add the method's modules. `config` is raw (validated with configSchema). */
  attach(base: GenerativeBase, config: unknown): GenerativeModel;
  /**
   * Configs of the generic baselines (baselines.ts) on this method's machinery: `frozen` trains the
   * connector only, `full` the connector and what the method owns; the base LM layers are unfrozen
   * by the baseline itself.
   */
  readonly baselines?: { frozen(config: unknown): unknown; full(config: unknown): unknown };
}

export interface RetrievalMethod<S extends z.ZodType = z.ZodType> extends MethodInfo<S> {
  readonly kind: 'retrieval';
  /** Load the frozen base named by the config and attach the method. */
  attach(base: BaseLocator, config: unknown): Promise<RetrievalModel>;
  /** The same base without the method: the frozen baseline a run is compared with. */
  frozenBase(base: BaseLocator, config: unknown): Promise<RetrievalEncoder>;
}

export type AdaptorMethod = GenerativeMethod | RetrievalMethod;
