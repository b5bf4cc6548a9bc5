/**
 * The kernels with no tfjs op, spelled once. @adaptorkit/core calls them by these names when the
 * active backend registers them (and re-exports them: core owns the names, as tfjs-core owns its
 * kernel names); @adaptorkit/backend-native registers them. This module has no dependencies, so both
 * can import it although core loads backend-native at run time.
 */

/**
 * Sparse softmax cross-entropy (float32 logits):
 *  - SPARSE_SOFTMAX_CE: {logits [N, V], labels int32 [N] in [0, V)} -> [nll [N], lse [N]]
 *  - SPARSE_SOFTMAX_CE_GRAD: {logits, lse, labels, dy [N]} -> dlogits [N, V] = softmax * dy - onehot * dy
 */
export const SPARSE_SOFTMAX_CE = 'AdaptorkitSparseSoftmaxCrossEntropy';
export const SPARSE_SOFTMAX_CE_GRAD = 'AdaptorkitSparseSoftmaxCrossEntropyGrad';

/**
 * ADAMW: {param, grad, m, v} (float32, one shape) -> [param', m', v'], attrs {@link AdamWAttrs}:
 * m' = m*b1 + g*(1-b1); v' = v*b2 + g^2*(1-b2);
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
 * Fused transformer pieces (float32):
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

/** Every name above, for a backend to check it registers them all. */
export const KERNEL_NAMES = [
  SPARSE_SOFTMAX_CE, SPARSE_SOFTMAX_CE_GRAD, ADAMW, RMS_NORM, RMS_NORM_GRAD, LAYER_NORM, LAYER_NORM_GRAD, SWIGLU, SWIGLU_GRAD, ROPE, ATTN_SOFTMAX, ATTN_SOFTMAX_GRAD,
] as const;
