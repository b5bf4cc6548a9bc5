/**
 * VisionEncoder: a ViT in the CLIP or SigLIP style, with HF tensor names
 * (`vision_model.embeddings.patch_embedding.weight`, `vision_model.encoder.layers.{i}...`).
 *
 * - CLIP: class token, pre-LayerNorm (`pre_layrnorm`, HF's spelling), quick-GELU, patch embedding
 *   without bias; pooled = post_layernorm(class token of the last hidden state).
 * - SigLIP: no class token, patch-embedding bias, tanh-GELU; last hidden state is post-layernormed;
 *   pooled = the attention-pooling head when present, else the mean token.
 * Input is NHWC [B, H, W, 3], already normalised. Patches are cut with reshape/transpose and one
 * matMul (a stride-p convolution written as a Linear), stored [p*p*3, d].
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError, formatShape } from '../errors.js';
import { EncoderLayer } from '../nn/blocks.js';
import type { ForwardContext } from '../nn/context.js';
import { Embedding, LayerNorm, linear, type Activation } from '../nn/layers.js';
import { attentionSoftmax } from '../nn/fused.js';
import { MLP } from '../nn/mlp.js';
import { Module, ModuleList } from '../nn/module.js';
import type { Parameter } from '../nn/parameter.js';

export interface VisionConfig {
  kind: 'clip' | 'siglip';
  imageSize: number;
  patchSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  layerNormEps?: number;
  hiddenAct?: Activation;
  /** SigLIP: multihead attention pooling head (HF vision_use_head, default true). */
  useHead?: boolean;
}

export interface VisionOutput {
  /** [B, N, d]: CLIP: last encoder layer output; SigLIP: after post_layernorm. */
  lastHiddenState: tf.Tensor3D;
  /** [B, d] */
  pooled: tf.Tensor2D;
  /** hiddenStates[0] = embeddings (after CLIP's pre-LayerNorm); [i] = output of layer i-1. */
  hiddenStates: tf.Tensor3D[];
}

/** A stride-p, kernel-p convolution as patchify + matMul; weight stored [p*p*3, d] (HF [d, 3, p, p]). */
export class PatchEmbedding extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | undefined;
  constructor(readonly patchSize: number, readonly dim: number, bias: boolean) {
    super();
    const fanIn = 3 * patchSize * patchSize;
    const bound = 1 / Math.sqrt(fanIn);
    this.weight = this.param('weight', [fanIn, dim], { kind: 'uniform', low: -bound, high: bound }, { layout: 'patch-conv' });
    this.bias = bias ? this.param('bias', [dim], { kind: 'zeros' }) : undefined;
  }
  /**
   * [B, H, W, 3] -> [B, N, d] with N = floor(H/p) floor(W/p), row-major over patches. Like the
   * stride-p convolution HF runs, the last H mod p rows and W mod p columns are not seen.
   */
  forward(pixels: tf.Tensor): tf.Tensor3D {
    const [B, H, W, C] = pixels.shape as [number, number, number, number];
    const p = this.patchSize;
    if (pixels.rank !== 4 || C !== 3 || H < p || W < p) {
      throw new AdaptorkitError('SHAPE_MISMATCH', `pixels must be [B, H, W, 3] with H, W at least the patch size ${p}, got ${formatShape(pixels.shape)}`);
    }
    return tf.tidy(() => {
      const gh = Math.floor(H / p);
      const gw = Math.floor(W / p);
      const cropped = gh * p === H && gw * p === W ? pixels : tf.slice(pixels, [0, 0, 0, 0], [B, gh * p, gw * p, C]);
      const x = tf.reshape(cropped, [B, gh, p, gw, p, C]);
      const patches = tf.reshape(tf.transpose(x, [0, 1, 3, 2, 4, 5]), [B, gh * gw, p * p * C]); // [B, N, p*p*3]
      return linear(patches, this.weight.value, this.bias?.value) as tf.Tensor3D;
    });
  }
}

export class VisionEmbeddings extends Module {
  readonly patch_embedding: PatchEmbedding;
  readonly position_embedding: Embedding;
  readonly class_embedding: Parameter | undefined;
  readonly numPositions: number;
  constructor(c: Required<VisionConfig>) {
    super();
    const n = Math.floor(c.imageSize / c.patchSize) ** 2; // HF's conv floors: so400m-patch14-384 -> 27 x 27
    this.numPositions = c.kind === 'clip' ? n + 1 : n;
    this.class_embedding = c.kind === 'clip' ? this.param('class_embedding', [c.hiddenSize], { kind: 'normal', std: 0.02 }) : undefined;
    this.patch_embedding = this.child('patch_embedding', new PatchEmbedding(c.patchSize, c.hiddenSize, c.kind === 'siglip'));
    this.position_embedding = this.child('position_embedding', new Embedding(this.numPositions, c.hiddenSize));
  }
  forward(pixels: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      let x = this.patch_embedding.forward(pixels); // [B, N, d]
      const [B, N, d] = x.shape;
      if (this.class_embedding) {
        const cls = tf.broadcastTo(tf.reshape(this.class_embedding.value, [1, 1, d]), [B, 1, d]);
        x = tf.concat([cls, x], 1) as tf.Tensor3D; // [B, N+1, d]
      }
      if (x.shape[1] !== this.numPositions) {
        throw new AdaptorkitError('SHAPE_MISMATCH', `image gives ${N} patches but the position table expects ${this.numPositions - (this.class_embedding ? 1 : 0)} (wrong image size?)`);
      }
      return tf.add(x, tf.expandDims(this.position_embedding.weight.value, 0)) as tf.Tensor3D;
    });
  }
}

/** SigLIP's multihead attention pooling head (torch nn.MultiheadAttention with a learned probe). */
export class AttentionPoolingHead extends Module {
  readonly probe: Parameter;
  readonly layernorm: LayerNorm;
  readonly mlp: MLP;
  readonly attention: PackedAttention;
  constructor(dim: number, hidden: number, readonly numHeads: number, eps: number, act: Activation) {
    super();
    this.probe = this.param('probe', [1, 1, dim], { kind: 'normal', std: 0.02 });
    this.attention = this.child('attention', new PackedAttention(dim, numHeads));
    this.layernorm = this.child('layernorm', new LayerNorm(dim, eps));
    this.mlp = this.child('mlp', new MLP(dim, hidden, dim, act));
  }
  /** [B, N, d] -> [B, d] */
  forward(h: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => {
      const [B, , d] = h.shape as [number, number, number];
      const q = tf.broadcastTo(this.probe.value, [B, 1, d]);
      const a = this.attention.forward(q, h); // [B, 1, d]
      const out = tf.add(a, this.mlp.forward(this.layernorm.forward(a)));
      return tf.reshape(out, [B, d]) as tf.Tensor2D;
    });
  }
}

/** torch.nn.MultiheadAttention layout: in_proj_weight [3d, d] (stored transposed), out_proj. */
export class PackedAttention extends Module {
  readonly in_proj_weight: Parameter;
  readonly in_proj_bias: Parameter;
  readonly out_proj: OutProj;
  constructor(readonly dim: number, readonly numHeads: number) {
    super();
    const bound = Math.sqrt(6 / (dim + 3 * dim));
    this.in_proj_weight = this.param('in_proj_weight', [dim, 3 * dim], { kind: 'uniform', low: -bound, high: bound }, { layout: 'transpose' });
    this.in_proj_bias = this.param('in_proj_bias', [3 * dim], { kind: 'zeros' });
    this.out_proj = this.child('out_proj', new OutProj(dim));
  }
  /** q [B, Tq, d], kv [B, S, d] -> [B, Tq, d] */
  forward(q: tf.Tensor, kv: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const d = this.dim;
      const H = this.numHeads;
      const hd = d / H;
      const [B, Tq] = q.shape as [number, number];
      const S = kv.shape[1]!;
      const w = this.in_proj_weight.value;
      const b = this.in_proj_bias.value;
      const proj = (x: tf.Tensor, i: number, T: number): tf.Tensor =>
        tf.transpose(tf.reshape(linear(x, tf.slice(w, [0, i * d], [d, d]), tf.slice(b, [i * d], [d])), [B, T, H, hd]), [0, 2, 1, 3]);
      const qh = proj(q, 0, Tq); // [B, H, Tq, hd]
      const kh = proj(kv, 1, S);
      const vh = proj(kv, 2, S);
      const probs = attentionSoftmax(tf.matMul(qh, kh, false, true), 1 / Math.sqrt(hd)); // [B, H, Tq, S]
      const o = tf.reshape(tf.transpose(tf.matMul(probs, vh), [0, 2, 1, 3]), [B, Tq, d]);
      return this.out_proj.forward(o);
    });
  }
}

class OutProj extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  constructor(dim: number) {
    super();
    const bound = 1 / Math.sqrt(dim);
    this.weight = this.param('weight', [dim, dim], { kind: 'uniform', low: -bound, high: bound }, { layout: 'transpose' });
    this.bias = this.param('bias', [dim], { kind: 'zeros' });
  }
  forward(x: tf.Tensor): tf.Tensor {
    return linear(x, this.weight.value, this.bias.value);
  }
}

export class VisionTransformer extends Module {
  readonly embeddings: VisionEmbeddings;
  readonly pre_layrnorm: LayerNorm | undefined;
  readonly encoder: Module & { layers: ModuleList<EncoderLayer> };
  readonly post_layernorm: LayerNorm;
  readonly head: AttentionPoolingHead | undefined;
  constructor(readonly config: Required<VisionConfig>) {
    super();
    const c = config;
    this.embeddings = this.child('embeddings', new VisionEmbeddings(c));
    this.pre_layrnorm = c.kind === 'clip' ? this.child('pre_layrnorm', new LayerNorm(c.hiddenSize, c.layerNormEps)) : undefined;
    this.encoder = this.child('encoder', new EncoderStack(c));
    this.post_layernorm = this.child('post_layernorm', new LayerNorm(c.hiddenSize, c.layerNormEps));
    this.head =
      c.kind === 'siglip' && c.useHead
        ? this.child('head', new AttentionPoolingHead(c.hiddenSize, c.intermediateSize, c.numHeads, c.layerNormEps, c.hiddenAct))
        : undefined;
  }
}

class EncoderStack extends Module {
  readonly layers: ModuleList<EncoderLayer>;
  constructor(c: Required<VisionConfig>) {
    super();
    this.layers = this.child(
      'layers',
      new ModuleList(
        Array.from(
          { length: c.numLayers },
          () => new EncoderLayer({ dim: c.hiddenSize, hidden: c.intermediateSize, numHeads: c.numHeads, layerNormEps: c.layerNormEps, act: c.hiddenAct }),
        ),
      ),
    );
  }
}

export function resolveVisionConfig(c: VisionConfig): Required<VisionConfig> {
  const out: Required<VisionConfig> = {
    kind: c.kind,
    imageSize: c.imageSize,
    patchSize: c.patchSize,
    hiddenSize: c.hiddenSize,
    intermediateSize: c.intermediateSize,
    numLayers: c.numLayers,
    numHeads: c.numHeads,
    layerNormEps: c.layerNormEps ?? (c.kind === 'clip' ? 1e-5 : 1e-6),
    hiddenAct: c.hiddenAct ?? (c.kind === 'clip' ? 'quick_gelu' : 'gelu_tanh'),
    useHead: c.kind === 'siglip' ? (c.useHead ?? true) : false,
  };
  if (out.imageSize < out.patchSize) {
    throw new AdaptorkitError('INVALID_CONFIG', `vision config: imageSize ${out.imageSize} is smaller than patchSize ${out.patchSize}`);
  }
  if (out.hiddenSize % out.numHeads !== 0) {
    throw new AdaptorkitError('INVALID_CONFIG', `vision config: hiddenSize ${out.hiddenSize} is not divisible by numHeads ${out.numHeads}`);
  }
  return out;
}

export class VisionEncoder extends Module {
  readonly config: Required<VisionConfig>;
  readonly vision_model: VisionTransformer;
  constructor(config: VisionConfig) {
    super();
    this.config = resolveVisionConfig(config);
    this.vision_model = this.child('vision_model', new VisionTransformer(this.config));
  }

  get numLayers(): number {
    return this.config.numLayers;
  }

  /** Number of tokens per image in the hidden states (patches, plus the class token for CLIP). */
  get numTokens(): number {
    return this.vision_model.embeddings.numPositions;
  }

  /** pixels NHWC [B, H, W, 3] (normalised) -> last hidden state, pooled output, every hidden state. */
  forward(pixels: tf.Tensor, ctx?: ForwardContext): VisionOutput {
    const vm = this.vision_model;
    return tf.tidy(() => {
      let h: tf.Tensor3D = vm.embeddings.forward(pixels);
      if (vm.pre_layrnorm) h = vm.pre_layrnorm.forward(h) as tf.Tensor3D;
      const hiddenStates: tf.Tensor3D[] = [h];
      for (const layer of vm.encoder.layers) {
        h = layer.forward(h, { ctx }) as tf.Tensor3D;
        hiddenStates.push(h);
      }
      let lastHiddenState = h;
      let pooled: tf.Tensor2D;
      if (this.config.kind === 'clip') {
        const [B, , d] = h.shape;
        pooled = vm.post_layernorm.forward(tf.reshape(tf.slice(h, [0, 0, 0], [B, 1, d]), [B, d])) as tf.Tensor2D;
      } else {
        lastHiddenState = vm.post_layernorm.forward(h) as tf.Tensor3D;
        pooled = vm.head ? vm.head.forward(lastHiddenState) : (tf.mean(lastHiddenState, 1) as tf.Tensor2D);
      }
      return { lastHiddenState, pooled, hiddenStates } as unknown as tf.TensorContainer;
    }) as unknown as VisionOutput;
  }

  /**
   * Patch features as LLaVA feeds its projector: the hidden state at `layer` in HF's hidden_states
   * indexing (0 = embeddings, i = after layer i, negative from the end: -2, the default, is the
   * penultimate layer's output), CLIP's class token dropped: [B, N, d]. Runs only the layers it needs.
   */
  patchFeatures(pixels: tf.Tensor, layer = -2, ctx?: ForwardContext): tf.Tensor3D {
    const L = this.numLayers;
    const upTo = layer < 0 ? L + 1 + layer : layer;
    if (!Number.isInteger(upTo) || upTo < 0 || upTo > L) throw new AdaptorkitError('INVALID_ARGUMENT', `patchFeatures: layer ${layer} is outside the encoder's ${L + 1} hidden states`);
    const vm = this.vision_model;
    return tf.tidy(() => {
      let h: tf.Tensor3D = vm.embeddings.forward(pixels);
      if (vm.pre_layrnorm) h = vm.pre_layrnorm.forward(h) as tf.Tensor3D;
      for (let i = 0; i < upTo; i++) h = vm.encoder.layers.at(i).forward(h, { ctx }) as tf.Tensor3D;
      const [B, n, d] = h.shape;
      return this.config.kind === 'clip' ? (tf.slice(h, [0, 1, 0], [B, n - 1, d]) as tf.Tensor3D) : h;
    });
  }
}
