/** IAA as an AdaptorMethod: the plain value the trainer lists in its registry (no side effects). */
import { idsTensor, imagesPerRow, labelsTensor, lastPosition, tf, parseMethodConfig, promptRows, withAdapterFiles, withImages, type GenerativeMethod, type GenerativeModel } from '@adaptorkit/core';
import { frozenBaselineConfig } from './baseline.js';
import { iaaConfigSchema, type IaaConfigInput } from './config.js';
import { attachIaa } from './model.js';

export const iaaMethod: GenerativeMethod<typeof iaaConfigSchema> = {
  name: 'iaa',
  kind: 'generative',
  paper: { title: 'Inner-Adaptor Architecture: Towards Unified Multimodal Understanding and Generation', authors: 'Wang, Xie, Leng, Yin', venue: 'AAAI 2025', url: 'https://arxiv.org/abs/2408.12902' },
  description: 'IAA: insertion layers inside the frozen LLM (multimodal workflow) beside the untouched text workflow.',
  configSchema: iaaConfigSchema,
  attach: (base, raw): GenerativeModel => {
    const config = { imageTokenId: base.placeholderIds.image, ...(raw as IaaConfigInput) };
    const model = attachIaa({ lm: base.lm, vision: base.vision }, parseMethodConfig(iaaConfigSchema, config, 'method.config'));
    return withAdapterFiles({
      module: model,
      trainable: () => model.namedIaaParameters('mm').map(([n, p]) => [`iaa.${n}`, p] as [string, typeof p]),
      totalParameters: () => model.countParameters(),
      tokensPerInput: { image: model.imageTokens },
      loss: (b) => model.loss({ ids: idsTensor(b), labels: labelsTensor(b), task: 'mm', images: imagesPerRow(b) }),
      generate: (b, maxNewTokens, sampling) =>
        withImages(b, (images) => model.generate({ ...sampling, ids: promptRows(b), padId: base.padId, task: 'mm', images, maxNewTokens, eosId: base.eosId })),
      nextTokenLogits: (b) => withImages(b, (images) => tf.tidy(() => lastPosition(model.forward({ ids: idsTensor(b), task: 'mm', images }).logits!))),
      textNll: (ids) => {
        const r = model.perplexity(ids, { task: 'text', padId: base.padId });
        return { nll: r.nll * r.tokens, tokens: r.tokens };
      },
      generateText: (rows, maxNewTokens, sampling) => model.generate({ ...sampling, ids: rows, padId: base.padId, task: 'text', maxNewTokens, eosId: base.eosId }),
      describe: () => ({ method: 'iaa', config }),
    });
  },
  baselines: {
    frozen: (config) => frozenBaselineConfig(config as IaaConfigInput),
    full: (config) => ({ ...frozenBaselineConfig(config as IaaConfigInput), train: { insertionLayers: false, embedding: true, norm: true, head: true, projector: true } }),
  },
};
