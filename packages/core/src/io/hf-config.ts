/**
 * Hugging Face config.json -> adaptorkit model configs.
 *
 * Causal LMs: model_type llama, mistral, qwen2. Rope: `rope_theta` (+ `rope_scaling`) or the newer
 * `rope_parameters` ({ rope_type, rope_theta, factor, ... }); rope types default, linear and llama3
 * are supported, others are refused. Vision: CLIPVisionModel / CLIPModel (vision part), SigLIP
 * vision / SiglipModel (vision part), with HF's defaults for fields a config leaves out.
 */
import { AdaptorkitError } from '../errors.js';
import { activationFromHF } from '../nn/layers.js';
import type { RopeScaling } from '../nn/rope.js';
import type { CausalLMConfig } from '../models/causal-lm.js';
import type { VisionConfig } from '../models/vision.js';

export type HFConfig = Record<string, unknown>;

function invalid(where: string, key: string, want: string, got: unknown): never {
  throw new AdaptorkitError('INVALID_CONFIG', `${where}: field '${key}' must be ${want}, got ${JSON.stringify(got)}`);
}

function getInt(c: HFConfig, key: string, where: string, def?: number): number {
  const v = c[key] ?? def;
  if (v === undefined) throw new AdaptorkitError('INVALID_CONFIG', `${where}: required field '${key}' is missing`);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) invalid(where, key, 'a positive integer', v);
  return v;
}

function getNum(c: HFConfig, key: string, where: string, def: number): number {
  const v = c[key] ?? def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) invalid(where, key, 'a positive number', v);
  return v;
}

function getBool(c: HFConfig, key: string, where: string, def: boolean): boolean {
  const v = c[key] ?? def;
  if (typeof v !== 'boolean') invalid(where, key, 'true or false', v);
  return v;
}

export const SUPPORTED_LM_TYPES = ['llama', 'mistral', 'qwen2'] as const;

/** Parse rope settings from either the classic or the newer key set. */
function parseRope(c: HFConfig, where: string): { theta: number; scaling?: RopeScaling } {
  const params = c.rope_parameters;
  let scalingObj: Record<string, unknown> | undefined;
  let theta: number;
  if (params !== undefined && params !== null) {
    if (typeof params !== 'object' || Array.isArray(params)) invalid(where, 'rope_parameters', 'an object', params);
    const p = params as Record<string, unknown>;
    // transformers may key rope_parameters by layer type ({ full_attention: {...}, sliding_attention: {...} })
    if (p.rope_type === undefined && p.rope_theta === undefined && typeof p.full_attention === 'object') {
      throw new AdaptorkitError('UNSUPPORTED', `${where}: per-layer-type rope_parameters (${Object.keys(p).join(', ')}) are not supported by the LLaMA-family loader`);
    }
    theta = getNum(p, 'rope_theta', `${where} rope_parameters`, typeof c.rope_theta === 'number' ? c.rope_theta : 10000);
    scalingObj = p;
  } else {
    theta = getNum(c, 'rope_theta', where, 10000);
    const rs = c.rope_scaling;
    if (rs !== undefined && rs !== null) {
      if (typeof rs !== 'object' || Array.isArray(rs)) invalid(where, 'rope_scaling', 'an object or null', rs);
      scalingObj = rs as Record<string, unknown>;
    }
  }
  if (!scalingObj) return { theta };
  const type = scalingObj.rope_type ?? scalingObj.type ?? 'default';
  const field = params ? 'rope_parameters' : 'rope_scaling';
  if (type === 'default') return { theta };
  if (type === 'linear') {
    return { theta, scaling: { type: 'linear', factor: getNum(scalingObj, 'factor', `${where} ${field}`, NaN) } };
  }
  if (type === 'llama3') {
    const w = `${where} ${field}`;
    return {
      theta,
      scaling: {
        type: 'llama3',
        factor: getNum(scalingObj, 'factor', w, NaN),
        lowFreqFactor: getNum(scalingObj, 'low_freq_factor', w, 1),
        highFreqFactor: getNum(scalingObj, 'high_freq_factor', w, 4),
        originalMaxPositionEmbeddings: getInt(scalingObj, 'original_max_position_embeddings', w, 8192),
      },
    };
  }
  throw new AdaptorkitError(
    'UNSUPPORTED',
    `${where}: ${field} type ${JSON.stringify(type)} is not supported (supported: default, linear, llama3); ` +
      `remove ${field} to run with the unscaled rope if your sequences fit the original context`,
  );
}

/** HF LlamaConfig / MistralConfig / Qwen2Config JSON -> CausalLMConfig. */
export function causalLMConfigFromHF(c: HFConfig, where = 'config.json'): CausalLMConfig {
  const modelType = c.model_type;
  if (typeof modelType !== 'string' || !(SUPPORTED_LM_TYPES as readonly string[]).includes(modelType)) {
    throw new AdaptorkitError('UNSUPPORTED', `${where}: model_type ${JSON.stringify(modelType)} is not supported (supported: ${SUPPORTED_LM_TYPES.join(', ')})`);
  }
  const mt = modelType as CausalLMConfig['modelType'] & string;
  const hidden = getInt(c, 'hidden_size', where);
  const heads = getInt(c, 'num_attention_heads', where);
  const headDim = c.head_dim === undefined || c.head_dim === null ? hidden / heads : getInt(c, 'head_dim', where);
  if (!Number.isInteger(headDim)) invalid(where, 'head_dim', `given when hidden_size (${hidden}) is not divisible by num_attention_heads (${heads})`, c.head_dim);
  const prf = c.partial_rotary_factor;
  if (prf !== undefined && prf !== null && prf !== 1) {
    throw new AdaptorkitError('UNSUPPORTED', `${where}: partial_rotary_factor ${JSON.stringify(prf)} is not supported (only 1.0)`);
  }
  const attentionBiasField = getBool(c, 'attention_bias', where, false);
  if (mt !== 'qwen2' && attentionBiasField) {
    throw new AdaptorkitError('UNSUPPORTED', `${where}: attention_bias true (biases on q/k/v and o_proj) is not supported for ${mt}`);
  }
  const act = c.hidden_act ?? 'silu';
  if (typeof act !== 'string') invalid(where, 'hidden_act', 'a string', act);
  const rope = parseRope(c, where);
  return {
    modelType: mt,
    vocabSize: getInt(c, 'vocab_size', where),
    hiddenSize: hidden,
    intermediateSize: getInt(c, 'intermediate_size', where),
    numLayers: getInt(c, 'num_hidden_layers', where),
    numHeads: heads,
    numKVHeads: getInt(c, 'num_key_value_heads', where, heads),
    headDim,
    rmsNormEps: getNum(c, 'rms_norm_eps', where, 1e-6),
    ropeTheta: rope.theta,
    ...(rope.scaling ? { ropeScaling: rope.scaling } : {}),
    maxPositionEmbeddings: getInt(c, 'max_position_embeddings', where, 2048),
    tieWordEmbeddings: getBool(c, 'tie_word_embeddings', where, false),
    attentionBias: mt === 'qwen2',
    mlpBias: getBool(c, 'mlp_bias', where, false),
    hiddenAct: activationFromHF(act),
  };
}

/** Locate the vision tower's config in a CLIP / SigLIP config.json (top level or `vision_config`). */
export function visionConfigFromHF(c: HFConfig, where = 'config.json'): VisionConfig {
  const mt = c.model_type;
  let v: HFConfig;
  let kind: 'clip' | 'siglip';
  if (mt === 'clip_vision_model' || mt === 'siglip_vision_model') {
    v = c;
    kind = mt === 'clip_vision_model' ? 'clip' : 'siglip';
  } else if (mt === 'clip' || mt === 'siglip') {
    const vc = c.vision_config;
    if (typeof vc !== 'object' || vc === null || Array.isArray(vc)) invalid(where, 'vision_config', 'an object', vc);
    v = vc as HFConfig;
    kind = mt;
    where = `${where} vision_config`;
  } else {
    throw new AdaptorkitError(
      'UNSUPPORTED',
      `${where}: model_type ${JSON.stringify(mt)} is not a supported vision tower (supported: clip_vision_model, clip, siglip_vision_model, siglip)`,
    );
  }
  // HF defaults (CLIPVisionConfig / SiglipVisionConfig) for fields left out of config.json
  const clip = kind === 'clip';
  const act = v.hidden_act ?? (clip ? 'quick_gelu' : 'gelu_pytorch_tanh');
  if (typeof act !== 'string') invalid(where, 'hidden_act', 'a string', act);
  const channels = getInt(v, 'num_channels', where, 3);
  if (channels !== 3) throw new AdaptorkitError('UNSUPPORTED', `${where}: num_channels ${channels} is not supported (only 3)`);
  return {
    kind,
    imageSize: getInt(v, 'image_size', where, 224),
    patchSize: getInt(v, 'patch_size', where, clip ? 32 : 16),
    hiddenSize: getInt(v, 'hidden_size', where, 768),
    intermediateSize: getInt(v, 'intermediate_size', where, 3072),
    numLayers: getInt(v, 'num_hidden_layers', where, 12),
    numHeads: getInt(v, 'num_attention_heads', where, 12),
    layerNormEps: getNum(v, 'layer_norm_eps', where, clip ? 1e-5 : 1e-6),
    hiddenAct: activationFromHF(act),
    ...(kind === 'siglip' ? { useHead: getBool(v, 'vision_use_head', where, true) } : {}),
  };
}
