/** Tiny seeded Multiway fixtures for tests (@adaptorkit/shapes-bases/testing): here and in @adaptorkit/mwa. */
import { manualSeed, tf } from '@adaptorkit/core';
import type { MultiwayConfigInput } from '../multiway/config.js';
import { MultiwayTransformer } from '../multiway/multiway.js';

export const TINY: MultiwayConfigInput = {
  dim: 32,
  numLayers: 2,
  numHeads: 4,
  vocabSize: 40,
  maxTextLen: 12,
  imageSize: 16,
  patchSize: 8,
  embedDim: 24,
};

/** A tiny Multiway Transformer with seeded weights; LayerNorm weights/biases perturbed so a misplaced norm shows. */
export function tinyMultiway(seed = 0, overrides: MultiwayConfigInput = {}): MultiwayTransformer {
  manualSeed(seed);
  const m = new MultiwayTransformer({ ...TINY, ...overrides });
  tf.tidy(() => {
    let k = 0;
    for (const [name, p] of m.namedParameters()) {
      if (p.shape.length === 1 && /norm|_ln|layernorm/.test(name)) p.assign(tf.add(p.value, tf.randomUniform(p.shape as number[], -0.2, 0.2, 'float32', seed * 1000 + k++)));
    }
  });
  return m;
}

/** Random pixels [B, s, s, 3] and ids [B, T] starting with 1 (BOS), ids in [3, vocab); rows padded with 0 from `lens`. */
export function toyBatch(B: number, T: number, seed: number, o: { imageSize?: number; vocab?: number; lens?: number[] } = {}): { pixels: tf.Tensor4D; ids: tf.Tensor2D } {
  const s = o.imageSize ?? 16;
  const vocab = o.vocab ?? 40;
  const pixels = tf.randomUniform([B, s, s, 3], 0, 1, 'float32', seed) as tf.Tensor4D;
  const raw = tf.tidy(() => tf.floor(tf.randomUniform([B, T], 3, vocab, 'float32', seed + 1)).dataSync());
  const ids = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const len = o.lens?.[b] ?? T;
    for (let t = 0; t < T; t++) ids[b * T + t] = t === 0 ? 1 : t < len ? raw[b * T + t]! : 0;
  }
  return { pixels, ids: tf.tensor2d(ids, [B, T], 'int32') };
}
