/** Losses: masked next-token cross entropy and symmetric InfoNCE. */
import * as tf from '@tensorflow/tfjs-core';
import { SPARSE_SOFTMAX_CE, SPARSE_SOFTMAX_CE_GRAD } from '@adaptorkit/kernel-names';
import { AdaptorkitError, formatShape } from '../errors.js';

export const IGNORE_INDEX = -100;

export interface CrossEntropyOptions {
  /** Predict token t+1 from position t (shift logits/labels), as for causal LM training. Default true. */
  shift?: boolean;
  /** Label value that contributes nothing (default -100). */
  ignoreIndex?: number;
}

/**
 * Mean cross entropy over positions whose label is not ignored.
 * logits [B, T, V], labels int32 [B, T]. Returns a scalar; 0 when every label is ignored.
 */
export function maskedCrossEntropy(logits: tf.Tensor, labels: tf.Tensor, opts: CrossEntropyOptions = {}): tf.Scalar {
  const shift = opts.shift ?? true;
  const ignore = opts.ignoreIndex ?? IGNORE_INDEX;
  if (logits.rank !== 3 || labels.rank !== 2 || logits.shape[0] !== labels.shape[0] || logits.shape[1] !== labels.shape[1]) {
    throw new AdaptorkitError('SHAPE_MISMATCH', `cross entropy: logits ${formatShape(logits.shape)} and labels ${formatShape(labels.shape)} must be [B, T, V] and [B, T]`);
  }
  return tf.tidy(() => {
    const [B, T, V] = logits.shape as [number, number, number];
    const N = B * T;
    // Shift the labels, not the logits: slicing [B, T, V] copies the largest tensor of the step
    // (forward and backward). Position t predicts label t+1; the last position predicts nothing.
    const lb = shift ? tf.concat([tf.slice(labels, [0, 1], [B, T - 1]), tf.fill([B, 1], ignore, 'int32')], 1) : labels;
    const flatLabels = tf.reshape(tf.cast(lb, 'int32'), [N]);
    const keep = tf.notEqual(flatLabels, ignore);
    const valid = tf.cast(keep, 'float32'); // [N]
    const safe = tf.where(keep, flatLabels, tf.zerosLike(flatLabels)); // [N]
    const flatLogits = tf.reshape(logits, [N, V]);
    const nll = hasFusedCrossEntropy() ? fusedNll(flatLogits, safe as tf.Tensor1D) : composedNll(flatLogits, safe, N, V); // [N]
    const count = tf.maximum(tf.sum(valid), 1);
    return tf.div(tf.sum(tf.mul(nll, valid)), count) as tf.Scalar;
  });
}

/**
 * Kernels a backend may register for a fused sparse softmax cross entropy (no tfjs op has them;
 * @adaptorkit/backend-native does; the names are spelled once in @adaptorkit/kernel-names):
 *   SPARSE_SOFTMAX_CE       {logits [N, V], labels int32 [N] in [0, V)} -> [nll [N], lse [N]]
 *   SPARSE_SOFTMAX_CE_GRAD  {logits, lse, labels, dy [N]} -> dlogits [N, V] = softmax * dy - onehot * dy
 * One pass over the [N, V] logits each way, where the composed ops take about ten.
 */

export { SPARSE_SOFTMAX_CE, SPARSE_SOFTMAX_CE_GRAD };

function hasFusedCrossEntropy(): boolean {
  const b = tf.getBackend();
  return tf.getKernel(SPARSE_SOFTMAX_CE, b) !== undefined && tf.getKernel(SPARSE_SOFTMAX_CE_GRAD, b) !== undefined;
}

/** -log softmax(logits)[label] per row through the backend's fused kernels. logits [N, V], labels [N]. */
function fusedNll(logits: tf.Tensor, labels: tf.Tensor1D): tf.Tensor1D {
  const f = tf.customGrad(((lg: tf.Tensor, save: tf.GradSaveFunc) => {
    const [nll, lse] = tf.engine().runKernel(SPARSE_SOFTMAX_CE, { logits: lg, labels }) as tf.Tensor[];
    save([lg, lse!, labels]);
    return {
      value: nll!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [l, s, lb] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        return tf.engine().runKernel(SPARSE_SOFTMAX_CE_GRAD, { logits: l, lse: s, labels: lb, dy }) as tf.Tensor;
      },
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  return f(logits) as tf.Tensor1D;
}

/** The same with tfjs ops: one gather from logSoftmax. */
function composedNll(logits: tf.Tensor, labels: tf.Tensor, N: number, V: number): tf.Tensor {
  // -log p(label), picked with one gather from logSoftmax rather than a [N, V] one-hot product.
  // (logSumExp minus the gathered logit is the same number, but its gradient goes through max and
  // an [N, V] equality mask, measured 7x slower on the native backend.)
  const logp = tf.reshape(tf.logSoftmax(logits, -1), [N * V]);
  return tf.neg(tf.gather(logp, tf.add(tf.mul(tf.range(0, N, 1, 'int32'), tf.scalar(V, 'int32')), labels))); // [N]
}

/**
 * labels with IGNORE_INDEX wherever ids holds `tokenId` (e.g. the image placeholder positions
 * a model fills with features). Returns labels as int32 unchanged when tokenId is undefined.
 */
export function ignoreTokens(labels: tf.Tensor, ids: tf.Tensor, tokenId: number | undefined): tf.Tensor {
  return tf.tidy(() => {
    const lb = tf.cast(labels, 'int32');
    if (tokenId === undefined) return lb;
    if (labels.shape.join() !== ids.shape.join()) {
      throw new AdaptorkitError('SHAPE_MISMATCH', `labels ${formatShape(labels.shape)} must match ids ${formatShape(ids.shape)}`);
    }
    return tf.where(tf.equal(ids, tokenId), tf.fill(lb.shape, IGNORE_INDEX, 'int32'), lb);
  });
}

/**
 * Mean next-token NLL of `ids` under `logits` (position t predicts ids[t+1]), skipping targets equal
 * to padId; with its perplexity and the number of tokens scored.
 */
export function sequenceNll(logits: tf.Tensor, ids: tf.Tensor, padId?: number): { nll: number; perplexity: number; tokens: number } {
  const [mean, count] = tf.tidy(() => {
    const labels = ignoreTokens(ids, ids, padId); // [B, T], pads ignored
    const [B, T] = labels.shape as [number, number];
    const scored = tf.sum(tf.cast(tf.notEqual(tf.slice(labels, [0, 1], [B, T - 1]), IGNORE_INDEX), 'float32'));
    return [maskedCrossEntropy(logits, labels), scored];
  });
  const nll = mean.dataSync()[0]!;
  const tokens = count.dataSync()[0]!;
  tf.dispose([mean, count]);
  return { nll, perplexity: Math.exp(nll), tokens };
}

/**
 * Symmetric InfoNCE for paired embeddings a[i] <-> b[i]: L2-normalise both, logits = scale * a b^T,
 * loss = (CE(rows) + CE(columns)) / 2 with the diagonal as targets. `logitScale` is the multiplier
 * (e.g. exp of a learnable log-temperature); pass a tensor to learn it.
 */
export function symmetricInfoNCE(a: tf.Tensor, b: tf.Tensor, logitScale: number | tf.Tensor): tf.Scalar {
  if (a.rank !== 2 || b.rank !== 2 || a.shape[0] !== b.shape[0] || a.shape[1] !== b.shape[1]) {
    throw new AdaptorkitError('SHAPE_MISMATCH', `InfoNCE: embeddings ${formatShape(a.shape)} and ${formatShape(b.shape)} must both be [N, d]`);
  }
  return tf.tidy(() => {
    const n = a.shape[0]!;
    const an = l2normalize(a);
    const bn = l2normalize(b);
    const logits = tf.mul(tf.matMul(an, tf.transpose(bn)), logitScale); // [N, N]
    const eye = tf.oneHot(tf.range(0, n, 1, 'int32'), n);
    const rowLoss = tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits, -1), eye), -1)));
    const colLoss = tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(tf.transpose(logits), -1), eye), -1)));
    return tf.div(tf.add(rowLoss, colLoss), 2) as tf.Scalar;
  });
}

/** x / ||x|| along the last axis. */
export function l2normalize(x: tf.Tensor, eps = 1e-12): tf.Tensor {
  return tf.tidy(() => tf.div(x, tf.maximum(tf.norm(x, 'euclidean', -1, true), eps)));
}
