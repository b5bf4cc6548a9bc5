/**
 * ShapesWorld: config (zod), rendering of inputs, and generation of the default splits.
 * Every (task, split) draws from its own stream, seeded by (seed, task, split), so changing one
 * split's size never changes another split's data, and the same seed gives byte-identical data.
 */
import { z } from 'zod';
import { AdaptorkitError, Rng } from '@adaptorkit/core';
import type { WordTokenizer } from '../tokenizer.js';
import { renderImage, renderPoints, renderSound } from './render.js';
import { sampleCorpus, shapesWorldTokenizer } from './text.js';
import { sampleRetrieval, sampleSceneQA, sampleTask, TASK_NAMES, type Example, type ModalityInput, type RetrievalPair, type SceneQA, type TaskName } from './tasks.js';
import { deriveSeed, type Scene } from './world.js';

export type Split = 'train' | 'val' | 'test';
export const SPLITS: readonly Split[] = ['train', 'val', 'test'];

const splitSizes = (train: number, val: number, test: number) =>
  z.object({
    train: z.number().int().min(0).default(train),
    val: z.number().int().min(0).default(val),
    test: z.number().int().min(0).default(test),
  }).prefault({});

export const ShapesWorldConfigSchema = z.object({
  seed: z.number().int().min(0).max(0xffffffff).default(0).describe('Seed for everything; same seed -> byte-identical data.'),
  image: z.object({
    size: z.number().int().min(8).max(1024).default(32).describe('Canvas side in pixels (images are [size, size, 3]).'),
    noise: z.number().min(0).max(1).default(0.03).describe('Std of Gaussian pixel noise.'),
    clutter: z.number().min(0).max(1).default(0.5).describe('Strength of neutral background clutter (0 = none).'),
  }).prefault({}),
  sound: z.object({
    length: z.number().int().min(16).default(256).describe('Samples per sound signal ([length]).'),
    noise: z.number().min(0).max(1).default(0.05).describe('Std of additive noise.'),
  }).prefault({}),
  points: z.object({
    count: z.number().int().min(4).default(64).describe('Points per point set ([count, 2]).'),
    jitter: z.number().min(0).max(0.1).default(0.004).describe('Std of point jitter (unit coordinates).'),
  }).prefault({}),
  sizes: z.object({
    caption: splitSizes(3000, 300, 500),
    vqa: splitSizes(6000, 500, 1000),
    grounding: splitSizes(3000, 300, 500),
    common: splitSizes(3000, 300, 500),
    instruct: splitSizes(4000, 400, 800),
    text: splitSizes(3000, 300, 500),
    retrieval: splitSizes(3000, 300, 500),
    corpus: z.object({
      train: z.number().int().min(0).default(20000),
      heldout: z.number().int().min(0).default(2000),
    }).prefault({}),
  }).prefault({}).describe('Examples per split, per task.'),
});

export type ShapesWorldConfig = z.infer<typeof ShapesWorldConfigSchema>;
export type ShapesWorldOptions = z.input<typeof ShapesWorldConfigSchema>;

export interface TaskSplits<T> {
  train: T[];
  val: T[];
  test: T[];
}

export interface ShapesWorldData {
  config: ShapesWorldConfig;
  tasks: Record<TaskName, TaskSplits<Example>>;
  retrieval: TaskSplits<RetrievalPair>;
  corpus: { train: string[]; heldout: string[] };
}

const STREAM_CORPUS = 100;
const STREAM_RETRIEVAL = 101;
const STREAM_SCENE_QA = 102;

export class ShapesWorld {
  readonly config: ShapesWorldConfig;
  readonly tokenizer: WordTokenizer;

  constructor(options: ShapesWorldOptions = {}) {
    const parsed = ShapesWorldConfigSchema.safeParse(options);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const path = issue?.path.join('.') ?? '';
      throw new AdaptorkitError('INVALID_CONFIG', `ShapesWorld config: ${path || '(root)'}: ${issue?.message ?? 'invalid'}`);
    }
    this.config = parsed.data;
    this.tokenizer = shapesWorldTokenizer();
  }

  /** [H, W, 3] */
  get imageShape(): [number, number, number] {
    return [this.config.image.size, this.config.image.size, 3];
  }
  /** [L] */
  get soundShape(): [number] {
    return [this.config.sound.length];
  }
  /** [N, 2] */
  get pointsShape(): [number, number] {
    return [this.config.points.count, 2];
  }

  /** [H, W, 3] in 0..1 */
  renderImage(scene: Scene): Float32Array {
    return renderImage(scene, this.config.image);
  }
  /** [L] */
  renderSound(scene: Scene): Float32Array {
    return renderSound(scene, this.config.sound);
  }
  /** [N, 2] */
  renderPoints(scene: Scene): Float32Array {
    return renderPoints(scene, this.config.points);
  }
  /** The tensor form of one input, by its modality. */
  render(input: ModalityInput): Float32Array {
    switch (input.modality) {
      case 'image': return this.renderImage(input.scene);
      case 'sound': return this.renderSound(input.scene);
      case 'points': return this.renderPoints(input.scene);
    }
  }

  /** One split of one task (deterministic in (seed, task, split, n)). */
  task(task: TaskName, split: Split, n?: number): Example[] {
    const count = n ?? this.config.sizes[task][split];
    const rng = new Rng(deriveSeed(this.config.seed, TASK_NAMES.indexOf(task), SPLITS.indexOf(split)));
    return sampleTask(rng, task, count, split);
  }

  retrieval(split: Split, n?: number): RetrievalPair[] {
    const count = n ?? this.config.sizes.retrieval[split];
    return sampleRetrieval(new Rng(deriveSeed(this.config.seed, STREAM_RETRIEVAL, SPLITS.indexOf(split))), count, split);
  }

  /**
   * `n` scene-QA examples (caption + VQA question -> answer, `sampleSceneQA`), from their own
   * random stream: no scene or question is shared with the task splits beyond chance.
   */
  sceneQA(n: number): SceneQA[] {
    const rng = new Rng(deriveSeed(this.config.seed, STREAM_SCENE_QA, 0));
    return Array.from({ length: n }, () => sampleSceneQA(rng));
  }

  /** Pretraining text ('train') or held-out text for perplexity ('heldout'). */
  corpus(split: 'train' | 'heldout', n?: number): string[] {
    const count = n ?? this.config.sizes.corpus[split];
    return sampleCorpus(new Rng(deriveSeed(this.config.seed, STREAM_CORPUS, split === 'train' ? 0 : 1)), count);
  }

  /** Every task's train/val/test split, retrieval pairs and the corpus, at the configured sizes. */
  generate(): ShapesWorldData {
    const tasks = {} as Record<TaskName, TaskSplits<Example>>;
    for (const t of TASK_NAMES) tasks[t] = { train: this.task(t, 'train'), val: this.task(t, 'val'), test: this.task(t, 'test') };
    return {
      config: this.config,
      tasks,
      retrieval: { train: this.retrieval('train'), val: this.retrieval('val'), test: this.retrieval('test') },
      corpus: { train: this.corpus('train'), heldout: this.corpus('heldout') },
    };
  }
}
