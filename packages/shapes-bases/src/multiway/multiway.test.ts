import { beforeAll, describe, expect, it } from 'vitest';
import { AdaptorkitError, initBackend, shapeOnly, tf, valueAndGrads } from '@adaptorkit/core';
import { compareClose } from '@adaptorkit/core/testing';
import { BEIT3_BASE_CONFIG, BEIT3_LARGE_CONFIG, parseMultiwayConfig } from './config.js';
import { MultiwayTransformer } from './multiway.js';
import { tinyMultiway, toyBatch } from '../testing/index.js';

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

describe('MultiwayTransformer', () => {
  it('encodes images and texts separately to unit-norm [B, e] embeddings', () => {
    const m = tinyMultiway(1);
    const b = toyBatch(3, 6, 5);
    const img = m.imageEmbeddings(b.pixels);
    const txt = m.textEmbeddings(b.ids);
    expect(img.shape).toEqual([3, 24]);
    expect(txt.shape).toEqual([3, 24]);
    const norms = tf.tidy(() => tf.concat([tf.norm(img, 'euclidean', -1), tf.norm(txt, 'euclidean', -1)]).arraySync() as number[]);
    for (const n of norms) expect(n).toBeCloseTo(1, 5);
    expect(m.encodeImage(b.pixels).lastHidden.shape).toEqual([3, 5, 32]); // 4 patches + class token
    tf.dispose([img, txt, b.pixels, b.ids]);
    m.dispose();
  });

  it('masks padded text keys: padding does not change a text embedding', () => {
    const m = tinyMultiway(2);
    const full = toyBatch(2, 9, 7, { lens: [5, 9] });
    const short = tf.slice(full.ids, [0, 0], [1, 5]);
    const a = tf.tidy(() => tf.slice(m.textEmbeddings(full.ids), [0, 0], [1, 24]));
    const b = m.textEmbeddings(short);
    const r = compareClose(a, b, { atol: 1e-5 });
    expect(r.ok, r.message).toBe(true);
    // and the mask matters: the same ids with pad treated as a token differ
    const m2 = tinyMultiway(2, { padId: 39 });
    const c = tf.tidy(() => tf.slice(m2.textEmbeddings(full.ids), [0, 0], [1, 24]));
    expect(compareClose(c, b, { atol: 1e-4 }).ok).toBe(false);
    tf.dispose([a, b, c, short, full.pixels, full.ids]);
    m.dispose();
    m2.dispose();
  });

  it('per-modality attention: an image pass touches no language parameter; shared attention is used by both', () => {
    for (const shared of [false, true]) {
      const m = tinyMultiway(3, { sharedAttention: shared });
      m.unfreeze();
      const named = m.namedParameters();
      const b = toyBatch(2, 5, 9);
      const touched = (f: () => tf.Scalar): Set<string> => {
        const { grads } = valueAndGrads(f, named.map(([, p]) => p));
        const out = new Set<string>();
        for (const [n, p] of named) {
          const g = grads.get(p)!;
          if (tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]!) > 0) out.add(n);
          g.dispose();
        }
        return out;
      };
      const imgT = touched(() => tf.sum(m.imageEmbeddings(b.pixels)));
      const txtT = touched(() => tf.sum(m.textEmbeddings(b.ids)));
      const both = [...imgT].filter((n) => txtT.has(n));
      if (shared) {
        expect(both.length).toBeGreaterThan(0);
        expect(both.every((n) => n.includes('.attn.shared.'))).toBe(true);
      } else {
        expect(both).toEqual([]);
        expect([...imgT].some((n) => n.includes('.language.'))).toBe(false);
        expect([...txtT].some((n) => n.includes('.vision.'))).toBe(false);
      }
      tf.dispose([b.pixels, b.ids]);
      m.dispose();
    }
  });

  it('the vision-language expert serves fused inputs in the top layers only', () => {
    const m = tinyMultiway(4, { vlExpertLayers: 1 });
    expect(m.layers.at(0).hasVL).toBe(false);
    expect(m.layers.at(1).hasVL).toBe(true);
    const b = toyBatch(2, 5, 11);
    const fused0 = m.encodeFused(b.pixels, b.ids).lastHidden;
    expect(fused0.shape).toEqual([2, 10, 32]);
    const img0 = m.imageEmbeddings(b.pixels);
    const vl = m.layers.at(1).ffn.get('vl');
    const vb = vl.fc2.bias!;
    vb.assign(tf.tidy(() => tf.add(vb.value, tf.randomUniform(vb.shape as number[], -0.5, 0.5, 'float32', 1))));
    const fused1 = m.encodeFused(b.pixels, b.ids).lastHidden;
    const img1 = m.imageEmbeddings(b.pixels);
    expect(compareClose(fused0, fused1, { atol: 1e-3 }).ok).toBe(false);
    expect(compareClose(img0, img1, { atol: 0, rtol: 0 }).ok).toBe(true);
    expect(() => tinyMultiway(0).encodeFused(b.pixels, b.ids)).toThrow(/vlExpertLayers/);
    tf.dispose([fused0, fused1, img0, img1, b.pixels, b.ids]);
    m.dispose();
  });

  it('rejects wrong inputs and configs with errors that name the field', () => {
    const m = tinyMultiway(0);
    const bad = tf.zeros([1, 8, 8, 3]);
    expect(() => m.imageEmbeddings(bad)).toThrow(/\[B, 16, 16, 3\]/);
    const long = tf.zeros([1, 13], 'int32');
    expect(() => m.textEmbeddings(long)).toThrow(/maxTextLen/);
    tf.dispose([bad, long]);
    m.dispose();
    expect(() => parseMultiwayConfig({ dim: 30, numHeads: 4 })).toThrow(/dim: 30 is not divisible/);
    try {
      parseMultiwayConfig({ patchSize: -1 });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(AdaptorkitError);
      expect((e as Error).message).toMatch(/patchSize/);
    }
  });

  it("BEiT-3 shapes: the base counts match the released checkpoints' 222.5M / 675.2M (+2 position rows)", () => {
    // the released vision position table has 2 extra rows (fairseq padding offset): + 2d
    const base = shapeOnly(() => new MultiwayTransformer(BEIT3_BASE_CONFIG).countParameters()) + 2 * 768;
    const large = shapeOnly(() => new MultiwayTransformer(BEIT3_LARGE_CONFIG).countParameters()) + 2 * 1024;
    expect(Math.round(base / 1e5) / 10).toBe(222.5);
    expect(Math.round(large / 1e5) / 10).toBe(675.2);
  });
});
