// The WebGPU device thread (plain ESM: started as a worker_threads Worker by src/backend/webgpu.ts).
//
// dawn.node completes GPU buffer reads (mapAsync) only from its thread's event loop, so a thread
// that runs tfjs-backend-webgpu cannot read a tensor synchronously (tfjs's readSync needs a browser's
// OffscreenCanvas). The main thread's tfjs therefore runs a proxy backend that forwards every kernel
// here and blocks on an Atomics wait for the answer; this thread's event loop stays free to finish
// the reads. Protocol (messages from the main thread, in order):
//   {op:'init', kind, dawnBackend}        -> posted back on parentPort: {op:'ready', adapter, kernels} | {op:'failed', reason}
//   {op:'write', id, values, shape, dtype} {op:'free', id}      (no answer; the main thread counts
//                                          references per id, this thread holds one per live id)
//   {op:'kernel', name, inputs, attrs}    -> sync answer: {outputs: [{id, shape, dtype, known}]}
//   {op:'read', id}                        -> sync answer: {values}
//   {op:'stats'}                           -> sync answer: buffer counts
// A sync answer is posted on `replyPort`, then flag[0] is set to 1 and notified.
import { parentPort, workerData } from 'node:worker_threads';

const { replyPort, flag: flagBuffer } = workerData;
const flag = new Int32Array(flagBuffer);
const CPU_RENDERER = /llvmpipe|lavapipe|softpipe|swiftshader|software|microsoft basic render/i;
const RAISED_LIMITS = [
  'maxStorageBufferBindingSize', 'maxBufferSize', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupStorageSize',
  'maxComputeWorkgroupsPerDimension', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY', 'maxComputeWorkgroupSizeZ',
  'maxComputeInvocationsPerWorkgroup', 'maxUniformBufferBindingSize', 'maxBindGroups',
];
const NEEDED = { maxStorageBuffersPerShaderStage: 8 };
const HINT = {
  packages: "npm install webgpu@0.6.2 @tensorflow/tfjs-backend-webgpu@4.22.0 (optional dependencies of @adaptorkit/core: npm ci installs them unless --omit=optional)",
  mesa: 'Mesa EGL and its CPU renderer: Debian/Ubuntu `apt-get install libegl1 libegl-dev libegl-mesa0 libgl1-mesa-dri` (Dawn opens the unversioned libEGL.so, which libegl-dev ships); Fedora `dnf install mesa-libEGL mesa-libEGL-devel mesa-dri-drivers`',
};

let tf;
let backend;
const byId = new Map(); // id -> worker-side dataId
const idOf = new WeakMap(); // worker-side dataId -> id
let nextId = -1; // ids this thread makes for kernel outputs are negative (the main thread's writes are positive)

// A failure in a message that has no answer (write, free) is reported with the next answer.
let pendingError;

function answer(msg, transfer = []) {
  if (pendingError !== undefined && msg.error === undefined) msg = { error: pendingError };
  pendingError = undefined;
  replyPort.postMessage(msg, transfer);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}

const message = (err) => String(err?.message ?? err).split('\n')[0];
const notFound = (err) => err?.code === 'ERR_MODULE_NOT_FOUND' || err?.code === 'MODULE_NOT_FOUND';

async function init({ kind, dawnBackend }) {
  let dawn;
  try {
    dawn = await import('webgpu');
  } catch (err) {
    return `npm package 'webgpu' ${notFound(err) ? 'not installed' : `failed to load: ${message(err)}`} (${HINT.packages})`;
  }
  let gpu;
  try {
    gpu = dawn.create(dawnBackend === undefined ? [] : [`backend=${dawnBackend}`]);
  } catch (err) {
    return `dawn.node could not start with backend=${dawnBackend ?? 'default'}: ${message(err)}`;
  }
  const where = `[Dawn backend ${dawnBackend ?? 'default'}]`;
  let adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  let featureLevel = 'core';
  if (adapter === null) {
    // OpenGL/GLES give only compatibility-mode adapters.
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance', featureLevel: 'compatibility' });
    featureLevel = 'compatibility';
  }
  if (adapter === null) return kind === 'cpu' ? `Dawn found no adapter ${where}: needs ${HINT.mesa}` : `Dawn found no GPU adapter ${where} (no GPU, or its driver offers no Vulkan/Metal/D3D12)`;
  const info = adapter.info;
  // e.g. "NVIDIA H200 (NVIDIA: 580.95.05)" or "llvmpipe-llvm-15-0-6-256-bits (OpenGL version 4.5 (Core Profile) Mesa 22.3.6)"
  const clean = (x) => (x ?? '').trim().replace(/-+$/, '');
  const head = clean(info.device) || clean(info.vendor) || 'unnamed adapter';
  const name = clean(info.description) && clean(info.description) !== head ? `${head} (${clean(info.description)})` : head;
  const cpuRenderer = info.isFallbackAdapter === true || CPU_RENDERER.test(`${info.description} ${info.device} ${info.vendor}`);
  if (kind === 'gpu' && cpuRenderer) return `only a CPU renderer found (${name}) ${where}: slower than the CPU backends; ask for backend 'webgpu:cpu' to use it anyway`;
  const limits = adapter.limits;
  for (const [k, min] of Object.entries(NEEDED)) if ((limits[k] ?? 0) < min) return `adapter ${name} offers ${k} ${limits[k]}, training needs ${min}`;
  const requiredLimits = {};
  for (const k of RAISED_LIMITS) if (typeof limits[k] === 'number') requiredLimits[k] = limits[k];
  const requiredFeatures = ['timestamp-query'].filter((f) => adapter.features.has(f));
  let device;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  } catch (err) {
    return `adapter ${name} refused a device with raised limits: ${message(err)}`;
  }
  // A validation error (an invalid pipeline, a limit exceeded) makes the GPU skip that work silently:
  // report it with the next answer, so a run fails instead of training on garbage.
  device.addEventListener('uncapturederror', (e) => {
    pendingError ??= `GPU error: ${message(e.error)}`;
  });
  // tfjs-backend-webgpu reads GPUBufferUsage, GPUMapMode, ... as globals and checks navigator.gpu.
  for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) globalThis[k] = v;
  if (globalThis.navigator === undefined) Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  else Object.defineProperty(globalThis.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
  let webgpu;
  try {
    tf = await import('@tensorflow/tfjs-core');
    webgpu = await import('@tensorflow/tfjs-backend-webgpu');
  } catch (err) {
    return `@tensorflow/tfjs-backend-webgpu ${notFound(err) ? 'not installed' : `failed to load: ${message(err)}`} (${HINT.packages})`;
  }
  const WebGPUBackend = webgpu.WebGPUBackend ?? webgpu.default?.WebGPUBackend;
  if (tf.findBackendFactory('webgpu') !== null) tf.removeBackend('webgpu');
  backend = new WebGPUBackend(device, info);
  tf.registerBackend('webgpu', () => backend);
  await tf.setBackend('webgpu');
  return {
    adapter: {
      kind,
      dawnBackend: dawnBackend ?? 'default',
      name,
      cpuRenderer,
      featureLevel,
      maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
      maxBufferSize: device.limits.maxBufferSize,
    },
    kernels: tf.getKernelsForBackend('webgpu').map((k) => k.kernelName),
  };
}

const toInfo = (t) => ({ dataId: byId.get(t.id), shape: t.shape, dtype: t.dtype });

/**
 * tfjs's webgpu AddN binds every input as a storage buffer: over the device's per-stage limit
 * (16 on Mesa llvmpipe; a gradient summed over 25 uses has 25 inputs) the pipeline is invalid and the
 * GPU silently skips the work. Sum in chunks that fit instead.
 */
function addNInChunks(kernel, ins, attrs) {
  const maxIn = backend.device.limits.maxStorageBuffersPerShaderStage - 1;
  let parts = ins;
  const temps = [];
  while (parts.length > maxIn) {
    const next = [];
    for (let i = 0; i < parts.length; i += maxIn) {
      const chunk = parts.slice(i, i + maxIn);
      if (chunk.length === 1) next.push(chunk[0]);
      else {
        const o = kernel.kernelFunc({ inputs: chunk, attrs, backend });
        temps.push(o);
        next.push(o);
      }
    }
    parts = next;
  }
  const out = kernel.kernelFunc({ inputs: parts, attrs, backend });
  for (const t of temps) backend.disposeData(t.dataId);
  return out;
}

function runKernel({ name, inputs, attrs }) {
  const kernel = tf.getKernel(name, 'webgpu');
  const ins = Array.isArray(inputs) ? inputs.map(toInfo) : Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, toInfo(t)]));
  const out = name === 'AddN' && Array.isArray(ins) ? addNInChunks(kernel, ins, attrs) : kernel.kernelFunc({ inputs: ins, attrs, backend });
  const outs = Array.isArray(out) ? out : [out];
  return outs.map((o) => {
    let id = idOf.get(o.dataId);
    const known = id !== undefined;
    if (known) {
      // The kernel returned an existing buffer (reshape, identity) and counted one more reference to
      // it; the main thread counts references per id, so this thread keeps one per id.
      backend.disposeData(o.dataId);
    } else {
      id = nextId--;
      byId.set(id, o.dataId);
      idOf.set(o.dataId, id);
    }
    return { id, shape: o.shape, dtype: o.dtype, known };
  });
}

// Whatever escapes (an async GPU error) must still wake a main thread that waits for an answer.
process.on('uncaughtException', (err) => answer({ error: `device thread: ${message(err)}` }));
process.on('unhandledRejection', (err) => answer({ error: `device thread: ${message(err)}` }));

parentPort.on('message', async (m) => {
  switch (m.op) {
    case 'init': {
      let r;
      try {
        r = await init(m);
      } catch (err) {
        r = `WebGPU failed to start: ${message(err)}`;
      }
      parentPort.postMessage(typeof r === 'string' ? { op: 'failed', reason: r } : { op: 'ready', ...r });
      break;
    }
    case 'write':
      try {
        const dataId = backend.write(m.values, m.shape, m.dtype);
        byId.set(m.id, dataId);
        idOf.set(dataId, m.id);
      } catch (err) {
        pendingError ??= `write: ${message(err)}`;
      }
      break;
    case 'free':
      try {
        const dataId = byId.get(m.id);
        if (dataId !== undefined && backend.disposeData(dataId, true)) byId.delete(m.id);
      } catch (err) {
        pendingError ??= `free: ${message(err)}`;
      }
      break;
    case 'kernel':
      try {
        answer({ outputs: runKernel(m) });
      } catch (err) {
        answer({ error: `${m.name}: ${message(err)}` });
      }
      break;
    case 'read':
      try {
        const values = await backend.read(byId.get(m.id));
        answer({ values });
      } catch (err) {
        answer({ error: `read: ${message(err)}` });
      }
      break;
    case 'stats': {
      const bm = backend.bufferManager;
      answer({ usedBuffers: bm.getNumUsedBuffers(), freeBuffers: bm.getNumFreeBuffers(), bytesAllocated: bm.numBytesAllocated, bytesUsed: bm.numBytesUsed, dataIds: backend.numDataIds() });
      break;
    }
  }
});
