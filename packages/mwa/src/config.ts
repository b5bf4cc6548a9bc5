/**
 * MWA's config: a zod schema with defaults and help text; the defaults are the paper's setting
 * (spec/mwa.md). The base's config (multiwayConfigSchema) lives with the base in @adaptorkit/shapes-bases.
 */
import { z } from 'zod';
import { AdaptorkitError, parseMethodConfig } from '@adaptorkit/core';
import { MODALITIES, type Modality } from '@adaptorkit/shapes-bases';

// ---------------------------------------------------------------- MWA

export { MODALITIES, type Modality };

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
  return parseMethodConfig(mwaConfigSchema, input, 'mwa config');
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
