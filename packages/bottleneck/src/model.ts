/**
 * A frozen LLM with Houlsby bottleneck adapters in the postAttn / postMlp slots of its decoder
 * layers, and a LLaVA-style vision path: frozen vision encoder (penultimate layer, CLIP's class
 * token dropped) -> trainable projector -> features spliced in at the image placeholders.
 * Decoding is core's generate with one hook: the prompt's input embeddings (image features spliced in).
 */
import {
  AdaptorkitError,
  generate,
  ignoreTokens,
  manualSeed,
  maskedCrossEntropy,
  MLPProjector,
  Module,
  sequenceNll,
  spliceFeatures,
  tf,
  type CausalLM,
  type ForwardContext,
  type Sampling,
  type VisionEncoder,
} from '@adaptorkit/core';
import type { BottleneckConfig } from './config.js';
import { BottleneckAdapter } from './layer.js';

export interface BottleneckBase {
  lm: CausalLM;
  vision?: VisionEncoder;
}

export interface BottleneckGenerateOptions extends Sampling {
  /** Prompt rows (any lengths: left-padded with padId, pads masked). */
  ids: number[][];
  /** [B, H, W, 3] one image per row (rows without a placeholder ignore theirs). */
  images?: tf.Tensor;
  maxNewTokens: number;
  padId: number;
  /** Ends a row; not returned (core generate's EOS rule). */
  eosId?: number;
}

export class BottleneckModel extends Module {
  readonly adapters: BottleneckAdapter[] = [];
  readonly projector: MLPProjector | undefined;
  /** Feature vectors per image (how many placeholder ids the data pipeline expands an image to). */
  readonly imageTokens: number;

  constructor(
    readonly lm: CausalLM,
    readonly vision: VisionEncoder | undefined,
    readonly config: BottleneckConfig,
  ) {
    super();
    this.child('language_model', lm);
    if (vision) this.child('vision_tower', vision);
    const layers = lm.model.layers;
    const n = layers.length;
    const chosen = config.layers === 'all' ? Array.from({ length: n }, (_, i) => i) : config.layers;
    const bad = chosen.filter((i) => i >= n);
    if (bad.length) throw new AdaptorkitError('INVALID_CONFIG', `bottleneck config: layers: ${bad.join(', ')} out of range for a ${n}-layer model (0..${n - 1})`);
    const d = lm.config.hiddenSize;
    manualSeed(config.seed);
    for (const i of chosen) {
      const layer = layers.at(i);
      for (const pos of config.positions) {
        const a = new BottleneckAdapter(d, config.size, config.activation, config.initStd);
        layer.setAdapter(pos === 'attention' ? 'postAttn' : 'postMlp', a); // registered as the layer's child
        this.adapters.push(a);
      }
    }
    if (vision) {
      this.projector = this.child('projector', new MLPProjector(vision.config.hiddenSize, d, config.projectorDepth));
      this.imageTokens = vision.numTokens - (vision.config.kind === 'clip' ? 1 : 0);
    } else {
      this.projector = undefined;
      this.imageTokens = 0;
    }
    // freeze everything, then walk the adapter modules
    this.freeze();
    for (const a of this.adapters) a.unfreeze();
    this.projector?.unfreeze();
  }

  /** Projected image features [B, N, d] from pixels [B, H, W, 3]. */
  imageFeatures(images: tf.Tensor): tf.Tensor {
    if (!this.vision || !this.projector) throw new AdaptorkitError('UNSUPPORTED', 'bottleneck model: attached without a vision encoder, so it takes no images');
    return tf.tidy(() => this.projector!.forward(this.vision!.patchFeatures(images))); // penultimate layer [B, N, dv] -> [B, N, d]
  }

  /** Input embeddings [B, T, d]: token embeddings with image features spliced in at the placeholders. */
  embedInputs(ids: tf.Tensor2D, images?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const embeds = this.lm.embed(ids); // [B, T, d]
      if (!images || this.config.imageTokenId === undefined) return embeds;
      return spliceFeatures(embeds, ids.dataSync() as Int32Array, this.config.imageTokenId, this.imageFeatures(images));
    });
  }

  /** ids [B, T] (+ images) -> logits [B, T, V] */
  forward(ids: tf.Tensor2D, images?: tf.Tensor, ctx?: ForwardContext): tf.Tensor3D {
    return tf.tidy(() => this.lm.forward({ embeds: this.embedInputs(ids, images), ctx }).logits!);
  }

  /** Mean next-token cross entropy on the answer labels (placeholder positions never scored). */
  loss(ids: tf.Tensor2D, labels: tf.Tensor2D, images?: tf.Tensor, ctx?: ForwardContext): tf.Scalar {
    return tf.tidy(() => maskedCrossEntropy(this.forward(ids, images, ctx), ignoreTokens(labels, ids, this.config.imageTokenId)));
  }

  /** Sum-free NLL of right-padded text ids [B, T] (pads skipped). */
  perplexity(ids: tf.Tensor2D, padId: number): { nll: number; perplexity: number; tokens: number } {
    const logits = this.forward(ids);
    try {
      return sequenceNll(logits, ids, padId);
    } finally {
      logits.dispose();
    }
  }

  /** Decoding through core's generate (greedy unless a temperature is given): the adapters sit in the LM's layers, images enter through the prompt embeddings. */
  generate(o: BottleneckGenerateOptions): number[][] {
    const suppress = this.config.imageTokenId !== undefined ? [this.config.imageTokenId] : [];
    const { temperature, topK, topP, seed } = o;
    return generate(this.lm, o.ids, {
      ...(temperature !== undefined ? { temperature } : {}),
      ...(topK !== undefined ? { topK } : {}),
      ...(topP !== undefined ? { topP } : {}),
      ...(seed !== undefined ? { seed } : {}),
      maxNewTokens: o.maxNewTokens,
      padId: o.padId,
      ...(o.eosId !== undefined ? { eosId: o.eosId } : {}),
      suppressTokens: suppress,
      embedPrompt: (ids) => this.embedInputs(ids, o.images),
    }).tokens;
  }

  /** Take the adapters out of the LM's layers (the base is left as it was, frozen). */
  detach(): void {
    for (const l of this.lm.model.layers) {
      l.clearAdapter('postAttn');
      l.clearAdapter('postMlp');
    }
  }
}

/** Freeze `base`, add the adapters (and the projector when there is a vision encoder). */
export function attachBottleneck(base: BottleneckBase, config: BottleneckConfig): BottleneckModel {
  return new BottleneckModel(base.lm, base.vision, config);
}
