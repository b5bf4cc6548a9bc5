import { describe, expect, it } from 'vitest';
import type { CausalLMConfig, VisionConfig } from '@adaptorkit/core';
import { mmaAdapterParameters, mmaParameterFormula, planMma } from './index.js';

// LLaMA-1 7B / 13B and CLIP ViT-L/14 (224 px), as LaVIN uses them.
const LLAMA_7B: CausalLMConfig = { vocabSize: 32000, hiddenSize: 4096, intermediateSize: 11008, numLayers: 32, numHeads: 32 };
const LLAMA_13B: CausalLMConfig = { vocabSize: 32000, hiddenSize: 5120, intermediateSize: 13824, numLayers: 40, numHeads: 40 };
const VIT_L14: VisionConfig = { kind: 'clip', imageSize: 224, patchSize: 14, hiddenSize: 1024, intermediateSize: 4096, numLayers: 24, numHeads: 16 };

describe('shape-only trainable counts (spec table)', () => {
  it('LaVIN-7B: 3,781,296 trainable parameters, part by part', () => {
    const p = planMma({ lm: LLAMA_7B, vision: VIT_L14 }, { temperature: 10 });
    expect(p.lmAdapters).toBe(2_621_760);
    expect(p.lmAdapters).toBe(81_930 * 32);
    expect(p.visionAdapters).toBe(491_760);
    expect(p.projector).toBe(659_584);
    expect(p.modalityEmbedding).toBe(8_192);
    expect(p.total).toBe(3_781_296);
    expect(p.numLmAdapters).toBe(32);
    expect(p.numVisionAdapters).toBe(24);
    expect(p.numVisualTokens).toBe(6);
    expect(mmaParameterFormula({ lm: LLAMA_7B, vision: VIT_L14 })).toBe(3_781_296);
    // the frozen base is untouched by the count: LLaMA-7B is 6,738,415,616 parameters
    expect(p.frozen).toBeGreaterThan(6_738_415_616);
  });

  it('LaVIN-13B: 5,390,080 trainable parameters', () => {
    const p = planMma({ lm: LLAMA_13B, vision: VIT_L14 }, { temperature: 5 });
    expect(p.lmAdapters).toBe(102_410 * 40);
    expect(p.visionAdapters).toBe(491_760);
    expect(p.projector).toBe(791_680);
    expect(p.modalityEmbedding).toBe(10_240);
    expect(p.total).toBe(5_390_080);
  });

  it('one routed adapter is 20 d + 10 with the paper defaults; counts follow the config', () => {
    expect(mmaAdapterParameters(4096, { rank: 8, groups: 2, branches: 2 })).toBe(20 * 4096 + 10);
    for (const cfg of [
      { branches: 1 },
      { branches: 4, rank: 16, groups: 4 },
      { placement: 'both' as const },
      { visionAdapters: false, projectorHidden: 64 },
    ]) {
      const p = planMma({ lm: LLAMA_7B, vision: VIT_L14 }, cfg);
      expect(p.total).toBe(mmaParameterFormula({ lm: LLAMA_7B, vision: VIT_L14 }, cfg));
    }
    // router off: no router parameters, one up-projection
    expect(planMma({ lm: LLAMA_7B, vision: VIT_L14 }, { branches: 1 }).lmAdapters).toBe(32 * (8 * 4096 + 8 + 4 * 4096 + 4096));
    expect(planMma({ lm: LLAMA_7B }).total).toBe(32 * 81_930 + 8_192);
  });
});
