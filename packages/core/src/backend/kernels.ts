/**
 * Kernel names. Core owns the names of the kernels that have no tfjs op (as tfjs-core owns tfjs's
 * kernel names): they are spelled once in @adaptorkit/kernel-names, a dependency-free module that
 * @adaptorkit/backend-native (which registers them) imports too, since it cannot import core (core
 * loads it at run time), and re-exported here and from core's index.
 */
export {
  ADAMW, ATTN_SOFTMAX, ATTN_SOFTMAX_GRAD, KERNEL_NAMES, LAYER_NORM, LAYER_NORM_GRAD, RMS_NORM, RMS_NORM_GRAD, ROPE, SPARSE_SOFTMAX_CE, SPARSE_SOFTMAX_CE_GRAD, SWIGLU, SWIGLU_GRAD,
  type AdamWAttrs,
} from '@adaptorkit/kernel-names';

/**
 * Kernels that a backend lacks for training, written once in plain JS against the generic
 * backend API (readSync + a new output), so they work on any backend that has data in memory.
 *
 * wasm (tfjs 4.22) has no UnsortedSegmentSum, which is the gradient of `gather`: without it a
 * trainable embedding cannot train on wasm.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

type AnyBackend = tf.KernelBackend & {
  makeOutput?: (shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: tf.backend_util.BackendValues) => TensorInfo;
  makeTensorInfo?: (shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues) => TensorInfo;
};

function newOutput(backend: AnyBackend, shape: number[], dtype: tf.DataType, values: tf.backend_util.BackendValues): TensorInfo {
  if (typeof backend.makeOutput === 'function') return backend.makeOutput(shape, dtype, undefined, values);
  if (typeof backend.makeTensorInfo === 'function') return backend.makeTensorInfo(shape, dtype, values);
  throw new Error('backend can make no output tensor from values');
}

const unsortedSegmentSum: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const { numSegments } = attrs as unknown as { numSegments: number };
  const b = backend as AnyBackend;
  const xv = b.readSync(x.dataId) as Float32Array | Int32Array;
  const ids = b.readSync(segmentIds.dataId) as Int32Array;
  // x: [N, ...inner] with segmentIds [N] (ids may have more dims: flatten both prefixes)
  const idCount = ids.length;
  const inner = idCount === 0 ? 0 : xv.length / idCount;
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const out = x.dtype === 'int32' ? new Int32Array(numSegments * inner) : new Float32Array(numSegments * inner);
  for (let i = 0; i < idCount; i++) {
    const s = ids[i] as number;
    if (s < 0 || s >= numSegments) continue; // TF drops out-of-range ids
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) out[dst + j]! += xv[src + j]!;
  }
  return newOutput(b, outShape, x.dtype, out);
};

/** Register the missing training kernels for `backendName` (skips kernels it already has). */
export function registerMissingKernels(backendName: string): string[] {
  const have = new Set(tf.getKernelsForBackend(backendName).map((k) => k.kernelName));
  const configs: KernelConfig[] = [{ kernelName: tf.UnsortedSegmentSum, backendName, kernelFunc: unsortedSegmentSum }];
  const added: string[] = [];
  for (const c of configs) {
    if (have.has(c.kernelName)) continue;
    tf.registerKernel(c);
    added.push(c.kernelName);
  }
  return added;
}
