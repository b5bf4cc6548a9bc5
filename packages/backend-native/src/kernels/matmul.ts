/** Matrix products: BatchMatMul and _FusedMatMul (bias + activation) through OpenBLAS. */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from '../addon.js';
import { ADD, binaryInto, broadcastStrides, f32, out, sizeOf, vals, type Backend, type KernelContext } from './util.js';
import { U_ELU, U_RELU, U_RELU6, U_SIGMOID } from './elementwise.js';

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


/** Register this family's kernels. */
export function registerMatmulKernels({ n, fallback, add }: KernelContext): void {
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
}
