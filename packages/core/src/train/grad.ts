/** Loss + gradients for an explicit list of trainable parameters. */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError } from '../errors.js';
import type { Parameter } from '../nn/parameter.js';

export interface LossAndGrads {
  /** The loss value (a number, the tensor is already disposed). */
  loss: number;
  grads: Map<Parameter, tf.Tensor>;
}

/**
 * Run `lossFn` and return d loss / d p for each given parameter. Only those parameters get
 * gradients (and frozen ones are refused), so no gradient is computed for frozen weights. The
 * caller owns the returned gradient tensors (see disposeGrads / AdamW.step).
 *
 * A parameter the loss does not depend on gets a zero gradient, also when the loss depends on none
 * of them: e.g. a batch of text-only rows when only the image projector trains (tfjs throws there;
 * found when a projector-only run at batch 8 drew an all-text batch at step 92 and failed).
 */
export function valueAndGrads(lossFn: () => tf.Scalar, params: Parameter[]): LossAndGrads {
  if (params.length === 0) throw new AdaptorkitError('INVALID_ARGUMENT', 'valueAndGrads needs at least one trainable parameter');
  for (const p of params) {
    if (!p.trainable) throw new AdaptorkitError('NOT_TRAINABLE', 'valueAndGrads was given a frozen parameter');
  }
  const vars = params.map((p) => p.value);
  // The engine's gradients with allowNoGradients: tf.variableGrads would throw when no parameter
  // is connected, after computing (and leaking) the loss tensor.
  const { value, grads } = tf.engine().gradients(lossFn, vars, undefined, true);
  if (value.rank !== 0) {
    const shape = value.shape;
    tf.dispose([value, ...grads.filter((g): g is tf.Tensor => g != null)]);
    throw new AdaptorkitError('INVALID_ARGUMENT', `the loss must be a scalar, got shape [${shape.join(', ')}]`);
  }
  const loss = value.dataSync()[0]!;
  value.dispose();
  const out = new Map<Parameter, tf.Tensor>();
  params.forEach((p, i) => {
    const g = grads[i];
    if (g) out.set(p, g);
  });
  // parameters the loss does not depend on get zero gradients (tfjs omits them or returns null)
  for (const p of params) if (!out.has(p)) out.set(p, tf.zerosLike(p.value));
  return { loss, grads: out };
}
