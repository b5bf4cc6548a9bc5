/** MWA as an AdaptorMethod (kind retrieval): the plain value the trainer lists in its registry (no side effects). */
import { z } from 'zod';
import { parseMethodConfig, withAdapterFiles, type BaseLocator, type RetrievalEncoder, type RetrievalMethod, type RetrievalModel } from '@adaptorkit/core';
import type { RetrievalPair, ShapesWorld } from '@adaptorkit/data';
import { contrastiveLoss, encodeImages, encodeTexts, loadMultiway, shapesWorldRetrievalBatch, type MultiwayTransformer } from '@adaptorkit/shapes-bases';
import { mwaConfigSchema } from './config.js';
import { attachMwa } from './attach.js';

/** MWA's config plus where its base is and the full fine-tune baseline switch. */
export const mwaMethodConfigSchema = mwaConfigSchema.extend({
  base: z.string().default('shapesworld').describe("'shapesworld' (the shipped ShapesWorld Multiway base) or a folder written by saveMultiway."),
  full: z
    .boolean()
    .default(false)
    .describe('Full fine-tune of the base instead of MWA: every base parameter trains (heads and temperature included), no extractors or enhancers (their fields are then unused). The adapter saved is the whole model.'),
});

const EVAL_CHUNK = 100;

function encoder(model: MultiwayTransformer): RetrievalEncoder {
  return {
    // pixels 0..1 as in pretraining, [BOS ... EOS] padded to the longest
    batch: (sw: ShapesWorld, pairs: readonly RetrievalPair[]) => shapesWorldRetrievalBatch(sw, pairs),
    encodeImages: (pixels) => encodeImages(model, pixels, { batchSize: EVAL_CHUNK }),
    encodeTexts: (ids) => encodeTexts(model, ids, { batchSize: EVAL_CHUNK }),
    dispose: () => model.dispose(),
  };
}

const basePathOf = (locator: BaseLocator, base: string): string => locator.path(base, 'multiway');

export const mwaMethod: RetrievalMethod<typeof mwaMethodConfigSchema> = {
  name: 'mwa',
  kind: 'retrieval',
  paper: { title: 'MultiWay-Adapter: Adapting Multimodal Large Language Models for Scalable Image-Text Retrieval', authors: 'Long, Killick, McCreadie, Aragon Camarasa', venue: 'ICASSP 2024', url: 'https://arxiv.org/abs/2309.01516' },
  description: 'MWA: per-modality extractors beside the frozen FFN experts + a shared alignment enhancer, on a frozen Multiway Transformer (retrieval).',
  configSchema: mwaMethodConfigSchema,
  attach: async (locator, raw) => {
    const { base, full, ...config } = parseMethodConfig(mwaMethodConfigSchema, raw, 'method.config');
    const basePath = basePathOf(locator, base);
    const model = await loadMultiway(basePath);
    if (full) {
      model.unfreeze(); // every parameter of the base, nothing added
      const n = model.countParameters();
      return withAdapterFiles<RetrievalModel>({
        ...encoder(model),
        module: model,
        trainable: () => model.namedTrainableParameters(),
        totalParameters: () => n,
        loss: (batch, training) => contrastiveLoss(model, batch, { training }), // the base has no dropout: no masks to reseed
        basePath,
        extras: () => ({ mwa: { base: n, extractors: 0, enhancers: 0, trainable: n, percentOfBase: 100, percentOfTotal: 100, full: true } }),
        describe: () => ({ method: 'mwa', config: { base, full: true } }),
      });
    }
    const mwa = attachMwa(model, config);
    return withAdapterFiles<RetrievalModel>({
      ...encoder(model),
      module: model,
      // attachMwa froze the base and unfroze exactly its new modules: this walks them
      trainable: () => model.namedTrainableParameters(),
      totalParameters: () => model.countParameters(),
      loss: (batch, training, maskSeed) => {
        if (maskSeed !== undefined) mwa.reseedMasks(maskSeed);
        return contrastiveLoss(model, batch, { training });
      },
      basePath,
      extras: () => ({ mwa: mwa.counts() }),
      describe: () => ({ method: 'mwa', config: { base, full: false, ...mwa.config } }),
    });
  },
  frozenBase: async (locator, raw) => encoder(await loadMultiway(basePathOf(locator, parseMethodConfig(mwaMethodConfigSchema, raw, 'method.config').base))),
};
