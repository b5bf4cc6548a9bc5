/**
 * mergekit-style merge config (YAML), validated by zod. Every parameter may be a scalar or a list
 * interpolated across layer depth (mergekit's "gradient"): for a tensor of layer i of L, the list
 * [v_0 .. v_{K-1}] is read at x = i / (L - 1) by piecewise-linear interpolation between the
 * points j / (K - 1). Tensors outside numbered layers (embeddings, final norm, head) read x = 0
 * when their name contains 'embed' and x = 1 otherwise.
 */
import { parse as parseYamlText } from 'yaml';
import { z } from 'zod';
import { AdaptorkitError } from '@adaptorkit/core';

export const MERGE_METHODS = ['linear', 'task_arithmetic', 'ties', 'dare_linear', 'dare_ties', 'slerp'] as const;
export type MergeMethodName = (typeof MERGE_METHODS)[number];

const paramValue = z
  .union([z.number().finite(), z.array(z.number().finite()).min(1, { message: 'a gradient list needs at least one value' })])
  .describe('A number, or a list of numbers interpolated across layer depth.');
export type ParamValue = z.infer<typeof paramValue>;

const paramsSchema = z
  .object({
    weight: paramValue.optional().describe('Per-model weight w_i (default 1).'),
    density: paramValue.optional().describe('ties / dare: fraction of each delta kept, in (0, 1] (default 1).'),
    lambda: paramValue.optional().describe('task_arithmetic / ties / dare: scale of the merged delta (default 1).'),
    normalize: z.boolean().optional().describe('Divide by the sum of weights (default: true for linear, ties, dare_ties; false otherwise).'),
    t: paramValue.optional().describe('slerp: interpolation factor, 0 = base_model, 1 = the other model.'),
  })
  .strict();
export type MergeParams = z.infer<typeof paramsSchema>;

export const mergeConfigSchema = z
  .object({
    merge_method: z.enum(MERGE_METHODS).describe(`One of ${MERGE_METHODS.join(', ')}.`),
    base_model: z.string().min(1).optional().describe('Checkpoint the task vectors are taken against (required by every method but linear).'),
    models: z
      .array(
        z
          .object({
            model: z.string().min(1).describe('Checkpoint folder or .safetensors file.'),
            parameters: paramsSchema.prefault({}).describe('Per-model parameters; override the global ones.'),
          })
          .strict(),
      )
      .min(1, { message: 'list at least one model' })
      .describe('Models to merge, each with its own parameters.'),
    parameters: paramsSchema.prefault({}).describe('Global parameters (defaults for every model).'),
    dtype: z.enum(['float32', 'float16', 'bfloat16']).default('float32').describe('Stored dtype of the merged float tensors.'),
    seed: z.number().int().min(0).default(0).describe('Seed of the DARE masks (each tensor and model derives its own stream from it).'),
    passthrough_unique: z
      .boolean()
      .default(false)
      .describe('Copy tensors present in exactly one model (an encoder, a projector) instead of failing on them.'),
  })
  .strict()
  .superRefine((c, ctx) => {
    const m = c.merge_method;
    if (m !== 'linear' && m !== 'slerp' && c.base_model === undefined) {
      ctx.addIssue({ code: 'custom', path: ['base_model'], message: `${m} needs a base_model (task vectors are taken against it)` });
    }
    if (m === 'slerp') {
      const all = new Set([...(c.base_model ? [c.base_model] : []), ...c.models.map((x) => x.model)]);
      if (all.size !== 2) ctx.addIssue({ code: 'custom', path: ['models'], message: `slerp merges exactly two models (base_model + one other), got ${all.size}` });
      if (c.base_model === undefined) ctx.addIssue({ code: 'custom', path: ['base_model'], message: 'slerp needs base_model (the t = 0 end)' });
    }
    if (m === 'linear' && c.models.length < 1) ctx.addIssue({ code: 'custom', path: ['models'], message: 'linear needs at least one model' });
    const checkDensity = (v: ParamValue | undefined, path: (string | number)[]): void => {
      if (v === undefined) return;
      for (const x of Array.isArray(v) ? v : [v]) {
        if (!(x > 0 && x <= 1)) ctx.addIssue({ code: 'custom', path, message: `density must be in (0, 1], got ${x}` });
      }
    };
    checkDensity(c.parameters.density, ['parameters', 'density']);
    c.models.forEach((mm, i) => checkDensity(mm.parameters.density, ['models', i, 'parameters', 'density']));
  });

export type MergeConfig = z.infer<typeof mergeConfigSchema>;
export type MergeConfigInput = z.input<typeof mergeConfigSchema>;

function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

/** Validate a config object; an invalid one is an AdaptorkitError naming the path of each bad field. */
export function parseMergeConfig(input: unknown): MergeConfig {
  const r = mergeConfigSchema.safeParse(input);
  if (!r.success) throw new AdaptorkitError('INVALID_CONFIG', `merge config: ${formatIssues(r.error.issues)}`);
  return r.data;
}

/** Parse mergekit-style YAML text. */
export function parseMergeYaml(text: string): MergeConfig {
  let obj: unknown;
  try {
    obj = parseYamlText(text);
  } catch (e) {
    throw new AdaptorkitError('INVALID_CONFIG', `merge config: not valid YAML (${(e as Error).message})`);
  }
  return parseMergeConfig(obj);
}

/** Where a tensor sits in depth, x in [0, 1], given the number of layers. */
export function depthFraction(name: string, numLayers: number): number {
  const m = /(?:^|\.)layers\.(\d+)\./.exec(name);
  if (m) {
    const i = Number(m[1]);
    return numLayers <= 1 ? 0 : Math.min(1, i / (numLayers - 1));
  }
  return /embed/.test(name) ? 0 : 1;
}

/** Number of numbered layers among tensor names (max index + 1; 0 when none). */
export function countLayers(names: Iterable<string>): number {
  let n = 0;
  for (const name of names) {
    const m = /(?:^|\.)layers\.(\d+)\./.exec(name);
    if (m) n = Math.max(n, Number(m[1]) + 1);
  }
  return n;
}

/** A scalar, or a list read at depth x by piecewise-linear interpolation. */
export function interpolate(v: ParamValue, x: number): number {
  if (!Array.isArray(v)) return v;
  if (v.length === 1) return v[0]!;
  const pos = Math.min(1, Math.max(0, x)) * (v.length - 1);
  const j = Math.min(v.length - 2, Math.floor(pos));
  const f = pos - j;
  return v[j]! * (1 - f) + v[j + 1]! * f;
}

/** Resolve one parameter for one model and tensor: model value, else global, else `fallback`. */
export function resolveParam(
  cfg: MergeConfig,
  modelIndex: number | undefined,
  key: 'weight' | 'density' | 'lambda' | 't',
  x: number,
  fallback: number,
): number {
  const own = modelIndex === undefined ? undefined : cfg.models[modelIndex]?.parameters[key];
  const v = own ?? cfg.parameters[key];
  return v === undefined ? fallback : interpolate(v, x);
}
