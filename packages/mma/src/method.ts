/** MMA (LaVIN) as an AdaptorMethod: the plain value the trainer lists in its registry (no side effects). */
import { idsTensor, imageRows, imagesPerRow, labelsTensor, lastPosition, parseMethodConfig, promptRows, tf, withAdapterFiles, withImages, type GenerativeMethod, type GenerativeModel, type MethodBatch } from '@adaptorkit/core';
import { mmaConfigSchema, type MmaConfigInput } from './config.js';
import { attachMma, routingWeights } from './model.js';

export const mmaMethod: GenerativeMethod<typeof mmaConfigSchema> = {
  name: 'mma',
  kind: 'generative',
  paper: { title: 'Cheap and Quick: Efficient Vision-Language Instruction Tuning for Large Language Models (LaVIN)', authors: 'Luo, Zhou, Zhang, Sun, Ji', venue: 'NeurIPS 2023', url: 'https://arxiv.org/abs/2305.15023' },
  description: 'MMA (LaVIN): mixture-of-modality adapters with a router, in every LLM and vision block.',
  configSchema: mmaConfigSchema,
  attach: (base, raw): GenerativeModel => {
    const config = { imageTokenId: base.placeholderIds.image, ...(raw as MmaConfigInput) };
    const model = attachMma({ lm: base.lm, vision: base.vision }, parseMethodConfig(mmaConfigSchema, config, 'method.config'));
    return withAdapterFiles({
      module: model,
      trainable: () => model.namedMmaParameters(),
      totalParameters: () => model.countParameters(),
      tokensPerInput: { image: model.numVisualTokens },
      loss: (b, training, maskSeed) => {
        if (maskSeed !== undefined) model.reseedMasks(maskSeed);
        return model.loss({ ids: idsTensor(b), labels: labelsTensor(b), images: imagesPerRow(b), modality: imageRows(b), ctx: { training } });
      },
      generate: (b, maxNewTokens, sampling) =>
        withImages(b, (images) => model.generate({ ...sampling, ids: promptRows(b), padId: base.padId, images, modality: imageRows(b), maxNewTokens, eosId: base.eosId }).tokens),
      nextTokenLogits: (b) => withImages(b, (images) => tf.tidy(() => lastPosition(model.forward({ ids: idsTensor(b), images, modality: imageRows(b) }).logits!))),
      textNll: (ids) => {
        const r = model.perplexity(ids, { padId: base.padId });
        return { nll: r.nll * r.tokens, tokens: r.tokens };
      },
      generateText: (rows, maxNewTokens, sampling) => model.generate({ ...sampling, ids: rows, padId: base.padId, modality: rows.map(() => 0), maxNewTokens, eosId: base.eosId }).tokens,
      extras: ({ text, image }) => {
        // mean router weight of each branch per LLM layer, for text-only and image instructions
        const perLayer = (b: MethodBatch): number[][] =>
          tf.tidy(() => {
            const r = routingWeights(model, { ids: idsTensor(b), images: imagesPerRow(b), modality: imageRows(b) });
            return r.lm.map((l) => {
              const w = l.weights as number[][];
              const n = w[0]?.length ?? 0;
              return Array.from({ length: n }, (_, k) => w.reduce((s, row) => s + (row[k] ?? 0), 0) / w.length);
            });
          });
        return { routing: { text: perLayer(text), image: perLayer(image) } };
      },
      describe: () => ({ method: 'mma', config }),
    });
  },
};
