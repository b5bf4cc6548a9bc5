/**
 * Reuse of large output buffers. A training step allocates and frees the same few sizes over and
 * over; fresh Float32Arrays cost page faults and push V8 into frequent full GCs (they count as
 * external memory). Only arrays this backend's native kernels allocated are recycled, and an
 * array stops being recyclable once anything outside those kernels may hold it: read by
 * dataSync/data (the caller keeps the array) or passed to a cpu-backend kernel (which may return
 * a view of it).
 */
const MIN_LEN = 1024;
const MAX_POOLED_BYTES = 512 * 2 ** 20;

export class BufferPool {
  private readonly free = new Map<number, Float32Array[]>();
  private readonly owned = new WeakSet<Float32Array>();
  private pooledBytes = 0;

  /** A Float32Array of length n; zeroed when `zero` (otherwise its contents are arbitrary). */
  f32(n: number, zero: boolean): Float32Array {
    if (n >= MIN_LEN) {
      const a = this.free.get(n)?.pop();
      if (a) {
        this.pooledBytes -= a.byteLength;
        if (zero) a.fill(0);
        return a;
      }
      const b = new Float32Array(n);
      this.owned.add(b);
      return b;
    }
    return new Float32Array(n);
  }

  /** The array may now be held outside the native kernels: never recycle it. */
  escape(v: unknown): void {
    if (v instanceof Float32Array) this.owned.delete(v);
  }

  /** The tensor holding `v` was deleted: keep `v` for reuse if it is ours. */
  release(v: unknown): void {
    if (!(v instanceof Float32Array) || !this.owned.has(v)) return;
    if (this.pooledBytes + v.byteLength > MAX_POOLED_BYTES) {
      this.owned.delete(v);
      return;
    }
    let list = this.free.get(v.length);
    if (!list) this.free.set(v.length, (list = []));
    list.push(v);
    this.pooledBytes += v.byteLength;
  }

  clear(): void {
    this.free.clear();
    this.pooledBytes = 0;
  }
}
