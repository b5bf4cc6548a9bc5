/**
 * attachDamc: turn a frozen CausalLM plus one modality's encoder and projector into a trainable
 * DAMC model (naive: one shared delta; decoupled: a text delta and a modality delta).
 * Everything is frozen first; then the adapter modules are walked and marked trainable.
 */
import { manualSeed, type CausalLM, type Forward, type ForwardContext, type Module, type Parameter, type tf } from '@adaptorkit/core';
import { SHARED_DELTA, TEXT_DELTA, parseDamcConfig, type DamcConfig, type DamcConfigInput } from './config.js';
import { DamcModel, ModalityBranch, wrapLinears } from './model.js';

export interface ModalitySpec {
  /** Modality encoder (e.g. a small VisionEncoder, or an MLP over sound frames). */
  encoder: Module;
  /** Maps encoder features [B, N, e] to the LLM width [B, N, d]. */
  projector: Module & Forward;
  /** The token id of this modality's placeholder in the ids. */
  placeholderId: number;
  /** How to get [B, N, e] from the encoder (default encoder.forward(x)); e.g. a VisionEncoder's hidden state. */
  encode?: (encoder: Module, x: tf.Tensor, ctx?: ForwardContext) => tf.Tensor;
}

export interface DamcAttached {
  model: DamcModel;
  config: DamcConfig;
  /** Exactly the parameters to optimise (LoRA factors, projector, boundary embeddings, encoder if configured). */
  trainable: Parameter[];
}

export function attachDamc(lm: CausalLM, config: DamcConfigInput | DamcConfig = {}, modality?: ModalitySpec): DamcAttached {
  const cfg = parseDamcConfig(config);
  const model = new DamcModel(lm, cfg.mode === 'naive' ? 'shared' : 'decoupled');
  const loras = wrapLinears(lm, cfg.lora, cfg.seed);
  manualSeed(cfg.seed);
  for (const l of loras) {
    if (cfg.mode === 'naive') l.addLoRA(SHARED_DELTA);
    else {
      l.addLoRA(TEXT_DELTA);
      l.addLoRA(cfg.modality);
    }
  }
  model.loras = loras;
  model.setDefaultRoute();
  let branch: ModalityBranch | undefined;
  if (modality) {
    branch = model.addModality(
      cfg.modality,
      new ModalityBranch(modality.encoder, modality.projector, lm.config.hiddenSize, cfg.boundaryTokens, modality.encode),
      modality.placeholderId,
    );
  }
  // freeze everything, then walk the adapter modules
  model.freeze();
  for (const l of loras) {
    l.lora_A.unfreeze();
    l.lora_B.unfreeze();
  }
  if (branch) {
    branch.projector.unfreeze();
    if (branch.boundary) branch.boundary.trainable = true;
    if (cfg.trainEncoder) branch.encoder.unfreeze();
  }
  return { model, config: cfg, trainable: model.trainableParameters() };
}

/** Trainable parameter count: layers * sum over targeted maps of r (in + out) * deltas, + projector, + 2k d per modality. */
export function loraParameterCount(dims: { in: number; out: number }[], rank: number, deltas: number): number {
  return dims.reduce((s, d) => s + rank * (d.in + d.out), 0) * deltas;
}
