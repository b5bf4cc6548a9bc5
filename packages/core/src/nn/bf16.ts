/**
 * Frozen weights stored as bf16: a frozen Linear or Embedding weight loaded from a bf16 checkpoint
 * can keep the checkpoint's bits (half the memory of float32, no rounding) in an int32 tensor, two
 * bf16 values per element, in the checkpoint's own layout (a Linear's [out, in]). Products run
 * through backend kernels that convert a block of the weight to float32 at a time
 * (@adaptorkit/backend-native registers them; it spells the same names):
 *  - BF16_MATMUL {x [N, K], w}, attrs {rows, cols, mode}: mode 0 y = x W^T [N, rows]; mode 1 y = x W [N, cols]
 *  - BF16_GATHER {w, indices [N]}, attrs {rows, cols}: y = W[indices] [N, cols]
 * The gradient w.r.t. a Linear's input is the mode-1 product (the weight itself is frozen: it has none).
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError, formatShape } from '../errors.js';

export const BF16_MATMUL = 'AdaptorkitBf16MatMul';
export const BF16_GATHER = 'AdaptorkitBf16Gather';

export type WeightsDtype = 'f32' | 'bf16';

/** Whether the active backend runs products from bf16-stored weights. */
export function bf16Supported(backend = tf.getBackend()): boolean {
  return tf.getKernel(BF16_MATMUL, backend) !== undefined && tf.getKernel(BF16_GATHER, backend) !== undefined;
}

/** Refuse bf16 storage where the active backend has no bf16 kernels (the caller names the setting). */
export function assertBf16Supported(what: string): void {
  if (bf16Supported()) return;
  throw new AdaptorkitError(
    'UNSUPPORTED',
    `${what}: bf16-stored weights need the native backend's bf16 kernels, and the active backend '${tf.getBackend()}' has none; use backend: native, or weightsDtype: f32 (weights upcast to float32 at load)`,
  );
}

/** bf16 bits -> an int32 array of ceil(n/2) elements holding the same bytes (little-endian pairs). */
export function packBf16(bits: Uint16Array): Int32Array {
  const out = new Int32Array(Math.ceil(bits.length / 2));
  new Uint16Array(out.buffer, 0, bits.length).set(bits);
  return out;
}

/** The first n bf16 values of a packed int32 array (a copy). */
export function unpackBf16(packed: Int32Array, n: number): Uint16Array {
  return new Uint16Array(packed.buffer, packed.byteOffset, n).slice();
}

const run = (kernel: string, inputs: tf.NamedTensorMap, attrs: Record<string, unknown>) => tf.engine().runKernel(kernel, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;

type CustomGradientFunc = Parameters<typeof tf.customGrad>[0];

/**
 * x [..., in] @ W^T (+ b) with W packed bf16 [out, in] -> [..., out]; the gradient w.r.t. x flows
 * (dy @ W, from the same bits), W gets none (it is frozen).
 */
export function bf16Linear(x: tf.Tensor, packed: tf.Tensor, outF: number, inF: number, b?: tf.Tensor): tf.Tensor {
  if (x.shape[x.shape.length - 1] !== inF) throw new AdaptorkitError('SHAPE_MISMATCH', `bf16 linear: input ${formatShape(x.shape)} does not end in ${inF}`);
  if (!bf16Supported()) assertBf16Supported('a bf16-stored weight');
  const lead = x.shape.slice(0, -1);
  const f = tf.customGrad(((xi: tf.Tensor) => {
    const x2 = tf.reshape(xi, [-1, inF]); // [N, in]
    const y = run(BF16_MATMUL, { x: x2, w: packed }, { rows: outF, cols: inF, mode: 0 }); // [N, out]
    return {
      value: tf.reshape(y, [...lead, outF]),
      gradFunc: (dy: tf.Tensor) => tf.reshape(run(BF16_MATMUL, { x: tf.reshape(dy, [-1, outF]), w: packed }, { rows: outF, cols: inF, mode: 1 }), xi.shape),
    };
  }) as CustomGradientFunc);
  const y = f(x);
  if (!b) return y;
  const out = tf.add(y, b);
  y.dispose();
  return out;
}

/** Rows of a packed bf16 table [rows, cols] at int32 ids [...] -> float32 [..., cols] (no gradient: the table is frozen). */
export function bf16Gather(packed: tf.Tensor, ids: tf.Tensor, rows: number, cols: number): tf.Tensor {
  if (!bf16Supported()) assertBf16Supported('a bf16-stored embedding');
  return tf.tidy(() => {
    const flat = ids.rank === 1 ? ids : tf.reshape(ids, [-1]);
    const out = run(BF16_GATHER, { w: packed, indices: flat }, { rows, cols }); // [N, cols]
    return ids.rank === 1 ? out : tf.reshape(out, [...ids.shape, cols]);
  });
}
