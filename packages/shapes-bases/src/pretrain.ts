/**
 * Pretraining the ShapesWorld bases:
 *  - the LM: next-token prediction over the ShapesWorld corpus and the text-task training split,
 *    sentences packed into fixed-length rows;
 *  - the vision encoder: CLIP-style symmetric InfoNCE between images and their captions, with a
 *    small text tower and projections that are thrown away afterwards.
 */
import { CausalLM, manualSeed, type Parameter, IGNORE_INDEX, maskedCrossEntropy, Rng, symmetricInfoNCE, trainLoop, VisionEncoder, tf } from '@adaptorkit/core';
import { COLOURS, encodeExample, encodeSegments, SHAPES, SIZES, type Scene, type SceneQA, type ShapesWorld } from '@adaptorkit/data';
import { CellHeads, shapesLMConfig, shapesVisionConfig, TextTower, VisionProjection } from './bases.js';

/** Token rows of any lengths -> int32 [B, T] right-padded with padId. */
export function padRight(rows: readonly (readonly number[])[], padId: number): tf.Tensor2D {
  const T = Math.max(1, ...rows.map((r) => r.length));
  const ids = new Int32Array(rows.length * T).fill(padId);
  rows.forEach((r, b) => ids.set(r, b * T));
  return tf.tensor2d(ids, [rows.length, T], 'int32');
}

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
  /**
   * Scene-QA examples (caption + VQA question -> answer, `ShapesWorld.sceneQA`): when > 0, every
   * step adds an answer-only loss on a batch of them to the next-token loss; 0 = the shipped LM.
   */
  sceneQA?: number;
  /** Scene-QA lines ("<prompt> <answer>.") interleaved with the corpus in the next-token stream (no answer-only loss); 0 = none. */
  sceneQALines?: number;
  log?: PretrainLog;
}

/**
 * Answer-only cross entropy of `lm` on the examples `idx` of `qa` (prompt not scored; the answer
 * and its end-of-sequence token are), right-padded into one batch.
 */
export function sceneQALoss(lm: CausalLM, tok: ShapesWorld['tokenizer'], qa: readonly SceneQA[], idx: readonly number[]): tf.Scalar {
  const enc = idx.map((i) => encodeExample(tok, qa[i]!));
  const T = Math.max(...enc.map((e) => e.inputIds.length));
  const ids = new Int32Array(idx.length * T).fill(tok.padId);
  const labels = new Int32Array(idx.length * T).fill(IGNORE_INDEX);
  enc.forEach((e, b) => {
    ids.set(e.inputIds, b * T);
    labels.set(e.labels, b * T);
  });
  return tf.tidy(() => maskedCrossEntropy(lm.forward({ ids: tf.tensor2d(ids, [idx.length, T], 'int32') }).logits!, tf.tensor2d(labels, [idx.length, T], 'int32')));
}

/** Token stream of the LM's pretraining text: every sentence as [bos] words [eos]. */
export function lmPretrainStream(sw: ShapesWorld, sceneQALines = 0): Int32Array {
  const tok = sw.tokenizer;
  const plain = [...sw.corpus('train'), ...sw.task('text', 'train').map((e) => `${e.prompt} ${e.answer}`)];
  // scene-QA lines alternate with the corpus lines, so that every packed window sees both kinds
  const qa = sw.sceneQA(sceneQALines).map((q) => `${q.prompt} ${q.answer}.`);
  const texts = Array.from({ length: Math.max(plain.length, qa.length) }, (_, i) => [plain[i], qa[i]]).flat().filter((t): t is string => t !== undefined);
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
  const stream = lmPretrainStream(sw, o.sceneQALines ?? 0);
  const rng = new Rng(o.seed + 1);
  const T = o.seqLen;
  const maxStart = stream.length - T - 1;
  const qa = (o.sceneQA ?? 0) > 0 ? sw.sceneQA(o.sceneQA!) : undefined;
  if (qa) log(`LM: + answer-only loss on ${qa.length.toLocaleString()} scene-QA examples (caption + VQA question -> answer)`);
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
      const next = maskedCrossEntropy(lm.forward({ ids }).logits!, ids);
      if (!qa) return next;
      const qaLoss = sceneQALoss(lm, sw.tokenizer, qa, Array.from({ length: o.batchSize }, () => rng.int(qa.length)));
      return tf.add(next, qaLoss) as tf.Scalar;
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
  /** Weight of the dense per-cell loss (shape, colour, size of each grid cell's object) on the penultimate layer's patch tokens; 0 = captions only. */
  dense?: number;
  log?: PretrainLog;
}

/** Per-cell labels of a scene: index into SHAPES/COLOURS/SIZES, or their length for an empty cell. */
export function cellLabels(scene: Scene): { shape: number[]; colour: number[]; size: number[] } {
  const out = { shape: new Array<number>(9).fill(SHAPES.length), colour: new Array<number>(9).fill(COLOURS.length), size: new Array<number>(9).fill(SIZES.length) };
  for (const o of scene.objects) {
    out.shape[o.cell] = SHAPES.indexOf(o.shape);
    out.colour[o.cell] = COLOURS.indexOf(o.colour);
    out.size[o.cell] = SIZES.indexOf(o.size);
  }
  return out;
}

export async function pretrainVision(sw: ShapesWorld, o: VisionPretrainOptions): Promise<{ vision: VisionEncoder; losses: number[]; retrievalR1: number; cellShapeAcc?: number }> {
  const log = o.log ?? (() => {});
  const size = sw.imageShape[0];
  manualSeed(o.seed);
  const vision = new VisionEncoder(shapesVisionConfig(size));
  const d = vision.config.hiddenSize;
  const tok = sw.tokenizer;
  const maxLen = 48;
  const text = new TextTower(tok.vocabSize, maxLen, 128, 2, 4, 128);
  const vproj = new VisionProjection(d, 128);
  const dense = o.dense ?? 0;
  const grid = size / vision.config.patchSize;
  const heads = dense > 0 ? new CellHeads(d, grid, { shape: SHAPES.length + 1, colour: COLOURS.length + 1, size: SIZES.length + 1 }) : undefined;
  const layer = vision.config.numLayers - 1; // the penultimate layer: what projectors read by default
  const pairs = sw.retrieval('train');
  const labels = dense > 0 ? pairs.map((p) => cellLabels(p.scene)) : [];
  const cellLogits = (out: { hiddenStates: tf.Tensor3D[] }) => {
    const h = out.hiddenStates[layer]!;
    const [B, , dd] = h.shape;
    return heads!.forward(tf.slice(h, [0, 1, 0], [B, grid * grid, dd]) as tf.Tensor3D);
  };
  const cellLoss = (logits: ReturnType<typeof cellLogits>, idx: number[]): tf.Scalar => {
    const ce = (key: 'shape' | 'colour' | 'size', k: number) =>
      tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(idx.flatMap((i) => labels[i]![key]), 'int32'), k), logits[key]);
    return tf.div(tf.addN([ce('shape', SHAPES.length + 1), ce('colour', COLOURS.length + 1), ce('size', SIZES.length + 1)]), 3) as tf.Scalar;
  };
  const encodeText = (s: string): number[] => [...tok.encode(s)].slice(0, maxLen);
  const rng = new Rng(o.seed + 2);
  const images = pairs.map((p) => sw.renderImage(p.scene));
  const texts = pairs.map((p) => encodeText(p.text));
  log(`vision: ${vision.countParameters().toLocaleString()} parameters, ${pairs.length} image-caption pairs`);
  const prefixed = (prefix: string, m: { namedTrainableParameters(): [string, Parameter][] }) => m.namedTrainableParameters().map(([n, p]) => [`${prefix}.${n}`, p] as [string, Parameter]);
  const named = [...vision.namedTrainableParameters(), ...prefixed('text', text), ...prefixed('vproj', vproj), ...(heads ? prefixed('cells', heads) : [])];
  log(`vision objectives: contrastive captions${dense > 0 ? ` + ${dense} x per-cell shape/colour/size on layer ${layer}'s patch tokens` : ''}`);
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
      const out = vision.forward(px);
      const img = vproj.proj.forward(out.pooled) as tf.Tensor2D;
      const txt = text.forward(padRight(idx.map((i) => texts[i]!), tok.padId), tok.padId);
      const clip = symmetricInfoNCE(img, txt, tf.exp(tf.minimum(vproj.logitScale.value, Math.log(100))));
      return dense > 0 ? (tf.add(clip, tf.mul(cellLoss(cellLogits(out), idx), dense)) as tf.Scalar) : clip;
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
  // per-cell shape accuracy on occupied cells of held-out images (read by the dense head when trained)
  let cellShapeAcc: number | undefined;
  if (heads) {
    cellShapeAcc = tf.tidy(() => {
      const out = vision.forward(pixelsTensor(val.map((p) => sw.renderImage(p.scene)), size));
      const pred = tf.argMax(cellLogits(out).shape, 1).dataSync();
      const gold = val.flatMap((p) => cellLabels(p.scene).shape);
      let hit = 0, n = 0;
      gold.forEach((g, i) => { if (g < SHAPES.length) { n++; hit += pred[i] === g ? 1 : 0; } });
      return hit / n;
    });
    log(`vision: held-out per-cell shape accuracy ${(100 * cellShapeAcc).toFixed(1)}% (occupied cells; chance ${(100 / SHAPES.length).toFixed(1)}%)`);
  }
  text.dispose();
  vproj.dispose();
  heads?.dispose();
  return { vision, losses, retrievalR1: r1, cellShapeAcc };
}
