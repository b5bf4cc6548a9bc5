/**
 * Planning: build a model in shape-only mode (no weights allocated) to count parameters and
 * estimate the memory a training run needs, for any config, 7B/8B included, in milliseconds.
 *
 * Memory model (float32 everywhere, as tfjs stores it):
 *   weights     = 4 B x all parameters
 *   gradients   = 4 B x trainable parameters
 *   optimizer   = 8 B x trainable parameters (AdamW: first and second moments)
 *   activations = what autodiff keeps for the backward pass of one batch (LLM: estimate below)
 *   kvCache     = 4 B x 2 x layers x batch x seq x kvHeads x headDim (generation, not training)
 * The activation term is an estimate (tensors tfjs keeps for the gradient of each op of a LLaMA
 * block, calibrated once against tf.memory() on the cpu backend: see plan.test.ts), not a
 * measurement of your run. With `recompute: 'layers'` (train.recompute) only each decoder layer's
 * input is kept, plus one layer's activations while it is recomputed.
 * With `weightsDtype: 'bf16'` (base.weightsDtype) frozen Linear/Embedding weights count 2 B each.
 */
import { AdaptorkitError } from '../errors.js';
import { CausalLM, resolveCausalLMConfig, type CausalLMConfig } from '../models/causal-lm.js';
import { VisionEncoder, resolveVisionConfig, type VisionConfig } from '../models/vision.js';
import type { Module } from '../nn/module.js';
import { shapeOnly } from '../nn/parameter.js';
import { causalLMConfigFromHF, visionConfigFromHF, type HFConfig } from '../io/hf-config.js';

export interface PlanOptions {
  /** Batch size for the activation estimate (default 1). */
  batchSize?: number;
  /** Sequence length (LLM) for the activation / KV estimate (default 512 or the model's max positions, if smaller). */
  seqLen?: number;
  /**
   * Which parameters train. 'all' (default for a bare model): full fine-tuning; 'none': inference;
   * or a function run on the shape-only model that freezes / attaches adapters (it must only
   * build modules: parameters have shapes but no values).
   */
  trainable?: 'all' | 'none' | ((model: Module) => void);
  /** Bytes per stored element (default 4: tfjs float32). */
  bytesPerElement?: number;
  /** Where the config came from (e.g. the config.json path), named in errors. */
  source?: string;
  /** base.weightsDtype: 'bf16' counts frozen Linear/Embedding weights at 2 bytes (default 'f32'). */
  weightsDtype?: 'f32' | 'bf16';
  /** train.recompute: 'layers' keeps only each decoder layer's input for the backward pass (default 'none'). */
  recompute?: 'none' | 'layers';
}

export interface MemoryEstimate {
  weights: number;
  gradients: number;
  optimizer: number;
  activations: number;
  kvCache: number;
  /** weights + gradients + optimizer + activations (training peak, without the KV cache). */
  training: number;
  /** weights + kvCache (generation). */
  inference: number;
  /** The weights split by storage dtype (bf16: frozen Linear/Embedding weights with weightsDtype bf16). */
  weightsByDtype: { f32: number; bf16: number };
  /** The activation estimate without and with recompute: layers (`activations` is the one chosen). */
  activationsByRecompute: { none: number; layers: number };
}

export interface Plan {
  kind: 'causal-lm' | 'vision';
  parameters: number;
  trainableParameters: number;
  batchSize: number;
  seqLen: number;
  bytes: MemoryEstimate;
  /** One line per item, human-readable (GiB). */
  summary: string;
}

function isHF(c: object): c is HFConfig {
  return typeof (c as HFConfig).model_type === 'string';
}

const VISION_TYPES = new Set(['clip', 'clip_vision_model', 'siglip', 'siglip_vision_model']);

/** An HF config.json object or an adaptorkit config -> which model and its config. */
export function normalizeConfig(c: CausalLMConfig | VisionConfig | HFConfig, source = 'config.json'): { kind: 'causal-lm'; config: CausalLMConfig } | { kind: 'vision'; config: VisionConfig } {
  if (typeof c !== 'object' || c === null) throw new AdaptorkitError('INVALID_CONFIG', 'plan: config must be an object');
  if (isHF(c)) {
    if (VISION_TYPES.has(c.model_type as string)) return { kind: 'vision', config: visionConfigFromHF(c, source) };
    return { kind: 'causal-lm', config: causalLMConfigFromHF(c, source) };
  }
  if ((c as VisionConfig).kind === 'clip' || (c as VisionConfig).kind === 'siglip') return { kind: 'vision', config: c as VisionConfig };
  if (typeof (c as CausalLMConfig).vocabSize === 'number') return { kind: 'causal-lm', config: c as CausalLMConfig };
  throw new AdaptorkitError('INVALID_CONFIG', 'plan: not a recognised config (expected an HF config.json object with model_type, a CausalLMConfig with vocabSize, or a VisionConfig with kind)');
}

/** Build a model of this config without allocating any weight. */
export function buildShapeOnly(c: CausalLMConfig | VisionConfig | HFConfig, source?: string): CausalLM | VisionEncoder {
  const n = normalizeConfig(c, source);
  return shapeOnly(() => (n.kind === 'causal-lm' ? new CausalLM(n.config) : new VisionEncoder(n.config)));
}

const GiB = 1024 ** 3;
const fmt = (b: number): string => `${(b / GiB).toFixed(2)} GiB`;

/**
 * Estimated activation elements kept for backward by one LLaMA decoder layer, per token.
 * Op outputs of one block: 2 RMSNorms (~3d each), q/k/v projections and their head-split copies,
 * rotate-half RoPE (~5.5x q and k), scores / scaled / masked / softmax (4 x heads x keys),
 * attention output and its merge (2q), o_proj + residual (2d), SwiGLU (gate, up, sigmoid, silu,
 * product: 5I), down_proj + residual (2d). tfjs keeps about twice that (inputs and outputs of
 * ops, broadcast copies): measured 1.8-2.2x on the cpu backend over d, I, seq and layers, so x2.
 */
function llmLayerActivationElems(c: ReturnType<typeof resolveCausalLMConfig>, seq: number): number {
  const d = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKVHeads * c.headDim;
  return 2 * (10 * d + 9.5 * q + 9.5 * kv + 5 * c.intermediateSize + 4 * c.numHeads * seq);
}

/**
 * Count parameters and estimate memory for a model config (HF config.json objects accepted),
 * without allocating weights.
 */
export function plan(config: CausalLMConfig | VisionConfig | HFConfig, opts: PlanOptions = {}): Plan {
  const n = normalizeConfig(config, opts.source);
  const model = buildShapeOnly(config, opts.source);
  const bpe = opts.bytesPerElement ?? 4;
  const trainable = opts.trainable ?? 'all';
  if (trainable === 'none') model.freeze();
  else if (typeof trainable === 'function') shapeOnly(() => trainable(model));
  const parameters = model.countParameters();
  const trainableParameters = model.countParameters({ trainable: true });
  const B = opts.batchSize ?? 1;
  let T: number;
  let activations: number;
  let kvCache = 0;
  let activationsRecompute: number | undefined;
  if (n.kind === 'causal-lm') {
    const c = resolveCausalLMConfig(n.config);
    T = opts.seqLen ?? Math.min(512, c.maxPositionEmbeddings);
    const perToken = c.numLayers * llmLayerActivationElems(c, T) + 4 * c.hiddenSize + 8 * c.vocabSize; // + embeddings, final norm, logits and the cross-entropy
    activations = trainableParameters > 0 ? B * T * perToken * bpe : 0;
    // recompute: layers keeps each layer's input [B, T, d] and one layer's activations at a time
    const perTokenRecompute = c.numLayers * c.hiddenSize + llmLayerActivationElems(c, T) + 4 * c.hiddenSize + 8 * c.vocabSize;
    activationsRecompute = trainableParameters > 0 ? B * T * perTokenRecompute * bpe : 0;
    kvCache = 2 * c.numLayers * B * T * c.numKVHeads * c.headDim * bpe;
  } else {
    const c = resolveVisionConfig(n.config);
    T = model instanceof VisionEncoder ? model.numTokens : 0;
    const perToken = c.numLayers * (6 * c.hiddenSize + 2 * c.numHeads * T + 2 * c.intermediateSize) + 2 * c.hiddenSize;
    activations = trainableParameters > 0 ? B * T * perToken * bpe : 0;
  }
  let bf16Elems = 0;
  if (opts.weightsDtype === 'bf16') for (const p of model.parameters()) if (!p.trainable && p.bf16Capable) bf16Elems += p.size;
  const weightsByDtype = { f32: (parameters - bf16Elems) * bpe, bf16: 2 * bf16Elems };
  const weights = weightsByDtype.f32 + weightsByDtype.bf16;
  const activationsByRecompute = { none: activations, layers: activationsRecompute ?? activations };
  if (opts.recompute === 'layers') activations = activationsByRecompute.layers;
  const gradients = trainableParameters * bpe;
  const optimizer = 2 * trainableParameters * bpe;
  const bytes: MemoryEstimate = {
    weights,
    gradients,
    optimizer,
    activations,
    kvCache,
    training: weights + gradients + optimizer + activations,
    inference: weights + kvCache,
    weightsByDtype,
    activationsByRecompute,
  };
  const summary = [
    `parameters: ${parameters.toLocaleString('en-US')} (trainable ${trainableParameters.toLocaleString('en-US')})`,
    `weights: ${fmt(weights)}${weightsByDtype.bf16 > 0 ? ` (float32 ${fmt(weightsByDtype.f32)}, bf16 frozen ${fmt(weightsByDtype.bf16)})` : ''}`,
    `gradients: ${fmt(gradients)}`,
    `optimizer (AdamW): ${fmt(optimizer)}`,
    `activations (batch ${B} x ${n.kind === 'causal-lm' ? 'seq' : 'tokens'} ${T}, estimate${opts.recompute === 'layers' ? ', recompute: layers' : ''}): ${fmt(activations)}`,
    ...(n.kind === 'causal-lm' && activations > 0 ? [`  (recompute none: ${fmt(activationsByRecompute.none)}, layers: ${fmt(activationsByRecompute.layers)})`] : []),
    ...(n.kind === 'causal-lm' ? [`KV cache (generation, batch ${B} x ${T}): ${fmt(kvCache)}`] : []),
    `training total: ${fmt(bytes.training)}`,
  ].join('\n');
  return { kind: n.kind, parameters, trainableParameters, batchSize: B, seqLen: T, bytes, summary };
}
