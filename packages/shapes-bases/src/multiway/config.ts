/**
 * The Multiway Transformer's config (the BEiT-3-style base MWA adapts): a zod schema with defaults
 * and help text, and the BEiT-3 shapes.
 */
import { z } from 'zod';
import { AdaptorkitError, parseMethodConfig } from '@adaptorkit/core';

/** The two modalities of a Multiway Transformer. */
export const MODALITIES = ['vision', 'language'] as const;
export type Modality = (typeof MODALITIES)[number];

export const multiwayConfigSchema = z
  .object({
    dim: z.number().int().positive().default(64).describe('Hidden width d.'),
    numLayers: z.number().int().positive().default(2).describe('Number of Multiway layers.'),
    numHeads: z.number().int().positive().default(4).describe('Attention heads (d must be divisible by it).'),
    ffnDim: z.number().int().positive().optional().describe('FFN expert hidden width; default 4d.'),
    vocabSize: z.number().int().positive().default(128).describe('Text vocabulary size.'),
    maxTextLen: z.number().int().positive().default(32).describe('Rows of the text position table (longest text, first token included).'),
    padId: z.number().int().min(0).default(0).describe('Text padding id: padded keys are masked out of attention.'),
    imageSize: z.number().int().positive().default(32).describe('Square image side in pixels (NHWC input, 3 channels).'),
    patchSize: z.number().int().positive().default(8).describe('Patch side; the image gives (imageSize/patchSize)^2 patches plus a class token.'),
    embedDim: z.number().int().positive().optional().describe('Retrieval embedding width (the vision/language heads d -> embedDim, no bias); default d.'),
    sharedAttention: z
      .boolean()
      .default(false)
      .describe('true: one attention for both modalities (the BEiT-3 paper); false: per-modality attention projections (the released torchscale checkpoints).'),
    attentionSubLN: z
      .boolean()
      .default(true)
      .describe("Sub-LN: a LayerNorm on the attention output before its out projection (torchscale's inner_attn_ln, part of BEiT-3)."),
    vlExpertLayers: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('The top N layers also get a vision-language FFN expert (and LayerNorms) used for fused image+text inputs (BEiT-3 pretraining). 0 = none.'),
    layerNormEps: z.number().positive().default(1e-5).describe('LayerNorm epsilon.'),
    logitScaleInit: z.number().positive().default(1 / 0.07).describe('Initial contrastive logit scale (stored as its log, learnable): 1/0.07 as in CLIP/BEiT-3.'),
  })
  .describe('A Multiway Transformer (BEiT-3 style): one encoder, per-modality LayerNorms and FFN experts, image and text embeddings, retrieval heads.');

export type MultiwayConfigInput = z.input<typeof multiwayConfigSchema>;
export type MultiwayConfig = Required<z.infer<typeof multiwayConfigSchema>>;

/** Parse a Multiway config (fills defaults, checks divisibility); INVALID_CONFIG names the bad field. */
export function parseMultiwayConfig(input: unknown = {}): MultiwayConfig {
  const c = parseMethodConfig(multiwayConfigSchema, input, 'multiway config');
  const out: MultiwayConfig = { ...c, ffnDim: c.ffnDim ?? 4 * c.dim, embedDim: c.embedDim ?? c.dim };
  if (out.dim % out.numHeads !== 0) throw new AdaptorkitError('INVALID_CONFIG', `multiway config: dim: ${out.dim} is not divisible by numHeads ${out.numHeads}`);
  if (out.imageSize % out.patchSize !== 0) {
    throw new AdaptorkitError('INVALID_CONFIG', `multiway config: imageSize: ${out.imageSize} is not a multiple of patchSize ${out.patchSize}`);
  }
  if (out.vlExpertLayers > out.numLayers) {
    throw new AdaptorkitError('INVALID_CONFIG', `multiway config: vlExpertLayers: ${out.vlExpertLayers} exceeds numLayers ${out.numLayers}`);
  }
  if (out.padId >= out.vocabSize) throw new AdaptorkitError('INVALID_CONFIG', `multiway config: padId: ${out.padId} is outside the vocabulary of ${out.vocabSize}`);
  return out;
}

/**
 * BEiT-3 Large retrieval shapes (beit3_large_patch16_384: 24 layers, d 1024, 16 heads, FFN 4096,
 * vocab 64010, 1024 text positions, 384px images in 16px patches, per-modality attention, sub-LN).
 * The released checkpoint's vision position table has 2 extra rows (fairseq's padding offset) that
 * this model does not have: 2 x 1024 = 2048 parameters fewer.
 */
export const BEIT3_LARGE_CONFIG: MultiwayConfigInput = {
  dim: 1024,
  numLayers: 24,
  numHeads: 16,
  ffnDim: 4096,
  vocabSize: 64010,
  maxTextLen: 1024,
  imageSize: 384,
  patchSize: 16,
  sharedAttention: false,
  attentionSubLN: true,
};

/** BEiT-3 Base retrieval shapes (beit3_base_patch16_384: 12 layers, d 768, 12 heads, FFN 3072). */
export const BEIT3_BASE_CONFIG: MultiwayConfigInput = { ...BEIT3_LARGE_CONFIG, dim: 768, numLayers: 12, numHeads: 12, ffnDim: 3072 };
