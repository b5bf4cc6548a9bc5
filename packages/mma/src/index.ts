/**
 * @adaptorkit/mma — MMA: Mixture-of-Modality Adaptation (LaVIN; Luo et al., "Cheap and Quick:
 * Efficient Vision-Language Instruction Tuning for Large Language Models", NeurIPS 2023,
 * arXiv 2305.15023): routed adapters in a frozen LLM and image encoder, a modality token, and
 * visual tokens through a bottleneck projection.
 */
export { mmaConfigSchema, visualDepthsSchema, parseMmaConfig, resolveVisualDepths } from './config.js';
export type { MmaConfig, MmaConfigInput } from './config.js';
export { MmaAdapter, GroupedLinear, MMA_CTX, routingState, bypassContext } from './adapter.js';
export type { MmaAdapterOptions, MmaRoutingState } from './adapter.js';
export { MmaModel, attachMma, routingWeights, modalityMask, TEXT_MODALITY, IMAGE_MODALITY } from './model.js';
export type {
  MmaBase,
  MmaForwardInput,
  MmaForwardOutput,
  MmaBatch,
  MmaAdapterSite,
  MmaLayerRouting,
  MmaRoutingReport,
  MmaPartCounts,
  MmaGenerateOptions,
  MmaGenerateResult,
} from './model.js';
export { planMma, mmaAdapterParameters, mmaParameterFormula } from './plan.js';
export type { MmaPlan } from './plan.js';
export { lavinPrompt, expandImagePlaceholder } from './sequence.js';
export type { LavinPromptOptions } from './sequence.js';
export { mmaMethod } from './method.js';
