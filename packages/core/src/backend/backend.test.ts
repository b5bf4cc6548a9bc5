import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { AdaptorkitError } from '../errors.js';
import { AdamW, disposeGrads } from '../train/optim.js';
import { valueAndGrads } from '../train/grad.js';
import { maskedCrossEntropy } from '../train/losses.js';
import { compareClose, tinyCausalLM } from '../testing/index.js';
import { initBackend } from './init.js';

describe('initBackend', () => {
  it('starts the cpu backend and reports it', async () => {
    const lines: string[] = [];
    const info = await initBackend('cpu', { log: (l) => lines.push(l) });
    expect(info.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(lines[0]).toMatch(/^backend: cpu/);
  });

  it('says how to install tfjs-node when tensorflow is asked for and absent', async () => {
    const err = await initBackend('tensorflow', { log: false }).catch((e: unknown) => e);
    // this machine has no tfjs-node: the error must name the packages and the install command
    expect(err).toBeInstanceOf(AdaptorkitError);
    expect((err as AdaptorkitError).code).toBe('BACKEND_UNAVAILABLE');
    expect((err as Error).message).toMatch(/npm install @tensorflow\/tfjs-node-gpu@4\.22\.0/);
  });

  it('rejects unknown backends', async () => {
    await expect(initBackend('gpu' as never, { log: false })).rejects.toThrow(/unknown backend 'gpu'/);
  });

  it('auto picks a backend and lists what it skipped', async () => {
    const info = await initBackend('auto', { log: false });
    expect(['tensorflow', 'native', 'wasm', 'cpu']).toContain(info.name);
    expect(info.skipped.some((s) => s.startsWith('tfjs-node-gpu'))).toBe(true);
  });
});

/** Train a tiny LM with a trainable embedding for a few steps and return the losses and final embedding. */
function trainEmbedding(): { losses: number[]; emb: Float32Array } {
  const lm = tinyCausalLM(31);
  lm.freeze();
  lm.model.embed_tokens.unfreeze();
  const params = lm.trainableParameters();
  const opt = new AdamW(params, { lr: 1e-2, weightDecay: 0 });
  const ids = tf.tensor2d([[1, 2, 3, 4, 1, 2, 3, 4], [9, 8, 7, 6, 9, 8, 7, 6]], [2, 8], 'int32');
  const losses: number[] = [];
  for (let i = 0; i < 5; i++) {
    const { loss, grads } = valueAndGrads(() => maskedCrossEntropy(lm.forward({ ids }).logits!, ids), params);
    opt.step(grads);
    disposeGrads(grads);
    losses.push(loss);
  }
  const emb = (lm.model.embed_tokens.weight.value.dataSync() as Float32Array).slice();
  ids.dispose();
  opt.dispose();
  lm.dispose();
  return { losses, emb };
}

describe('wasm backend', () => {
  it('has UnsortedSegmentSum registered and matching cpu', async () => {
    const run = () =>
      tf.tidy(() => {
        const x = tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 8]]);
        return Array.from(tf.unsortedSegmentSum(x, tf.tensor1d([2, 0, 2, -1], 'int32'), 3).dataSync());
      });
    await initBackend('cpu', { log: false });
    const cpu = run();
    await initBackend('wasm', { log: false });
    expect(run()).toEqual(cpu);
    expect(cpu).toEqual([3, 4, 0, 0, 6, 8]);
  });

  it('trains a model with a trainable embedding and matches cpu within 1e-4', async () => {
    await initBackend('cpu', { log: false });
    const cpu = trainEmbedding();
    await initBackend('wasm', { log: false });
    const wasm = trainEmbedding();
    expect(wasm.losses[4]!).toBeLessThan(wasm.losses[0]!);
    const rl = compareClose(wasm.losses, cpu.losses, { atol: 1e-4, rtol: 1e-4 });
    expect(rl.ok, rl.message).toBe(true);
    const re = compareClose(wasm.emb, cpu.emb, { atol: 1e-4, rtol: 1e-4 });
    expect(re.ok, re.message).toBe(true);
    await initBackend('cpu', { log: false });
  });
});
