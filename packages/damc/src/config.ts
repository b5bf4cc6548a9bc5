/**
 * DAMC config: which linear maps get LoRA (rank, alpha, dropout, targets, layers), the training
 * mode, the modality this model is trained for, and the boundary embeddings. Defaults are the
 * paper's (spec/damc.md): LoRA on all seven maps of every layer, r = 128, alpha = 256, dropout 0.05.
 */
import { z } from 'zod';
import { parseMethodConfig } from '@adaptorkit/core';

export const LINEAR_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LinearTarget = (typeof LINEAR_TARGETS)[number];

/** Delta names: the text delta (decoupled), the single delta (naive); modality deltas are named after their modality. */
export const TEXT_DELTA = 'text';
export const SHARED_DELTA = 'shared';

const NAME = /^[a-z][a-z0-9_]*$/;

export const loraSchema = z
  .object({
    rank: z.number().int().min(1).default(128).describe('LoRA rank r.'),
    alpha: z.number().positive().default(256).describe('LoRA alpha; the delta is scaled by alpha / r.'),
    dropout: z.number().min(0).max(0.99).default(0.05).describe('Dropout on the LoRA input (training only).'),
    targets: z
      .union([
        z.array(z.enum(LINEAR_TARGETS)).min(1).refine((a) => new Set(a).size === a.length, { message: 'targets must not repeat' }),
        z.object({ pattern: z.string().min(1).describe('Regular expression matched against the full module path, e.g. "self_attn\\\\.(q|v)_proj$".') }).strict(),
      ])
      .default([...LINEAR_TARGETS])
      .describe('Which linear maps get LoRA: a list of names (q_proj ... down_proj) or {pattern: regex over module paths like model.layers.3.self_attn.q_proj}.'),
    layers: z
      .union([z.literal('all'), z.array(z.number().int().min(0)).min(1)])
      .default('all')
      .describe("Decoder layers that get LoRA: 'all' or a list of 0-based indices."),
  })
  .strict()
  .prefault({});

export const damcConfigSchema = z
  .object({
    mode: z
      .enum(['naive', 'decoupled'])
      .default('decoupled')
      .describe("'naive': one delta for every token (NaiveMC); 'decoupled': a text delta plus a modality delta routed per position (DAMC)."),
    modality: z.string().regex(NAME, { message: 'modality names are lower-case letters, digits and _' }).default('image').describe('The modality this model is trained for (its delta and branch are named after it).'),
    lora: loraSchema,
    boundaryTokens: z.number().int().min(0).default(5).describe('Learnable zero-initialised boundary embeddings before and after each modality span (5 + 5 in the paper).'),
    trainEncoder: z.boolean().default(false).describe('Train the modality encoder too (default: frozen; the projector and boundary embeddings train).'),
    seed: z.number().int().min(0).default(0).describe('Seed for LoRA init and dropout masks.'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.modality === TEXT_DELTA || c.modality === SHARED_DELTA) ctx.addIssue({ code: 'custom', path: ['modality'], message: `'${c.modality}' is reserved for a delta name` });
    if (!Array.isArray(c.lora.targets)) {
      try {
        new RegExp(c.lora.targets.pattern);
      } catch (e) {
        ctx.addIssue({ code: 'custom', path: ['lora', 'targets', 'pattern'], message: `not a valid regular expression (${(e as Error).message})` });
      }
    }
  });

export type DamcConfig = z.infer<typeof damcConfigSchema>;
export type DamcConfigInput = z.input<typeof damcConfigSchema>;

/** Validate; an invalid config is an AdaptorkitError naming the path of each bad field. */
export function parseDamcConfig(input: unknown = {}): DamcConfig {
  return parseMethodConfig(damcConfigSchema, input, 'damc config');
}
