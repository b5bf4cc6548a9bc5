/**
 * `plan` on real published config.json files (fixtures/published-configs, see SOURCES.md there):
 * the parameter count must equal the published figure exactly. Each case names its source.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../index.js';
import { plan } from './plan.js';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/published-configs');

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

const CASES: Array<{ folder: string; family: string; expected: number; source: string }> = [
  { folder: 'Qwen2.5-7B-Instruct', family: 'qwen2', expected: 7_615_616_512, source: 'Qwen/Qwen2.5-7B-Instruct model.safetensors.index.json total_size 15231233024 (bf16) / 2' },
  { folder: 'Qwen2.5-3B-Instruct', family: 'qwen2 (tied)', expected: 3_085_938_688, source: 'Qwen/Qwen2.5-3B-Instruct model.safetensors.index.json total_size 6171877376 (bf16) / 2' },
  { folder: 'Qwen3-4B', family: 'qwen3 (tied)', expected: 4_022_468_096, source: 'Qwen/Qwen3-4B model.safetensors.index.json total_size 8044936192 (bf16) / 2; KerasHub qwen3_4b_en params' },
  { folder: 'Qwen3-8B', family: 'qwen3', expected: 8_190_735_360, source: 'Qwen/Qwen3-8B model.safetensors.index.json total_size 16381470720 (bf16) / 2; KerasHub qwen3_8b_en params' },
  { folder: 'Mistral-7B-v0.1', family: 'mistral (sliding window)', expected: 7_241_732_096, source: 'KerasHub mistral_7b_en params (keras_hub/src/models/mistral/mistral_presets.py)' },
  { folder: 'Mistral-7B-Instruct-v0.2', family: 'mistral', expected: 7_241_732_096, source: 'mistralai/Mistral-7B-Instruct-v0.2 model.safetensors.index.json total_size 14483464192 (bf16) / 2' },
  { folder: 'gemma-7b', family: 'gemma', expected: 8_537_680_896, source: 'KerasHub gemma_7b_en params (keras_hub/src/models/gemma/gemma_presets.py)' },
  { folder: 'gemma-2-9b', family: 'gemma2', expected: 9_241_705_984, source: 'KerasHub gemma2_9b_en params (keras_hub/src/models/gemma/gemma_presets.py)' },
  { folder: 'gemma-3-1b-it', family: 'gemma3_text', expected: 999_885_952, source: 'KerasHub gemma3_instruct_1b params (keras_hub/src/models/gemma3/gemma3_presets.py)' },
  { folder: 'Phi-3-mini-4k-instruct', family: 'phi3', expected: 3_821_079_552, source: 'KerasHub phi3_mini_4k_instruct_en params (keras_hub/src/models/phi3/phi3_presets.py)' },
  {
    folder: 'siglip-so400m-patch14-384',
    family: 'SigLIP vision tower, 384 px / 14 px patches = 27 x 27',
    expected: 428_225_600,
    source: 'no official figure for the vision tower alone: the SiglipVisionModel count independent public projects report for this checkpoint (see SOURCES.md)',
  },
];

describe('plan gives the published parameter count of real configs', () => {
  for (const c of CASES) {
    it(`${c.folder} (${c.family}): ${c.expected.toLocaleString('en-US')} [source: ${c.source}]`, () => {
      const file = path.join(DIR, c.folder, 'config.json');
      const p = plan(JSON.parse(readFileSync(file, 'utf8')), { source: file });
      expect(p.parameters).toBe(c.expected);
    });
  }

  it('SigLIP so400m-patch14-384 has 729 = 27 x 27 patch tokens', () => {
    const file = path.join(DIR, 'siglip-so400m-patch14-384', 'config.json');
    expect(plan(JSON.parse(readFileSync(file, 'utf8'))).seqLen).toBe(729);
  });
});
