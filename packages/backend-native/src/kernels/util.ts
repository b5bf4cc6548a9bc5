/** Helpers the native kernel families share: typed views of the stored values, output buffers, broadcasting. */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { NativeAddon } from '../addon.js';
import type { BufferPool } from '../pool.js';

export type Backend = MathBackendCPU;
export type Values = Float32Array | Int32Array;
export const ADD = 0;

/** What a kernel family needs to register its kernels on the backend being built. */
export interface KernelContext {
  n: NativeAddon;
  /** The cpu backend's kernel, wrapped so the inputs it may keep views of are never recycled. */
  fallback: (kernel: string) => KernelFunc;
  add: (kernelName: string, kernelFunc: KernelFunc) => void;
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * The stored values, as the TypedArray its dtype implies. A few cpu kernels (e.g. Cast from bool
 * or int32) store another array kind under a float32 dtype; that array is converted once, in place.
 */
export function vals(b: Backend, t: TensorInfo): Values {
  const d = b.data.get(t.dataId);
  const v = d.values as Values | Uint8Array | undefined;
  if (t.dtype === 'float32' && !(v instanceof Float32Array)) d.values = Float32Array.from((v ?? []) as ArrayLike<number>);
  else if (t.dtype === 'int32' && !(v instanceof Int32Array)) d.values = Int32Array.from((v ?? []) as ArrayLike<number>);
  return d.values as Values;
}

/** A float32 output buffer, from the backend's pool when it has one. */
export function f32(b: Backend, n: number, zero = false): Float32Array {
  const pool = (b as unknown as { pool?: BufferPool }).pool;
  return pool ? pool.f32(n, zero) : new Float32Array(n);
}

export function out(b: Backend, shape: number[], dtype: tf.DataType, values: Values): TensorInfo {
  return b.makeTensorInfo(shape, dtype, values);
}

/** Row-major strides of `shape` as seen from an output of rank `rank` (0 on broadcast dims). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
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
export function mergeDims(shape: readonly number[], as: number[], bs: number[]): { shape: Int32Array; as: Int32Array; bs: Int32Array } {
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

export function binaryInto(n: NativeAddon, op: number, a: Float32Array, aShape: readonly number[], b: Float32Array, bShape: readonly number[], outShape: number[], o: Float32Array): void {
  const m = mergeDims(outShape, broadcastStrides(aShape, outShape), broadcastStrides(bShape, outShape));
  n.binary(op, a, b, o, m.shape, m.as, m.bs);
}

/** A cpu-backend kernel may keep a view of its inputs' arrays: they must never be recycled. */
export function escapeInputs(b: Backend, inputs: Record<string, TensorInfo | undefined> | TensorInfo[]): void {
  const pool = (b as unknown as { pool?: BufferPool }).pool;
  if (!pool) return;
  for (const t of Object.values(inputs)) if (t && b.data.has(t.dataId)) pool.escape(b.data.get(t.dataId).values);
}

