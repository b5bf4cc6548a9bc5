/**
 * The one decoding loop: a KV cache, one forward over the prompt (optionally after prefix
 * embeddings, e.g. projected image tokens), then one forward per new token on the cache.
 * Greedy (argmax, first index on ties like torch.argmax) when temperature is 0; otherwise
 * temperature -> top-k -> top-p (nucleus) -> seeded sampling.
 *
 * Methods decode through it with hooks for what they change: the model's layers carry their
 * inserts (adapter slots, routed deltas), `embedPrompt` builds the prompt's input embeddings (e.g.
 * projected image features spliced in at the placeholders), `ctx` carries routing state to every
 * layer, and a method whose forward differs (its own cache, a modality token) passes a
 * GenerativeLM wrapper.
 *
 * The EOS rule: a row ends when it produces `eosId`, and the EOS id is NOT returned (the tokens
 * are the answer; finishReason says 'stop'). A `stop` sequence also ends a row and IS returned.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError, formatShape } from '../errors.js';
import type { KVCache, LMForwardInput, LMForwardOutput } from '../models/causal-lm.js';
import type { ForwardContext } from '../nn/context.js';
import { Rng } from '../train/rng.js';
import { padKeyMask } from './ragged.js';

/** What generate needs from a model: CausalLM has it; a wrapper with the same contract works too. */
export interface GenerativeLM<C extends { dispose(): void } = KVCache> {
  /** logits [B, T, V] of ids or embeds [B, T, d], appending to `cache`; `mask` hides left-pad keys. */
  forward(input: Omit<LMForwardInput, 'cache'> & { cache?: C }): Pick<LMForwardOutput, 'logits'>;
  createCache(): C;
  /** Token embeddings; needed only with prefixEmbeds (and no embedPrompt hook). */
  embed?(ids: tf.Tensor): tf.Tensor3D;
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
  /** Called with (row, token id) for every generated token (the EOS id included). */
  onToken?: (row: number, id: number) => void;
  /** A row ends at this id, which is not returned (see the EOS rule above). */
  eosId?: number;
  /** Token ids never generated (e.g. a modality placeholder). */
  suppressTokens?: readonly number[];
  /** Rows may differ in length: they are left-padded with this id and the pad keys masked (rotary positions keep each row's relative positions). */
  padId?: number;
  /** Hook: the prompt's input embeddings [B, T, d] from its (left-padded) ids [B, T] (default model.embed). */
  embedPrompt?: (ids: tf.Tensor2D) => tf.Tensor;
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

/**
 * The k largest entries' indices, in descending order (ties: lower index first), as a full sort's
 * first k, but in O(V log k): a min-heap of the best k seen (sorting a 150k vocabulary for every
 * sampled token took ~70 ms per row).
 */
export function topKIndices(v: ArrayLike<number>, k: number): number[] {
  const worse = (a: number, b: number): boolean => v[a]! < v[b]! || (v[a] === v[b] && a > b); // a ranks below b
  const heap: number[] = []; // heap[0]: the worst kept
  const down = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && worse(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && worse(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  for (let i = 0; i < v.length; i++) {
    if (heap.length < k) {
      heap.push(i);
      for (let c = heap.length - 1; c > 0; ) {
        const p = (c - 1) >> 1;
        if (!worse(heap[c]!, heap[p]!)) break;
        [heap[c], heap[p]] = [heap[p]!, heap[c]!];
        c = p;
      }
    } else if (k > 0 && worse(heap[0]!, i)) {
      heap[0] = i;
      down(0);
    }
  }
  return heap.sort((a, b) => v[b]! - v[a]! || a - b);
}

/** Pick the next token from one row of logits [V]; `suppress` ids are never chosen. */
export function sampleToken(logits: ArrayLike<number>, o: SamplingOptions, rng: Rng, suppress: readonly number[] = []): number {
  if (suppress.length) {
    const row = Float32Array.from(logits);
    for (const s of suppress) if (s >= 0 && s < row.length) row[s] = -Infinity;
    logits = row;
  }
  const t = o.temperature ?? 0;
  if (t === 0) return argmax(logits);
  const V = logits.length;
  let idx = o.topK && o.topK < V ? topKIndices(logits, o.topK) : Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b); // descending
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
 * Generate up to `maxNewTokens` tokens after `prompt` (one row of ids, or several rows: of equal
 * length, or any lengths with `padId`). Uses a KV cache: the prompt (after `prefixEmbeds`) is
 * processed once, then one token per step. Rows that end (EOS or a stop sequence) stop growing;
 * generation ends when all rows ended.
 */
export function generate<C extends { dispose(): void }>(model: GenerativeLM<C>, prompt: readonly number[] | readonly (readonly number[])[], opts: GenerateOptions = {}): GenerateResult {
  checkOptions(opts);
  const given: number[][] = (prompt.length > 0 && Array.isArray(prompt[0]) ? (prompt as number[][]) : [prompt as number[]]).map((r) => [...r]);
  const B = given.length;
  const T = Math.max(...given.map((r) => r.length));
  if (given.some((r) => r.length !== T) && opts.padId === undefined) {
    throw new AdaptorkitError('INVALID_ARGUMENT', 'generate: prompt rows differ in length: pass padId to left-pad them (the pads are masked)');
  }
  const pads = given.map((r) => T - r.length);
  const rows = given.map((r, b) => [...new Array<number>(pads[b]!).fill(opts.padId ?? 0), ...r]);
  const padded = pads.some((p) => p > 0);
  const prefix = opts.prefixEmbeds;
  if (T === 0 && !prefix) throw new AdaptorkitError('INVALID_ARGUMENT', 'generate: empty prompt and no prefixEmbeds');
  if (prefix && (prefix.rank !== 3 || (prefix.shape[0] !== 1 && prefix.shape[0] !== B))) {
    throw new AdaptorkitError('SHAPE_MISMATCH', `generate: prefixEmbeds must be [1 or ${B}, P, d], got ${formatShape(prefix.shape)}`);
  }
  const P = prefix?.shape[1] ?? 0;
  const maxNew = opts.maxNewTokens ?? 32;
  const stops = (opts.stop ?? []).map((s) => (typeof s === 'number' ? [s] : [...s]));
  const suppress = opts.suppressTokens ?? [];
  const rng = new Rng(opts.seed ?? 0);
  const out: number[][] = Array.from({ length: B }, () => []);
  const finish: ('stop' | 'length')[] = Array.from({ length: B }, () => 'length');
  const done = new Array<boolean>(B).fill(false);
  if (maxNew === 0) return { tokens: out, finishReason: finish };

  const cache = model.createCache();
  try {
    // first step: the whole prompt (prefix embeddings first); pad keys (after the prefix) masked
    let lastLogits = tf.tidy(() => {
      const mask = padded ? padKeyMask(pads, P + T, P) : undefined; // [B, 1, 1, P+T]
      const ids = T > 0 ? tf.tensor2d(rows, [B, T], 'int32') : undefined; // [B, T]
      let embeds: tf.Tensor | undefined;
      if (ids && opts.embedPrompt) embeds = opts.embedPrompt(ids); // [B, T, d]
      else if (ids && prefix) {
        if (!model.embed) throw new AdaptorkitError('INVALID_ARGUMENT', 'generate: prefixEmbeds needs a model with embed() or an embedPrompt hook');
        embeds = model.embed(ids); // [B, T, d]
      }
      if (prefix) {
        const p = prefix.shape[0] === B ? prefix : tf.tile(prefix, [B, 1, 1]); // [B, P, d]
        embeds = embeds ? tf.concat([p, embeds], 1) : p; // [B, P+T, d]
      }
      // plain prompts go in as ids (the model embeds them: a method's own embedding path applies)
      // lastLogitsOnly: a model that honours it (CausalLM) runs its head on the last position only
      const { logits } = model.forward(embeds ? { embeds, cache, mask, ctx: opts.ctx, lastLogitsOnly: true } : { ids, cache, mask, ctx: opts.ctx, lastLogitsOnly: true });
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
        const id = sampleToken(data.subarray(b * V, (b + 1) * V), opts, rng, suppress);
        if (done[b]) {
          next.push(opts.eosId ?? out[b]![out[b]!.length - 1] ?? rows[b]![T - 1] ?? 0);
          continue;
        }
        opts.onToken?.(b, id);
        if (opts.eosId !== undefined && id === opts.eosId) {
          done[b] = true;
          finish[b] = 'stop';
        } else {
          out[b]!.push(id);
          if (stops.some((s) => endsWith(out[b]!, s))) {
            done[b] = true;
            finish[b] = 'stop';
          }
        }
        next.push(id);
      }
      if (done.every(Boolean) || step === maxNew - 1) break;
      const S = P + T + step + 1; // keys after this token joins the cache
      lastLogits = tf.tidy(() => {
        const mask = padded ? padKeyMask(pads, S, P) : undefined; // [B, 1, 1, S]
        const { logits } = model.forward({ ids: tf.tensor2d(next, [B, 1], 'int32'), cache, mask, ctx: opts.ctx });
        return tf.reshape(logits!, [B, -1]); // [B, V]
      });
    }
  } finally {
    cache.dispose();
  }
  return { tokens: out, finishReason: finish };
}
