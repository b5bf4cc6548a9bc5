/** What the trainer needs from a method, whatever the method: the glue each registry entry provides. */
import type { CausalLM, Module, Parameter, tf, VisionEncoder } from '@adaptorkit/core';
import type { Modality } from '@adaptorkit/data';
import type { MMBatch } from '../vl/batch.js';

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
  /** Training loss of a batch (answer-only labels). */
  loss(batch: MMBatch, training: boolean): tf.Scalar;
  /** Greedy answers for prompt-only batches. */
  generate(batch: MMBatch, maxNewTokens: number): number[][];
  /** Sum of token NLL and token count of text-only ids through the model's text path. */
  textNll(ids: tf.Tensor2D): { nll: number; tokens: number };
  /** Greedy answers on the text path for text-only prompts. */
  generateText(rows: number[][], maxNewTokens: number): number[][];
  /** Method-specific facts for run.json (e.g. routing weights per layer). */
  extras?(batches: { text: MMBatch; image: MMBatch }): Record<string, unknown>;
  /** Method name and config for adapter_config.json. */
  describe(): { method: string; config: unknown };
}

export interface MethodEntry {
  name: string;
  description: string;
  build(bases: Bases, config: Record<string, unknown>): TrainSystem;
}
