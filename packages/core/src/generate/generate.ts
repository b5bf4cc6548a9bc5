/**
 * Text generation with a KV cache: one forward over the prompt (optionally after prefix
 * embeddings, e.g. projected image tokens), then one forward per new token on the cache.
 * Greedy (argmax, first index on ties like torch.argmax) when temperature is 0; otherwise
 * temperature -> top-k -> top-p (nucleus) -> seeded sampling.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError, formatShape } from '../errors.js';
import type { KVCache, LMForwardInput, LMForwardOutput } from '../models/causal-lm.js';
import type { ForwardContext } from '../nn/context.js';
import { Rng } from '../train/rng.js';

/** What generate needs from a model: CausalLM has it; a wrapper with the same contract works too. */
export interface GenerativeLM {
  forward(input: LMForwardInput): LMForwardOutput;
  createCache(): KVCache;
  embed(ids: tf.Tensor): tf.Tensor3D;
}

export interface SamplingOptions {
  /** 0 (default) = greedy. */
  temperature?: number;
  /** Keep the k most likely tokens (0 or undefined = all). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability sums to >= topP (1 = all). */
  topP?: number;
}

export interface GenerateOptions extends SamplingOptions {
  /** Number of tokens to generate at most (default 32). */
  maxNewTokens?: number;
  /** Seed of the sampler (default 0); the same seed gives the same tokens. */
  seed?: number;
  /** Stop when a row produces one of these token ids, or ends with one of these id sequences (kept in the output). */
  stop?: (number | readonly number[])[];
  /** [1 or B, P, d] embeddings placed before the prompt tokens (e.g. projected image features). */
  prefixEmbeds?: tf.Tensor;
  /** Forward context passed to every layer (e.g. routing info for a method). */
  ctx?: ForwardContext;
  /** Called with (row, token id) for every generated token. */
  onToken?: (row: number, id: number) => void;
}

export interface GenerateResult {
  /** Generated ids per row (prompt excluded; the stop token/sequence included). */
  tokens: number[][];
  /** Why each row ended. */
  finishReason: ('stop' | 'length')[];
}

function checkOptions(o: GenerateOptions): void {
  const bad = (f: string, want: string, v: unknown): never => {
    throw new AdaptorkitError('INVALID_ARGUMENT', `generate: ${f} must be ${want}, got ${JSON.stringify(v)}`);
  };
  if (o.maxNewTokens !== undefined && (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 0)) bad('maxNewTokens', 'a non-negative integer', o.maxNewTokens);
  if (o.temperature !== undefined && !(o.temperature >= 0 && Number.isFinite(o.temperature))) bad('temperature', '>= 0', o.temperature);
  if (o.topK !== undefined && (!Number.isInteger(o.topK) || o.topK < 0)) bad('topK', 'a non-negative integer', o.topK);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) bad('topP', 'in (0, 1]', o.topP);
}

/** Index of the largest value (the first one on ties). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  let bv = -Infinity;
  for (let i = 0; i < row.length; i++) {
    const v = row[i]!;
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

/** Pick the next token from one row of logits [V]. */
export function sampleToken(logits: ArrayLike<number>, o: SamplingOptions, rng: Rng): number {
  const t = o.temperature ?? 0;
  if (t === 0) return argmax(logits);
  const V = logits.length;
  let idx = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b); // descending
  if (o.topK && o.topK < V) idx = idx.slice(0, o.topK);
  const top = logits[idx[0]!]!;
  let probs = idx.map((i) => Math.exp((logits[i]! - top) / t));
  let sum = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((p) => p / sum);
  const topP = o.topP ?? 1;
  if (topP < 1) {
    let acc = 0;
    let keep = 0;
    while (keep < probs.length) {
      acc += probs[keep]!;
      keep++;
      if (acc >= topP) break;
    }
    idx = idx.slice(0, keep);
    probs = probs.slice(0, keep);
    sum = probs.reduce((a, b) => a + b, 0);
    probs = probs.map((p) => p / sum);
  }
  let u = rng.uniform();
  for (let i = 0; i < probs.length; i++) {
    u -= probs[i]!;
    if (u < 0) return idx[i]!;
  }
  return idx[idx.length - 1]!;
}

function endsWith(seq: readonly number[], tail: readonly number[]): boolean {
  if (tail.length === 0 || tail.length > seq.length) return false;
  for (let i = 0; i < tail.length; i++) if (seq[seq.length - tail.length + i] !== tail[i]) return false;
  return true;
}

/**
 * Generate up to `maxNewTokens` tokens after `prompt` (one row of ids, or several rows of equal
 * length). Uses a KV cache: the prompt (after `prefixEmbeds`) is processed once, then one token
 * per step. Rows that hit a stop token stop growing; generation ends when all rows stopped.
 */
export function generate(model: GenerativeLM, prompt: readonly number[] | readonly (readonly number[])[], opts: GenerateOptions = {}): GenerateResult {
  checkOptions(opts);
  const rows: number[][] = (prompt.length > 0 && Array.isArray(prompt[0]) ? (prompt as number[][]) : [prompt as number[]]).map((r) => [...r]);
  const B = rows.length;
  const T = rows[0]!.length;
  if (rows.some((r) => r.length !== T)) throw new AdaptorkitError('INVALID_ARGUMENT', 'generate: all prompt rows must have the same length (left-padding is not supported)');
  const prefix = opts.prefixEmbeds;
  if (T === 0 && !prefix) throw new AdaptorkitError('INVALID_ARGUMENT', 'generate: empty prompt and no prefixEmbeds');
  if (prefix && (prefix.rank !== 3 || (prefix.shape[0] !== 1 && prefix.shape[0] !== B))) {
    throw new AdaptorkitError('SHAPE_MISMATCH', `generate: prefixEmbeds must be [1 or ${B}, P, d], got ${formatShape(prefix.shape)}`);
  }
  const maxNew = opts.maxNewTokens ?? 32;
  const stops = (opts.stop ?? []).map((s) => (typeof s === 'number' ? [s] : [...s]));
  const rng = new Rng(opts.seed ?? 0);
  const out: number[][] = Array.from({ length: B }, () => []);
  const finish: ('stop' | 'length')[] = Array.from({ length: B }, () => 'length');
  const done = new Array<boolean>(B).fill(false);
  if (maxNew === 0) return { tokens: out, finishReason: finish };

  const cache = model.createCache();
  try {
    // first step: the whole prompt (prefix embeddings first)
    let lastLogits = tf.tidy(() => {
      let embeds: tf.Tensor | undefined;
      if (T > 0) embeds = model.embed(tf.tensor2d(rows, [B, T], 'int32')); // [B, T, d]
      if (prefix) {
        const p = prefix.shape[0] === B ? prefix : tf.tile(prefix, [B, 1, 1]); // [B, P, d]
        embeds = embeds ? tf.concat([p, embeds], 1) : p; // [B, P+T, d]
      }
      const { logits } = model.forward({ embeds, cache, ctx: opts.ctx });
      const L = logits!.shape[1];
      return tf.reshape(tf.slice(logits!, [0, L - 1, 0], [B, 1, -1]), [B, -1]); // [B, V]
    });
    for (let step = 0; step < maxNew; step++) {
      const data = lastLogits.dataSync() as Float32Array;
      const V = lastLogits.shape[1]!;
      lastLogits.dispose();
      const next: number[] = [];
      for (let b = 0; b < B; b++) {
        // every row draws from the rng each step so a row's sampling does not depend on other rows stopping
        const id = sampleToken(data.subarray(b * V, (b + 1) * V), opts, rng);
        if (done[b]) {
          next.push(out[b]![out[b]!.length - 1] ?? rows[b]![T - 1] ?? 0);
          continue;
        }
        out[b]!.push(id);
        opts.onToken?.(b, id);
        if (stops.some((s) => endsWith(out[b]!, s))) {
          done[b] = true;
          finish[b] = 'stop';
        }
        next.push(id);
      }
      if (done.every(Boolean) || step === maxNew - 1) break;
      lastLogits = tf.tidy(() => {
        const { logits } = model.forward({ ids: tf.tensor2d(next, [B, 1], 'int32'), cache, ctx: opts.ctx });
        return tf.reshape(logits!, [B, -1]); // [B, V]
      });
    }
  } finally {
    cache.dispose();
  }
  return { tokens: out, finishReason: finish };
}
