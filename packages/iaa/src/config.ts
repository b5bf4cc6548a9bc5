/**
 * IAA config: where the insertion layers go, how they start, what trains, the projector, the
 * vision feature layer and the task sets. Defaults are the released IAA-14 model (spec/iaa.md).
 */
import { z } from 'zod';
import { AdaptorkitError, parseMethodConfig } from '@adaptorkit/core';

/** Task name of the text-only workflow (the untouched base LLM); not a task set. */
export const TEXT_TASK = 'text';

const DEPTH_PRESET = /^(iaa14|iaa8|none|every:[1-9]\d*|pairs:[1-9]\d*|spread:[1-9]\d*|first:[1-9]\d*|last:[1-9]\d*)$/;

export const depthsSchema = z
  .union([
    z
      .array(z.number().int().min(0))
      .refine((a) => new Set(a).size === a.length, { message: 'insertion depths must not repeat' }),
    z.string().regex(DEPTH_PRESET, {
      message: "expected a list of layer indices or a preset: 'iaa14', 'iaa8', 'none', 'every:k', 'pairs:n', 'spread:n', 'first:n', 'last:n'",
    }),
  ])
  .default('iaa14')
  .describe(
    "Frozen layers after which an insertion layer runs: a list of 0-based indices, or a preset resolved against the LLM's depth M: " +
      "'iaa14' = 'pairs:7' (the released model: after 0,1,5,6,...,30,31 of 32), 'iaa8' = the first layer of each IAA-14 pair plus the last layer " +
      "(0,5,10,15,20,25,30,31 of 32), 'pairs:n' = n adjacent pairs spread evenly, 'spread:n' = n layers spread evenly from first to last, " +
      "'every:k' = 0,k,2k,..., 'first:n' / 'last:n' = a contiguous block, 'none' = no insertion layers (the projector-only frozen baseline).",
  );

export const trainPartsSchema = z
  .strictObject({
    insertionLayers: z.boolean().default(true).describe('Train the insertion layers.'),
    embedding: z.boolean().default(true).describe("Train the multimodal workflow's copy of the token embedding."),
    norm: z.boolean().default(true).describe("Train the multimodal workflow's final RMSNorm."),
    head: z.boolean().default(true).describe("Train the multimodal workflow's LM head."),
    projector: z.boolean().default(true).describe('Train the vision projector.'),
  })
  .prefault({})
  .describe('Which multimodal parts train (each task set has its own copy of every part). Untrained parts stay frozen.');

const TASK_NAME = /^[a-z][a-z0-9_]*$/;

export const iaaConfigSchema = z
  .strictObject({
    depths: depthsSchema,
    init: z
      .enum(['copy', 'identity', 'random'])
      .default('copy')
      .describe(
        "Insertion-layer init: 'copy' = a copy of the frozen layer it follows; 'identity' = copy with o_proj and down_proj zeroed " +
          "(each starts as the identity, so the multimodal workflow on text equals the base at step 0); 'random' = fresh seeded init. " +
          'The multimodal embedding, norm and head are always copies of the base.',
      ),
    train: trainPartsSchema,
    projector: z
      .string()
      .regex(/^mlp[1-9]\d*x_gelu$/, { message: "expected LLaVA's 'mlpNx_gelu', e.g. 'mlp2x_gelu'" })
      .default('mlp2x_gelu')
      .describe("Vision projector: 'mlpNx_gelu' = N Linear layers with GELU between (the paper: mlp2x_gelu)."),
    visionFeatureLayer: z
      .number()
      .int()
      .default(-2)
      .describe('Which vision hidden state feeds the projector, HF indexing: 0 = embeddings, i = output of layer i-1, negative counts from the end (-2 = penultimate, the paper).'),
    visionFeatureSelect: z
      .enum(['patch', 'cls_patch'])
      .default('patch')
      .describe("'patch' drops the class token (the paper); 'cls_patch' keeps every token."),
    tasks: z
      .array(
        z
          .string()
          .regex(TASK_NAME, { message: 'task set names are lower-case letters, digits and _ (start with a letter)' })
          .refine((t) => t !== TEXT_TASK, { message: `'${TEXT_TASK}' is the text-only workflow, not a task set` }),
      )
      .min(1)
      .refine((a) => new Set(a).size === a.length, { message: 'task set names must not repeat' })
      .default(['mm'])
      .describe("Independent multimodal parameter sets, chosen per forward by `task` (the reference model: 'mm' general, 'grounding'). 'text' always selects the base LLM."),
    imageTokenId: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Token id of the image placeholder (each image is expanded to N placeholders by the data pipeline); can also be given to attachIaa.'),
    seed: z.number().int().min(0).default(0).describe("Seed for the projector's (and 'random' insertion layers') initial weights."),
  })
  .describe('IAA: inner adaptor layers at chosen depths of a frozen LLM (Wang et al., AAAI 2025).');

export type IaaConfig = z.infer<typeof iaaConfigSchema>;
export type IaaConfigInput = z.input<typeof iaaConfigSchema>;
export type DepthSpec = IaaConfig['depths'];

/** Parse a config; an invalid one throws INVALID_CONFIG naming the path of the bad field. */
export function parseIaaConfig(input: unknown = {}): IaaConfig {
  return parseMethodConfig(iaaConfigSchema, input, 'iaa config');
}

/** Projector depth N of 'mlpNx_gelu'. */
export function projectorDepth(name: string): number {
  const m = /^mlp([1-9]\d*)x_gelu$/.exec(name);
  if (!m) throw new AdaptorkitError('INVALID_CONFIG', `iaa config: projector: expected 'mlpNx_gelu', got '${name}'`);
  return Number(m[1]);
}

function need(ok: boolean, spec: string, numLayers: number, what: string): void {
  if (!ok) {
    throw new AdaptorkitError(
      'INVALID_CONFIG',
      `iaa config: depths: preset '${spec}' needs ${what}, but the LLM has ${numLayers} layers; give an explicit list of layer indices instead`,
    );
  }
}

/** n starts spread evenly over [0, last]: round(i * last / (n - 1)). */
function spreadIndices(n: number, last: number): number[] {
  if (n === 1) return [0];
  return Array.from({ length: n }, (_, i) => Math.round((i * last) / (n - 1)));
}

/**
 * Resolve a depth spec against an LLM with `numLayers` layers: sorted, unique, each in
 * [0, numLayers). Presets reproduce the spec's layouts on 32 layers (iaa14: 0,1,5,6,...,30,31;
 * iaa8: 0,5,10,15,20,25,30,31).
 */
export function resolveDepths(spec: DepthSpec, numLayers: number): number[] {
  const M = numLayers;
  let out: number[];
  if (Array.isArray(spec)) {
    for (const [k, i] of spec.entries()) {
      if (!Number.isInteger(i) || i < 0 || i >= M) {
        throw new AdaptorkitError('INVALID_CONFIG', `iaa config: depths.${k}: layer index ${i} is outside 0..${M - 1} (the LLM has ${M} layers)`);
      }
    }
    out = [...spec];
  } else {
    const [kind, arg] = spec.split(':') as [string, string | undefined];
    const n = arg === undefined ? 0 : Number(arg);
    switch (kind) {
      case 'none':
        out = [];
        break;
      case 'iaa14':
        return resolveDepths('pairs:7', M);
      case 'iaa8': {
        need(M >= 14, spec, M, 'at least 14 layers (the first of each of 7 spread pairs, plus the last layer)');
        const starts = spreadIndices(7, M - 2);
        out = [...starts, M - 1];
        break;
      }
      case 'pairs': {
        need(2 * n <= M, spec, M, `at least ${2 * n} layers`);
        out = spreadIndices(n, M - 2).flatMap((s) => [s, s + 1]);
        break;
      }
      case 'spread':
        need(n <= M, spec, M, `at least ${n} layers`);
        out = spreadIndices(n, M - 1);
        break;
      case 'every':
        out = [];
        for (let i = 0; i < M; i += n) out.push(i);
        break;
      case 'first':
        need(n <= M, spec, M, `at least ${n} layers`);
        out = Array.from({ length: n }, (_, i) => i);
        break;
      case 'last':
        need(n <= M, spec, M, `at least ${n} layers`);
        out = Array.from({ length: n }, (_, i) => M - n + i);
        break;
      default:
        throw new AdaptorkitError('INVALID_CONFIG', `iaa config: depths: unknown preset '${spec}'`);
    }
  }
  out.sort((a, b) => a - b);
  if (new Set(out).size !== out.length) {
    throw new AdaptorkitError('INVALID_CONFIG', `iaa config: depths: preset '${String(spec)}' gives repeated layers on ${M} layers (${out.join(', ')}); use fewer insertion layers or a list`);
  }
  return out;
}
