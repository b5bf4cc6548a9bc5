/** The plain value the trainer lists in its registry (no global registration, no side effects). */
import { mwaConfigSchema, type MwaConfig, type MwaConfigInput } from './config.js';
import { attachMwa, type MwaModel } from './attach.js';
import type { MultiwayTransformer } from '@adaptorkit/shapes-bases';

export interface MwaMethod {
  readonly name: 'mwa';
  readonly description: string;
  readonly configSchema: typeof mwaConfigSchema;
  attach(base: MultiwayTransformer, config?: MwaConfigInput | MwaConfig): MwaModel;
}

export const mwaMethod: MwaMethod = {
  name: 'mwa',
  description:
    'MultiWay-Adapter (Long et al., ICASSP 2024): per-modality New Knowledge Extractors beside the frozen FFN experts of a Multiway ' +
    'Transformer and a shared Alignment Enhancer after each FFN block; trained contrastively for image-text retrieval.',
  configSchema: mwaConfigSchema,
  attach: attachMwa,
};
