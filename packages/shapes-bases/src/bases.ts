/**
 * The small ShapesWorld base models that examples and the demo freeze: a LLaMA-style LM pretrained
 * on ShapesWorld text and a CLIP-style vision encoder pretrained contrastively on captions.
 */
import { CausalLM, cellPoolMatrix, EncoderLayer, Embedding, LayerNorm, Linear, Module, ModuleList, poolTokens, VisionEncoder, tf } from '@adaptorkit/core';
import type { CausalLMConfig, Parameter, VisionConfig } from '@adaptorkit/core';

export function shapesLMConfig(vocabSize: number): CausalLMConfig {
  return {
    modelType: 'llama',
    vocabSize,
    hiddenSize: 128,
    intermediateSize: 352,
    numLayers: 4,
    numHeads: 4,
    numKVHeads: 2,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    maxPositionEmbeddings: 512,
    tieWordEmbeddings: false,
  };
}

export function shapesVisionConfig(imageSize = 32): VisionConfig {
  return { kind: 'clip', imageSize, patchSize: 4, hiddenSize: 128, intermediateSize: 384, numLayers: 4, numHeads: 4 };
}

/**
 * A small CLIP-style text tower for contrastive pretraining of the vision encoder: token and
 * position embeddings, bidirectional encoder layers, final LayerNorm, mean over non-pad tokens,
 * projection. Only used during pretraining; it is not shipped.
 */
export class TextTower extends Module {
  readonly token: Embedding;
  readonly position: Embedding;
  readonly layers: ModuleList<EncoderLayer>;
  readonly norm: LayerNorm;
  readonly proj: Linear;
  constructor(vocab: number, readonly maxLen: number, dim: number, layers: number, heads: number, outDim: number) {
    super();
    this.token = this.child('token', new Embedding(vocab, dim));
    this.position = this.child('position', new Embedding(maxLen, dim));
    this.layers = this.child(
      'layers',
      new ModuleList(Array.from({ length: layers }, () => new EncoderLayer({ dim, hidden: 4 * dim, numHeads: heads, layerNormEps: 1e-5, act: 'gelu' }))),
    );
    this.norm = this.child('norm', new LayerNorm(dim));
    this.proj = this.child('proj', new Linear(dim, outDim));
  }
  /** ids int32 [B, T] (pad id `pad`) -> [B, outDim] */
  forward(ids: tf.Tensor2D, pad: number): tf.Tensor2D {
    return tf.tidy(() => {
      const [B, T] = ids.shape;
      const keep = tf.cast(tf.notEqual(ids, pad), 'float32'); // [B, T]
      let h = tf.add(this.token.forward(ids), tf.slice(this.position.weight.value, [0, 0], [T, -1])) as tf.Tensor; // [B, T, d]
      const mask = tf.reshape(tf.mul(tf.sub(1, keep), -1e9), [B, 1, 1, T]);
      for (const l of this.layers) h = l.forward(h, { mask });
      h = this.norm.forward(h);
      const pooled = tf.div(tf.sum(tf.mul(h, tf.expandDims(keep, -1)), 1), tf.expandDims(tf.maximum(tf.sum(keep, 1), 1), -1)); // [B, d]
      return this.proj.forward(pooled) as tf.Tensor2D;
    });
  }
}

/** A projection head on the vision tower's pooled output, for contrastive pretraining only. */
export class VisionProjection extends Module {
  readonly proj: Linear;
  readonly logitScale: Parameter;
  constructor(dim: number, outDim: number) {
    super();
    this.proj = this.child('proj', new Linear(dim, outDim));
    this.logitScale = this.param('logit_scale', [], { kind: 'constant', value: Math.log(1 / 0.07) });
  }
}

/**
 * Dense pretraining heads: the patch tokens of one encoder layer are averaged over each cell of the
 * 3 x 3 scene grid, and linear heads name the shape, colour and size of the object in that cell (or
 * "none"). Contrastive captions alone left shape unreadable from the patch tokens (a linear probe
 * scored no better than on a random encoder); these heads make every cell's tokens say what is
 * there. Only used during pretraining; not shipped.
 */
export class CellHeads extends Module {
  readonly shape: Linear;
  readonly colour: Linear;
  readonly size: Linear;
  /** [9, numPatches]: row c averages the patches whose centre lies in grid cell c. */
  readonly pool: tf.Tensor2D;
  constructor(dim: number, gridPatches: number, classes: { shape: number; colour: number; size: number }) {
    super();
    this.shape = this.child('shape', new Linear(dim, classes.shape));
    this.colour = this.child('colour', new Linear(dim, classes.colour));
    this.size = this.child('size', new Linear(dim, classes.size));
    this.pool = tf.keep(cellPoolMatrix(gridPatches, 3));
  }
  /** patches [B, N, d] -> logits per cell: { shape, colour, size } each [B * 9, classes]. */
  forward(patches: tf.Tensor3D): { shape: tf.Tensor2D; colour: tf.Tensor2D; size: tf.Tensor2D } {
    const [B, , d] = patches.shape;
    const cells = tf.reshape(poolTokens(patches, this.pool), [B * 9, d]) as tf.Tensor2D;
    return { shape: this.shape.forward(cells) as tf.Tensor2D, colour: this.colour.forward(cells) as tf.Tensor2D, size: this.size.forward(cells) as tf.Tensor2D };
  }
  override dispose(): void {
    this.pool.dispose();
    super.dispose();
  }
}

export interface ShapesBases {
  lm: CausalLM;
  vision: VisionEncoder;
}
