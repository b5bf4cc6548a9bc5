/**
 * MWA's two new modules. Both return a residual branch (the layer adds it), so with their output
 * projections at zero they contribute exactly nothing.
 *
 *   NewKnowledgeExtractor  a = s * Up(Dropout(ReLU(Down(x))))   per modality, beside the FFN expert
 *   AlignmentEnhancer      e = DropPath(fc2(LN(GELU(fc1(x)))))  shared by both modalities
 */
import { AdaptorkitError, LayerNorm, Linear, Module, Rng, activate, dropout, tf, type ForwardContext, type Parameter } from '@adaptorkit/core';

export interface ExtractorOptions {
  /** A fixed output scale, or 'learnable' (a trained scalar starting at 1, as the reference). */
  scale: number | 'learnable';
  dropout: number;
  layerNorm: 'none' | 'in' | 'out';
  /** Dropout masks. */
  rng: Rng;
}

export class NewKnowledgeExtractor extends Module {
  readonly down: Linear;
  readonly up: Linear;
  readonly adapter_layernorm: LayerNorm | undefined;
  /** The learnable scale, when scale = 'learnable'. */
  readonly scale: Parameter | undefined;
  readonly fixedScale: number;
  constructor(readonly dim: number, readonly bottleneck: number, readonly opts: ExtractorOptions) {
    super();
    // LoRA-style init (reference init_option 'lora'): Down Kaiming-uniform with a = sqrt(5), i.e.
    // U(-1/sqrt(d), 1/sqrt(d)) (core Linear's default); Up and both biases zero.
    this.down = this.child('down', new Linear(dim, bottleneck, { bias: true }));
    this.up = this.child('up', new Linear(bottleneck, dim, { bias: true, init: { kind: 'zeros' } }));
    this.adapter_layernorm = opts.layerNorm === 'none' ? undefined : this.child('adapter_layernorm', new LayerNorm(dim));
    this.scale = opts.scale === 'learnable' ? this.param('scale', [1], { kind: 'ones' }) : undefined;
    this.fixedScale = opts.scale === 'learnable' ? 1 : opts.scale;
  }

  /** x [B, T, d] (the FFN block's input) -> a [B, T, d] */
  forward(x: tf.Tensor, ctx?: ForwardContext): tf.Tensor {
    return tf.tidy(() => {
      const xin = this.opts.layerNorm === 'in' ? this.adapter_layernorm!.forward(x) : x;
      const z = dropout(activate(this.down.forward(xin), 'relu'), this.opts.dropout, ctx, this.opts.rng); // [B, T, b]
      let a = this.up.forward(z); // [B, T, d]
      a = this.scale ? tf.mul(a, this.scale.value) : tf.mul(a, this.fixedScale);
      return this.opts.layerNorm === 'out' ? this.adapter_layernorm!.forward(a) : a;
    });
  }
}

export interface EnhancerOptions {
  /** 'zero': fc2 (weight and bias) zero, fc1 Kaiming-uniform; 'truncnormal': both N(0, 0.02) as the reference. */
  init: 'zero' | 'truncnormal';
  /** Drop-path probability of this layer's branch (training only). */
  dropPath: number;
  /** Drop-path masks. */
  rng: Rng;
  eps?: number;
}

export class AlignmentEnhancer extends Module {
  readonly fc1: Linear;
  readonly ffn_layernorm: LayerNorm;
  readonly fc2: Linear;
  constructor(readonly dim: number, readonly hidden: number, readonly opts: EnhancerOptions) {
    super();
    // torch's trunc_normal_(std=0.02) cuts at +-2 absolute (100 std), so it is a plain N(0, 0.02) in practice;
    // core's 'truncnormal' cuts at +-2 std, which would shrink the std by 12%.
    const ref = { kind: 'normal', std: 0.02 } as const;
    this.fc1 = this.child('fc1', new Linear(dim, hidden, { bias: true, ...(opts.init === 'truncnormal' ? { init: ref } : {}) }));
    this.ffn_layernorm = this.child('ffn_layernorm', new LayerNorm(hidden, opts.eps ?? 1e-5));
    this.fc2 = this.child('fc2', new Linear(hidden, dim, { bias: true, init: opts.init === 'zero' ? { kind: 'zeros' } : ref }));
  }

  /** x [B, T, d] -> branch [B, T, d] (the caller adds the residual) */
  forward(x: tf.Tensor, ctx?: ForwardContext): tf.Tensor {
    return tf.tidy(() => {
      const e = this.fc2.forward(this.ffn_layernorm.forward(activate(this.fc1.forward(x), 'gelu'))); // [B, T, h] inside
      return dropPath(e, this.opts.dropPath, ctx, this.opts.rng);
    });
  }
}

/** Stochastic depth: zero the whole branch of a sample with probability p, scale the rest by 1/(1-p). */
export function dropPath(x: tf.Tensor, p: number, ctx: ForwardContext | undefined, rng: Rng): tf.Tensor {
  if (!ctx?.training || p <= 0) return x;
  if (p >= 1) throw new AdaptorkitError('INVALID_ARGUMENT', `drop-path probability must be < 1, got ${p}`);
  const B = x.shape[0]!;
  const keep = new Float32Array(B);
  for (let i = 0; i < B; i++) keep[i] = rng.next() >= p ? 1 / (1 - p) : 0;
  return tf.tidy(() => tf.mul(x, tf.tensor(keep, [B, ...x.shape.slice(1).map(() => 1)], 'float32'))); // [B, 1, 1]
}
