import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/init.js';
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
