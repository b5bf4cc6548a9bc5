/**
 * The run config: one YAML file describes a run (base models, method, data, optimisation).
 * Defaults and help text live in the schema; `adaptorkit train cfg.yaml --set train.steps=50`
 * overrides any key.
 */
import { z } from 'zod';
import { BACKEND_PREFERENCES } from '@adaptorkit/core';

export const TASKS = ['vqa', 'grounding', 'caption', 'instruct', 'common', 'retrieval', 'text'] as const;
export type TrainTask = (typeof TASKS)[number];

export const TrainSchema = z
  .strictObject({
    steps: z.number().int().positive().default(300).describe('Optimizer steps.'),
    batchSize: z.number().int().positive().default(16).describe('Examples per micro-batch.'),
    accumulation: z.number().int().positive().default(1).describe('Micro-batches per optimizer step.'),
    lr: z.number().positive().default(1e-3).describe('Peak learning rate.'),
    warmupSteps: z.number().int().min(0).default(20),
    schedule: z.enum(['cosine', 'linear', 'constant']).default('cosine'),
    minLrRatio: z.number().min(0).max(1).default(0.1).describe('Final lr as a fraction of the peak.'),
    weightDecay: z.number().min(0).default(0).describe('Decoupled weight decay (not applied to biases and 1-D tensors).'),
    betas: z
      .tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)])
      .default([0.9, 0.999])
      .describe("AdamW's moment decays (beta1, beta2), each in [0, 1)."),
    clipNorm: z.number().positive().optional().describe('Clip gradients to this global norm.'),
    evalEvery: z.number().int().min(0).default(0).describe('Evaluate on the val split every N steps (0 = only at the end).'),
    saveEvery: z.number().int().min(0).default(100).describe('Checkpoint every N steps (0 = only at the end).'),
    keepCheckpoints: z.number().int().min(0).default(3).describe('Keep the newest N checkpoints (0 = keep all).'),
    recompute: z
      .enum(['none', 'layers'])
      .default('none')
      .describe("'layers': recompute each base LM decoder layer's activations in the backward pass (only its input is kept), so activation memory grows with one layer; same gradients, about one extra forward of compute."),
  })
  .prefault({});

export const DataSchema = z
  .strictObject({
    source: z.enum(['shapesworld', 'llava']).default('shapesworld'),
    task: z.enum(TASKS).default('vqa').describe('ShapesWorld task to train on and score (LLaVA data: any; the file is the task).'),
    worldSeed: z.number().int().min(0).default(0).describe('ShapesWorld seed (same seed, same data).'),
    trainExamples: z.number().int().positive().optional().describe('Use only the first N training examples.'),
    textReplay: z
      .number()
      .min(0)
      .max(0.9)
      .default(0)
      .describe("Fraction of training rows that are lines of the base LM's own pretraining text (loss on every token): rehearsal that keeps the text path near the base when adaptors also act on text (MMA)."),
    evalExamples: z.number().int().positive().default(200).describe('Examples scored at each evaluation.'),
    textEvalExamples: z.number().int().positive().default(200).describe('Held-out corpus lines (perplexity) and text questions scored for the text skill.'),
    template: z
      .enum(['auto', 'model', 'llava_v1', 'plain'])
      .default('auto')
      .describe("How LLaVA-format conversations become text: 'model' = the LM's own chat template (tokenizer_config.json), the image placeholder inside the user turn; 'llava_v1' = LLaVA's 'USER: ... ASSISTANT: ...' with the Vicuna system line; 'plain' = turns one after another (LLaVA pretraining); 'auto' = 'model' when the tokenizer has a chat template, else 'llava_v1'. The loss covers assistant turns only."),
    maxLength: z.number().int().positive().optional().describe("Longest training sequence in tokens, image tokens included (default: the LM's context, max_position_embeddings)."),
    onTooLong: z
      .enum(['fail', 'skip', 'truncate'])
      .default('fail')
      .describe("A record longer than maxLength: 'fail' stops before training, naming it and how many there are; 'skip' drops it; 'truncate' cuts it to maxLength (dropped instead when that would cut its image or every trained token). Counted in run.json."),
    llava: z
      .strictObject({
        json: z.string().describe('LLaVA-format instruction file (.json array or .jsonl), relative to the config file.'),
        imageRoot: z.string().describe('Folder the image paths are relative to (relative to the config file; paths cannot escape it).'),
        checkImages: z
          .enum(['decode', 'header', 'exists'])
          .default('decode')
          .describe("How each record's image is checked when the file is read, before training: 'decode' decodes it, 'header' reads its header, 'exists' stats it. A bad one follows onError and names the record."),
        evalJson: z.string().optional().describe('Separate file for val/test (default: hold out the last `heldOut` records of json).'),
        heldOut: z.number().int().positive().default(100).describe('Records held out of json for val + test when there is no evalJson.'),
        onError: z.enum(['skip', 'fail']).default('fail').describe("A bad record: 'fail' stops naming it, 'skip' drops it with a log line."),
        imageTokenId: z.number().int().min(0).optional().describe("Id the <image> placeholder becomes (default: the tokenizer's <image> token)."),
        normalize: z.enum(['clip', 'siglip', 'imagenet', 'none']).optional().describe('Pixel normalisation (default: by the vision encoder kind).'),
        cacheImages: z.number().int().positive().default(4096).describe('Decoded images kept in memory.'),
      })
      .optional(),
  })
  .prefault({});

/** A name that becomes one folder: letters, digits, dot, dash, underscore; never '.', '..' (or only dots). */
export const SafeName = z
  .string()
  .regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, dot, dash and underscore (it names a folder)')
  .refine((s) => !/^\.+$/.test(s), { message: "'.' and '..' are not names: use letters or digits too (it names a folder inside outputDir)" });

export const RunConfigSchema = z.strictObject({
  name: SafeName.describe('Run name; the run folder is <outputDir>/<name>.'),
  seed: z.number().int().min(0).default(0),
  backend: z.enum(BACKEND_PREFERENCES as unknown as ['auto', ...string[]]).default('auto'),
  outputDir: z.string().default('runs').describe('Folder of run folders (relative to the config file when written in it; default ./runs of the working directory).'),
  base: z
    .strictObject({
      lm: z.string().default('shapesworld').describe("'shapesworld' (the shipped ShapesWorld LM), 'shapesworld-sceneqa' (the shipped LM that also answers VQA from a caption) or a local HF model folder (relative to the config file)."),
      vision: z.string().default('shapesworld').describe("'shapesworld' (the shipped ShapesWorld vision encoder), 'shapesworld-sceneqa' (the shipped encoder trained with a per-cell loss) or a local HF CLIP/SigLIP folder (relative to the config file)."),
      weightsDtype: z
        .enum(['f32', 'bf16'])
        .default('f32')
        .describe("How the frozen base LM's Linear/Embedding weights are held: 'f32' (upcast at load) or 'bf16' (a BF16 checkpoint's bits kept as they are: half the memory, products through block-converting kernels; native backend only, refused elsewhere). Trainable weights are float32 either way."),
    })
    .prefault({}),
  method: z.strictObject({
    name: z.string().describe('A method from the trainer registry (see `adaptorkit methods`).'),
    config: z.record(z.string(), z.unknown()).default({}).describe("The method's own config (validated by its schema)."),
  }),
  data: DataSchema,
  train: TrainSchema,
});

export type RunConfig = z.infer<typeof RunConfigSchema>;
export type TrainConfig = z.infer<typeof TrainSchema>;

/** `adaptorkit pretrain [config.yaml]`: the ShapesWorld bases the examples freeze. */
export const PretrainConfigSchema = z
  .strictObject({
    seed: z.number().int().min(0).default(0).describe('ShapesWorld seed and init seed.'),
    backend: z.enum(BACKEND_PREFERENCES as unknown as ['auto', ...string[]]).default('auto'),
    out: z.string().optional().describe("Output folder holding lm/ and vision/ (default: the shipped packages/shapes-bases/models/shapesworld)."),
    only: z.enum(['lm', 'vision']).optional().describe('Train only one of the two.'),
    lm: z
      .strictObject({
        steps: z.number().int().positive().default(1200),
        batchSize: z.number().int().positive().default(16),
        seqLen: z.number().int().positive().default(64),
        lr: z.number().positive().default(3e-3),
        sceneQA: z.number().int().min(0).default(0).describe('Scene-QA examples (a caption and a VQA question about it -> the answer) for an answer-only loss added to every LM step (0, the shipped LM: none).'),
        sceneQALines: z.number().int().min(0).default(0).describe('Scene-QA lines interleaved with the corpus in the next-token stream (0, the shipped LM: none).'),
      })
      .prefault({}),
    vision: z
      .strictObject({
        steps: z.number().int().positive().default(320),
        batchSize: z.number().int().positive().default(64),
        lr: z.number().positive().default(2e-3),
        dense: z.number().min(0).default(0).describe('Weight of a per-cell shape/colour/size loss on the penultimate patch tokens (0, the shipped encoder: contrastive captions only).'),
      })
      .prefault({}),
  });

export type PretrainConfig = z.infer<typeof PretrainConfigSchema>;
