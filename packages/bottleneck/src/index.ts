/**
 * @adaptorkit/bottleneck — bottleneck adapters (Houlsby et al., "Parameter-Efficient Transfer
 * Learning for NLP", ICML 2019, arXiv 1902.00751) on a frozen LLM, with a vision projector.
 */
export { bottleneckConfigSchema } from './config.js';
export type { BottleneckConfig, BottleneckConfigInput } from './config.js';
export { BottleneckAdapter } from './layer.js';
export { BottleneckModel, attachBottleneck } from './model.js';
export type { BottleneckBase, BottleneckGenerateOptions } from './model.js';
export { bottleneckMethod } from './method.js';
export { bottleneckParameterFormula } from './formula.js';
