/**
 * PEFT LoRA adapter_config.json: what adaptorkit reads, what it refuses, and PEFT's matching rules
 * (peft/tuners/tuners_utils.py check_target_module_exists, peft/utils/other.py get_pattern_key):
 *
 *  - target_modules as a list: a module path matches when it equals an entry or ends with
 *    `.<entry>`; as a string: a regular expression that must match the whole path.
 *  - exclude_modules (same two forms) and modules_to_save (`(^|.*\.)<name>($|\..*)`) take a module
 *    out of the LoRA targets.
 *  - rank_pattern / alpha_pattern: the first key k (in file order) with `(.*\.)?(k)$` matching from
 *    the start of the path overrides r / lora_alpha for that module.
 *  - scale alpha / r, or alpha / sqrt(r) with use_rslora.
 *
 * Patterns are Python regular expressions; adaptorkit runs them as JavaScript ones (the same for
 * the usual dots, groups, alternations and classes).
 */
import { AdaptorkitError } from '../errors.js';

export const PEFT_CONFIG = 'adapter_config.json';
export const PEFT_WEIGHTS = 'adapter_model.safetensors';
/** Key prefix of a PEFT CAUSAL_LM adapter's tensors (PeftModel.base_model.model). */
export const PEFT_PREFIX = 'base_model.model.';

export interface PeftLoraConfig {
  peft_type: 'LORA';
  task_type: string | null;
  r: number;
  lora_alpha: number;
  target_modules: string[] | string;
  exclude_modules: string[] | string | null;
  use_rslora: boolean;
  fan_in_fan_out: boolean;
  bias: 'none' | 'lora_only';
  modules_to_save: string[] | null;
  rank_pattern: Record<string, number>;
  alpha_pattern: Record<string, number>;
  lora_dropout: number;
  base_model_name_or_path: string | null;
}

/** Fields that change what the adapter computes and that adaptorkit does not implement: refused when set. */
const REFUSED: [string, (v: unknown) => boolean, string][] = [
  ['use_dora', (v) => v === true, 'DoRA (weight-decomposed LoRA) rescales each output column by a learned magnitude'],
  ['lora_bias', (v) => v === true, 'a trainable bias on lora_B'],
  ['layers_to_transform', (v) => v !== null && v !== undefined && !(Array.isArray(v) && v.length === 0), 'layer selection by index; name the modules in target_modules (a regex) instead'],
  ['layers_pattern', (v) => v !== null && v !== undefined && !(Array.isArray(v) && v.length === 0) && v !== '', 'layer selection by pattern'],
  ['layer_replication', (v) => v !== null && v !== undefined, 'layers duplicated in the base'],
  ['target_parameters', (v) => v !== null && v !== undefined && !(Array.isArray(v) && v.length === 0), 'LoRA on raw parameters (MoE experts)'],
  ['trainable_token_indices', (v) => v !== null && v !== undefined, 'trainable token rows of the embedding'],
  ['use_qalora', (v) => v === true, 'QA-LoRA (pooled inputs for a quantized base)'],
  ['alora_invocation_tokens', (v) => v !== null && v !== undefined, 'activated LoRA (applies after invocation tokens only)'],
  ['megatron_config', (v) => v !== null && v !== undefined, 'Megatron tensor-parallel layers'],
  ['use_bdlora', (v) => v === true, 'block-diagonal LoRA'],
];

function bad(where: string, msg: string): never {
  throw new AdaptorkitError('INVALID_CONFIG', `${where}: ${msg}`);
}

function stringList(v: unknown, where: string, key: string): string[] | string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') {
    try {
      new RegExp(v);
    } catch (e) {
      bad(where, `${key} ${JSON.stringify(v)} is not a valid regular expression (${(e as Error).message})`);
    }
    return v;
  }
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  return bad(where, `${key} must be a list of module names or a regex string, got ${JSON.stringify(v)}`);
}

function patternMap(v: unknown, where: string, key: string, positive: (n: number) => boolean): Record<string, number> {
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) bad(where, `${key} must be an object of pattern -> number`);
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(v as Record<string, unknown>)) {
    if (typeof n !== 'number' || !positive(n)) bad(where, `${key}[${JSON.stringify(k)}] must be a positive number, got ${JSON.stringify(n)}`);
    try {
      new RegExp(k);
    } catch (e) {
      bad(where, `${key} key ${JSON.stringify(k)} is not a valid regular expression (${(e as Error).message})`);
    }
    out[k] = n;
  }
  return out;
}

/** Validate a parsed adapter_config.json (PEFT LoRA); anything adaptorkit cannot apply exactly is refused by name. */
export function parsePeftConfig(j: Record<string, unknown>, where = PEFT_CONFIG): PeftLoraConfig {
  if (j.peft_type !== 'LORA') {
    if (j.format === 'adaptorkit-adapter') bad(where, `this is an adaptorkit adapter (method '${String(j.method)}') in the old layout, not a PEFT adapter: load it with loadAdapter`);
    throw new AdaptorkitError('UNSUPPORTED', `${where}: peft_type ${JSON.stringify(j.peft_type)} is not supported (adaptorkit imports PEFT LORA adapters only)`);
  }
  for (const [k, isSet, what] of REFUSED) {
    if (isSet(j[k])) throw new AdaptorkitError('UNSUPPORTED', `${where}: ${k} = ${JSON.stringify(j[k])} is not supported (${what}); adaptorkit imports plain LoRA`);
  }
  const lq = j.loftq_config;
  if (lq && typeof lq === 'object' && Object.keys(lq).length > 0) throw new AdaptorkitError('UNSUPPORTED', `${where}: loftq_config is set: a LoftQ adapter belongs to a quantized base, which adaptorkit does not load`);
  const task = j.task_type ?? null;
  if (task !== null && task !== 'CAUSAL_LM') throw new AdaptorkitError('UNSUPPORTED', `${where}: task_type ${JSON.stringify(task)} is not supported (CAUSAL_LM adapters for a causal LM only)`);
  const bias = j.bias ?? 'none';
  if (bias === 'all') throw new AdaptorkitError('UNSUPPORTED', `${where}: bias "all" (every bias of the model trained) is not supported; bias "none" and "lora_only" are`);
  if (bias !== 'none' && bias !== 'lora_only') bad(where, `bias must be "none", "lora_only" or "all", got ${JSON.stringify(bias)}`);
  const r = j.r ?? 8;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) bad(where, `r must be a positive integer, got ${JSON.stringify(r)}`);
  const alpha = j.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) bad(where, `lora_alpha must be a number, got ${JSON.stringify(alpha)}`);
  const targets = stringList(j.target_modules, where, 'target_modules');
  if (targets === null) bad(where, 'target_modules is missing (adaptorkit needs the adapted module names; PEFT fills them in for known architectures when saving)');
  if (targets === 'all-linear') bad(where, `target_modules "all-linear" is resolved by PEFT when it trains; a saved adapter names the modules (re-save it, or list them)`);
  const mts = j.modules_to_save ?? null;
  if (mts !== null && !(Array.isArray(mts) && mts.every((x) => typeof x === 'string'))) bad(where, `modules_to_save must be a list of module names or null, got ${JSON.stringify(mts)}`);
  for (const k of ['use_rslora', 'fan_in_fan_out'] as const) {
    if (j[k] !== undefined && typeof j[k] !== 'boolean') bad(where, `${k} must be true or false, got ${JSON.stringify(j[k])}`);
  }
  const base = j.base_model_name_or_path ?? null;
  return {
    peft_type: 'LORA',
    task_type: task as string | null,
    r,
    lora_alpha: alpha,
    target_modules: targets,
    exclude_modules: stringList(j.exclude_modules, where, 'exclude_modules'),
    use_rslora: j.use_rslora === true,
    fan_in_fan_out: j.fan_in_fan_out === true,
    bias,
    modules_to_save: mts as string[] | null,
    rank_pattern: patternMap(j.rank_pattern, where, 'rank_pattern', (n) => Number.isInteger(n) && n >= 1),
    alpha_pattern: patternMap(j.alpha_pattern, where, 'alpha_pattern', Number.isFinite),
    lora_dropout: typeof j.lora_dropout === 'number' ? j.lora_dropout : 0,
    base_model_name_or_path: typeof base === 'string' ? base : null,
  };
}

function fullMatch(pattern: string, key: string): boolean {
  return new RegExp(`^(?:${pattern})$`).test(key);
}

function listOrRegex(spec: string[] | string, key: string): boolean {
  return typeof spec === 'string' ? fullMatch(spec, key) : spec.includes(key) || spec.some((t) => key.endsWith(`.${t}`));
}

/** Whether PEFT would put this config's LoRA on the module at `key` (exclusions included). */
export function isLoraTarget(c: PeftLoraConfig, key: string): boolean {
  if (c.exclude_modules !== null && listOrRegex(c.exclude_modules, key)) return false;
  if (c.modules_to_save?.some((m) => new RegExp(`^(?:.*\\.)?${m}(?:$|\\..*)`).test(key))) return false;
  return listOrRegex(c.target_modules, key);
}

/** Whether the module at `key` is one of modules_to_save (PEFT: the key ends with the name). */
export function isModuleToSave(c: PeftLoraConfig, key: string): boolean {
  return c.modules_to_save?.some((m) => key === m || key.endsWith(`.${m}`)) ?? false;
}

/** PEFT's get_pattern_key: the first pattern key matching the end of `key` after a dot boundary. */
export function patternKey(keys: readonly string[], key: string): string | undefined {
  return keys.find((k) => new RegExp(`^(?:.*\\.)?(?:${k})$`).test(key));
}

/** Rank, alpha and scale PEFT gives the module at `key`. */
export function loraShapeFor(c: PeftLoraConfig, key: string): { r: number; alpha: number; scale: number } {
  const rk = patternKey(Object.keys(c.rank_pattern), key);
  const ak = patternKey(Object.keys(c.alpha_pattern), key);
  const r = rk === undefined ? c.r : c.rank_pattern[rk]!;
  const alpha = ak === undefined ? c.lora_alpha : c.alpha_pattern[ak]!;
  return { r, alpha, scale: c.use_rslora ? alpha / Math.sqrt(r) : alpha / r };
}
