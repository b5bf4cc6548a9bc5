export { nativeUnavailableReason, registerNativeBackend, setNativeThreads, NativeBackend, NATIVE_BACKEND_NAME } from './backend.js';
export { NativeBackendError, type NativeErrorCode } from './errors.js';
export { ADAMW, SPARSE_SOFTMAX_CE, SPARSE_SOFTMAX_CE_GRAD, type AdamWAttrs } from './kernels.js';
