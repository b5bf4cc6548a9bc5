/**
 * Parameter accounting for MWA: build the base and attach MWA in shape-only mode (no weights
 * allocated, so BEiT-3 Large counts in milliseconds), and the closed-form formula it must match.
 */
import { shapeOnly } from '@adaptorkit/core';
import { MultiwayTransformer, parseMultiwayConfig, type MultiwayConfig, type MultiwayConfigInput } from '@adaptorkit/shapes-bases';
import { enhancerHidden, parseMwaConfig, resolveLayers, type MwaConfig, type MwaConfigInput } from './config.js';
import { attachMwa, type MwaParameterCounts } from './attach.js';

/** Count a base + MWA by building both in shape-only mode. */
export function planMwa(base: MultiwayConfigInput | MultiwayConfig, config: MwaConfigInput | MwaConfig = {}): MwaParameterCounts {
  return shapeOnly(() => attachMwa(new MultiwayTransformer(base), config).counts());
}

export interface MwaFormula extends MwaParameterCounts {
  /** Per (layer, modality) extractor and per-layer enhancer sizes. */
  perExtractor: number;
  perEnhancer: number;
  enhancerHidden: number;
}

/**
 * Closed form (d = dim, f = FFN width, b = bottleneck, h = enhancer hidden):
 *   extractor (per layer and modality) = 2db + b + d  [+ 2d with an adapter LayerNorm] [+ 1 learnable scale]
 *   enhancer  (per layer)              = 2dh + h + d + 2h   (fc1, fc2 with biases, LayerNorm on h)
 *   base per layer = A (4(d^2 + d) [+ 2d sub-LN]; x1 shared, x2 per modality)
 *                  + E (4d LayerNorms + 2df + f + d + 2f FFN), E = 2 experts (3 in VL layers)
 *   base embeddings = V d + L_text d + (3p^2 d + d) + d + (N + 1) d; final norms 4d; heads 2de; logit scale 1
 */
export function mwaParameterFormula(base: MultiwayConfigInput | MultiwayConfig, config: MwaConfigInput | MwaConfig = {}): MwaFormula {
  const m = parseMultiwayConfig(base);
  const c = parseMwaConfig(config);
  const { dim: d, ffnDim: f } = m;
  const b = c.extractor.bottleneck;
  const h = enhancerHidden(c.enhancer.hidden, d, f);
  const perExtractor = 2 * d * b + b + d + (c.extractor.layerNorm === 'none' ? 0 : 2 * d) + (c.extractor.scale === 'learnable' ? 1 : 0);
  const perEnhancer = 2 * d * h + h + d + 2 * h;
  const extractors = c.extractor.enabled ? resolveLayers(c.extractor.layers, m.numLayers, 'extractor.layers').length * c.extractor.modalities.length * perExtractor : 0;
  const enhancers = c.enhancer.enabled ? resolveLayers(c.enhancer.layers, m.numLayers, 'enhancer.layers').length * perEnhancer : 0;
  const trainable = extractors + enhancers;
  const baseCount = baseParameterFormula(m);
  return {
    base: baseCount,
    extractors,
    enhancers,
    trainable,
    percentOfBase: (100 * trainable) / baseCount,
    percentOfTotal: (100 * trainable) / (baseCount + trainable),
    perExtractor,
    perEnhancer,
    enhancerHidden: h,
  };
}

/** The Multiway Transformer's parameter count in closed form. */
export function baseParameterFormula(config: MultiwayConfigInput | MultiwayConfig): number {
  const m = parseMultiwayConfig(config);
  const { dim: d, ffnDim: f } = m;
  const attnSet = 4 * (d * d + d) + (m.attentionSubLN ? 2 * d : 0);
  const expert = 4 * d + 2 * d * f + f + d + 2 * f; // two LayerNorms + FFN
  let layers = 0;
  for (let i = 0; i < m.numLayers; i++) {
    const E = i >= m.numLayers - m.vlExpertLayers ? 3 : 2;
    layers += (m.sharedAttention ? 1 : 2) * attnSet + E * expert;
  }
  const N = (m.imageSize / m.patchSize) ** 2;
  const embeddings = m.vocabSize * d + m.maxTextLen * d + (3 * m.patchSize * m.patchSize * d + d) + d + (N + 1) * d;
  return layers + embeddings + 4 * d + 2 * d * m.embedDim + 1;
}
