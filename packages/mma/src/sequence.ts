/**
 * LaVIN's sequence layout, without the modality token (MmaModel adds it at position 0):
 *   [BOS] "Image:" [K visual tokens] [prompt ... answer] [EOS]   (image samples)
 *   [BOS] "Image: N/A" [prompt ... answer] [EOS]                  (text-only samples)
 * with the loss on the answer (and EOS) only. Encode the prompt from lavinPrompt with any
 * tokenizer (e.g. @adaptorkit/data's encodeExample, which gives answer-only labels), then expand
 * the image placeholder into K ids with expandImagePlaceholder.
 */
import { AdaptorkitError, IGNORE_INDEX, tf } from '@adaptorkit/core';

export interface LavinPromptOptions {
  /** The placeholder string in prompts (default '<image>'). */
  imageToken?: string;
  /** Text before the visual tokens (default 'Image:'). */
  imagePrefix?: string;
  /** Text in place of the image for text-only samples (default 'Image: N/A'). */
  noImageText?: string;
}

/**
 * Move a prompt's image placeholder to the front as `Image: <image>` (LaVIN's layout) or, for a
 * prompt without one, put `Image: N/A` in front. One image per prompt.
 */
export function lavinPrompt(prompt: string, o: LavinPromptOptions = {}): string {
  const tok = o.imageToken ?? '<image>';
  const parts = prompt.split(tok);
  if (parts.length > 2) throw new AdaptorkitError('INVALID_ARGUMENT', `lavinPrompt: the prompt holds ${parts.length - 1} ${tok} placeholders; MMA takes one image per sample`);
  if (parts.length === 1) return `${o.noImageText ?? 'Image: N/A'}\n${prompt}`;
  const rest = parts.join(' ').replace(/\s+/g, ' ').trim();
  return `${o.imagePrefix ?? 'Image:'} ${tok}\n${rest}`;
}

/** Repeat each image placeholder id `n` times in ids and labels (labels: IGNORE_INDEX there). */
export function expandImagePlaceholder(enc: { inputIds: ArrayLike<number>; labels: ArrayLike<number> }, imageTokenId: number, n: number): { inputIds: Int32Array; labels: Int32Array } {
  if (!Number.isInteger(n) || n < 1) throw new AdaptorkitError('INVALID_ARGUMENT', `expandImagePlaceholder: n must be a positive integer, got ${n}`);
  const ids: number[] = [];
  const labels: number[] = [];
  for (let t = 0; t < enc.inputIds.length; t++) {
    const id = enc.inputIds[t]!;
    const k = id === imageTokenId ? n : 1;
    for (let j = 0; j < k; j++) {
      ids.push(id);
      labels.push(id === imageTokenId ? IGNORE_INDEX : enc.labels[t]!);
    }
  }
  return { inputIds: Int32Array.from(ids), labels: Int32Array.from(labels) };
}

const NEG = -1e9;

/** Modality rows. */
export const TEXT_MODALITY = 0;
export const IMAGE_MODALITY = 1;

/**
 * Additive mask [1, 1, T, T] (T counts the modality token): no position > 0 attends to position
 * 0. Combined with the causal rule, the modality token sees only itself.
 */
export function modalityMask(T: number): tf.Tensor4D {
  const m = new Float32Array(T * T);
  for (let i = 1; i < T; i++) m[i * T] = NEG;
  return tf.tensor4d(m, [1, 1, T, T]);
}
