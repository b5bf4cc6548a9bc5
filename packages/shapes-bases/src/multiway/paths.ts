/**
 * The Multiway base MWA runs freeze: where the shipped one is (models/shapesworld/multiway; its recipe,
 * folder format and loader: recipe.ts), and retrieval scored with R@K.
 */
import * as path from 'node:path';
import { scoreRetrieval } from '@adaptorkit/data';
import { retrievalScores } from './retrieval.js';
import type { tf } from '@adaptorkit/core';
import { shippedBasesDir } from '../store.js';

/** Resolve 'shapesworld' to the shipped folder (written by experiments/mwa/pretrain-base.ts), anything else is a user path. */
export function multiwayBasePath(spec: string): string {
  return spec === 'shapesworld' ? path.join(shippedBasesDir(), 'multiway') : path.resolve(spec);
}

/** R@1/5/10 both ways and their mean (fractions) of encoders over pairs, image i matching text i. */
export function retrievalMetrics(
  encode: { images: (px: tf.Tensor4D) => tf.Tensor2D; texts: (ids: tf.Tensor2D) => tf.Tensor2D },
  batch: { pixels: tf.Tensor4D; ids: tf.Tensor2D },
): Record<string, number> {
  const img = encode.images(batch.pixels);
  const txt = encode.texts(batch.ids);
  const s = retrievalScores(img, txt); // [I, T]
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
    img.dispose();
    txt.dispose();
  }
}
