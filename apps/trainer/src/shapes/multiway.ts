/**
 * The ShapesWorld Multiway base that MWA freezes: a tiny BEiT-3-style Multiway Transformer
 * (@adaptorkit/mwa) pretrained from scratch, contrastively, with every parameter training, on the
 * retrieval captions of a *source* ShapesWorld: other scenes (seed 7) rendered clean (no pixel
 * noise, no background clutter). The examples' retrieval task is the default world (seed 0, noise
 * 0.03, clutter 0.5), a shifted domain the frozen base has never seen: what the adapters must bridge.
 *
 * Stored like the other shipped bases: config.json (the Multiway config under `multiway`) and
 * model.safetensors, loaded strictly (a missing, extra or mis-shaped tensor is an error).
 */
import * as path from 'node:path';
import { AdaptorkitError, CheckpointReader, loadWeights, manualSeed, Rng, saveWeights, skipInit, tf } from '@adaptorkit/core';
import { scoreRetrieval, ShapesWorld, type RetrievalPair, type ShapesWorldOptions } from '@adaptorkit/data';
import {
  contrastiveLoss,
  disposeBatch,
  encodeImages,
  encodeTexts,
  MultiwayTransformer,
  parseMultiwayConfig,
  retrievalScores,
  shapesWorldMultiwayShape,
  shapesWorldRetrievalBatch,
  type MultiwayConfig,
} from '@adaptorkit/mwa';
import { readJson, writeJsonAtomic } from '../fsutil.js';
import { trainLoop } from '../loop.js';
import { shippedBasesDir } from './store.js';

/** The world the shipped Multiway base is pretrained on (not the examples' world: see above). */
export const MULTIWAY_SOURCE_WORLD: ShapesWorldOptions = { seed: 7, image: { noise: 0, clutter: 0 } };

/** d 64, 2 layers, 4 heads, per-modality attention, 8-px patches; vocabulary and image size from the world. */
export function shapesMultiwayConfig(sw: ShapesWorld): MultiwayConfig {
  return parseMultiwayConfig({ ...shapesWorldMultiwayShape(sw), dim: 64, numLayers: 2, numHeads: 4, maxTextLen: 48, patchSize: 8, sharedAttention: false });
}

/** Resolve 'shapesworld' to the shipped folder, anything else is a user path. */
export function multiwayBasePath(spec: string): string {
  return spec === 'shapesworld' ? path.join(shippedBasesDir(), 'multiway') : path.resolve(spec);
}

export async function saveMultiway(dir: string, model: MultiwayTransformer, extra: Record<string, unknown> = {}): Promise<void> {
  await writeJsonAtomic(path.join(dir, 'config.json'), {
    architectures: ['AdaptorkitMultiwayTransformer'],
    model_type: 'adaptorkit_multiway',
    multiway: model.config,
    torch_dtype: 'float32',
    ...extra,
  });
  await saveWeights(path.join(dir, 'model.safetensors'), model);
}

export async function loadMultiway(dir: string): Promise<MultiwayTransformer> {
  const cfg = await readJson<{ model_type?: string; multiway?: unknown }>(path.join(dir, 'config.json')).catch((e: Error) => {
    throw new AdaptorkitError('IO_ERROR', `cannot read the Multiway base config ${path.join(dir, 'config.json')}: ${e.message} (run the multiway pretraining, or point method.config.base at a folder saved by saveMultiway)`);
  });
  if (cfg.model_type !== 'adaptorkit_multiway' || !cfg.multiway) {
    throw new AdaptorkitError('BAD_FILE', `${path.join(dir, 'config.json')}: not a Multiway base (model_type '${String(cfg.model_type)}', expected 'adaptorkit_multiway' with a 'multiway' config)`);
  }
  const model = skipInit(() => new MultiwayTransformer(parseMultiwayConfig(cfg.multiway)));
  const reader = await CheckpointReader.open(dir);
  try {
    await loadWeights(model, reader, { strict: true });
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    await reader.close();
  }
}

/** R@1/5/10 both ways (fractions) of encoders over pairs, image i matching text i. */
export function retrievalMetrics(
  encode: { images: (px: tf.Tensor4D) => tf.Tensor2D; texts: (ids: tf.Tensor2D) => tf.Tensor2D },
  batch: { pixels: tf.Tensor4D; ids: tf.Tensor2D },
): Record<string, number> {
  const s = tf.tidy(() => retrievalScores(encode.images(batch.pixels), encode.texts(batch.ids))); // [I, T]
  try {
    const [I, T] = s.shape;
    const r = scoreRetrieval(s.dataSync(), { nImages: I, nTexts: T });
    return {
      i2t_r1: r.imageToText.r1,
      i2t_r5: r.imageToText.r5,
      i2t_r10: r.imageToText.r10,
      t2i_r1: r.textToImage.r1,
      t2i_r5: r.textToImage.r5,
      t2i_r10: r.textToImage.r10,
      rsum: r.rsum,
    };
  } finally {
    s.dispose();
  }
}

export interface MultiwayPretrainOptions {
  steps: number;
  batchSize: number;
  lr: number;
  seed: number;
  log?: (line: string) => void;
}

/**
 * Pretrain the Multiway base from scratch on `sw`'s retrieval train split (symmetric InfoNCE,
 * every parameter, AdamW, cosine with warmup, clipping). Returns it with its val R@1 (image->text).
 */
export async function pretrainMultiway(sw: ShapesWorld, o: MultiwayPretrainOptions): Promise<{ model: MultiwayTransformer; losses: number[]; valR1: number }> {
  const log = o.log ?? (() => {});
  manualSeed(o.seed);
  const model = new MultiwayTransformer(shapesMultiwayConfig(sw));
  const pairs = sw.retrieval('train');
  const rng = new Rng(o.seed + 3);
  log(`multiway: ${model.countParameters().toLocaleString()} parameters, ${pairs.length} image-caption pairs`);
  const { losses } = await trainLoop({
    named: model.namedTrainableParameters(),
    steps: o.steps,
    lr: o.lr,
    warmupSteps: Math.round(o.steps * 0.05),
    weightDecay: 0.05,
    betas: [0.9, 0.98],
    clipNorm: 1,
    minLrRatio: 0.1,
    loss: () => {
      const picked: RetrievalPair[] = Array.from({ length: o.batchSize }, () => pairs[rng.int(pairs.length)]!);
      return contrastiveLoss(model, shapesWorldRetrievalBatch(sw, picked), { training: true }); // the loop's tidy disposes the batch
    },
    onStep: ({ step, loss, ms }) => {
      if (step === 1 || step % 50 === 0 || step === o.steps) log(`multiway step ${step}/${o.steps} loss ${loss.toFixed(4)} (${ms.toFixed(0)} ms/step)`);
    },
  });
  const val = shapesWorldRetrievalBatch(sw, sw.retrieval('val').slice(0, 200));
  try {
    const m = retrievalMetrics({ images: (px) => encodeImages(model, px, { batchSize: 100 }), texts: (ids) => encodeTexts(model, ids, { batchSize: 100 }) }, val);
    return { model, losses, valR1: m.i2t_r1! };
  } finally {
    disposeBatch(val);
  }
}
