/**
 * @adaptorkit/mwa — MultiWay-Adapter (Long, Killick, McCreadie, Aragon Camarasa, ICASSP 2024,
 * arXiv 2309.01516): New Knowledge Extractors and the Alignment Enhancer on a frozen Multiway
 * Transformer (BEiT-3 style), for image-text retrieval.
 */
export {
  multiwayConfigSchema,
  parseMultiwayConfig,
  BEIT3_LARGE_CONFIG,
  BEIT3_BASE_CONFIG,
  mwaConfigSchema,
  extractorConfigSchema,
  enhancerConfigSchema,
  parseMwaConfig,
  enhancerHidden,
  resolveLayers,
  MODALITIES,
} from './config.js';
export type { MultiwayConfig, MultiwayConfigInput, MwaConfig, MwaConfigInput, Modality } from './config.js';
export { MultiwayTransformer, MultiwayLayer, MultiwayAttention, AttentionProjections, ExpertFFN, Experts } from './multiway.js';
export type { Expert, Segment, Branch, EncodeOptions, EncodeOutput } from './multiway.js';
export { NewKnowledgeExtractor, AlignmentEnhancer, dropPath } from './adapters.js';
export type { ExtractorOptions, EnhancerOptions } from './adapters.js';
export { attachMwa, MwaModel } from './attach.js';
export type { MwaParameterCounts } from './attach.js';
export { encodeImages, encodeTexts, retrievalScores, recallAtK, evaluateRetrieval, contrastiveLoss, trainContrastive } from './retrieval.js';
export type { RetrievalBatch, EncodeAllOptions, RecallOptions, TrainOptions, TrainResult } from './retrieval.js';
export { planMwa, mwaParameterFormula, baseParameterFormula } from './plan.js';
export type { MwaFormula } from './plan.js';
export { shapesWorldRetrievalBatch, shapesWorldMultiwayShape, disposeBatch } from './shapesworld.js';
export type { ShapesWorldBatchOptions } from './shapesworld.js';
export { mwaMethod, mwaMethodConfigSchema } from './method.js';
export { SHAPESWORLD_BASE_WORLD, SHAPESWORLD_BASE_MAX_OBJECTS, SHAPESWORLD_BASE_COLOUR_GAINS, shapesWorldBaseConfig, epochSampler, pretrainShapesWorldBase, saveMultiway, loadMultiway } from './base.js';
export type { BasePretrainOptions } from './base.js';
