/**
 * Native kernels for the 'native' backend. Each works on the Float32Array/Int32Array values that
 * MathBackendCPU keeps (no copies) and falls back to the cpu backend's kernel for any dtype or
 * attribute it does not handle, so results never depend on what was implemented natively.
 */
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from './addon.js';
import { registerElementwiseKernels } from './kernels/elementwise.js';
import { registerFusedKernels } from './kernels/fused.js';
import { registerLayoutKernels } from './kernels/layout.js';
import { registerMatmulKernels } from './kernels/matmul.js';
import { escapeInputs, type Backend } from './kernels/util.js';

export { escapeInputs };


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

  const ctx = { n, fallback, add };
  // one file per kernel family under kernels/
  registerMatmulKernels(ctx);
  registerElementwiseKernels(ctx);
  registerLayoutKernels(ctx);
  registerFusedKernels(ctx);
  return configs;
}
