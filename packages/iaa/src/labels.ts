/** Answer-only labels for instruction batches (LLaVA recipe: loss on answers only). */
import { AdaptorkitError, IGNORE_INDEX, tf } from '@adaptorkit/core';

export interface AnswerLabelOptions {
  /** Padding id: never a label. */
  padId?: number;
  /** Image placeholder id: never a label. */
  imageTokenId?: number;
}

/**
 * labels[b][t] = ids[b][t] for t >= answerStarts[b] (the answer tokens, e.g. up to and including
 * EOS), IGNORE_INDEX elsewhere and on padding / image placeholders. Returns int32 [B, T]; use with
 * shifted cross entropy (position t-1 predicts label t).
 */
export function answerLabels(ids: readonly (readonly number[])[], answerStarts: readonly number[], opts: AnswerLabelOptions = {}): tf.Tensor2D {
  const B = ids.length;
  const T = ids[0]?.length ?? 0;
  if (answerStarts.length !== B) {
    throw new AdaptorkitError('SHAPE_MISMATCH', `answerLabels: ${answerStarts.length} answer starts for ${B} rows`);
  }
  const out = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const row = ids[b]!;
    if (row.length !== T) throw new AdaptorkitError('SHAPE_MISMATCH', `answerLabels: row ${b} has ${row.length} ids, row 0 has ${T} (pad the batch first)`);
    const s = answerStarts[b]!;
    if (!Number.isInteger(s) || s < 1 || s > T) throw new AdaptorkitError('INVALID_ARGUMENT', `answerLabels: answerStarts[${b}] = ${s} must be in 1..${T}`);
    for (let t = 0; t < T; t++) {
      const id = row[t]!;
      out[b * T + t] = t >= s && id !== opts.padId && id !== opts.imageTokenId ? id : IGNORE_INDEX;
    }
  }
  return tf.tensor2d(out, [B, T], 'int32');
}
