import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, AdaptorkitError, CausalLM, DecoderLayer, disposeGrads, initBackend, maskedCrossEntropy, spliceFeatures, tf, valueAndGrads, type Parameter } from '@adaptorkit/core';
import {
  expectBitIdentical,
  expectClose,
  expectFlatTensorCount,
  randomIds,
  snapshotParameters,
  tinyCausalLM,
  tinyVisionEncoder,
} from '@adaptorkit/core/testing';
import { answerLabels, attachIaa, frozenBaselineConfig, iaaMethod, parseIaaConfig, resolveDepths, type IaaModel } from './index.js';

const IMG = 5; // image placeholder id in the tiny vocab (64)
const N_IMG = 16; // tiny vision: 16x16 image, 4x4 patches -> 16 patch tokens (+1 class token dropped)

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

function tinyBase(seed = 0, layers = 3): { lm: CausalLM; vision: ReturnType<typeof tinyVisionEncoder> } {
  return { lm: tinyCausalLM(seed, { numLayers: layers }), vision: tinyVisionEncoder(seed + 100) };
}

/** Rows [BOS=1, <image> x16, q0, q1, ...]; */
function mmIds(b: number, q: number, seed: number): number[][] {
  const rnd = randomIds(b, q, 64, seed);
  const qs = rnd.arraySync();
  rnd.dispose();
  return qs.map((row) => [1, ...new Array<number>(N_IMG).fill(IMG), ...row.map((t) => (t === IMG ? 6 : t))]);
}

function pixels(b: number, seed: number): tf.Tensor4D {
  return tf.randomUniform([b, 16, 16, 3], -1, 1, 'float32', seed) as tf.Tensor4D;
}

/** Hand-built reference of the multimodal stack on the base modules: layer k's insertion = `inserted(k)`. */
function referenceForward(m: IaaModel, ids: tf.Tensor2D, inserted: (k: number) => DecoderLayer, embed?: tf.Tensor3D): tf.Tensor3D {
  return tf.tidy(() => {
    const lm = m.lm;
    const T = ids.shape[1];
    const rope = lm.rope(0, T);
    let h = embed ?? (lm.embed(ids) as tf.Tensor);
    for (let i = 0; i < lm.numLayers; i++) {
      h = lm.model.layers.at(i).forward(h, { rope, causal: true });
      const k = m.depths.indexOf(i);
      if (k >= 0) h = inserted(k).forward(h, { rope, causal: true });
    }
    return lm.head(lm.model.norm.forward(h)) as tf.Tensor3D;
  });
}

describe('config', () => {
  it('presets reproduce the released layouts on 32 layers', () => {
    expect(resolveDepths('iaa14', 32)).toEqual([0, 1, 5, 6, 10, 11, 15, 16, 20, 21, 25, 26, 30, 31]);
    expect(resolveDepths('iaa8', 32)).toEqual([0, 5, 10, 15, 20, 25, 30, 31]);
    expect(resolveDepths('every:8', 32)).toEqual([0, 8, 16, 24]);
    expect(resolveDepths('spread:4', 10)).toEqual([0, 3, 6, 9]);
    expect(resolveDepths('last:3', 10)).toEqual([7, 8, 9]);
    expect(resolveDepths('first:2', 10)).toEqual([0, 1]);
    expect(resolveDepths('none', 10)).toEqual([]);
    expect(resolveDepths([4, 1], 10)).toEqual([1, 4]);
  });

  it('defaults are the paper and bad fields are named by path', () => {
    const c = parseIaaConfig({});
    expect(c).toMatchObject({ depths: 'iaa14', init: 'copy', projector: 'mlp2x_gelu', visionFeatureLayer: -2, visionFeatureSelect: 'patch', tasks: ['mm'] });
    expect(c.train).toEqual({ insertionLayers: true, embedding: true, norm: true, head: true, projector: true });
    expect(() => parseIaaConfig({ depths: [1, 1] })).toThrow(/depths/);
    expect(() => parseIaaConfig({ depths: 'every:0' })).toThrow(/depths/);
    expect(() => parseIaaConfig({ tasks: ['mm', 'text'] })).toThrow(/tasks\.1/);
    expect(() => parseIaaConfig({ projector: 'linear' })).toThrow(/projector/);
    expect(() => parseIaaConfig({ train: { head: 'yes' } })).toThrow(/train\.head/);
    const base = tinyBase();
    expect(() => attachIaa(base, { depths: [0, 3] })).toThrow(/depths\.1.*outside 0\.\.2/);
    expect(() => attachIaa(base, { depths: 'iaa14' })).toThrow(AdaptorkitError);
    base.lm.dispose();
    base.vision.dispose();
  });
});

describe('wiring', () => {
  it('copy init: multimodal workflow on text equals the base with each insertion layer applied after its frozen twin', () => {
    const base = tinyBase(1, 4);
    const m = attachIaa(base, { depths: [0, 2, 3] });
    const ids = randomIds(2, 9, 64, 3);
    const got = m.logits(ids, 'mm');
    // The insertion layers are copies, so the reference applies the frozen layer twice.
    const ref = referenceForward(m, ids, (k) => base.lm.model.layers.at(m.depths[k]!));
    expectBitIdentical(got, ref, 'mm logits vs reference');
    // and it differs from the plain base (the wiring does something)
    const plain = base.lm.logits(ids);
    expect(tf.max(tf.abs(tf.sub(plain, got))).dataSync()[0]).toBeGreaterThan(1e-3);
    tf.dispose([ids, got, ref, plain]);
    m.dispose();
  });

  it('random init: insertion layer k runs after frozen layer S[k]; images are spliced at the placeholders', () => {
    const base = tinyBase(2, 3);
    const m = attachIaa(base, { depths: [1, 2], init: 'random', imageTokenId: IMG });
    const ids = tf.tensor2d(mmIds(2, 5, 4), undefined, 'int32');
    const px = pixels(2, 5);
    const got = m.logits(ids, 'mm', px);
    const set = m.taskSet('mm');
    const embed = tf.tidy(() => {
      const f = set.mm_projector.forward(m.encodeImages(px)); // [B, 16, d]
      const e = set.embed_tokens.forward(ids);
      const rows = ids.arraySync();
      // splice by hand: placeholder j of row b gets feature j
      const parts = rows.map((row, b) => {
        let j = 0;
        const eb = tf.unstack(tf.squeeze(tf.slice(e, [b, 0, 0], [1, -1, -1]), [0]));
        const fb = tf.unstack(tf.squeeze(tf.slice(f, [b, 0, 0], [1, -1, -1]), [0]));
        return tf.stack(row.map((t, i) => (t === IMG ? fb[j++]! : eb[i]!)));
      });
      return tf.stack(parts) as tf.Tensor3D;
    });
    expect(m.encodeImages(px).shape).toEqual([2, N_IMG, 32]);
    const ref = tf.tidy(() => {
      const lm = m.lm;
      const rope = lm.rope(0, ids.shape[1]);
      let h: tf.Tensor = embed;
      for (let i = 0; i < 3; i++) {
        h = lm.model.layers.at(i).forward(h, { rope, causal: true });
        if (i === 1) h = set.layers.at(0).forward(h, { rope, causal: true });
        if (i === 2) h = set.layers.at(1).forward(h, { rope, causal: true });
      }
      return set.lm_head.forward(set.norm.forward(h));
    });
    expectClose(got, ref, { atol: 1e-5 });
    // the image feeds the model: another image changes the logits
    const px2 = pixels(2, 6);
    const got2 = m.logits(ids, 'mm', px2);
    expect(tf.max(tf.abs(tf.sub(got, got2))).dataSync()[0]).toBeGreaterThan(1e-4);
    expect(() => m.logits(ids, 'mm')).toThrow(/placeholders/);
    expect(() => m.logits(ids, 'text', px)).toThrow(/text-only/);
    tf.dispose([ids, px, px2, got, got2, embed, ref]);
    m.dispose();
  });

  it('works on a tied-embedding LM and a SigLIP tower (no class token to drop)', () => {
    const base = { lm: tinyCausalLM(9, { numLayers: 2, tieWordEmbeddings: true }), vision: tinyVisionEncoder(109, { kind: 'siglip' }) };
    const m = attachIaa(base, { depths: [1], imageTokenId: IMG });
    expect(m.imageTokens).toBe(16);
    const ids = tf.tensor2d(mmIds(1, 3, 5), undefined, 'int32');
    const px = pixels(1, 3);
    const feats = m.encodeImages(px);
    expect(feats.shape).toEqual([1, 16, 32]);
    const got = m.logits(ids, 'mm', px);
    const set = m.taskSet('mm');
    const embed = tf.tidy(() => spliceFeatures(m.lm.embed(ids), ids.dataSync() as Int32Array, IMG, set.mm_projector.forward(feats)));
    const ref = referenceForward(m, ids, (k) => base.lm.model.layers.at(m.depths[k]!), embed);
    expectClose(got, ref, { atol: 1e-5 });
    tf.dispose([ids, px, feats, got, embed, ref]);
    m.dispose();
  });

  it("identity init: multimodal workflow on text equals the base at step 0", () => {
    const base = tinyBase(3, 3);
    const m = attachIaa(base, { depths: 'every:1', init: 'identity' });
    expect(m.depths).toEqual([0, 1, 2]);
    const ids = randomIds(2, 7, 64, 8);
    const got = m.logits(ids, 'mm');
    const ref = base.lm.logits(ids);
    expectBitIdentical(got, ref, 'identity-init mm logits vs base');
    tf.dispose([ids, got, ref]);
    m.dispose();
  });

  it('identity init on a Gemma-2-shaped base (scaled embeddings, (1 + w) norms, soft-capped logits, sliding layers) equals the base too', () => {
    const lm = tinyCausalLM(4, {
      modelType: 'gemma2', numLayers: 3, unitOffsetNorms: true, sandwichNorms: true, embedScale: 8, attnScale: 0.3, attnLogitSoftcap: 5,
      finalLogitSoftcap: 3, hiddenAct: 'gelu_tanh', slidingWindow: 3, layerTypes: ['sliding_attention', 'full_attention', 'sliding_attention'],
    });
    const m = attachIaa({ lm, vision: tinyVisionEncoder(104) }, { depths: 'every:1', init: 'identity' });
    const ids = randomIds(2, 7, 64, 9);
    const got = m.logits(ids, 'mm');
    const ref = lm.logits(ids);
    expectClose(got, ref, { atol: 1e-5 });
    tf.dispose([ids, got, ref]);
    m.dispose();
  });
});

describe('trainable set', () => {
  it('only IAA parameters train, per part and per task set', () => {
    const base = tinyBase(4, 3);
    const m = attachIaa(base, { depths: [0, 2], tasks: ['mm', 'grounding'], imageTokenId: IMG });
    expect(base.lm.countParameters({ trainable: true })).toBe(0);
    expect(base.vision.countParameters({ trainable: true })).toBe(0);
    const names = m.namedIaaParameters().map(([n]) => n);
    expect(names.every((n) => n.startsWith('sets.mm.') || n.startsWith('sets.grounding.'))).toBe(true);
    expect(m.trainableParameters().length).toBe(names.length);
    expect(m.iaaParameters('grounding').length).toBe(names.length / 2);
    // d=32, f=64, d_kv=2*8=16, V=64, 2 insertion layers, projector 32->32->32
    const layer = 2 * 32 * 32 + 2 * 32 * 16 + 3 * 32 * 64 + 2 * 32;
    expect(m.countIaaParameters('mm')).toEqual({
      insertionLayers: 2 * layer, embedding: 64 * 32, norm: 32, head: 64 * 32, projector: 2 * (32 * 32 + 32),
      total: 2 * layer + 2 * 64 * 32 + 32 + 2 * (32 * 32 + 32),
    });
    m.dispose();

    const b2 = tinyBase(4, 3);
    const baseline = attachIaa(b2, frozenBaselineConfig({ imageTokenId: IMG }));
    expect(baseline.depths).toEqual([]);
    expect(baseline.namedIaaParameters().map(([n]) => n)).toEqual(['sets.mm.mm_projector.0.weight', 'sets.mm.mm_projector.0.bias', 'sets.mm.mm_projector.2.weight', 'sets.mm.mm_projector.2.bias']);
    // the baseline's multimodal workflow on text is the base model
    const ids = randomIds(1, 6, 64, 2);
    const a = baseline.logits(ids, 'mm');
    const b = b2.lm.logits(ids);
    expectBitIdentical(a, b, 'projector-only baseline on text');
    tf.dispose([ids, a, b]);
    baseline.dispose();
    expect(iaaMethod.configSchema.parse({}).depths).toBe('iaa14');
  });
});

function trainStep(m: IaaModel, opt: AdamW, params: Parameter[], batch: { ids: tf.Tensor2D; labels: tf.Tensor2D; images: tf.Tensor4D }, task = 'mm'): number {
  const { loss, grads } = valueAndGrads(() => m.loss({ ...batch, task }), params);
  opt.step(grads);
  disposeGrads(grads);
  return loss;
}

describe('training', () => {
  it('text workflow and every frozen weight stay bit-identical; other task sets untouched; numTensors flat', async () => {
    const base = tinyBase(5, 3);
    const m = attachIaa(base, { depths: [0, 2], tasks: ['mm', 'grounding'], imageTokenId: IMG });
    const textIds = randomIds(2, 8, 64, 11);
    const before = base.lm.logits(textIds);
    const textBefore = m.logits(textIds, 'text');
    expectBitIdentical(textBefore, before, 'text workflow vs base before training');
    const pplBefore = m.perplexity(textIds);
    const ce = maskedCrossEntropy(before, textIds);
    expect(pplBefore.perplexity).toBeCloseTo(Math.exp(ce.dataSync()[0]!), 4);
    expect(pplBefore.tokens).toBe(2 * 7);
    ce.dispose();
    const frozen = snapshotParameters([...base.lm.namedParameters(), ...base.vision.namedParameters().map(([n, p]) => [`vision.${n}`, p] as [string, Parameter])]);
    const otherSet = snapshotParameters(m.taskSet('grounding').namedParameters());
    const mmBefore = snapshotParameters(m.taskSet('mm').namedParameters());

    const rows = mmIds(2, 6, 12);
    const ids = tf.tensor2d(rows, undefined, 'int32');
    const labels = answerLabels(rows, [rows[0]!.length - 3, rows[1]!.length - 3], { imageTokenId: IMG });
    const images = pixels(2, 13);
    const params = m.iaaParameters('mm');
    const opt = new AdamW(params, { lr: 1e-2 });
    await expectFlatTensorCount(() => void trainStep(m, opt, params, { ids, labels, images }), 6);

    const after = m.logits(textIds, 'text');
    expectBitIdentical(after, before, 'text workflow vs base after training');
    expect(m.perplexity(textIds)).toEqual(pplBefore); // held-out text perplexity: exactly the base's
    for (const [name, p] of [...base.lm.namedParameters(), ...base.vision.namedParameters().map(([n, p]) => [`vision.${n}`, p] as [string, Parameter])]) {
      expectBitIdentical(p.value, frozen.get(name)!, name);
    }
    for (const [name, p] of m.taskSet('grounding').namedParameters()) expectBitIdentical(p.value, otherSet.get(name)!, `grounding ${name}`);
    // the trained set did move (every part, the insertion layers included)
    const moved = m.taskSet('mm').namedParameters().filter(([n, p]) => {
      const a = p.value.dataSync();
      const b = mmBefore.get(n)!;
      return a.some((v, i) => v !== b[i]);
    }).map(([n]) => n.split('.')[0]);
    expect(new Set(moved)).toEqual(new Set(['mm_projector', 'embed_tokens', 'layers', 'norm', 'lm_head']));
    tf.dispose([textIds, before, textBefore, after, ids, labels, images]);
    opt.dispose();
    m.dispose();
  });

  it('a tiny model learns a toy multimodal task (loss falls far below what text alone allows)', () => {
    // The answer is the colour class of the image (4 classes, tokens 10..13); the question text is
    // the same for every class, so a loss below ln 4 needs the image. 8x8 images -> 4 patch tokens.
    const base = { lm: tinyCausalLM(6, { numLayers: 2 }), vision: tinyVisionEncoder(106, { imageSize: 8 }) };
    const m = attachIaa(base, { depths: [0, 1], imageTokenId: IMG, seed: 1 });
    expect(m.imageTokens).toBe(4);
    const params = m.iaaParameters();
    const opt = new AdamW(params, { lr: 1e-2, weightDecay: 0 });
    const B = 8;
    const colours = [[1, -1, -1], [-1, 1, -1], [-1, -1, 1], [1, 1, -1]];
    const makeBatch = (step: number, shuffleImages = false): { ids: tf.Tensor2D; labels: tf.Tensor2D; images: tf.Tensor4D } => {
      const cls = Array.from({ length: B }, (_, b) => (step * 7 + b * 3 + (b >> 2)) % 4);
      const rows = cls.map((c) => [1, IMG, IMG, IMG, IMG, 20, 21, 10 + c, 2]);
      const ids = tf.tensor2d(rows, undefined, 'int32');
      const labels = answerLabels(rows, rows.map((r) => r.length - 2), { imageTokenId: IMG });
      const imgCls = shuffleImages ? cls.map((c) => (c + 1) % 4) : cls;
      const images = tf.tidy(() => {
        const base4 = tf.tensor(imgCls.flatMap((c) => colours[c]!), [B, 1, 1, 3]);
        return tf.add(tf.tile(base4, [1, 8, 8, 1]), tf.randomNormal([B, 8, 8, 3], 0, 0.3, 'float32', step)) as tf.Tensor4D;
      });
      return { ids, labels, images };
    };
    const losses: number[] = [];
    for (let step = 0; step < 20; step++) {
      const b = makeBatch(step);
      losses.push(trainStep(m, opt, params, b));
      tf.dispose([b.ids, b.labels, b.images]);
    }
    const evalLoss = (shuffle: boolean): number => {
      const b = makeBatch(1000, shuffle);
      const l = m.loss({ ...b, task: 'mm' });
      const v = l.dataSync()[0]!;
      tf.dispose([l, b.ids, b.labels, b.images]);
      return v;
    };
    const right = evalLoss(false);
    const wrong = evalLoss(true);
    expect(losses[losses.length - 1]!).toBeLessThan(losses[0]! * 0.2);
    expect(right).toBeLessThan(Math.log(4) * 0.5);
    expect(wrong).toBeGreaterThan(right + 1); // the answer follows the image, not the text
    opt.dispose();
    m.dispose();
  });
});

describe('generation', () => {
  it('KV-cache greedy decoding equals full-forward argmax in both workflows', () => {
    const base = tinyBase(7, 3);
    const m = attachIaa(base, { depths: [0, 1], init: 'random', imageTokenId: IMG, seed: 3 });
    const rows = mmIds(2, 4, 21);
    const images = pixels(2, 22);
    const steps = 6;
    const check = (task: string, prompt: number[][], imgs?: tf.Tensor4D): void => {
      const got = m.generate({ ids: prompt, task, images: imgs, maxNewTokens: steps });
      // reference: no cache, rerun the whole sequence each step
      const seqs = prompt.map((r) => [...r]);
      for (let s = 0; s < steps; s++) {
        const next = tf.tidy(() => {
          const ids = tf.tensor2d(seqs, undefined, 'int32');
          const logits = m.forward({ ids, task, images: imgs }).logits!;
          const [B, T, V] = logits.shape;
          const last = tf.reshape(tf.slice(logits, [0, T - 1, 0], [B, 1, V]), [B, V]);
          const banned = tf.reshape(tf.oneHot(tf.tensor1d([IMG], 'int32'), V), [1, V]);
          return tf.argMax(tf.sub(last, tf.mul(banned, 1e9)), -1).arraySync() as number[];
        });
        next.forEach((t, b) => seqs[b]!.push(t));
      }
      expect(got).toEqual(seqs.map((r, b) => r.slice(prompt[b]!.length)));
    };
    m.generate({ ids: rows, task: 'mm', images, maxNewTokens: 1 }); // builds the rotary tables once
    const before = tf.memory().numTensors;
    check('mm', rows, images);
    check('text', rows.map((r) => r.filter((t) => t !== IMG)));
    expect(tf.memory().numTensors).toBe(before);
    // sampling: top-k 1 is greedy; a seed reproduces; eos stops a row
    const greedy = m.generate({ ids: rows, task: 'mm', images, maxNewTokens: 4 });
    expect(m.generate({ ids: rows, task: 'mm', images, maxNewTokens: 4, temperature: 1, topK: 1, seed: 9 })).toEqual(greedy);
    const s1 = m.generate({ ids: rows, task: 'mm', images, maxNewTokens: 8, temperature: 2, seed: 1 });
    expect(m.generate({ ids: rows, task: 'mm', images, maxNewTokens: 8, temperature: 2, seed: 1 })).toEqual(s1);
    const stop = greedy[0]![1]!;
    const cut = m.generate({ ids: rows, task: 'mm', images, maxNewTokens: 4, eosId: stop });
    expect(cut[0]).toEqual(greedy[0]!.slice(0, greedy[0]!.indexOf(stop)));
    // ragged prompts (left-padded and masked) decode as each prompt alone
    const ragged = [rows[0]!, [...rows[1]!.slice(0, N_IMG + 1), 7]];
    const batched = m.generate({ ids: ragged, task: 'mm', images, maxNewTokens: 5 });
    const alone = ragged.map((r, b) =>
      tf.tidy(() => m.generate({ ids: [r], task: 'mm', images: tf.slice(images, [b, 0, 0, 0], [1, -1, -1, -1]), maxNewTokens: 5 })[0]!),
    );
    expect(batched).toEqual(alone);
    const textRagged = [[1, 9, 12, 30, 4], [1, 8]];
    expect(m.generate({ ids: textRagged, task: 'text', maxNewTokens: 5 })).toEqual(textRagged.map((r) => m.generate({ ids: [r], task: 'text', maxNewTokens: 5 })[0]));
    expect(m.generate({ ids: rows, task: 'mm', images, maxNewTokens: 0 })).toEqual([[], []]);
    expect(tf.memory().numTensors).toBe(before);
    images.dispose();
    m.dispose();
  });
});
