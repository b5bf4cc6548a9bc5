import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/init.js';
import { tinyVisionEncoder } from '../testing/index.js';
import { spliceFeatures } from './multimodal.js';

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

describe('spliceFeatures', () => {
  it('puts features at placeholder positions in order, leaves text rows alone, passes gradients', () => {
    const embeds = tf.tensor3d([[[1], [2], [3], [4]], [[5], [6], [7], [8]]]); // [2, 4, 1]
    const feats = tf.tensor3d([[[10], [20]], [[30], [40]]]); // [2, 2, 1]
    const ids = [[0, 9, 9, 1], [5, 6, 7, 8]];
    const out = spliceFeatures(embeds, ids, 9, feats);
    expect(Array.from(out.dataSync())).toEqual([1, 10, 20, 4, 5, 6, 7, 8]);
    const g = tf.grad((f: tf.Tensor) => tf.sum(tf.mul(spliceFeatures(embeds, ids, 9, f), tf.tensor3d([[[1], [2], [3], [4]], [[5], [6], [7], [8]]]))))(feats);
    expect(Array.from(g.dataSync())).toEqual([2, 3, 0, 0]);
    expect(() => spliceFeatures(embeds, [[9, 0, 0, 0], [0, 0, 0, 0]], 9, feats)).toThrow(/row 0 has 1 placeholder tokens \(id 9\) but the encoder gives 2/);
    tf.dispose([embeds, feats, out, g]);
  });
});

describe('VisionEncoder.patchFeatures', () => {
  it("equals forward's hidden state at that index (class token dropped for CLIP), running fewer layers", () => {
    for (const kind of ['clip', 'siglip'] as const) {
      const v = tinyVisionEncoder(3, { kind });
      const px = tf.randomNormal([2, v.config.imageSize, v.config.imageSize, 3], 0, 1, 'float32', 5);
      const out = v.forward(px);
      const L = out.hiddenStates.length;
      for (const layer of [-2, 1, 0, -1]) {
        const h = out.hiddenStates[layer < 0 ? L + layer : layer]!;
        const [B, n, d] = h.shape;
        const want = kind === 'clip' ? tf.slice(h, [0, 1, 0], [B, n - 1, d]) : h;
        const got = v.patchFeatures(px, layer);
        expect(got.shape, `${kind} ${layer}`).toEqual(want.shape);
        expect(Array.from(got.dataSync()), `${kind} ${layer}`).toEqual(Array.from(want.dataSync()));
        tf.dispose([got, ...(kind === 'clip' ? [want] : [])]);
      }
      expect(() => v.patchFeatures(px, L)).toThrow(/outside the encoder's/);
      tf.dispose([px, out.lastHiddenState, out.pooled, ...out.hiddenStates]);
      v.dispose();
    }
  });
});
