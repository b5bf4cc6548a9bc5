/** Config presets for the comparisons the paper makes, run through the same API. */
import type { IaaConfigInput } from './config.js';

/**
 * The frozen-LLM baseline that trains only the projector (LLaVA stage 1 with a frozen LLM): no
 * insertion layers, embedding/norm/head frozen copies of the base. Its multimodal workflow is the
 * base LLM reading projected image features.
 */
export function frozenBaselineConfig(overrides: IaaConfigInput = {}): IaaConfigInput {
  return {
    ...overrides,
    depths: 'none',
    train: { insertionLayers: false, embedding: false, norm: false, head: false, projector: true },
  };
}
