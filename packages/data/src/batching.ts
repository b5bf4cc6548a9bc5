/**
 * From (prompt, answer) text to padded id batches with answer-only labels:
 *   encode -> EncodedExample { inputIds [T], labels [T] }   (labels = IGNORE_INDEX off the answer)
 *   collate -> Batch { inputIds [B, T], labels [B, T], attentionMask [B, T] } (row-major flat)
 *   bucketBatches -> seeded batches of similar length; streamBatches -> the same over a stream.
 * Labels follow the Hugging Face convention: labels[t] is the token AT position t (equal to
 * inputIds[t] where trained), and the loss shifts them (logits at t-1 predict labels[t]).
 */
import { AdaptorkitError, Rng } from '@adaptorkit/core';
import { IMAGE_TOKEN, POINTS_TOKEN, SOUND_TOKEN, type TextTokenizer } from './tokenizer.js';
import type { Example, Modality } from './shapesworld/tasks.js';
import type { ShapesWorld } from './shapesworld/generate.js';

export const IGNORE_INDEX = -100;

/** A piece of a conversation; `loss: true` marks the text the model is trained to produce. */
export interface Segment {
  text: string;
  loss: boolean;
}

export interface EncodeOptions {
  /**
   * Placeholder strings and the single id each becomes (e.g. { '<image>': 4 }). Default: those of
   * <image>, <sound>, <points> the tokenizer knows via tokenToId. A model that expands one
   * placeholder into many feature vectors does so later, at these positions.
   */
  placeholders?: Record<string, number>;
  /** Prepend bosId (default: when the tokenizer has one). */
  addBos?: boolean;
  /** Append eosId after the last segment, trained when that segment is (default: when the tokenizer has one). */
  addEos?: boolean;
  /** Longest allowed sequence; longer ones throw unless `truncate` (which never cuts a placeholder). */
  maxLength?: number;
  truncate?: boolean;
}

export interface PlaceholderPosition {
  token: string;
  position: number;
}

export interface EncodedExample {
  /** [T] */
  inputIds: Int32Array;
  /** [T]: inputIds on trained positions, IGNORE_INDEX elsewhere. */
  labels: Int32Array;
  /** Placeholder tokens in order of appearance. */
  placeholders: PlaceholderPosition[];
}

function defaultPlaceholders(tok: TextTokenizer): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of [IMAGE_TOKEN, SOUND_TOKEN, POINTS_TOKEN]) {
    const id = tok.tokenToId?.(t);
    if (id !== undefined) out[t] = id;
  }
  return out;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Encode segments into ids and answer-only labels. */
export function encodeSegments(tok: TextTokenizer, segments: readonly Segment[], opts: EncodeOptions = {}): EncodedExample {
  const ph = opts.placeholders ?? defaultPlaceholders(tok);
  const names = Object.keys(ph);
  const splitter = names.length ? new RegExp(`(${names.map(escapeRe).join('|')})`) : undefined;
  const ids: number[] = [];
  const labels: number[] = [];
  const placeholders: PlaceholderPosition[] = [];
  const addBos = opts.addBos ?? tok.bosId !== undefined;
  const addEos = opts.addEos ?? tok.eosId !== undefined;
  if (addBos) {
    if (tok.bosId === undefined) throw new AdaptorkitError('INVALID_ARGUMENT', 'encodeSegments: addBos is set but the tokenizer has no bosId.');
    ids.push(tok.bosId);
    labels.push(IGNORE_INDEX);
  }
  for (const seg of segments) {
    const parts = splitter ? seg.text.split(splitter) : [seg.text];
    for (const part of parts) {
      if (part === '') continue;
      const pid = ph[part];
      if (pid !== undefined) {
        if (seg.loss) throw new AdaptorkitError('INVALID_ARGUMENT', `encodeSegments: placeholder ${part} inside an answer segment; placeholders belong in the prompt.`);
        placeholders.push({ token: part, position: ids.length });
        ids.push(pid);
        labels.push(IGNORE_INDEX);
        continue;
      }
      for (const id of tok.encode(part)) {
        ids.push(id);
        labels.push(seg.loss ? id : IGNORE_INDEX);
      }
    }
  }
  if (addEos) {
    if (tok.eosId === undefined) throw new AdaptorkitError('INVALID_ARGUMENT', 'encodeSegments: addEos is set but the tokenizer has no eosId.');
    ids.push(tok.eosId);
    labels.push(segments[segments.length - 1]?.loss ? tok.eosId : IGNORE_INDEX);
  }
  let n = ids.length;
  if (opts.maxLength !== undefined && n > opts.maxLength) {
    if (!opts.truncate) {
      throw new AdaptorkitError('INVALID_ARGUMENT', `encodeSegments: ${n} tokens exceed maxLength ${opts.maxLength}; raise maxLength, set truncate, or filter long examples.`);
    }
    if (placeholders.some((p) => p.position >= opts.maxLength!)) {
      throw new AdaptorkitError('INVALID_ARGUMENT', `encodeSegments: truncating to ${opts.maxLength} would cut a placeholder (at ${placeholders.map((p) => p.position).join(', ')}).`);
    }
    n = opts.maxLength;
  }
  return { inputIds: Int32Array.from(ids.slice(0, n)), labels: Int32Array.from(labels.slice(0, n)), placeholders };
}

/** Prompt (not trained) followed by answer (trained, with EOS). */
export function encodePromptAnswer(tok: TextTokenizer, prompt: string, answer: string, opts: EncodeOptions = {}): EncodedExample {
  return encodeSegments(tok, [{ text: prompt, loss: false }, { text: answer, loss: true }], opts);
}

/** A ShapesWorld example (prompt + answer). */
export function encodeExample(tok: TextTokenizer, ex: Pick<Example, 'prompt' | 'answer'>, opts: EncodeOptions = {}): EncodedExample {
  return encodePromptAnswer(tok, ex.prompt, ex.answer, opts);
}

/** Conversation turns (e.g. from readLlava) as segments: assistant turns trained, the rest not. */
export function turnsToSegments(turns: readonly { role: 'system' | 'user' | 'assistant'; text: string }[], format: (role: 'system' | 'user' | 'assistant', text: string) => string = (_r, t) => t): Segment[] {
  return turns.map((t) => ({ text: format(t.role, t.text), loss: t.role === 'assistant' }));
}

export interface CollateOptions {
  padId: number;
  /** 'right' (default, training) or 'left' (generation). */
  padSide?: 'right' | 'left';
  /** Round T up to a multiple (default 1). */
  padToMultipleOf?: number;
  /** Pad every batch to exactly this length (must be >= the longest). */
  padTo?: number;
}

export interface Batch {
  /** [B, T] row-major */
  inputIds: Int32Array;
  /** [B, T] row-major; IGNORE_INDEX on padding and non-answer positions */
  labels: Int32Array;
  /** [B, T] row-major; 1 on tokens, 0 on padding */
  attentionMask: Int32Array;
  shape: [number, number];
  /** Unpadded length of each row. */
  lengths: number[];
  /** Placeholder positions (already shifted by left padding), row by row, in order. */
  placeholders: (PlaceholderPosition & { row: number })[];
}

/** Pad encoded examples into one batch. */
export function collate(examples: readonly EncodedExample[], opts: CollateOptions): Batch {
  const B = examples.length;
  if (B === 0) throw new AdaptorkitError('INVALID_ARGUMENT', 'collate: empty batch.');
  const longest = Math.max(...examples.map((e) => e.inputIds.length));
  const mult = Math.max(1, opts.padToMultipleOf ?? 1);
  let T = Math.ceil(longest / mult) * mult;
  if (opts.padTo !== undefined) {
    if (opts.padTo < longest) throw new AdaptorkitError('INVALID_ARGUMENT', `collate: padTo ${opts.padTo} is shorter than the longest row (${longest}).`);
    T = opts.padTo;
  }
  const inputIds = new Int32Array(B * T).fill(opts.padId); // [B, T]
  const labels = new Int32Array(B * T).fill(IGNORE_INDEX); // [B, T]
  const attentionMask = new Int32Array(B * T); // [B, T]
  const placeholders: Batch['placeholders'] = [];
  const left = opts.padSide === 'left';
  examples.forEach((e, r) => {
    const n = e.inputIds.length;
    const off = r * T + (left ? T - n : 0);
    inputIds.set(e.inputIds, off);
    labels.set(e.labels, off);
    attentionMask.fill(1, off, off + n);
    for (const p of e.placeholders) placeholders.push({ ...p, row: r, position: p.position + (left ? T - n : 0) });
  });
  return { inputIds, labels, attentionMask, shape: [B, T], lengths: examples.map((e) => e.inputIds.length), placeholders };
}

export interface BucketOptions {
  batchSize: number;
  seed: number;
  /** Items sorted by length together (default 50 batches' worth); 1 batch = no bucketing. */
  poolSize?: number;
  /** Drop a last batch smaller than batchSize (default false). */
  dropLast?: boolean;
}

/**
 * Seeded length-bucketed batches of indices: shuffle, sort by length within pools, cut into
 * batches, shuffle the batch order. Every index appears exactly once (unless dropLast drops some).
 */
export function bucketBatches(lengths: readonly number[], opts: BucketOptions): number[][] {
  const { batchSize } = opts;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new AdaptorkitError('INVALID_ARGUMENT', `bucketBatches: batchSize must be a positive integer, got ${batchSize}.`);
  const pool = Math.max(batchSize, opts.poolSize ?? batchSize * 50);
  const rng = new Rng(opts.seed);
  const order = rng.shuffle(Array.from({ length: lengths.length }, (_, i) => i));
  const batches: number[][] = [];
  for (let s = 0; s < order.length; s += pool) {
    const chunk = order.slice(s, s + pool).sort((a, b) => (lengths[a] as number) - (lengths[b] as number));
    for (let b = 0; b < chunk.length; b += batchSize) {
      const batch = chunk.slice(b, b + batchSize);
      if (batch.length < batchSize && opts.dropLast) continue;
      batches.push(batch);
    }
  }
  return rng.shuffle(batches);
}

export interface StreamOptions<T> extends BucketOptions {
  /** Items held (and bucketed) at once; bounds memory (default 64 batches' worth). */
  bufferSize?: number;
  /** Encode one item; return undefined to drop it. */
  encode: (item: T) => EncodedExample | undefined;
  collate: CollateOptions;
}

/**
 * Batches from a (possibly endless, larger-than-memory) stream: fill a buffer, bucket and shuffle
 * it with a seed derived from (seed, buffer number), yield its batches, repeat.
 */
export async function* streamBatches<T>(source: Iterable<T> | AsyncIterable<T>, opts: StreamOptions<T>): AsyncGenerator<Batch & { items: T[] }> {
  const bufferSize = Math.max(opts.batchSize, opts.bufferSize ?? opts.batchSize * 64);
  let buffer: { item: T; enc: EncodedExample }[] = [];
  let round = 0;
  const flush = function* (final: boolean): Generator<Batch & { items: T[] }> {
    const batches = bucketBatches(buffer.map((b) => b.enc.inputIds.length), {
      ...opts, seed: (opts.seed + Math.imul(round++, 0x9e3779b1)) >>> 0, poolSize: opts.poolSize ?? bufferSize, dropLast: final ? opts.dropLast : opts.dropLast,
    });
    for (const idx of batches) {
      const rows = idx.map((i) => buffer[i] as { item: T; enc: EncodedExample });
      yield { ...collate(rows.map((r) => r.enc), opts.collate), items: rows.map((r) => r.item) };
    }
    buffer = [];
  };
  for await (const item of source as AsyncIterable<T>) {
    const enc = opts.encode(item);
    if (enc === undefined) continue;
    buffer.push({ item, enc });
    if (buffer.length >= bufferSize) yield* flush(false);
  }
  if (buffer.length > 0) yield* flush(true);
}

export interface ModalityStack {
  /** [n, ...itemShape] row-major: every input of this modality in the batch, in placeholder order. */
  data: Float32Array;
  shape: number[];
  /** For each stacked item, its batch row and its index among that row's inputs. */
  rows: number[];
  slots: number[];
}

/**
 * Render the non-text inputs of a batch of ShapesWorld examples, stacked per modality, in the
 * same order as the batch's placeholders (row by row, left to right).
 */
export function stackInputs(world: ShapesWorld, examples: readonly Pick<Example, 'inputs'>[]): Partial<Record<Modality, ModalityStack>> {
  const items: Record<Modality, { arr: Float32Array; row: number; slot: number }[]> = { image: [], sound: [], points: [] };
  examples.forEach((e, row) => e.inputs.forEach((inp, slot) => items[inp.modality].push({ arr: world.render(inp), row, slot })));
  const itemShape: Record<Modality, number[]> = { image: world.imageShape, sound: world.soundShape, points: world.pointsShape };
  const out: Partial<Record<Modality, ModalityStack>> = {};
  for (const m of ['image', 'sound', 'points'] as const) {
    const list = items[m];
    if (list.length === 0) continue;
    const per = itemShape[m].reduce((a, b) => a * b, 1);
    const data = new Float32Array(list.length * per); // [n, ...itemShape]
    list.forEach((it, i) => data.set(it.arr, i * per));
    out[m] = { data, shape: [list.length, ...itemShape[m]], rows: list.map((x) => x.row), slots: list.map((x) => x.slot) };
  }
  return out;
}
