/**
 * @adaptorkit/shapes-bases — the small ShapesWorld bases adaptorkit ships and their recipes, below
 * the method packages: a LLaMA-style causal LM and a ViT (pretrained on ShapesWorld text and
 * image-caption pairs), and a Multiway Transformer (BEiT-3 style, contrastively pretrained) that MWA
 * adapts. The weights live in models/ (HF layout: config.json + model.safetensors).
 */
// the LM + ViT bases: shapes, pretraining, where they are
export { shapesLMConfig, shapesVisionConfig, TextTower, VisionProjection, CellHeads } from './bases.js';
export type { ShapesBases } from './bases.js';
export {
  padRight, SHAPES_PIXEL_MEAN, SHAPES_PIXEL_STD, pixelsTensor, sceneQALoss, lmPretrainStream, pretrainLM, cellLabels, pretrainVision,
} from './pretrain.js';
export type { PretrainLog, LMPretrainOptions, VisionPretrainOptions } from './pretrain.js';
export { SHIPPED_BASES, isShippedBase, shippedBasesDir, saveLM, saveVision, basePath, baseFolder, loadBases } from './store.js';
export type { ShippedBase } from './store.js';

// the Multiway base: model, config, retrieval, the ShapesWorld recipe, where it is
export { MODALITIES, multiwayConfigSchema, parseMultiwayConfig, BEIT3_LARGE_CONFIG, BEIT3_BASE_CONFIG } from './multiway/config.js';
export type { Modality, MultiwayConfig, MultiwayConfigInput } from './multiway/config.js';
export { MultiwayTransformer, MultiwayLayer, MultiwayAttention, AttentionProjections, ExpertFFN, Experts } from './multiway/multiway.js';
export type { Expert, Segment, Branch, EncodeOptions, EncodeOutput } from './multiway/multiway.js';
export { encodeImages, encodeTexts, retrievalScores, recallAtK, evaluateRetrieval, contrastiveLoss, trainContrastive } from './multiway/retrieval.js';
export type { RetrievalBatch, EncodeAllOptions, RecallOptions, TrainOptions, TrainResult } from './multiway/retrieval.js';
export { shapesWorldRetrievalBatch, shapesWorldMultiwayShape, disposeBatch } from './multiway/shapesworld.js';
export type { ShapesWorldBatchOptions } from './multiway/shapesworld.js';
export {
  SHAPESWORLD_BASE_WORLD, SHAPESWORLD_BASE_MAX_OBJECTS, SHAPESWORLD_BASE_COLOUR_GAINS, shapesWorldBaseConfig, epochSampler, pretrainShapesWorldBase, saveMultiway, loadMultiway,
} from './multiway/recipe.js';
export type { BasePretrainOptions } from './multiway/recipe.js';
export { multiwayBasePath, retrievalMetrics } from './multiway/paths.js';
