/**
 * The main thread's side of the WebGPU backend: a tfjs KernelBackend that forwards every kernel to
 * the device thread (worker/webgpu-worker.mjs) and waits for its answer on an Atomics wait, so that
 * tfjs's synchronous API (dataSync, a kernel's output shape) works in Node, where dawn.node finishes
 * a GPU read only from the event loop of the thread that owns the device.
 *
 * Each kernel costs one round trip between threads (tens of microseconds): small next to a GPU
 * kernel at training sizes, and the price of running the code base's synchronous reads unchanged.
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type { BackendTimingInfo, DataId, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { AdaptorkitError } from '../errors.js';

type Values = tf.backend_util.BackendValues;
type Ref = { id: number; refs: number; shape: number[]; dtype: tf.DataType };

/** GPU buffers the device thread's tfjs backend holds (in use and pooled), for leak checks. */
export interface WebgpuStats {
  usedBuffers: number;
  freeBuffers: number;
  bytesAllocated: number;
  bytesUsed: number;
  dataIds: number;
}

export class WebgpuProxyBackend extends tf.KernelBackend {
  private readonly refs = new Map<DataId, Ref>();
  private readonly byId = new Map<number, DataId>();
  private nextId = 1;
  private readonly flag = new Int32Array(new SharedArrayBuffer(4));
  private readonly reply: MessagePort;
  readonly worker: Worker;
  private closed = false;

  constructor(workerUrl: URL) {
    super();
    const { port1, port2 } = new MessageChannel();
    this.reply = port1;
    this.worker = new Worker(workerUrl, { workerData: { replyPort: port2, flag: this.flag.buffer }, transferList: [port2] });
    // The device thread must not keep the process alive once the caller is done.
    this.worker.unref();
    this.reply.unref();
  }

  /** Post `msg` and block until the device thread answers it. */
  call<T>(msg: Record<string, unknown>): T {
    if (this.closed) throw new AdaptorkitError('DISPOSED', 'the webgpu backend was disposed');
    // An answer nobody waited for is an error the device thread raised between calls: report it.
    for (let stale = receiveMessageOnPort(this.reply); stale !== undefined; stale = receiveMessageOnPort(this.reply)) {
      const e = (stale.message as { error?: string }).error;
      if (e !== undefined) throw new AdaptorkitError('BACKEND_FAILED', `webgpu: ${e}`);
    }
    Atomics.store(this.flag, 0, 0);
    this.worker.postMessage(msg);
    // A GPU read on a CPU renderer can take seconds; a minute without an answer means the thread died.
    if (Atomics.wait(this.flag, 0, 0, 600_000) === 'timed-out') throw new AdaptorkitError('BACKEND_FAILED', `webgpu device thread did not answer ${String(msg['op'])} within 10 minutes`);
    const got = receiveMessageOnPort(this.reply);
    if (got === undefined) throw new AdaptorkitError('BACKEND_FAILED', `webgpu device thread sent no answer to ${String(msg['op'])}`);
    const m = got.message as T & { error?: string };
    if (m.error !== undefined) throw new AdaptorkitError('BACKEND_FAILED', `webgpu: ${m.error}`);
    return m;
  }

  private ref(dataId: DataId): Ref {
    let r = this.refs.get(dataId);
    if (r === undefined) {
      // Data that lives on another backend: tfjs moves it here (readSync there, move() here).
      tf.engine().moveData(this, dataId);
      r = this.refs.get(dataId);
      if (r === undefined) throw new AdaptorkitError('BACKEND_FAILED', 'webgpu: a kernel input has no data on any backend');
    }
    return r;
  }

  private send(t: TensorInfo): { id: number; shape: number[]; dtype: tf.DataType } {
    return { id: this.ref(t.dataId).id, shape: t.shape, dtype: t.dtype };
  }

  runKernel(name: string, inputs: tf.NamedTensorInfoMap | TensorInfo[], attrs: unknown): TensorInfo | TensorInfo[] {
    const ins = Array.isArray(inputs) ? inputs.map((t) => this.send(t)) : Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, this.send(t!)]));
    const { outputs } = this.call<{ outputs: { id: number; shape: number[]; dtype: tf.DataType; known: boolean }[] }>({ op: 'kernel', name, inputs: ins, attrs });
    const infos = outputs.map((o) => {
      let dataId = this.byId.get(o.id);
      if (o.known && dataId !== undefined) {
        this.refs.get(dataId)!.refs++;
      } else {
        dataId = { id: o.id };
        this.byId.set(o.id, dataId);
        this.refs.set(dataId, { id: o.id, refs: 1, shape: o.shape, dtype: o.dtype });
      }
      return { dataId, shape: o.shape, dtype: o.dtype };
    });
    return infos.length === 1 ? infos[0]! : infos;
  }

  stats(): WebgpuStats {
    return this.call<WebgpuStats>({ op: 'stats' });
  }

  override write(values: Values, shape: number[], dtype: tf.DataType): DataId {
    const dataId = {};
    this.store(dataId, values, shape, dtype, 1);
    return dataId;
  }

  override move(dataId: DataId, values: Values, shape: number[], dtype: tf.DataType, refCount: number): void {
    this.store(dataId, values, shape, dtype, refCount);
  }

  private store(dataId: DataId, values: Values, shape: number[], dtype: tf.DataType, refs: number): void {
    const id = this.nextId++;
    this.refs.set(dataId, { id, refs, shape, dtype });
    this.byId.set(id, dataId);
    this.worker.postMessage({ op: 'write', id, values, shape, dtype });
  }

  override readSync(dataId: DataId): Values {
    return this.call<{ values: Values }>({ op: 'read', id: this.ref(dataId).id }).values;
  }

  override read(dataId: DataId): Promise<Values> {
    return Promise.resolve(this.readSync(dataId));
  }

  override refCount(dataId: DataId): number {
    return this.refs.get(dataId)?.refs ?? 0;
  }

  override incRef(dataId: DataId): void {
    const r = this.refs.get(dataId);
    if (r !== undefined) r.refs++;
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const r = this.refs.get(dataId);
    if (r === undefined) return true;
    r.refs--;
    if (!force && r.refs > 0) return false;
    this.refs.delete(dataId);
    this.byId.delete(r.id);
    if (!this.closed) this.worker.postMessage({ op: 'free', id: r.id });
    return true;
  }

  override numDataIds(): number {
    return this.refs.size;
  }

  override memory(): { unreliable: boolean } {
    return { unreliable: false };
  }

  override timerAvailable(): boolean {
    return true;
  }

  override async time(f: () => void): Promise<BackendTimingInfo> {
    const t0 = performance.now();
    f();
    return { kernelMs: performance.now() - t0 };
  }

  override floatPrecision(): 32 {
    return 32;
  }

  override epsilon(): number {
    return 1e-7;
  }

  override dispose(): void {
    if (this.closed) return;
    this.closed = true;
    void this.worker.terminate();
    this.reply.close();
  }
}

/** Register `name` on tfjs's 'webgpu' for each kernel the device thread has: each runs there. */
export function registerProxyKernels(kernels: readonly string[]): void {
  for (const kernelName of kernels) {
    if (tf.getKernel(kernelName, 'webgpu') !== undefined) tf.unregisterKernel(kernelName, 'webgpu');
    const kernelFunc: KernelFunc = ({ inputs, attrs, backend }) =>
      (backend as WebgpuProxyBackend).runKernel(kernelName, inputs as tf.NamedTensorInfoMap, attrs);
    tf.registerKernel({ kernelName, backendName: 'webgpu', kernelFunc } as KernelConfig);
  }
}
