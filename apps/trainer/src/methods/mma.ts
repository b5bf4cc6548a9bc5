/** MMA (LaVIN): routed adapters in every LLM and vision block, a modality token, visual tokens. */
import { attachMma, routingWeights } from '@adaptorkit/mma';
import type { MMBatch } from '../vl/batch.js';
import { idsTensor, imagesPerRow, labelsTensor, promptRows, withImages } from './common.js';
import type { MethodEntry } from './types.js';
import { tf } from '@adaptorkit/core';

export const mmaEntry: MethodEntry = {
  name: 'mma',
  description: 'MMA (LaVIN): mixture-of-modality adapters with a router, in every LLM and vision block.',
  build: (bases, cfg) => {
    const config = { imageTokenId: bases.placeholderIds.image, ...cfg };
    const model = attachMma({ lm: bases.lm, vision: bases.vision }, config);
    const modality = (b: MMBatch): number[] => Array.from({ length: b.B }, (_, r) => (b.inputs.some((i) => i.row === r && i.modality === 'image') ? 1 : 0));
    return {
      module: model,
      trainable: () => model.namedMmaParameters(),
      totalParameters: () => model.countParameters(),
      tokensPerInput: { image: model.numVisualTokens },
      loss: (b, training, maskSeed) => {
        if (maskSeed !== undefined) model.reseedMasks(maskSeed);
        return model.loss({ ids: idsTensor(b), labels: labelsTensor(b), images: imagesPerRow(b), modality: modality(b), ctx: { training } });
      },
      generate: (b, maxNewTokens, sampling) =>
        withImages(b, (images) => model.generate({ ...sampling, ids: promptRows(b), padId: bases.padId, images, modality: modality(b), maxNewTokens, eosId: bases.eosId }).tokens),
      textNll: (ids) => {
        const r = model.perplexity(ids, { padId: bases.padId });
        return { nll: r.nll * r.tokens, tokens: r.tokens };
      },
      generateText: (rows, maxNewTokens, sampling) => model.generate({ ...sampling, ids: rows, padId: bases.padId, modality: rows.map(() => 0), maxNewTokens, eosId: bases.eosId }).tokens,
      extras: ({ text, image }) => {
        // mean router weight of branch 0 per LLM layer, for text-only and image instructions
        const perLayer = (b: MMBatch): number[][] =>
          tf.tidy(() => {
            const r = routingWeights(model, { ids: idsTensor(b), images: imagesPerRow(b), modality: modality(b) });
            return r.lm.map((l) => {
              const w = l.weights as number[][];
              const n = w[0]?.length ?? 0;
              return Array.from({ length: n }, (_, k) => w.reduce((s, row) => s + (row[k] ?? 0), 0) / w.length);
            });
          });
        return { routing: { text: perLayer(text), image: perLayer(image) } };
      },
      describe: () => ({ method: 'mma', config }),
    };
  },
};
