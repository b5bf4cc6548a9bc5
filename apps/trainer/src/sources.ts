/**
 * Where a run's examples come from: ShapesWorld tasks (rendered on the fly, exact scorers, a text
 * world for the text skill) or a LLaVA-format instruction file (images decoded from disk). The
 * trainer talks to both through DataSource; buildBatch turns its examples into model batches.
 *
 * Inputs handed to the model are encoder-ready: images are normalised here, once, with the
 * constants the vision encoder was trained with.
 */
import * as path from 'node:path';
import { AdaptorkitError } from '@adaptorkit/core';
import {
  encodeExample,
  IMAGE_TOKEN,
  MODALITY_TOKENS,
  scoreTask,
  type EncodedExample,
  type Example,
  type Modality,
  type ModalityInput,
  type Normalization,
  type Segment,
  type ShapesWorld,
  type Split,
  type TextTokenizer,
} from '@adaptorkit/data';
import { SHAPES_PIXEL_MEAN, SHAPES_PIXEL_STD } from '@adaptorkit/shapes-bases';

/** An input read from a file (LLaVA images). */
export interface FileInput {
  modality: 'image';
  file: string;
}

export type SourceInput = ModalityInput | FileInput;

/** What a batch is built from: a ShapesWorld Example, or a conversation from a file. */
export interface SourceExample {
  id: string;
  task: string;
  inputs: readonly SourceInput[];
  /** The prompt a model answers at evaluation (the conversation up to the last answer). */
  prompt: string;
  /** The reference answer (the last assistant turn). */
  answer: string;
  /** Whole conversation with loss on every assistant turn (LLaVA); absent: prompt + answer. */
  segments?: Segment[];
  /** ShapesWorld grounding: the gold box. */
  box?: Example['box'];
}

export type SourceTokenizer = TextTokenizer & { readonly bosId?: number; readonly eosId?: number };

/** What DataSource.score returns. */
export interface Scored {
  metrics: Record<string, number>;
  byTemplate?: Record<string, { accuracy: number; n: number }>;
}

/** The numeric fields of a scorer's result as metrics, its per-template table beside them. */
function scored(o: object & { byTemplate?: Scored['byTemplate'] }): Scored {
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) if (typeof v === 'number') metrics[k] = v;
  return { metrics, ...(o.byTemplate ? { byTemplate: o.byTemplate } : {}) };
}

export interface DataSource {
  readonly kind: 'shapesworld' | 'llava';
  readonly tokenizer: SourceTokenizer;
  /** Token id of each modality placeholder the source's prompts contain. */
  readonly placeholderIds: Partial<Record<Modality, number>>;
  /** The task a run trains and is scored on. */
  examples(split: Split, task: string): SourceExample[];
  /** Encode for training (answer labels) or for generation (prompt only, no EOS). */
  encode(ex: SourceExample, promptOnly: boolean): EncodedExample;
  /** Encoder-ready input data (synchronous: file inputs must have been prefetched). */
  render(input: SourceInput): Float32Array;
  /** Load what render() needs for these examples (decodes images from disk). */
  prefetch(examples: readonly SourceExample[]): Promise<void>;
  /** Normalise 0..1 pixels [H, W, 3] as the vision encoder expects. */
  normalizeImage(pixels: Float32Array): Float32Array;
  /** Metrics of generated answers (fractions in 0..1, `n`), and accuracy per question template where the task has templates. */
  score(task: string, predictions: readonly string[], examples: readonly SourceExample[]): Scored;
  /** A user's question as this source's prompts look (with the image placeholder when there is an image). */
  formatPrompt(question: string, withImage: boolean): string;
  /** A whole conversation (ending with a user turn) as the prompt for the next answer; absent: single questions only (ShapesWorld). */
  formatConversation?(turns: readonly { role: 'system' | 'user' | 'assistant'; text: string }[]): string;
  /** Token ids that end an answer (the chat template's end-of-turn token); absent: the tokenizer's EOS. */
  readonly stopIds?: readonly number[];
  /** How conversations became text (data.template, resolved), for LLaVA data. */
  readonly template?: string;
  /** Longest training row in tokens (image tokens included): longer rows are cut (data.onTooLong: truncate). */
  readonly maxLength?: number;
  /** Lines of the base LM's own pretraining text (for replay during adaptation); undefined when the source has none. */
  replayLines?(n: number): string[];
  /** Held-out text lines and exact-answer text questions for the text skill; undefined when the source has none. */
  textSkillData?(n: number): { lines: string[]; questions: SourceExample[] };
}

function shapesNormalize(px: Float32Array): Float32Array {
  const out = new Float32Array(px.length);
  for (let i = 0; i < px.length; i++) out[i] = (px[i]! - SHAPES_PIXEL_MEAN) / SHAPES_PIXEL_STD;
  return out;
}

export function shapesWorldSource(sw: ShapesWorld): DataSource {
  const tok = sw.tokenizer;
  const id = (t: string): number => {
    const v = tok.tokenToId(t);
    if (v === undefined) throw new AdaptorkitError('INVALID_CONFIG', `the ShapesWorld tokenizer has no ${t} token`);
    return v;
  };
  return {
    kind: 'shapesworld',
    tokenizer: tok,
    placeholderIds: { image: id(MODALITY_TOKENS.image), sound: id(MODALITY_TOKENS.sound), points: id(MODALITY_TOKENS.points) },
    examples: (split, task) => sw.task(task as never, split),
    encode: (ex, promptOnly) => (promptOnly ? encodeExample(tok, { prompt: ex.prompt, answer: '' }, { addEos: false }) : encodeExample(tok, ex)),
    render: (input) => {
      if (!('scene' in input)) throw new AdaptorkitError('INVALID_ARGUMENT', `a ShapesWorld run got a file input (${input.file})`);
      const data = sw.render(input);
      return input.modality === 'image' ? shapesNormalize(data) : data;
    },
    prefetch: async () => {},
    normalizeImage: shapesNormalize,
    formatPrompt: (q, withImage) => `${withImage ? `${IMAGE_TOKEN} ` : ''}${q.replaceAll(IMAGE_TOKEN, ' ').trim()}`,
    score: (task, preds, examples) => scored(scoreTask(task as never, [...preds], examples as Example[])),
    replayLines: (n) => sw.corpus('train', n),
    textSkillData: (n) => ({ lines: sw.corpus('heldout').slice(0, n), questions: sw.task('text', 'test').slice(0, n) }),
  };
}

/** Default pixel normalisation for a vision encoder kind. */
export function defaultNormalization(kind: string): Normalization {
  return kind === 'siglip' ? 'siglip' : 'clip';
}

export const describeSource = (s: DataSource, cfgJson?: string): string => (s.kind === 'llava' ? `LLaVA data ${cfgJson ? path.basename(cfgJson) : ''}`.trim() : 'ShapesWorld');

export { llavaSource, type LlavaSourceOptions } from './data/llava-source.js';
