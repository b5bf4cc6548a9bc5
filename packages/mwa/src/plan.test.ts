import { describe, expect, it } from 'vitest';
import { shapeOnly } from '@adaptorkit/core';
import { BEIT3_BASE_CONFIG, BEIT3_LARGE_CONFIG, MultiwayTransformer } from '@adaptorkit/shapes-bases';
import { TINY } from '@adaptorkit/shapes-bases/testing';
import { baseParameterFormula, mwaParameterFormula, planMwa } from './plan.js';

// Shape-only planning: nothing is allocated, so BEiT-3 Large (~675M) counts in milliseconds.
describe('MWA trainable-parameter overhead on BEiT-3 shapes (shape-only)', () => {
  it('defaults land in the paper\'s 2-3% on BEiT-3 Large', () => {
    const p = planMwa(BEIT3_LARGE_CONFIG);
    const f = mwaParameterFormula(BEIT3_LARGE_CONFIG);
    expect(p).toMatchObject({ base: f.base, extractors: f.extractors, enhancers: f.enhancers, trainable: f.trainable });
    expect(f.enhancerHidden).toBe(256);
    // extractors: 24 layers x 2 modalities x (2*1024*64 + 64 + 1024)
    expect(p.extractors).toBe(24 * 2 * (2 * 1024 * 64 + 64 + 1024));
    // enhancers: 24 x (2*1024*256 + 256 + 1024 + 2*256)
    expect(p.enhancers).toBe(24 * (2 * 1024 * 256 + 256 + 1024 + 2 * 256));
    expect(p.percentOfBase).toBeGreaterThanOrEqual(2);
    expect(p.percentOfBase).toBeLessThanOrEqual(3);
    expect(p.percentOfTotal).toBeGreaterThanOrEqual(2);
    expect(p.percentOfTotal).toBeLessThanOrEqual(3);
    console.log(`[mwa plan] BEiT-3 Large, defaults (enhancer d/4 = 256): base ${p.base}, extractors ${p.extractors}, enhancers ${p.enhancers}, trainable ${p.trainable} = ${p.percentOfBase.toFixed(3)}% of base (${p.percentOfTotal.toFixed(3)}% of total)`);
  });

  it("reproduces the spec's released-shape numbers: extractors ~1.07% / 0.94%, full enhancer 25.5% / 29.9%", () => {
    // the released checkpoints have 2 extra vision position rows (fairseq padding offset)
    const released = (cfg: typeof BEIT3_BASE_CONFIG, d: number, mwa: Parameters<typeof planMwa>[1]) => {
      const p = planMwa(cfg, mwa);
      return { ...p, base: p.base + 2 * d };
    };
    const baseX = released(BEIT3_BASE_CONFIG, 768, { enhancer: { enabled: false } });
    const largeX = released(BEIT3_LARGE_CONFIG, 1024, { enhancer: { enabled: false } });
    expect(baseX.extractors).toBe(2_379_264); // "2.38M"
    expect(largeX.extractors).toBe(6_343_680); // "6.34M"
    expect(((100 * baseX.extractors) / baseX.base).toFixed(2)).toBe('1.07');
    expect(((100 * largeX.extractors) / largeX.base).toFixed(2)).toBe('0.94');
    const baseFull = released(BEIT3_BASE_CONFIG, 768, { enhancer: { hidden: 'full' } });
    const largeFull = released(BEIT3_LARGE_CONFIG, 1024, { enhancer: { hidden: 'full' } });
    expect(((100 * baseFull.enhancers) / baseFull.base).toFixed(1)).toBe('25.5');
    expect(((100 * largeFull.enhancers) / largeFull.base).toFixed(1)).toBe('29.9');
    const largeFullPlan = planMwa(BEIT3_LARGE_CONFIG, { enhancer: { hidden: 'full' } });
    expect(largeFullPlan.percentOfBase).toBeGreaterThan(25);
    console.log(`[mwa plan] BEiT-3 Large, enhancer 'full' (4096): base ${largeFullPlan.base}, extractors ${largeFullPlan.extractors}, enhancers ${largeFullPlan.enhancers}, trainable ${largeFullPlan.trainable} = ${largeFullPlan.percentOfBase.toFixed(3)}% of base (${largeFullPlan.percentOfTotal.toFixed(3)}% of total)`);
    const baseDefault = planMwa(BEIT3_BASE_CONFIG);
    console.log(`[mwa plan] BEiT-3 Base, defaults (enhancer 192): base ${baseDefault.base}, trainable ${baseDefault.trainable} = ${baseDefault.percentOfBase.toFixed(3)}% of base; full enhancer: trainable ${baseFull.trainable}`);
  });
});

describe('closed forms against built models', () => {
  it('the closed-form count matches the built model in several shapes', () => {
    for (const o of [{}, { sharedAttention: true }, { attentionSubLN: false, vlExpertLayers: 1 }, { embedDim: 16, ffnDim: 48 }]) {
      const c = { ...TINY, ...o };
      const built = shapeOnly(() => new MultiwayTransformer(c).countParameters());
      expect(baseParameterFormula(c)).toBe(built);
      const f = mwaParameterFormula(c, { extractor: { bottleneck: 8, layerNorm: 'in', scale: 'learnable' }, enhancer: { layers: [1] } });
      const p = planMwa(c, { extractor: { bottleneck: 8, layerNorm: 'in', scale: 'learnable' }, enhancer: { layers: [1] } });
      expect(p.extractors).toBe(f.extractors);
      expect(p.enhancers).toBe(f.enhancers);
      expect(p.base).toBe(f.base);
    }
  });

});
