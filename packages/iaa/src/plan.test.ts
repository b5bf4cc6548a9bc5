import { describe, expect, it } from 'vitest';
import type { CausalLMConfig, VisionConfig } from '@adaptorkit/core';
import { iaaParameterFormula, planIaa } from './index.js';

const LLAMA3_8B: CausalLMConfig = {
  vocabSize: 128256, hiddenSize: 4096, intermediateSize: 14336, numLayers: 32, numHeads: 32, numKVHeads: 8,
  rmsNormEps: 1e-5, ropeTheta: 500000, maxPositionEmbeddings: 8192,
};
const CLIP_L14_336: VisionConfig = { kind: 'clip', imageSize: 336, patchSize: 14, hiddenSize: 1024, intermediateSize: 4096, numLayers: 24, numHeads: 16 };

describe('shape-only planning', () => {
  it('IAA-14 on Llama-3-8B: exactly 4,104,245,248 trainable parameters before the projector (spec arithmetic)', () => {
    const plan = planIaa({ lm: LLAMA3_8B, vision: CLIP_L14_336 }, { depths: 'iaa14' });
    expect(plan.depths).toEqual([0, 1, 5, 6, 10, 11, 15, 16, 20, 21, 25, 26, 30, 31]);
    expect(plan.trainableBeforeProjector).toBe(4_104_245_248);
    const mm = plan.perTask.mm!;
    expect(mm.insertionLayers).toBe(14 * 218_112_000);
    expect(mm.embedding).toBe(525_336_576);
    expect(mm.head).toBe(525_336_576);
    expect(mm.norm).toBe(4096);
    // mlp2x_gelu 1024 -> 4096 -> 4096, ~21.0M
    expect(mm.projector).toBe(1024 * 4096 + 4096 + 4096 * 4096 + 4096);
    expect(plan.trainable).toBe(4_104_245_248 + mm.projector);
    expect(iaaParameterFormula(LLAMA3_8B, 14)).toBe(4_104_245_248);
    expect(plan.multimodalBlocks).toBe(46);
    // frozen: the 8B LLM (8,030,261,248) + the CLIP tower
    expect(plan.frozen).toBeGreaterThan(8_030_261_248);
  });

  it('counts follow the config: IAA-8, two task sets, frozen parts', () => {
    const one = planIaa({ lm: LLAMA3_8B, vision: CLIP_L14_336 }, { depths: 'iaa8' });
    expect(one.trainableBeforeProjector).toBe(iaaParameterFormula(LLAMA3_8B, 8));
    const two = planIaa({ lm: LLAMA3_8B, vision: CLIP_L14_336 }, { tasks: ['mm', 'grounding'] });
    expect(two.trainableBeforeProjector).toBe(2 * 4_104_245_248);
    const layersOnly = planIaa({ lm: LLAMA3_8B, vision: CLIP_L14_336 }, { train: { embedding: false, head: false, norm: false, projector: false } });
    expect(layersOnly.trainable).toBe(14 * 218_112_000);
  });
});
