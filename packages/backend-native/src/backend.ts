/**
 * The 'native' tfjs backend: MathBackendCPU's storage (plain TypedArrays) and every cpu kernel,
 * with the hot kernels replaced by the addon's (OpenBLAS matmul, native elementwise, softmax,
 * reductions, transpose, gather).
 */
import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { KernelFunc } from '@tensorflow/tfjs-core';
import { addonUnavailableReason, tryAddon } from './addon.js';
import { NativeBackendError } from './errors.js';
import { escapeInputs, nativeKernels } from './kernels.js';
import { bf16Kernels } from './kernels/bf16.js';
import { BufferPool } from './pool.js';

export const NATIVE_BACKEND_NAME = 'native';

/** A MathBackendCPU under another name; the kernels registered for 'native' do the work. */
export class NativeBackend extends MathBackendCPU {
  readonly pool = new BufferPool();
  constructor() {
    super();
    // MathBackendCPU prints a "install tfjs-node" banner on first use in Node; this backend is the answer to it.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  override disposeData(dataId: object, force = false): boolean {
    const v = this.data.has(dataId) ? this.data.get(dataId).values : undefined;
    const deleted = super.disposeData(dataId, force);
    if (deleted && v !== undefined && !this.data.has(dataId)) this.pool.release(v);
    return deleted;
  }

  override readSync(dataId: object): tf.backend_util.BackendValues {
    this.handOut(dataId);
    const v = super.readSync(dataId);
    this.pool.escape(v);
    return v;
  }

  override async read(dataId: object): Promise<tf.backend_util.BackendValues> {
    this.handOut(dataId);
    return super.read(dataId);
  }

  /**
   * Before values leave the backend: a float32 array that is a view on a larger buffer (a pool
   * buffer of its size class, or a cpu kernel's subarray) is replaced by an exact-size copy, so
   * code that reads `.buffer` whole (tfjs' Tensor.bytes, tf.io) sees exactly the tensor's bytes;
   * an unseen pool view goes back to the pool. The values are then the caller's: never recycled.
   */
  private handOut(dataId: object): void {
    if (!this.data.has(dataId)) return;
    const d = this.data.get(dataId);
    const v = d.values;
    if (v instanceof Float32Array && (v.byteOffset !== 0 || v.byteLength !== v.buffer.byteLength)) {
      d.values = v.slice();
      this.pool.release(v);
    }
    this.pool.escape(d.values);
  }

  override dispose(): void {
    this.pool.clear();
    super.dispose();
  }
}

/**
 * cpu kernels that never keep a view of an input's array: they either share the input's dataId
 * (reference-counted, so its array returns to the pool only when the last user is disposed) or
 * write a new array. Marking their inputs as escaped would take nearly every matmul output out of
 * the pool (each Linear reshapes its output), and a fresh array costs page faults on first touch:
 * measured 4-5x the time of the elementwise kernel itself.
 */
const SHARES_BY_REF = new Set<string>([tf.Reshape, tf.Identity, tf.Cast]);

let registered: { detail: string; threads: number } | undefined;

/** Why the native backend cannot be used here, or undefined when it can. */
export function nativeUnavailableReason(): string | undefined {
  return addonUnavailableReason();
}

/**
 * Registers the 'native' backend with all cpu kernels and the native overrides. Idempotent.
 * Throws NativeBackendError('NATIVE_UNAVAILABLE') when the addon cannot load.
 */
export function registerNativeBackend(): { detail: string; threads: number } {
  if (registered) return registered;
  const addon = tryAddon();
  if (!addon) throw new NativeBackendError('NATIVE_UNAVAILABLE', `native backend unavailable: ${addonUnavailableReason() ?? 'unknown reason'}`);
  const name = NATIVE_BACKEND_NAME;
  // Priority 0 keeps tfjs from picking it on its own; callers select it with tf.setBackend('native').
  tf.registerBackend(name, () => new NativeBackend(), 0);
  const cpu = new Map<string, KernelFunc>();
  for (const k of tf.getKernelsForBackend('cpu')) cpu.set(k.kernelName, k.kernelFunc);
  const overrides = [...nativeKernels(addon, name, cpu), ...bf16Kernels(addon, name)];
  const overridden = new Set(overrides.map((k) => k.kernelName));
  for (const k of tf.getKernelsForBackend('cpu')) {
    if (overridden.has(k.kernelName)) continue;
    const f = k.kernelFunc;
    if (SHARES_BY_REF.has(k.kernelName)) {
      tf.registerKernel({ ...k, backendName: name });
      continue;
    }
    // cpu kernels may return views of their inputs (e.g. TopK): mark those arrays as not recyclable.
    tf.registerKernel({
      ...k,
      backendName: name,
      kernelFunc: (args) => {
        escapeInputs(args.backend as MathBackendCPU, args.inputs as Record<string, tf.TensorInfo | undefined>);
        return f(args);
      },
    });
  }
  for (const k of overrides) tf.registerKernel(k);
  registered = { detail: `${addon.info()}; ${overrides.length} native kernels`, threads: addon.threads() };
  return registered;
}

/** Set the thread count for OpenBLAS and the native kernels (default: all online cores). */
export function setNativeThreads(n: number): void {
  const addon = tryAddon();
  if (!addon) throw new NativeBackendError('NATIVE_UNAVAILABLE', `native backend unavailable: ${addonUnavailableReason() ?? 'unknown reason'}`);
  if (!Number.isInteger(n) || n < 1) throw new NativeBackendError('INVALID_ARGUMENT', `threads must be a positive integer, got ${n}`);
  addon.setThreads(n);
}
