export { nativeUnavailableReason, registerNativeBackend, setNativeThreads, NativeBackend, NATIVE_BACKEND_NAME } from './backend.js';
export { NativeBackendError, type NativeErrorCode } from './errors.js';
// The names of the kernels this backend registers beyond tfjs's: defined once in @adaptorkit/kernel-names.
export {
  ADAMW, SPARSE_SOFTMAX_CE, SPARSE_SOFTMAX_CE_GRAD, RMS_NORM, RMS_NORM_GRAD, LAYER_NORM, LAYER_NORM_GRAD, SWIGLU, SWIGLU_GRAD, ROPE, ATTN_SOFTMAX, ATTN_SOFTMAX_GRAD, type AdamWAttrs,
} from '@adaptorkit/kernel-names';
export { BF16_MATMUL, BF16_GATHER, type Bf16MatMulAttrs } from './kernels/bf16.js';
