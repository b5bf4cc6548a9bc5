/**
 * One multimodal parameter set of IAA (the reference model has one for general multimodal work and
 * one for grounding): vision projector, a copy of the token embedding, the insertion layers, the
 * final RMSNorm and the LM head. HF-like child names so a set's state dict reads naturally:
 * `mm_projector.0.weight`, `embed_tokens.weight`, `layers.3.self_attn.q_proj.weight`,
 * `norm.weight`, `lm_head.weight`.
 */
import { DecoderLayer, Embedding, Linear, MLPProjector, Module, ModuleList, newDecoderLayer, newFinalNorm, type RMSNorm, type CausalLM } from '@adaptorkit/core';

export interface TaskSetShape {
  /** Vision feature width (projector input). */
  visionDim: number;
  /** Number of insertion layers. */
  numInserted: number;
  /** Projector depth N of mlpNx_gelu. */
  projectorDepth: number;
}

export class IaaTaskSet extends Module {
  readonly mm_projector: MLPProjector;
  readonly embed_tokens: Embedding;
  readonly layers: ModuleList<DecoderLayer>;
  readonly norm: RMSNorm;
  readonly lm_head: Linear;

  constructor(lm: CausalLM, readonly shape: TaskSetShape) {
    super();
    const c = lm.config;
    this.mm_projector = this.child('mm_projector', new MLPProjector(shape.visionDim, c.hiddenSize, shape.projectorDepth, 'gelu'));
    this.embed_tokens = this.child('embed_tokens', new Embedding(c.vocabSize, c.hiddenSize));
    this.layers = this.child('layers', new ModuleList(Array.from({ length: shape.numInserted }, () => newDecoderLayer(c))));
    this.norm = this.child('norm', newFinalNorm(c)); // the base's final norm (Gemma: x (1 + w))
    this.lm_head = this.child('lm_head', new Linear(c.hiddenSize, c.vocabSize));
  }
}
