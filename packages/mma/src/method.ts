/** The plain value the trainer lists in its registry (no global registration, no side effects). */
import { mmaConfigSchema, type MmaConfig, type MmaConfigInput } from './config.js';
import { attachMma, type MmaBase, type MmaModel } from './model.js';

export interface MmaMethod {
  readonly name: 'mma';
  readonly description: string;
  readonly configSchema: typeof mmaConfigSchema;
  attach(base: MmaBase, config?: MmaConfigInput | MmaConfig): MmaModel;
}

export const mmaMethod: MmaMethod = {
  name: 'mma',
  description:
    'MMA (LaVIN, Luo et al., NeurIPS 2023): routed mixture-of-modality adapters in every LLM and vision block, a modality token ' +
    'read by per-sample routers, and visual tokens from several vision depths through a bottleneck projection; the base stays frozen.',
  configSchema: mmaConfigSchema,
  attach: attachMma,
};
