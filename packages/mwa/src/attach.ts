/**
 * attachMwa: freeze a Multiway Transformer, add New Knowledge Extractors and Alignment Enhancers,
 * and mark exactly the new modules trainable (walking them, never matching names).
 */
import { AdaptorkitError, Rng, manualSeed, type Parameter } from '@adaptorkit/core';
import { enhancerHidden, parseMwaConfig, resolveLayers, type Modality, type MwaConfig, type MwaConfigInput } from './config.js';
import { AlignmentEnhancer, NewKnowledgeExtractor } from './adapters.js';
import { MultiwayTransformer } from '@adaptorkit/shapes-bases';

export interface MwaParameterCounts {
  /** Parameters of the base model (frozen). */
  base: number;
  extractors: number;
  enhancers: number;
  /** extractors + enhancers (what trains). */
  trainable: number;
  /** trainable / base, in percent (the paper's convention). */
  percentOfBase: number;
  /** trainable / (base + trainable), in percent. */
  percentOfTotal: number;
}

export class MwaModel {
  constructor(
    readonly model: MultiwayTransformer,
    readonly config: MwaConfig,
    /** Extractors by layer index and modality. */
    readonly extractors: Map<number, Map<Modality, NewKnowledgeExtractor>>,
    /** Enhancers by layer index. */
    readonly enhancers: Map<number, AlignmentEnhancer>,
  ) {}

  /** Every new module (what trains). */
  adapterModules(): (NewKnowledgeExtractor | AlignmentEnhancer)[] {
    const out: (NewKnowledgeExtractor | AlignmentEnhancer)[] = [];
    for (const m of this.extractors.values()) out.push(...m.values());
    out.push(...this.enhancers.values());
    return out;
  }

  /**
   * Restart the dropout / drop-path mask streams of every new module from `seed` (each module gets
   * its own stream derived from it). A trainer that calls this before each micro-batch with a seed
   * computed from (run seed, step, micro) draws the same masks whether or not the run was resumed.
   */
  reseedMasks(seed: number): void {
    const rng = new Rng((seed ^ 0x6d7761) >>> 0);
    for (const m of this.adapterModules()) m.opts.rng = rng.fork();
  }

  /** The explicit trainable list for the optimizer (the adapters' parameters). */
  trainableParameters(): Parameter[] {
    return this.adapterModules().flatMap((m) => m.parameters());
  }

  counts(): MwaParameterCounts {
    let extractors = 0;
    for (const m of this.extractors.values()) for (const e of m.values()) extractors += e.countParameters();
    let enhancers = 0;
    for (const e of this.enhancers.values()) enhancers += e.countParameters();
    const trainable = extractors + enhancers;
    const base = this.model.countParameters() - trainable;
    return { base, extractors, enhancers, trainable, percentOfBase: (100 * trainable) / base, percentOfTotal: (100 * trainable) / (base + trainable) };
  }
}

/**
 * Freeze `model`, attach MWA's modules in place and return a handle with the trainable list.
 * Works in shape-only mode (for counting BEiT-3-sized configs).
 */
export function attachMwa(model: MultiwayTransformer, config: MwaConfigInput | MwaConfig = {}): MwaModel {
  const c = parseMwaConfig(config);
  const mc = model.config;
  for (const layer of model.layers) {
    if (layer.enhancer || layer.extractor('vision') || layer.extractor('language')) {
      throw new AdaptorkitError('INVALID_ARGUMENT', `attachMwa: layer ${layer.index} already has MWA modules; attach once per model`);
    }
  }
  model.freeze();
  manualSeed(c.seed);
  const rng = new Rng(c.seed ^ 0x6d7761);
  const extractors = new Map<number, Map<Modality, NewKnowledgeExtractor>>();
  const enhancers = new Map<number, AlignmentEnhancer>();

  if (c.extractor.enabled) {
    for (const i of resolveLayers(c.extractor.layers, mc.numLayers, 'extractor.layers')) {
      const perLayer = new Map<Modality, NewKnowledgeExtractor>();
      for (const m of c.extractor.modalities) {
        const ex = new NewKnowledgeExtractor(mc.dim, c.extractor.bottleneck, {
          scale: c.extractor.scale,
          dropout: c.extractor.dropout,
          layerNorm: c.extractor.layerNorm,
          rng: rng.fork(),
        });
        model.layers.at(i).setExtractor(m, ex);
        perLayer.set(m, ex);
      }
      extractors.set(i, perLayer);
    }
  }
  if (c.enhancer.enabled) {
    const hidden = enhancerHidden(c.enhancer.hidden, mc.dim, mc.ffnDim);
    const L = mc.numLayers;
    for (const i of resolveLayers(c.enhancer.layers, L, 'enhancer.layers')) {
      // the reference's linspace(0, rate, L)[i]
      const p = L > 1 ? (c.enhancer.dropPath * i) / (L - 1) : 0;
      const en = new AlignmentEnhancer(mc.dim, hidden, { init: c.enhancer.init, dropPath: p, rng: rng.fork(), eps: mc.layerNormEps });
      model.layers.at(i).setEnhancer(en);
      enhancers.set(i, en);
    }
  }
  const out = new MwaModel(model, c, extractors, enhancers);
  for (const m of out.adapterModules()) m.unfreeze();
  return out;
}
