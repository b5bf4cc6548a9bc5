/**
 * Activation recomputation: run a block so that its backward pass recomputes the block's forward
 * instead of keeping every intermediate activation from the forward pass. Only the block's input is
 * kept, so training memory grows with one layer's activations, not all of them.
 *
 * How: a tf.customGrad whose inputs are the block input x and the block's trainable variables. Its
 * forward runs inside the kernel (tfjs records no tape there: nothing is kept); its gradient
 * re-runs the block under a fresh gradient tape and returns d/dx and d/dvariables, so trainable
 * adapters inside the block (slot adapters) train exactly as on the stored path.
 * Dropout masks drawn in the forward are recorded and replayed in the recomputation, so the
 * recomputed activations are the same ones. The block must read trainable parameters only from
 * `params` (its own subtree): a trainable variable owned elsewhere would get no gradient through it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError } from '../errors.js';
import type { Parameter } from './parameter.js';

export type RecomputeMode = 'none' | 'layers';

type CustomGradientFunc = Parameters<typeof tf.customGrad>[0];

interface MaskTape {
  masks: Float32Array[];
  replay: boolean;
  next: number;
}
let maskTape: MaskTape | undefined;

/** Dropout's mask source: a fresh mask, recorded (forward) or replayed (recomputation) inside recomputed(). */
export function dropoutMask(n: number, make: () => Float32Array): Float32Array {
  const t = maskTape;
  if (!t) return make();
  if (!t.replay) {
    const m = make();
    t.masks.push(m.slice()); // a copy: the array handed to a tensor may be recycled by the backend
    return m;
  }
  const m = t.masks[t.next++];
  if (!m || m.length !== n) throw new AdaptorkitError('INVALID_ARGUMENT', 'recompute: the recomputed block drew different dropout masks than its forward pass (the block is not deterministic)');
  return m.slice();
}

function withMasks<T>(t: MaskTape, fn: () => T): T {
  const prev = maskTape;
  maskTape = t;
  try {
    return fn();
  } finally {
    maskTape = prev;
  }
}

/**
 * y = run(x, aux), its activations recomputed in the backward pass. `aux`: the other tensors run
 * reads (RoPE tables, masks): kept for the recomputation, which gets them as its second argument
 * (the caller's own handles may be disposed by then); they get no gradient. `params`: the
 * trainable parameters run reads.
 */
export function recomputed(run: (x: tf.Tensor, aux: tf.Tensor[]) => tf.Tensor, x: tf.Tensor, aux: readonly tf.Tensor[], params: readonly Parameter[]): tf.Tensor {
  const vars: tf.Variable[] = [...new Set(params.filter((p) => p.trainable).map((p) => p.value))];
  const masks: Float32Array[] = [];
  const f = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const xi = args[0] as tf.Tensor;
    const y = withMasks({ masks, replay: false, next: 0 }, () => tf.tidy(() => run(xi, [...aux])));
    save([xi, ...aux]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ...auxSaved] = saved as [tf.Tensor, ...tf.Tensor[]];
        // A nested tf gradient call at depth 0 replaces the engine's tape and then clears it: keep
        // the outer backward pass's tape (it disposes its saved tensors at the end) and put it back.
        const state = (tf.engine() as unknown as { state: { activeTape: unknown } }).state;
        const outer = state.activeTape;
        let res: { value: tf.Tensor; grads: tf.Tensor[] };
        try {
          res = withMasks({ masks, replay: true, next: 0 }, () => tf.engine().gradients(() => run(xs, auxSaved), [xs, ...vars], dy, true));
        } finally {
          state.activeTape = outer;
        }
        const { value, grads } = res;
        value.dispose();
        return grads.map((g, i) => g ?? tf.zerosLike(i === 0 ? xs : vars[i - 1]!));
      },
    };
  }) as CustomGradientFunc);
  return f(x, ...vars);
}
