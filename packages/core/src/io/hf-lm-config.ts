/**
 * Hugging Face config.json -> CausalLMConfig for the decoder families adaptorkit runs, each read
 * as transformers defines it (its config class defaults apply to fields a file leaves out):
 *
 *   llama, mistral   sliding_window (mistral: every layer; HF default 4096 when the key is absent)
 *   qwen2, qwen3     qwen2 q/k/v biases; qwen3 per-head q/k RMSNorm and head_dim; sliding window on
 *                    layers >= max_window_layers (or layer_types) when use_sliding_window
 *   gemma            GeGLU (tanh GELU), RMSNorm x (1 + w), embeddings x sqrt(hidden) rounded to the
 *                    checkpoint dtype (torch_dtype / dtype), head_dim, tied head
 *   gemma2           + attn / final logit soft-capping, sandwich norms, query_pre_attn_scalar,
 *                    alternating sliding (even layers) / global layers (or layer_types)
 *   gemma3_text      + q/k norm, sliding_window_pattern (or layer_types), rope_local_base_freq
 *   phi3             fused qkv_proj / gate_up_proj, sliding_window
 * Rope: rope_theta + rope_scaling, or rope_parameters (also keyed by layer type); types default,
 * linear, llama3. Whatever a family has that is not implemented here is refused by name.
 */
import { AdaptorkitError } from '../errors.js';
import { activationFromHF } from '../nn/layers.js';
import type { RopeScaling } from '../nn/rope.js';
import { LM_FAMILIES, type CausalLMConfig, type LayerType, type LMFamily } from '../models/lm-config.js';

export type HFConfig = Record<string, unknown>;

export function invalid(where: string, key: string, want: string, got: unknown): never {
  throw new AdaptorkitError('INVALID_CONFIG', `${where}: field '${key}' must be ${want}, got ${JSON.stringify(got)}`);
}

export function getInt(c: HFConfig, key: string, where: string, def?: number): number {
  const v = c[key] ?? def;
  if (v === undefined) throw new AdaptorkitError('INVALID_CONFIG', `${where}: required field '${key}' is missing`);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) invalid(where, key, 'a positive integer', v);
  return v;
}

export function getNum(c: HFConfig, key: string, where: string, def: number): number {
  const v = c[key] ?? def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) invalid(where, key, 'a positive number', v);
  return v;
}

export function getBool(c: HFConfig, key: string, where: string, def: boolean): boolean {
  const v = c[key] ?? def;
  if (typeof v !== 'boolean') invalid(where, key, 'true or false', v);
  return v;
}

/** A positive number, or undefined when the key is null; `def` when it is absent. */
function optNum(c: HFConfig, key: string, where: string, def: number | undefined): number | undefined {
  if (c[key] === null) return undefined;
  if (c[key] === undefined) return def;
  return getNum(c, key, where, NaN);
}

export const SUPPORTED_LM_TYPES = LM_FAMILIES;

interface Rope {
  theta: number;
  scaling?: RopeScaling;
}

/** What the long-context rope types are, for the refusal. */
const LONG_ROPES: Record<string, string> = {
  longrope: ' (LongRoPE, e.g. Phi-3 128k / Phi-3.5)',
  su: ' (the older name of longrope, Phi-3 128k)',
  yarn: ' (YaRN)',
  dynamic: ' (dynamic NTK)',
};

function ropeFrom(obj: Record<string, unknown> | undefined, theta: number, where: string): Rope {
  if (!obj) return { theta };
  const type = obj.rope_type ?? obj.type ?? 'default';
  if (type === 'default') return { theta };
  if (type === 'linear') return { theta, scaling: { type: 'linear', factor: getNum(obj, 'factor', where, NaN) } };
  if (type === 'llama3') {
    return {
      theta,
      scaling: {
        type: 'llama3',
        factor: getNum(obj, 'factor', where, NaN),
        lowFreqFactor: getNum(obj, 'low_freq_factor', where, 1),
        highFreqFactor: getNum(obj, 'high_freq_factor', where, 4),
        originalMaxPositionEmbeddings: getInt(obj, 'original_max_position_embeddings', where, 8192),
      },
    };
  }
  throw new AdaptorkitError(
    'UNSUPPORTED',
    `${where} type ${JSON.stringify(type)}${LONG_ROPES[String(type)] ?? ''} is not supported (supported: default, linear, llama3); ` +
      'remove it to run with the unscaled rope if your sequences fit the original context',
  );
}

function asObject(v: unknown, where: string, key: string): Record<string, unknown> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) invalid(where, key, 'an object or null', v);
  return v as Record<string, unknown>;
}

/** Global rope (+ the sliding layers' rope for gemma3) from rope_theta/rope_scaling or rope_parameters. */
function parseRope(c: HFConfig, where: string, defTheta: number, localDefault?: number): { global: Rope; local?: Rope } {
  const params = asObject(c.rope_parameters, where, 'rope_parameters');
  const classicTheta = getNum(c, 'rope_theta', where, defTheta);
  if (params) {
    const byType = params.full_attention !== undefined || params.sliding_attention !== undefined;
    if (byType) {
      if (localDefault === undefined && params.sliding_attention !== undefined) {
        throw new AdaptorkitError('UNSUPPORTED', `${where}: per-layer-type rope_parameters (${Object.keys(params).join(', ')}) are only supported for gemma3_text`);
      }
      const full = asObject(params.full_attention, where, 'rope_parameters.full_attention') ?? {};
      const slide = asObject(params.sliding_attention, where, 'rope_parameters.sliding_attention');
      const w = `${where} rope_parameters.full_attention`;
      const global = ropeFrom(full, getNum(full, 'rope_theta', w, classicTheta), w);
      if (!slide) return { global, local: { theta: getNum(c, 'rope_local_base_freq', where, localDefault ?? 10000) } };
      const ws = `${where} rope_parameters.sliding_attention`;
      return { global, local: ropeFrom(slide, getNum(slide, 'rope_theta', ws, localDefault ?? 10000), ws) };
    }
    const w = `${where} rope_parameters`;
    const global = ropeFrom(params, getNum(params, 'rope_theta', w, classicTheta), w);
    return localDefault === undefined ? { global } : { global, local: { theta: getNum(c, 'rope_local_base_freq', where, localDefault) } };
  }
  const global = ropeFrom(asObject(c.rope_scaling, where, 'rope_scaling'), classicTheta, `${where} rope_scaling`);
  return localDefault === undefined ? { global } : { global, local: { theta: getNum(c, 'rope_local_base_freq', where, localDefault) } };
}

/** Round x to the nearest value of a float format with `mantissaBits` explicit bits (ties to even). */
function roundMantissa(x: number, mantissaBits: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const e = Math.floor(Math.log2(Math.abs(x)));
  const ulp = 2 ** (e - mantissaBits);
  const q = x / ulp;
  let r = Math.round(q);
  if (Math.abs(q - Math.trunc(q)) === 0.5 && r % 2 !== 0) r -= Math.sign(q);
  return r * ulp;
}

/** sqrt(hidden) as the checkpoint's dtype holds it (HF casts Gemma's normalizer to the model dtype). */
export function gemmaEmbedScale(hidden: number, dtype: unknown): number {
  const s = Math.sqrt(hidden);
  if (dtype === 'bfloat16') return roundMantissa(s, 7);
  if (dtype === 'float16') return roundMantissa(s, 10);
  return Math.fround(s);
}

function layerTypesFrom(c: HFConfig, where: string, n: number, rule: (i: number) => LayerType): LayerType[] {
  const lt = c.layer_types;
  if (lt === undefined || lt === null) return Array.from({ length: n }, (_, i) => rule(i));
  if (!Array.isArray(lt) || lt.length !== n) invalid(where, 'layer_types', `a list of ${n} layer types`, lt);
  for (const t of lt) {
    if (t !== 'full_attention' && t !== 'sliding_attention') {
      throw new AdaptorkitError('UNSUPPORTED', `${where}: layer type ${JSON.stringify(t)} in layer_types is not supported (full_attention, sliding_attention)`);
    }
  }
  return lt as LayerType[];
}

function refuseIf(cond: boolean, where: string, what: string): void {
  if (cond) throw new AdaptorkitError('UNSUPPORTED', `${where}: ${what} is not supported`);
}

/** HF config.json of a supported decoder family -> CausalLMConfig. `where` names the file in errors. */
export function causalLMConfigFromHF(c: HFConfig, where = 'config.json'): CausalLMConfig {
  const modelType = c.model_type;
  if (typeof modelType !== 'string' || !(LM_FAMILIES as readonly string[]).includes(modelType)) {
    const hint = modelType === 'gemma3' ? ' (the Gemma 3 multimodal wrapper: load a gemma3_text model, e.g. its text_config with the language model weights)' : '';
    throw new AdaptorkitError('UNSUPPORTED', `${where}: model_type ${JSON.stringify(modelType)} is not supported${hint} (supported: ${LM_FAMILIES.join(', ')})`);
  }
  const mt = modelType as LMFamily;
  const gemmaFamily = mt === 'gemma' || mt === 'gemma2' || mt === 'gemma3_text';
  const hidden = getInt(c, 'hidden_size', where);
  const heads = getInt(c, 'num_attention_heads', where);
  const defHeadDim = gemmaFamily ? 256 : mt === 'qwen3' ? 128 : hidden / heads;
  const headDim = c.head_dim === undefined || c.head_dim === null ? defHeadDim : getInt(c, 'head_dim', where);
  if (!Number.isInteger(headDim)) invalid(where, 'head_dim', `given when hidden_size (${hidden}) is not divisible by num_attention_heads (${heads})`, c.head_dim);
  const prf = c.partial_rotary_factor;
  refuseIf(prf !== undefined && prf !== null && prf !== 1, where, `partial_rotary_factor ${JSON.stringify(prf)} (only 1.0: rope on the whole head)`);
  refuseIf(mt !== 'qwen2' && getBool(c, 'attention_bias', where, false), where, `attention_bias true (biases on q/k/v and o_proj) for ${mt}`);
  const quant = c.quantization_config;
  if (quant !== undefined && quant !== null) {
    const method = typeof quant === 'object' && !Array.isArray(quant) ? (quant as Record<string, unknown>).quant_method : undefined;
    refuseIf(true, where, `a quantized checkpoint (quantization_config${method ? ` ${JSON.stringify(method)}` : ''}); use the unquantized bf16/f16/f32 weights`);
  }
  refuseIf(mt === 'gemma3_text' && c.use_bidirectional_attention === true, where, 'use_bidirectional_attention true (EmbeddingGemma-style bidirectional attention)');
  const numLayers = getInt(c, 'num_hidden_layers', where);

  let act: unknown;
  if (mt === 'gemma') act = c.hidden_activation ?? (c.hidden_act === undefined || c.hidden_act === 'gelu' ? 'gelu_pytorch_tanh' : c.hidden_act);
  else if (gemmaFamily) act = c.hidden_activation ?? c.hidden_act ?? 'gelu_pytorch_tanh';
  else act = c.hidden_act ?? 'silu';
  if (typeof act !== 'string') invalid(where, 'hidden_act', 'a string', act);

  const rope = parseRope(c, where, mt === 'gemma3_text' ? 1_000_000 : 10000, mt === 'gemma3_text' ? 10000 : undefined);
  if (rope.local?.scaling) throw new AdaptorkitError('UNSUPPORTED', `${where}: a scaled rope on sliding layers (${rope.local.scaling.type}) is not supported`);

  // attention kinds per layer
  let slidingWindow: number | undefined;
  let layerTypes: LayerType[] | undefined;
  const sw = (def: number | undefined): number | undefined => {
    if (c.sliding_window === null || (c.sliding_window === undefined && def === undefined)) return undefined;
    return getInt(c, 'sliding_window', where, def);
  };
  if (mt === 'mistral' || mt === 'phi3') {
    slidingWindow = sw(mt === 'mistral' ? 4096 : undefined);
    if (slidingWindow !== undefined) layerTypes = Array.from({ length: numLayers }, () => 'sliding_attention');
  } else if (mt === 'qwen2' || mt === 'qwen3') {
    if (getBool(c, 'use_sliding_window', where, false)) {
      slidingWindow = sw(4096);
      const mwl = getInt(c, 'max_window_layers', where, 28);
      if (slidingWindow !== undefined) layerTypes = layerTypesFrom(c, where, numLayers, (i) => (i >= mwl ? 'sliding_attention' : 'full_attention'));
    }
  } else if (mt === 'gemma2' || mt === 'gemma3_text') {
    slidingWindow = sw(4096);
    const pattern = mt === 'gemma2' ? 2 : getInt(c, 'sliding_window_pattern', where, 6);
    layerTypes = layerTypesFrom(c, where, numLayers, (i) => ((i + 1) % pattern !== 0 ? 'sliding_attention' : 'full_attention'));
    if (slidingWindow === undefined && layerTypes.includes('sliding_attention')) invalid(where, 'sliding_window', 'a positive integer (the config has sliding layers)', c.sliding_window);
  }

  const scalar = mt === 'gemma2' || mt === 'gemma3_text' ? getNum(c, 'query_pre_attn_scalar', where, 256) : undefined;
  const attnCap = mt === 'gemma2' || mt === 'gemma3_text' ? optNum(c, 'attn_logit_softcapping', where, mt === 'gemma2' ? 50 : undefined) : undefined;
  const finalCap = mt === 'gemma2' || mt === 'gemma3_text' ? optNum(c, 'final_logit_softcapping', where, mt === 'gemma2' ? 30 : undefined) : undefined;
  refuseIf(!gemmaFamily && c.final_logit_softcapping !== undefined && c.final_logit_softcapping !== null, where, `final_logit_softcapping for ${mt}`);

  const out: CausalLMConfig = {
    modelType: mt,
    vocabSize: getInt(c, 'vocab_size', where),
    hiddenSize: hidden,
    intermediateSize: getInt(c, 'intermediate_size', where),
    numLayers,
    numHeads: heads,
    numKVHeads: getInt(c, 'num_key_value_heads', where, heads),
    headDim,
    rmsNormEps: getNum(c, 'rms_norm_eps', where, mt === 'phi3' ? 1e-5 : 1e-6),
    ropeTheta: rope.global.theta,
    ...(rope.global.scaling ? { ropeScaling: rope.global.scaling } : {}),
    maxPositionEmbeddings: getInt(c, 'max_position_embeddings', where, 2048),
    tieWordEmbeddings: getBool(c, 'tie_word_embeddings', where, gemmaFamily),
    attentionBias: mt === 'qwen2',
    mlpBias: mt === 'llama' ? getBool(c, 'mlp_bias', where, false) : false,
    hiddenAct: activationFromHF(act),
    unitOffsetNorms: gemmaFamily,
    sandwichNorms: mt === 'gemma2' || mt === 'gemma3_text',
    fusedProjections: mt === 'phi3',
  };
  if (mt === 'qwen3') out.qkNorm = 'plain';
  if (mt === 'gemma3_text') out.qkNorm = 'unit-offset';
  if (gemmaFamily) out.embedScale = gemmaEmbedScale(hidden, c.torch_dtype ?? c.dtype);
  if (scalar !== undefined) out.attnScale = 1 / Math.sqrt(scalar);
  if (attnCap !== undefined) out.attnLogitSoftcap = attnCap;
  if (finalCap !== undefined) out.finalLogitSoftcap = finalCap;
  if (layerTypes?.includes('sliding_attention')) {
    out.slidingWindow = slidingWindow;
    out.layerTypes = layerTypes;
  }
  if (rope.local) out.localRopeTheta = rope.local.theta;
  return out;
}
