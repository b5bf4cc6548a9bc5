/**
 * The structural tokenizer contract data code is written against, and a word-level tokenizer
 * for ShapesWorld. Any tokenizer (e.g. core's HF tokenizer.json wrapper) can be adapted to
 * `TextTokenizer`: it only has to encode without adding BOS/EOS itself.
 */
import { AdaptorkitError } from '@adaptorkit/core';

export interface TextTokenizer {
  /** Number of ids; every id is in [0, vocabSize). */
  readonly vocabSize: number;
  readonly padId: number;
  readonly bosId?: number;
  readonly eosId?: number;
  /** Text to ids, WITHOUT bos/eos (the batcher adds them). */
  encode(text: string): number[];
  /** Ids to text; special tokens such as <pad>/<bos>/<eos> are dropped. */
  decode(ids: readonly number[]): string;
  /** The id of a single token, if the tokenizer has it as one piece (e.g. '<image>'). */
  tokenToId?(token: string): number | undefined;
}

export const PAD = '<pad>';
export const BOS = '<bos>';
export const EOS = '<eos>';
export const UNK = '<unk>';
export const IMAGE_TOKEN = '<image>';
export const SOUND_TOKEN = '<sound>';
export const POINTS_TOKEN = '<points>';

/** Special tokens, in id order: ids 0..6 in every WordTokenizer built by this package. */
export const SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, IMAGE_TOKEN, SOUND_TOKEN, POINTS_TOKEN] as const;

/** Pieces: a placeholder like <image>, a run of letters, one digit, or one punctuation mark. */
const PIECE = /<[a-z_]+>|[A-Za-z]+|\d|[^\s\w]/g;
const NO_SPACE_BEFORE = new Set(['.', ',', '?', '!', ':', ';', ']', ')']);
const NO_SPACE_AFTER = new Set(['[', '(']);

/** Split text into word-level pieces (the ShapesWorld pre-tokenisation). */
export function splitWords(text: string): string[] {
  return text.match(PIECE) ?? [];
}

/**
 * Join pieces back into canonical text: words separated by spaces, no space before
 * punctuation, digits of a number joined, and nothing but digits and commas inside [...],
 * so `[12,345,67,999]` and `two plus three is five.` round-trip exactly.
 */
export function joinWords(pieces: readonly string[]): string {
  let out = '';
  let depth = 0;
  let prev = '';
  for (const p of pieces) {
    let space = out.length > 0;
    if (NO_SPACE_BEFORE.has(p) || NO_SPACE_AFTER.has(prev)) space = false;
    if (/^\d$/.test(p) && /^\d$/.test(prev)) space = false;
    if (depth > 0) space = false;
    if (p === ']' ) depth = Math.max(0, depth - 1);
    out += (space ? ' ' : '') + p;
    if (p === '[') depth++;
    prev = p;
  }
  return out;
}

/** A word-level tokenizer over a fixed vocabulary; unknown words map to <unk>. */
export class WordTokenizer implements TextTokenizer {
  readonly vocab: readonly string[];
  readonly padId: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  private readonly index: Map<string, number>;

  /** `vocab` must start with SPECIAL_TOKENS and contain no duplicates. */
  constructor(vocab: readonly string[]) {
    SPECIAL_TOKENS.forEach((t, i) => {
      if (vocab[i] !== t) {
        throw new AdaptorkitError('INVALID_ARGUMENT', `WordTokenizer: vocab[${i}] must be '${t}', got '${String(vocab[i])}'; put the special tokens first, in SPECIAL_TOKENS order.`);
      }
    });
    this.index = new Map();
    vocab.forEach((w, i) => {
      if (this.index.has(w)) throw new AdaptorkitError('INVALID_ARGUMENT', `WordTokenizer: duplicate vocab entry '${w}' at ${i} (first at ${this.index.get(w)}).`);
      this.index.set(w, i);
    });
    this.vocab = [...vocab];
    this.padId = 0;
    this.bosId = 1;
    this.eosId = 2;
    this.unkId = 3;
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  tokenToId(token: string): number | undefined {
    return this.index.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.vocab[id];
  }

  encode(text: string): number[] {
    return splitWords(text).map((w) => this.index.get(w) ?? this.index.get(w.toLowerCase()) ?? this.unkId);
  }

  decode(ids: readonly number[]): string {
    const pieces: string[] = [];
    for (const id of ids) {
      if (id === this.padId || id === this.bosId || id === this.eosId) continue;
      const w = this.vocab[id];
      if (w === undefined) throw new AdaptorkitError('INVALID_ARGUMENT', `WordTokenizer.decode: id ${id} is outside the vocabulary [0, ${this.vocab.length}).`);
      pieces.push(w);
    }
    return joinWords(pieces);
  }

  /** Words of `text` that are not in the vocabulary (for checking a corpus). */
  unknownWords(text: string): string[] {
    return splitWords(text).filter((w) => !this.index.has(w) && !this.index.has(w.toLowerCase()));
  }

  toJSON(): { type: 'word'; vocab: string[] } {
    return { type: 'word', vocab: [...this.vocab] };
  }
}
