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
 */
export function valueAndGrads(lossFn: () => tf.Scalar, params: Parameter[]): LossAndGrads {
  if (params.length === 0) throw new AdaptorkitError('INVALID_ARGUMENT', 'valueAndGrads needs at least one trainable parameter');
  for (const p of params) {
    if (!p.trainable) throw new AdaptorkitError('NOT_TRAINABLE', 'valueAndGrads was given a frozen parameter');
  }
  const vars = params.map((p) => p.value);
  const { value, grads } = tf.variableGrads(lossFn, vars);
  const loss = value.dataSync()[0]!;
  value.dispose();
  const out = new Map<Parameter, tf.Tensor>();
  params.forEach((p) => {
    const g = grads[p.value.name];
    if (g) out.set(p, g);
  });
  // parameters the loss does not depend on get zero gradients (tfjs omits them or returns null)
  for (const p of params) if (!out.has(p)) out.set(p, tf.zerosLike(p.value));
  return { loss, grads: out };
}
