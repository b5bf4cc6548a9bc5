/**
 * WebGPU in tests: start tfjs's webgpu backend on Mesa's CPU renderer ('webgpu:cpu') or say why it
 * cannot start here, and count the GPU buffers the backend holds (for leak checks).
 */
import { initBackend } from '../backend/init.js';

/**
 * Try to start 'webgpu:cpu'. Returns undefined when it runs, else the reason, printed once as a
 * visible note so a skipped suite says why (e.g. Mesa's EGL packages are not installed).
 */
export async function webgpuCpuSkipReason(suite: string): Promise<string | undefined> {
  try {
    await initBackend('webgpu:cpu', { log: false });
    return undefined;
  } catch (err) {
    const why = (err as Error).message.split('\n')[0] ?? String(err);
    console.warn(`[adaptorkit] ${suite}: SKIPPED, WebGPU cannot start here: ${why}`);
    return why;
  }
}

export { webgpuStats } from '../backend/webgpu.js';
