/** Layout kernels: transpose, gather and its gradient (UnsortedSegmentSum), slice, split, concat, pad. */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { f32, out, sizeOf, vals, type Backend, type KernelContext, type Values } from './util.js';


/** Register this family's kernels. */
export function registerLayoutKernels({ n, fallback, add }: KernelContext): void {
  // --- transpose ---
  add(tf.Transpose, (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { perm } = args.attrs as unknown as tf.TransposeAttrs;
    if (x.dtype !== 'float32' && x.dtype !== 'int32') return fallback(tf.Transpose)(args);
    const be = args.backend as Backend;
    const xv = vals(be, x);
    const shape = perm.map((p) => x.shape[p] as number);
    const o = x.dtype === 'float32' ? f32(be, xv.length) : new Int32Array(xv.length);
    if (o.length > 0) n.transpose(xv, o, Int32Array.from(x.shape), Int32Array.from(perm));
    return out(be, shape, x.dtype, o);
  });

  // --- gather (embedding lookup) ---
  add(tf.GatherV2, (args) => {
    const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
    const { axis, batchDims } = args.attrs as unknown as tf.GatherV2Attrs;
    if ((x.dtype !== 'float32' && x.dtype !== 'int32') || indices.dtype !== 'int32' || (batchDims ?? 0) !== 0) return fallback(tf.GatherV2)(args);
    const be = args.backend as Backend;
    const ax = tf.util.parseAxisParam(axis, x.shape)[0] as number;
    const axisDim = x.shape[ax] as number;
    const iv = vals(be, indices) as Int32Array;
    for (let i = 0; i < iv.length; i++) {
      const k = iv[i] as number;
      if (k < 0 || k >= axisDim) return fallback(tf.GatherV2)(args); // cpu raises the usual error
    }
    const shape = [...x.shape.slice(0, ax), ...indices.shape, ...x.shape.slice(ax + 1)];
    const o = x.dtype === 'float32' ? new Float32Array(sizeOf(shape)) : new Int32Array(sizeOf(shape));
    if (o.length > 0) n.gather(vals(be, x), iv, o, sizeOf(x.shape.slice(0, ax)), axisDim, sizeOf(x.shape.slice(ax + 1)));
    return out(be, shape, x.dtype, o);
  });

  // --- gather's gradient ---
  add(tf.UnsortedSegmentSum, (args) => {
    const { x, segmentIds } = args.inputs as { x: TensorInfo; segmentIds: TensorInfo };
    const { numSegments } = args.attrs as unknown as tf.UnsortedSegmentSumAttrs;
    if (x.dtype !== 'float32' || segmentIds.dtype !== 'int32') return fallback(tf.UnsortedSegmentSum)(args);
    const be = args.backend as Backend;
    const inner = segmentIds.shape.length <= x.shape.length ? sizeOf(x.shape.slice(segmentIds.shape.length)) : 0;
    const shape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
    const o = new Float32Array(sizeOf(shape));
    if (o.length > 0) n.segsum(vals(be, x) as Float32Array, vals(be, segmentIds) as Int32Array, o, inner, numSegments);
    return out(be, shape, 'float32', o);
  });

  // --- slicing and joining: Slice, SplitV, Concat, PadV2 (4-byte dtypes) ---
  const is4 = (t: TensorInfo) => t.dtype === 'float32' || t.dtype === 'int32';
  const alloc = (be: Backend, dtype: tf.DataType, n: number): Values => (dtype === 'int32' ? new Int32Array(n) : f32(be, n));
  const i32 = (a: readonly number[]) => Int32Array.from(a);
  const zeros = (rank: number) => new Int32Array(rank);
  const sliceOut = (be: Backend, x: TensorInfo, begin: number[], size: number[]): TensorInfo => {
    const o = alloc(be, x.dtype, sizeOf(size));
    if (o.length > 0) n.copybox(vals(be, x), i32(x.shape), i32(begin), o, i32(size), zeros(size.length), i32(size));
    return out(be, [...size], x.dtype, o);
  };

  add(tf.Slice, (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { begin, size: sz } = args.attrs as unknown as tf.SliceAttrs;
    if (!is4(x) || x.shape.length > 8) return fallback(tf.Slice)(args);
    const [b, s] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, sz) as [number[], number[]];
    tf.slice_util.assertParamsValid(x as tf.Tensor, b, s);
    return sliceOut(args.backend as Backend, x, b, s);
  });

  add(tf.SplitV, (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { numOrSizeSplits, axis } = args.attrs as unknown as tf.SplitVAttrs;
    if (!is4(x) || x.shape.length > 8) return fallback(tf.SplitV)(args);
    const ax = tf.util.parseAxisParam(axis, x.shape)[0] as number;
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax);
    const be = args.backend as Backend;
    const begin = new Array<number>(x.shape.length).fill(0);
    const size = [...x.shape];
    return sizes.map((s) => {
      size[ax] = s;
      const t = sliceOut(be, x, begin, size);
      begin[ax] = (begin[ax] as number) + s;
      return t;
    });
  });

  add(tf.Concat, (args) => {
    const inputs = args.inputs as unknown as TensorInfo[];
    const { axis } = args.attrs as unknown as tf.ConcatAttrs;
    const first = inputs[0];
    if (!first || !inputs.every((t) => is4(t) && t.dtype === first.dtype && t.shape.length === first.shape.length) || first.shape.length > 8 || first.shape.length === 0) {
      return fallback(tf.Concat)(args);
    }
    const ax = tf.util.parseAxisParam(axis, first.shape)[0] as number;
    tf.backend_util.assertParamsConsistent(inputs.map((t) => t.shape), ax);
    const shape = tf.backend_util.computeOutShape(inputs.map((t) => t.shape), ax);
    const be = args.backend as Backend;
    const o = alloc(be, first.dtype, sizeOf(shape));
    const at = zeros(shape.length);
    const oShape = i32(shape);
    for (const t of inputs) {
      if (sizeOf(t.shape) > 0) n.copybox(vals(be, t), i32(t.shape), zeros(shape.length), o, oShape, at, i32(t.shape));
      at[ax] = (at[ax] as number) + (t.shape[ax] as number);
    }
    return out(be, shape, first.dtype, o);
  });

  add(tf.PadV2, (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { paddings, constantValue } = args.attrs as unknown as tf.PadV2Attrs;
    if (x.dtype !== 'float32' || x.shape.length > 8 || x.shape.length === 0) return fallback(tf.PadV2)(args);
    const be = args.backend as Backend;
    const shape = x.shape.map((d, i) => (paddings[i]?.[0] ?? 0) + d + (paddings[i]?.[1] ?? 0));
    const o = f32(be, sizeOf(shape));
    n.fill(o, constantValue);
    if (sizeOf(x.shape) > 0) n.copybox(vals(be, x), i32(x.shape), zeros(x.shape.length), o, i32(shape), i32(paddings.map((p) => p[0])), i32(x.shape));
    return out(be, shape, 'float32', o);
  });
}
