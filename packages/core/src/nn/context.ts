/**
 * A bag of per-forward information handed down through layers, so that method packages can route
 * without global state: e.g. DAMC's per-position delta masks, MMA's routing token position.
 * Core layers only pass it along; keys are owned by whoever sets them.
 */
import type * as tf from '@tensorflow/tfjs-core';

export interface ForwardContext {
  /** Training mode: dropout and similar are active. */
  training?: boolean;
  /** Free-form entries set by adapters (prefix keys with the method name). */
  [key: string]: unknown;
}

/** Anything that maps a tensor to a tensor inside a forward: layers and adapters. */
export interface Forward {
  forward(x: tf.Tensor, ctx?: ForwardContext): tf.Tensor;
}
