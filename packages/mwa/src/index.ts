/**
 * @adaptorkit/mwa — MultiWay-Adapter (Long, Killick, McCreadie, Aragon Camarasa, ICASSP 2024,
 * arXiv 2309.01516): New Knowledge Extractors and the Alignment Enhancer on a frozen Multiway
 * Transformer (BEiT-3 style), for image-text retrieval. The base model itself (MultiwayTransformer,
 * its config, retrieval scoring, contrastive training and the shipped ShapesWorld base) lives in
 * @adaptorkit/shapes-bases.
 */
export {
  mwaConfigSchema,
  extractorConfigSchema,
  enhancerConfigSchema,
  parseMwaConfig,
  enhancerHidden,
  resolveLayers,
  MODALITIES,
} from './config.js';
export type { MwaConfig, MwaConfigInput, Modality } from './config.js';
export { NewKnowledgeExtractor, AlignmentEnhancer, dropPath } from './adapters.js';
export type { ExtractorOptions, EnhancerOptions } from './adapters.js';
export { attachMwa, MwaModel } from './attach.js';
export type { MwaParameterCounts } from './attach.js';
export { planMwa, mwaParameterFormula, baseParameterFormula } from './plan.js';
export type { MwaFormula } from './plan.js';
export { mwaMethod } from './method.js';
export type { MwaMethod } from './method.js';
