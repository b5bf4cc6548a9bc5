/**
 * MmaModel: a frozen CausalLM (+ a frozen VisionEncoder) with LaVIN's mixture-of-modality
 * adaptation (spec/mma.md):
 *   - a routed MmaAdapter in every decoder block (slot 'preAttn', 'preMlp' or both) and in every
 *     vision block (slot 'preAttn' = on the first LayerNorm output, routed by the class token);
 *   - visual tokens = the class token after chosen vision blocks, through Linear -> SiLU -> Linear;
 *   - a modality token (row 1 = image, row 0 = text-only of a trainable [2, d] table) prepended at
 *     position 0 of every sequence; no other position attends to it, so its hidden state depends
 *     on the modality only, and per-sample routers read it.
 * Sequences given to forward / loss / generate are WITHOUT the modality token (it is added here);
 * outputs are aligned with the given ids. Only MMA's parameters train.
 */
import {
  AdaptorkitError,
  BottleneckProjector,
  Embedding,
  Module,
  Rng,
  formatShape,
  manualSeed,
  ignoreTokens,
  sequenceNll,
  maskedCrossEntropy,
  spliceFeatures,
  cellPoolMatrix,
  poolTokens,
  tf,
  type CausalLM,
  type ForwardContext,
  type Parameter,
  type VisionEncoder,
} from '@adaptorkit/core';
import { MMA_CTX, MmaAdapter, bypassContext, type MmaAdapterOptions, type MmaRoutingState } from './adapter.js';
import { parseMmaConfig, resolveVisualDepths, type MmaConfig, type MmaConfigInput } from './config.js';
import { generateMma } from './generate.js';
import { IMAGE_MODALITY, modalityMask, TEXT_MODALITY } from './sequence.js';
import type {
  MmaAdapterSite,
  MmaBase,
  MmaBatch,
  MmaForwardInput,
  MmaForwardOutput,
  MmaGenerateOptions,
  MmaGenerateResult,
  MmaLayerRouting,
  MmaPartCounts,
  MmaRoutingReport,
} from './types.js';

export type {
  MmaAdapterSite,
  MmaBase,
  MmaBatch,
  MmaForwardInput,
  MmaForwardOutput,
  MmaGenerateOptions,
  MmaGenerateResult,
  MmaLayerRouting,
  MmaPartCounts,
  MmaRoutingReport,
} from './types.js';

export { IMAGE_MODALITY, modalityMask, TEXT_MODALITY } from './sequence.js';

export class MmaModel extends Module {
  readonly lm: CausalLM;
  readonly vision: VisionEncoder | undefined;
  readonly config: MmaConfig;
  readonly imageTokenId: number | undefined;
  readonly modality_embedding: Embedding;
  readonly projector: BottleneckProjector | undefined;
  /** patchTokens.perCell > 1: the patch tokens' own projection, dv -> perCell * d. */
  readonly patch_projector: BottleneckProjector | undefined;
  /** Vision blocks (1-based) whose class-token output becomes a visual token. */
  readonly visualDepths: readonly number[];
  /** Side of the pooled patch grid that follows the class tokens (0 = none, LaVIN). */
  readonly patchGrid: number = 0;
  /** patchTokens.cells: [cells^2, g^2], row c averages the patches whose centre lies in cell c. */
  private readonly cellPool: tf.Tensor2D | undefined;
  /** Every adapter with its place, LLM first then vision, by layer. */
  readonly sites: readonly MmaAdapterSite[];

  constructor(base: MmaBase, config: MmaConfig) {
    super();
    this.lm = this.child('lm', base.lm);
    this.vision = base.vision ? this.child('vision', base.vision) : undefined;
    this.config = config;
    this.imageTokenId = base.imageTokenId ?? config.imageTokenId;
    const d = base.lm.config.hiddenSize;
    if (d % config.groups !== 0) {
      throw new AdaptorkitError('INVALID_CONFIG', `mma config: groups: ${config.groups} does not divide the LLM width ${d}`);
    }
    manualSeed(config.seed);
    const adapterOpts = (dim: number, k: number): MmaAdapterOptions => ({
      dim,
      rank: config.rank,
      groups: config.groups,
      branches: config.branches,
      temperature: config.temperature,
      scale: config.scale,
      dropout: config.dropout,
      routing: config.routing,
      hardRouting: config.hardRouting,
      seed: config.seed * 100_003 + k,
    });
    const sites: MmaAdapterSite[] = [];
    const slots: ('preAttn' | 'preMlp')[] = config.placement === 'both' ? ['preAttn', 'preMlp'] : [config.placement];
    base.lm.model.layers.at(0); // throws on an empty model
    [...base.lm.model.layers].forEach((layer, i) => {
      for (const slot of slots) {
        if (layer.getAdapter(slot)) {
          throw new AdaptorkitError('INVALID_ARGUMENT', `mma: decoder layer ${i} already has an adapter in slot '${slot}' (attach MMA to a clean base)`);
        }
        const a = new MmaAdapter(adapterOpts(d, sites.length));
        layer.setAdapter(slot, a);
        sites.push({ tower: 'lm', layer: i, slot, adapter: a });
      }
    });
    this.modality_embedding = this.child('modality_embedding', new Embedding(2, d, { init: { kind: 'normal', std: config.modalityInitStd } }));
    if (this.vision) {
      const v = this.vision;
      const dv = v.config.hiddenSize;
      if (config.visionAdapters) {
        if (dv % config.groups !== 0) throw new AdaptorkitError('INVALID_CONFIG', `mma config: groups: ${config.groups} does not divide the vision width ${dv}`);
        [...v.vision_model.encoder.layers].forEach((layer, i) => {
          if (layer.getAdapter('preAttn')) throw new AdaptorkitError('INVALID_ARGUMENT', `mma: vision layer ${i} already has an adapter in slot 'preAttn'`);
          const a = new MmaAdapter({ ...adapterOpts(dv, sites.length), routeBy: v.config.kind === 'clip' ? 'first' : 'mean' });
          layer.setAdapter('preAttn', a);
          sites.push({ tower: 'vision', layer: i, slot: 'preAttn', adapter: a });
        });
      }
      this.visualDepths = resolveVisualDepths(config.visualDepths, v.numLayers);
      if (config.patchTokens) {
        const { depth, pool, cells } = config.patchTokens;
        if (depth > v.numLayers) {
          throw new AdaptorkitError('INVALID_CONFIG', `mma config: patchTokens.depth: block ${depth} is outside 1..${v.numLayers} (the vision encoder has ${v.numLayers} blocks)`);
        }
        const g = v.config.imageSize / v.config.patchSize;
        if (!Number.isInteger(g) || g % pool !== 0) {
          throw new AdaptorkitError('INVALID_CONFIG', `mma config: patchTokens.pool: ${pool} does not divide the ${g} x ${g} patch grid of the vision encoder`);
        }
        if (cells !== undefined) {
          if (!Number.isInteger(g) || cells > g) {
            throw new AdaptorkitError('INVALID_CONFIG', `mma config: patchTokens.cells: ${cells} x ${cells} cells need at least that many patches per side (the vision encoder has ${g} x ${g})`);
          }
          this.patchGrid = cells;
          this.cellPool = tf.keep(cellPoolMatrix(g, cells));
        } else {
          this.patchGrid = g / pool;
        }
      }
      this.projector = this.child('projector', new BottleneckProjector(dv, config.projectorHidden, d, config.projectorAct));
      const perCell = config.patchTokens?.perCell ?? 1;
      this.patch_projector = perCell > 1 ? this.child('patch_projector', new BottleneckProjector(dv, config.projectorHidden, perCell * d, config.projectorAct)) : undefined;
    } else {
      this.visualDepths = [];
      this.projector = undefined;
      this.patch_projector = undefined;
    }
    this.sites = sites;
    // Freeze everything, then mark trainable by walking MMA's own modules.
    this.freeze();
    for (const m of this.mmaModules()) m.unfreeze();
  }

  /** MMA's modules: every adapter, the modality embedding, the projector(s). */
  mmaModules(): Module[] {
    return [
      ...this.sites.map((s) => s.adapter),
      this.modality_embedding,
      ...(this.projector ? [this.projector] : []),
      ...(this.patch_projector ? [this.patch_projector] : []),
    ];
  }

  /** Number of visual tokens per image (placeholders to expand each image into). */
  get numVisualTokens(): number {
    return this.visualDepths.length + this.patchGrid * this.patchGrid * (this.config.patchTokens?.perCell ?? 1);
  }

  /** Trainable MMA parameters with their paths (`lm.model.layers.3.preAttn.down.weight`, ...). */
  namedMmaParameters(): [string, Parameter][] {
    const mine = new Set(this.mmaModules().flatMap((m) => m.parameters()));
    return this.namedParameters().filter(([, p]) => mine.has(p) && p.trainable);
  }

  /** The explicit trainable list for the optimizer. */
  mmaParameters(): Parameter[] {
    return this.namedMmaParameters().map(([, p]) => p);
  }

  /** A checkpoint of the trainable MMA weights (stored layout; tensors belong to the model). */
  mmaStateDict(): Map<string, tf.Tensor> {
    return new Map(this.namedMmaParameters().map(([n, p]) => [n, p.value]));
  }

  /** Trainable parameters by part (works in shape-only mode). */
  countMmaParameters(): MmaPartCounts {
    const c = (ms: Module[]): number => ms.reduce((a, m) => a + m.countParameters({ trainable: true }), 0);
    const parts = {
      lmAdapters: c(this.sites.filter((s) => s.tower === 'lm').map((s) => s.adapter)),
      visionAdapters: c(this.sites.filter((s) => s.tower === 'vision').map((s) => s.adapter)),
      projector: (this.projector ? c([this.projector]) : 0) + (this.patch_projector ? c([this.patch_projector]) : 0),
      modalityEmbedding: c([this.modality_embedding]),
    };
    return { ...parts, total: parts.lmAdapters + parts.visionAdapters + parts.projector + parts.modalityEmbedding };
  }

  /**
   * Visual tokens: pixels [B, H, W, 3] -> [B, K, d] (class token after each visual depth, then the
   * pooled patch tokens when `patchTokens` is set, all through the projection).
   */
  visualTokens(pixels: tf.Tensor, ctx?: ForwardContext): tf.Tensor3D {
    const v = this.vision;
    if (!v || !this.projector) throw new AdaptorkitError('INVALID_ARGUMENT', 'mma: images were given but the model was attached without a vision encoder');
    return tf.tidy(() => {
      const { hiddenStates } = v.forward(pixels, ctx);
      const toks = this.visualDepths.map((k) => {
        const h = hiddenStates[k]!; // [B, N, dv], output of block k
        const [B, , dv] = h.shape;
        return v.config.kind === 'clip' ? tf.slice(h, [0, 0, 0], [B, 1, dv]) : tf.mean(h, 1, true); // [B, 1, dv]
      });
      if (this.patchGrid > 0) {
        const h = hiddenStates[this.config.patchTokens!.depth]!; // [B, (1 +) g*g, dv]
        const [B, n, dv] = h.shape;
        const first = v.config.kind === 'clip' ? 1 : 0;
        const g = Math.round(Math.sqrt(n - first));
        const patches = tf.slice(h, [0, first, 0], [B, n - first, dv]);
        if (this.cellPool) {
          toks.push(poolTokens(patches, this.cellPool));
        } else {
          const pool = g / this.patchGrid;
          let grid: tf.Tensor4D = tf.reshape(patches, [B, g, g, dv]);
          if (pool > 1) grid = tf.avgPool(grid, pool, pool, 'valid');
          toks.push(tf.reshape(grid, [B, this.patchGrid * this.patchGrid, dv]));
        }
      }
      if (this.patch_projector) {
        // class tokens through the shared projection; each patch token through its own, into perCell tokens
        const patchToks = toks.pop()! as tf.Tensor3D; // [B, C, dv]
        const [B, C] = patchToks.shape;
        const d = this.lm.config.hiddenSize;
        const k = this.config.patchTokens!.perCell;
        const words = tf.reshape(this.patch_projector.forward(patchToks), [B, C * k, d]); // token c's k outputs are consecutive
        return (toks.length ? tf.concat([this.projector!.forward(tf.concat(toks, 1)), words], 1) : words) as tf.Tensor3D;
      }
      return this.projector!.forward(tf.concat(toks, 1)) as tf.Tensor3D; // [B, K, dv] -> [B, K, d]
    });
  }

  /**
   * Input embeddings with the modality token: [B, T+1, d]. Image rows get their projected visual
   * tokens at the placeholder positions.
   */
  embedInputs(input: Pick<MmaForwardInput, 'ids' | 'images' | 'modality' | 'ctx'>): { embeds: tf.Tensor3D; modality: number[] } {
    const { ids, images } = input;
    if (ids.rank !== 2 || ids.dtype !== 'int32') {
      throw new AdaptorkitError('SHAPE_MISMATCH', `mma: ids must be int32 [B, T], got ${ids.dtype} ${formatShape(ids.shape)}`);
    }
    const [B, T] = ids.shape as [number, number];
    const flat = ids.dataSync() as Int32Array;
    const tok = this.imageTokenId;
    const imageRows: number[] = [];
    for (let b = 0; b < B; b++) if (tok !== undefined && flat.subarray(b * T, (b + 1) * T).includes(tok)) imageRows.push(b);
    const modality = input.modality ? [...input.modality] : Array.from({ length: B }, (_, b) => (imageRows.includes(b) ? IMAGE_MODALITY : TEXT_MODALITY));
    if (modality.length !== B || modality.some((m) => m !== 0 && m !== 1)) {
      throw new AdaptorkitError('INVALID_ARGUMENT', `mma: modality must list 0 (text) or 1 (image) for each of the ${B} rows, got [${modality.join(', ')}]`);
    }
    if (imageRows.length > 0 && !images) {
      throw new AdaptorkitError('INVALID_ARGUMENT', `mma: rows ${imageRows.join(', ')} hold image placeholders (id ${tok}) but no images were given`);
    }
    if (images && tok === undefined) {
      throw new AdaptorkitError('INVALID_CONFIG', 'mma: images were given but no imageTokenId is set: set config.imageTokenId or pass imageTokenId to attachMma');
    }
    return tf.tidy(() => {
      let text = this.lm.embed(ids); // [B, T, d]
      if (images && imageRows.length > 0) {
        const nImg = images.shape[0]!;
        let pix: tf.Tensor;
        if (nImg === B) pix = imageRows.length === B ? images : tf.gather(images, tf.tensor1d(imageRows, 'int32'));
        else if (nImg === imageRows.length) pix = images;
        else {
          throw new AdaptorkitError(
            'SHAPE_MISMATCH',
            `mma: images ${formatShape(images.shape)}: expected one per row (${B}) or one per image row (${imageRows.length}: rows ${imageRows.join(', ')})`,
          );
        }
        const feats = this.visualTokens(pix, input.ctx); // [B_img, K, d]
        const [, K, d] = feats.shape;
        // one feature block per row: image rows their own, text rows zeros (spliceFeatures leaves them untouched)
        const index = new Int32Array(B).fill(imageRows.length);
        imageRows.forEach((b, i) => (index[b] = i));
        const table = tf.concat([feats, tf.zeros([1, K, d])], 0); // [B_img + 1, K, d]
        const full = tf.gather(table, tf.tensor1d(index, 'int32')); // [B, K, d]
        text = spliceFeatures(text, flat, tok!, full);
      }
      const mod = this.modality_embedding.forward(tf.tensor2d(modality, [B, 1], 'int32')); // [B, 1, d]
      return { embeds: tf.concat([mod, text], 1) as tf.Tensor3D, modality }; // [B, T+1, d]
    }) as { embeds: tf.Tensor3D; modality: number[] };
  }

  forward(input: MmaForwardInput): MmaForwardOutput {
    return tf.tidy(() => {
      const { embeds } = this.embedInputs(input); // [B, T+1, d]
      const [B, T1, d] = embeds.shape;
      const out = this.lm.forward({ embeds, mask: modalityMask(T1), positionOffset: 0, skipHead: true, ctx: input.ctx });
      const lastHidden = tf.slice(out.lastHidden, [0, 1, 0], [B, T1 - 1, d]) as tf.Tensor3D; // [B, T, d]: drop the modality token
      const res: MmaForwardOutput = { lastHidden };
      if (!input.skipHead) res.logits = this.lm.head(lastHidden); // [B, T, V]
      return res as unknown as tf.TensorContainer;
    }) as unknown as MmaForwardOutput;
  }

  /**
   * Restart every adapter's dropout stream from `seed`: the trainer calls it with a seed derived
   * from (run seed, step, micro-batch), so a step's masks do not depend on how many steps this
   * process ran before it (`--resume` then continues exactly like an uninterrupted run).
   */
  reseedMasks(seed: number): void {
    const rng = new Rng((seed ^ 0x6d6d61) >>> 0);
    for (const s of this.sites) s.adapter.reseed(rng.fork());
  }

  /** The frozen base LLM on ids (no modality token, adapters bypassed): the text-only baseline. */
  baseForward(ids: tf.Tensor, skipHead = false): MmaForwardOutput {
    const out = this.lm.forward({ ids, skipHead, ctx: bypassContext() });
    return { logits: out.logits, lastHidden: out.lastHidden };
  }

  /** Answer-only masked next-token cross entropy. Pass ctx { training: true } for dropout. */
  loss(batch: MmaBatch): tf.Scalar {
    const { labels, ...input } = batch;
    // image placeholder positions carry features, never targets
    return tf.tidy(() => maskedCrossEntropy(this.forward(input).logits!, ignoreTokens(labels, batch.ids, this.imageTokenId)));
  }

  /**
   * Perplexity of text `ids` (no images): exp of the mean next-token NLL over all positions but
   * the first, skipping padId. adapters: true (default) = the adapted model with the text-only
   * modality token; false = the frozen base LLM.
   */
  perplexity(ids: tf.Tensor, opts: { padId?: number; adapters?: boolean } = {}): { nll: number; perplexity: number; tokens: number } {
    const logits = tf.tidy(() => (opts.adapters === false ? this.baseForward(ids) : this.forward({ ids, modality: new Array<number>(ids.shape[0]!).fill(TEXT_MODALITY) })).logits!); // [B, T, V]
    try {
      return sequenceNll(logits, ids, opts.padId);
    } finally {
      logits.dispose();
    }
  }

  /** Run one forward and report every adapter's routing weights (inference mode unless ctx says otherwise). */
  routingWeights(input: Omit<MmaForwardInput, 'skipHead'>): MmaRoutingReport {
    const record = new Map<MmaAdapter, tf.Tensor>();
    const ctx: ForwardContext = { ...input.ctx, [MMA_CTX]: { record } satisfies MmaRoutingState };
    let modality: number[] = [];
    try {
      tf.tidy(() => {
        const { embeds, modality: m } = this.embedInputs({ ...input, ctx });
        modality = m;
        this.lm.forward({ embeds, mask: modalityMask(embeds.shape[1]), positionOffset: 0, skipHead: true, ctx });
      });
      return this.report(record, modality, true);
    } finally {
      for (const t of record.values()) t.dispose();
    }
  }

  /** Routing weights recorded by a forward (internal: generate.ts reads the prefill's). */
  report(record: Map<MmaAdapter, tf.Tensor>, modality: number[], dropFirst: boolean): MmaRoutingReport {
    const out: MmaRoutingReport = { modality, lm: [], vision: [] };
    for (const s of this.sites) {
      const w = record.get(s.adapter);
      if (!w) continue;
      const arr = w.arraySync() as number[][][]; // [B, 1|T, N]
      const entry: MmaLayerRouting = { tower: s.tower, layer: s.layer, slot: s.slot, weights: [] };
      if (this.config.routing === 'token') {
        const rows = arr.map((r) => (s.tower === 'lm' && dropFirst ? r.slice(1) : r)); // LLM: drop the modality token
        entry.perToken = rows;
        entry.weights = rows.map((r) => r[0]!.map((_, n) => r.reduce((a, t) => a + t[n]!, 0) / r.length));
      } else entry.weights = arr.map((r) => r[0]!);
      (s.tower === 'lm' ? out.lm : out.vision).push(entry);
    }
    return out;
  }

  /**
   * Decode up to maxNewTokens per row through core's generate (generate.ts): the prefill runs the
   * prompt with the modality token (routing recorded there), later steps reuse those routing weights.
   */
  generate(opts: MmaGenerateOptions): MmaGenerateResult {
    return generateMma(this, opts);
  }

  override dispose(): void {
    this.cellPool?.dispose();
    super.dispose();
  }
}

/** Attach MMA to a frozen LLM (+ vision encoder): freezes them, adds MMA's modules, returns the adapted model. */
export function attachMma(base: MmaBase, config: MmaConfigInput | MmaConfig = {}): MmaModel {
  return new MmaModel(base, parseMmaConfig(config));
}

/** Routing weights of every adapter for one input (see MmaModel.routingWeights). */
export function routingWeights(model: MmaModel, input: Omit<MmaForwardInput, 'skipHead'>): MmaRoutingReport {
  return model.routingWeights(input);
}
