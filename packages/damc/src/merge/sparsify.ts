/**
 * Sparsification of one task vector d (flat Float32Array), as mergekit's sparsify methods:
 *
 *   magnitude           keep the k = floor(density * n) largest |d|                    (TIES)
 *   random              keep each entry with probability density                       (DARE)
 *   magnitude_outliers  drop the floor(gamma * n) largest |d| and the smallest, so that
 *                       floor(density * n) remain                                       (breadcrumbs)
 *   della_magprune      along dim 1, keep entry j with probability
 *                       density - epsilon + 2 epsilon (rank_j - 1) / (n1 - 1), rank by |d|      (DELLA)
 *
 * `rescale` multiplies what is kept by ||d||_1 / ||kept||_1 (mergekit's RescaleNorm.l1; no
 * rescale when either norm is below 1e-7). Ties in |d| are broken by index (the lower index
 * ranks lower), where mergekit's argsort leaves the order to the sort. No tensor-sized scratch
 * beyond the output, except della's per-row sort keys.
 */
import { AdaptorkitError, type Rng } from '@adaptorkit/core';
import { kthLargestMagnitude } from './select.js';

type Vec = Float32Array;
export type SparsifyMethod = 'magnitude' | 'random' | 'magnitude_outliers' | 'della_magprune';

export interface SparsifyOpts {
  density: number;
  rescale: boolean;
  /** magnitude_outliers: fraction of the largest entries dropped (mergekit default 0.01). */
  gamma?: number;
  /** della_magprune: half-width of the keep probabilities (mergekit default 0.15). */
  epsilon?: number;
  /** The random stream of random / della_magprune. */
  rng?: Rng;
  /** della_magprune: the tensor's shape (ranks run along dim 1). */
  shape?: readonly number[];
  /** Overwrite d (the streaming merge owns it). */
  inPlace?: boolean;
}

/** Mask d by `keep(j)`, rescaled by the L1 ratio when asked. */
function applyMask(d: Vec, keep: (j: number) => boolean, rescale: boolean, inPlace: boolean): Vec {
  const out = inPlace ? d : new Float32Array(d.length);
  let before = 0;
  let after = 0;
  for (let j = 0; j < d.length; j++) {
    const v = d[j]!;
    before += Math.abs(v);
    if (keep(j)) {
      out[j] = v;
      after += Math.abs(v);
    } else out[j] = 0;
  }
  if (rescale && before >= 1e-7 && after >= 1e-7) {
    const s = before / after;
    for (let j = 0; j < out.length; j++) out[j] = out[j]! * s;
  }
  return out;
}

/** |d| of a float32 as its bit pattern (orders like the value for non-negative floats). */
function magBits(bits: Uint32Array, j: number): number {
  return bits[j]! & 0x7fffffff;
}

/**
 * Rank of every entry in ascending (|d|, index) order is in [lo, hi): the mask of entries whose
 * rank falls in that range, computed with two selections and one pass (no sort).
 */
export function rankRangeMask(d: Vec, lo: number, hi: number): Uint8Array {
  const n = d.length;
  const keep = new Uint8Array(n);
  if (lo >= hi) return keep;
  const bits = new Uint32Array(d.buffer, d.byteOffset, n);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  // the value at ascending rank r is the (n - r)-th largest
  const valueAt = (r: number): number => {
    f[0] = kthLargestMagnitude(d, n - r);
    return u[0]!;
  };
  const vLo = valueAt(lo);
  const vHi = valueAt(hi - 1);
  let ltLo = 0;
  let ltHi = 0;
  for (let j = 0; j < n; j++) {
    const b = magBits(bits, j);
    if (b < vLo) ltLo++;
    if (b < vHi) ltHi++;
  }
  let seenLo = 0;
  let seenHi = 0;
  for (let j = 0; j < n; j++) {
    const b = magBits(bits, j);
    if (b > vLo && b < vHi) keep[j] = 1;
    else if (b === vLo || b === vHi) {
      // its rank: entries strictly below its value, plus the equal ones before it
      const r = b === vLo ? ltLo + seenLo++ : ltHi + seenHi++; // vLo === vHi: one group, one counter
      if (r >= lo && r < hi) keep[j] = 1;
    }
  }
  return keep;
}

function checkDensity(what: string, density: number): void {
  if (!(density > 0 && density <= 1)) throw new AdaptorkitError('INVALID_ARGUMENT', `${what}: density must be in (0, 1], got ${density}`);
}

/** TIES: the k = floor(density * n) largest magnitudes. */
export function sparsifyMagnitude(d: Vec, density: number, rescale = false, inPlace = false): Vec {
  checkDensity('magnitude', density);
  if (density >= 1) return d;
  const n = d.length;
  const k = Math.floor(density * n);
  if (k < 1) throw new AdaptorkitError('INVALID_ARGUMENT', `magnitude: density ${density} keeps no entry of a ${n}-element tensor (floor(density * n) = 0)`);
  const keep = rankRangeMask(d, n - k, n);
  return applyMask(d, (j) => keep[j] === 1, rescale, inPlace);
}

/** DARE: each entry kept with probability density. */
export function sparsifyRandom(d: Vec, density: number, rng: Rng, rescale = true, inPlace = false): Vec {
  checkDensity('random', density);
  if (density >= 1) return d;
  return applyMask(d, () => rng.next() < density, rescale, inPlace);
}

/** Breadcrumbs: drop the gamma fraction of largest magnitudes and the smallest, keeping floor(density * n). */
export function sparsifyOutliers(d: Vec, density: number, gamma: number, rescale = false, inPlace = false): Vec {
  checkDensity('magnitude_outliers', density);
  if (!(gamma >= 0 && gamma < 1)) throw new AdaptorkitError('INVALID_ARGUMENT', `magnitude_outliers: gamma must be in [0, 1), got ${gamma}`);
  if (density >= 1) return d;
  const n = d.length;
  const target = Math.floor(density * n);
  let nTop = Math.floor(gamma * n);
  let nBot = n - target - nTop;
  if (nBot < 0) {
    nTop += nBot;
    nBot = 0;
  }
  const keep = rankRangeMask(d, nBot, n - nTop);
  return applyMask(d, (j) => keep[j] === 1, rescale, inPlace);
}

/**
 * DELLA's MAGPRUNE: ranks by |d| along dim 1 (a 1-D tensor is one row), keep probability linear in
 * the rank from density - epsilon (smallest) to density + epsilon (largest).
 */
export function sparsifyDella(d: Vec, density: number, epsilon: number, rng: Rng, shape: readonly number[], rescale = true, inPlace = false): Vec {
  checkDensity('della_magprune', density);
  if (density >= 1) return d;
  if (density + epsilon >= 1 || density - epsilon <= 0) {
    throw new AdaptorkitError('INVALID_ARGUMENT', `della: epsilon must keep density +/- epsilon inside (0, 1), got density ${density}, epsilon ${epsilon}`);
  }
  const n = d.length;
  // view as [outer, n1, inner]: ranks along the middle axis (dim 1; a 1-D tensor is [1, n, 1])
  const n1 = shape.length >= 2 ? shape[1]! : n;
  const outer = shape.length >= 2 ? shape[0]! : 1;
  const inner = n / (outer * n1);
  if (!Number.isInteger(inner) || outer * n1 * inner !== n) throw new AdaptorkitError('SHAPE_MISMATCH', `della: shape [${shape.join(', ')}] does not hold ${n} elements`);
  const prob = new Float32Array(n);
  const bits = new Uint32Array(d.buffer, d.byteOffset, n);
  const keys = new Float64Array(n1);
  const packable = n1 <= 2 ** 21; // |d| bits (31) and the index (21) fit a double's 52-bit mantissa exactly
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const at = (j: number): number => (o * n1 + j) * inner + i;
      let order: ArrayLike<number>;
      if (packable) {
        for (let j = 0; j < n1; j++) keys[j] = magBits(bits, at(j)) * 2 ** 21 + j;
        keys.sort();
        order = keys.map((k) => k % 2 ** 21);
      } else {
        order = Array.from({ length: n1 }, (_, j) => j).sort((a, b) => magBits(bits, at(a)) - magBits(bits, at(b)) || a - b);
      }
      for (let r = 0; r < n1; r++) {
        const rankNorm = n1 > 1 ? r / (n1 - 1) : 0;
        prob[at(order[r]!)] = density - epsilon + rankNorm * 2 * epsilon;
      }
    }
  }
  return applyMask(d, (j) => rng.next() < prob[j]!, rescale, inPlace);
}

/** Dispatch by mergekit's sparsification method name. */
export function sparsify(d: Vec, method: SparsifyMethod, o: SparsifyOpts): Vec {
  const inPlace = o.inPlace ?? false;
  switch (method) {
    case 'magnitude':
      return sparsifyMagnitude(d, o.density, o.rescale, inPlace);
    case 'random':
      if (!o.rng) throw new AdaptorkitError('INVALID_ARGUMENT', 'random sparsification needs a seeded stream');
      return sparsifyRandom(d, o.density, o.rng, o.rescale, inPlace);
    case 'magnitude_outliers':
      return sparsifyOutliers(d, o.density, o.gamma ?? 0.01, o.rescale, inPlace);
    case 'della_magprune':
      if (!o.rng) throw new AdaptorkitError('INVALID_ARGUMENT', 'della sparsification needs a seeded stream');
      return sparsifyDella(d, o.density, o.epsilon ?? 0.15, o.rng, o.shape ?? [d.length], o.rescale, inPlace);
  }
}
