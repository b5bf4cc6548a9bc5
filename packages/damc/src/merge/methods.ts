/**
 * Merge methods, one small pure function each, over one tensor at a time (flat Float32Arrays of
 * equal length; shapes are checked by the caller). Definitions follow mergekit's (d_i = theta_i - base):
 *
 *   linear           theta = sum w_i theta_i / sum w_i              (normalize, default true)
 *   task_arithmetic  theta = base + lambda * sum w_i d_i
 *   ties             trim each d_i to its top `density` fraction by |d_i|; elected sign
 *                    s = sign(sum w_i d_i) (0 -> +); theta = base + lambda * sum(w_i d_i [sgn d_i = s]) / sum(w_i [sgn d_i = s])
 *   dare_linear      d_i <- d_i * Bernoulli(density) / density, then task arithmetic
 *   dare_ties        the DARE mask, then TIES' sign consensus and normalisation
 *   slerp            spherical interpolation of two tensors by t; linear when |cos| > 0.9995
 *
 * Arithmetic is in float64 (JS numbers) per element; results are float32.
 */
import { AdaptorkitError, Rng } from '@adaptorkit/core';

export type Vec = Float32Array;

/** Per-model values for one tensor: the tensor and its resolved parameters. */
export interface ModelTensor {
  data: Vec;
  /** Weight w_i (default 1). */
  weight: number;
  /** Fraction of d_i kept by ties / dare (default 1). */
  density: number;
}

export interface MergeOpts {
  /** Scale of the merged delta (default 1). */
  lambda?: number;
  /** Divide by the (agreeing) weight sum. */
  normalize?: boolean;
  /** The inputs' arrays may be overwritten (saves one tensor-sized buffer per model when streaming). */
  inPlace?: boolean;
}

function checkLengths(what: string, base: Vec | undefined, ms: readonly { data: Vec }[]): number {
  const n = base?.length ?? ms[0]?.data.length;
  if (n === undefined) throw new AdaptorkitError('INVALID_ARGUMENT', `${what}: needs at least one model`);
  for (const [i, m] of ms.entries()) {
    if (m.data.length !== n) throw new AdaptorkitError('SHAPE_MISMATCH', `${what}: model ${i} has ${m.data.length} elements, expected ${n}`);
  }
  return n;
}

function checkDensity(what: string, d: number): void {
  if (!(d > 0 && d <= 1)) throw new AdaptorkitError('INVALID_ARGUMENT', `${what}: density must be in (0, 1], got ${d}`);
}

/** theta = sum w_i theta_i / sum w_i (or the plain weighted sum when normalize is false). */
export function mergeLinear(models: readonly ModelTensor[], opts: { normalize?: boolean; inPlace?: boolean } = {}): Vec {
  const n = checkLengths('linear', undefined, models);
  const normalize = opts.normalize ?? true;
  let wsum = 0;
  for (const m of models) wsum += m.weight;
  if (normalize && Math.abs(wsum) < 1e-12) throw new AdaptorkitError('INVALID_ARGUMENT', 'linear: weights sum to 0; cannot normalize (set normalize: false)');
  const out = opts.inPlace ? models[0]!.data : new Float32Array(n); // element j is read from every model before it is written
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (const m of models) s += m.weight * m.data[j]!;
    out[j] = normalize ? s / wsum : s;
  }
  return out;
}

/** theta = base + lambda * sum w_i (theta_i - base) (divided by sum w_i when normalize). */
export function mergeTaskArithmetic(base: Vec, models: readonly ModelTensor[], opts: { lambda?: number; normalize?: boolean; inPlace?: boolean } = {}): Vec {
  const n = checkLengths('task_arithmetic', base, models);
  const lambda = opts.lambda ?? 1;
  let wsum = 0;
  for (const m of models) wsum += m.weight;
  const div = opts.normalize ? (Math.abs(wsum) < 1e-12 ? 1 : wsum) : 1;
  const out = opts.inPlace ? base : new Float32Array(n);
  for (let j = 0; j < n; j++) {
    const b = base[j]!;
    let s = 0;
    for (const m of models) s += m.weight * (m.data[j]! - b);
    out[j] = b + (lambda * s) / div;
  }
  return out;
}

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

/**
 * TIES trim: keep the top `density` fraction (k = round(density * n), at least 1) of d by |d|,
 * zero the rest. Entries tied with the k-th magnitude are all kept (so at most a few more than k).
 */
export function trimToDensity(d: Vec, density: number, inPlace = false): Vec {
  checkDensity('ties', density);
  const n = d.length;
  if (density >= 1 || n === 0) return d;
  const k = Math.max(1, Math.round(density * n));
  const thr = kthLargestMagnitude(d, k); // no |d| copy: the streaming merge holds only its inputs
  const out = inPlace ? d : new Float32Array(n);
  for (let j = 0; j < n; j++) {
    const v = d[j]!;
    const keep = Math.abs(v) >= thr && v !== 0;
    out[j] = keep ? v : 0;
  }
  return out;
}

/** DARE: keep each entry with probability `density`, rescale the kept ones by 1/density. */
export function dareMask(d: Vec, density: number, rng: Rng, inPlace = false): Vec {
  checkDensity('dare', density);
  if (density >= 1) return d;
  const out = inPlace ? d : new Float32Array(d.length);
  const scale = 1 / density;
  for (let j = 0; j < d.length; j++) out[j] = rng.next() < density ? d[j]! * scale : 0;
  return out;
}

/**
 * Sign consensus over (already sparsified) deltas: elected sign s = sign(sum w_i d_i), 0 counts
 * as +; result = sum(w_i d_i [sgn d_i = s]) / sum(w_i [sgn d_i = s]) when normalize (0 where no
 * delta agrees), else the plain agreeing sum.
 */
export function signConsensus(deltas: readonly Vec[], weights: readonly number[], normalize: boolean, into?: Vec): Vec {
  const n = deltas[0]?.length ?? 0;
  const out = into ?? new Float32Array(n); // may be deltas[0]: element j is read from every delta before it is written
  for (let j = 0; j < n; j++) {
    let total = 0;
    for (let i = 0; i < deltas.length; i++) total += weights[i]! * deltas[i]![j]!;
    const s = total >= 0 ? 1 : -1;
    let num = 0;
    let den = 0;
    for (let i = 0; i < deltas.length; i++) {
      const v = deltas[i]![j]!;
      if ((v > 0 && s > 0) || (v < 0 && s < 0)) {
        num += weights[i]! * v;
        den += weights[i]!;
      }
    }
    out[j] = normalize ? (Math.abs(den) < 1e-12 ? 0 : num / den) : num;
  }
  return out;
}

/** d_i = theta_i - base; with inPlace the model arrays are overwritten (the streaming merge owns them). */
function deltasOf(base: Vec, models: readonly ModelTensor[], inPlace = false): Vec[] {
  return models.map((m) => {
    const d = inPlace ? m.data : new Float32Array(base.length);
    for (let j = 0; j < base.length; j++) d[j] = m.data[j]! - base[j]!;
    return d;
  });
}

function addScaled(base: Vec, delta: Vec, lambda: number, inPlace = false): Vec {
  const out = inPlace ? base : new Float32Array(base.length);
  for (let j = 0; j < base.length; j++) out[j] = base[j]! + lambda * delta[j]!;
  return out;
}

/** TIES-merging: trim, elect sign, disjoint (weighted) mean. normalize defaults to true. */
export function mergeTies(base: Vec, models: readonly ModelTensor[], opts: MergeOpts = {}): Vec {
  checkLengths('ties', base, models);
  const deltas = deltasOf(base, models, opts.inPlace).map((d, i) => trimToDensity(d, models[i]!.density, opts.inPlace));
  const merged = signConsensus(deltas, models.map((m) => m.weight), opts.normalize ?? true, opts.inPlace ? deltas[0] : undefined);
  return addScaled(base, merged, opts.lambda ?? 1, opts.inPlace);
}

/** DARE + task arithmetic. `rngs[i]` drives model i's mask (seeded by the caller per tensor). */
export function mergeDareLinear(base: Vec, models: readonly ModelTensor[], rngs: readonly Rng[], opts: MergeOpts = {}): Vec {
  checkLengths('dare_linear', base, models);
  const deltas = deltasOf(base, models, opts.inPlace).map((d, i) => dareMask(d, models[i]!.density, rngs[i]!, opts.inPlace));
  const n = base.length;
  let wsum = 0;
  for (const m of models) wsum += m.weight;
  const div = opts.normalize ? (Math.abs(wsum) < 1e-12 ? 1 : wsum) : 1;
  const sum = opts.inPlace ? deltas[0]! : new Float32Array(n);
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let i = 0; i < deltas.length; i++) s += models[i]!.weight * deltas[i]![j]!;
    sum[j] = s / div;
  }
  return addScaled(base, sum, opts.lambda ?? 1, opts.inPlace);
}

/** DARE + TIES' sign consensus. normalize defaults to true. */
export function mergeDareTies(base: Vec, models: readonly ModelTensor[], rngs: readonly Rng[], opts: MergeOpts = {}): Vec {
  checkLengths('dare_ties', base, models);
  const deltas = deltasOf(base, models, opts.inPlace).map((d, i) => dareMask(d, models[i]!.density, rngs[i]!, opts.inPlace));
  const merged = signConsensus(deltas, models.map((m) => m.weight), opts.normalize ?? true, opts.inPlace ? deltas[0] : undefined);
  return addScaled(base, merged, opts.lambda ?? 1, opts.inPlace);
}

/** |cos| above this and slerp falls back to linear interpolation (mergekit's DOT_THRESHOLD). */
export const SLERP_DOT_THRESHOLD = 0.9995;

/**
 * Spherical interpolation from a (t = 0) to b (t = 1), treating each tensor as one vector: the
 * angle comes from the normalised vectors, the interpolation weights apply to the originals.
 */
export function mergeSlerp(a: Vec, b: Vec, t: number, opts: { eps?: number } = {}): Vec {
  if (a.length !== b.length) throw new AdaptorkitError('SHAPE_MISMATCH', `slerp: tensors have ${a.length} and ${b.length} elements`);
  const eps = opts.eps ?? 1e-8;
  let na = 0;
  let nb = 0;
  let dot = 0;
  for (let j = 0; j < a.length; j++) {
    na += a[j]! * a[j]!;
    nb += b[j]! * b[j]!;
    dot += a[j]! * b[j]!;
  }
  na = Math.sqrt(na);
  nb = Math.sqrt(nb);
  const cos = na > eps && nb > eps ? dot / (na * nb) : 1; // a zero vector has no direction: interpolate linearly
  const out = new Float32Array(a.length);
  let s0: number;
  let s1: number;
  if (Math.abs(cos) > SLERP_DOT_THRESHOLD) {
    s0 = 1 - t;
    s1 = t;
  } else {
    const theta0 = Math.acos(cos);
    const sin0 = Math.sin(theta0);
    s0 = Math.sin(theta0 * (1 - t)) / sin0;
    s1 = Math.sin(theta0 * t) / sin0;
  }
  for (let j = 0; j < a.length; j++) out[j] = s0 * a[j]! + s1 * b[j]!;
  return out;
}

/** Is slerp going to interpolate linearly for these two tensors? (for reports and tests) */
export function slerpIsLinear(a: Vec, b: Vec): boolean {
  let na = 0, nb = 0, dot = 0;
  for (let j = 0; j < a.length; j++) {
    na += a[j]! * a[j]!;
    nb += b[j]! * b[j]!;
    dot += a[j]! * b[j]!;
  }
  if (na === 0 || nb === 0) return true;
  return Math.abs(dot / Math.sqrt(na * nb)) > SLERP_DOT_THRESHOLD;
}
