/**
 * The frozen base MWA adapts in examples, tests and the trainer: a tiny Multiway Transformer
 * pretrained from scratch, contrastively, every parameter, on ShapesWorld retrieval captions; and
 * its folder format (config.json with the Multiway config under `multiway`, model.safetensors in
 * the same [out, in] layout as HF checkpoints), loaded strictly.
 *
 * The recipe's source: ShapesWorld seed 7 rendered clean (no pixel noise, no clutter), scenes of
 * every size (so every text position and word a downstream caption uses was trained), seen through
 * a warm colour cast (R, G, B gains 1, 0.8, 0.6: another camera's white balance). The default
 * ShapesWorld (seed 0, noise 0.03, clutter 0.5, no cast) is then a shifted image domain that needs
 * no new embeddings. (Measured earlier: noise and clutter alone barely hurt a base, R@1 37 -> 35;
 * a base that saw only 1-2-object scenes cannot read the longer captions' untrained positions.)
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { AdaptorkitError, CheckpointReader, loadWeights, manualSeed, Rng, saveWeights, skipInit, writeTextAtomic } from '@adaptorkit/core';
import type { RetrievalPair, ShapesWorld, ShapesWorldOptions } from '@adaptorkit/data';
import { parseMultiwayConfig, type MultiwayConfig } from './config.js';
import { MultiwayTransformer } from './multiway.js';
import { evaluateRetrieval, trainContrastive, type RetrievalBatch } from './retrieval.js';
import { disposeBatch, shapesWorldMultiwayShape, shapesWorldRetrievalBatch, type ShapesWorldBatchOptions } from './shapesworld.js';

/** The world the ShapesWorld base is pretrained on. */
export const SHAPESWORLD_BASE_WORLD: ShapesWorldOptions = { seed: 7, image: { noise: 0, clutter: 0 } };
/** The base sees scenes with at most this many objects (ShapesWorld draws 1-4: all of them). */
export const SHAPESWORLD_BASE_MAX_OBJECTS = 4;
/** R, G, B gains of every image the base is pretrained on (a warm white balance; downstream has none). */
export const SHAPESWORLD_BASE_COLOUR_GAINS: readonly [number, number, number] = [1, 0.8, 0.6];

/** d 64, 2 layers, 4 heads, per-modality attention, 8-px patches; vocabulary, padding and image size from the world. */
export function shapesWorldBaseConfig(world: ShapesWorld): MultiwayConfig {
  return parseMultiwayConfig({ ...shapesWorldMultiwayShape(world), dim: 64, numLayers: 2, numHeads: 4, maxTextLen: 48, patchSize: 8, sharedAttention: false });
}

/** Batches of `pairs` in epochs, reshuffled every epoch by a seeded generator; disposes the previous batch. */
export function epochSampler(world: ShapesWorld, pairs: readonly RetrievalPair[], batchSize: number, seed: number, batchOpts: ShapesWorldBatchOptions = {}): () => RetrievalBatch {
  const rng = new Rng(seed);
  let order: number[] = [];
  let pos = 0;
  let prev: RetrievalBatch | undefined;
  return () => {
    if (prev) disposeBatch(prev);
    const picked: RetrievalPair[] = [];
    while (picked.length < batchSize) {
      if (pos >= order.length) {
        order = rng.shuffle(pairs.map((_, i) => i));
        pos = 0;
      }
      picked.push(pairs[order[pos++]!]!);
    }
    prev = shapesWorldRetrievalBatch(world, picked, batchOpts); // texts padded to the longest of the batch
    return prev;
  };
}

export interface BasePretrainOptions {
  steps: number;
  batchSize: number;
  lr: number;
  seed: number;
  /** Keep only train pairs whose scene has at most this many objects (default: all). */
  maxObjects?: number;
  /** R, G, B gains applied to every image (train and val); default none. */
  colourGains?: readonly [number, number, number];
  log?: (line: string) => void;
}

/**
 * Pretrain the base from scratch on `world`'s retrieval train split (optionally only scenes of at
 * most `maxObjects` objects, optionally through a colour cast): symmetric InfoNCE with the
 * learnable temperature, every parameter, AdamW (weight decay 0.05 on matrices), 5% warmup then
 * cosine, gradient norm clipped at 1. Returns it with its val R@1 image->text (200 pairs).
 */
export function pretrainShapesWorldBase(world: ShapesWorld, o: BasePretrainOptions): { model: MultiwayTransformer; losses: number[]; valR1: number } {
  const log = o.log ?? (() => {});
  manualSeed(o.seed);
  const model = new MultiwayTransformer(shapesWorldBaseConfig(world));
  const pairs = world.retrieval('train').filter((p) => o.maxObjects === undefined || p.scene.objects.length <= o.maxObjects);
  log(`multiway base: ${model.countParameters().toLocaleString()} parameters, ${pairs.length} image-caption pairs`);
  const t0 = performance.now();
  const { losses } = trainContrastive(model, epochSampler(world, pairs, o.batchSize, o.seed + 1, { colourGains: o.colourGains }), {
    params: model.parameters(),
    steps: o.steps,
    lr: o.lr,
    warmupSteps: Math.round(o.steps * 0.05),
    weightDecay: 0.05,
    maxGradNorm: 1,
    onStep: (step, loss) => {
      const n = step + 1;
      if (n === 1 || n % 50 === 0 || n === o.steps) log(`step ${n}/${o.steps} loss ${loss.toFixed(4)} (${((performance.now() - t0) / n).toFixed(0)} ms/step)`);
    },
  });
  const val = shapesWorldRetrievalBatch(world, world.retrieval('val').filter((p) => o.maxObjects === undefined || p.scene.objects.length <= o.maxObjects).slice(0, 200), { colourGains: o.colourGains });
  try {
    return { model, losses, valR1: evaluateRetrieval(model, val, { batchSize: 100 }).imageToText.r1 };
  } finally {
    disposeBatch(val);
  }
}

/** Write `model` as a folder: config.json (`multiway`: its config, plus `extra`) and model.safetensors. */
export async function saveMultiway(dir: string, model: MultiwayTransformer, extra: Record<string, unknown> = {}): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const config = { architectures: ['AdaptorkitMultiwayTransformer'], model_type: 'adaptorkit_multiway', multiway: model.config, torch_dtype: 'float32', ...extra };
  await writeTextAtomic(path.join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await saveWeights(path.join(dir, 'model.safetensors'), model);
}

/** Load a folder written by saveMultiway; strict: a missing, extra or mis-shaped tensor is an error naming it. */
export async function loadMultiway(dir: string): Promise<MultiwayTransformer> {
  const file = path.join(dir, 'config.json');
  let cfg: { model_type?: string; multiway?: unknown };
  try {
    cfg = JSON.parse(await fs.readFile(file, 'utf8')) as typeof cfg;
  } catch (e) {
    throw new AdaptorkitError('IO_ERROR', `cannot read the Multiway base config ${file}: ${(e as Error).message} (pass a folder written by saveMultiway)`);
  }
  if (cfg.model_type !== 'adaptorkit_multiway' || !cfg.multiway) {
    throw new AdaptorkitError('BAD_FILE', `${file}: not a Multiway base (model_type '${String(cfg.model_type)}', expected 'adaptorkit_multiway' with a 'multiway' config)`);
  }
  const model = skipInit(() => new MultiwayTransformer(parseMultiwayConfig(cfg.multiway)));
  const reader = await CheckpointReader.open(dir);
  try {
    await loadWeights(model, reader, { strict: true });
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    await reader.close();
  }
}
