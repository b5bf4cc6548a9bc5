/**
 * Merge methods, one small pure function each, over one tensor at a time (flat Float32Arrays of
 * equal length; shapes are checked by the caller). Definitions follow mergekit's (d_i = theta_i - base):
 *
 *   linear            theta = sum w_i theta_i / sum w_i                    (normalize, default true)
 *   generalized task arithmetic (task_arithmetic, ties, dare_*, breadcrumbs*, della*):
 *                     d_i sparsified (sparsify.ts); e_i = w_i d_i; with sign consensus the elected
 *                     sign is s = sign(sum e_i) (0 -> +) and only e_i with sign s count;
 *                     m = sum e_i [/ sum w_i, over the counted ones, when normalize]; theta = base + lambda m
 *   model_stock       t = N cos / (1 + (N - 1) cos), cos the mean pairwise cosine of the d_i (whole
 *                     tensor, or per row with filter_wise); theta = t mean(theta_i) + (1 - t) base
 *   slerp             spherical interpolation of two tensors by t; linear when |cos| > 0.9995
 *   passthrough       one tensor, times `scale` when given
 *
 * Arithmetic is in float64 (JS numbers) per element; results are float32.
 */
import { AdaptorkitError, type Rng } from '@adaptorkit/core';
import { sparsify, sparsifyMagnitude, type SparsifyMethod } from './sparsify.js';

export { kthLargest, kthLargestMagnitude } from './select.js';
export type Vec = Float32Array;

/** Per-model values for one tensor: the tensor and its resolved parameters. */
export interface ModelTensor {
  data: Vec;
  /** Weight w_i (default 1). */
  weight: number;
  /** Fraction of d_i kept by sparsification (default 1). */
  density: number;
  /** breadcrumbs: fraction of the largest |d_i| dropped (default 0.01). */
  gamma?: number;
  /** della: half-width of the keep probabilities (default 0.15). */
  epsilon?: number;
}

export interface MergeOpts {
  /** Scale of the merged delta (default 1). */
  lambda?: number;
  /** Divide by the (agreeing) weight sum. */
  normalize?: boolean;
  /** Rescale a sparsified delta to its L1 norm before sparsification. */
  rescale?: boolean;
  /** The inputs' arrays may be overwritten (saves one tensor-sized buffer per model when streaming). */
  inPlace?: boolean;
}

/** The generalized task arithmetic family, as mergekit's registry defines each member. */
export interface GtaKind {
  sparsify?: SparsifyMethod;
  consensus: boolean;
  defaultNormalize: boolean;
  defaultRescale: boolean;
}
export const GTA_METHODS = {
  task_arithmetic: { consensus: false, defaultNormalize: false, defaultRescale: false },
  ties: { sparsify: 'magnitude', consensus: true, defaultNormalize: true, defaultRescale: false },
  dare_linear: { sparsify: 'random', consensus: false, defaultNormalize: false, defaultRescale: true },
  dare_ties: { sparsify: 'random', consensus: true, defaultNormalize: false, defaultRescale: true },
  breadcrumbs: { sparsify: 'magnitude_outliers', consensus: false, defaultNormalize: false, defaultRescale: false },
  breadcrumbs_ties: { sparsify: 'magnitude_outliers', consensus: true, defaultNormalize: false, defaultRescale: false },
  della: { sparsify: 'della_magprune', consensus: true, defaultNormalize: true, defaultRescale: true },
  della_linear: { sparsify: 'della_magprune', consensus: false, defaultNormalize: false, defaultRescale: true },
} as const satisfies Record<string, GtaKind>;
export type GtaMethodName = keyof typeof GTA_METHODS;

function checkLengths(what: string, base: Vec | undefined, ms: readonly { data: Vec }[]): number {
  const n = base?.length ?? ms[0]?.data.length;
  if (n === undefined) throw new AdaptorkitError('INVALID_ARGUMENT', `${what}: needs at least one model`);
  for (const [i, m] of ms.entries()) {
    if (m.data.length !== n) throw new AdaptorkitError('SHAPE_MISMATCH', `${what}: model ${i} has ${m.data.length} elements, expected ${n}`);
  }
  return n;
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

/**
 * Generalized task arithmetic over one tensor. `rngs[i]` drives model i's random mask (dare,
 * della); `shape` is the tensor's (della ranks along dim 1).
 */
export function mergeGta(kind: GtaKind, base: Vec, models: readonly ModelTensor[], opts: MergeOpts & { rngs?: readonly Rng[]; shape?: readonly number[] } = {}): Vec {
  const n = checkLengths('task arithmetic', base, models);
  const inPlace = opts.inPlace ?? false;
  const rescale = opts.rescale ?? kind.defaultRescale;
  const normalize = opts.normalize ?? kind.defaultNormalize;
  const lambda = opts.lambda ?? 1;
  const deltas = models.map((m, i) => {
    const d = inPlace ? m.data : new Float32Array(n);
    for (let j = 0; j < n; j++) d[j] = m.data[j]! - base[j]!;
    if (!kind.sparsify) return d;
    return sparsify(d, kind.sparsify, {
      density: m.density, rescale, inPlace: true, ...(m.gamma !== undefined ? { gamma: m.gamma } : {}),
      ...(m.epsilon !== undefined ? { epsilon: m.epsilon } : {}), ...(opts.rngs?.[i] ? { rng: opts.rngs[i] } : {}), shape: opts.shape ?? [n],
    });
  });
  const w = models.map((m) => m.weight);
  const out = inPlace ? base : new Float32Array(n);
  for (let j = 0; j < n; j++) {
    let mixed = 0;
    let div = 0;
    if (kind.consensus) {
      let total = 0;
      for (let i = 0; i < deltas.length; i++) total += w[i]! * deltas[i]![j]!;
      const s = total >= 0 ? 1 : -1;
      for (let i = 0; i < deltas.length; i++) {
        const e = w[i]! * deltas[i]![j]!;
        if (Math.sign(e) === s) {
          mixed += e;
          div += w[i]!;
        }
      }
      if (div === 0) div = 1;
    } else {
      for (let i = 0; i < deltas.length; i++) {
        mixed += w[i]! * deltas[i]![j]!;
        div += w[i]!;
      }
      if (Math.abs(div) < 1e-8) div = 1;
    }
    if (normalize) mixed /= div;
    out[j] = base[j]! + lambda * mixed;
  }
  return out;
}

/** theta = base + lambda * sum w_i (theta_i - base) (divided by sum w_i when normalize). */
export function mergeTaskArithmetic(base: Vec, models: readonly ModelTensor[], opts: MergeOpts = {}): Vec {
  return mergeGta(GTA_METHODS.task_arithmetic, base, models, opts);
}

/** TIES-merging: trim to the top density by magnitude, elect sign, disjoint (weighted) mean. */
export function mergeTies(base: Vec, models: readonly ModelTensor[], opts: MergeOpts = {}): Vec {
  return mergeGta(GTA_METHODS.ties, base, models, opts);
}

/** DARE + task arithmetic. `rngs[i]` drives model i's mask (seeded by the caller per tensor). */
export function mergeDareLinear(base: Vec, models: readonly ModelTensor[], rngs: readonly Rng[], opts: MergeOpts = {}): Vec {
  return mergeGta(GTA_METHODS.dare_linear, base, models, { ...opts, rngs });
}

/** DARE + TIES' sign consensus. */
export function mergeDareTies(base: Vec, models: readonly ModelTensor[], rngs: readonly Rng[], opts: MergeOpts = {}): Vec {
  return mergeGta(GTA_METHODS.dare_ties, base, models, { ...opts, rngs });
}

/** TIES' trim alone: keep the floor(density * n) largest magnitudes (ties broken by index). */
export function trimToDensity(d: Vec, density: number, inPlace = false): Vec {
  return sparsifyMagnitude(d, density, false, inPlace);
}

/**
 * Model Stock: base w0 and N >= 2 fine-tuned models; cos = mean pairwise cosine of their offsets
 * (clamped to [-1, 1], norms product clamped at 1e-6), t = N cos / (1 + (N - 1) cos),
 * theta = t * mean(theta_i) + (1 - t) * w0. With filterWise the cosine is taken per row (dim 0).
 */
export function mergeModelStock(base: Vec, models: readonly Vec[], opts: { filterWise?: boolean; shape?: readonly number[] } = {}): Vec {
  const n = checkLengths('model_stock', base, models.map((data) => ({ data })));
  if (models.length < 2) throw new AdaptorkitError('INVALID_ARGUMENT', `model_stock needs at least two models besides the base, got ${models.length}`);
  const shape = opts.shape ?? [n];
  const rows = opts.filterWise && shape.length >= 2 ? shape[0]! : 1;
  const width = n / rows;
  const N = models.length;
  const out = new Float32Array(n);
  for (let r = 0; r < rows; r++) {
    const lo = r * width;
    const hi = lo + width;
    let cosSum = 0;
    let pairs = 0;
    for (let a = 0; a < N; a++) {
      for (let b = a + 1; b < N; b++) {
        let dot = 0, na = 0, nb = 0;
        for (let j = lo; j < hi; j++) {
          const x = models[a]![j]! - base[j]!;
          const y = models[b]![j]! - base[j]!;
          dot += x * y;
          na += x * x;
          nb += y * y;
        }
        cosSum += Math.min(1, Math.max(-1, dot / Math.max(1e-6, Math.sqrt(na) * Math.sqrt(nb))));
        pairs++;
      }
    }
    const cos = cosSum / pairs;
    const t = (N * cos) / (1 + (N - 1) * cos);
    for (let j = lo; j < hi; j++) {
      let avg = 0;
      for (const m of models) avg += m[j]!;
      out[j] = t * (avg / N) + (1 - t) * base[j]!;
    }
  }
  return out;
}

/** Passthrough: the one tensor, times `scale` when given. */
export function mergePassthrough(data: Vec, scale?: number): Vec {
  if (scale === undefined) return data;
  const out = new Float32Array(data.length);
  for (let j = 0; j < data.length; j++) out[j] = data[j]! * scale;
  return out;
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
