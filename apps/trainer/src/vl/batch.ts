/**
 * Multimodal batches from a data source's examples (ShapesWorld or LLaVA): prompt/answer encoded
 * with answer-only labels, each modality placeholder expanded to the number of feature vectors its
 * encoder gives, right-padded (left-padded for generation).
 */
import { AdaptorkitError, IGNORE_INDEX } from '@adaptorkit/core';
import { MODALITY_TOKENS, type Modality } from '@adaptorkit/data';
import type { DataSource, SourceExample } from '../sources.js';
import { padRight } from '@adaptorkit/shapes-bases';

export { padRight };

export interface MMInput {
  modality: Modality;
  /** Row of the batch the input belongs to. */
  row: number;
  /** Encoder-ready input (image [H, W, 3] normalised for the vision encoder, sound [L], points [P, 2]). */
  data: Float32Array;
}

export interface MMBatch {
  B: number;
  T: number;
  /** [B * T] token ids with placeholders expanded; pad = tokenizer pad id. */
  ids: Int32Array;
  /** [B * T] answer tokens, IGNORE_INDEX elsewhere. */
  labels: Int32Array;
  /** Unpadded length of each row. */
  lengths: number[];
  /** Non-text inputs in row order, and within a row in placeholder order. */
  inputs: MMInput[];
  examples: SourceExample[];
}

export interface BatchOptions {
  /** Feature vectors each modality's encoder gives (how many placeholder tokens it becomes). */
  tokensPerInput: Partial<Record<Modality, number>>;
  /** Drop the answer (for generation): the prompt only, no EOS, no labels. */
  promptOnly?: boolean;
  /** Left-pad instead of right-pad (generation). */
  padLeft?: boolean;
}

export function buildBatch(source: DataSource, examples: readonly SourceExample[], o: BatchOptions): MMBatch {
  const tok = source.tokenizer;
  const rows: { ids: number[]; labels: number[] }[] = [];
  const inputs: MMInput[] = [];
  examples.forEach((ex, row) => {
    const enc = source.encode(ex, !!o.promptOnly);
    const ids: number[] = [];
    const labels: number[] = [];
    let k = 0;
    enc.inputIds.forEach((id, t) => {
      const ph = enc.placeholders.find((p) => p.position === t);
      if (ph) {
        const input = ex.inputs[k++];
        if (!input) throw new AdaptorkitError('INVALID_ARGUMENT', `example ${ex.id}: placeholder ${ph.token} has no input`);
        if (MODALITY_TOKENS[input.modality] !== ph.token) {
          throw new AdaptorkitError('INVALID_ARGUMENT', `example ${ex.id}: placeholder ${ph.token} but input ${k} is ${input.modality}`);
        }
        const n = o.tokensPerInput[input.modality];
        if (n === undefined) throw new AdaptorkitError('INVALID_ARGUMENT', `example ${ex.id} has a ${input.modality} input but the model has no ${input.modality} encoder`);
        for (let j = 0; j < n; j++) {
          ids.push(id);
          labels.push(IGNORE_INDEX);
        }
        inputs.push({ modality: input.modality, row, data: source.render(input) });
      } else {
        ids.push(id);
        labels.push(o.promptOnly ? IGNORE_INDEX : enc.labels[t]!);
      }
    });
    if (!o.promptOnly && source.maxLength !== undefined && ids.length > source.maxLength) {
      ids.length = source.maxLength; // data.onTooLong: truncate (data/length.ts kept only rows whose image and a trained token fit)
      labels.length = source.maxLength;
    }
    rows.push({ ids, labels });
  });
  const B = rows.length;
  const T = Math.max(...rows.map((r) => r.ids.length));
  const ids = new Int32Array(B * T).fill(tok.padId);
  const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
  rows.forEach((r, b) => {
    const off = o.padLeft ? T - r.ids.length : 0;
    ids.set(r.ids, b * T + off);
    labels.set(r.labels, b * T + off);
  });
  return { B, T, ids, labels, lengths: rows.map((r) => r.ids.length), inputs, examples: [...examples] };
}
