/** One question to a trained run: `adaptorkit generate` and each turn of `adaptorkit chat`. */
import * as readline from 'node:readline';
import { AdaptorkitError } from '@adaptorkit/core';
import { loadImage } from '@adaptorkit/data';
import type { Env } from './generative.js';
import type { MMBatch } from './vl/batch.js';

/** An image file, resized and padded to the vision encoder's input size and normalised as the run's data source does. */
export async function readImagePixels(env: Env, file: string): Promise<Float32Array> {
  const size = env.bases.vision.config.imageSize;
  const img = await loadImage(file, { size, fit: 'pad', normalize: 'none' });
  return env.source.normalizeImage(img.data);
}

/** Greedy answer to `question`, about `image` when given (any <image> in the question is dropped: the source places it). */
export function ask(env: Env, question: string, image: Float32Array | undefined, maxNewTokens: number): string {
  const { source, system, bases } = env;
  const tok = source.tokenizer;
  if (image && !system.tokensPerInput.image) throw new AdaptorkitError('UNSUPPORTED', `method '${system.describe().method}' takes no image input`);
  const prompt = source.formatPrompt(question, !!image);
  const enc = source.encode({ id: 'ask', task: 'ask', inputs: [], prompt, answer: '' }, true);
  const ids: number[] = [];
  enc.inputIds.forEach((id, t) => {
    const isImage = enc.placeholders.some((p) => p.position === t) && id === bases.placeholderIds.image;
    if (isImage) for (let i = 0; i < system.tokensPerInput.image!; i++) ids.push(id);
    else ids.push(id);
  });
  if (!image) return tok.decode(system.generateText([ids], maxNewTokens)[0] ?? []);
  const batch: MMBatch = {
    B: 1,
    T: ids.length,
    ids: Int32Array.from(ids),
    labels: new Int32Array(ids.length).fill(-100),
    lengths: [ids.length],
    inputs: [{ modality: 'image', row: 0, data: image }],
    examples: [],
  };
  return tok.decode(system.generate(batch, maxNewTokens)[0] ?? []);
}

/**
 * A line-oriented chat over stdin/stdout: each line is a question; `/image <file>` attaches an image
 * to the following questions, `/text` drops it, `/quit` (or end of input) leaves.
 */
export async function chat(env: Env, o: { input: NodeJS.ReadableStream; output: NodeJS.WritableStream; maxNewTokens: number; image?: Float32Array }): Promise<void> {
  const rl = readline.createInterface({ input: o.input, output: o.output, terminal: false });
  const say = (s: string): void => {
    o.output.write(`${s}\n`);
  };
  let image = o.image;
  say(`adaptorkit chat (${env.system.describe().method}): type a question; /image <file> to attach an image, /text to drop it, /quit to leave`);
  for await (const raw of rl) {
    const line = raw.trim();
    if (!line) continue;
    if (line === '/quit' || line === '/exit') break;
    try {
      if (line.startsWith('/image ')) {
        image = await readImagePixels(env, line.slice(7).trim());
        say('(image attached)');
      } else if (line === '/text') {
        image = undefined;
        say('(text only)');
      } else if (line.startsWith('/')) {
        say(`unknown command ${line.split(' ')[0]}: use /image <file>, /text or /quit`);
      } else {
        say(`> ${ask(env, line, image, o.maxNewTokens)}`);
      }
    } catch (e) {
      say(`error: ${(e as Error).message}`);
    }
  }
  rl.close();
}
