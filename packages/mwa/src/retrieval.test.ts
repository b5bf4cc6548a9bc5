import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '@adaptorkit/core';
import { expectClose } from '@adaptorkit/core/testing';
import { ShapesWorld } from '@adaptorkit/data';
import { attachMwa } from './attach.js';
import { contrastiveLoss, encodeImages, encodeTexts, evaluateRetrieval, recallAtK, retrievalScores, shapesWorldMultiwayShape, shapesWorldRetrievalBatch } from '@adaptorkit/shapes-bases';
import { tinyMultiway, toyBatch } from '@adaptorkit/shapes-bases/testing';

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

describe('recallAtK', () => {
  it('a perfect diagonal scores 1 everywhere; a constant matrix scores 0 (ties count against)', () => {
    const eye = tf.eye(12);
    const r = recallAtK(eye);
    expect(r.imageToText).toEqual({ r1: 1, r5: 1, r10: 1 });
    expect(r.textToImage).toEqual({ r1: 1, r5: 1, r10: 1 });
    const flat = tf.ones([12, 12]);
    const z = recallAtK(flat);
    expect(z.imageToText).toEqual({ r1: 0, r5: 0, r10: 0 });
    expect(z.textToImage).toEqual({ r1: 0, r5: 0, r10: 0 });
    tf.dispose([eye, flat]);
  });

  it('hand case: ranks computed by hand', () => {
    // rows = images, columns = texts; text i belongs to image i
    const s = [
      [0.9, 0.1, 0.2, 0.0], // image 0: gold 0.9 is best -> rank 0
      [0.5, 0.4, 0.6, 0.1], // image 1: gold 0.4 beaten by 0.5, 0.6 -> rank 2
      [0.0, 0.3, 0.1, 0.2], // image 2: gold 0.1 beaten by 0.3, 0.2 -> rank 2
      [0.2, 0.2, 0.2, 0.3], // image 3: gold best -> rank 0
    ];
    // text->image, column t: text 0 gold 0.9 (rank 0); text 1 gold 0.4 vs 0.1, 0.3, 0.2 (rank 0);
    // text 2 gold 0.1 vs 0.2, 0.6, 0.2 (rank 3); text 3 gold 0.3 vs 0.0, 0.1, 0.2 (rank 0)
    const r = recallAtK(s);
    expect(r.imageToText.r1).toBeCloseTo(0.5);
    expect(r.textToImage.r1).toBeCloseTo(0.75);
    // with k = 5 >= 4 candidates everything is found
    expect(r.imageToText.r5).toBe(1);
    expect(r.textToImage.r5).toBe(1);
    // two captions per image: texts 0,1 -> image 0; texts 2,3 -> image 1
    const two = [
      [0.2, 0.9, 0.5, 0.1],
      [0.3, 0.0, 0.1, 0.8],
    ];
    const q = recallAtK(two, { imageOfText: [0, 0, 1, 1] });
    expect(q.imageToText.r1).toBe(1); // best gold text of each image is its top score
    // text 0: 0.2 < 0.3 miss; text 1: 0.9 > 0.0 hit; text 2: 0.1 < 0.5 miss; text 3: 0.8 > 0.1 hit
    expect(q.textToImage.r1).toBeCloseTo(0.5);
  });
});

describe('retrieval helpers', () => {
  it('chunked encoding equals one pass; scores are cosine similarities', () => {
    const m = tinyMultiway(1);
    const b = toyBatch(5, 6, 3, { lens: [6, 3, 4, 6, 2] });
    const i1 = encodeImages(m, b.pixels, { batchSize: 2 });
    const i2 = m.imageEmbeddings(b.pixels);
    const t1 = encodeTexts(m, b.ids, { batchSize: 2 });
    const t2 = m.textEmbeddings(b.ids);
    expectClose(i1, i2, { atol: 1e-5 });
    expectClose(t1, t2, { atol: 1e-5 });
    const s = retrievalScores(i1, t1);
    expect(s.shape).toEqual([5, 5]);
    const manual = (i1.arraySync() as number[][])[2]!.reduce((acc, v, k) => acc + v * (t1.arraySync() as number[][])[3]![k]!, 0);
    expect((s.arraySync() as number[][])[2]![3]).toBeCloseTo(manual, 5);
    expect(() => retrievalScores(i1, tf.zeros([5, 3]))).toThrow(/\[I, e\]/);
    tf.dispose([i1, i2, t1, t2, s, b.pixels, b.ids]);
    m.dispose();
  });

  it('contrastiveLoss uses the learnable temperature and is log(B) for identical embeddings', () => {
    const m = tinyMultiway(2);
    const b = toyBatch(4, 5, 8);
    // zero the heads: every embedding is the same zero-safe vector -> uniform logits -> loss = log B
    m.vision_head.weight.assign(tf.tidy(() => tf.zerosLike(m.vision_head.weight.value)));
    m.language_head.weight.assign(tf.tidy(() => tf.zerosLike(m.language_head.weight.value)));
    const l = contrastiveLoss(m, b, { training: false });
    expect(l.dataSync()[0]).toBeCloseTo(Math.log(4), 5);
    tf.dispose([l, b.pixels, b.ids]);
    m.dispose();
  });

  it('ShapesWorld retrieval batches feed the model and a frozen random base with MWA evaluates end to end', () => {
    const world = new ShapesWorld({ seed: 3 });
    const pairs = world.retrieval('val', 6);
    const batch = shapesWorldRetrievalBatch(world, pairs, { maxLen: 48 });
    expect(batch.pixels.shape).toEqual([6, 32, 32, 3]);
    expect(batch.ids.shape).toEqual([6, 48]);
    const ids = batch.ids.arraySync() as number[][];
    expect(ids[0]![0]).toBe(world.tokenizer.bosId);
    expect(world.tokenizer.decode(ids[0]!)).toBe(pairs[0]!.text);
    const m = tinyMultiway(4, { ...shapesWorldMultiwayShape(world), maxTextLen: 48 });
    attachMwa(m, { extractor: { bottleneck: 8 } });
    const r = evaluateRetrieval(m, batch, { batchSize: 4 });
    for (const v of [r.imageToText.r1, r.textToImage.r10]) expect(v).toBeGreaterThanOrEqual(0);
    expect(r.imageToText.r10).toBe(1); // 6 candidates < 10
    expect(() => shapesWorldRetrievalBatch(world, pairs, { maxLen: 3 })).toThrow(/maxLen 3/);
    // a colour cast scales each channel of every pixel (the base's pretraining camera), ids untouched
    const cast = shapesWorldRetrievalBatch(world, pairs, { maxLen: 48, colourGains: [1, 0.5, 0] });
    const [a, c] = [batch.pixels.dataSync(), cast.pixels.dataSync()];
    const k = a.findIndex((v, i) => i % 3 === 1 && v > 0.1); // a green value
    expect(c[k]).toBeCloseTo(0.5 * a[k]!, 6);
    expect(c[k - 1]).toBe(a[k - 1]); // red kept
    expect(Math.max(...c.filter((_, i) => i % 3 === 2))).toBe(0); // blue gone
    expect(cast.ids.arraySync()).toEqual(ids);
    tf.dispose([batch.pixels, batch.ids, cast.pixels, cast.ids]);
    m.dispose();
  });
});
