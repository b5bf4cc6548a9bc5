/** Tensors from a multimodal batch, shared by the method glue. */
import { AdaptorkitError, tf } from '@adaptorkit/core';
import type { MMBatch } from '../vl/batch.js';

export function idsTensor(b: MMBatch): tf.Tensor2D {
  return tf.tensor2d(b.ids, [b.B, b.T], 'int32');
}

export function labelsTensor(b: MMBatch): tf.Tensor2D {
  return tf.tensor2d(b.labels, [b.B, b.T], 'int32');
}

/** One image per row [B, H, W, 3] (the source normalised them; zeros, the mean pixel, for rows without one); undefined when no row has one. */
export function imagesPerRow(b: MMBatch): tf.Tensor4D | undefined {
  const imgs = b.inputs.filter((i) => i.modality === 'image');
  if (imgs.length === 0) return undefined;
  const size = Math.round(Math.sqrt(imgs[0]!.data.length / 3));
  const rows: Float32Array[] = [];
  for (let r = 0; r < b.B; r++) {
    const mine = imgs.filter((i) => i.row === r);
    if (mine.length > 1) throw new AdaptorkitError('UNSUPPORTED', `row ${r} has ${mine.length} images; this method takes one image per example`);
    rows.push(mine[0]?.data ?? new Float32Array(size * size * 3));
  }
  const buf = new Float32Array(rows.length * size * size * 3);
  rows.forEach((r, i) => buf.set(r, i * r.length));
  return tf.tensor4d(buf, [rows.length, size, size, 3]);
}

/** Prompt rows without padding (generation APIs take ragged rows and pad them themselves). */
export function promptRows(b: MMBatch): number[][] {
  return b.lengths.map((n, r) => Array.from(b.ids.subarray(r * b.T + (b.T - n), r * b.T + b.T)));
}

/** Run `fn` with the batch's images as a tensor, disposed afterwards (for calls that return no tensors). */
export function withImages<R>(b: MMBatch, fn: (images: tf.Tensor4D | undefined) => R): R {
  const images = imagesPerRow(b);
  try {
    return fn(images);
  } finally {
    images?.dispose();
  }
}
