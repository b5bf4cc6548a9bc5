/** Next-token choice from one row of logits: greedy, or temperature sampling with top-k / top-p. */
import { AdaptorkitError, type Rng } from '@adaptorkit/core';

export interface SamplingOptions {
  /** 0 (default) = greedy argmax; > 0 divides the logits before sampling. */
  temperature?: number;
  /** Keep only the k most likely tokens (sampling only). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (sampling only). */
  topP?: number;
  /** Seed of the sampling RNG (default 0). */
  seed?: number;
}

/** Pick the next token from logits [V]; `suppress` ids are never chosen. */
export function sampleNext(logits: Float32Array, o: SamplingOptions, rng: Rng, suppress: readonly number[] = []): number {
  const V = logits.length;
  const banned = new Set(suppress);
  const temperature = o.temperature ?? 0;
  if (temperature < 0 || !Number.isFinite(temperature)) {
    throw new AdaptorkitError('INVALID_ARGUMENT', `sampling: temperature must be >= 0, got ${temperature}`);
  }
  if (temperature === 0) {
    let best = -1;
    let bestV = -Infinity;
    for (let i = 0; i < V; i++) {
      if (banned.has(i)) continue;
      const v = logits[i]!;
      if (best < 0 || v > bestV) {
        best = i;
        bestV = v;
      }
    }
    return best;
  }
  // candidates sorted by logit, descending
  const idx: number[] = [];
  for (let i = 0; i < V; i++) if (!banned.has(i)) idx.push(i);
  idx.sort((a, b) => logits[b]! - logits[a]!);
  let keep = idx.length;
  if (o.topK !== undefined) {
    if (!Number.isInteger(o.topK) || o.topK < 1) throw new AdaptorkitError('INVALID_ARGUMENT', `sampling: topK must be a positive integer, got ${o.topK}`);
    keep = Math.min(keep, o.topK);
  }
  const top = logits[idx[0]!]! / temperature;
  const probs = new Float64Array(keep);
  let z = 0;
  for (let j = 0; j < keep; j++) {
    probs[j] = Math.exp(logits[idx[j]!]! / temperature - top);
    z += probs[j]!;
  }
  if (o.topP !== undefined) {
    if (!(o.topP > 0 && o.topP <= 1)) throw new AdaptorkitError('INVALID_ARGUMENT', `sampling: topP must be in (0, 1], got ${o.topP}`);
    let acc = 0;
    let cut = keep;
    for (let j = 0; j < keep; j++) {
      acc += probs[j]! / z;
      if (acc >= o.topP) {
        cut = j + 1;
        break;
      }
    }
    keep = cut;
    z = 0;
    for (let j = 0; j < keep; j++) z += probs[j]!;
  }
  let u = rng.next() * z;
  for (let j = 0; j < keep; j++) {
    u -= probs[j]!;
    if (u < 0) return idx[j]!;
  }
  return idx[keep - 1]!;
}
