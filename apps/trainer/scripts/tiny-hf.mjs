#!/usr/bin/env node
/**
 * Tiny stand-ins for your own folders (README: "Your own model and data"), nothing downloaded:
 *   node apps/trainer/scripts/tiny-hf.mjs [models-dir] [data-dir] [--family qwen3|gemma3|llama]
 * writes <models-dir>/llm (an HF causal LM: random weights, the family's real tokenizer and chat
 * template), <models-dir>/vision (a SigLIP tower) and <data-dir>/train.json + images/ (LLaVA format).
 * Defaults: my-models my-data --family qwen3. Needs `npm run build` first.
 */
import { writeTinyHF } from '@adaptorkit/trainer';

const args = process.argv.slice(2);
const at = args.indexOf('--family');
const family = at >= 0 ? args.splice(at, 2)[1] : 'qwen3';
const [models = 'my-models', data = 'my-data'] = args;
try {
  const r = await writeTinyHF(models, data, family);
  console.log(`wrote ${r.lm} (${family}), ${r.vision} (siglip), ${r.json}${r.imageTokenId !== undefined ? `; set data.llava.imageTokenId: ${r.imageTokenId}` : ''}`);
} catch (e) {
  console.error(`tiny-hf: ${e.message}`);
  process.exit(2);
}
