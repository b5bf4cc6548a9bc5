/**
 * The WebGPU backend in Node: @tensorflow/tfjs-backend-webgpu over npm `webgpu` (Dawn's dawn.node,
 * prebuilt), both optional dependencies of core. The device and tfjs's webgpu kernels run in a
 * worker thread (worker/webgpu-worker.mjs; webgpu-proxy.ts says why); tfjs's 'webgpu' backend in
 * the calling thread forwards to it.
 *
 * Two adapters can be asked for:
 *   'gpu' (backend `webgpu`, and what `auto` tries): a real GPU through Dawn's native backend for the
 *         platform (Vulkan on Linux, Metal on macOS, D3D12 on Windows). A CPU renderer (Mesa
 *         llvmpipe/lavapipe, SwiftShader) found there is refused: it is slower than the CPU backends.
 *   'cpu' (backend `webgpu:cpu`, or ADAPTORKIT_WEBGPU_ADAPTER=cpu): Mesa's CPU renderer through Dawn's
 *         OpenGL backend (EGL_PLATFORM=surfaceless, a compatibility-mode adapter). For tests and
 *         checking the WebGPU path without a GPU (Dawn's Vulkan backend refuses lavapipe).
 * ADAPTORKIT_DAWN_BACKEND=vulkan|opengl|opengles|metal|d3d12|d3d11 overrides the Dawn backend of either.
 * The device asks for the adapter's maximum storage-buffer binding, buffer size, storage buffers per
 * stage and workgroup limits (WebGPU's defaults, e.g. 128 MiB bindings, are too small for logits at
 * training sizes; compatibility mode allows only 4 storage buffers per stage by default).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError } from '../errors.js';
import { registerProxyKernels, WebgpuProxyBackend, type WebgpuStats } from './webgpu-proxy.js';

export type WebgpuAdapterKind = 'gpu' | 'cpu';

/** What initBackend records about the adapter that ran. */
export interface WebgpuAdapter {
  kind: WebgpuAdapterKind;
  /** Dawn backend ('vulkan', 'opengl', ... or 'default' when Dawn chose). */
  dawnBackend: string;
  /** e.g. "NVIDIA H200" or "llvmpipe (LLVM 15.0.6, 256 bits)". */
  name: string;
  cpuRenderer: boolean;
  featureLevel: 'core' | 'compatibility';
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

export const WEBGPU_HINT = {
  packages: 'npm install webgpu@0.6.2 @tensorflow/tfjs-backend-webgpu@4.22.0 (optional dependencies of @adaptorkit/core: npm ci installs them unless --omit=optional)',
  vulkan: 'a GPU driver with Vulkan: Debian/Ubuntu `apt-get install libvulkan1` plus the GPU driver (NVIDIA: its proprietary driver ships the Vulkan ICD; AMD/Intel: mesa-vulkan-drivers); Fedora `dnf install vulkan-loader mesa-vulkan-drivers`',
  mesa: 'Mesa EGL and its CPU renderer: Debian/Ubuntu `apt-get install libegl1 libegl-dev libegl-mesa0 libgl1-mesa-dri` (Dawn opens the unversioned libEGL.so, which libegl-dev ships); Fedora `dnf install mesa-libEGL mesa-libEGL-devel mesa-dri-drivers`',
};

/** The device thread's script: beside src/ when running from source, beside dist/ when built. */
function workerUrl(): URL | undefined {
  for (const rel of ['../../worker/webgpu-worker.mjs', '../worker/webgpu-worker.mjs']) {
    const url = new URL(rel, import.meta.url);
    if (existsSync(fileURLToPath(url))) return url;
  }
  return undefined;
}

/** Linux: whether the Vulkan loader is there (checked before a device thread is started for 'gpu'). */
function missingVulkanLoader(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const dirs = [...(process.env['LD_LIBRARY_PATH'] ?? '').split(':').filter(Boolean), '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu', '/lib64', '/usr/local/lib'];
  if (dirs.some((d) => existsSync(`${d}/libvulkan.so.1`))) return undefined;
  return `libvulkan.so.1 (the Vulkan loader) not found: Dawn's Vulkan backend needs it; install ${WEBGPU_HINT.vulkan}`;
}

let active: { kind: WebgpuAdapterKind; adapter: WebgpuAdapter } | undefined;

/**
 * Start the device thread on an adapter of `kind` and register tfjs's 'webgpu' backend on it (once
 * per kind per process; asking for the other kind replaces it). Returns the adapter, or why not.
 */
export async function registerWebgpu(kind: WebgpuAdapterKind): Promise<WebgpuAdapter | string> {
  if (active?.kind === kind && tf.findBackendFactory('webgpu') !== null) return active.adapter;
  const url = workerUrl();
  if (url === undefined) return 'worker/webgpu-worker.mjs is missing from @adaptorkit/core (reinstall it)';
  const forced = process.env['ADAPTORKIT_DAWN_BACKEND'];
  const dawnBackend = forced !== undefined && forced !== '' ? forced : kind === 'cpu' ? 'opengl' : undefined;
  // Mesa's EGL without a display server. Set here: a worker's process.env is its own copy, and EGL
  // reads the process environment when Dawn opens it.
  if ((dawnBackend === 'opengl' || dawnBackend === 'opengles') && process.platform === 'linux') process.env['EGL_PLATFORM'] ??= 'surfaceless';
  if (dawnBackend === undefined || dawnBackend === 'vulkan') {
    const why = missingVulkanLoader();
    if (why !== undefined) return why;
  }
  const proxy = new WebgpuProxyBackend(url);
  const ready = await new Promise<{ op: 'ready'; adapter: WebgpuAdapter; kernels: string[] } | { op: 'failed'; reason: string }>((resolve) => {
    proxy.worker.once('message', resolve);
    proxy.worker.once('error', (err) => resolve({ op: 'failed', reason: `device thread failed: ${err.message.split('\n')[0]}` }));
    proxy.worker.ref(); // keep the process alive while the adapter is looked for
    proxy.worker.postMessage({ op: 'init', kind, dawnBackend });
  });
  proxy.worker.unref();
  if (ready.op === 'failed') {
    proxy.dispose();
    return ready.reason;
  }
  if (tf.findBackendFactory('webgpu') !== null) {
    if (tf.getBackend() === 'webgpu') await tf.setBackend('cpu');
    tf.removeBackend('webgpu');
  }
  registerProxyKernels(ready.kernels);
  tf.registerBackend('webgpu', () => proxy, 0);
  active = { kind, adapter: ready.adapter };
  return ready.adapter;
}

/** Buffer counts of the active webgpu backend (throws when another backend is active). */
export function webgpuStats(): WebgpuStats {
  const b = tf.backend();
  if (!(b instanceof WebgpuProxyBackend)) throw new AdaptorkitError('INVALID_ARGUMENT', `webgpuStats: the active backend is ${tf.getBackend()}, not webgpu`);
  return b.stats();
}

/** One line for logs and run info. */
export function describeAdapter(a: WebgpuAdapter): string {
  const mib = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;
  return `adapter ${a.name} via Dawn ${a.dawnBackend}${a.featureLevel === 'compatibility' ? ', compatibility mode' : ''}${a.cpuRenderer ? ', CPU renderer' : ''}, storage binding ${mib(a.maxStorageBufferBindingSize)}, buffer ${mib(a.maxBufferSize)}`;
}

/** Thrown when 'webgpu' or 'webgpu:cpu' is asked for by name and cannot start. */
export function webgpuUnavailable(pref: 'webgpu' | 'webgpu:cpu', why: string): AdaptorkitError {
  const fix =
    pref === 'webgpu:cpu'
      ? `needs ${WEBGPU_HINT.packages} and ${WEBGPU_HINT.mesa}`
      : `needs ${WEBGPU_HINT.packages} and ${WEBGPU_HINT.vulkan}; on a machine without a GPU, backend 'webgpu:cpu' runs it on Mesa's CPU renderer (slow: for checks only)`;
  return new AdaptorkitError('BACKEND_UNAVAILABLE', `backend '${pref}' is not available (${why}). It ${fix}; or use backend 'auto'.`);
}
