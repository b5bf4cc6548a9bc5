/** Tensors from a MethodBatch, shared by the method packages. */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError } from '../errors.js';
import type { MethodBatch } from './contract.js';

/** int32 [B, T] */
export function idsTensor(b: MethodBatch): tf.Tensor2D {
  return tf.tensor2d(b.ids, [b.B, b.T], 'int32');
}

/** int32 [B, T] */
export function labelsTensor(b: MethodBatch): tf.Tensor2D {
  return tf.tensor2d(b.labels, [b.B, b.T], 'int32');
}

/** One image per row [B, H, W, 3] (zeros, the mean pixel, for rows without one); undefined when no row has one. */
export function imagesPerRow(b: MethodBatch): tf.Tensor4D | undefined {
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

/** 1 for rows with an image input, 0 for text-only rows. */
export function imageRows(b: MethodBatch): number[] {
  return Array.from({ length: b.B }, (_, r) => (b.inputs.some((i) => i.row === r && i.modality === 'image') ? 1 : 0));
}

/** Prompt rows of a left-padded batch without their padding. */
export function promptRows(b: MethodBatch): number[][] {
  return b.lengths.map((n, r) => Array.from(b.ids.subarray(r * b.T + (b.T - n), r * b.T + b.T)));
}

/** Run `fn` with the batch's images as a tensor, disposed afterwards (for calls that return no tensors). */
export function withImages<R>(b: MethodBatch, fn: (images: tf.Tensor4D | undefined) => R): R {
  const images = imagesPerRow(b);
  try {
    return fn(images);
  } finally {
    images?.dispose();
  }
}

/** Logits [B, T, V] -> the last position's [B, V]. */
export function lastPosition(logits: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, T, V] = logits.shape as [number, number, number];
    return tf.reshape(tf.slice(logits, [0, T - 1, 0], [B, 1, V]), [B, V]) as tf.Tensor2D;
  });
}
