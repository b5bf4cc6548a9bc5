/**
 * The shipped ShapesWorld bases live in HF layout (config.json + model.safetensors), so they load
 * with the same `loadCausalLM` / `loadVisionEncoder` a user's own checkpoints go through.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdaptorkitError, bf16Supported, loadCausalLM, loadVisionEncoder, saveWeights, tf, writeTextAtomic, type WeightsDtype } from '@adaptorkit/core';
import type { CausalLM, VisionEncoder } from '@adaptorkit/core';

const writeJsonAtomic = (file: string, value: unknown): Promise<void> => writeTextAtomic(file, `${JSON.stringify(value, null, 2)}\n`);

/**
 * The base sets shipped in this package's models/ folder: `shapesworld` (what the examples and the demo freeze)
 * and `shapesworld-sceneqa` (an LM that also answers VQA questions from a scene's caption, and a vision
 * encoder whose patch tokens carry each grid cell's contents; packages/mma/README.md builds them).
 */
export const SHIPPED_BASES = ['shapesworld', 'shapesworld-sceneqa'] as const;
export type ShippedBase = (typeof SHIPPED_BASES)[number];

export function isShippedBase(spec: string): spec is ShippedBase {
  return (SHIPPED_BASES as readonly string[]).includes(spec);
}

/** packages/shapes-bases/models/<name>, found from this file (src/ in dev, dist/ when built: both one level down). */
export function shippedBasesDir(name: ShippedBase = 'shapesworld'): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.resolve(here, '..', 'models', name);
}

export async function saveLM(dir: string, lm: CausalLM, extra: Record<string, unknown> = {}): Promise<void> {
  const c = lm.config;
  await writeJsonAtomic(path.join(dir, 'config.json'), {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKVHeads,
    head_dim: c.headDim,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    max_position_embeddings: c.maxPositionEmbeddings,
    tie_word_embeddings: c.tieWordEmbeddings,
    hidden_act: c.hiddenAct,
    torch_dtype: 'float32',
    ...extra,
  });
  await saveWeights(path.join(dir, 'model.safetensors'), lm);
}

export async function saveVision(dir: string, vision: VisionEncoder, extra: Record<string, unknown> = {}): Promise<void> {
  const c = vision.config;
  await writeJsonAtomic(path.join(dir, 'config.json'), {
    architectures: ['CLIPVisionModel'],
    model_type: 'clip_vision_model',
    image_size: c.imageSize,
    patch_size: c.patchSize,
    num_channels: 3,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    layer_norm_eps: c.layerNormEps,
    hidden_act: c.hiddenAct,
    torch_dtype: 'float32',
    ...extra,
  });
  await saveWeights(path.join(dir, 'model.safetensors'), vision);
}

/** Resolve a shipped base name ('shapesworld', 'shapesworld-sceneqa') to its folder, anything else is a user path. */
export function basePath(spec: string, part: 'lm' | 'vision' | 'multiway' | (string & {})): string {
  return isShippedBase(spec) ? path.join(shippedBasesDir(spec), part) : path.resolve(spec);
}

/** The folder of base.lm / base.vision, checked to be a model folder; a missing one names the config key. */
export async function baseFolder(spec: string, part: 'lm' | 'vision'): Promise<string> {
  const dir = basePath(spec, part);
  const key = `base.${part}`;
  const what = part === 'lm' ? 'an HF causal LM folder (config.json, model.safetensors, tokenizer.json)' : 'an HF CLIP/SigLIP folder (config.json, model.safetensors)';
  const st = await fs.stat(dir).catch(() => undefined);
  if (!st) throw new AdaptorkitError('INVALID_CONFIG', `${key}: ${dir} does not exist; set ${key} to ${what} or a shipped base (${SHIPPED_BASES.join(', ')})`);
  if (!st.isDirectory()) throw new AdaptorkitError('INVALID_CONFIG', `${key}: ${dir} is not a folder; set ${key} to ${what}`);
  if (!(await fs.stat(path.join(dir, 'config.json')).catch(() => undefined))) throw new AdaptorkitError('INVALID_CONFIG', `${key}: ${dir} has no config.json; set ${key} to ${what}`);
  return dir;
}

export async function loadBases(lmSpec: string, visionSpec: string, opts: { weightsDtype?: WeightsDtype } = {}): Promise<{ lm: CausalLM; vision: VisionEncoder }> {
  if (opts.weightsDtype === 'bf16' && !bf16Supported()) {
    throw new AdaptorkitError('INVALID_CONFIG', `base.weightsDtype: bf16 needs the native backend (the active one, '${tf.getBackend()}', has no bf16 kernels); set backend: native, or base.weightsDtype: f32`);
  }
  const lmDir = await baseFolder(lmSpec, 'lm');
  const visionDir = await baseFolder(visionSpec, 'vision');
  const lm = await loadCausalLM(lmDir, { weightsDtype: opts.weightsDtype });
  const vision = await loadVisionEncoder(visionDir);
  return { lm, vision };
}
