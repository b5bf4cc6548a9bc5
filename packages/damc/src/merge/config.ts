/**
 * mergekit's merge config (YAML), validated by zod, and how a parameter is read for one tensor.
 *
 * A config lists either `models` (every layer of each model) or `slices` (output layers built
 * from `layer_range`s of sources, concatenated: frankenmerges). A parameter value is a number (or
 * boolean), a list of numbers interpolated across depth (mergekit's "gradient"), or a list of
 * `{ filter, value }` conditions whose first match by substring of the tensor name wins.
 * Resolution order for one tensor, as mergekit's: the source's own parameters, the slice's, the
 * global ones, then the method's default.
 */
import { parse as parseYamlText } from 'yaml';
import { z } from 'zod';
import { AdaptorkitError } from '@adaptorkit/core';

/** Merge methods implemented here, by mergekit's names. */
export const MERGE_METHODS = [
  'linear', 'task_arithmetic', 'ties', 'dare_linear', 'dare_ties', 'breadcrumbs', 'breadcrumbs_ties', 'della', 'della_linear',
  'slerp', 'model_stock', 'passthrough',
] as const;
export type MergeMethodName = (typeof MERGE_METHODS)[number];

/** mergekit methods that are refused by name (not implemented here). */
export const REFUSED_METHODS: Readonly<Record<string, string>> = {
  nuslerp: 'not implemented (use slerp)',
  multislerp: 'not implemented (use slerp for two models)',
  karcher: 'not implemented',
  arcee_fusion: 'not implemented',
  sce: 'not implemented',
  nearswap: 'not implemented',
  ram: 'not implemented',
  lrp: 'not implemented',
  core_space: 'not implemented',
};

const gradient = z.array(z.number().finite()).min(1, { message: 'a gradient list needs at least one value' });
const scalar = z.union([z.number().finite(), z.boolean()]);
const condition = z.strictObject({
  filter: z.string().min(1).optional().describe('Substring of the tensor name this value applies to ("*" or absent: every tensor).'),
  value: z.union([scalar, gradient]),
});
const paramSetting = z
  .union([scalar, gradient, z.array(condition).min(1, { message: 'a filter list needs at least one entry' })])
  .describe('A number or boolean, a list of numbers interpolated across layer depth, or a list of { filter, value }.');
export type ParamSetting = z.infer<typeof paramSetting>;

/** Every parameter mergekit's implemented methods read; an unknown key is refused. */
export const PARAM_KEYS = ['weight', 'density', 'lambda', 'normalize', 'rescale', 'int8_mask', 't', 'gamma', 'epsilon', 'scale', 'filter_wise'] as const;
export type ParamKey = (typeof PARAM_KEYS)[number];
const paramsSchema = z.strictObject(Object.fromEntries(PARAM_KEYS.map((k) => [k, paramSetting.optional()])) as Record<ParamKey, z.ZodOptional<typeof paramSetting>>);
export type MergeParams = z.infer<typeof paramsSchema>;

const modelSchema = z.strictObject({
  model: z.string().min(1).describe('Checkpoint folder (model.safetensors or a sharded index) or a .safetensors file.'),
  parameters: paramsSchema.optional().describe('This model\'s parameters; override the slice and global ones.'),
});
const sliceSourceSchema = z.strictObject({
  model: z.string().min(1),
  layer_range: z.tuple([z.number().int().min(0), z.number().int().min(0)]).describe('[first, end) layers taken from this model.'),
  parameters: paramsSchema.optional(),
});
const sliceSchema = z.strictObject({
  sources: z.array(sliceSourceSchema).min(1, { message: 'a slice needs at least one source' }),
  base_model: z.string().min(1).optional().describe('Overrides the global base_model for this slice.'),
  parameters: paramsSchema.optional(),
});
export type SliceDef = z.infer<typeof sliceSchema>;

const DTYPES = ['float32', 'float16', 'bfloat16'] as const;
export type MergeDtype = (typeof DTYPES)[number];

export const mergeConfigSchema = z
  .strictObject({
    merge_method: z.string().min(1).describe(`One of ${MERGE_METHODS.join(', ')}.`),
    base_model: z.string().min(1).optional().describe('Checkpoint the task vectors are taken against.'),
    models: z.array(modelSchema).min(1, { message: 'list at least one model' }).optional(),
    slices: z.array(sliceSchema).min(1, { message: 'list at least one slice' }).optional(),
    parameters: paramsSchema.optional().describe('Global parameters (defaults for every model and slice).'),
    dtype: z.enum(DTYPES).default('float32').describe('Precision the merge computes in is always float64 per element; this is the stored dtype unless out_dtype is set.'),
    out_dtype: z.enum(DTYPES).optional().describe('Stored dtype of the merged float tensors (default: dtype).'),
    tokenizer_source: z.string().min(1).optional().describe("'base', or a model reference whose tokenizer the output gets ('union' is refused)."),
    seed: z.number().int().min(0).default(0).describe('Seed of the random masks of dare_* and della* (per tensor and model).'),
    passthrough_unique: z.boolean().default(false).describe('Copy tensors present in exactly one model (an encoder, a projector) instead of failing.'),
    // mergekit keys that are refused by name (checked below with a clear message)
    modules: z.unknown().optional(),
    tokenizer: z.unknown().optional(),
    chat_template: z.unknown().optional(),
  })
  .superRefine((c, ctx) => {
    const refuse = (path: string, message: string): void => void ctx.addIssue({ code: 'custom', path: [path], message });
    const m = c.merge_method;
    if (!(MERGE_METHODS as readonly string[]).includes(m)) {
      const why = REFUSED_METHODS[m];
      refuse('merge_method', why ? `'${m}' is a mergekit method adaptorkit refuses: ${why}` : `unknown merge method '${m}' (supported: ${MERGE_METHODS.join(', ')})`);
    }
    if (c.modules !== undefined) refuse('modules', 'multi-module configs are not supported: use models or slices');
    if (c.tokenizer !== undefined) refuse('tokenizer', "the tokenizer: block (added tokens, padding) is not supported: use tokenizer_source: base or a model");
    if (c.chat_template !== undefined) refuse('chat_template', 'setting a chat template is not supported: the donor tokenizer_config.json is copied as it is');
    if (c.tokenizer_source === 'union') refuse('tokenizer_source', "'union' (a merged vocabulary with permuted embeddings) is not supported: use 'base' or a model");
    if ((c.models === undefined) === (c.slices === undefined)) refuse('models', 'give exactly one of models or slices');
    const needsBase = ['task_arithmetic', 'ties', 'dare_linear', 'dare_ties', 'breadcrumbs', 'breadcrumbs_ties', 'della', 'della_linear', 'slerp', 'model_stock'].includes(m);
    if (needsBase && c.base_model === undefined && !(c.slices !== undefined && c.slices.every((s) => s.base_model !== undefined))) {
      refuse('base_model', `${m} needs a base_model (task vectors are taken against it)`);
    }
    if (c.models && m === 'slerp') {
      const all = new Set([...(c.base_model ? [c.base_model] : []), ...c.models.map((x) => x.model)]);
      if (all.size !== 2) refuse('models', `slerp merges exactly two models (base_model + one other), got ${all.size}`);
    }
    if (c.models && m === 'passthrough' && c.models.length !== 1) refuse('models', 'passthrough copies exactly one model per tensor: list one model, or use slices with one source each');
    for (const [i, s] of (c.slices ?? []).entries()) {
      const lens = s.sources.map((x) => x.layer_range[1] - x.layer_range[0]);
      for (const [j, x] of s.sources.entries()) {
        if (x.layer_range[1] <= x.layer_range[0]) ctx.addIssue({ code: 'custom', path: ['slices', i, 'sources', j, 'layer_range'], message: `layer_range [${x.layer_range.join(', ')}] is empty: end must be above first` });
      }
      if (new Set(lens).size > 1) ctx.addIssue({ code: 'custom', path: ['slices', i, 'sources'], message: `all sources of a slice must span the same number of layers, got ${lens.join(', ')}` });
      if (m === 'passthrough' && s.sources.length !== 1) ctx.addIssue({ code: 'custom', path: ['slices', i, 'sources'], message: `passthrough takes one source per slice, got ${s.sources.length}` });
    }
    // plain numbers can be checked now; gradients and filters are checked per tensor when read
    const checkRange = (v: ParamSetting | undefined, path: (string | number)[], key: string, ok: (x: number) => boolean, rule: string): void => {
      if (v === undefined) return;
      const nums = typeof v === 'number' ? [v] : Array.isArray(v) ? v.flatMap((e) => (typeof e === 'number' ? [e] : typeof e === 'object' ? [e.value].flat().filter((x): x is number => typeof x === 'number') : [])) : [];
      for (const x of nums) if (!ok(x)) ctx.addIssue({ code: 'custom', path, message: `${key} must be ${rule}, got ${x}` });
    };
    const checkParams = (p: MergeParams | undefined, path: (string | number)[]): void => {
      checkRange(p?.density, [...path, 'density'], 'density', (x) => x > 0 && x <= 1, 'in (0, 1]');
      checkRange(p?.gamma, [...path, 'gamma'], 'gamma', (x) => x >= 0 && x < 1, 'in [0, 1)');
      checkRange(p?.epsilon, [...path, 'epsilon'], 'epsilon', (x) => x >= 0 && x < 1, 'in [0, 1)');
      checkRange(p?.t, [...path, 't'], 't', (x) => x >= 0 && x <= 1, 'in [0, 1]');
    };
    checkParams(c.parameters, ['parameters']);
    c.models?.forEach((mm, i) => checkParams(mm.parameters, ['models', i, 'parameters']));
    c.slices?.forEach((s, i) => {
      checkParams(s.parameters, ['slices', i, 'parameters']);
      s.sources.forEach((x, j) => checkParams(x.parameters, ['slices', i, 'sources', j, 'parameters']));
    });
  });

export type MergeConfig = Omit<z.infer<typeof mergeConfigSchema>, 'merge_method' | 'modules' | 'tokenizer' | 'chat_template'> & { merge_method: MergeMethodName };
export type MergeConfigInput = z.input<typeof mergeConfigSchema>;

function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

/** Validate a config object; an invalid one is an AdaptorkitError naming the path of each bad field. */
export function parseMergeConfig(input: unknown): MergeConfig {
  const r = mergeConfigSchema.safeParse(input);
  if (!r.success) throw new AdaptorkitError('INVALID_CONFIG', `merge config: ${formatIssues(r.error.issues)}`);
  const { modules: _m, tokenizer: _t, chat_template: _c, ...rest } = r.data;
  return rest as MergeConfig;
}

/** Parse mergekit YAML text (aliases bounded: a config has no reason for many). */
export function parseMergeYaml(text: string): MergeConfig {
  let obj: unknown;
  try {
    obj = parseYamlText(text, { maxAliasCount: 100 });
  } catch (e) {
    throw new AdaptorkitError('INVALID_CONFIG', `merge config: not valid YAML (${(e as Error).message})`);
  }
  return parseMergeConfig(obj);
}

/** The layer index in a tensor name (`...layers.<i>....`), or undefined outside numbered layers. */
export function layerIndex(name: string): number | undefined {
  const m = /(?:^|\.)layers\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** The same tensor name at another layer index. */
export function withLayerIndex(name: string, i: number): string {
  return name.replace(/((?:^|\.)layers\.)(\d+)(\.)/, `$1${i}$3`);
}

/** Number of numbered layers among tensor names (max index + 1; 0 when none). */
export function countLayers(names: Iterable<string>): number {
  let n = 0;
  for (const name of names) {
    const i = layerIndex(name);
    if (i !== undefined) n = Math.max(n, i + 1);
  }
  return n;
}

/**
 * mergekit's depth t for output layer `idx` of a slice of `n` layers: idx / (n - 1), and 1 for a
 * one-layer slice. Tensors outside layers (embeddings, final norm, head) read t = 0.
 */
export function sliceDepth(idx: number, n: number): number {
  return n > 1 ? idx / (n - 1) : 1;
}

/** A number list read at depth t by piecewise-linear interpolation (mergekit's gradient). */
export function interpolate(v: readonly number[], t: number): number {
  if (v.length === 1) return v[0]!;
  const pos = Math.min(1, Math.max(0, t)) * (v.length - 1);
  const j = Math.min(v.length - 2, Math.floor(pos));
  const f = pos - j;
  return v[j]! * (1 - f) + v[j + 1]! * f;
}

/** One setting for one tensor: undefined when no filter matches (the next level is asked). */
export function evaluateSetting(setting: ParamSetting, tensorName: string, t: number): number | boolean | undefined {
  if (typeof setting === 'number' || typeof setting === 'boolean') return setting;
  if (setting.every((e): e is number => typeof e === 'number')) return interpolate(setting, t);
  for (const c of setting) {
    if (typeof c !== 'object') continue;
    if (c.filter === undefined || c.filter === '*' || tensorName.includes(c.filter)) {
      return typeof c.value === 'number' || typeof c.value === 'boolean' ? c.value : interpolate(c.value, t);
    }
  }
  return undefined;
}

/** Where one output tensor's parameters come from. */
export interface ParamScope {
  cfg: MergeConfig;
  /** The output slice (for the models form: undefined). */
  slice?: SliceDef;
  /** Depth t of this tensor. */
  t: number;
}

/**
 * A parameter for one tensor: the source's own value (when `source` is given: its index in the
 * slice's sources, or in models), then the slice's, then the global one; undefined when unset.
 */
export function readParam(scope: ParamScope, key: ParamKey, tensorName: string, source?: number): number | boolean | undefined {
  const levels: (MergeParams | undefined)[] = [];
  if (source !== undefined) levels.push(scope.slice ? scope.slice.sources[source]?.parameters : scope.cfg.models?.[source]?.parameters);
  if (scope.slice) levels.push(scope.slice.parameters);
  levels.push(scope.cfg.parameters);
  for (const p of levels) {
    const s = p?.[key];
    if (s === undefined) continue;
    const v = evaluateSetting(s, tensorName, scope.t);
    if (v !== undefined) return v;
  }
  return undefined;
}

/** A numeric parameter with its default; a boolean where a number belongs is an error naming the key. */
export function numParam(scope: ParamScope, key: ParamKey, tensorName: string, fallback: number, source?: number): number {
  const v = readParam(scope, key, tensorName, source);
  if (v === undefined) return fallback;
  if (typeof v !== 'number') throw new AdaptorkitError('INVALID_CONFIG', `merge config: parameter ${key} must be a number for tensor '${tensorName}', got ${String(v)}`);
  return v;
}

/** A boolean parameter with its default (mergekit also accepts 0/1). */
export function boolParam(scope: ParamScope, key: ParamKey, tensorName: string, fallback: boolean): boolean {
  const v = readParam(scope, key, tensorName);
  if (v === undefined) return fallback;
  return typeof v === 'boolean' ? v : v !== 0;
}
