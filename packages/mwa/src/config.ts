/**
 * Configs: the Multiway Transformer (the BEiT-3-style base MWA adapts) and MWA itself. Both are zod
 * schemas with defaults and help text; MWA's defaults are the paper's setting (spec/mwa.md).
 */
import { z } from 'zod';
import { AdaptorkitError } from '@adaptorkit/core';

// ---------------------------------------------------------------- the base

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
  const c = parseWith(multiwayConfigSchema, input, 'multiway config');
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

// ---------------------------------------------------------------- MWA

export const MODALITIES = ['vision', 'language'] as const;
export type Modality = (typeof MODALITIES)[number];

const HIDDEN = /^d\/([1-9]\d*)$/;

export const extractorConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Add New Knowledge Extractors (parallel bottleneck adapters beside the frozen FFN experts).'),
    modalities: z
      .array(z.enum(MODALITIES))
      .min(1)
      .refine((a) => new Set(a).size === a.length, { message: 'modalities must not repeat' })
      .default(['vision', 'language'])
      .describe("Which modality paths get an extractor: ['vision', 'language'] is the released 'both' mode."),
    bottleneck: z.number().int().positive().default(64).describe('Bottleneck width b (Down d -> b, Up b -> d); 64 in the released script.'),
    scale: z
      .union([z.number(), z.literal('learnable')])
      .default(0.6)
      .describe("Output scale s: a fixed number (README recipe 0.6; argparse default 0.1; v1 script 1.0) or 'learnable' (a trained scalar starting at 1)."),
    dropout: z.number().min(0).max(0.99).default(0.1).describe('Dropout on the bottleneck activation (training only).'),
    layerNorm: z
      .enum(['none', 'in', 'out'])
      .default('none')
      .describe("Adapter LayerNorm: 'none' (released script), 'in' = on the adapter input, 'out' = on the scaled output."),
    layers: z
      .union([z.literal('all'), z.array(z.number().int().min(0))])
      .default('all')
      .describe("Layers (0-based) that get extractors: 'all' or a list."),
  })
  .prefault({})
  .describe('New Knowledge Extractors: a = s * Up(Dropout(ReLU(Down(h)))), added beside FFN_m(LN_m(h)); Down Kaiming-uniform, Up and biases zero.');

export const enhancerConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Add the Alignment Enhancer (one FFN shared by both modalities, after the FFN block, own residual).'),
    hidden: z
      .union([z.literal('full'), z.number().int().positive(), z.string().regex(HIDDEN, { message: "expected 'full', a width, or 'd/N'" })])
      .default('d/4')
      .describe(
        "Enhancer hidden width: 'd/N' = d divided by N ('d/4' = 256 at d 1024, which keeps extractors + enhancers at 2-3% of BEiT-3 Large), " +
          "a number, or 'full' = the base FFN width (4d), the released code's full FFN.",
      ),
    init: z
      .enum(['zero', 'truncnormal'])
      .default('zero')
      .describe("'zero': output projection zeroed (exact start from the frozen model; fc1 Kaiming-uniform); 'truncnormal': both projections N(0, 0.02), as the reference's trunc_normal_(std=0.02) (whose +-2 cut-off is absolute, so never reached); perturbs step 0."),
    layers: z
      .union([z.literal('all'), z.array(z.number().int().min(0))])
      .default('all')
      .describe("Layers (0-based) that get an enhancer after their FFN block: 'all' (the released code) or a list."),
    dropPath: z
      .number()
      .min(0)
      .max(0.99)
      .default(0.2)
      .describe('Stochastic depth on the enhancer branch (training only), rising linearly from 0 at layer 0 to this at the last layer (README recipe 0.2).'),
  })
  .prefault({})
  .describe('Alignment Enhancer: x = x + DropPath(fc2(LN(GELU(fc1(x))))), shared by both modalities.');

export const mwaConfigSchema = z
  .strictObject({
    extractor: extractorConfigSchema,
    enhancer: enhancerConfigSchema,
    seed: z.number().int().min(0).default(0).describe('Seed for the new modules\' initial weights and for dropout / drop-path masks.'),
  })
  .describe('MWA: MultiWay-Adapter (Long et al., ICASSP 2024): per-modality New Knowledge Extractors + a shared Alignment Enhancer on a frozen Multiway Transformer.');

export type MwaConfigInput = z.input<typeof mwaConfigSchema>;
export type MwaConfig = z.infer<typeof mwaConfigSchema>;

/** Parse an MWA config; an invalid one throws INVALID_CONFIG naming the path of the bad field. */
export function parseMwaConfig(input: unknown = {}): MwaConfig {
  return parseWith(mwaConfigSchema, input, 'mwa config');
}

/** Resolve the enhancer's hidden width against the base's d and FFN width. */
export function enhancerHidden(hidden: MwaConfig['enhancer']['hidden'], dim: number, ffnDim: number): number {
  if (hidden === 'full') return ffnDim;
  if (typeof hidden === 'number') return hidden;
  const m = HIDDEN.exec(hidden);
  if (!m) throw new AdaptorkitError('INVALID_CONFIG', `mwa config: enhancer.hidden: expected 'full', a width, or 'd/N', got '${hidden}'`);
  const h = Math.floor(dim / Number(m[1]));
  if (h < 1) throw new AdaptorkitError('INVALID_CONFIG', `mwa config: enhancer.hidden: '${hidden}' gives width 0 at d ${dim}`);
  return h;
}

/** Resolve a layer selection against the depth; out-of-range indices are an error naming the field. */
export function resolveLayers(sel: 'all' | number[], numLayers: number, field: string): number[] {
  if (sel === 'all') return Array.from({ length: numLayers }, (_, i) => i);
  const bad = sel.filter((i) => i >= numLayers);
  if (bad.length) throw new AdaptorkitError('INVALID_CONFIG', `mwa config: ${field}: layer(s) ${bad.join(', ')} out of range for a ${numLayers}-layer model (0..${numLayers - 1})`);
  if (new Set(sel).size !== sel.length) throw new AdaptorkitError('INVALID_CONFIG', `mwa config: ${field}: layers must not repeat`);
  return [...sel].sort((a, b) => a - b);
}

function parseWith<S extends z.ZodType>(schema: S, input: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(input ?? {});
  if (!r.success) {
    const msgs = r.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
    throw new AdaptorkitError('INVALID_CONFIG', `${what}: ${msgs.join('; ')}`);
  }
  return r.data;
}
