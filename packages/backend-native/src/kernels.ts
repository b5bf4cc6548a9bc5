/**
 * Native kernels for the 'native' backend. Each works on the Float32Array/Int32Array values that
 * MathBackendCPU keeps (no copies) and falls back to the cpu backend's kernel for any dtype or
 * attribute it does not handle, so results never depend on what was implemented natively.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { NativeAddon } from './addon.js';
import type { BufferPool } from './pool.js';

type Backend = MathBackendCPU;
type Values = Float32Array | Int32Array;

// Kernel name -> op code in native/addon.c (names from tfjs-core, so a typo cannot slip in).
const BIN: Record<string, number> = {
  [tf.Add]: 0, [tf.Sub]: 1, [tf.Multiply]: 2, [tf.RealDiv]: 3, [tf.Maximum]: 4, [tf.Minimum]: 5,
  [tf.SquaredDifference]: 6, [tf.Pow]: 7,
};
const UN: Record<string, number> = {
  [tf.Exp]: 0, [tf.Log]: 1, [tf.Sqrt]: 2, [tf.Rsqrt]: 3, [tf.Neg]: 4, [tf.Sigmoid]: 5, [tf.Tanh]: 6, [tf.Relu]: 7,
  [tf.Square]: 8, [tf.Abs]: 9, [tf.Reciprocal]: 10, [tf.Step]: 11, [tf.Erf]: 12, [tf.Softplus]: 13, [tf.Log1p]: 14,
  [tf.Expm1]: 15, [tf.Sin]: 16, [tf.Cos]: 17, [tf.Elu]: 18, [tf.Relu6]: 19, [tf.Sign]: 20,
};
const RED = { Sum: 0, Max: 1, Min: 2, Mean: 3, Prod: 4 } as const;
const RED_KERNELS: Record<string, number> = { [tf.Sum]: RED.Sum, [tf.Max]: RED.Max, [tf.Min]: RED.Min, [tf.Mean]: RED.Mean, [tf.Prod]: RED.Prod };
const ADD = 0;

/**
 * Kernels with no tfjs op. @adaptorkit/core calls them by these names (the same strings are
 * spelled there) when the active backend registers them.
 *  - SPARSE_SOFTMAX_CE: {logits [N, V], labels int32 [N]} -> [nll [N], lse [N]]
 *  - SPARSE_SOFTMAX_CE_GRAD: {logits, lse, labels, dy [N]} -> dlogits [N, V]
 */
export const SPARSE_SOFTMAX_CE = 'AdaptorkitSparseSoftmaxCrossEntropy';
export const SPARSE_SOFTMAX_CE_GRAD = 'AdaptorkitSparseSoftmaxCrossEntropyGrad';
/**
 * ADAMW: {param, grad, m, v} (float32, one shape) -> [param', m', v'], attrs {beta1, beta2, eps,
 * sqrtBc2, decay, stepSize}: m' = m*b1 + g*(1-b1); v' = v*b2 + g^2*(1-b2);
 * param' = param*decay - m' / (sqrt(v')/sqrtBc2 + eps) * stepSize. One pass instead of ~11 kernels.
 */
export const ADAMW = 'AdaptorkitAdamW';
export interface AdamWAttrs {
  beta1: number;
  beta2: number;
  eps: number;
  sqrtBc2: number;
  decay: number;
  stepSize: number;
}
/**
 * Fused transformer pieces (float32; @adaptorkit/core uses them when the backend registers them and
 * composes tfjs ops otherwise):
 *  - RMS_NORM: {x [..., d]}, attrs {eps} -> [n = x * r, r = 1/sqrt(mean(x^2, -1) + eps) [..., 1]]
 *  - RMS_NORM_GRAD: {dy, n, r} -> dx = r * (dy - n * mean(dy * n, -1))
 *  - LAYER_NORM / LAYER_NORM_GRAD: the same with the row mean removed first: n = (x - mean) * r,
 *    r = 1/sqrt(var + eps); dx = r * (dy - mean(dy) - n * mean(dy * n))
 *  - SWIGLU: {gate, up} (one shape) -> silu(gate) * up;  SWIGLU_GRAD: {dy, gate, up} -> [dgate, dup]
 *  - ROPE: {x [..., T, hd], cos [T, hd], sin [T, hd]}, attrs {inverse} -> x * cos + rotate_half(x) * sin
 *    (inverse: the transpose map, i.e. the gradient)
 *  - ATTN_SOFTMAX: {x [..., Tq, S]}, attrs {scale > 0, causal, past} -> softmax(scale * x, -1), keys
 *    j > past + t of query t set to 0 when causal;  ATTN_SOFTMAX_GRAD: {dy, y}, attrs {scale} ->
 *    scale * y * (dy - sum(dy * y, -1))
 */
export const RMS_NORM = 'AdaptorkitRmsNorm';
export const RMS_NORM_GRAD = 'AdaptorkitRmsNormGrad';
export const LAYER_NORM = 'AdaptorkitLayerNorm';
export const LAYER_NORM_GRAD = 'AdaptorkitLayerNormGrad';
export const SWIGLU = 'AdaptorkitSwiGlu';
export const SWIGLU_GRAD = 'AdaptorkitSwiGluGrad';
export const ROPE = 'AdaptorkitRope';
export const ATTN_SOFTMAX = 'AdaptorkitAttnSoftmax';
export const ATTN_SOFTMAX_GRAD = 'AdaptorkitAttnSoftmaxGrad';
const U_RELU = 7, U_RELU6 = 19, U_SIGMOID = 5, U_ELU = 18;

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * The stored values, as the TypedArray its dtype implies. A few cpu kernels (e.g. Cast from bool
 * or int32) store another array kind under a float32 dtype; that array is converted once, in place.
 */
function vals(b: Backend, t: TensorInfo): Values {
  const d = b.data.get(t.dataId);
  const v = d.values as Values | Uint8Array | undefined;
  if (t.dtype === 'float32' && !(v instanceof Float32Array)) d.values = Float32Array.from((v ?? []) as ArrayLike<number>);
  else if (t.dtype === 'int32' && !(v instanceof Int32Array)) d.values = Int32Array.from((v ?? []) as ArrayLike<number>);
  return d.values as Values;
}

/** A float32 output buffer, from the backend's pool when it has one. */
function f32(b: Backend, n: number, zero = false): Float32Array {
  const pool = (b as unknown as { pool?: BufferPool }).pool;
  return pool ? pool.f32(n, zero) : new Float32Array(n);
}

function out(b: Backend, shape: number[], dtype: tf.DataType, values: Values): TensorInfo {
  return b.makeTensorInfo(shape, dtype, values);
}

/** Row-major strides of `shape` as seen from an output of rank `rank` (0 on broadcast dims). */
function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const rank = outShape.length;
  const s = new Array<number>(rank).fill(0);
  let stride = 1;
  for (let i = shape.length - 1, o = rank - 1; o >= 0; i--, o--) {
    const d = i >= 0 ? (shape[i] as number) : 1;
    s[o] = d === 1 && outShape[o] !== 1 ? 0 : stride;
    stride *= d;
  }
  return s;
}

/** Drop size-1 dims and merge neighbours that both inputs walk contiguously (or both broadcast). */
function mergeDims(shape: readonly number[], as: number[], bs: number[]): { shape: Int32Array; as: Int32Array; bs: Int32Array } {
  const sh: number[] = [];
  const sa: number[] = [];
  const sb: number[] = [];
  for (let d = 0; d < shape.length; d++) {
    const n = shape[d] as number;
    if (n === 1) continue;
    const a = as[d] as number;
    const b = bs[d] as number;
    const k = sh.length - 1;
    if (k >= 0 && sa[k] === a * n && sb[k] === b * n) {
      sh[k] = (sh[k] as number) * n;
      sa[k] = a;
      sb[k] = b;
    } else {
      sh.push(n);
      sa.push(a);
      sb.push(b);
    }
  }
  if (sh.length === 0) return { shape: Int32Array.of(1), as: Int32Array.of(0), bs: Int32Array.of(0) };
  return { shape: Int32Array.from(sh), as: Int32Array.from(sa), bs: Int32Array.from(sb) };
}

function binaryInto(n: NativeAddon, op: number, a: Float32Array, aShape: readonly number[], b: Float32Array, bShape: readonly number[], outShape: number[], o: Float32Array): void {
  const m = mergeDims(outShape, broadcastStrides(aShape, outShape), broadcastStrides(bShape, outShape));
  n.binary(op, a, b, o, m.shape, m.as, m.bs);
}

/** Batch matmul with numpy broadcasting of the batch dims. */
function matmul(n: NativeAddon, b: Backend, a: TensorInfo, bb: TensorInfo, transA: boolean, transB: boolean): TensorInfo {
  const ar = a.shape.length;
  const br = bb.shape.length;
  const M = transA ? (a.shape[ar - 1] as number) : (a.shape[ar - 2] as number);
  const K = transA ? (a.shape[ar - 2] as number) : (a.shape[ar - 1] as number);
  const K2 = transB ? (bb.shape[br - 1] as number) : (bb.shape[br - 2] as number);
  const N = transB ? (bb.shape[br - 2] as number) : (bb.shape[br - 1] as number);
  if (K !== K2) {
    throw new Error(`Error in matMul: inner shapes (${K}) and (${K2}) of Tensors with shapes ${a.shape} and ${bb.shape} and transposeA=${transA} and transposeB=${transB} must match.`);
  }
  const aBatch = a.shape.slice(0, -2);
  const bBatch = bb.shape.slice(0, -2);
  const outBatch = tf.broadcast_util.assertAndGetBroadcastShape(aBatch, bBatch);
  const batch = sizeOf(outBatch);
  const outShape = [...outBatch, M, N];
  const o = f32(b, batch * M * N);
  const av = vals(b, a) as Float32Array;
  const bv = vals(b, bb) as Float32Array;
  const aB = sizeOf(aBatch);
  const bB = sizeOf(bBatch);
  if (bB === 1 && !transA && aB === batch) {
    // Weights shared by every batch: one product with batch*M rows.
    n.bmm(0, transB ? 1 : 0, batch * M, N, K, av, bv, o, 1, null, null, 0);
  } else if (aB === batch && bB === batch) {
    n.bmm(transA ? 1 : 0, transB ? 1 : 0, M, N, K, av, bv, o, batch, null, null, 0);
  } else {
    const as = broadcastStrides(aBatch, outBatch);
    const bs = broadcastStrides(bBatch, outBatch);
    const aOffs = new Int32Array(batch);
    const bOffs = new Int32Array(batch);
    for (let i = 0; i < batch; i++) {
      let rem = i;
      let ao = 0;
      let bo = 0;
      for (let d = outBatch.length - 1; d >= 0; d--) {
        const dim = outBatch[d] as number;
        const idx = rem % dim;
        rem = (rem - idx) / dim;
        ao += idx * (as[d] as number);
        bo += idx * (bs[d] as number);
      }
      aOffs[i] = ao * M * K;
      bOffs[i] = bo * K * N;
    }
    n.bmm(transA ? 1 : 0, transB ? 1 : 0, M, N, K, av, bv, o, batch, aOffs, bOffs, 0);
  }
  return out(b, outShape, 'float32', o);
}

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

/** A cpu-backend kernel may keep a view of its inputs' arrays: they must never be recycled. */
export function escapeInputs(b: Backend, inputs: Record<string, TensorInfo | undefined> | TensorInfo[]): void {
  const pool = (b as unknown as { pool?: BufferPool }).pool;
  if (!pool) return;
  for (const t of Object.values(inputs)) if (t && b.data.has(t.dataId)) pool.escape(b.data.get(t.dataId).values);
}

/** Build the kernel configs for backend `name`; `cpu` gives the fallbacks. */
export function nativeKernels(n: NativeAddon, name: string, cpu: Map<string, KernelFunc>): KernelConfig[] {
  const fallback = (kernel: string): KernelFunc => {
    const f = cpu.get(kernel);
    if (!f) throw new Error(`cpu backend has no kernel ${kernel}`);
    return (args) => {
      escapeInputs(args.backend as Backend, args.inputs as Record<string, TensorInfo | undefined>);
      return f(args);
    };
  };
  const configs: KernelConfig[] = [];
  const add = (kernelName: string, kernelFunc: KernelFunc) => configs.push({ kernelName, backendName: name, kernelFunc });

  // --- matmul ---
  add(tf.BatchMatMul, (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return fallback(tf.BatchMatMul)(args);
    return matmul(n, args.backend as Backend, a, b, transposeA, transposeB);
  });
  add(tf._FusedMatMul, (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as { a: TensorInfo; b: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo };
    const { transposeA, transposeB, activation } = args.attrs as unknown as tf._FusedMatMulAttrs;
    const act = activation ?? 'linear';
    const ok = a.dtype === 'float32' && b.dtype === 'float32' && (bias == null || bias.dtype === 'float32') && preluActivationWeights == null &&
      (act === 'linear' || act === 'relu' || act === 'relu6' || act === 'sigmoid' || act === 'elu');
    if (!ok) return fallback(tf._FusedMatMul)(args);
    const be = args.backend as Backend;
    const r = matmul(n, be, a, b, transposeA, transposeB);
    const rv = vals(be, r) as Float32Array;
    if (bias != null) binaryInto(n, ADD, rv, r.shape, vals(be, bias) as Float32Array, bias.shape, r.shape, rv);
    if (act !== 'linear') {
      const op = act === 'relu' ? U_RELU : act === 'relu6' ? U_RELU6 : act === 'sigmoid' ? U_SIGMOID : U_ELU;
      n.unary(op, rv, rv, 0, 0);
    }
    return r;
  });

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

  // --- fused sparse softmax cross entropy (no tfjs op: @adaptorkit/core's maskedCrossEntropy runs
  // these by name when the active backend has them, and composes tfjs ops otherwise) ---
  const ceArgs = (logits: TensorInfo, labels: TensorInfo): [number, number] => {
    if (logits.dtype !== 'float32' || logits.shape.length !== 2 || labels.dtype !== 'int32' || labels.shape.length !== 1 || labels.shape[0] !== logits.shape[0]) {
      throw new Error(`${SPARSE_SOFTMAX_CE}: logits must be float32 [N, V] and labels int32 [N], got ${logits.dtype} [${logits.shape}] and ${labels.dtype} [${labels.shape}]`);
    }
    return [logits.shape[0] as number, logits.shape[1] as number];
  };
  const checkLabels = (lv: Int32Array, cols: number): void => {
    for (let i = 0; i < lv.length; i++) {
      const k = lv[i] as number;
      if (k < 0 || k >= cols) throw new Error(`${SPARSE_SOFTMAX_CE}: label ${k} at row ${i} is outside [0, ${cols})`);
    }
  };
  add(SPARSE_SOFTMAX_CE, (args) => {
    const { logits, labels } = args.inputs as { logits: TensorInfo; labels: TensorInfo };
    const be = args.backend as Backend;
    const [rows, cols] = ceArgs(logits, labels);
    const lv = vals(be, labels) as Int32Array;
    checkLabels(lv, cols);
    const nll = f32(be, rows);
    const lse = f32(be, rows);
    if (rows > 0) n.ce(vals(be, logits) as Float32Array, lv, nll, lse, rows, cols); // cols > 0: checkLabels
    return [out(be, [rows], 'float32', nll), out(be, [rows], 'float32', lse)];
  });
  add(SPARSE_SOFTMAX_CE_GRAD, (args) => {
    const { logits, lse, labels, dy } = args.inputs as { logits: TensorInfo; lse: TensorInfo; labels: TensorInfo; dy: TensorInfo };
    const be = args.backend as Backend;
    const [rows, cols] = ceArgs(logits, labels);
    if (lse.dtype !== 'float32' || dy.dtype !== 'float32' || sizeOf(lse.shape) !== rows || sizeOf(dy.shape) !== rows) {
      throw new Error(`${SPARSE_SOFTMAX_CE_GRAD}: lse and dy must be float32 [${rows}]`);
    }
    const lv = vals(be, labels) as Int32Array;
    checkLabels(lv, cols);
    const dx = f32(be, rows * cols);
    if (dx.length > 0) n.ceGrad(vals(be, logits) as Float32Array, vals(be, lse) as Float32Array, lv, vals(be, dy) as Float32Array, dx, rows, cols);
    return out(be, [rows, cols], 'float32', dx);
  });

  // --- fused transformer pieces ---
  const need = (kernel: string, ok: boolean, what: string): void => {
    if (!ok) throw new Error(`${kernel}: ${what}`);
  };
  const shapeEq = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
  const lastDim = (t: TensorInfo) => (t.shape.length ? (t.shape[t.shape.length - 1] as number) : 1);

  const norm = (kernel: string, fwd: 'rmsnorm' | 'layernorm') => (args: Parameters<KernelFunc>[0]) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { eps } = args.attrs as unknown as { eps: number };
    need(kernel, x.dtype === 'float32' && x.shape.length >= 1, `x must be float32 of rank >= 1, got ${x.dtype} [${x.shape}]`);
    const be = args.backend as Backend;
    const size = sizeOf(x.shape);
    const cols = lastDim(x);
    const rows = cols > 0 ? size / cols : 0;
    const nv = f32(be, size);
    const rv = f32(be, rows);
    if (size > 0) n[fwd](vals(be, x) as Float32Array, nv, rv, rows, cols, eps);
    return [out(be, [...x.shape], 'float32', nv), out(be, [...x.shape.slice(0, -1), 1], 'float32', rv)];
  };
  const normGrad = (kernel: string, bwd: 'rmsnormGrad' | 'layernormGrad') => (args: Parameters<KernelFunc>[0]) => {
    const { dy, n: nn, r } = args.inputs as { dy: TensorInfo; n: TensorInfo; r: TensorInfo };
    const be = args.backend as Backend;
    const size = sizeOf(nn.shape);
    const cols = lastDim(nn);
    const rows = cols > 0 ? size / cols : 0;
    need(kernel, dy.dtype === 'float32' && nn.dtype === 'float32' && r.dtype === 'float32' && shapeEq(dy.shape, nn.shape) && sizeOf(r.shape) === rows,
      `dy and n must be float32 of one shape and r one value per row, got [${dy.shape}], [${nn.shape}], [${r.shape}]`);
    const dx = f32(be, size);
    if (size > 0) n[bwd](vals(be, dy) as Float32Array, vals(be, nn) as Float32Array, vals(be, r) as Float32Array, dx, rows, cols);
    return out(be, [...nn.shape], 'float32', dx);
  };
  add(RMS_NORM, norm(RMS_NORM, 'rmsnorm'));
  add(RMS_NORM_GRAD, normGrad(RMS_NORM_GRAD, 'rmsnormGrad'));
  add(LAYER_NORM, norm(LAYER_NORM, 'layernorm'));
  add(LAYER_NORM_GRAD, normGrad(LAYER_NORM_GRAD, 'layernormGrad'));

  add(SWIGLU, (args) => {
    const { gate, up } = args.inputs as { gate: TensorInfo; up: TensorInfo };
    need(SWIGLU, gate.dtype === 'float32' && up.dtype === 'float32' && shapeEq(gate.shape, up.shape), `gate and up must be float32 of one shape, got [${gate.shape}] and [${up.shape}]`);
    const be = args.backend as Backend;
    const size = sizeOf(gate.shape);
    const y = f32(be, size);
    if (size > 0) n.swiglu(vals(be, gate) as Float32Array, vals(be, up) as Float32Array, y, size);
    return out(be, [...gate.shape], 'float32', y);
  });
  add(SWIGLU_GRAD, (args) => {
    const { dy, gate, up } = args.inputs as { dy: TensorInfo; gate: TensorInfo; up: TensorInfo };
    need(SWIGLU_GRAD, [dy, gate, up].every((t) => t.dtype === 'float32' && shapeEq(t.shape, gate.shape)), `dy, gate and up must be float32 of one shape, got [${dy.shape}], [${gate.shape}], [${up.shape}]`);
    const be = args.backend as Backend;
    const size = sizeOf(gate.shape);
    const dg = f32(be, size);
    const du = f32(be, size);
    if (size > 0) n.swigluGrad(vals(be, dy) as Float32Array, vals(be, gate) as Float32Array, vals(be, up) as Float32Array, dg, du, size);
    return [out(be, [...gate.shape], 'float32', dg), out(be, [...gate.shape], 'float32', du)];
  });

  add(ROPE, (args) => {
    const { x, cos, sin } = args.inputs as { x: TensorInfo; cos: TensorInfo; sin: TensorInfo };
    const { inverse } = args.attrs as unknown as { inverse: boolean };
    const r = x.shape.length;
    const T = (x.shape[r - 2] ?? 0) as number;
    const hd = lastDim(x);
    need(ROPE, [x, cos, sin].every((t) => t.dtype === 'float32') && r >= 2 && hd % 2 === 0 && shapeEq(cos.shape, [T, hd]) && shapeEq(sin.shape, [T, hd]),
      `x must be float32 [..., T, hd] (hd even) and cos, sin [T, hd], got [${x.shape}], [${cos.shape}], [${sin.shape}]`);
    const be = args.backend as Backend;
    const size = sizeOf(x.shape);
    const y = f32(be, size);
    if (size > 0) n.rope(vals(be, x) as Float32Array, vals(be, cos) as Float32Array, vals(be, sin) as Float32Array, y, size / (T * hd), T, hd, inverse ? 1 : 0);
    return out(be, [...x.shape], 'float32', y);
  });

  add(ATTN_SOFTMAX, (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { scale, causal, past } = args.attrs as unknown as { scale: number; causal: boolean; past: number };
    const r = x.shape.length;
    need(ATTN_SOFTMAX, x.dtype === 'float32' && r >= 2 && scale > 0 && Number.isInteger(past) && past >= 0, `x must be float32 [..., Tq, S], scale > 0 and past a count, got [${x.shape}], scale ${scale}, past ${past}`);
    const be = args.backend as Backend;
    const S = x.shape[r - 1] as number;
    const Tq = x.shape[r - 2] as number;
    const size = sizeOf(x.shape);
    const y = f32(be, size);
    if (size > 0) n.attnSoftmax(vals(be, x) as Float32Array, y, size / S, S, Tq, past, causal ? 1 : 0, scale);
    return out(be, [...x.shape], 'float32', y);
  });
  add(ATTN_SOFTMAX_GRAD, (args) => {
    const { dy, y } = args.inputs as { dy: TensorInfo; y: TensorInfo };
    const { scale } = args.attrs as unknown as { scale: number };
    need(ATTN_SOFTMAX_GRAD, dy.dtype === 'float32' && y.dtype === 'float32' && shapeEq(dy.shape, y.shape) && y.shape.length >= 1, `dy and y must be float32 of one shape, got [${dy.shape}] and [${y.shape}]`);
    const be = args.backend as Backend;
    const S = lastDim(y);
    const size = sizeOf(y.shape);
    const dx = f32(be, size);
    if (size > 0) n.attnSoftmaxGrad(vals(be, dy) as Float32Array, vals(be, y) as Float32Array, dx, size / S, S, scale);
    return out(be, [...y.shape], 'float32', dx);
  });

  add(ADAMW, (args) => {
    const { param, grad, m, v } = args.inputs as { param: TensorInfo; grad: TensorInfo; m: TensorInfo; v: TensorInfo };
    const a = args.attrs as unknown as AdamWAttrs;
    const be = args.backend as Backend;
    const size = sizeOf(param.shape);
    for (const t of [param, grad, m, v]) {
      if (t.dtype !== 'float32' || sizeOf(t.shape) !== size) throw new Error(`${ADAMW}: param, grad, m and v must be float32 of one size, got ${t.dtype} [${t.shape}] for [${param.shape}]`);
    }
    const po = f32(be, size);
    const mo = f32(be, size);
    const vo = f32(be, size);
    if (size > 0) {
      n.adamwOut(vals(be, param) as Float32Array, vals(be, grad) as Float32Array, vals(be, m) as Float32Array, vals(be, v) as Float32Array, po, mo, vo,
        a.beta1, 1 - a.beta1, a.beta2, 1 - a.beta2, a.sqrtBc2, a.eps, a.decay, a.stepSize);
    }
    return [out(be, [...param.shape], 'float32', po), out(be, [...param.shape], 'float32', mo), out(be, [...param.shape], 'float32', vo)];
  });

  return configs;
}

