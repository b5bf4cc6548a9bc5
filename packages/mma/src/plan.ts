/**
 * Shape-only planning: MMA's trainable-parameter counts on any LLaMA (+ ViT) config without
 * allocating a weight, and the closed-form count it must agree with.
 */
import { CausalLM, VisionEncoder, resolveCausalLMConfig, resolveVisionConfig, shapeOnly, type CausalLMConfig, type VisionConfig } from '@adaptorkit/core';
import { parseMmaConfig, type MmaConfig, type MmaConfigInput } from './config.js';
import { MmaModel, type MmaPartCounts } from './model.js';

export interface MmaPlan extends MmaPartCounts {
  /** Frozen LLM (+ vision encoder) parameters. */
  frozen: number;
  /** Adapters in the LLM / in the vision encoder. */
  numLmAdapters: number;
  numVisionAdapters: number;
  /** Visual tokens per image. */
  numVisualTokens: number;
}

/** Count MMA's trainable parameters for a base config (shape-only: milliseconds, even for 13B). */
export function planMma(base: { lm: CausalLMConfig; vision?: VisionConfig }, config: MmaConfigInput = {}): MmaPlan {
  const cfg = parseMmaConfig(config);
  return shapeOnly(() => {
    const m = new MmaModel({ lm: new CausalLM(base.lm), vision: base.vision ? new VisionEncoder(base.vision) : undefined }, cfg);
    const counts = m.countMmaParameters();
    return {
      ...counts,
      frozen: m.countParameters({ trainable: false }),
      numLmAdapters: m.sites.filter((s) => s.tower === 'lm').length,
      numVisionAdapters: m.sites.filter((s) => s.tower === 'vision').length,
      numVisualTokens: m.numVisualTokens,
    };
  });
}

/**
 * Parameters of one routed adapter of width d: r d + r (down) + N (d r / g + d) (grouped ups)
 * + (N > 1 ? N d + N : 0) (router). LaVIN (r 8, g 2, N 2): 20 d + 10.
 */
export function mmaAdapterParameters(d: number, c: Pick<MmaConfig, 'rank' | 'groups' | 'branches'>): number {
  const { rank: r, groups: g, branches: N } = c;
  return r * d + r + N * ((d * r) / g + d) + (N > 1 ? N * d + N : 0);
}

/**
 * The closed form of the whole count:
 *   L_lm * slots * adapter(d) + [vision adapters] L_v * adapter(d_v)
 *   + [vision] (d_v k + k + k d + d) + 2 d
 * (slots = 2 for placement 'both', else 1; k = projectorHidden).
 */
export function mmaParameterFormula(base: { lm: CausalLMConfig; vision?: VisionConfig }, config: MmaConfigInput = {}): number {
  const c = parseMmaConfig(config);
  const lm = resolveCausalLMConfig(base.lm);
  const d = lm.hiddenSize;
  const slots = c.placement === 'both' ? 2 : 1;
  let n = lm.numLayers * slots * mmaAdapterParameters(d, c) + 2 * d;
  if (base.vision) {
    const v = resolveVisionConfig(base.vision);
    const dv = v.hiddenSize;
    const k = c.projectorHidden;
    if (c.visionAdapters) n += v.numLayers * mmaAdapterParameters(dv, c);
    n += dv * k + k + k * d + d;
    const perCell = c.patchTokens?.perCell ?? 1;
    if (c.patchTokens && perCell > 1) n += dv * k + k + k * perCell * d + perCell * d; // the patch tokens' own projection
  }
  return n;
}
