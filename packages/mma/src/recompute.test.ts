/**
 * train.recompute: layers with MMA adapters inside the frozen LM's decoder layers (router, dropout,
 * grouped up-projections): the same loss and the same gradient for every MMA parameter as the
 * stored path.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf, valueAndGrads, disposeGrads } from '@adaptorkit/core';
import { compareClose, tinyCausalLM, tinyVisionEncoder } from '@adaptorkit/core/testing';
import { attachMma, type MmaModel } from './index.js';

const IMG = 5;

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

function build(): MmaModel {
  const m = attachMma({ lm: tinyCausalLM(1), vision: tinyVisionEncoder(2), imageTokenId: IMG }, { dropout: 0.2 });
  tf.tidy(() => {
    m.sites.forEach((s, i) => s.adapter.ups.forEach((u, j) => u.weight.assign(tf.randomNormal(u.weight.shape as number[], 0, 0.3, 'float32', 3 + 10 * i + j))));
  });
  m.reseedMasks(7);
  return m;
}

describe('MMA with recompute: layers', () => {
  it('gives the stored path’s loss and every MMA gradient', () => {
    const ids = tf.tensor2d([[1, IMG, IMG, 10, 11, 12, 13], [1, 20, 21, 22, 23, 24, 25]], [2, 7], 'int32');
    const images = tf.randomNormal([1, 16, 16, 3], 0, 1, 'float32', 9) as tf.Tensor4D;
    const runs = (['none', 'layers'] as const).map((mode) => {
      const m = build();
      m.lm.recompute = mode;
      const params = m.namedMmaParameters().map(([, p]) => p);
      const { loss, grads } = valueAndGrads(() => m.loss({ ids, labels: ids, images, ctx: { training: true } }), params);
      const g = params.map((p) => grads.get(p)!.dataSync().slice() as Float32Array);
      disposeGrads(grads);
      m.dispose();
      return { loss, g };
    });
    const [a, b] = runs as [typeof runs[0], typeof runs[0]];
    expect(b.loss).toBeCloseTo(a.loss, 6);
    expect(a.g.filter((g) => g.some((v) => v !== 0)).length).toBeGreaterThan(a.g.length / 2);
    a.g.forEach((g, i) => {
      const c = compareClose(b.g[i]!, g, { atol: 1e-6, rtol: 1e-5 });
      expect(c.ok, `gradient ${i}: ${c.message}`).toBe(true);
    });
    tf.dispose([ids, images]);
  });
});
