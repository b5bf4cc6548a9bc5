/** The Houlsby bottleneck adapter: y = x + up(act(down(x))), up zero-initialised (starts as the identity). */
import { activate, Linear, Module, tf, type Activation, type ForwardContext } from '@adaptorkit/core';

export class BottleneckAdapter extends Module {
  readonly down: Linear;
  readonly up: Linear;
  constructor(readonly dim: number, readonly size: number, readonly act: Activation = 'gelu', initStd = 0.01) {
    super();
    this.down = this.child('down', new Linear(dim, size, { bias: true, init: { kind: 'truncnormal', std: initStd } }));
    this.up = this.child('up', new Linear(size, dim, { bias: true, init: { kind: 'zeros' } }));
  }

  /** x [..., d] -> [..., d] */
  forward(x: tf.Tensor, _ctx?: ForwardContext): tf.Tensor {
    return tf.tidy(() => tf.add(x, this.up.forward(activate(this.down.forward(x), this.act)))); // [..., d]
  }

  /** Trainable parameters of one adapter: 2 d m + m + d. */
  static parameters(dim: number, size: number): number {
    return 2 * dim * size + size + dim;
  }
}
