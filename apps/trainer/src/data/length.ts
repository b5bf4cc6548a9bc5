/**
 * data.maxLength and data.onTooLong for LLaVA data: every record is measured once, as the model
 * will see it (after each image placeholder becomes the encoder's tokens), before training starts.
 *   fail      refuse the run, naming the first record and how many are too long;
 *   skip      drop them;
 *   truncate  keep the first maxLength tokens of a training row (buildBatch cuts it); a record is
 *             dropped instead when that would cut its image or leave no trained token.
 * Evaluation prompts must leave room for an answer: a longer one is dropped (skip, truncate) or
 * refused (fail). The counts go into run.json (`data`).
 */
import { AdaptorkitError, IGNORE_INDEX } from '@adaptorkit/core';
import { MODALITY_TOKENS, type Modality, type Split } from '@adaptorkit/data';
import type { RunConfig } from '../config.js';
import type { DataSource, SourceExample } from '../sources.js';

export interface DataCounts {
  template?: string;
  maxLength: number;
  onTooLong: 'fail' | 'skip' | 'truncate';
  /** Records per split after the length rule. */
  records: Record<Split, number>;
  /** Records longer than maxLength, per split. */
  tooLong: Record<Split, number>;
  /** Training records cut to maxLength (truncate). */
  truncated: number;
  /** Records dropped (skip, or truncate that could not keep them). */
  skipped: number;
}

const MODALITY_OF: Record<string, Modality> = Object.fromEntries(Object.entries(MODALITY_TOKENS).map(([m, t]) => [t, m as Modality]));

/** Length of an example's row after placeholder expansion, where its last placeholder ends, and its first trained position. */
export function measure(source: DataSource, ex: SourceExample, tokensPerInput: Partial<Record<Modality, number>>, promptOnly: boolean): { length: number; inputsEnd: number; firstLabel: number } {
  const enc = source.encode(ex, promptOnly);
  let extra = 0;
  let inputsEnd = 0;
  let firstLabel = Infinity;
  let k = 0;
  for (let t = 0; t < enc.inputIds.length; t++) {
    const ph = enc.placeholders[k];
    if (ph && ph.position === t) {
      k++;
      const n = tokensPerInput[MODALITY_OF[ph.token] ?? 'image'] ?? 1;
      extra += n - 1;
      inputsEnd = t + extra + 1;
    } else if (!promptOnly && firstLabel === Infinity && enc.labels[t] !== IGNORE_INDEX) firstLabel = t + extra;
  }
  return { length: enc.inputIds.length + extra, inputsEnd, firstLabel };
}

/** The source with data.maxLength applied to every split (LLaVA data; ShapesWorld rows are short by construction). */
export function limitLengths(source: DataSource, cfg: RunConfig, context: number, tokensPerInput: Partial<Record<Modality, number>>, log: (l: string) => void): { source: DataSource; counts?: DataCounts } {
  if (source.kind !== 'llava') return { source };
  const maxLength = cfg.data.maxLength ?? context;
  const rule = cfg.data.onTooLong;
  if (maxLength > context) log(`warning: data.maxLength ${maxLength} is longer than the model's context (max_position_embeddings ${context})`);
  const counts: DataCounts = { ...(source.template ? { template: source.template } : {}), maxLength, onTooLong: rule, records: { train: 0, val: 0, test: 0 }, tooLong: { train: 0, val: 0, test: 0 }, truncated: 0, skipped: 0 };
  const kept = {} as Record<Split, SourceExample[]>;
  for (const split of ['train', 'val', 'test'] as const) {
    const train = split === 'train';
    const out: SourceExample[] = [];
    let first: { ex: SourceExample; length: number } | undefined;
    for (const ex of source.examples(split, cfg.data.task)) {
      const m = measure(source, ex, tokensPerInput, !train);
      const over = train ? m.length > maxLength : m.length >= maxLength; // a prompt needs room for one answer token
      if (!over) {
        out.push(ex);
        continue;
      }
      counts.tooLong[split]++;
      first ??= { ex, length: m.length };
      if (rule === 'truncate' && train && m.inputsEnd <= maxLength && m.firstLabel < maxLength) {
        counts.truncated++;
        out.push(ex);
      } else counts.skipped++;
    }
    if (rule === 'fail' && first) {
      throw new AdaptorkitError(
        'INVALID_CONFIG',
        `data.maxLength: ${counts.tooLong[split]} ${split} record(s) are longer than ${maxLength} tokens (first: id ${first.ex.id}, ${first.length} tokens${train ? '' : ' of prompt'}, image tokens included); ` +
          `set data.onTooLong to skip or truncate, or raise data.maxLength (the model's context is ${context})`,
      );
    }
    if (train && out.length === 0) throw new AdaptorkitError('INVALID_CONFIG', `data.maxLength: no training record fits in ${maxLength} tokens`);
    counts.records[split] = out.length;
    kept[split] = out;
  }
  if (counts.skipped || counts.truncated) log(`data.maxLength ${maxLength}: ${counts.truncated} record(s) truncated, ${counts.skipped} skipped (data.onTooLong: ${rule})`);
  return { source: { ...source, examples: (split) => kept[split], maxLength }, counts };
}
