/**
 * PEFT's add_weighted_adapter for LoRA adapters loaded on one base (definitions as in
 * peft/tuners/lora/model.py), per adapted layer, over the adapters present on that layer:
 *
 *   linear (all ranks equal):  c_i = w_i s_i;  A = sum_i sign(c_i) sqrt(|c_i|) A_i,  B = sum_i sqrt(|c_i|) B_i
 *   cat (ranks add up):        A = concat_rows(w_i s_i A_i),  B = concat_cols(B_i)
 *
 * The new adapter gets r = its rank and lora_alpha = r, so its scale is 1 (sqrt(r) when the first
 * adapter uses rsLoRA, as PEFT copies that flag). `cat` is exactly sum_i w_i s_i B_i A_i; `linear`
 * is not (the product has cross terms B_i A_j), which is PEFT's definition. Adapters that replace
 * a bias (bias: lora_only) or a whole module (modules_to_save) are refused.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError } from '../errors.js';
import { adapterNames, loraLinears, moduleCopies, type LoraAdapter } from './lora.js';
import type { Module } from './module.js';

export type Combination = 'linear' | 'cat';

export interface WeightedAdapterInfo {
  /** Rank of the new adapter on each layer it was added to. */
  ranks: Map<string, number>;
  scale: number;
}

/** Add adapter `name` = the weighted combination of `adapters` (frozen, not activated). */
export function addWeightedAdapter(
  model: Module,
  adapters: readonly string[],
  weights: readonly number[],
  name: string,
  combination: Combination = 'linear',
  opts: { rsLoRA?: boolean } = {},
): WeightedAdapterInfo {
  if (adapters.length === 0) throw new AdaptorkitError('INVALID_ARGUMENT', 'addWeightedAdapter: give at least one adapter');
  if (weights.length !== adapters.length) throw new AdaptorkitError('INVALID_ARGUMENT', `addWeightedAdapter: ${weights.length} weights for ${adapters.length} adapters`);
  if (!weights.every(Number.isFinite)) throw new AdaptorkitError('INVALID_ARGUMENT', `addWeightedAdapter: weights must be finite numbers, got ${weights.join(', ')}`);
  const known = adapterNames(model);
  const unknown = adapters.filter((a) => !known.includes(a));
  if (unknown.length) throw new AdaptorkitError('INVALID_ARGUMENT', `addWeightedAdapter: no adapter named ${unknown.join(', ')} is loaded (loaded: ${known.join(', ') || 'none'})`);
  if (known.includes(name)) throw new AdaptorkitError('INVALID_ARGUMENT', `addWeightedAdapter: an adapter named '${name}' is already loaded`);
  for (const [p, c] of moduleCopies(model)) {
    const has = adapters.filter((a) => c.has(a));
    if (has.length) throw new AdaptorkitError('UNSUPPORTED', `addWeightedAdapter: adapter ${has.join(', ')} replaces the whole module '${p}' (modules_to_save), which cannot be combined with weights`);
  }
  const mode: Combination = adapters.length === 1 ? 'linear' : combination; // PEFT: one adapter is always linear
  const layers = loraLinears(model);
  // ranks must agree for linear (checked on every layer before anything is added)
  if (mode === 'linear') {
    for (const [p, l] of layers) {
      const rs = new Set(adapters.filter((a) => l.has(a)).map((a) => l.adapter(a).rank));
      if (rs.size > 1) throw new AdaptorkitError('INVALID_ARGUMENT', `addWeightedAdapter(linear): the adapters have ranks ${[...rs].join(', ')} at '${p}'; linear needs one rank (use 'cat')`);
    }
  }
  for (const [p, l] of layers) {
    const bias = adapters.filter((a) => l.has(a) && l.adapter(a).bias);
    if (bias.length) throw new AdaptorkitError('UNSUPPORTED', `addWeightedAdapter: adapter ${bias.join(', ')} replaces the bias of '${p}' (bias: lora_only), which cannot be combined with weights`);
  }
  const ranks = new Map<string, number>();
  let scale = 1;
  for (const [p, l] of layers) {
    const present: [LoraAdapter, number][] = adapters.flatMap((a, i) => (l.has(a) ? [[l.adapter(a), weights[i]!] as [LoraAdapter, number]] : []));
    if (present.length === 0) continue;
    const [A, B] = tf.tidy(() => {
      if (mode === 'cat') {
        // stored A is [in, r]: PEFT's rows of lora_A are our columns
        const As = present.map(([a, w]) => tf.mul(a.A.weight.value, w * a.scale));
        const Bs = present.map(([a]) => a.B.weight.value);
        return [tf.concat(As, 1), tf.concat(Bs, 0)] as [tf.Tensor, tf.Tensor];
      }
      let a: tf.Tensor | undefined;
      let b: tf.Tensor | undefined;
      for (const [ad, w] of present) {
        const c = w * ad.scale;
        const ta = tf.mul(ad.A.weight.value, Math.sign(c || 1) * Math.sqrt(Math.abs(c)));
        const tb = tf.mul(ad.B.weight.value, Math.sqrt(Math.abs(c)));
        a = a ? tf.add(a, ta) : ta;
        b = b ? tf.add(b, tb) : tb;
      }
      return [a!, b!] as [tf.Tensor, tf.Tensor];
    });
    try {
      const r = A.shape[1]!;
      scale = opts.rsLoRA ? r / Math.sqrt(r) : 1;
      const added = l.addAdapter(name, r, scale);
      added.A.weight.assign(A, `${p}.lora_A.${name}.weight`);
      added.B.weight.assign(B, `${p}.lora_B.${name}.weight`);
      ranks.set(p, r);
    } finally {
      A.dispose();
      B.dispose();
    }
  }
  if (ranks.size === 0) throw new AdaptorkitError('INVALID_ARGUMENT', `addWeightedAdapter: none of ${adapters.join(', ')} is on any LoRA layer`);
  return { ranks, scale };
}
