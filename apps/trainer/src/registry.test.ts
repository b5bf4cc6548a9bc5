/**
 * The AdaptorMethod contract, checked on every registered method: who it is, a strict config
 * schema, attach -> loss -> save -> load round trip, and greedy decoding (through core's generate)
 * equal to the method's own forward argmax chain.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argmax, initBackend, manualSeed, tf, type GenerativeBase, type GenerativeModel, type MethodBatch, type Parameter } from '@adaptorkit/core';
import { tinyCausalLM, tinyVisionEncoder } from '@adaptorkit/core/testing';
import { ShapesWorld } from '@adaptorkit/data';
import { MultiwayTransformer, saveMultiway, shapesWorldMultiwayShape } from '@adaptorkit/shapes-bases';
import { METHODS } from './registry.js';

const IMG = 5; // image placeholder id in the tiny vocab (64)
const PAD = 0;
/** Small settings for the tiny 2-layer bases (defaults elsewhere). */
const TINY: Record<string, Record<string, unknown>> = {
  iaa: { depths: [0] },
  mma: { rank: 4, visualDepths: [1] },
  'damc-naive': { lora: { rank: 2 } },
  'damc-decoupled': { lora: { rank: 2 } },
  bottleneck: { size: 4 },
};

let tmp = '';
beforeAll(async () => {
  await initBackend('cpu', { log: false });
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'adaptorkit-contract-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

function tinyBase(seed: number): GenerativeBase {
  return { lm: tinyCausalLM(seed), vision: tinyVisionEncoder(seed + 100), placeholderIds: { image: IMG }, padId: PAD, eosId: 2 };
}

/** B rows [BOS, <image> x n, q...] of equal length, labels on the last 2 tokens, one 16x16 image per row. */
function batch(rows: number[][], nImg: number, seed: number, labelled: boolean): MethodBatch {
  const full = rows.map((q) => [1, ...new Array<number>(nImg).fill(IMG), ...q]);
  const B = full.length;
  const T = full[0]!.length;
  const ids = Int32Array.from(full.flat());
  const labels = new Int32Array(B * T).fill(-100);
  if (labelled) full.forEach((r, b) => [T - 2, T - 1].forEach((t) => (labels[b * T + t] = r[t]!)));
  const px = tf.tidy(() => tf.randomUniform([B, 16 * 16 * 3], -1, 1, 'float32', seed).dataSync() as Float32Array);
  return { B, T, ids, labels, lengths: full.map((r) => r.length), inputs: full.map((_, row) => ({ modality: 'image', row, data: px.slice(row * 768, (row + 1) * 768) })) };
}

const lossOf = (m: GenerativeModel, b: MethodBatch): number => tf.tidy(() => m.loss(b, false).dataSync()[0]!);

describe('every registered method satisfies the AdaptorMethod contract', () => {
  it('is listed once, names its paper, and has a strict config schema with defaults', () => {
    expect(new Set(METHODS.map((m) => m.name)).size).toBe(METHODS.length);
    for (const m of METHODS) {
      expect(['generative', 'retrieval', 'composition'], m.name).toContain(m.kind);
      expect(m.paper.url, m.name).toMatch(/^https:\/\/arxiv\.org\/abs\/\d{4}\.\d{4,5}$/);
      expect(m.description.length, m.name).toBeGreaterThan(20);
      expect(m.configSchema.safeParse({}).success, `${m.name}: {} takes the defaults`).toBe(true);
      expect(m.configSchema.safeParse({ notAKey: 1 }).success, `${m.name}: unknown keys refused`).toBe(false);
    }
  });

  for (const method of METHODS) {
    if (method.kind === 'retrieval') continue;
    it(`${method.name}: attach -> loss -> save -> load round trip; greedy decoding equals its forward argmax chain`, async () => {
      const cfg = TINY[method.name] ?? {};
      manualSeed(1);
      const m = method.attach(tinyBase(1), cfg);
      const nImg = m.tokensPerInput.image ?? 0;
      expect(nImg).toBeGreaterThan(0);
      const named = m.trainable();
      expect(named.length).toBeGreaterThan(0);
      expect(named.every(([, p]) => p.trainable)).toBe(true);
      const trainable = named.reduce((s, [, p]) => s + p.size, 0);
      expect(m.totalParameters()).toBeGreaterThan(trainable);
      expect(m.describe().method).toBe(method.name);

      // move every trainable weight so the adapter is not its initial value (and decoding not trivial)
      named.forEach(([, p]: [string, Parameter], i) => p.assign(tf.tidy(() => tf.add(p.value, tf.randomNormal(p.value.shape, 0, 0.2, 'float32', i + 1))), 'p'));
      const train = batch([[10, 11, 12], [20, 21, 22]], nImg, 3, true);
      const loss = lossOf(m, train);
      expect(Number.isFinite(loss)).toBe(true);
      const dir = path.join(tmp, method.name);
      await m.save(dir);
      manualSeed(1);
      const fresh = method.attach(tinyBase(1), cfg);
      expect(lossOf(fresh, train)).not.toBe(loss);
      await fresh.load(dir);
      expect(lossOf(fresh, train)).toBe(loss);

      // greedy decoding (core's generate inside) vs a full forward per step, placeholders never chosen
      const prompt = batch([[30, 31], [40, 41]], nImg, 4, false);
      const got = m.generate(prompt, 5);
      for (let b = 0; b < prompt.B; b++) {
        const seq = Array.from(prompt.ids.subarray(b * prompt.T, (b + 1) * prompt.T));
        const want: number[] = [];
        for (let s = 0; s < 5; s++) {
          const one: MethodBatch = { B: 1, T: seq.length, ids: Int32Array.from(seq), labels: new Int32Array(seq.length).fill(-100), lengths: [seq.length], inputs: [{ ...prompt.inputs[b]!, row: 0 }] };
          const logits = m.nextTokenLogits(one);
          const row = Float32Array.from(logits.dataSync());
          logits.dispose();
          row[IMG] = -Infinity;
          const next = argmax(row);
          if (next === 2) break; // EOS ends the row and is not returned
          want.push(next);
          seq.push(next);
        }
        expect(got[b], `${method.name} row ${b}`).toEqual(want);
      }
      m.module.dispose();
      fresh.module.dispose();
    });
  }

  it('mwa (retrieval): attach from a base folder -> loss -> save -> load round trip; the frozen base encodes', async () => {
    const method = METHODS.find((m) => m.kind === 'retrieval');
    if (method?.kind !== 'retrieval') throw new Error('no retrieval method registered');
    const sw = new ShapesWorld({ seed: 0 });
    manualSeed(3);
    const tiny = new MultiwayTransformer({ ...shapesWorldMultiwayShape(sw), dim: 16, numLayers: 2, numHeads: 2, maxTextLen: 48, patchSize: 8 });
    const baseDir = path.join(tmp, 'multiway');
    await saveMultiway(baseDir, tiny);
    tiny.dispose();
    const locator = { path: (spec: string) => spec };
    const cfg = { base: baseDir, extractor: { bottleneck: 4 } };
    const m = await method.attach(locator, cfg);
    for (const [i, [, p]] of m.trainable().entries()) p.assign(tf.tidy(() => tf.add(p.value, tf.randomNormal(p.value.shape, 0, 0.2, 'float32', i + 1))), 'p');
    const pairs = sw.retrieval('train').slice(0, 6);
    const lossOfR = (x: typeof m): number => tf.tidy(() => x.loss(x.batch(sw, pairs), false).dataSync()[0]!);
    const loss = lossOfR(m);
    expect(Number.isFinite(loss)).toBe(true);
    await m.save(path.join(tmp, 'mwa-adapter'), { basePath: m.basePath });
    const fresh = await method.attach(locator, cfg);
    expect(lossOfR(fresh)).not.toBe(loss);
    await fresh.load(path.join(tmp, 'mwa-adapter'));
    expect(lossOfR(fresh)).toBe(loss);
    const base = await method.frozenBase(locator, cfg);
    const b = base.batch(sw, pairs);
    const e = base.encodeImages(b.pixels);
    expect(e.shape[0]).toBe(6);
    tf.dispose([e, b.pixels, b.ids]);
    base.dispose();
    m.dispose();
    fresh.dispose();
  });
});
