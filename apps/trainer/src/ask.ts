/**
 * Talking to a trained run: `adaptorkit generate` (one prompt) and `adaptorkit chat` (a conversation
 * through the data source's format, the chat template for LLaVA data). A prompt longer than the
 * model's context is refused before any forward; chat drops its oldest rounds to stay inside it.
 */
import * as readline from 'node:readline';
import { AdaptorkitError } from '@adaptorkit/core';
import type { Sampling } from '@adaptorkit/core';
import { IMAGE_TOKEN, loadImage } from '@adaptorkit/data';
import type { Env } from './generative.js';
import type { MMBatch } from './vl/batch.js';

export type { Sampling };

/** An image file, resized and padded to the vision encoder's input size and normalised as the run's data source does. */
export async function readImagePixels(env: Env, file: string): Promise<Float32Array> {
  const size = env.bases.vision.config.imageSize;
  const img = await loadImage(file, { size, fit: 'pad', normalize: 'none' });
  return env.source.normalizeImage(img.data);
}

/** The model's context in tokens (max_position_embeddings). */
export const contextOf = (env: Env): number => env.bases.lm.config.maxPositionEmbeddings;

/** A formatted prompt as model ids, the image placeholder expanded to the encoder's tokens. */
export function promptIds(env: Env, prompt: string): number[] {
  const { source, system, bases } = env;
  const enc = source.encode({ id: 'ask', task: 'ask', inputs: [], prompt, answer: '' }, true);
  const ids: number[] = [];
  enc.inputIds.forEach((id, t) => {
    const isImage = enc.placeholders.some((p) => p.position === t) && id === bases.placeholderIds.image;
    if (isImage) for (let i = 0; i < (system.tokensPerInput.image ?? 1); i++) ids.push(id);
    else ids.push(id);
  });
  return ids;
}

/** Generate after an already formatted prompt; refuses one that leaves no room in the context. */
export function answerPrompt(env: Env, prompt: string, image: Float32Array | undefined, maxNewTokens: number, sampling: Sampling = {}): string {
  const { source, system } = env;
  const tok = source.tokenizer;
  if (image && !system.tokensPerInput.image) throw new AdaptorkitError('UNSUPPORTED', `method '${system.describe().method}' takes no image input`);
  const ids = promptIds(env, prompt);
  const ctx = contextOf(env);
  if (ids.length >= ctx) {
    throw new AdaptorkitError('INVALID_ARGUMENT', `the prompt is ${ids.length} tokens${image ? ' (image tokens included)' : ''} but the model's context is ${ctx} (max_position_embeddings): shorten it`);
  }
  const n = Math.min(maxNewTokens, ctx - ids.length);
  if (!image) return tok.decode(system.generateText([ids], n, sampling)[0] ?? []).trim();
  const batch: MMBatch = {
    B: 1,
    T: ids.length,
    ids: Int32Array.from(ids),
    labels: new Int32Array(ids.length).fill(-100),
    lengths: [ids.length],
    inputs: [{ modality: 'image', row: 0, data: image }],
    examples: [],
  };
  return tok.decode(system.generate(batch, n, sampling)[0] ?? []).trim();
}

/** Answer `question`, about `image` when given (any <image> in the question is dropped: the source places it). */
export function ask(env: Env, question: string, image: Float32Array | undefined, maxNewTokens: number, sampling: Sampling = {}): string {
  return answerPrompt(env, env.source.formatPrompt(question, !!image), image, maxNewTokens, sampling);
}

type Turn = { role: 'user' | 'assistant'; text: string };

/**
 * The conversation to send: `history` + the new user line, oldest rounds dropped until the prompt
 * and `room` new tokens fit the context (the image placeholder moves to the first kept user turn).
 */
export function fitConversation(env: Env, history: readonly Turn[], line: string, withImage: boolean, room: number): { turns: Turn[]; prompt: string; dropped: number } {
  const format = env.source.formatConversation!;
  let turns: Turn[] = [...history, { role: 'user', text: line.replaceAll(IMAGE_TOKEN, '').trim() }];
  let dropped = 0;
  const build = (): string => {
    const t = turns.map((x, i) => (i === 0 && withImage ? { ...x, text: `${IMAGE_TOKEN}\n${x.text.replace(`${IMAGE_TOKEN}\n`, '')}` } : x));
    return format(t);
  };
  let prompt = build();
  while (turns.length > 1 && promptIds(env, prompt).length + room > contextOf(env)) {
    turns = turns.slice(2); // one user + assistant round, oldest first
    dropped++;
    prompt = build();
  }
  return { turns, prompt, dropped };
}

export interface ChatOptions {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  maxNewTokens: number;
  image?: Float32Array;
  sampling?: Sampling;
}

/**
 * A chat over stdin/stdout: each line is a user turn of one conversation (LLaVA-data runs: through
 * the chat template, earlier rounds included; ShapesWorld runs: each line alone, as the base was
 * trained). `/image <file>` starts a conversation about an image, `/text` one without, `/reset` a
 * fresh one; `/quit` (or end of input) leaves.
 */
export async function chat(env: Env, o: ChatOptions): Promise<void> {
  const rl = readline.createInterface({ input: o.input, output: o.output, terminal: false });
  const say = (s: string): void => {
    o.output.write(`${s}\n`);
  };
  const multi = env.source.formatConversation !== undefined;
  let image = o.image;
  let history: Turn[] = [];
  let turn = 0;
  const base = o.sampling ?? {};
  say(`adaptorkit chat (${env.system.describe().method}${multi ? '' : ', one question at a time'}): type a message; /image <file> to talk about an image, /text for text only, /reset to start over, /quit to leave`);
  for await (const raw of rl) {
    const line = raw.trim();
    if (!line) continue;
    if (line === '/quit' || line === '/exit') break;
    try {
      if (line.startsWith('/image ')) {
        image = await readImagePixels(env, line.slice(7).trim());
        history = [];
        say(`(image attached)${multi ? ' new conversation' : ''}`);
      } else if (line === '/text') {
        image = undefined;
        history = [];
        say(`(text only)${multi ? ' new conversation' : ''}`);
      } else if (line === '/reset') {
        history = [];
        say('(new conversation)');
      } else if (line.startsWith('/')) {
        say(`unknown command ${line.split(' ')[0]}: use /image <file>, /text, /reset or /quit`);
      } else {
        const sampling = base.temperature ? { ...base, seed: (base.seed ?? 0) + turn } : base;
        turn++;
        if (!multi) {
          say(`> ${ask(env, line, image, o.maxNewTokens, sampling)}`);
          continue;
        }
        const { turns, prompt, dropped } = fitConversation(env, history, line, !!image, Math.min(o.maxNewTokens, 16));
        if (dropped) say(`(dropped the ${dropped} oldest round${dropped === 1 ? '' : 's'} to stay within the ${contextOf(env)}-token context)`);
        const reply = answerPrompt(env, prompt, image, o.maxNewTokens, sampling);
        history = [...turns, { role: 'assistant', text: reply }];
        say(`> ${reply}`);
      }
    } catch (e) {
      say(`error: ${(e as Error).message}`);
    }
  }
  rl.close();
}
