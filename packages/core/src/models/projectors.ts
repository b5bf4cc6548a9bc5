/** Projectors from an encoder's feature width into the LLM's embedding width. */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError } from '../errors.js';
import type { ForwardContext } from '../nn/context.js';
import { activate, Linear, type Activation } from '../nn/layers.js';
import { Module } from '../nn/module.js';

/**
 * LLaVA's `mlp{N}x_gelu`: N Linear layers with GELU between. Children are named like LLaVA's
 * nn.Sequential ('0', '2', '4', ...) so HF checkpoints' `mm_projector.{i}.weight` load as they are.
 */
export class MLPProjector extends Module {
  readonly linears: Linear[] = [];
  constructor(readonly inDim: number, readonly outDim: number, readonly depth = 2, readonly act: Activation = 'gelu') {
    super();
    if (!Number.isInteger(depth) || depth < 1) throw new AdaptorkitError('INVALID_CONFIG', `projector depth must be >= 1, got ${depth}`);
    for (let i = 0; i < depth; i++) this.linears.push(this.child(String(2 * i), new Linear(i === 0 ? inDim : outDim, outDim, { bias: true })));
  }
  /** [..., inDim] -> [..., outDim] */
  forward(x: tf.Tensor, _ctx?: ForwardContext): tf.Tensor {
    return tf.tidy(() => {
      let h = x;
      this.linears.forEach((l, i) => {
        h = l.forward(h);
        if (i < this.linears.length - 1) h = activate(h, this.act);
      });
      return h;
    });
  }
}

/** Bottleneck: Linear in -> r, activation, Linear r -> out (LaVIN's 1024 -> 128 -> d with SiLU). */
export class BottleneckProjector extends Module {
  readonly down: Linear;
  readonly up: Linear;
  constructor(readonly inDim: number, readonly bottleneck: number, readonly outDim: number, readonly act: Activation = 'silu') {
    super();
    this.down = this.child('down', new Linear(inDim, bottleneck, { bias: true }));
    this.up = this.child('up', new Linear(bottleneck, outDim, { bias: true }));
  }
  forward(x: tf.Tensor, _ctx?: ForwardContext): tf.Tensor {
    return tf.tidy(() => this.up.forward(activate(this.down.forward(x), this.act)));
  }
}

/**
 * [cells^2, g^2] averaging matrix over a g x g patch grid (row-major): row c has 1 / (patches in
 * cell c) at every patch whose centre lies in cell c of a cells x cells grid over the same square.
 */
export function cellPoolMatrix(g: number, cells: number): tf.Tensor2D {
  const cellOf = (py: number, px: number): number => Math.floor(((py + 0.5) / g) * cells) * cells + Math.floor(((px + 0.5) / g) * cells);
  const count = new Array<number>(cells * cells).fill(0);
  for (let py = 0; py < g; py++) for (let px = 0; px < g; px++) count[cellOf(py, px)]!++;
  const w = new Float32Array(cells * cells * g * g);
  for (let py = 0; py < g; py++) for (let px = 0; px < g; px++) w[cellOf(py, px) * g * g + py * g + px] = 1 / count[cellOf(py, px)]!;
  return tf.tensor2d(w, [cells * cells, g * g]);
}

/** Patch tokens [B, N, d] pooled by a [C, N] matrix (e.g. `cellPoolMatrix`) -> [B, C, d], as 2-D matMuls. */
export function poolTokens(tokens: tf.Tensor3D, pool: tf.Tensor2D): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, N, d] = tokens.shape;
    const C = pool.shape[0];
    const pooled = tf.matMul(tf.reshape(tf.transpose(tokens, [0, 2, 1]), [B * d, N]), pool, false, true); // [B * d, C]
    return tf.transpose(tf.reshape(pooled, [B, d, C]), [0, 2, 1]) as tf.Tensor3D;
  });
}
