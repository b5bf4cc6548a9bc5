/**
 * The fused transformer pieces (native backend kernels) against the same maths composed from tfjs
 * ops on the cpu backend: values and gradients, plus a whole causal LM (loss and every gradient)
 * with the fused kernels on and off. Skipped, with the reason, where the native backend is absent.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/init.js';
import { tinyCausalLM } from '../testing/index.js';
import { maskedCrossEntropy } from '../train/losses.js';
import { KERNEL_NAMES } from '../backend/kernels.js';
import { ATTN_SOFTMAX, LAYER_NORM, RMS_NORM, ROPE, SWIGLU, attentionSoftmax, hasFused, layerNormalize, rmsNormalize, setFusedKernels, swiglu } from './fused.js';
import { RotaryTables, applyRope } from './rope.js';
import { causalMask } from './attention.js';

// Decided at collection time so an absent addon shows as skipped tests (with the reason), not as passes.
let why: string | undefined;
try {
  await initBackend('native', { log: false });
} catch (e) {
  why = (e as Error).message.split('\n')[0];
  console.log(`[core] fused kernel tests SKIPPED (native backend absent): ${why}`);
}
afterAll(() => {
  setFusedKernels(true);
});

function rand(seed: number, shape: number[], lo = -2, hi = 2): Float32Array {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + ((hi - lo) * s) / 2 ** 32;
  });
}

/** fn's output and its gradients w.r.t. the first `nGrad` inputs (upstream gradient fixed and random), on `backend`. */
function run(backend: string, fn: (...xs: tf.Tensor[]) => tf.Tensor, inputs: [number[], Float32Array][], nGrad: number): Float32Array[] {
  tf.setBackend(backend);
  return tf.tidy(() => {
    const xs = inputs.map(([s, v]) => tf.tensor(v, s));
    const y = fn(...xs);
    const dy = tf.tensor(rand(99, y.shape), y.shape);
    const g = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(fn(...a, ...xs.slice(nGrad)), dy)))(xs.slice(0, nGrad));
    return [y, ...g].map((t) => t.dataSync() as Float32Array).map((a) => Float32Array.from(a));
  });
}

/** max |a - b| / max |b| */
function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / Math.max(den, 1e-30);
}

function expectSame(name: string, fn: (...xs: tf.Tensor[]) => tf.Tensor, inputs: [number[], Float32Array][], nGrad: number, kernel: string): void {
  tf.setBackend('native');
  expect(hasFused(kernel), `${kernel} registered on native`).toBe(true);
  const nat = run('native', fn, inputs, nGrad);
  tf.setBackend('cpu');
  expect(hasFused(kernel), `${kernel} not on cpu`).toBe(false);
  const cpu = run('cpu', fn, inputs, nGrad);
  tf.setBackend('native');
  expect(nat.length).toBe(cpu.length);
  nat.forEach((a, i) => expect(relErr(a, cpu[i]!), `${name}: ${i === 0 ? 'value' : `gradient ${i}`}`).toBeLessThan(2e-6));
}

describe.skipIf(why !== undefined)('fused transformer kernels (native) match the composed ops (cpu)', () => {
  it('the native backend registers every kernel core calls by name (@adaptorkit/kernel-names)', () => {
    for (const k of KERNEL_NAMES) expect(tf.getKernel(k, 'native'), `${k} registered`).toBeDefined();
  });

  it('RMS normalisation, incl. a row of zeros', () => {
    const x = rand(1, [3, 5, 16]);
    x.fill(0, 16, 32); // row 1: all zero (r = 1/sqrt(eps))
    expectSame('rmsNormalize', (a) => rmsNormalize(a!, 1e-6), [[[3, 5, 16], x]], 1, RMS_NORM);
  });

  it('layer normalisation, incl. a constant row and a large offset', () => {
    const x = rand(6, [4, 3, 24]);
    x.fill(0.5, 24, 48); // a constant row: n = 0
    for (let i = 48; i < 72; i++) x[i] = x[i]! + 1000; // mean far from zero
    expectSame('layerNormalize', (a) => layerNormalize(a!, 1e-5), [[[4, 3, 24], x]], 1, LAYER_NORM);
  });

  it('SwiGLU, incl. large |gate|', () => {
    const g = rand(2, [2, 7, 24], -12, 12);
    expectSame('swiglu', (a, b) => swiglu(a!, b!), [[[2, 7, 24], g], [[2, 7, 24], rand(3, [2, 7, 24])]], 2, SWIGLU);
  });

  it('rotate-half RoPE from the model tables (and its gradient, the inverse rotation)', () => {
    const rt = new RotaryTables(8, 10000);
    tf.setBackend('native');
    const { cos, sin } = rt.slice(3, 6); // positions 3..8, [6, 8]
    const c = cos.dataSync() as Float32Array;
    const s = sin.dataSync() as Float32Array;
    tf.dispose([cos, sin]);
    rt.dispose();
    expectSame('applyRope', (x, co, si) => applyRope(x!, co!, si!), [[[2, 3, 6, 8], rand(4, [2, 3, 6, 8])], [[6, 8], c], [[6, 8], s]], 1, ROPE);
  });

  it('attention softmax: causal with a KV past, with an extra padding mask, and not causal', () => {
    const shape = [2, 3, 5, 7]; // 5 queries after 2 cached keys: S = 7
    const scale = 1 / Math.sqrt(8);
    const x = rand(5, shape, -6, 6);
    const mask = new Float32Array(2 * 7);
    mask[7 + 0] = -1e9; // batch 1: key 0 is padding
    expectSame('causal', (a) => attentionSoftmax(a!, scale, { causal: true, past: 2, causalMask: () => causalMask(5, 2) }), [[shape, x]], 1, ATTN_SOFTMAX);
    expectSame('causal + mask', (a, m) => attentionSoftmax(a!, scale, { causal: true, past: 2, mask: m, causalMask: () => causalMask(5, 2) }), [[shape, x], [[2, 1, 1, 7], mask]], 1, ATTN_SOFTMAX);
    expectSame('bidirectional', (a) => attentionSoftmax(a!, scale), [[shape, x]], 1, ATTN_SOFTMAX);
  });

  it('a causal LM: loss and every gradient agree with the fused kernels on and off', () => {
    tf.setBackend('native');
    const lm = tinyCausalLM(11, { numHeads: 4, numKVHeads: 2 });
    const ids = tf.tensor2d([[3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8]], [2, 8], 'int32');
    const params = lm.namedParameters().map(([, p]) => p.value);
    const lossAndGrads = (fused: boolean): Float32Array[] => {
      setFusedKernels(fused);
      return tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(lm.logits(ids), ids) as tf.Scalar, params);
        return [value, ...params.map((p) => grads[p.name]!)].map((t) => Float32Array.from(t.dataSync() as Float32Array));
      });
    };
    const on = lossAndGrads(true);
    const off = lossAndGrads(false);
    setFusedKernels(true);
    on.forEach((a, i) => expect(relErr(a, off[i]!), i === 0 ? 'loss' : `gradient of ${params[i - 1]!.name}`).toBeLessThan(1e-5));
    ids.dispose();
    lm.dispose();
  });

  it('KV-cache decoding with the fused kernels gives the logits of a full forward', () => {
    tf.setBackend('native');
    const lm = tinyCausalLM(7, { numHeads: 4, numKVHeads: 2 });
    const ids = [[4, 8, 15, 16, 23, 42, 7, 1], [1, 2, 3, 4, 5, 6, 7, 8]];
    const full = tf.tidy(() => lm.logits(tf.tensor2d(ids, [2, 8], 'int32')));
    const cache = lm.createCache();
    const steps = [tf.tidy(() => lm.forward({ ids: tf.tensor2d(ids.map((r) => r.slice(0, 3)), [2, 3], 'int32'), cache }).logits!)];
    for (let t = 3; t < 8; t++) steps.push(tf.tidy(() => lm.forward({ ids: tf.tensor2d(ids.map((r) => [r[t]!]), [2, 1], 'int32'), cache }).logits!));
    const inc = tf.concat(steps, 1);
    expect(relErr(inc.dataSync() as Float32Array, full.dataSync() as Float32Array)).toBeLessThan(1e-5);
    tf.dispose([full, inc, ...steps]);
    cache.dispose();
    lm.dispose();
  });
});
