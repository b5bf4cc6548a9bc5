/** The plain value the trainer lists in its registry (no global registration, no side effects). */
import { iaaConfigSchema, type IaaConfig, type IaaConfigInput } from './config.js';
import { attachIaa, type IaaBase, type IaaModel } from './model.js';

export interface IaaMethod {
  readonly name: 'iaa';
  readonly description: string;
  readonly configSchema: typeof iaaConfigSchema;
  attach(base: IaaBase, config?: IaaConfigInput | IaaConfig): IaaModel;
}

export const iaaMethod: IaaMethod = {
  name: 'iaa',
  description:
    'IAA (Wang et al., AAAI 2025): trainable insertion layers after chosen depths of a frozen LLM, with its own embedding copy, ' +
    'final norm and LM head per task set; the text-only workflow stays the untouched base model.',
  configSchema: iaaConfigSchema,
  attach: attachIaa,
};
