/**
 * IaaModel: two workflows over one frozen LLM (spec/iaa.md).
 *   text  (task 'text'): exactly the base CausalLM: embed -> F_0..F_{M-1} -> norm -> head.
 *   multimodal (task = a task set): the set's embedding copy with projected image features spliced
 *     at the placeholders -> F_0..F_{M-1}, with insertion layer I_k run right after F_{S[k]} (its
 *     output replaces h) -> the set's norm -> the set's head.
 * Only the task sets' parameters train; the LLM and the vision tower are frozen at attach.
 */
import {
  AdaptorkitError,
  KVCache,
  Module,
  Rng,
  formatShape,
  manualSeed,
  ignoreTokens,
  sequenceNll,
  leftPadRows,
  padKeyMask,
  maskedCrossEntropy,
  spliceFeatures,
  tf,
  type CausalLM,
  type ForwardContext,
  type Linear,
  type Parameter,
  type VisionEncoder,
} from '@adaptorkit/core';
import { parseIaaConfig, projectorDepth, resolveDepths, TEXT_TASK, type IaaConfig, type IaaConfigInput } from './config.js';
import { sampleNext, type SamplingOptions } from './sampling.js';
import { IaaTaskSet } from './task-set.js';

/** The frozen base an IAA model is attached to. */
export interface IaaBase {
  lm: CausalLM;
  vision: VisionEncoder;
  /** Image placeholder token id (overrides config.imageTokenId). */
  imageTokenId?: number;
}

export interface IaaForwardInput {
  /** int32 [B, T] token ids; each image is already expanded to N placeholder ids. */
  ids: tf.Tensor;
  /** 'text' (the base LLM) or a task set name ('mm', 'grounding', ...). */
  task: string;
  /** Normalised pixels NHWC [B, H, W, 3], one image per row (rows without placeholders ignore theirs). */
  images?: tf.Tensor;
  /** Precomputed frozen vision features [B, N, dv] (from encodeImages), instead of `images`. */
  imageFeatures?: tf.Tensor;
  /** Keys/values of both the frozen and the insertion layers (from createCache(task)). */
  cache?: IaaCache;
  /** Position of the first token (default: cache length, else 0). */
  positionOffset?: number;
  /** Extra additive attention mask broadcastable to [B, H, T, S], given to every layer. */
  mask?: tf.Tensor;
  /** Return lastHidden only. */
  skipHead?: boolean;
  ctx?: ForwardContext;
}

export interface IaaForwardOutput {
  /** [B, T, V] unless skipHead. */
  logits?: tf.Tensor3D;
  /** After the workflow's final norm: [B, T, d]. */
  lastHidden: tf.Tensor3D;
}

/** A training / evaluation batch. */
export interface IaaBatch extends Omit<IaaForwardInput, 'cache' | 'skipHead' | 'positionOffset'> {
  /** int32 [B, T]; IGNORE_INDEX (-100) where no loss (see answerLabels). Image positions are always ignored. */
  labels: tf.Tensor;
}

export interface IaaGenerateOptions extends SamplingOptions {
  /** int32 [B, T], or rows of ids of any lengths (left-padded with padId and masked). */
  ids: tf.Tensor | number[][];
  /** Fill id for left padding of ragged prompts (default 0; pad keys are masked, so any id works). */
  padId?: number;
  task: string;
  images?: tf.Tensor;
  imageFeatures?: tf.Tensor;
  maxNewTokens: number;
  /** Stop a row at this token (not included in the output). */
  eosId?: number;
  /** Token ids never generated (default: the image placeholder). */
  suppressTokens?: number[];
}

/** KV caches of one generation: the frozen layers' (CausalLM.createCache) and the insertion layers'. */
export class IaaCache {
  constructor(
    readonly task: string,
    readonly frozen: KVCache,
    readonly inserted: KVCache,
  ) {}
  /** Number of cached positions. */
  get length(): number {
    return this.frozen.length;
  }
  dispose(): void {
    this.frozen.dispose();
    this.inserted.dispose();
  }
}

/** Trainable-parameter counts of one task set, by part. */
export interface IaaPartCounts {
  insertionLayers: number;
  embedding: number;
  norm: number;
  head: number;
  projector: number;
  total: number;
}

class TaskSets extends Module {}

export class IaaModel extends Module {
  readonly lm: CausalLM;
  readonly vision: VisionEncoder;
  readonly config: IaaConfig;
  /** Resolved insertion depths, sorted: insertion layer k runs after frozen layer depths[k]. */
  readonly depths: readonly number[];
  readonly imageTokenId: number | undefined;
  readonly sets: Module;
  private readonly setsByName = new Map<string, IaaTaskSet>();
  private readonly visionLayer: number;

  constructor(base: IaaBase, config: IaaConfig) {
    super();
    this.lm = this.child('lm', base.lm);
    this.vision = this.child('vision', base.vision);
    this.config = config;
    this.depths = resolveDepths(config.depths, base.lm.numLayers);
    this.imageTokenId = base.imageTokenId ?? config.imageTokenId;
    const nh = base.vision.numLayers + 1; // hidden states: embeddings + one per layer
    this.visionLayer = config.visionFeatureLayer < 0 ? nh + config.visionFeatureLayer : config.visionFeatureLayer;
    if (this.visionLayer < 0 || this.visionLayer >= nh) {
      throw new AdaptorkitError(
        'INVALID_CONFIG',
        `iaa config: visionFeatureLayer: ${config.visionFeatureLayer} is outside the vision tower's ${nh} hidden states (-${nh}..${nh - 1})`,
      );
    }
    this.sets = this.child('sets', new TaskSets());
    const shape = { visionDim: base.vision.config.hiddenSize, numInserted: this.depths.length, projectorDepth: projectorDepth(config.projector) };
    for (const name of config.tasks) {
      manualSeed(config.seed + 1000 * this.setsByName.size);
      const set = this.sets.addChild(name, new IaaTaskSet(base.lm, shape));
      this.setsByName.set(name, set);
      initTaskSet(set, base.lm, this.depths, config.init);
    }
    // Freeze everything, then mark trainable by walking the IAA modules.
    this.freeze();
    for (const set of this.setsByName.values()) {
      if (config.train.insertionLayers) set.layers.unfreeze();
      if (config.train.embedding) set.embed_tokens.unfreeze();
      if (config.train.norm) set.norm.unfreeze();
      if (config.train.head) set.lm_head.unfreeze();
      if (config.train.projector) set.mm_projector.unfreeze();
    }
  }

  /** Task set names, in config order. */
  get taskNames(): string[] {
    return [...this.setsByName.keys()];
  }

  /** Number of features one image contributes (placeholders to expand each image into). */
  get imageTokens(): number {
    const n = this.vision.numTokens;
    return this.config.visionFeatureSelect === 'patch' && this.vision.config.kind === 'clip' ? n - 1 : n;
  }

  taskSet(task: string): IaaTaskSet {
    const s = this.setsByName.get(task);
    if (!s) {
      throw new AdaptorkitError('INVALID_ARGUMENT', `iaa: unknown task '${task}': expected '${TEXT_TASK}' or one of the task sets ${this.taskNames.map((t) => `'${t}'`).join(', ')}`);
    }
    return s;
  }

  /** The IAA modules: every task set, or one. */
  private setsFor(task?: string): IaaTaskSet[] {
    return task === undefined ? [...this.setsByName.values()] : [this.taskSet(task)];
  }

  /** Trainable IAA parameters with their paths (`sets.mm.layers.0...`), found by walking the task sets. */
  namedIaaParameters(task?: string): [string, Parameter][] {
    return this.setsFor(task).flatMap((s) => {
      const name = [...this.setsByName].find(([, v]) => v === s)![0];
      return s.namedParameters(`sets.${name}`).filter(([, p]) => p.trainable);
    });
  }

  /** The explicit trainable list for the optimizer (all task sets, or one). */
  iaaParameters(task?: string): Parameter[] {
    return this.namedIaaParameters(task).map(([, p]) => p);
  }

  /** A checkpoint of the trainable IAA weights (stored layout; the tensors belong to the model). */
  iaaStateDict(task?: string): Map<string, tf.Tensor> {
    return new Map(this.namedIaaParameters(task).map(([n, p]) => [n, p.value]));
  }

  /** Trainable parameters per part of one task set (works in shape-only mode). */
  countIaaParameters(task: string): IaaPartCounts {
    const s = this.taskSet(task);
    const c = (m: Module): number => m.countParameters({ trainable: true });
    const parts = { insertionLayers: c(s.layers), embedding: c(s.embed_tokens), norm: c(s.norm), head: c(s.lm_head), projector: c(s.mm_projector) };
    return { ...parts, total: parts.insertionLayers + parts.embedding + parts.norm + parts.head + parts.projector };
  }

  /** Frozen vision features for the projector: pixels [B, H, W, 3] -> [B, N, dv]. */
  encodeImages(pixels: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      const out = this.vision.forward(pixels);
      let f = out.hiddenStates[this.visionLayer]!; // [B, N(+1), dv]
      if (this.config.visionFeatureSelect === 'patch' && this.vision.config.kind === 'clip') {
        const [B, n, dv] = f.shape;
        f = tf.slice(f, [0, 1, 0], [B, n - 1, dv]); // drop the class token: [B, N, dv]
      }
      return f;
    });
  }

  /** Create the caches for a generation in `task`'s workflow. */
  createCache(task: string): IaaCache {
    if (task !== TEXT_TASK) this.taskSet(task); // throws for an unknown task
    return new IaaCache(task, this.lm.createCache(), new KVCache(task === TEXT_TASK ? 0 : this.depths.length));
  }

  forward(input: IaaForwardInput): IaaForwardOutput {
    const { ids, task } = input;
    if (ids.rank !== 2 || ids.dtype !== 'int32') {
      throw new AdaptorkitError('SHAPE_MISMATCH', `iaa forward: ids must be int32 [B, T], got ${ids.dtype} ${formatShape(ids.shape)}`);
    }
    if (input.cache && input.cache.task !== task) {
      throw new AdaptorkitError('INVALID_ARGUMENT', `iaa forward: the cache was made for task '${input.cache.task}', not '${task}'`);
    }
    if (task === TEXT_TASK) {
      if (input.images || input.imageFeatures) {
        throw new AdaptorkitError('INVALID_ARGUMENT', `iaa forward: task '${TEXT_TASK}' is the text-only workflow and takes no images; use a task set (${this.taskNames.join(', ')})`);
      }
      // Exactly the base model.
      const out = this.lm.forward({ ids, cache: input.cache?.frozen, positionOffset: input.positionOffset, mask: input.mask, skipHead: input.skipHead, ctx: input.ctx });
      return { logits: out.logits, lastHidden: out.lastHidden };
    }
    const set = this.taskSet(task);
    return tf.tidy(() => {
      const [, T] = ids.shape as [number, number];
      let h = this.lm.scaleEmbeddings(set.embed_tokens.forward(ids)); // [B, T, d] (Gemma: x sqrt(d), as the base)
      h = this.spliceImages(set, h, ids, input);
      const offset = input.positionOffset ?? input.cache?.length ?? 0;
      const rope = this.lm.rope(offset, T);
      h = this.runStack(set, h, { rope, cache: input.cache, mask: input.mask, ctx: input.ctx }); // [B, T, d]
      const lastHidden = set.norm.forward(h) as tf.Tensor3D;
      const out: IaaForwardOutput = { lastHidden };
      if (!input.skipHead) out.logits = this.lm.softcapLogits(set.lm_head.forward(lastHidden)) as tf.Tensor3D; // [B, T, V] (gemma2: soft-capped as the base)
      return out as unknown as tf.TensorContainer;
    }) as unknown as IaaForwardOutput;
  }

  /** Multimodal logits [B, T, V] or text logits (task 'text'). */
  logits(ids: tf.Tensor, task: string, images?: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => this.forward({ ids, task, images }).logits!);
  }

  /** Masked next-token cross entropy of a batch (labels: answer-only, see answerLabels; image positions are ignored here too). */
  loss(batch: IaaBatch): tf.Scalar {
    const { labels, ...input } = batch;
    // image placeholder positions carry features, never targets
    return tf.tidy(() => maskedCrossEntropy(this.forward(input).logits!, ignoreTokens(labels, batch.ids, this.imageTokenId)));
  }

  /**
   * Perplexity of `ids` under one workflow (default the text workflow = the base LLM): exp of the
   * mean next-token NLL over all positions but the first, skipping `padId`.
   */
  perplexity(ids: tf.Tensor, opts: { task?: string; padId?: number } = {}): { nll: number; perplexity: number; tokens: number } {
    const task = opts.task ?? TEXT_TASK;
    const logits = tf.tidy(() => this.forward({ ids, task }).logits!); // [B, T, V]
    try {
      return sequenceNll(logits, ids, opts.padId);
    } finally {
      logits.dispose();
    }
  }

  /**
   * Decode up to maxNewTokens per row with KV caches (frozen layers: CausalLM.createCache;
   * insertion layers: their own slots). Greedy unless temperature > 0. Returns the new tokens of
   * each row, stopping before eosId.
   */
  generate(opts: IaaGenerateOptions): number[][] {
    if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 0) {
      throw new AdaptorkitError('INVALID_ARGUMENT', `iaa generate: maxNewTokens must be a non-negative integer, got ${opts.maxNewTokens}`);
    }
    const { ids, pads } = leftPadRows(opts.ids, opts.padId ?? 0, 'iaa generate');
    const B = pads.length;
    const outs: number[][] = Array.from({ length: B }, () => []);
    if (opts.maxNewTokens === 0) {
      if (ids !== opts.ids) ids.dispose();
      return outs;
    }
    const suppress = opts.suppressTokens ?? (this.imageTokenId !== undefined ? [this.imageTokenId] : []);
    const rng = new Rng(opts.seed ?? 0);
    const cache = this.createCache(opts.task);
    const done = new Array<boolean>(B).fill(false);
    // Left padding: pad keys are masked out; RoPE scores depend on relative positions only, so a
    // padded row attends exactly like the unpadded prompt (up to float rounding).
    const padded = pads.some((p) => p > 0);
    const keyMask = (S: number): tf.Tensor | undefined => (padded ? padKeyMask(pads, S) : undefined);
    try {
      const T = ids.shape[1]!;
      let mask = keyMask(T);
      let last = this.lastLogits({ ids, task: opts.task, images: opts.images, imageFeatures: opts.imageFeatures, cache, mask });
      mask?.dispose();
      for (let step = 0; ; step++) {
        const rows = last.dataSync() as Float32Array; // [B * V]
        last.dispose();
        const V = rows.length / B;
        const next = new Int32Array(B);
        for (let b = 0; b < B; b++) {
          const tok = sampleNext(rows.subarray(b * V, (b + 1) * V), opts, rng, suppress);
          next[b] = done[b] ? (opts.eosId ?? tok) : tok;
          if (done[b]) continue;
          if (opts.eosId !== undefined && tok === opts.eosId) done[b] = true;
          else outs[b]!.push(tok);
        }
        if (done.every(Boolean) || step === opts.maxNewTokens - 1) break;
        const stepIds = tf.tensor2d(next, [B, 1], 'int32');
        mask = keyMask(cache.length + 1);
        last = this.lastLogits({ ids: stepIds, task: opts.task, cache, mask });
        mask?.dispose();
        stepIds.dispose();
      }
    } finally {
      cache.dispose();
      if (ids !== opts.ids) ids.dispose();
    }
    return outs;
  }

  /** Logits of the last position only: [B, V] (the head runs on one position). */
  private lastLogits(input: IaaForwardInput): tf.Tensor2D {
    return tf.tidy(() => {
      const { lastHidden } = this.forward({ ...input, skipHead: true }); // [B, T, d]
      const [B, T, d] = lastHidden.shape;
      const h = tf.slice(lastHidden, [0, T - 1, 0], [B, 1, d]); // [B, 1, d]
      const logits = input.task === TEXT_TASK ? this.lm.head(h) : (this.lm.softcapLogits(this.taskSet(input.task).lm_head.forward(h)) as tf.Tensor3D); // [B, 1, V]
      return tf.reshape(logits, [B, logits.shape[2]]) as tf.Tensor2D;
    });
  }

  private spliceImages(set: IaaTaskSet, h: tf.Tensor3D, ids: tf.Tensor, input: IaaForwardInput): tf.Tensor3D {
    const { images, imageFeatures } = input;
    const flat = ids.dataSync() as Int32Array;
    const tok = this.imageTokenId;
    const hasPlaceholder = tok !== undefined && flat.includes(tok);
    if (!images && !imageFeatures) {
      if (hasPlaceholder) {
        throw new AdaptorkitError('INVALID_ARGUMENT', `iaa forward: ids hold image placeholders (id ${tok}) but no images or imageFeatures were given`);
      }
      return h;
    }
    if (tok === undefined) {
      throw new AdaptorkitError('INVALID_CONFIG', 'iaa: images were given but no imageTokenId is set: set config.imageTokenId or pass imageTokenId to attachIaa');
    }
    const feats = imageFeatures ?? this.encodeImages(images!); // [B, N, dv]
    if (feats.rank !== 3 || feats.shape[2] !== set.mm_projector.inDim) {
      throw new AdaptorkitError('SHAPE_MISMATCH', `iaa forward: imageFeatures must be [B, N, ${set.mm_projector.inDim}], got ${formatShape(feats.shape)}`);
    }
    const projected = set.mm_projector.forward(feats); // [B, N, d]
    return tf.tidy(() => spliceFeatures(h, flat, tok, projected));
  }

  /** F_0..F_{M-1} with insertion layer k after F_{depths[k]}. h [B, T, d] -> [B, T, d]. */
  private runStack(
    set: IaaTaskSet,
    h0: tf.Tensor3D,
    o: { rope: { cos: tf.Tensor; sin: tf.Tensor }; cache?: IaaCache; mask?: tf.Tensor; ctx?: ForwardContext },
  ): tf.Tensor3D {
    let h = h0;
    let start = 0;
    const run = { rope: o.rope, cache: o.cache?.frozen, mask: o.mask, ctx: o.ctx };
    this.depths.forEach((i, k) => {
      h = this.lm.runLayers(h, start, i + 1, run); // frozen F_start..F_i
      h = set.layers.at(k).forward(h, { rope: o.rope, causal: true, mask: o.mask, cache: o.cache?.inserted.slots[k], ctx: o.ctx }) as tf.Tensor3D; // I_k
      start = i + 1;
    });
    return this.lm.runLayers(h, start, this.lm.numLayers, run);
  }
}

/** Initialise a task set from the base: embedding/norm/head copies; insertion layers per `init`. */
function initTaskSet(set: IaaTaskSet, lm: CausalLM, depths: readonly number[], init: IaaConfig['init']): void {
  const base = lm.model;
  copyInto(set.embed_tokens, base.embed_tokens, 'model.embed_tokens');
  copyInto(set.norm, base.norm, 'model.norm');
  if (lm.lm_head) copyInto(set.lm_head, lm.lm_head, 'lm_head');
  else if (base.embed_tokens.weight.allocated) {
    // tied base: the head is the embedding, [V, d] -> stored [d, V]
    tf.tidy(() => set.lm_head.weight.assign(tf.transpose(base.embed_tokens.weight.value), 'lm_head.weight'));
  }
  if (init === 'random') return;
  depths.forEach((i, k) => {
    const layer = set.layers.at(k);
    copyInto(layer, base.layers.at(i), `model.layers.${i}`);
    if (init === 'identity') {
      const zero = (l: Linear): void => {
        for (const p of [l.weight, l.bias]) if (p?.allocated) tf.tidy(() => p.assign(tf.zerosLike(p.value)));
      };
      zero(layer.self_attn.getChild<Linear>(layer.self_attn.outName));
      zero(layer.mlp.getChild<Linear>('down_proj'));
    }
  });
}

/** Copy every parameter of `dst` from the same path in `src` (tfjs tensors are immutable, so sharing the buffer until the first update is safe). */
function copyInto(dst: Module, src: Module, srcPath: string): void {
  const from = new Map(src.namedParameters());
  for (const [name, p] of dst.namedParameters()) {
    const q = from.get(name);
    if (!q) {
      throw new AdaptorkitError('MISSING_TENSOR', `iaa copy init: the base has no '${srcPath}.${name}' to copy (was the base changed by another method?)`);
    }
    if (!p.allocated || !q.allocated) continue; // shape-only planning
    p.assign(q.value, `${srcPath}.${name}`);
  }
}

/** Attach IAA to a frozen LLM + vision tower: freezes them and returns the two-workflow model. */
export function attachIaa(base: IaaBase, config: IaaConfigInput | IaaConfig = {}): IaaModel {
  return new IaaModel(base, parseIaaConfig(config));
}
