/** One question to a trained run: `adaptorkit generate` and each turn of `adaptorkit chat`. */
import * as readline from 'node:readline';
import { AdaptorkitError } from '@adaptorkit/core';
import { IMAGE_TOKEN, loadImage } from '@adaptorkit/data';
import type { Env } from './train.js';
import type { MMBatch } from './vl/batch.js';

/** Pixels of an image file, resized and padded to the vision encoder's input size (0..1, [H*W*3]). */
export async function readImagePixels(env: Env, file: string): Promise<Float32Array> {
  const size = env.bases.vision.config.imageSize;
  const img = await loadImage(file, { size, fit: 'pad', normalize: 'none' });
  return img.data;
}

/** Greedy answer to `prompt`, about `image` when given (the prompt's <image> marks nothing: the image goes first). */
export function ask(env: Env, prompt: string, image: Float32Array | undefined, maxNewTokens: number): string {
  const tok = env.sw.tokenizer;
  const text = prompt.replaceAll(IMAGE_TOKEN, ' ').trim();
  const words = tok.encode(text);
  const ids: number[] = [tok.bosId];
  if (image) {
    const n = env.system.tokensPerInput.image;
    if (!n) throw new AdaptorkitError('UNSUPPORTED', `method '${env.system.describe().method}' takes no image input`);
    for (let i = 0; i < n; i++) ids.push(env.bases.placeholderIds.image!);
  }
  ids.push(...words);
  if (!image) return tok.decode(env.system.generateText([ids], maxNewTokens)[0] ?? []);
  const batch: MMBatch = {
    B: 1,
    T: ids.length,
    ids: Int32Array.from(ids),
    labels: new Int32Array(ids.length).fill(-100),
    lengths: [ids.length],
    inputs: [{ modality: 'image', row: 0, data: image }],
    examples: [],
  };
  return tok.decode(env.system.generate(batch, maxNewTokens)[0] ?? []);
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
