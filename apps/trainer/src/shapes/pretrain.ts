/**
 * Pretraining the ShapesWorld bases:
 *  - the LM: next-token prediction over the ShapesWorld corpus and the text-task training split,
 *    sentences packed into fixed-length rows;
 *  - the vision encoder: CLIP-style symmetric InfoNCE between images and their captions, with a
 *    small text tower and projections that are thrown away afterwards.
 */
import { CausalLM, manualSeed, maskedCrossEntropy, Rng, symmetricInfoNCE, VisionEncoder, tf } from '@adaptorkit/core';
import { encodeSegments, type ShapesWorld } from '@adaptorkit/data';
import { trainLoop } from '../loop.js';
import { padRight } from '../vl/batch.js';
import { shapesLMConfig, shapesVisionConfig, TextTower, VisionProjection } from './bases.js';

export interface PretrainLog {
  (line: string): void;
}

/** ShapesWorld pixels [H, W, 3] in 0..1 -> normalised input for the vision tower. */
export const SHAPES_PIXEL_MEAN = 0.5;
export const SHAPES_PIXEL_STD = 0.25;

export function pixelsTensor(images: Float32Array[], size: number): tf.Tensor4D {
  const B = images.length;
  const buf = new Float32Array(B * size * size * 3);
  images.forEach((img, i) => {
    for (let j = 0; j < img.length; j++) buf[i * img.length + j] = (img[j]! - SHAPES_PIXEL_MEAN) / SHAPES_PIXEL_STD;
  });
  return tf.tensor4d(buf, [B, size, size, 3]);
}

export interface LMPretrainOptions {
  steps: number;
  batchSize: number;
  seqLen: number;
  lr: number;
  seed: number;
  log?: PretrainLog;
}

/** Token stream of the LM's pretraining text: every sentence as [bos] words [eos]. */
export function lmPretrainStream(sw: ShapesWorld): Int32Array {
  const tok = sw.tokenizer;
  const texts = [...sw.corpus('train'), ...sw.task('text', 'train').map((e) => `${e.prompt} ${e.answer}`)];
  const ids: number[] = [];
  for (const t of texts) {
    const enc = encodeSegments(tok, [{ text: t, loss: true }]);
    for (const id of enc.inputIds) ids.push(id);
  }
  return Int32Array.from(ids);
}

export async function pretrainLM(sw: ShapesWorld, o: LMPretrainOptions): Promise<{ lm: CausalLM; losses: number[] }> {
  const log = o.log ?? (() => {});
  manualSeed(o.seed);
  const lm = new CausalLM(shapesLMConfig(sw.tokenizer.vocabSize));
  const stream = lmPretrainStream(sw);
  const rng = new Rng(o.seed + 1);
  const T = o.seqLen;
  const maxStart = stream.length - T - 1;
  log(`LM: ${lm.countParameters().toLocaleString()} parameters, ${stream.length.toLocaleString()} pretraining tokens`);
  const { losses } = await trainLoop({
    named: lm.namedTrainableParameters(),
    steps: o.steps,
    lr: o.lr,
    warmupSteps: Math.round(o.steps * 0.05),
    weightDecay: 0.1,
    betas: [0.9, 0.95],
    clipNorm: 1,
    minLrRatio: 0.1,
    loss: () => {
      const rows = new Int32Array(o.batchSize * T);
      for (let b = 0; b < o.batchSize; b++) {
        const s = rng.int(maxStart);
        rows.set(stream.subarray(s, s + T), b * T);
      }
      const ids = tf.tensor2d(rows, [o.batchSize, T], 'int32');
      return maskedCrossEntropy(lm.forward({ ids }).logits!, ids);
    },
    onStep: ({ step, loss, ms }) => {
      if (step === 1 || step % 50 === 0 || step === o.steps) log(`LM step ${step}/${o.steps} loss ${loss.toFixed(4)} (${ms.toFixed(0)} ms/step)`);
    },
  });
  return { lm, losses };
}

export interface VisionPretrainOptions {
  steps: number;
  batchSize: number;
  lr: number;
  seed: number;
  log?: PretrainLog;
}

export async function pretrainVision(sw: ShapesWorld, o: VisionPretrainOptions): Promise<{ vision: VisionEncoder; losses: number[]; retrievalR1: number }> {
  const log = o.log ?? (() => {});
  const size = sw.imageShape[0];
  manualSeed(o.seed);
  const vision = new VisionEncoder(shapesVisionConfig(size));
  const d = vision.config.hiddenSize;
  const tok = sw.tokenizer;
  const maxLen = 48;
  const text = new TextTower(tok.vocabSize, maxLen, 128, 2, 4, 128);
  const vproj = new VisionProjection(d, 128);
  const pairs = sw.retrieval('train');
  const encodeText = (s: string): number[] => [...tok.encode(s)].slice(0, maxLen);
  const rng = new Rng(o.seed + 2);
  const images = pairs.map((p) => sw.renderImage(p.scene));
  const texts = pairs.map((p) => encodeText(p.text));
  log(`vision: ${vision.countParameters().toLocaleString()} parameters, ${pairs.length} image-caption pairs`);
  const named = [...vision.namedTrainableParameters(), ...text.namedTrainableParameters().map(([n, p]) => [`text.${n}`, p] as [string, typeof p]), ...vproj.namedTrainableParameters().map(([n, p]) => [`vproj.${n}`, p] as [string, typeof p])];
  const { losses } = await trainLoop({
    named,
    steps: o.steps,
    lr: o.lr,
    warmupSteps: Math.round(o.steps * 0.05),
    weightDecay: 0.05,
    betas: [0.9, 0.98],
    clipNorm: 1,
    minLrRatio: 0.1,
    loss: () => {
      const idx = Array.from({ length: o.batchSize }, () => rng.int(pairs.length));
      const px = pixelsTensor(idx.map((i) => images[i]!), size);
      const img = vproj.proj.forward(vision.forward(px).pooled) as tf.Tensor2D;
      const txt = text.forward(padRight(idx.map((i) => texts[i]!), tok.padId), tok.padId);
      return symmetricInfoNCE(img, txt, tf.exp(tf.minimum(vproj.logitScale.value, Math.log(100))));
    },
    onStep: ({ step, loss, ms }) => {
      if (step === 1 || step % 50 === 0 || step === o.steps) log(`vision step ${step}/${o.steps} loss ${loss.toFixed(4)} (${ms.toFixed(0)} ms/step)`);
    },
  });
  // R@1 image->text on held-out pairs, as a sanity number for the shipped encoder
  const val = sw.retrieval('val').slice(0, 200);
  const r1 = tf.tidy(() => {
    const img = vproj.proj.forward(vision.forward(pixelsTensor(val.map((p) => sw.renderImage(p.scene)), size)).pooled);
    const txt = text.forward(padRight(val.map((p) => encodeText(p.text)), tok.padId), tok.padId);
    const sims = tf.matMul(img, txt, false, true); // [N, N]
    const best = tf.argMax(sims, 1).dataSync();
    let hit = 0;
    best.forEach((j, i) => (hit += j === i ? 1 : 0));
    return hit / val.length;
  });
  text.dispose();
  vproj.dispose();
  return { vision, losses, retrievalR1: r1 };
}
