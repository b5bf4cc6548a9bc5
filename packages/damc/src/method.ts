/** The plain values the trainer lists in its registry (no global registration, no side effects). */
import type { CausalLM } from '@adaptorkit/core';
import { damcConfigSchema, type DamcConfig, type DamcConfigInput } from './config.js';
import { attachDamc, type DamcAttached, type ModalitySpec } from './attach.js';

export interface DamcMethod {
  readonly name: 'damc-naive' | 'damc-decoupled';
  readonly description: string;
  readonly configSchema: typeof damcConfigSchema;
  /** Freeze `lm`, add LoRA deltas and the modality branch; returns the model and its trainable list. */
  attach(lm: CausalLM, config?: DamcConfigInput | DamcConfig, modality?: ModalitySpec): DamcAttached;
}

export const damcNaiveMethod: DamcMethod = {
  name: 'damc-naive',
  description:
    'NaiveMC training (Chen et al., ACL 2024): LoRA on every linear map of a frozen LLM, one delta for all tokens, plus a modality ' +
    'encoder/projector with boundary embeddings. Compose several such models with composeModels(..., {method: "naive"}).',
  configSchema: damcConfigSchema,
  attach: (lm, config = {}, modality) => attachDamc(lm, { ...config, mode: 'naive' }, modality),
};

export const damcDecoupledMethod: DamcMethod = {
  name: 'damc-decoupled',
  description:
    'DAMC training (Chen et al., ACL 2024): every adapted linear map holds a text delta and a modality delta, routed per position ' +
    '(modality span + boundary embeddings -> modality delta, everything else -> text delta). Compose with composeModels(..., {method: "damc"}).',
  configSchema: damcConfigSchema,
  attach: (lm, config = {}, modality) => attachDamc(lm, { ...config, mode: 'decoupled' }, modality),
};
