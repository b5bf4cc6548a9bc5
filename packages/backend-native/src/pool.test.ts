/**
 * The buffer pool: size classes, reuse across lengths of one class, escape, double release, the
 * byte cap with least-recently-used eviction; and, on the native backend, that values leaving the
 * backend are exact-size arrays (tfjs' Tensor.bytes reads `.buffer` whole).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import { BufferPool, maxPooledBytes, sizeClass } from './pool.js';
import { NATIVE_BACKEND_NAME, NativeBackend, nativeUnavailableReason, registerNativeBackend } from './index.js';

describe('sizeClass', () => {
  it('is the length itself below 1024 floats, else at most 25% above it, monotone', () => {
    expect(sizeClass(1)).toBe(1);
    expect(sizeClass(1023)).toBe(1023);
    let prev = 0;
    for (let n = 1024; n < 300_000; n += 37) {
      const c = sizeClass(n);
      expect(c).toBeGreaterThanOrEqual(n);
      expect(c).toBeLessThanOrEqual(1.25 * n);
      expect(c).toBeGreaterThanOrEqual(prev);
      expect(sizeClass(c)).toBe(c); // a class length is its own class
      prev = c;
    }
    // lengths of one batch shape at different sequence lengths share a class
    expect(sizeClass(16 * 84 * 352)).toBe(sizeClass(16 * 90 * 352));
  });
});

describe('BufferPool', () => {
  it('hands out exact-length views and reuses a released buffer for another length of its class', () => {
    const pool = new BufferPool();
    const a = pool.f32(5000, false);
    expect(a.length).toBe(5000);
    expect(a.buffer.byteLength).toBe(4 * sizeClass(5000));
    a.fill(3);
    pool.release(a);
    const b = pool.f32(4700, true);
    expect(b.buffer).toBe(a.buffer);
    expect(b.length).toBe(4700);
    expect(b.every((x) => x === 0)).toBe(true); // zero asked: zeroed
    expect(pool.stats).toMatchObject({ hits: 1, misses: 1 });
  });

  it('serves from a larger class when its own is empty, but not from a smaller one', () => {
    const pool = new BufferPool();
    const big = pool.f32(8192, false);
    pool.release(big);
    expect(pool.f32(40_000, false).buffer).not.toBe(big.buffer); // too small for it
    const small = pool.f32(6000, false); // 2 classes below 8192: takes it
    expect(small.buffer).toBe(big.buffer);
  });

  it('never recycles an escaped array, and a double release pools a buffer once', () => {
    const pool = new BufferPool();
    const a = pool.f32(2048, false);
    pool.escape(a);
    pool.release(a);
    expect(pool.bytes).toBe(0);
    const b = pool.f32(2048, false);
    pool.release(b);
    pool.release(b);
    expect(pool.bytes).toBe(b.buffer.byteLength);
    const c = pool.f32(2048, false);
    const d = pool.f32(2048, false);
    expect(c.buffer).toBe(b.buffer);
    expect(d.buffer).not.toBe(b.buffer);
  });

  it('stays under its byte cap by dropping the class used least recently', () => {
    const cap = 4 * 3 * 4096;
    const pool = new BufferPool(cap);
    const old = pool.f32(4096, false);
    const x1 = pool.f32(8192, false);
    const x2 = pool.f32(2048, false);
    pool.release(old); // 16 KB
    pool.release(x2); // 24 KB
    pool.release(x1); // 56 KB > 48 KB: the 4096 class (released first) goes
    expect(pool.bytes).toBeLessThanOrEqual(cap);
    expect(pool.stats.evicted).toBe(1);
    expect(pool.f32(2048, false).buffer).toBe(x2.buffer);
    expect(pool.f32(8192, false).buffer).toBe(x1.buffer);
    expect(pool.f32(4096, false).buffer).not.toBe(old.buffer);
    // a buffer larger than the whole cap is never kept
    const huge = pool.f32(4 * cap, false);
    pool.release(huge);
    expect(pool.bytes).toBe(0);
  });

  it('reads its cap from ADAPTORKIT_NATIVE_POOL_MB and names the variable on bad input', () => {
    expect(maxPooledBytes(undefined)).toBe(1024 * 2 ** 20);
    expect(maxPooledBytes('64')).toBe(64 * 2 ** 20);
    expect(maxPooledBytes('0')).toBe(0);
    expect(() => maxPooledBytes('lots')).toThrow(/ADAPTORKIT_NATIVE_POOL_MB.*'lots'/);
    expect(() => maxPooledBytes('-1')).toThrow(/ADAPTORKIT_NATIVE_POOL_MB/);
  });
});

const why = nativeUnavailableReason();
describe.skipIf(why !== undefined)('native backend with the pool', () => {
  it('values read from a pooled tensor are an exact-size array; results match cpu across lengths of one class', async () => {
    registerNativeBackend();
    const prev = tf.getBackend() ?? 'cpu';
    await tf.setBackend(NATIVE_BACKEND_NAME);
    try {
      const pool = (tf.backend() as NativeBackend).pool;
      const hits0 = pool.stats.hits;
      const results: Float32Array[] = [];
      const bytes: Uint8Array[] = [];
      for (const len of [96, 90, 84]) {
        // a [16, len, 64] product: the three lengths share one size class, so the second and third
        // reuse the first's buffers
        const x = tf.tidy(() => tf.mul(tf.reshape(tf.range(0, 16 * len * 64), [16, len, 64]), tf.scalar(0.5)));
        const y = tf.tidy(() => tf.add(tf.mul(x, x), x));
        const v = y.dataSync() as Float32Array;
        expect(v.length).toBe(16 * len * 64);
        expect(v.buffer.byteLength).toBe(v.byteLength);
        expect(v.byteOffset).toBe(0);
        const b = (await y.bytes()) as Uint8Array; // string tensors give Uint8Array[]; float32 one array
        expect(b.byteLength).toBe(4 * 16 * len * 64);
        results.push(v);
        bytes.push(b);
        tf.dispose([x, y]);
      }
      expect(pool.stats.hits).toBeGreaterThan(hits0);
      for (const [i, r] of results.entries()) {
        for (const j of [0, 1, 777, r.length - 1]) expect(r[j]).toBe(Math.fround(Math.fround(0.5 * j * (0.5 * j)) + 0.5 * j));
        expect(new Float32Array(bytes[i]!.buffer.slice(0))).toEqual(r);
      }
    } finally {
      await tf.setBackend(prev);
    }
  });
});
