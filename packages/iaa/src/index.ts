/**
 * @adaptorkit/iaa — IAA: Inner-Adaptor Architecture (Wang, Xie, Leng, Yin, AAAI 2025,
 * arXiv 2408.12902): a frozen LLM with trainable insertion layers for its multimodal workflow.
 */
export { iaaConfigSchema, depthsSchema, trainPartsSchema, parseIaaConfig, resolveDepths, projectorDepth, TEXT_TASK } from './config.js';
export type { IaaConfig, IaaConfigInput, DepthSpec } from './config.js';
export { IaaTaskSet } from './task-set.js';
export type { TaskSetShape } from './task-set.js';
export { IaaModel, IaaCache, attachIaa } from './model.js';
export type { IaaBase, IaaForwardInput, IaaForwardOutput, IaaBatch, IaaGenerateOptions, IaaPartCounts } from './model.js';
export { answerLabels } from './labels.js';
export type { AnswerLabelOptions } from './labels.js';
export { planIaa, iaaParameterFormula } from './plan.js';
export type { IaaPlan } from './plan.js';
export { frozenBaselineConfig } from './baseline.js';
export { iaaMethod } from './method.js';
