/**
 * Native kernels against the cpu backend: values and gradients, randomized shapes with
 * broadcasting, batch dims, transposes, and empty / size-1 dims. Error measure: max |native - cpu|
 * divided by max |cpu| over the tensor (relative to the tensor's scale), at most 1e-4.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADAMW, SPARSE_SOFTMAX_CE, SPARSE_SOFTMAX_CE_GRAD, nativeUnavailableReason, registerNativeBackend } from './index.js';
import { tryAddon } from './addon.js';

const why = nativeUnavailableReason();
if (why !== undefined) console.log(`[backend-native] native kernel tests SKIPPED: ${why}`);

const TOL = 1e-4;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Input {
  shape: number[];
  values: Float32Array | Int32Array;
  dtype: 'float32' | 'int32';
}

function randInput(r: () => number, shape: number[], lo = -2, hi = 2): Input {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = lo + (hi - lo) * r();
  return { shape, values: v, dtype: 'float32' };
}

type Fn = (...xs: tf.Tensor[]) => tf.Tensor;

/** Run fn on a backend; returns output values and, when grad, gradients w.r.t. float inputs. */
function runOn(backend: string, fn: Fn, inputs: Input[], grad: boolean): { out: Float32Array[]; shapes: number[][] } {
  tf.setBackend(backend);
  return tf.tidy(() => {
    const xs = inputs.map((i) => tf.tensor(i.values, i.shape, i.dtype));
    const y = fn(...xs);
    const outs: tf.Tensor[] = [y];
    if (grad) {
      const floatIdx = inputs.map((i, k) => (i.dtype === 'float32' ? k : -1)).filter((k) => k >= 0);
      // A fixed random upstream gradient makes every output element matter.
      const r = rng(7);
      const dy = tf.tensor(Float32Array.from({ length: y.size }, () => r() * 2 - 1), y.shape);
      const g = tf.grads((...fx: tf.Tensor[]) => {
        const all = xs.map((x, k) => {
          const at = floatIdx.indexOf(k);
          return at >= 0 ? (fx[at] as tf.Tensor) : x;
        });
        return tf.sum(tf.mul(fn(...all), dy));
      });
      outs.push(...g(floatIdx.map((k) => xs[k] as tf.Tensor)));
    }
    return { out: outs.map((t) => Float32Array.from(t.dataSync() as Float32Array)), shapes: outs.map((t) => t.shape) };
  });
}

function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (Number.isNaN(x) !== Number.isNaN(y)) return Infinity;
    if (Number.isNaN(y) || x === y) continue;
    num = Math.max(num, Math.abs(x - y));
    den = Math.max(den, Math.abs(y));
  }
  return num === 0 ? 0 : num / Math.max(den, 1e-30);
}

function check(label: string, fn: Fn, inputs: Input[], grad = true): void {
  const ref = runOn('cpu', fn, inputs, grad);
  const nat = runOn('native', fn, inputs, grad);
  expect(nat.shapes, `${label}: shapes`).toEqual(ref.shapes);
  ref.out.forEach((r, k) => {
    const e = relErr(nat.out[k] as Float32Array, r);
    expect(e, `${label}: ${k === 0 ? 'value' : `grad ${k - 1}`} rel err ${e}`).toBeLessThanOrEqual(TOL);
  });
}

function randDim(r: () => number, allowEmpty: boolean): number {
  const u = r();
  if (allowEmpty && u < 0.06) return 0;
  if (u < 0.25) return 1;
  return 2 + Math.floor(r() * 9);
}

describe.skipIf(why !== undefined)('native kernels match the cpu backend', () => {
  let before = "cpu";
  beforeAll(() => {
    before = tf.getBackend() ?? "cpu";
    registerNativeBackend();
  });
  afterAll(() => {
    tf.setBackend(before);
  });

  it('matMul: batch dims, broadcasting, transposes, empty and size-1 dims', () => {
    const r = rng(1);
    for (let t = 0; t < 60; t++) {
      const M = randDim(r, t > 40);
      const K = randDim(r, t > 40);
      const N = randDim(r, t > 40);
      const ta = r() < 0.5;
      const tb = r() < 0.5;
      const batchRank = Math.floor(r() * 3);
      const ab: number[] = [];
      const bb: number[] = [];
      for (let i = 0; i < batchRank; i++) {
        const d = 1 + Math.floor(r() * 3);
        const mode = r();
        ab.push(mode < 0.2 ? 1 : d);
        bb.push(mode > 0.8 ? 1 : d);
      }
      // b may have fewer batch dims (broadcast over the missing ones)
      const bBatch = r() < 0.3 ? bb.slice(Math.floor(r() * (bb.length + 1))) : bb;
      const a = randInput(r, [...ab, ...(ta ? [K, M] : [M, K])]);
      const b = randInput(r, [...bBatch, ...(tb ? [N, K] : [K, N])]);
      // tfjs's BatchMatMul gradient does not sum over batch dims that were broadcast from 1
      // (on any backend), so gradients are checked where the batch dims agree or b has none.
      const sameBatch = bBatch.length === ab.length && bBatch.every((d, i) => d === ab[i]);
      check(`matMul ${a.shape}${ta ? 'ᵀ' : ''} x ${b.shape}${tb ? 'ᵀ' : ''}`, (x, y) => tf.matMul(x, y, ta, tb), [a, b], sameBatch);
    }
    // the model's shapes: [B*T, d] x [d, out], attention [B, H, T, hd] x [B, H, hd, T]
    check('linear', (x, w) => tf.matMul(x, w), [randInput(r, [64, 48]), randInput(r, [48, 80])]);
    check('scores', (q, k) => tf.matMul(q, k, false, true), [randInput(r, [2, 3, 16, 8]), randInput(r, [2, 3, 16, 8])]);
  });

  it('fused matMul with bias and activation', () => {
    const r = rng(2);
    for (const act of ['linear', 'relu', 'relu6', 'sigmoid', 'elu'] as const) {
      for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
        const a = randInput(r, ta ? [7, 5] : [5, 7]);
        const b = randInput(r, tb ? [6, 7] : [7, 6]);
        const bias = randInput(r, [6]);
        check(`fused ${act} ${ta} ${tb}`, (x, y, z) => tf.fused.matMul({ a: x, b: y, bias: z, activation: act, transposeA: ta, transposeB: tb }), [a, b, bias], act !== 'elu' && act !== 'relu6');
      }
    }
  });

  it('binary ops with broadcasting', () => {
    const r = rng(3);
    const ops: [string, Fn, number, number][] = [
      ['add', (a, b) => tf.add(a, b), -2, 2],
      ['sub', (a, b) => tf.sub(a, b), -2, 2],
      ['mul', (a, b) => tf.mul(a, b), -2, 2],
      ['div', (a, b) => tf.div(a, b), 0.5, 2],
      ['maximum', (a, b) => tf.maximum(a, b), -2, 2],
      ['minimum', (a, b) => tf.minimum(a, b), -2, 2],
      ['squaredDifference', (a, b) => tf.squaredDifference(a, b), -2, 2],
      ['pow', (a, b) => tf.pow(a, b), 0.5, 2],
      ['divNoNan', (a, b) => tf.divNoNan(a, b), 0.5, 2],
    ];
    for (let t = 0; t < 40; t++) {
      const rank = Math.floor(r() * 5);
      const out = Array.from({ length: rank }, () => randDim(r, t > 30));
      const a = out.map((d) => (r() < 0.3 ? 1 : d));
      const b = out.map((d) => (r() < 0.3 ? 1 : d)).slice(Math.floor(r() * (rank + 1)));
      // tfjs's Maximum/Minimum/SquaredDifference gradients do not reduce broadcast dims (on any
      // backend), and divNoNan has no gradient in tfjs: values only there.
      const same = a.length === b.length && a.every((d, i) => d === b[i]);
      for (const [name, fn, lo, hi] of ops) check(`${name} ${a} ${b}`, fn, [randInput(r, a, lo, hi), randInput(r, b, lo, hi)], (same || !['maximum', 'minimum', 'squaredDifference'].includes(name)) && name !== 'divNoNan');
    }
  });

  it('long same-shape and scalar operands (rows cut into blocks for the pool): exact', () => {
    const r = rng(31);
    for (const n of [8192, 8193, 100_003]) {
      const a = randInput(r, [n]);
      const b = randInput(r, [n]);
      const s = randInput(r, []);
      for (const [label, fn, ins] of [
        ['add', (x: tf.Tensor, y: tf.Tensor) => tf.add(x, y), [a, b]],
        ['mul by scalar', (x: tf.Tensor, y: tf.Tensor) => tf.mul(x, y), [a, s]],
        ['2 rows', (x: tf.Tensor, y: tf.Tensor) => tf.sub(tf.reshape(x, [1, n]), tf.reshape(y, [1, n])), [a, b]],
      ] as [string, Fn, Input[]][]) {
        const ref = runOn('cpu', fn, ins, false).out[0]!;
        const nat = runOn('native', fn, ins, false).out[0]!;
        expect(nat, `${label} n=${n}`).toEqual(ref);
      }
    }
  });

  it('denormal float32 values are flushed to zero inside kernels only (JS arithmetic stays IEEE)', () => {
    tf.setBackend('native');
    const addon = tryAddon()!;
    expect(addon.flushesDenormals()).toBe(process.env['ADAPTORKIT_NATIVE_DENORMALS'] !== 'keep');
    const x = tf.tensor1d([1e-20, 3e-39, 1]); // 1e-20 * 1e-20 and 3e-39 are below 2^-126
    const y = tf.mul(x, tf.tensor1d([1e-20, 1, 1]));
    const v = y.dataSync();
    tf.setBackend('cpu');
    const ref = tf.mul(tf.tensor1d([1e-20, 3e-39, 1]), tf.tensor1d([1e-20, 1, 1])).dataSync();
    tf.setBackend('native');
    expect(ref[0]).toBeGreaterThan(0); // the cpu backend keeps gradual underflow
    expect(ref[1]).toBeGreaterThan(0);
    if (addon.flushesDenormals()) expect([v[0], v[1], v[2]]).toEqual([0, 0, 1]);
    else expect(Array.from(v)).toEqual(Array.from(ref));
    // the main thread's floating-point mode is restored after each call
    const tiny = [5e-324, 1e-310];
    expect(tiny[0]! > 0).toBe(true);
    expect(tiny[1]! * 1).toBe(1e-310);
    expect(tiny[1]! / 2).toBe(5e-311);
  });

  it('unary ops', () => {
    const r = rng(4);
    const ops: [string, Fn, number, number][] = [
      ['exp', tf.exp, -10, 10],
      ['log', tf.log, 0.01, 10],
      ['sqrt', tf.sqrt, 0.01, 10],
      ['rsqrt', tf.rsqrt, 0.01, 10],
      ['neg', tf.neg, -5, 5],
      ['sigmoid', tf.sigmoid, -12, 12],
      ['tanh', tf.tanh, -6, 6],
      ['tanh small', tf.tanh, -0.01, 0.01],
      ['relu', tf.relu, -3, 3],
      ['square', tf.square, -3, 3],
      ['abs', tf.abs, -3, 3],
      ['reciprocal', tf.reciprocal, 0.5, 3],
      ['erf', tf.erf, -3, 3],
      ['softplus', tf.softplus, -10, 10],
      ['log1p', tf.log1p, -0.5, 3],
      ['expm1', tf.expm1, -3, 3],
      ['sin', tf.sin, -3, 3],
      ['cos', tf.cos, -3, 3],
      ['elu', tf.elu, -3, 3],
      ['relu6', tf.relu6, -3, 9],
      ['sign', tf.sign, -3, 3],
      ['step', (x) => tf.step(x, 0.1), -3, 3],
      ['gelu (tanh form)', (x) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))))))), -4, 4],
      ['silu', (x) => tf.mul(x, tf.sigmoid(x)), -6, 6],
    ];
    for (const shape of [[0], [1], [3, 1, 5], [1000], [70000]]) {
      for (const [name, fn, lo, hi] of ops) check(`${name} ${shape}`, fn, [randInput(r, shape, lo, hi)], name !== 'sign' && name !== 'step');
    }
  });

  it('exp/sigmoid at the edges: ±inf, NaN, huge', () => {
    const v = Float32Array.of(-Infinity, Infinity, NaN, -100, 100, 88, -87, 0, -0);
    for (const fn of [tf.exp, tf.sigmoid, tf.tanh, tf.relu] as Fn[]) check('edges', fn, [{ shape: [9], values: v, dtype: 'float32' }], false);
  });

  it('softmax and logSoftmax, incl. -inf masks', () => {
    const r = rng(5);
    for (const shape of [[1], [4, 1], [3, 7], [2, 3, 16, 16], [8, 4096], [2, 0], [0, 5]]) {
      check(`softmax ${shape}`, (x) => tf.softmax(x), [randInput(r, shape, -8, 8)]);
      check(`logSoftmax ${shape}`, (x) => tf.logSoftmax(x), [randInput(r, shape, -8, 8)]);
    }
    const masked = randInput(r, [4, 6]);
    for (let i = 0; i < 4; i++) for (let j = i + 1; j < 6; j++) masked.values[i * 6 + j] = -Infinity;
    check('softmax masked', (x) => tf.softmax(x), [masked], false);
  });

  it('reductions over random axes, keepDims, empty', () => {
    const r = rng(6);
    const ops: [string, (x: tf.Tensor, ax: number[], k: boolean) => tf.Tensor][] = [
      ['sum', (x, ax, k) => tf.sum(x, ax, k)],
      ['mean', (x, ax, k) => tf.mean(x, ax, k)],
      ['max', (x, ax, k) => tf.max(x, ax, k)],
      ['min', (x, ax, k) => tf.min(x, ax, k)],
      ['prod', (x, ax, k) => tf.prod(x, ax, k)],
    ];
    for (let t = 0; t < 40; t++) {
      const rank = 1 + Math.floor(r() * 4);
      const shape = Array.from({ length: rank }, () => randDim(r, t > 34));
      const axes = [...shape.keys()].filter(() => r() < 0.5);
      const keep = r() < 0.5;
      for (const [name, fn] of ops) {
        const empty = shape.includes(0);
        // tfjs's Prod gradient needs the chained-op API (x.reshape), which tfjs-core alone lacks.
        check(`${name} ${shape} axes ${axes} keep ${keep}`, (x) => fn(x, axes.length ? axes : [rank - 1], keep), [randInput(r, shape, 0.5, 1.5)], !(empty && (name === 'max' || name === 'min')) && name !== 'prod');
      }
    }
    check('sum of 1e6', (x) => tf.sum(x), [randInput(r, [1000, 1000], 0, 1)]);
  });

  it('transpose with random permutations', () => {
    const r = rng(8);
    for (let t = 0; t < 40; t++) {
      const rank = 1 + Math.floor(r() * 5);
      const shape = Array.from({ length: rank }, () => randDim(r, t > 34));
      const perm = [...shape.keys()].sort(() => r() - 0.5);
      check(`transpose ${shape} ${perm}`, (x) => tf.transpose(x, perm), [randInput(r, shape)]);
    }
    check('int32 transpose', (x) => tf.transpose(x, [1, 0]), [{ shape: [3, 5], values: Int32Array.from({ length: 15 }, (_, i) => i), dtype: 'int32' }], false);
  });

  it('gather (embedding) and its gradient', () => {
    const r = rng(9);
    for (const [v, d, n] of [[50, 8, 30], [10, 1, 5], [7, 3, 0], [300, 16, 100]] as const) {
      const table = randInput(r, [v, d]);
      const ids: Input = { shape: [n], values: Int32Array.from({ length: n }, () => Math.floor(r() * v)), dtype: 'int32' };
      check(`gather ${v}x${d} [${n}]`, (w, i) => tf.gather(w, i), [table, ids]);
      const ids2: Input = { shape: [2, Math.max(1, n >> 1)], values: Int32Array.from({ length: 2 * Math.max(1, n >> 1) }, () => Math.floor(r() * v)), dtype: 'int32' };
      check(`gather 2-D ids`, (w, i) => tf.gather(w, i), [table, ids2]);
    }
    check('gather axis 1', (w, i) => tf.gather(w, i, 1), [randInput(r, [3, 6, 2]), { shape: [4], values: Int32Array.of(5, 0, 0, 2), dtype: 'int32' }]);
  });

  it('slice, split, concat, pad', () => {
    const r = rng(11);
    for (let t = 0; t < 30; t++) {
      const rank = 1 + Math.floor(r() * 4);
      const shape = Array.from({ length: rank }, () => randDim(r, t > 25));
      const begin = shape.map((d) => Math.floor(r() * (d + 1)));
      const size = shape.map((d, i) => Math.floor(r() * (d - (begin[i] as number) + 1)));
      check(`slice ${shape} ${begin} ${size}`, (x) => tf.slice(x, begin, size), [randInput(r, shape)]);
      const ax = Math.floor(r() * rank);
      const other = [...shape];
      other[ax] = randDim(r, true);
      check(`concat ${shape} ${other} axis ${ax}`, (a, b, c) => tf.concat([a, b, c], ax), [randInput(r, shape), randInput(r, other), randInput(r, shape)]);
      const pads = shape.map(() => [Math.floor(r() * 3), Math.floor(r() * 3)] as [number, number]);
      check(`pad ${shape} ${JSON.stringify(pads)}`, (x) => tf.pad(x, pads, t % 2 ? 0 : 1.5), [randInput(r, shape)]);
      const whole = shape[ax] as number;
      const cut = Math.floor(r() * (whole + 1));
      check(`split ${shape} axis ${ax} at ${cut}`, (x) => {
        const [p, q] = tf.split(x, [cut, whole - cut], ax) as [tf.Tensor, tf.Tensor];
        return tf.concat([tf.mul(p, 2), q], ax);
      }, [randInput(r, shape)]);
    }
  });

  it('fused sparse softmax cross entropy: values and gradient vs logSoftmax + gather', () => {
    // What @adaptorkit/core runs when the backend has these kernels, and what it runs otherwise.
    const fused: Fn = (x, labels) => {
      const f = tf.customGrad(((lg: tf.Tensor, save: tf.GradSaveFunc) => {
        const [nll, lse] = tf.engine().runKernel(SPARSE_SOFTMAX_CE, { logits: lg, labels: labels as tf.Tensor }) as tf.Tensor[];
        save([lg, lse as tf.Tensor, labels as tf.Tensor]);
        return {
          value: nll as tf.Tensor,
          gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
            tf.engine().runKernel(SPARSE_SOFTMAX_CE_GRAD, { logits: saved[0] as tf.Tensor, lse: saved[1] as tf.Tensor, labels: saved[2] as tf.Tensor, dy }) as tf.Tensor,
        };
      }) as Parameters<typeof tf.customGrad>[0]);
      return f(x as tf.Tensor);
    };
    const composed: Fn = (x, labels) => {
      const [N, V] = (x as tf.Tensor).shape as [number, number];
      const logp = tf.reshape(tf.logSoftmax(x as tf.Tensor, -1), [N * V]);
      return tf.neg(tf.gather(logp, tf.add(tf.mul(tf.range(0, N, 1, 'int32'), tf.scalar(V, 'int32')), labels as tf.Tensor)));
    };
    const ce: Fn = (x, labels) => (tf.getBackend() === 'native' ? fused(x, labels) : composed(x, labels));
    const r = rng(11);
    for (const [N, V, span] of [[1, 1, 4], [5, 3, 4], [7, 17, 30], [64, 1000, 8], [16, 4096, 60]] as const) {
      const labels: Input = { shape: [N], values: Int32Array.from({ length: N }, () => Math.floor(r() * V)), dtype: 'int32' };
      check(`ce ${N}x${V}`, ce, [randInput(r, [N, V], -span, span), labels]);
    }
    const masked = randInput(r, [4, 9]);
    for (let i = 0; i < 4; i++) for (let j = i + 2; j < 9; j++) masked.values[i * 9 + j] = -Infinity;
    check('ce with -inf logits', ce, [masked, { shape: [4], values: Int32Array.of(0, 1, 2, 3), dtype: 'int32' }]);
    tf.setBackend('native');
    expect(tf.tidy(() => fused(tf.zeros([0, 5]), tf.tensor1d([], 'int32')).shape)).toEqual([0]); // (the cpu reference fails on N = 0)
    expect(() => tf.tidy(() => fused(tf.zeros([2, 3]), tf.tensor1d([0, 3], 'int32')))).toThrow(/outside \[0, 3\)/);
  });

  it('fused AdamW matches the composed update (3 steps, with and without weight decay)', () => {
    const r = rng(12);
    for (const [shape, wd] of [[[37], 0], [[64, 33], 0.01], [[3, 5, 7], 0.1], [[0], 0.01]] as const) {
      const n = shape.reduce((a, b) => a * b, 1);
      const p0 = randInput(r, [...shape]);
      const grads = [0, 1, 2].map(() => randInput(r, [...shape], -3, 3));
      const run = (): tf.Tensor => {
        let p = tf.tensor(p0.values, [...shape]);
        let m = tf.zeros([...shape]);
        let v = tf.zeros([...shape]);
        const lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
        grads.forEach((gi, t) => {
          const g = tf.tensor(gi.values, [...shape]);
          const bc1 = 1 - b1 ** (t + 1), bc2 = 1 - b2 ** (t + 1);
          if (tf.getBackend() === 'native') {
            const attrs = { beta1: b1, beta2: b2, eps, sqrtBc2: Math.sqrt(bc2), decay: wd !== 0 ? 1 - lr * wd : 1, stepSize: lr / bc1 };
            [p, m, v] = tf.engine().runKernel(ADAMW, { param: p, grad: g, m, v }, attrs as unknown as tf.NamedAttrMap) as [tf.Tensor, tf.Tensor, tf.Tensor];
          } else {
            // @adaptorkit/core's composed update
            m = tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1));
            v = tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2));
            const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(bc2)), eps);
            if (wd !== 0) p = tf.mul(p, 1 - lr * wd);
            p = tf.sub(p, tf.mul(tf.div(m, denom), lr / bc1));
          }
        });
        return tf.concat([tf.reshape(p, [n]), tf.reshape(m, [n]), tf.reshape(v, [n])]);
      };
      check(`adamw ${shape} wd=${wd}`, run, [], false);
    }
  });

  it('registers native kernels (not the cpu ones) for the hot ops', () => {
    const names = [tf.BatchMatMul, tf.Add, tf.Multiply, tf.Sub, tf.RealDiv, tf.Exp, tf.Sigmoid, tf.Softmax, tf.Sum, tf.Max, tf.Mean, tf.Transpose, tf.GatherV2, tf.Slice, tf.SplitV, tf.Concat, tf.PadV2, tf.UnsortedSegmentSum];
    for (const k of names) {
      const nat = tf.getKernel(k, 'native');
      expect(nat, k).toBeDefined();
      expect(nat?.kernelFunc, k).not.toBe(tf.getKernel(k, 'cpu')?.kernelFunc);
    }
  });

  it('a transformer block: RMSNorm, causal attention, SwiGLU, cross-entropy', () => {
    const r = rng(10);
    const B = 2, T = 8, d = 16, H = 2, hd = 8, F = 24, V = 32;
    const block: Fn = (x, wq, wk, wv, wo, w1, w3, w2, g, head) => {
      const rms = (z: tf.Tensor) => tf.mul(tf.mul(z, tf.rsqrt(tf.add(tf.mean(tf.square(z), -1, true), 1e-6))), g as tf.Tensor);
      const h = rms(x); // [B, T, d]
      const h2 = tf.reshape(h, [B * T, d]);
      const heads = (w: tf.Tensor) => tf.transpose(tf.reshape(tf.matMul(h2, w), [B, T, H, hd]), [0, 2, 1, 3]); // [B, H, T, hd]
      const q = heads(wq as tf.Tensor), k = heads(wk as tf.Tensor), v = heads(wv as tf.Tensor);
      const mask = tf.linalg.bandPart(tf.ones([T, T]), -1, 0);
      const s = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hd)), tf.mul(tf.sub(1, mask), -1e9));
      const a = tf.matMul(tf.softmax(s), v); // [B, H, T, hd]
      const o = tf.matMul(tf.reshape(tf.transpose(a, [0, 2, 1, 3]), [B * T, d]), wo as tf.Tensor);
      const x2 = tf.add(tf.reshape(o, [B, T, d]), x);
      const m = tf.reshape(rms(x2), [B * T, d]);
      const up = tf.mul(tf.mul(tf.matMul(m, w1 as tf.Tensor), tf.sigmoid(tf.matMul(m, w1 as tf.Tensor))), tf.matMul(m, w3 as tf.Tensor));
      const x3 = tf.add(tf.matMul(up, w2 as tf.Tensor), tf.reshape(x2, [B * T, d]));
      const logits = tf.matMul(x3, head as tf.Tensor); // [B*T, V]
      const labels = tf.oneHot(tf.tensor1d(Array.from({ length: B * T }, (_, i) => (i * 7) % V), 'int32'), V);
      return tf.mean(tf.neg(tf.sum(tf.mul(labels, tf.logSoftmax(logits)), -1)));
    };
    const s = 0.3;
    check('block', block, [
      randInput(r, [B, T, d]),
      randInput(r, [d, d], -s, s), randInput(r, [d, d], -s, s), randInput(r, [d, d], -s, s), randInput(r, [d, d], -s, s),
      randInput(r, [d, F], -s, s), randInput(r, [d, F], -s, s), randInput(r, [F, d], -s, s),
      randInput(r, [d], 0.5, 1.5), randInput(r, [d, V], -s, s),
    ]);
  });
});
