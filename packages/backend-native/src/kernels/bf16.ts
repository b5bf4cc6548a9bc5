/**
 * Kernels for frozen weights stored as bf16 (the checkpoint's bits, two per int32 element; core's
 * nn/bf16.ts packs them and spells the same kernel names):
 *  - BF16_MATMUL: {x [N, K] float32, w int32 (packed bf16 [rows, cols])}, attrs {rows, cols, mode}
 *      mode 0: y = x W^T, K = cols -> [N, rows]  (a Linear's forward; W in HF layout [out, in])
 *      mode 1: y = x W,   K = rows -> [N, cols]  (its gradient w.r.t. x)
 *  - BF16_GATHER: {w int32 (packed bf16 [rows, cols]), indices int32 [N]}, attrs {rows, cols} -> [N, cols]
 * The addon converts one block of W to float32 at a time and multiplies it with OpenBLAS sgemm
 * (native/bf16.c), so the weight never exists in float32 as a whole.
 */
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { NativeAddon } from '../addon.js';
import { NativeBackendError } from '../errors.js';
import type { BufferPool } from '../pool.js';

export const BF16_MATMUL = 'AdaptorkitBf16MatMul';
export const BF16_GATHER = 'AdaptorkitBf16Gather';

export interface Bf16MatMulAttrs {
  rows: number;
  cols: number;
  mode: 0 | 1;
}

function values(b: MathBackendCPU, t: TensorInfo): Float32Array | Int32Array {
  return b.data.get(t.dataId).values as Float32Array | Int32Array;
}

function need(kernel: string, ok: boolean, what: string): void {
  if (!ok) throw new NativeBackendError('INVALID_ARGUMENT', `${kernel}: ${what}`);
}

function f32(b: MathBackendCPU, n: number): Float32Array {
  const pool = (b as unknown as { pool?: BufferPool }).pool;
  return pool ? pool.f32(n, false) : new Float32Array(n);
}

/** The bf16 kernels for backend `name` (registered beside nativeKernels by registerNativeBackend). */
export function bf16Kernels(n: NativeAddon, name: string): KernelConfig[] {
  const matmul: KernelConfig = {
    kernelName: BF16_MATMUL,
    backendName: name,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, w } = inputs as { x: TensorInfo; w: TensorInfo };
      const { rows, cols, mode } = attrs as unknown as Bf16MatMulAttrs;
      const K = mode === 0 ? cols : rows;
      const M = mode === 0 ? rows : cols;
      need(BF16_MATMUL, mode === 0 || mode === 1, `mode must be 0 or 1, got ${String(mode)}`);
      need(BF16_MATMUL, x.dtype === 'float32' && x.shape.length === 2 && x.shape[1] === K, `x must be float32 [N, ${K}], got ${x.dtype} [${x.shape}]`);
      need(BF16_MATMUL, w.dtype === 'int32' && values(backend as MathBackendCPU, w).length * 2 >= rows * cols, `w must be int32 holding ${rows}x${cols} packed bf16 values, got ${w.dtype} [${w.shape}]`);
      const be = backend as MathBackendCPU;
      const N = x.shape[0] as number;
      const y = f32(be, N * M);
      n.bf16mm(mode, N, rows, cols, values(be, x) as Float32Array, values(be, w) as Int32Array, y);
      return be.makeTensorInfo([N, M], 'float32', y);
    },
  };
  const gather: KernelConfig = {
    kernelName: BF16_GATHER,
    backendName: name,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { w, indices } = inputs as { w: TensorInfo; indices: TensorInfo };
      const { rows, cols } = attrs as unknown as { rows: number; cols: number };
      const be = backend as MathBackendCPU;
      need(BF16_GATHER, w.dtype === 'int32' && values(be, w).length * 2 >= rows * cols, `w must be int32 holding ${rows}x${cols} packed bf16 values, got ${w.dtype} [${w.shape}]`);
      need(BF16_GATHER, indices.dtype === 'int32' && indices.shape.length === 1, `indices must be int32 [N], got ${indices.dtype} [${indices.shape}]`);
      const ids = values(be, indices) as Int32Array;
      for (let i = 0; i < ids.length; i++) {
        const r = ids[i] as number;
        need(BF16_GATHER, r >= 0 && r < rows, `index ${r} at position ${i} is outside [0, ${rows})`);
      }
      const y = f32(be, ids.length * cols);
      n.bf16gather(rows, cols, values(be, w) as Int32Array, ids, y);
      return be.makeTensorInfo([ids.length, cols], 'float32', y);
    },
  };
  return [matmul, gather];
}
