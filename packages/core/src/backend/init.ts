/**
 * Picking and starting the TensorFlow.js backend.
 *
 * `auto` takes the fastest backend present, in this order:
 *   tensorflow (@tensorflow/tfjs-node-gpu, CUDA) > webgpu on a real GPU (npm `webgpu` + tfjs-backend-webgpu)
 *   > tensorflow (@tensorflow/tfjs-node, libtensorflow CPU)
 *   > native (@adaptorkit/backend-native: OpenBLAS + native kernels) > wasm > cpu.
 * tfjs-node(-gpu), webgpu and the native addon are optional: absence is detected, never required.
 * `webgpu:cpu` (or `webgpu` with ADAPTORKIT_WEBGPU_ADAPTER=cpu) runs WebGPU on Mesa's CPU renderer:
 * never chosen by `auto`, for tests and checks (see webgpu.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core alone registers no gradients; training needs them all.
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { AdaptorkitError } from '../errors.js';
import { registerMissingKernels } from './kernels.js';
import { describeAdapter, registerWebgpu, webgpuUnavailable, type WebgpuAdapter, type WebgpuAdapterKind } from './webgpu.js';

export type BackendName = 'tensorflow' | 'webgpu' | 'native' | 'wasm' | 'cpu';
export type BackendPreference = 'auto' | BackendName | 'webgpu:cpu';
export const BACKEND_PREFERENCES: readonly BackendPreference[] = ['auto', 'tensorflow', 'webgpu', 'webgpu:cpu', 'native', 'wasm', 'cpu'];
export type { WebgpuAdapter } from './webgpu.js';

export interface BackendInfo {
  /** The tfjs backend name now active. */
  name: BackendName;
  /** The npm package that provides it. */
  package: string;
  /** Whether a GPU is used (tfjs-node-gpu, webgpu on a real GPU). */
  gpu: boolean;
  /** webgpu: the adapter it runs on. */
  adapter?: WebgpuAdapter;
  /** wasm: SIMD / threads; native: BLAS and thread count, when reported. */
  simd?: boolean;
  threads?: number | boolean;
  detail?: string;
  /** Backends `auto` tried and skipped, with the reason (e.g. "tfjs-node-gpu: not installed"). */
  skipped: string[];
}

export interface InitBackendOptions {
  /** Print one line saying what was chosen (default true). */
  log?: boolean | ((line: string) => void);
  /**
   * webgpu: which adapter backend 'webgpu' takes: 'gpu' (default: a real GPU) or 'cpu' (Mesa's CPU
   * renderer, like 'webgpu:cpu'). Default: ADAPTORKIT_WEBGPU_ADAPTER from the environment, else 'gpu'.
   */
  webgpuAdapter?: WebgpuAdapterKind;
}

/** The contract @adaptorkit/backend-native implements (kept structural so core needs no build-time link). */
export interface NativeBackendModule {
  /** Registers the 'native' tfjs backend and its kernels; throws if the addon is not usable. */
  registerNativeBackend(): { detail: string; threads: number };
  /** Why the addon cannot load, or undefined when it can. */
  nativeUnavailableReason(): string | undefined;
}

const INSTALL_HINT: Record<string, string> = {
  'tfjs-node-gpu': 'npm install @tensorflow/tfjs-node-gpu@4.22.0 (needs CUDA and access to the libtensorflow download host at install)',
  'tfjs-node': 'npm install @tensorflow/tfjs-node@4.22.0 (downloads libtensorflow at install)',
  native: 'install a C++ compiler and OpenBLAS (Debian: apt-get install g++ libopenblas-dev), then npm rebuild @adaptorkit/backend-native',
  wasm: 'npm install @tensorflow/tfjs-backend-wasm@4.22.0',
};

let current: BackendInfo | undefined;

/** The backend chosen by the last initBackend call, if any. */
export function currentBackend(): BackendInfo | undefined {
  return current;
}

async function tryImport(spec: string): Promise<unknown | string> {
  try {
    return await import(/* @vite-ignore */ spec);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND') return 'not installed';
    return `failed to load: ${(e.message ?? String(err)).split('\n')[0]}`;
  }
}

async function activate(name: string): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new AdaptorkitError('BACKEND_FAILED', `tfjs could not start the '${name}' backend`);
  await tf.ready();
  // MathBackendCPU (and backends built on it) print a "you are running TensorFlow.js in Node.js"
  // banner on first use; initBackend already logs what ran and how to get a faster backend.
  const b = tf.backend() as { firstUse?: boolean };
  if (b.firstUse === true) b.firstUse = false;
}

type Attempt = BackendInfo | string;

async function startTensorflow(gpu: boolean): Promise<Attempt> {
  const pkg = gpu ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
  const mod = await tryImport(pkg);
  if (typeof mod === 'string') return mod;
  if (tf.findBackend('tensorflow') == null) {
    return `${pkg} loaded but registered no 'tensorflow' backend with this @tensorflow/tfjs-core (version mismatch? install 4.22.0)`;
  }
  await activate('tensorflow');
  return { name: 'tensorflow', package: pkg, gpu, skipped: [] };
}

async function startNative(): Promise<Attempt> {
  const mod = await tryImport('@adaptorkit/backend-native');
  if (typeof mod === 'string') return mod;
  const native = mod as NativeBackendModule;
  const why = native.nativeUnavailableReason();
  if (why !== undefined) return why;
  const { detail, threads } = native.registerNativeBackend();
  await activate('native');
  registerMissingKernels('native');
  return { name: 'native', package: '@adaptorkit/backend-native', gpu: false, threads, detail, skipped: [] };
}

async function startWasm(): Promise<Attempt> {
  const mod = await tryImport('@tensorflow/tfjs-backend-wasm');
  if (typeof mod === 'string') return mod;
  registerMissingKernels('wasm');
  await activate('wasm');
  return {
    name: 'wasm',
    package: '@tensorflow/tfjs-backend-wasm',
    gpu: false,
    simd: tf.env().getBool('WASM_HAS_SIMD_SUPPORT'),
    threads: tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT'),
    skipped: [],
  };
}

async function startCpu(): Promise<Attempt> {
  await activate('cpu');
  return { name: 'cpu', package: '@tensorflow/tfjs-backend-cpu', gpu: false, skipped: [] };
}

async function startWebgpu(kind: WebgpuAdapterKind): Promise<Attempt> {
  const adapter = await registerWebgpu(kind);
  if (typeof adapter === 'string') return adapter;
  try {
    await activate('webgpu');
  } catch (err) {
    return `tfjs could not start webgpu on ${adapter.name}: ${(err as Error).message.split('\n')[0]}`;
  }
  return { name: 'webgpu', package: '@tensorflow/tfjs-backend-webgpu + webgpu (dawn.node)', gpu: !adapter.cpuRenderer, adapter, detail: describeAdapter(adapter), skipped: [] };
}

function describe(info: BackendInfo): string {
  const parts = [`backend: ${info.name} (${info.package}${info.gpu ? ', GPU' : ''})`];
  if (info.name === 'wasm') parts.push(`SIMD ${info.simd ? 'on' : 'off'}, threads ${info.threads ? 'on' : 'off'}`);
  if (info.detail) parts.push(info.detail);
  if (info.skipped.length > 0) parts.push(`skipped: ${info.skipped.join('; ')}`);
  return parts.join(' | ');
}

/**
 * Start a backend and return what was chosen. Asking for a specific backend that is absent is an
 * AdaptorkitError('BACKEND_UNAVAILABLE') that says how to install it.
 */
export async function initBackend(pref: BackendPreference = 'auto', opts: InitBackendOptions = {}): Promise<BackendInfo> {
  if (!BACKEND_PREFERENCES.includes(pref)) {
    throw new AdaptorkitError('INVALID_ARGUMENT', `unknown backend '${String(pref)}': expected one of ${BACKEND_PREFERENCES.join(', ')}`);
  }
  const skipped: string[] = [];
  let info: BackendInfo | undefined;
  const attempt = async (label: string, fn: () => Promise<Attempt>): Promise<boolean> => {
    const r = await fn();
    if (typeof r === 'string') {
      skipped.push(`${label}: ${r}`);
      return false;
    }
    info = r;
    return true;
  };

  if (pref === 'auto') {
    const order: [string, () => Promise<Attempt>][] = [
      ['tfjs-node-gpu', () => startTensorflow(true)],
      ['webgpu', () => startWebgpu('gpu')],
      ['tfjs-node', () => startTensorflow(false)],
      ['native', startNative],
      ['wasm', startWasm],
      ['cpu', startCpu],
    ];
    for (const [label, start] of order) if (await attempt(label, start)) break;
  } else if (pref === 'tensorflow') {
    if (!(await attempt('tfjs-node-gpu', () => startTensorflow(true))) && !(await attempt('tfjs-node', () => startTensorflow(false)))) {
      throw new AdaptorkitError(
        'BACKEND_UNAVAILABLE',
        `backend 'tensorflow' is not available (${skipped.join('; ')}). Install one of:\n  ${INSTALL_HINT['tfjs-node-gpu']}\n  ${INSTALL_HINT['tfjs-node']}\nor use backend 'auto'.`,
      );
    }
  } else if (pref === 'webgpu' || pref === 'webgpu:cpu') {
    const envKind = process.env['ADAPTORKIT_WEBGPU_ADAPTER'];
    const kind: WebgpuAdapterKind = pref === 'webgpu:cpu' ? 'cpu' : (opts.webgpuAdapter ?? (envKind === 'cpu' ? 'cpu' : 'gpu'));
    if (!(await attempt(pref, () => startWebgpu(kind)))) throw webgpuUnavailable(kind === 'cpu' ? 'webgpu:cpu' : 'webgpu', skipped.join('; '));
  } else {
    const start = pref === 'native' ? startNative : pref === 'wasm' ? startWasm : startCpu;
    if (!(await attempt(pref, start))) {
      throw new AdaptorkitError(
        'BACKEND_UNAVAILABLE',
        `backend '${pref}' is not available (${skipped.join('; ')}). To get it: ${INSTALL_HINT[pref] ?? 'reinstall adaptorkit'}; or use backend 'auto'.`,
      );
    }
  }
  if (info === undefined) throw new AdaptorkitError('BACKEND_FAILED', `no backend could start: ${skipped.join('; ')}`);
  info.skipped = skipped;
  current = info;
  const log = opts.log ?? true;
  if (log) {
    const line = describe(info);
    if (typeof log === 'function') log(line);
    else console.log(`[adaptorkit] ${line}`);
  }
  return info;
}
