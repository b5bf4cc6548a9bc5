/** Order statistics over flat float32 arrays, without sorting. */
import { AdaptorkitError } from '@adaptorkit/core';

type Vec = Float32Array;

/**
 * The k-th largest value of `a` (1-based k), by in-place quickselect on a scratch copy: O(n), no sort.
 */
export function kthLargest(values: Vec, k: number): number {
  return kthLargestInPlace(Float32Array.from(values), k);
}

/**
 * The k-th largest |v| of `d` without a tensor-sized scratch: a two-pass radix select over the bits
 * of |v| (for non-negative floats the bit patterns order like the values), 2 x 65536 counters.
 * Returns the same value as kthLargest over the magnitudes.
 */
export function kthLargestMagnitude(d: Vec, k: number): number {
  const n = d.length;
  if (k < 1 || k > n) throw new AdaptorkitError('INVALID_ARGUMENT', `kthLargest: k=${k} outside 1..${n}`);
  const bits = new Uint32Array(d.buffer, d.byteOffset, n);
  const count = new Uint32Array(65536);
  for (let j = 0; j < n; j++) count[(bits[j]! & 0x7fffffff) >>> 16]!++;
  let rem = k;
  let hi = 32767; // the sign bit is cleared, so the top half is at most 0x7fff
  for (; hi > 0 && count[hi]! < rem; hi--) rem -= count[hi]!;
  count.fill(0);
  for (let j = 0; j < n; j++) {
    const u = bits[j]! & 0x7fffffff;
    if (u >>> 16 === hi) count[u & 0xffff]!++;
  }
  let lo = 65535;
  for (; lo > 0 && count[lo]! < rem; lo--) rem -= count[lo]!;
  const out = new Float32Array(new Uint32Array([((hi << 16) | lo) >>> 0]).buffer);
  return out[0]!;
}

/** kthLargest on a scratch array it may reorder. */
function kthLargestInPlace(a: Vec, k: number): number {
  const n = a.length;
  if (k < 1 || k > n) throw new AdaptorkitError('INVALID_ARGUMENT', `kthLargest: k=${k} outside 1..${n}`);
  const target = n - k; // index in ascending order
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    // median of three pivot
    const mid = (lo + hi) >>> 1;
    const x = a[lo]!, y = a[mid]!, z = a[hi]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return a[target]!;
  }
  return a[target]!;
}
