/** Feed-forward blocks: gated (SwiGLU, LLaMA; GeGLU, Gemma), Phi-3's fused gated MLP, and plain two-layer MLPs (ViT, projectors). */
import type * as tf from '@tensorflow/tfjs-core';
import * as tfc from '@tensorflow/tfjs-core';
import type { Forward, ForwardContext } from './context.js';
import { swiglu } from './fused.js';
import { activate, Linear, type Activation } from './layers.js';
import { Module } from './module.js';

/** down(act(gate(x)) * up(x)); HF names gate_proj, up_proj, down_proj. */
export class GatedMLP extends Module {
  constructor(readonly dim: number, readonly hidden: number, readonly act: Activation = 'silu', bias = false) {
    super();
    this.child('gate_proj', new Linear(dim, hidden, { bias }));
    this.child('up_proj', new Linear(dim, hidden, { bias }));
    this.child('down_proj', new Linear(hidden, dim, { bias }));
  }
  get gate_proj(): Forward { return this.getChild<Module & Forward>('gate_proj'); }
  get up_proj(): Forward { return this.getChild<Module & Forward>('up_proj'); }
  get down_proj(): Forward { return this.getChild<Module & Forward>('down_proj'); }

  /** [..., d] -> [..., d] */
  forward(x: tf.Tensor, ctx?: ForwardContext): tf.Tensor {
    return tfc.tidy(() => {
      const gate = this.gate_proj.forward(x, ctx); // [..., f]
      const up = this.up_proj.forward(x, ctx);
      const h = this.act === 'silu' ? swiglu(gate, up) : tfc.mul(activate(gate, this.act), up);
      return this.down_proj.forward(h, ctx);
    });
  }
}

/** Phi-3's fused form: gate_up_proj [d -> 2f] (gate first, then up), down(act(gate) * up). */
export class FusedGatedMLP extends Module {
  constructor(readonly dim: number, readonly hidden: number, readonly act: Activation = 'silu', bias = false) {
    super();
    this.child('gate_up_proj', new Linear(dim, 2 * hidden, { bias }));
    this.child('down_proj', new Linear(hidden, dim, { bias }));
  }
  get gate_up_proj(): Forward { return this.getChild<Module & Forward>('gate_up_proj'); }
  get down_proj(): Forward { return this.getChild<Module & Forward>('down_proj'); }

  /** [..., d] -> [..., d] */
  forward(x: tf.Tensor, ctx?: ForwardContext): tf.Tensor {
    return tfc.tidy(() => {
      const [gate, up] = tfc.split(this.gate_up_proj.forward(x, ctx), 2, -1) as [tf.Tensor, tf.Tensor]; // [..., f] each
      const h = this.act === 'silu' ? swiglu(gate, up) : tfc.mul(activate(gate, this.act), up);
      return this.down_proj.forward(h, ctx);
    });
  }
}

/** fc2(act(fc1(x))); HF names fc1, fc2 by default (CLIP/SigLIP), configurable for projectors. */
export class MLP extends Module {
  constructor(
    readonly dim: number,
    readonly hidden: number,
    readonly out: number = dim,
    readonly act: Activation = 'gelu',
    opts: { bias?: boolean; names?: [string, string] } = {},
  ) {
    super();
    const [n1, n2] = opts.names ?? ['fc1', 'fc2'];
    this.names = [n1, n2];
    this.child(n1, new Linear(dim, hidden, { bias: opts.bias ?? true }));
    this.child(n2, new Linear(hidden, out, { bias: opts.bias ?? true }));
  }
  private readonly names: [string, string];
  forward(x: tf.Tensor, ctx?: ForwardContext): tf.Tensor {
    return tfc.tidy(() => {
      const h = activate(this.getChild<Module & Forward>(this.names[0]).forward(x, ctx), this.act);
      return this.getChild<Module & Forward>(this.names[1]).forward(h, ctx);
    });
  }
}
