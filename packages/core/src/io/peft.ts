/**
 * PEFT LoRA adapters both ways, onto a loaded HF base (e.g. from loadCausalLM):
 *
 *   loadPeftAdapter(model, dir, { name })   adapter_config.json + adapter_model.safetensors ->
 *                                           LoraLinear adapters named `name` (frozen; the base untouched)
 *   savePeftAdapter(dir, model, name)       the adapter `name` of a model -> the same two files
 *   writePeftAdapter(dir, layers, opts)     LoRA factors from anywhere (e.g. DAMC deltas) -> PEFT files
 *
 * Tensor names are PEFT's saved names: `base_model.model.<module>.lora_A.weight` [r, in],
 * `...lora_B.weight` [out, r], `<module>.bias` (bias: lora_only), `<module>.<param>` for
 * modules_to_save. Loading is strict: a targeted module without its factors, a tensor no module
 * takes, or a shape that disagrees with r / rank_pattern is an error naming the tensor; nothing is
 * changed in the model unless every check passes.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError, formatShape } from '../errors.js';
import { Linear } from '../nn/layers.js';
import { LoraLinear, ModuleCopies, activeAdapters, copyKindError, loraWrapBlocker, adapterNames, setAdapter, wrapLinearAt } from '../nn/lora.js';
import type { Module } from '../nn/module.js';
import { shapesEqual, toExternalLayout } from '../nn/parameter.js';
import { writeTextAtomic } from './atomic.js';
import { readJson } from './hf.js';
import { PEFT_CONFIG, PEFT_PREFIX, PEFT_WEIGHTS, isLoraTarget, isModuleToSave, loraShapeFor, parsePeftConfig, type PeftLoraConfig } from './peft-config.js';
import { SafetensorsFile, writeSafetensors } from './safetensors.js';

const loadedConfigs = new WeakMap<Module, Map<string, PeftLoraConfig>>();

/** The PEFT config an adapter was loaded with (undefined for adapters made in-process). */
export function peftConfigOf(model: Module, name: string): PeftLoraConfig | undefined {
  return loadedConfigs.get(model)?.get(name);
}

/** Whether `dir` holds a PEFT adapter (adapter_config.json with a peft_type). */
export async function isPeftAdapterDir(dir: string): Promise<boolean> {
  const f = path.join(dir, PEFT_CONFIG);
  if (!existsSync(f)) return false;
  const j = await readJson(f, PEFT_CONFIG);
  return typeof j.peft_type === 'string';
}

export async function readPeftConfig(dir: string): Promise<PeftLoraConfig> {
  const f = path.join(dir, PEFT_CONFIG);
  return parsePeftConfig(await readJson(f, PEFT_CONFIG), f);
}

/** Module paths PEFT would see: Linear maps and module-to-save candidates, outside LoRA wrappers and copies. */
function candidateModules(model: Module): [string, Module][] {
  const out: [string, Module][] = [];
  const inside: string[] = [];
  for (const [p, m] of model.namedModules()) {
    if (inside.some((q) => p.startsWith(q))) continue;
    if (m instanceof LoraLinear) inside.push(`${p}.`);
    if (ModuleCopies.existing(m)) inside.push(`${p}.modules_to_save.`);
    if (p) out.push([p, m]);
  }
  return out;
}

function preview(names: string[]): string {
  return names.length <= 6 ? names.join(', ') : `${names.slice(0, 6).join(', ')} ... (${names.length} in all)`;
}

interface Planned {
  key: string;
  r: number;
  scale: number;
  bias: boolean;
}

/**
 * Load a PEFT LoRA adapter onto `model` as adapter `name` (default 'default'). The whole model is
 * frozen (as PEFT freezes the base; the adapter tensors are loaded frozen too). The first adapter
 * loaded becomes active; later ones are loaded inactive unless `activate` (switch with setAdapter).
 */
export async function loadPeftAdapter(model: Module, dir: string, opts: { name?: string; activate?: boolean } = {}): Promise<{ name: string; config: PeftLoraConfig; modules: string[]; savedModules: string[] }> {
  const name = opts.name ?? 'default';
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new AdaptorkitError('INVALID_ARGUMENT', `adapter name '${name}' must be letters, digits and _`);
  if (adapterNames(model).includes(name)) throw new AdaptorkitError('INVALID_ARGUMENT', `an adapter named '${name}' is already loaded; pick another name or deleteAdapter it first`);
  const config = await readPeftConfig(dir);
  const file = path.join(dir, PEFT_WEIGHTS);
  if (!existsSync(file)) {
    const bin = existsSync(path.join(dir, 'adapter_model.bin'));
    throw new AdaptorkitError('IO_ERROR', `${file} is missing` + (bin ? ' (found adapter_model.bin: re-save the adapter with safe_serialization=True; adaptorkit does not read pickles)' : ''));
  }
  const st = await SafetensorsFile.open(file);
  try {
    const byKey = new Map<string, string>(); // key without the PEFT prefix -> file name
    for (const n of st.names()) byKey.set(n.startsWith(PEFT_PREFIX) ? n.slice(PEFT_PREFIX.length) : n, n);
    const used = new Set<string>();
    const need = (key: string, shape: readonly number[]): string => {
      const n = byKey.get(key);
      if (n === undefined) throw new AdaptorkitError('MISSING_TENSOR', `${file}: no tensor '${PEFT_PREFIX}${key}' (adapter_config.json targets this module)`);
      const got = st.info(n).shape;
      if (!shapesEqual(got, shape)) throw new AdaptorkitError('SHAPE_MISMATCH', `${file}: tensor '${n}' is ${formatShape(got)}, the base model needs ${formatShape(shape)} (r from r / rank_pattern)`);
      used.add(n);
      return n;
    };
    const plans: Planned[] = [];
    const saved: [string, Module][] = [];
    for (const [key, m] of candidateModules(model)) {
      if (isModuleToSave(config, key) && !(m instanceof LoraLinear)) {
        const why = copyKindError(m, key);
        if (why) throw new AdaptorkitError('UNSUPPORTED', `${path.join(dir, PEFT_CONFIG)}: ${why}`);
        for (const [pn, p] of m.namedParameters().filter(([x]) => !x.includes('.'))) need(`${key}.${pn}`, p.externalShape);
        saved.push([key, m]);
        continue;
      }
      if (!isLoraTarget(config, key)) continue;
      if (!(m instanceof Linear || m instanceof LoraLinear)) {
        // PEFT refuses module types it has no LoRA layer for; adaptorkit puts LoRA on Linear maps only
        if (m.namedParameters().length === 0) continue;
        throw new AdaptorkitError('UNSUPPORTED', `${path.join(dir, PEFT_CONFIG)}: target_modules ${JSON.stringify(config.target_modules)} matches '${key}', ${/^[AEIOU]/.test(m.constructor.name) ? 'an' : 'a'} ${m.constructor.name}; adaptorkit puts LoRA on Linear maps only (LoRA on embeddings or whole blocks is not supported)`);
      }
      const blocked = loraWrapBlocker(model, key);
      if (blocked) throw new AdaptorkitError('UNSUPPORTED', `${path.join(dir, PEFT_CONFIG)}: ${blocked}`);
      const { r, scale } = loraShapeFor(config, key);
      need(`${key}.lora_A.weight`, [r, m.inFeatures]);
      need(`${key}.lora_B.weight`, [m.outFeatures, r]);
      const baseBias = m instanceof LoraLinear ? m.base_layer.bias : m.bias;
      let bias = false;
      if (config.bias === 'lora_only' && baseBias) {
        need(`${key}.bias`, [m.outFeatures]);
        bias = true;
      }
      plans.push({ key, r, scale, bias });
    }
    if (plans.length === 0 && saved.length === 0) {
      throw new AdaptorkitError('INVALID_CONFIG', `${path.join(dir, PEFT_CONFIG)}: target_modules ${JSON.stringify(config.target_modules)} matches no Linear module of this model (paths look like model.layers.0.self_attn.q_proj)`);
    }
    const unused = st.names().filter((n) => !used.has(n));
    if (unused.length) throw new AdaptorkitError('UNEXPECTED_TENSOR', `${file}: tensor(s) ${preview(unused)} match no targeted module of this model; does adapter_config.json belong to these weights, and this base to the adapter?`);
    const prev = activeAdapters(model);
    model.freeze(); // as PEFT: the base is frozen under its adapters
    const read = async (n: string): Promise<tf.Tensor> => st.read(n);
    for (const pl of plans) {
      const l = wrapLinearAt(model, pl.key);
      const a = l.addAdapter(name, pl.r, pl.scale, { bias: pl.bias });
      for (const [part, p] of [['lora_A', a.A.weight], ['lora_B', a.B.weight]] as const) {
        const t = await read(byKey.get(`${pl.key}.${part}.weight`)!);
        tf.tidy(() => p.assign(p.fromExternal(t), `${pl.key}.${part}.${name}.weight`));
        t.dispose();
      }
      if (a.bias) {
        const t = await read(byKey.get(`${pl.key}.bias`)!);
        a.bias.assign(t, `${pl.key}.lora_bias.${name}.bias`);
        t.dispose();
      }
    }
    for (const [key, m] of saved) {
      const copy = ModuleCopies.of(m, key).add(name, key);
      for (const [pn, p] of copy.namedParameters()) {
        const t = await read(byKey.get(`${key}.${pn}`)!);
        tf.tidy(() => p.assign(p.fromExternal(t), `${key}.modules_to_save.${name}.${pn}`));
        t.dispose();
      }
    }
    const reg = loadedConfigs.get(model) ?? new Map<string, PeftLoraConfig>();
    reg.set(name, config);
    loadedConfigs.set(model, reg);
    const activate = opts.activate ?? prev.length === 0;
    setAdapter(model, activate ? [name] : prev.length ? prev : []);
    return { name, config, modules: plans.map((p) => p.key), savedModules: saved.map(([k]) => k) };
  } finally {
    await st.close();
  }
}

/** One adapted module's factors in PEFT's layout. The caller keeps ownership of the tensors. */
export interface PeftLayerFactors {
  /** HF module path, e.g. model.layers.0.self_attn.q_proj */
  module: string;
  /** [r, in] */
  A: tf.Tensor;
  /** [out, r] */
  B: tf.Tensor;
  alpha: number;
  /** Replacement bias [out] (written with bias: lora_only). */
  bias?: tf.Tensor;
}

export interface WritePeftOptions {
  /** Written as base_model_name_or_path (a name or a path relative to the adapter folder). */
  baseModelNameOrPath?: string | null;
  /** Default: a regex naming exactly the adapted modules. */
  targetModules?: string[] | string;
  useRslora?: boolean;
  /** Default: lora_only when any layer carries a bias. */
  bias?: 'none' | 'lora_only';
  /** Whole-module copies (modules_to_save): module path -> its parameters by name, in HF layout. */
  modulesToSave?: Map<string, Map<string, tf.Tensor>>;
  dtype?: 'F32' | 'F16' | 'BF16';
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function mostCommon(xs: number[]): number {
  const c = new Map<number, number>();
  for (const x of xs) c.set(x, (c.get(x) ?? 0) + 1);
  return [...c].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0];
}

/** Write LoRA factors as a PEFT adapter folder (adapter_config.json + adapter_model.safetensors). */
export async function writePeftAdapter(dir: string, layers: readonly PeftLayerFactors[], opts: WritePeftOptions = {}): Promise<PeftLoraConfig> {
  if (layers.length === 0) throw new AdaptorkitError('INVALID_ARGUMENT', 'writePeftAdapter: no layers to write');
  const rsl = opts.useRslora ?? false;
  const ranks = layers.map((l) => l.A.shape[0]!);
  const r = mostCommon(ranks);
  const alpha = mostCommon(layers.map((l) => l.alpha));
  const rankPattern: Record<string, number> = {};
  const alphaPattern: Record<string, number> = {};
  const tensors = new Map<string, tf.Tensor>();
  const bias = opts.bias === 'lora_only' || layers.some((l) => l.bias); // lora_only: layers whose base has a bias carry one
  for (const l of layers) {
    const ra = l.A.shape[0]!;
    const rb = l.B.shape[1]!;
    if (l.A.rank !== 2 || l.B.rank !== 2 || ra !== rb) throw new AdaptorkitError('SHAPE_MISMATCH', `writePeftAdapter: ${l.module}: A ${formatShape(l.A.shape)} and B ${formatShape(l.B.shape)} are not [r, in] and [out, r]`);
    if (ra !== r) rankPattern[`^${escapeRe(l.module)}`] = ra;
    if (l.alpha !== alpha) alphaPattern[`^${escapeRe(l.module)}`] = l.alpha;
    tensors.set(`${PEFT_PREFIX}${l.module}.lora_A.weight`, l.A);
    tensors.set(`${PEFT_PREFIX}${l.module}.lora_B.weight`, l.B);
    if (l.bias) tensors.set(`${PEFT_PREFIX}${l.module}.bias`, l.bias);
  }
  for (const [m, params] of opts.modulesToSave ?? []) for (const [pn, t] of params) tensors.set(`${PEFT_PREFIX}${m}.${pn}`, t);
  const config: PeftLoraConfig = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r,
    lora_alpha: alpha,
    target_modules: opts.targetModules ?? `^(?:${layers.map((l) => escapeRe(l.module)).join('|')})$`,
    exclude_modules: null,
    use_rslora: rsl,
    fan_in_fan_out: false,
    bias: bias ? 'lora_only' : 'none',
    modules_to_save: opts.modulesToSave?.size ? [...opts.modulesToSave.keys()] : null,
    rank_pattern: rankPattern,
    alpha_pattern: alphaPattern,
    lora_dropout: 0,
    base_model_name_or_path: opts.baseModelNameOrPath ?? null,
  };
  // a config PEFT reads: its own field names, the rest at PEFT's defaults
  const json = { ...config, inference_mode: true, init_lora_weights: true, layers_to_transform: null, layers_pattern: null, use_dora: false, revision: null };
  parsePeftConfig(json as Record<string, unknown>, 'writePeftAdapter'); // what we write must parse back
  await writeSafetensors(path.join(dir, PEFT_WEIGHTS), tensors, { dtype: opts.dtype, metadata: { format: 'pt' } });
  await writeTextAtomic(path.join(dir, PEFT_CONFIG), JSON.stringify(json, null, 2) + '\n');
  return config;
}

/** Save adapter `name` of a model (loaded, or made by addWeightedAdapter) as a PEFT adapter folder. */
export async function savePeftAdapter(dir: string, model: Module, name: string, opts: Omit<WritePeftOptions, 'modulesToSave'> = {}): Promise<PeftLoraConfig> {
  const loaded = peftConfigOf(model, name);
  const owned: tf.Tensor[] = [];
  try {
    const layers: PeftLayerFactors[] = [];
    for (const [key, m] of model.namedModules()) {
      if (!(m instanceof LoraLinear) || !m.has(name)) continue;
      const a = m.adapter(name);
      const A = toExternalLayout(a.A.weight.value, 'transpose', a.A.weight.shape); // [r, in]
      const B = toExternalLayout(a.B.weight.value, 'transpose', a.B.weight.shape); // [out, r]
      owned.push(A, B);
      // alpha that reproduces the scale at this rank
      const alpha = loaded ? loraShapeFor(loaded, key).alpha : a.scale * (opts.useRslora ? Math.sqrt(a.rank) : a.rank);
      layers.push({ module: key, A, B, alpha, ...(a.bias ? { bias: a.bias.value } : {}) });
    }
    const mts = new Map<string, Map<string, tf.Tensor>>();
    for (const [key, m] of model.namedModules()) {
      const c = ModuleCopies.existing(m);
      if (!c?.has(name)) continue;
      const params = new Map<string, tf.Tensor>();
      for (const [pn, p] of c.get(name).namedParameters()) {
        const t = p.toExternal();
        owned.push(t);
        params.set(pn, t);
      }
      mts.set(key, params);
    }
    return await writePeftAdapter(dir, layers, {
      ...opts,
      useRslora: opts.useRslora ?? loaded?.use_rslora ?? false,
      bias: opts.bias ?? loaded?.bias,
      targetModules: opts.targetModules ?? loaded?.target_modules,
      baseModelNameOrPath: opts.baseModelNameOrPath ?? loaded?.base_model_name_or_path ?? null,
      modulesToSave: mts,
    });
  } finally {
    for (const t of owned) t.dispose();
  }
}
