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
