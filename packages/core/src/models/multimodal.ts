/**
 * Splicing encoder features into a token sequence. Convention: the data pipeline expands each
 * modality placeholder into as many placeholder tokens as the encoder gives features (LLaVA's
 * `<image>` becomes N `<image>` ids), so the sequence length is known before the forward and
 * splicing is one gather.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError, formatShape } from '../errors.js';

/**
 * Replace, in each row b, the embeddings at positions where ids[b][t] === placeholderId by
 * features[b][0..N-1] in order. embeds [B, T, d], features [B, N, d] -> [B, T, d].
 * Rows without placeholders keep their text embeddings (a text-only sample in a mixed batch);
 * a row with placeholders must have exactly N of them.
 * Gradients flow to both embeds and features.
 */
export function spliceFeatures(embeds: tf.Tensor, ids: ArrayLike<number>[] | Int32Array, placeholderId: number, features: tf.Tensor): tf.Tensor3D {
  const [B, T, d] = embeds.shape as [number, number, number];
  const [FB, N, fd] = features.shape as [number, number, number];
  if (embeds.rank !== 3 || features.rank !== 3 || FB !== B || fd !== d) {
    throw new AdaptorkitError('SHAPE_MISMATCH', `spliceFeatures: embeds ${formatShape(embeds.shape)} and features ${formatShape(features.shape)} must be [B, T, d] and [B, N, d]`);
  }
  const idx = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const row = ids instanceof Int32Array ? ids.subarray(b * T, (b + 1) * T) : ids[b];
    if (!row || row.length !== T) throw new AdaptorkitError('SHAPE_MISMATCH', `spliceFeatures: ids row ${b} must have ${T} tokens`);
    let k = 0;
    for (let t = 0; t < T; t++) {
      if (row[t] === placeholderId) {
        idx[b * T + t] = B * T + b * N + k;
        k++;
      } else idx[b * T + t] = b * T + t;
    }
    if (k !== 0 && k !== N) {
      throw new AdaptorkitError('SHAPE_MISMATCH', `spliceFeatures: row ${b} has ${k} placeholder tokens (id ${placeholderId}) but the encoder gives ${N} features`);
    }
  }
  return tf.tidy(() => {
    const table = tf.concat([tf.reshape(embeds, [B * T, d]), tf.reshape(features, [B * N, d])], 0); // [B*T + B*N, d]
    return tf.reshape(tf.gather(table, tf.tensor1d(idx, 'int32')), [B, T, d]) as tf.Tensor3D;
  });
}
