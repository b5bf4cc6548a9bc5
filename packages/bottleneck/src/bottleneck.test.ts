import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, AdaptorkitError, argmax, disposeGrads, initBackend, tf, valueAndGrads, type GenerativeBase, type MethodBatch } from '@adaptorkit/core';
import { expectBitIdentical, randomIds, snapshotParameters, tinyCausalLM, tinyVisionEncoder } from '@adaptorkit/core/testing';
import { attachBottleneck, bottleneckConfigSchema, bottleneckMethod, bottleneckParameterFormula, type BottleneckModel } from './index.js';

const IMG = 5; // image placeholder id in the tiny vocab (64)
const N_IMG = 16; // tiny CLIP: 16x16 image, 4x4 patches -> 16 patch tokens (class token dropped)
const PAD = 0;

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

function base(seed = 0): GenerativeBase {
  return { lm: tinyCausalLM(seed), vision: tinyVisionEncoder(seed + 100), placeholderIds: { image: IMG }, padId: PAD, eosId: 2 };
}

function model(seed = 0, cfg: Record<string, unknown> = {}): BottleneckModel {
  const b = base(seed);
  return attachBottleneck(b, bottleneckConfigSchema.parse({ imageTokenId: IMG, size: 4, ...cfg }));
}

/** Rows [BOS=1, <image> x16, q...] with q free of the placeholder id. */
function mmRows(b: number, q: number, seed: number): number[][] {
  const rnd = randomIds(b, q, 64, seed);
  const qs = rnd.arraySync();
  rnd.dispose();
  return qs.map((row) => [1, ...new Array<number>(N_IMG).fill(IMG), ...row.map((t) => (t === IMG || t === PAD ? 6 : t))]);
}

function pixels(b: number, seed: number): tf.Tensor4D {
  return tf.randomUniform([b, 16, 16, 3], -1, 1, 'float32', seed) as tf.Tensor4D;
}

/** A right-padded training batch with answer labels on the last 3 tokens of each row. */
function batchOf(rows: number[][], images: tf.Tensor4D): MethodBatch {
  const B = rows.length;
  const T = Math.max(...rows.map((r) => r.length));
  const ids = new Int32Array(B * T).fill(PAD);
  const labels = new Int32Array(B * T).fill(-100);
  rows.forEach((r, b) => {
    ids.set(r, b * T);
    for (let t = r.length - 3; t < r.length; t++) labels[b * T + t] = r[t]!;
  });
  const px = images.dataSync() as Float32Array;
  const per = 16 * 16 * 3;
  return { B, T, ids, labels, lengths: rows.map((r) => r.length), inputs: rows.map((_, row) => ({ modality: 'image', row, data: px.slice(row * per, (row + 1) * per) })) };
}

describe('bottleneck adapters', () => {
  it('start as the identity: the adapted LM gives the base logits bit for bit (up-projection zero)', () => {
    const ids = randomIds(2, 7, 64, 3);
    const ref = tinyCausalLM(0);
    const want = ref.forward({ ids }).logits!;
    const m = model(0);
    const got = m.forward(ids);
    expectBitIdentical(got, want, 'logits');
    tf.dispose([ids, want, got]);
    ref.dispose();
    m.dispose();
  });

  it('trainable parameters: exactly the adapters and the projector, counted by the README formula', () => {
    const m = model(0);
    const names = m.namedTrainableParameters().map(([n]) => n);
    expect(names.every((n) => /(postAttn|postMlp)\.(down|up)\.|^projector\./.test(n))).toBe(true);
    expect(names.filter((n) => n.includes('postAttn')).length).toBe(2 * 4); // 2 layers x (down, up) x (weight, bias)
    const trainable = m.countParameters({ trainable: true });
    expect(trainable).toBe(bottleneckParameterFormula({ layers: 2, positions: 2, dim: 32, size: 4, visionDim: 32, projectorDepth: 2 }));
    expect(trainable).toBe(2 * 2 * (2 * 32 * 4 + 4 + 32) + (32 * 32 + 32) * 2);
    const attnOnly = model(0, { positions: ['attention'], layers: [1] });
    expect(attnOnly.adapters.length).toBe(1);
    expect(attnOnly.lm.model.layers.at(0).getAdapter('postAttn')).toBeUndefined();
    m.dispose();
    attnOnly.dispose();
  });

  it('training moves only the adapters and the projector; frozen weights bit-identical; loss drops; tensor count flat', () => {
    const b = base(1);
    const adapted = bottleneckMethod.attach(b, { size: 8 });
    const named = adapted.trainable();
    const frozen = adapted.module.namedParameters().filter(([, p]) => !p.trainable);
    const before = snapshotParameters(frozen.map(([n, p]) => [n, { value: p.value as tf.Variable }]));
    const images = pixels(4, 7);
    const batch = batchOf(mmRows(4, 5, 11), images);
    const opt = new AdamW(named.map(([, p]) => ({ params: [p], weightDecay: 0 })), { lr: 1e-2 });
    const losses: number[] = [];
    let counts: number[] = [];
    for (let s = 0; s < 12; s++) {
      const r = valueAndGrads(() => tf.tidy(() => adapted.loss(batch, true)), named.map(([, p]) => p));
      opt.step(r.grads);
      disposeGrads(r.grads);
      losses.push(r.loss);
      counts.push(tf.memory().numTensors);
    }
    counts = counts.slice(2);
    expect(new Set(counts).size).toBe(1);
    expect(losses[losses.length - 1]!).toBeLessThan(losses[0]! * 0.8);
    for (const [n, p] of frozen) expectBitIdentical(p.value as tf.Tensor, before.get(n)!, n);
    opt.dispose();
    images.dispose();
    adapted.module.dispose();
  });

  it("greedy decoding through core's generate equals the model's own forward argmax chain (images, ragged rows, EOS rule)", () => {
    const m = model(2, { initStd: 0.5 });
    // give the up-projections weights so the adapters change the output
    for (const a of m.adapters) a.up.weight.assign(tf.randomNormal(a.up.weight.value.shape, 0, 0.3, 'float32', 9), 'up');
    const rows = mmRows(3, 4, 21).map((r, i) => r.slice(0, r.length - i)); // lengths differ
    const images = pixels(3, 5);
    const got = m.generate({ ids: rows, images, maxNewTokens: 6, padId: PAD });
    for (let b = 0; b < rows.length; b++) {
      const seq = [...rows[b]!];
      const img = tf.slice(images, [b], [1]);
      const want: number[] = [];
      for (let s = 0; s < 6; s++) {
        const logits = tf.tidy(() => {
          const l = m.forward(tf.tensor2d([seq], [1, seq.length], 'int32'), img);
          return tf.reshape(tf.slice(l, [0, seq.length - 1, 0], [1, 1, -1]), [-1]);
        });
        const row = logits.dataSync() as Float32Array;
        row[IMG] = -Infinity; // the placeholder is never generated
        const next = argmax(row);
        logits.dispose();
        want.push(next);
        seq.push(next);
      }
      expect(got[b]).toEqual(want);
      img.dispose();
    }
    // EOS rule: a row ends at eosId, which is not returned
    const first = got[0]![2]!;
    const img0 = tf.slice(images, [0], [1]);
    const cut = m.generate({ ids: [rows[0]!], images: img0, maxNewTokens: 6, padId: PAD, eosId: first });
    img0.dispose();
    expect(cut[0]).toEqual(got[0]!.slice(0, got[0]!.indexOf(first)));
    // sampling options reach core's generate: seeded, topK 1 is greedy, a hot temperature leaves the greedy chain
    const hot = (seed: number) => m.generate({ ids: rows, images, maxNewTokens: 6, padId: PAD, temperature: 50, seed });
    expect(hot(1)).toEqual(hot(1));
    expect(hot(1)).not.toEqual(got);
    expect(m.generate({ ids: rows, images, maxNewTokens: 6, padId: PAD, temperature: 1, topK: 1, seed: 3 })).toEqual(got);
    images.dispose();
    m.dispose();
  });

  it('adapter save -> load round trip through the contract reproduces the trained model', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'adaptorkit-bottleneck-'));
    try {
      const a = bottleneckMethod.attach(base(3), { size: 4 });
      for (const [, p] of a.trainable()) p.assign(tf.randomNormal(p.value.shape, 0, 0.1, 'float32', 4), 'p');
      const rows = mmRows(2, 4, 8);
      const images = pixels(2, 1);
      const batch = batchOf(rows, images);
      const lossA = tf.tidy(() => a.loss(batch, false).dataSync()[0]!);
      await a.save(dir);
      const b = bottleneckMethod.attach(base(3), { size: 4 });
      const fresh = tf.tidy(() => b.loss(batch, false).dataSync()[0]!);
      expect(fresh).not.toBe(lossA);
      await b.load(dir);
      const lossB = tf.tidy(() => b.loss(batch, false).dataSync()[0]!);
      expect(lossB).toBe(lossA);
      expect(b.describe()).toEqual({ method: 'bottleneck', config: expect.objectContaining({ size: 4, imageTokenId: IMG }) });
      images.dispose();
      a.module.dispose();
      b.module.dispose();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses an unknown config key, naming it and the closest known one', () => {
    const b = base(0);
    expect(() => bottleneckMethod.attach(b, { sise: 8 })).toThrow(AdaptorkitError);
    expect(() => bottleneckMethod.attach(b, { sise: 8 })).toThrow(/method\.config\.sise: unknown key \(did you mean 'size'\?\)/);
    expect(() => attachBottleneck(b, bottleneckConfigSchema.parse({ imageTokenId: IMG, size: 4, layers: [5] }))).toThrow(/layers: 5 out of range/);
    b.lm.dispose();
    b.vision?.dispose();
  });
});
