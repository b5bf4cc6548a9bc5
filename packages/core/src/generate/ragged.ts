/** Batched decoding of prompts of different lengths: left padding and the mask that hides the pads. */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError, formatShape } from '../errors.js';

const NEG = -1e9;

/**
 * Rows of ids (any lengths) -> int32 [B, T] left-padded with `padId`, and each row's pad count.
 * A ready [B, T] tensor passes through with no pads. `who` names the caller in errors.
 * With rotary positions, left padding leaves each row's relative positions unchanged.
 */
export function leftPadRows(ids: tf.Tensor | readonly (readonly number[])[], padId: number, who = 'generate'): { ids: tf.Tensor; pads: number[] } {
  if (ids instanceof tf.Tensor) {
    if (ids.rank !== 2) throw new AdaptorkitError('SHAPE_MISMATCH', `${who}: ids must be [B, T], got ${formatShape(ids.shape)}`);
    return { ids, pads: new Array<number>(ids.shape[0]!).fill(0) };
  }
  if (ids.length === 0) throw new AdaptorkitError('INVALID_ARGUMENT', `${who}: no prompts given`);
  const T = Math.max(...ids.map((r) => r.length));
  if (T === 0) throw new AdaptorkitError('INVALID_ARGUMENT', `${who}: every prompt is empty`);
  const pads = ids.map((r) => T - r.length);
  const flat = new Int32Array(ids.length * T).fill(padId);
  ids.forEach((r, b) => flat.set(r, b * T + pads[b]!));
  return { ids: tf.tensor2d(flat, [ids.length, T], 'int32'), pads };
}

/** Additive mask [B, 1, 1, S] hiding each row's pad keys, which sit at [offset, offset + pads[b]). */
export function padKeyMask(pads: readonly number[], S: number, offset = 0): tf.Tensor4D {
  const m = new Float32Array(pads.length * S);
  pads.forEach((p, b) => m.fill(NEG, b * S + offset, b * S + Math.min(S, offset + p)));
  return tf.tensor4d(m, [pads.length, 1, 1, S]);
}
