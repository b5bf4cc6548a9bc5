/**
 * MMA decoding through core's generate. The prefill runs the whole prompt with the modality token
 * at position 0 (routing weights recorded there); then the modality token's keys/values leave the
 * cache and every decode step reuses the prefill's routing weights (per-sample routing) at
 * positions continuing after the prompt. Core's EOS rule: eosId ends a row and is not returned.
 */
import { AdaptorkitError, generate, tf, type CausalLM, type ForwardContext, type GenerativeLM, type KVCache } from '@adaptorkit/core';
import { MMA_CTX, type MmaAdapter, type MmaRoutingState } from './adapter.js';
import type { MmaModel } from './model.js';
import { modalityMask } from './sequence.js';
import type { MmaGenerateOptions, MmaGenerateResult, MmaRoutingReport } from './types.js';

export function generateMma(model: MmaModel, opts: MmaGenerateOptions): MmaGenerateResult {
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 0) {
    throw new AdaptorkitError('INVALID_ARGUMENT', `mma generate: maxNewTokens must be a non-negative integer, got ${opts.maxNewTokens}`);
  }
  const rows = opts.ids instanceof tf.Tensor ? (opts.ids.arraySync() as number[][]) : opts.ids;
  if (rows.length === 0 || rows.every((r) => r.length === 0)) throw new AdaptorkitError('INVALID_ARGUMENT', 'mma generate: no prompt tokens given');
  const record = new Map<MmaAdapter, tf.Tensor>();
  const state: MmaRoutingState = { record };
  const ctx: ForwardContext = { training: false, [MMA_CTX]: state };
  let routing: MmaRoutingReport | undefined;
  let T = 0; // prompt length (padded)
  let step = 0;
  const lm: GenerativeLM<KVCache> = {
    createCache: () => model.lm.createCache(),
    forward: ({ ids, cache, mask }) => {
      if (!ids || !cache) throw new AdaptorkitError('INVALID_ARGUMENT', 'mma generate: expected ids and a cache');
      if (routing === undefined) {
        // prefill: [modality][prompt]; mask = the modality rule + left-pad keys (shifted by the modality token)
        T = ids.shape[1]!;
        let modality: number[] = [];
        const logits = tf.tidy(() => {
          const { embeds, modality: m } = model.embedInputs({ ids, images: opts.images, modality: opts.modality, ctx });
          modality = m;
          const B = ids.shape[0]!;
          let full: tf.Tensor = modalityMask(T + 1); // [1, 1, T+1, T+1]
          if (mask) full = tf.add(full, tf.concat([tf.zeros([B, 1, 1, 1]), mask], 3)); // [B, 1, T+1, T+1]
          const { lastHidden } = model.lm.forward({ embeds, cache, mask: full, positionOffset: 0, skipHead: true, ctx });
          return lastLogits(model.lm, lastHidden);
        });
        dropFirstCachePosition(cache);
        routing = model.report(record, modality, true);
        state.fixed = record;
        state.record = undefined;
        return { logits };
      }
      // position of the new token: the modality token took position 0, the prompt 1..T
      const pos = T + 1 + step++;
      return { logits: tf.tidy(() => lastLogits(model.lm, model.lm.forward({ ids, cache, mask, positionOffset: pos, skipHead: true, ctx }).lastHidden)) };
    },
  };
  try {
    const { tokens } = generate(lm, rows, {
      maxNewTokens: Math.max(1, opts.maxNewTokens), // the prefill always runs: it gives the routing report
      padId: opts.padId ?? 0,
      ...(opts.eosId !== undefined ? { eosId: opts.eosId } : {}),
      suppressTokens: opts.suppressTokens ?? (model.imageTokenId !== undefined ? [model.imageTokenId] : []),
      ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
      ...(opts.topK !== undefined ? { topK: opts.topK } : {}),
      ...(opts.topP !== undefined ? { topP: opts.topP } : {}),
      seed: opts.seed ?? 0,
    });
    return { tokens: tokens.map((t) => t.slice(0, opts.maxNewTokens)), routing: routing! };
  } finally {
    for (const t of record.values()) t.dispose();
  }
}

/** Logits of the last position: [B, T, d] -> [B, 1, V]. */
function lastLogits(lm: CausalLM, lastHidden: tf.Tensor3D): tf.Tensor3D {
  const [B, T, d] = lastHidden.shape;
  return lm.head(tf.slice(lastHidden, [0, T - 1, 0], [B, 1, d])); // [B, 1, V]
}

/** Remove cached position 0 (the modality token) from every layer: [B, Hkv, S, hd] -> [B, Hkv, S-1, hd]. */
function dropFirstCachePosition(cache: KVCache): void {
  for (const slot of cache.slots) {
    const kv = slot.kv;
    if (!kv) continue;
    const [B, H, S, hd] = kv.k.shape;
    // kept: this runs inside generate's tidy, and the cache outlives it
    const k = tf.keep(tf.slice(kv.k, [0, 0, 1, 0], [B, H, S - 1, hd]));
    const v = tf.keep(tf.slice(kv.v, [0, 0, 1, 0], [B, H, S - 1, hd]));
    kv.k.dispose();
    kv.v.dispose();
    slot.kv = { k, v };
  }
}
