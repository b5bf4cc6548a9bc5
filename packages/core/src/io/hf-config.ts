/**
 * Hugging Face config.json -> adaptorkit model configs. Causal LMs: see hf-lm-config.ts. Vision:
 * CLIPVisionModel / CLIPModel (vision part), SigLIP vision / SiglipModel (vision part), with HF's
 * defaults for fields a config leaves out.
 */
import { AdaptorkitError } from '../errors.js';
import { activationFromHF } from '../nn/layers.js';
import type { VisionConfig } from '../models/vision.js';
import { getBool, getInt, getNum, invalid, type HFConfig } from './hf-lm-config.js';

export { causalLMConfigFromHF, gemmaEmbedScale, SUPPORTED_LM_TYPES } from './hf-lm-config.js';
export type { HFConfig } from './hf-lm-config.js';

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
