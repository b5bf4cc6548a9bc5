/**
 * ShapesWorld retrieval batches for a Multiway Transformer: rendered images and captions as
 * [BOS, words..., EOS] padded with PAD, the first token (BOS) being the text's class token.
 */
import { AdaptorkitError, tf } from '@adaptorkit/core';
import type { RetrievalPair, ShapesWorld } from '@adaptorkit/data';
import type { MultiwayConfigInput } from './config.js';
import type { RetrievalBatch } from './retrieval.js';

export interface ShapesWorldBatchOptions {
  /** Pad (or refuse) texts to this many tokens; default: the longest text of the batch. */
  maxLen?: number;
  /** Multiply the R, G, B channels of every image by these gains (a camera's colour cast); default none. */
  colourGains?: readonly [number, number, number];
}

/** pixels [B, size, size, 3] (values 0..1) and ids int32 [B, T]. The caller disposes the tensors. */
export function shapesWorldRetrievalBatch(world: ShapesWorld, pairs: readonly RetrievalPair[], opts: ShapesWorldBatchOptions = {}): RetrievalBatch {
  const tok = world.tokenizer;
  const seqs = pairs.map((p) => [tok.bosId, ...tok.encode(p.text), tok.eosId]);
  const longest = seqs.reduce((n, s) => Math.max(n, s.length), 0);
  const T = opts.maxLen ?? longest;
  if (longest > T) {
    throw new AdaptorkitError('INVALID_ARGUMENT', `shapesWorldRetrievalBatch: a caption has ${longest} tokens (BOS/EOS included), more than maxLen ${T}; raise maxLen (and the model's maxTextLen)`);
  }
  const ids = new Int32Array(pairs.length * T).fill(tok.padId);
  seqs.forEach((s, i) => ids.set(s, i * T));
  const [H, W, C] = world.imageShape;
  const pix = new Float32Array(pairs.length * H * W * C);
  pairs.forEach((p, i) => pix.set(world.renderImage(p.scene), i * H * W * C));
  const g = opts.colourGains;
  if (g) for (let k = 0; k < pix.length; k++) pix[k] = pix[k]! * g[k % C]!; // [.., C] innermost
  return { pixels: tf.tensor4d(pix, [pairs.length, H, W, C]), ids: tf.tensor2d(ids, [pairs.length, T], 'int32') };
}

/** Multiway config fields that must agree with a ShapesWorld instance (vocabulary, padding, image size). */
export function shapesWorldMultiwayShape(world: ShapesWorld): Pick<MultiwayConfigInput, 'vocabSize' | 'padId' | 'imageSize'> {
  return { vocabSize: world.tokenizer.vocabSize, padId: world.tokenizer.padId, imageSize: world.config.image.size };
}

export function disposeBatch(b: RetrievalBatch): void {
  b.pixels.dispose();
  b.ids.dispose();
}
