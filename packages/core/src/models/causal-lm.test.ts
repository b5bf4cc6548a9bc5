import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/init.js';
import { compareClose, expectBitIdentical, expectFlatTensorCount, tinyCausalLM } from '../testing/index.js';
import { AdamW, disposeGrads } from '../train/optim.js';
import { valueAndGrads } from '../train/grad.js';
import { maskedCrossEntropy } from '../train/losses.js';
import { manualSeed } from '../nn/parameter.js';
import { CausalLM, type CausalLMConfig } from './causal-lm.js';
import { referenceLlamaLogits } from './reference.test-util.js';

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

describe('CausalLM numerics', () => {
  it('matches an independent float64 LLaMA reference (RMSNorm, rotate-half RoPE, GQA, SwiGLU)', () => {
    const lm = tinyCausalLM(3, { ropeTheta: 500, rmsNormEps: 1e-5 });
    const ids = [5, 17, 3, 60, 2, 9, 41];
    const ours = tf.tidy(() => lm.logits(tf.tensor2d([ids], [1, ids.length], 'int32')));
    const ref = referenceLlamaLogits(lm, ids);
    const r = compareClose(ours, ref, { atol: 1e-4, rtol: 1e-4 });
    expect(r.ok, r.message).toBe(true);
    ours.dispose();
    lm.dispose();
  });

  it('matches the reference with tied embeddings and multi-query attention', () => {
    const lm = tinyCausalLM(4, { tieWordEmbeddings: true, numKVHeads: 1 });
    expect(lm.namedParameters().some(([n]) => n === 'lm_head.weight')).toBe(false);
    const ids = [1, 2, 3, 4, 5];
    const ours = tf.tidy(() => lm.logits(tf.tensor2d([ids], [1, 5], 'int32')));
    const r = compareClose(ours, referenceLlamaLogits(lm, ids), { atol: 1e-4, rtol: 1e-4 });
    expect(r.ok, r.message).toBe(true);
    ours.dispose();
    lm.dispose();
  });

  it('grouped-query attention equals multi-head attention with repeated KV heads', () => {
    const gqa = tinyCausalLM(5, { numHeads: 4, numKVHeads: 2 });
    const mha = tinyCausalLM(6, { numHeads: 4, numKVHeads: 4 });
    // copy every weight, expanding k/v projections: query head h uses kv head floor(h / 2)
    tf.tidy(() => {
      const src = new Map(gqa.namedParameters());
      for (const [name, p] of mha.namedParameters()) {
        const s = src.get(name)!;
        if (/self_attn\.[kv]_proj\.weight$/.test(name)) {
          const w = s.value as tf.Tensor2D; // [d, 2*hd]
          const heads = tf.split(w, 2, 1);
          p.assign(tf.concat([heads[0]!, heads[0]!, heads[1]!, heads[1]!], 1));
        } else p.assign(s.value);
      }
    });
    const ids = tf.tensor2d([[3, 1, 4, 1, 5, 9, 2, 6]], [1, 8], 'int32');
    const a = gqa.logits(ids);
    const b = mha.logits(ids);
    const r = compareClose(a, b, { atol: 1e-5, rtol: 1e-5 });
    expect(r.ok, r.message).toBe(true);
    tf.dispose([ids, a, b]);
    gqa.dispose();
    mha.dispose();
  });

  it('KV-cache decoding gives the same logits as a full forward', () => {
    const lm = tinyCausalLM(7);
    const ids = [[4, 8, 15, 16, 23, 42, 7, 1], [1, 2, 3, 4, 5, 6, 7, 8]];
    const full = tf.tidy(() => lm.logits(tf.tensor2d(ids, [2, 8], 'int32'))); // [2, 8, V]
    const cache = lm.createCache();
    const steps: tf.Tensor[] = [];
    // prefill 3 tokens, then one at a time
    steps.push(tf.tidy(() => lm.forward({ ids: tf.tensor2d(ids.map((r) => r.slice(0, 3)), [2, 3], 'int32'), cache }).logits!));
    for (let t = 3; t < 8; t++) {
      steps.push(tf.tidy(() => lm.forward({ ids: tf.tensor2d(ids.map((r) => [r[t]!]), [2, 1], 'int32'), cache }).logits!));
    }
    expect(cache.length).toBe(8);
    const inc = tf.concat(steps, 1);
    const r = compareClose(inc, full, { atol: 1e-5, rtol: 1e-5 });
    expect(r.ok, r.message).toBe(true);
    tf.dispose([full, inc, ...steps]);
    const before = tf.memory().numTensors;
    cache.dispose();
    expect(tf.memory().numTensors).toBe(before - 2 * lm.numLayers); // k and v per layer
    lm.dispose();
  });

  it('accepts ready embeddings, returns every hidden state, and runs spans of layers', () => {
    const lm = tinyCausalLM(8);
    const ids = tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32');
    tf.tidy(() => {
      const viaIds = lm.forward({ ids, outputHiddenStates: true });
      const viaEmb = lm.forward({ embeds: lm.embed(ids) });
      expectBitIdentical(viaIds.logits!, viaEmb.logits!, 'logits via embeds');
      expect(viaIds.hiddenStates!.length).toBe(lm.numLayers + 1);
      // running the two halves by hand reproduces the full stack
      const rope = lm.rope(0, 4);
      const h1 = lm.runLayers(lm.embed(ids), 0, 1, { rope });
      const h2 = lm.runLayers(h1, 1, 2, { rope });
      expectBitIdentical(h2, viaIds.hiddenStates![2]!, 'span run');
    });
    ids.dispose();
    lm.dispose();
  });

  it('rejects bad inputs with clear errors', () => {
    const lm = tinyCausalLM(9);
    expect(() => lm.forward({})).toThrow(/needs ids or embeds/);
    const bad = tf.zeros([1, 3, 7]);
    expect(() => lm.forward({ embeds: bad })).toThrow(/must be \[B, T, 32\], got \[1, 3, 7\]/);
    bad.dispose();
    expect(() => tinyCausalLM(0, { numHeads: 4, numKVHeads: 3 })).toThrow(/multiple of numKVHeads/);
    lm.dispose();
  });
});

describe('every decoder family trains', () => {
  const base = { vocabSize: 30, hiddenSize: 16, intermediateSize: 24, numLayers: 3, numHeads: 4, numKVHeads: 2, headDim: 8 };
  const families: Record<string, CausalLMConfig> = {
    qwen3: { ...base, modelType: 'qwen3', qkNorm: 'plain', slidingWindow: 2, layerTypes: ['full_attention', 'sliding_attention', 'sliding_attention'] },
    gemma2: {
      ...base, modelType: 'gemma2', unitOffsetNorms: true, sandwichNorms: true, embedScale: 4, attnScale: 0.3, attnLogitSoftcap: 1, finalLogitSoftcap: 2,
      hiddenAct: 'gelu_tanh', tieWordEmbeddings: true, slidingWindow: 2, layerTypes: ['sliding_attention', 'full_attention', 'sliding_attention'],
    },
    gemma3_text: {
      ...base, modelType: 'gemma3_text', unitOffsetNorms: true, sandwichNorms: true, qkNorm: 'unit-offset', embedScale: 4, localRopeTheta: 100,
      hiddenAct: 'gelu_tanh', slidingWindow: 2, layerTypes: ['sliding_attention', 'sliding_attention', 'full_attention'],
    },
    phi3: { ...base, modelType: 'phi3', fusedProjections: true, slidingWindow: 2, layerTypes: ['sliding_attention', 'sliding_attention', 'sliding_attention'] },
  };
  for (const [name, cfg] of Object.entries(families)) {
    it(`${name}: every parameter gets a finite non-zero gradient, the loss falls, no tensor leaks`, async () => {
      manualSeed(7);
      const lm = new CausalLM(cfg);
      const ids = tf.tensor2d([[1, 5, 9, 2, 7, 3, 11, 4]], [1, 8], 'int32');
      const params = lm.trainableParameters();
      const opt = new AdamW(params, { lr: 1e-2, weightDecay: 0 });
      const losses: number[] = [];
      const names = new Map(lm.namedParameters().map(([n, p]) => [p, n]));
      const step = (): void => {
        const { loss, grads } = valueAndGrads(() => maskedCrossEntropy(lm.forward({ ids }).logits!, ids), params);
        losses.push(loss);
        if (losses.length === 1) {
          for (const [p, g] of grads) {
            const norm = tf.tidy(() => tf.sum(tf.abs(g)).dataSync()[0]!);
            expect(Number.isFinite(norm) && norm > 0, `gradient of ${names.get(p)}`).toBe(true);
          }
        }
        opt.step(grads);
        disposeGrads(grads);
      };
      step();
      await expectFlatTensorCount(step, 3);
      expect(losses.at(-1)!).toBeLessThan(losses[0]!);
      ids.dispose();
      lm.dispose();
    });
  }
});
