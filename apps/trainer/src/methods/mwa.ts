/**
 * MWA (MultiWay-Adapter): New Knowledge Extractors and the Alignment Enhancer on a frozen Multiway
 * Transformer, trained contrastively for image-text retrieval. A retrieval method: it does not use
 * the LM / vision bases; its base is a Multiway checkpoint (method.config.base, default the shipped
 * ShapesWorld one). With `full: true` the same entry fine-tunes every parameter of that base
 * instead (no MWA modules): the baseline MWA's paper compares with, on the same data, loop and metrics.
 */
import { z } from 'zod';
import { attachMwa, mwaConfigSchema } from '@adaptorkit/mwa';
import { contrastiveLoss, encodeImages, encodeTexts, loadMultiway, multiwayBasePath, shapesWorldRetrievalBatch, type MultiwayTransformer } from '@adaptorkit/shapes-bases';
import { parseWith } from '../config-util.js';
import type { RetrievalEncoder, RetrievalMethodEntry } from './types.js';

export const trainerMwaSchema = mwaConfigSchema.extend({
  base: z.string().default('shapesworld').describe("'shapesworld' (the shipped ShapesWorld Multiway base) or a folder written by saveMultiway."),
  full: z
    .boolean()
    .default(false)
    .describe('Full fine-tune of the base instead of MWA: every base parameter trains (heads and temperature included), no extractors or enhancers (their fields are then unused). The adapter saved is the whole model.'),
});

const EVAL_CHUNK = 100;

function encoder(model: MultiwayTransformer): RetrievalEncoder {
  return {
    batch: (sw, pairs) => shapesWorldRetrievalBatch(sw, pairs), // pixels 0..1 as in pretraining, [BOS ... EOS] padded to the longest
    encodeImages: (pixels) => encodeImages(model, pixels, { batchSize: EVAL_CHUNK }),
    encodeTexts: (ids) => encodeTexts(model, ids, { batchSize: EVAL_CHUNK }),
    dispose: () => model.dispose(),
  };
}

export const mwaEntry: RetrievalMethodEntry = {
  name: 'mwa',
  kind: 'retrieval',
  description: 'MWA: per-modality extractors beside the frozen FFN experts + a shared alignment enhancer, on a frozen Multiway Transformer (retrieval).',
  build: async (raw) => {
    const { base, full, ...config } = parseWith(trainerMwaSchema, raw, 'method.config');
    const basePath = multiwayBasePath(base);
    const model = await loadMultiway(basePath);
    if (full) {
      model.unfreeze(); // every parameter of the base, nothing added
      const n = model.countParameters();
      return {
        ...encoder(model),
        module: model,
        trainable: () => model.namedTrainableParameters(),
        totalParameters: () => n,
        loss: (batch, training) => contrastiveLoss(model, batch, { training }), // the base has no dropout: no masks to reseed
        basePath,
        extras: () => ({ mwa: { base: n, extractors: 0, enhancers: 0, trainable: n, percentOfBase: 100, percentOfTotal: 100, full: true } }),
        describe: () => ({ method: 'mwa', config: { base, full: true } }),
      };
    }
    const mwa = attachMwa(model, config);
    return {
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
    };
  },
  frozenBase: async (raw) => encoder(await loadMultiway(multiwayBasePath(parseWith(trainerMwaSchema, raw, 'method.config').base))),
};
