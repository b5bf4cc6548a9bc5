/** Elementwise kernels (binary with broadcasting, unary), softmax over the last axis, reductions. */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon.js';
import { binaryInto, f32, out, sizeOf, vals, type Backend, type KernelContext } from './util.js';

// Kernel name -> op code in native/elementwise.c (names from tfjs-core, so a typo cannot slip in).
const BIN: Record<string, number> = {
  [tf.Add]: 0, [tf.Sub]: 1, [tf.Multiply]: 2, [tf.RealDiv]: 3, [tf.Maximum]: 4, [tf.Minimum]: 5,
  [tf.SquaredDifference]: 6, [tf.Pow]: 7,
};
const UN: Record<string, number> = {
  [tf.Exp]: 0, [tf.Log]: 1, [tf.Sqrt]: 2, [tf.Rsqrt]: 3, [tf.Neg]: 4, [tf.Sigmoid]: 5, [tf.Tanh]: 6, [tf.Relu]: 7,
  [tf.Square]: 8, [tf.Abs]: 9, [tf.Reciprocal]: 10, [tf.Step]: 11, [tf.Erf]: 12, [tf.Softplus]: 13, [tf.Log1p]: 14,
  [tf.Expm1]: 15, [tf.Sin]: 16, [tf.Cos]: 17, [tf.Elu]: 18, [tf.Relu6]: 19, [tf.Sign]: 20,
};
// unary op codes that _FusedMatMul's activations use
export const U_RELU = 7, U_RELU6 = 19, U_SIGMOID = 5, U_ELU = 18;
const RED = { Sum: 0, Max: 1, Min: 2, Mean: 3, Prod: 4 } as const;
const RED_KERNELS: Record<string, number> = { [tf.Sum]: RED.Sum, [tf.Max]: RED.Max, [tf.Min]: RED.Min, [tf.Mean]: RED.Mean, [tf.Prod]: RED.Prod };

/** Reduce `axes` of x (float32) into a new Float32Array; returns values and the kept shape. */
function reduceAxes(n: NativeAddon, b: Backend, op: number, x: TensorInfo, axes: number[]): Float32Array {
  const shape = x.shape;
  const sorted = [...axes].sort((p, q) => p - q);
  const xv = vals(b, x) as Float32Array;
  const contiguous = sorted.every((ax, i) => i === 0 || ax === (sorted[i - 1] as number) + 1);
  const kept = shape.filter((_, i) => !sorted.includes(i));
  const o = f32(b, sizeOf(kept));
  if (sorted.length === 0) {
    o.set(xv);
    return o;
  }
  if (contiguous) {
    const p = sorted[0] as number;
    const q = sorted[sorted.length - 1] as number;
    const outer = sizeOf(shape.slice(0, p));
    const red = sizeOf(shape.slice(p, q + 1));
    const inner = sizeOf(shape.slice(q + 1));
    if (red === 0) {
      o.fill(op === RED.Max ? -Infinity : op === RED.Min ? Infinity : op === RED.Prod ? 1 : op === RED.Mean ? NaN : 0);
      return o;
    }
    n.reduce(op, xv, o, outer, red, inner);
    return o;
  }
  // Move the reduced axes last, then reduce rows.
  const perm = [...shape.keys()].filter((i) => !sorted.includes(i)).concat(sorted);
  const t = f32(b, xv.length);
  n.transpose(xv, t, Int32Array.from(shape), Int32Array.from(perm));
  const red = sizeOf(sorted.map((i) => shape[i] as number));
  if (red === 0) {
    o.fill(op === RED.Max ? -Infinity : op === RED.Min ? Infinity : op === RED.Prod ? 1 : op === RED.Mean ? NaN : 0);
    return o;
  }
  n.reduce(op, t, o, sizeOf(kept), red, 1);
  return o;
}


/** Register this family's kernels. */
export function registerElementwiseKernels({ n, fallback, add }: KernelContext): void {
  // --- binary elementwise with broadcasting ---
  for (const [kernel, op] of Object.entries(BIN)) {
    add(kernel, (args) => {
      const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
      if (a.dtype !== 'float32' || b.dtype !== 'float32') return fallback(kernel)(args);
      const be = args.backend as Backend;
      const outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
      const o = f32(be, sizeOf(outShape));
      if (o.length > 0) binaryInto(n, op, vals(be, a) as Float32Array, a.shape, vals(be, b) as Float32Array, b.shape, outShape, o);
      return out(be, outShape, 'float32', o);
    });
  }

  // --- unary ---
  for (const [kernel, op] of Object.entries(UN)) {
    add(kernel, (args) => {
      const { x } = args.inputs as { x: TensorInfo };
      if (x.dtype !== 'float32') return fallback(kernel)(args);
      const be = args.backend as Backend;
      const o = f32(be, sizeOf(x.shape));
      const alpha = kernel === tf.Step ? ((args.attrs as unknown as tf.StepAttrs).alpha ?? 0) : 0;
      n.unary(op, vals(be, x) as Float32Array, o, alpha, 0);
      return out(be, [...x.shape], 'float32', o);
    });
  }

  // --- softmax (last axis) ---
  add(tf.Softmax, (args) => {
    const { logits } = args.inputs as { logits: TensorInfo };
    const { dim } = args.attrs as unknown as tf.SoftmaxAttrs;
    const r = logits.shape.length;
    if (logits.dtype !== 'float32' || r === 0 || (dim !== -1 && dim !== r - 1)) return fallback(tf.Softmax)(args);
    const be = args.backend as Backend;
    const cols = logits.shape[r - 1] as number;
    const o = f32(be, sizeOf(logits.shape));
    if (o.length > 0) n.softmax(vals(be, logits) as Float32Array, o, o.length / cols, cols, 0);
    return out(be, [...logits.shape], 'float32', o);
  });

  // --- reductions ---
  for (const [kernel, op] of Object.entries(RED_KERNELS)) {
    add(kernel, (args) => {
      const { x } = args.inputs as { x: TensorInfo };
      // Max names its axes reductionIndices; the others call them axis.
      const { axis, reductionIndices, keepDims } = args.attrs as unknown as { axis?: number | number[]; reductionIndices?: number | number[]; keepDims: boolean };
      if (x.dtype !== 'float32') return fallback(kernel)(args);
      const be = args.backend as Backend;
      const axes = tf.util.parseAxisParam(axis ?? reductionIndices ?? [...x.shape.keys()], x.shape);
      const o = reduceAxes(n, be, op, x, axes);
      const shape = keepDims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
      return out(be, shape, 'float32', o);
    });
  }
}
