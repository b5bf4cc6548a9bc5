// The webgpu backend on Mesa's CPU renderer ('webgpu:cpu'): it trains like the cpu backend, keeps its
// tensor and GPU-buffer counts flat, and says what is missing when it cannot start. Skipped, with a
// note, where WebGPU cannot start (no `webgpu` package, no Mesa EGL).
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { AdaptorkitError } from '../errors.js';
import { AdamW, disposeGrads } from '../train/optim.js';
import { valueAndGrads } from '../train/grad.js';
import { maskedCrossEntropy } from '../train/losses.js';
import { compareClose, tinyCausalLM, webgpuCpuSkipReason, webgpuStats } from '../testing/index.js';
import { ATTN_SOFTMAX, ATTN_SOFTMAX_GRAD, hasFused, RMS_NORM, RMS_NORM_GRAD, SWIGLU, SWIGLU_GRAD } from '../nn/fused.js';
import { initBackend } from './init.js';

const skip = await webgpuCpuSkipReason('webgpu backend tests');

/** A tiny LM, everything trainable (the embedding too: its gradient is UnsortedSegmentSum). */
function trainer(seed: number) {
  const lm = tinyCausalLM(seed);
  const params = lm.trainableParameters();
  const opt = new AdamW(params, { lr: 1e-2, weightDecay: 0.01 });
  const ids = tf.tensor2d([[1, 2, 3, 4, 1, 2, 3, 4], [9, 8, 7, 6, 9, 8, 7, 6]], [2, 8], 'int32');
  const step = (): number => {
    const { loss, grads } = valueAndGrads(() => maskedCrossEntropy(lm.forward({ ids }).logits!, ids), params);
    opt.step(grads);
    disposeGrads(grads);
    return loss;
  };
  const weights = (): Float32Array => {
    const parts = params.map((p) => p.value.dataSync() as Float32Array);
    const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) out.set(p, (o += p.length) - p.length);
    return out;
  };
  const dispose = (): void => {
    ids.dispose();
    opt.dispose();
    lm.dispose();
  };
  return { step, weights, dispose };
}

function train(steps: number): { losses: number[]; weights: Float32Array } {
  const t = trainer(7);
  const losses = Array.from({ length: steps }, () => t.step());
  const weights = t.weights();
  t.dispose();
  return { losses, weights };
}

describe.skipIf(skip !== undefined)('webgpu backend (Mesa CPU renderer, webgpu:cpu)', () => {
  it('reports the adapter it runs on', async () => {
    const info = await initBackend('webgpu:cpu', { log: false });
    expect(info.name).toBe('webgpu');
    expect(tf.getBackend()).toBe('webgpu');
    expect(info.adapter?.kind).toBe('cpu');
    expect(info.detail).toMatch(/^adapter .+ via Dawn \w+/);
    // at least WebGPU's 128 MiB default (the adapter's maximum is asked for)
    expect(info.adapter!.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 2 ** 20);
    // core's fused transformer kernels are not registered on webgpu: their composed ops run
    expect(hasFused(RMS_NORM, RMS_NORM_GRAD) || hasFused(SWIGLU, SWIGLU_GRAD) || hasFused(ATTN_SOFTMAX, ATTN_SOFTMAX_GRAD)).toBe(false);
  });

  it('UnsortedSegmentSum (the gradient of gather) matches cpu', async () => {
    const run = () =>
      tf.tidy(() => {
        const x = tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 8]]);
        return Array.from(tf.unsortedSegmentSum(x, tf.tensor1d([2, 0, 2, 1], 'int32'), 3).dataSync());
      });
    await initBackend('webgpu:cpu', { log: false });
    expect(run()).toEqual([3, 4, 7, 8, 6, 8]);
  });

  it('AddN over more inputs than the device binds per shader stage (a gradient summed over many uses) matches cpu', async () => {
    const run = () =>
      tf.tidy(() => Array.from(tf.addN(Array.from({ length: 40 }, (_, i) => tf.fill([3, 5], i + 1))).dataSync()));
    await initBackend('cpu', { log: false });
    const cpu = run();
    await initBackend('webgpu:cpu', { log: false });
    expect(run()).toEqual(cpu);
    expect(cpu[0]).toBe(820);
  });

  // Tolerance: float32 on both, but WGSL's exp/log/rsqrt and another summation order in matMul and
  // reductions; over 4 AdamW steps at lr 1e-2 losses and weights agreed to 5e-7 (measured on Mesa
  // llvmpipe); 1e-4 leaves room for other drivers.
  it('trains a tiny CausalLM for 4 steps and matches cpu (losses and weights within 1e-4)', async () => {
    await initBackend('cpu', { log: false });
    const cpu = train(4);
    await initBackend('webgpu:cpu', { log: false });
    const gpu = train(4);
    expect(gpu.losses[3]!).toBeLessThan(gpu.losses[0]!);
    const rl = compareClose(gpu.losses, cpu.losses, { atol: 1e-4, rtol: 1e-4 });
    expect(rl.ok, rl.message).toBe(true);
    const rw = compareClose(gpu.weights, cpu.weights, { atol: 1e-4, rtol: 1e-4 });
    expect(rw.ok, rw.message).toBe(true);
  });

  it('keeps numTensors and GPU buffers flat over training steps', async () => {
    await initBackend('webgpu:cpu', { log: false });
    const t = trainer(3);
    t.step(); // first step: optimizer slots and pooled buffers appear
    t.step();
    const tensors0 = tf.memory().numTensors;
    const bufs0 = webgpuStats();
    for (let i = 0; i < 4; i++) t.step();
    const bufs = webgpuStats();
    expect(tf.memory().numTensors).toBe(tensors0);
    expect(bufs.dataIds).toBe(bufs0.dataIds);
    expect(bufs.usedBuffers).toBe(bufs0.usedBuffers);
    expect(bufs.usedBuffers + bufs.freeBuffers).toBe(bufs0.usedBuffers + bufs0.freeBuffers);
    expect(bufs.bytesAllocated).toBe(bufs0.bytesAllocated);
    t.dispose();
  });
});

describe('webgpu backend: errors and auto', () => {
  it("auto never picks a CPU renderer and lists why it skipped webgpu", async () => {
    const info = await initBackend('auto', { log: false });
    const why = info.skipped.find((s) => s.startsWith('webgpu:'));
    if (info.name !== 'webgpu' && info.name !== 'tensorflow') expect(why).toBeDefined();
    if (info.name === 'webgpu') expect(info.adapter?.cpuRenderer).toBe(false);
  });

  it("asking for 'webgpu' without a real GPU is an error naming what is missing", async () => {
    const err = await initBackend('webgpu', { log: false }).then(
      (info) => info,
      (e: unknown) => e,
    );
    if (!(err instanceof Error)) {
      expect((err as { adapter?: { cpuRenderer: boolean } }).adapter?.cpuRenderer).toBe(false); // a real GPU here
      return;
    }
    expect(err).toBeInstanceOf(AdaptorkitError);
    expect((err as AdaptorkitError).code).toBe('BACKEND_UNAVAILABLE');
    expect(err.message).toMatch(/backend 'webgpu' is not available \(webgpu: .+\)/);
    expect(err.message).toMatch(/libvulkan1|CPU renderer|not installed/);
    expect(err.message).toMatch(/webgpu:cpu/);
  });
});
