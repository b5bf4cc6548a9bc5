/**
 * Retrieval with a Multiway Transformer: separate image and text embeddings, the similarity
 * matrix, Recall@K in both directions, the symmetric contrastive loss with the model's learnable
 * temperature, and a small training loop (used to pretrain a base from scratch, and to train MWA).
 */
import { AdaptorkitError, AdamW, formatShape, scheduledLr, symmetricInfoNCE, tf, valueAndGrads, clipGradNorm, disposeGrads, type ForwardContext, type Parameter } from '@adaptorkit/core';
import { scoreRetrieval, type RetrievalScore } from '@adaptorkit/data';
import type { MultiwayTransformer } from './multiway.js';

export interface RetrievalBatch {
  /** [B, H, W, 3] */
  pixels: tf.Tensor4D;
  /** int32 [B, T], first token first (e.g. BOS), padded with the model's padId */
  ids: tf.Tensor2D;
}

export interface EncodeAllOptions {
  /** Rows per forward (default 64). */
  batchSize?: number;
  ctx?: ForwardContext;
}

/** L2-normalised image embeddings [N, e] for pixels [N, H, W, 3], computed in chunks. */
export function encodeImages(model: MultiwayTransformer, pixels: tf.Tensor, opts: EncodeAllOptions = {}): tf.Tensor2D {
  return chunked(pixels, opts.batchSize ?? 64, (x) => model.imageEmbeddings(x, { ctx: opts.ctx }));
}

/** L2-normalised text embeddings [N, e] for ids [N, T], computed in chunks. */
export function encodeTexts(model: MultiwayTransformer, ids: tf.Tensor, opts: EncodeAllOptions = {}): tf.Tensor2D {
  return chunked(ids, opts.batchSize ?? 64, (x) => model.textEmbeddings(x, { ctx: opts.ctx }));
}

function chunked(x: tf.Tensor, bs: number, f: (x: tf.Tensor) => tf.Tensor2D): tf.Tensor2D {
  const N = x.shape[0]!;
  if (N <= bs) return f(x);
  return tf.tidy(() => {
    const parts: tf.Tensor2D[] = [];
    for (let s = 0; s < N; s += bs) {
      const n = Math.min(bs, N - s);
      const begin = x.shape.map((_, i) => (i === 0 ? s : 0));
      const size = x.shape.map((d, i) => (i === 0 ? n : d));
      parts.push(f(tf.slice(x, begin, size)));
    }
    return tf.concat(parts, 0) as tf.Tensor2D; // [N, e]
  });
}

/** Cosine similarities [I, T] of L2-normalised image [I, e] and text [T, e] embeddings. */
export function retrievalScores(imageEmb: tf.Tensor, textEmb: tf.Tensor): tf.Tensor2D {
  if (imageEmb.rank !== 2 || textEmb.rank !== 2 || imageEmb.shape[1] !== textEmb.shape[1]) {
    throw new AdaptorkitError('SHAPE_MISMATCH', `retrievalScores: image ${formatShape(imageEmb.shape)} and text ${formatShape(textEmb.shape)} embeddings must be [I, e] and [T, e]`);
  }
  return tf.tidy(() => tf.matMul(imageEmb, textEmb, false, true) as tf.Tensor2D); // [I, T]
}

export interface RecallOptions {
  /** For each text, the index of its image (default: text i belongs to image i). */
  imageOfText?: readonly number[];
}

/**
 * Recall@1/5/10 image->text and text->image (fractions in [0, 1]) from a score matrix [I, T]
 * (a tensor, rows, or a row-major flat array with `nImages`). Ties count against the query.
 */
export function recallAtK(scores: tf.Tensor | readonly ArrayLike<number>[], opts: RecallOptions = {}): RetrievalScore {
  if (scores instanceof tf.Tensor) {
    if (scores.rank !== 2) throw new AdaptorkitError('SHAPE_MISMATCH', `recallAtK: scores must be [nImages, nTexts], got ${formatShape(scores.shape)}`);
    const [I, T] = scores.shape as [number, number];
    return scoreRetrieval(scores.dataSync(), { nImages: I, nTexts: T, imageOfText: opts.imageOfText });
  }
  const I = scores.length;
  const T = I > 0 ? scores[0]!.length : 0;
  return scoreRetrieval(scores, { nImages: I, nTexts: T, imageOfText: opts.imageOfText });
}

/** Encode a whole split and score it: R@1/5/10 both ways. Pair i's image matches text i. */
export function evaluateRetrieval(model: MultiwayTransformer, batch: RetrievalBatch, opts: EncodeAllOptions = {}): RetrievalScore {
  const s = tf.tidy(() => retrievalScores(encodeImages(model, batch.pixels, opts), encodeTexts(model, batch.ids, opts)));
  try {
    return recallAtK(s);
  } finally {
    s.dispose();
  }
}

/**
 * The symmetric contrastive (InfoNCE) loss of a paired batch with the model's learnable
 * temperature: logits = exp(logit_scale) * img . txt^T, mean of the row and column cross entropies.
 */
export function contrastiveLoss(model: MultiwayTransformer, batch: RetrievalBatch, ctx: ForwardContext = { training: true }): tf.Scalar {
  if (batch.pixels.shape[0] !== batch.ids.shape[0]) {
    throw new AdaptorkitError('SHAPE_MISMATCH', `contrastiveLoss: ${batch.pixels.shape[0]} images but ${batch.ids.shape[0]} texts; pairs must align`);
  }
  return tf.tidy(() => {
    const img = model.imageEmbeddings(batch.pixels, { ctx }); // [B, e]
    const txt = model.textEmbeddings(batch.ids, { ctx }); // [B, e]
    return symmetricInfoNCE(img, txt, tf.exp(model.logit_scale.value));
  });
}

export interface TrainOptions {
  /** The explicit trainable list (e.g. `mwa.trainableParameters()`, or every base parameter for full fine-tuning). */
  params: Parameter[];
  steps: number;
  lr: number;
  /** AdamW decoupled weight decay on matrices; 1-D tensors (biases, norms, scales) get none. Default 0.05. */
  weightDecay?: number;
  warmupSteps?: number;
  schedule?: 'cosine' | 'linear' | 'constant';
  /** Clip the global gradient norm (default: no clipping). */
  maxGradNorm?: number;
  /** Called after each step. */
  onStep?: (step: number, loss: number) => void;
}

export interface TrainResult {
  losses: number[];
  /** Mean wall-clock milliseconds per step (forward + backward + update), excluding the first step. */
  stepMs: number;
}

/**
 * A plain contrastive training loop over `nextBatch(step)` (the caller owns and disposes batches).
 * Only `params` receive gradients; everything else is untouched.
 */
export function trainContrastive(model: MultiwayTransformer, nextBatch: (step: number) => RetrievalBatch, opts: TrainOptions): TrainResult {
  const wd = opts.weightDecay ?? 0.05;
  const decay = opts.params.filter((p) => p.shape.length >= 2);
  const noDecay = opts.params.filter((p) => p.shape.length < 2);
  const groups = [
    ...(decay.length ? [{ params: decay, weightDecay: wd }] : []),
    ...(noDecay.length ? [{ params: noDecay, weightDecay: 0 }] : []),
  ];
  const opt = new AdamW(groups, { lr: opts.lr, weightDecay: wd });
  const losses: number[] = [];
  let ms = 0;
  try {
    for (let step = 0; step < opts.steps; step++) {
      const t0 = performance.now();
      opt.lr = scheduledLr(step, { lr: opts.lr, totalSteps: opts.steps, warmupSteps: opts.warmupSteps ?? 0, kind: opts.schedule ?? 'cosine' });
      const batch = nextBatch(step);
      const { loss, grads } = valueAndGrads(() => contrastiveLoss(model, batch, { training: true }), opts.params);
      if (opts.maxGradNorm !== undefined) clipGradNorm(grads, opts.maxGradNorm);
      opt.step(grads);
      disposeGrads(grads);
      if (step > 0) ms += performance.now() - t0;
      losses.push(loss);
      opts.onStep?.(step, loss);
    }
  } finally {
    opt.dispose();
  }
  return { losses, stepMs: opts.steps > 1 ? ms / (opts.steps - 1) : 0 };
}
