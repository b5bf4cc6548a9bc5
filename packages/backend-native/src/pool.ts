/**
 * Reuse of large output buffers. A training step allocates and frees the same few sizes over and
 * over; fresh Float32Arrays cost page faults and push V8 into frequent full GCs (they count as
 * external memory). Only arrays this backend's native kernels allocated are recycled, and an
 * array stops being recyclable once anything outside those kernels may hold it: read by
 * dataSync/data (the caller keeps the array) or passed to a cpu-backend kernel (which may return
 * a view of it).
 *
 * Buffers are pooled by size class, not by exact length: batches of varying sequence length ask
 * for a different length nearly every step (measured on an MMA training run: 63% of requests
 * missed an exact-length pool, 5.7 GB of fresh arrays in 30 steps). A request of n floats gets a
 * view of length n on a buffer of its class (at most 1/4 larger than n; a larger class when its
 * own has none free), so every length inside a class shares the same buffers. Views handed out
 * are exact-length; the backend copies one to an exact-size array before anyone outside can read
 * its `.buffer` (NativeBackend.handOut).
 */
import { NativeBackendError } from './errors.js';

const MIN_LEN = 1024;
/**
 * Bytes kept for reuse at most (ADAPTORKIT_NATIVE_POOL_MB, default 1024). Idle buffers count
 * against it, not the live tensors. Measured on the projector-only ShapesWorld run (60 steps, 1
 * thread; misses / train s): cap 512 MB with 8 classes per octave and 2 larger 10,026 / 19.8 s,
 * 1024 MB 2,091 / 16.4 s; 4 classes and 3 larger: 512 MB 6,224 / 14.7 s, 1024 MB 1,162 / 13.9 s,
 * peak RSS ~1.1 GB in each (the pooled buffers replace garbage V8 had not yet collected).
 */
export function maxPooledBytes(env: string | undefined = process.env['ADAPTORKIT_NATIVE_POOL_MB']): number {
  if (env === undefined || env === '') return 1024 * 2 ** 20;
  const mb = Number(env);
  if (!Number.isFinite(mb) || mb < 0) throw new NativeBackendError('INVALID_ARGUMENT', `ADAPTORKIT_NATIVE_POOL_MB must be a number of megabytes >= 0, got '${env}'`);
  return mb * 2 ** 20;
}
/** Size classes per power of two: 4 -> a buffer is at most 25% larger than its class's smallest request. */
const CLASSES_PER_OCTAVE = 4;

/** The buffer length (in floats) that a request of n floats is served from. */
export function sizeClass(n: number): number {
  if (n < MIN_LEN) return n;
  const step = 2 ** Math.floor(Math.log2(n)) / CLASSES_PER_OCTAVE;
  return Math.ceil(n / step) * step;
}

/** A request may take a buffer up to this many classes larger when its own class is empty. */
const LARGER_CLASSES = 3;

export class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  /** When each class was last drawn from or added to (a counter, not a clock). */
  private readonly lastUse = new Map<number, number>();
  private tick = 0;
  /** Arrays handed out by f32 that nothing outside the native kernels has seen. */
  private readonly owned = new WeakSet<Float32Array>();
  private pooledBytes = 0;
  /** Requests served from the pool / by a fresh buffer, and buffers dropped to keep under the cap. */
  readonly stats = { hits: 0, misses: 0, evicted: 0 };

  constructor(private readonly capBytes: number = maxPooledBytes()) {}

  /** Bytes held for reuse now. */
  get bytes(): number {
    return this.pooledBytes;
  }

  /** A Float32Array of length n; zeroed when `zero` (otherwise its contents are arbitrary). */
  f32(n: number, zero: boolean): Float32Array {
    if (n < MIN_LEN) return new Float32Array(n);
    const cls = sizeClass(n);
    let buf: ArrayBuffer | undefined;
    for (let c = cls, k = 0; k <= LARGER_CLASSES && !buf; k++, c = sizeClass(c + 1)) {
      buf = this.free.get(c)?.pop();
      if (buf) this.lastUse.set(c, ++this.tick);
    }
    let a: Float32Array;
    if (buf) {
      this.pooledBytes -= buf.byteLength;
      this.stats.hits++;
      a = new Float32Array(buf, 0, n);
      if (zero) a.fill(0);
    } else {
      this.stats.misses++;
      a = new Float32Array(new ArrayBuffer(cls * 4), 0, n);
    }
    this.owned.add(a);
    return a;
  }

  /** The array may now be held outside the native kernels: never recycle it. */
  escape(v: unknown): void {
    if (v instanceof Float32Array) this.owned.delete(v);
  }

  /**
   * The tensor holding `v` was deleted: keep its buffer for reuse if it is ours. Over the cap, the
   * buffers of the class used least recently go first (sequence lengths drift from batch to batch,
   * so classes fall out of use; refusing new buffers instead left the pool full of stale ones).
   */
  release(v: unknown): void {
    if (!(v instanceof Float32Array) || !this.owned.has(v)) return;
    this.owned.delete(v); // a second release of the same array must not pool its buffer twice
    const buf = v.buffer as ArrayBuffer;
    if (buf.byteLength > this.capBytes) return;
    const cls = buf.byteLength / 4;
    let list = this.free.get(cls);
    if (!list) this.free.set(cls, (list = []));
    list.push(buf);
    this.lastUse.set(cls, ++this.tick);
    this.pooledBytes += buf.byteLength;
    while (this.pooledBytes > this.capBytes) this.evictStalest();
  }

  private evictStalest(): void {
    let stalest: number | undefined;
    let when = Infinity;
    for (const [c, l] of this.free) {
      if (l.length === 0) continue;
      const t = this.lastUse.get(c) ?? 0;
      if (t < when) [stalest, when] = [c, t];
    }
    if (stalest === undefined) return;
    const dropped = this.free.get(stalest)!.pop()!;
    this.pooledBytes -= dropped.byteLength;
    this.stats.evicted++;
  }

  clear(): void {
    this.free.clear();
    this.lastUse.clear();
    this.pooledBytes = 0;
  }
}
