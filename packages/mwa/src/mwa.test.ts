import { beforeAll, describe, expect, it } from 'vitest';
import { AdaptorkitError, initBackend, tf } from '@adaptorkit/core';
import { compareClose, expectBitIdentical, expectFlatTensorCount, snapshotParameters } from '@adaptorkit/core/testing';
import { AlignmentEnhancer, NewKnowledgeExtractor } from './adapters.js';
import { attachMwa } from './attach.js';
import { parseMwaConfig, mwaConfigSchema, type MwaConfigInput } from './config.js';
import { mwaMethod } from './method.js';
import { contrastiveLoss, trainContrastive } from '@adaptorkit/shapes-bases';
import { tinyMultiway, toyBatch } from '@adaptorkit/shapes-bases/testing';

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

const SMALL: MwaConfigInput = { extractor: { bottleneck: 8 } };

describe('attachMwa', () => {
  it('zero-initialised outputs: adapted embeddings equal the frozen model bit for bit', () => {
    const cfgs: MwaConfigInput[] = [
      SMALL,
      { extractor: { bottleneck: 8, scale: 'learnable', layerNorm: 'in' }, enhancer: { hidden: 'full' } },
      { extractor: { bottleneck: 8, layerNorm: 'out', modalities: ['vision'] }, enhancer: { layers: [0] } },
    ];
    for (const cfg of cfgs) {
      const m = tinyMultiway(5, { vlExpertLayers: 1 });
      const b = toyBatch(3, 7, 13, { lens: [4, 7, 6] });
      const img0 = m.imageEmbeddings(b.pixels);
      const txt0 = m.textEmbeddings(b.ids);
      const fused0 = m.encodeFused(b.pixels, b.ids).lastHidden;
      const mwa = attachMwa(m, cfg);
      expect(mwa.adapterModules().length).toBeGreaterThan(0);
      const img1 = m.imageEmbeddings(b.pixels);
      const txt1 = m.textEmbeddings(b.ids);
      const fused1 = m.encodeFused(b.pixels, b.ids).lastHidden;
      expectBitIdentical(img1, img0, 'image embeddings');
      expectBitIdentical(txt1, txt0, 'text embeddings');
      expectBitIdentical(fused1, fused0, 'fused hidden');
      tf.dispose([img0, txt0, img1, txt1, fused0, fused1, b.pixels, b.ids]);
      m.dispose();
    }
  });

  it("the reference's truncated-normal enhancer init perturbs the model at step 0", () => {
    const m = tinyMultiway(5);
    const b = toyBatch(2, 5, 13);
    const img0 = m.imageEmbeddings(b.pixels);
    attachMwa(m, { extractor: { bottleneck: 8 }, enhancer: { init: 'truncnormal' } });
    const img1 = m.imageEmbeddings(b.pixels);
    expect(compareClose(img1, img0, { atol: 1e-6, rtol: 0 }).ok).toBe(false);
    tf.dispose([img0, img1, b.pixels, b.ids]);
    m.dispose();
  });

  it('freezes the base and makes exactly the new modules trainable', () => {
    const m = tinyMultiway(6);
    const mwa = attachMwa(m, SMALL);
    const trainable = m.trainableParameters();
    expect(new Set(trainable)).toEqual(new Set(mwa.trainableParameters()));
    const names = m.namedTrainableParameters().map(([n]) => n);
    expect(names.every((n) => /^layers\.\d+\.(extractor\.(vision|language)|enhancer)\./.test(n))).toBe(true);
    // 2 layers x 2 modalities x (down w, b, up w, b) + 2 layers x (fc1 w, b, LN w, b, fc2 w, b)
    expect(names.length).toBe(2 * 2 * 4 + 2 * 6);
    const c = mwa.counts();
    expect(c.trainable).toBe(m.countParameters({ trainable: true }));
    expect(c.base).toBe(m.countParameters({ trainable: false }));
    // per-layer structure: per-modality extractors, one enhancer shared by both modalities
    const layer = m.layers.at(0);
    expect(layer.extractor('vision')).toBeInstanceOf(NewKnowledgeExtractor);
    expect(layer.extractor('vision')).not.toBe(layer.extractor('language'));
    expect(layer.enhancer).toBeInstanceOf(AlignmentEnhancer);
    // drop path rises linearly with depth (reference linspace(0, 0.2, L))
    expect((mwa.enhancers.get(0)!.opts.dropPath)).toBe(0);
    expect((mwa.enhancers.get(1)!.opts.dropPath)).toBeCloseTo(0.2);
    expect(() => attachMwa(m, SMALL)).toThrow(/already has MWA modules/);
    m.dispose();
  });

  it('extractors are per modality; the enhancer is shared by both passes', () => {
    const m = tinyMultiway(7);
    const b = toyBatch(2, 5, 17);
    const mwa = attachMwa(m, SMALL);
    const img0 = m.imageEmbeddings(b.pixels);
    const txt0 = m.textEmbeddings(b.ids);
    const up = mwa.extractors.get(0)!.get('vision')!.up;
    // a random vector (a constant one would vanish in the next LayerNorm)
    up.bias!.assign(tf.tidy(() => tf.randomUniform(up.bias!.shape as number[], -0.5, 0.5, 'float32', 3)));
    const img1 = m.imageEmbeddings(b.pixels);
    const txt1 = m.textEmbeddings(b.ids);
    expect(compareClose(img1, img0, { atol: 1e-4 }).ok).toBe(false);
    expectBitIdentical(txt1, txt0, 'text after changing the vision extractor');
    const fc2 = mwa.enhancers.get(1)!.fc2;
    fc2.bias!.assign(tf.tidy(() => tf.randomUniform(fc2.bias!.shape as number[], -0.5, 0.5, 'float32', 4)));
    const img2 = m.imageEmbeddings(b.pixels);
    const txt2 = m.textEmbeddings(b.ids);
    expect(compareClose(img2, img1, { atol: 1e-4 }).ok).toBe(false);
    expect(compareClose(txt2, txt1, { atol: 1e-4 }).ok).toBe(false);
    tf.dispose([img0, img1, img2, txt0, txt1, txt2, b.pixels, b.ids]);
    m.dispose();
  });

  it('reseedMasks: the same seed draws the same dropout / drop-path masks, another seed others', () => {
    const m = tinyMultiway(4);
    const mwa = attachMwa(m, { extractor: { bottleneck: 8, dropout: 0.5 }, enhancer: { dropPath: 0.5, init: 'truncnormal' } });
    for (const e of mwa.extractors.values()) for (const x of e.values()) tf.tidy(() => x.up.weight.assign(tf.randomNormal(x.up.weight.shape as number[], 0, 0.1, 'float32', 9)));
    const b = toyBatch(4, 6, 21);
    const lossAt = (seed: number): number => {
      mwa.reseedMasks(seed);
      return tf.tidy(() => contrastiveLoss(m, b, { training: true }).dataSync()[0]!);
    };
    const a = lossAt(11);
    lossAt(12); // advances the streams
    expect(lossAt(11)).toBe(a);
    expect(lossAt(12)).not.toBe(a);
    tf.dispose([b.pixels, b.ids]);
    m.dispose();
  });

  it('training lowers the contrastive loss, leaves frozen weights bit-identical and leaks no tensor', async () => {
    const m = tinyMultiway(8);
    const mwa = attachMwa(m, { extractor: { bottleneck: 8 }, enhancer: { hidden: 16 } });
    const frozen = snapshotParameters(m.namedParameters().filter(([, p]) => !p.trainable));
    const adapters0 = snapshotParameters(m.namedTrainableParameters());
    const batch = toyBatch(8, 6, 21);
    const lossBefore = tf.tidy(() => contrastiveLoss(m, batch, { training: false }).dataSync()[0]!);
    // leak check over single steps first
    await expectFlatTensorCount(() => {
      trainContrastive(m, () => batch, { params: mwa.trainableParameters(), steps: 1, lr: 1e-3 });
    }, 4);
    const r = trainContrastive(m, () => batch, { params: mwa.trainableParameters(), steps: 40, lr: 5e-3, weightDecay: 0.05 });
    const lossAfter = tf.tidy(() => contrastiveLoss(m, batch, { training: false }).dataSync()[0]!);
    expect(r.losses).toHaveLength(40);
    expect(lossAfter).toBeLessThan(lossBefore * 0.8);
    for (const [n, p] of m.namedParameters()) {
      if (!p.trainable) expectBitIdentical(p.value, frozen.get(n)!, n);
    }
    let changed = 0;
    for (const [n, p] of m.namedTrainableParameters()) {
      const before = adapters0.get(n)!;
      if (!compareClose(p.value, before, { atol: 0, rtol: 0 }).ok) changed++;
    }
    expect(changed).toBe(m.namedTrainableParameters().length);
    tf.dispose([batch.pixels, batch.ids]);
    m.dispose();
  });
});

describe('mwa config', () => {
  it("defaults are the paper's setting", () => {
    const c = parseMwaConfig({});
    expect(c.extractor).toMatchObject({ enabled: true, modalities: ['vision', 'language'], bottleneck: 64, scale: 0.6, dropout: 0.1, layerNorm: 'none', layers: 'all' });
    expect(c.enhancer).toMatchObject({ enabled: true, hidden: 'd/4', init: 'zero', layers: 'all', dropPath: 0.2 });
  });

  it('names the path of a bad field', () => {
    const bad = (input: unknown, path: RegExp): void => {
      try {
        parseMwaConfig(input);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(AdaptorkitError);
        expect((e as AdaptorkitError).code).toBe('INVALID_CONFIG');
        expect((e as Error).message).toMatch(path);
      }
    };
    bad({ extractor: { bottleneck: 0 } }, /extractor\.bottleneck/);
    bad({ extractor: { modalities: ['audio'] } }, /extractor\.modalities\.0/);
    bad({ enhancer: { hidden: 'd/0' } }, /enhancer\.hidden/);
    bad({ enhancer: { init: 'xavier' } }, /enhancer\.init/);
    const m = tinyMultiway(0);
    expect(() => attachMwa(m, { enhancer: { layers: [0, 5] } })).toThrow(/enhancer\.layers: layer\(s\) 5 out of range/);
    m.dispose();
  });

  it('mwaMethod is a plain value for the trainer', () => {
    expect(mwaMethod.configSchema).toBe(mwaConfigSchema);
    const m = tinyMultiway(0);
    const h = mwaMethod.attach(m, { extractor: { bottleneck: 4 }, enhancer: { enabled: false } });
    expect(h.enhancers.size).toBe(0);
    expect(h.counts().extractors).toBe(2 * 2 * (2 * 32 * 4 + 4 + 32));
    m.dispose();
  });
});
