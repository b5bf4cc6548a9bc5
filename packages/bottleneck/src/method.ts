/** Bottleneck adapters as an AdaptorMethod: the plain value the trainer lists in its registry (no side effects). */
import { idsTensor, imagesPerRow, labelsTensor, lastPosition, tf, parseMethodConfig, promptRows, withAdapterFiles, withImages, type GenerativeMethod, type GenerativeModel } from '@adaptorkit/core';
import { bottleneckConfigSchema, type BottleneckConfigInput } from './config.js';
import { attachBottleneck } from './model.js';

export const bottleneckMethod: GenerativeMethod<typeof bottleneckConfigSchema> = {
  name: 'bottleneck',
  kind: 'generative',
  paper: { title: 'Parameter-Efficient Transfer Learning for NLP', authors: 'Houlsby, Giurgiu, Jastrzebski, Morrone, de Laroussilhe, Gesmundo, Attariyan, Gelly', venue: 'ICML 2019', url: 'https://arxiv.org/abs/1902.00751' },
  description: 'Bottleneck adapters (Houlsby): down-projection, nonlinearity, up-projection and residual after the attention and the FFN of every LLM layer, + a vision projector.',
  configSchema: bottleneckConfigSchema,
  attach: (base, raw): GenerativeModel => {
    const given = { imageTokenId: base.placeholderIds.image, ...(raw as BottleneckConfigInput) };
    const config = parseMethodConfig(bottleneckConfigSchema, given, 'method.config');
    const model = attachBottleneck({ lm: base.lm, vision: base.vision }, config);
    return withAdapterFiles({
      module: model,
      trainable: () => model.namedTrainableParameters(),
      totalParameters: () => model.countParameters(),
      tokensPerInput: { image: model.imageTokens },
      loss: (b, training) => model.loss(idsTensor(b), labelsTensor(b), imagesPerRow(b), { training }),
      generate: (b, maxNewTokens, sampling) => withImages(b, (images) => model.generate({ ...sampling, ids: promptRows(b), images, maxNewTokens, padId: base.padId, eosId: base.eosId })),
      nextTokenLogits: (b) => withImages(b, (images) => tf.tidy(() => lastPosition(model.forward(idsTensor(b), images)))),
      textNll: (ids) => {
        const r = model.perplexity(ids, base.padId);
        return { nll: r.nll * r.tokens, tokens: r.tokens };
      },
      generateText: (rows, maxNewTokens, sampling) => model.generate({ ...sampling, ids: rows, maxNewTokens, padId: base.padId, eosId: base.eosId }),
      describe: () => ({ method: 'bottleneck', config }),
    });
  },
};
