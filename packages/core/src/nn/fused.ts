/**
 * Fused transformer pieces: RMS and layer normalisation, SwiGLU, rotate-half RoPE and the attention softmax,
 * each one kernel forward and one backward where the active backend registers them under the names
 * below (@adaptorkit/backend-native does), and the same maths composed from tfjs ops everywhere
 * else. A LLaMA layer's step runs about 40 fewer kernels (and as many fewer passes over its
 * activations) with them. Results agree with the composed ops to float32 rounding (tested in
 * fused.test.ts on the native backend against the cpu one).
 *
 * ADAPTORKIT_FUSED=0 in the environment (or setFusedKernels(false)) uses the composed ops
 * everywhere, e.g. to compare the two.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ATTN_SOFTMAX, ATTN_SOFTMAX_GRAD, LAYER_NORM, LAYER_NORM_GRAD, RMS_NORM, RMS_NORM_GRAD, ROPE, SWIGLU, SWIGLU_GRAD } from '@adaptorkit/kernel-names';

/** tf.customGrad's argument type (its inputs and the save function arrive as one rest list). */
type CustomGradientFunc = Parameters<typeof tf.customGrad>[0];

// Kernel names: spelled once in @adaptorkit/kernel-names (which documents each kernel's inputs,
// attributes and outputs); core re-exports them from backend/kernels.ts.

export { ATTN_SOFTMAX, ATTN_SOFTMAX_GRAD, LAYER_NORM, LAYER_NORM_GRAD, RMS_NORM, RMS_NORM_GRAD, ROPE, SWIGLU, SWIGLU_GRAD };

let enabled = typeof process === 'undefined' || process.env?.['ADAPTORKIT_FUSED'] !== '0';

/** Use the backend's fused kernels where it has them (default), or always the composed tfjs ops. */
export function setFusedKernels(on: boolean): void {
  enabled = on;
}

/** Whether the active backend runs `kernel` (and its gradient kernel) fused. */
export function hasFused(kernel: string, gradKernel?: string): boolean {
  if (!enabled) return false;
  const b = tf.getBackend();
  return tf.getKernel(kernel, b) !== undefined && (gradKernel === undefined || tf.getKernel(gradKernel, b) !== undefined);
}

const run = (kernel: string, inputs: tf.NamedTensorMap, attrs?: Record<string, unknown>) =>
  tf.engine().runKernel(kernel, inputs, attrs as tf.NamedAttrMap);

/**
 * x * rsqrt(mean(x^2, -1) + eps) with a hand-written gradient: with n = x * r,
 * dx = r * (dy - n * mean(dy * n, -1)). Autodiff of the forward ops takes twice the full-size
 * kernels (mean's gradient alone broadcasts through ones, mul and div).
 */
export function rmsNormalize(x: tf.Tensor, eps: number): tf.Tensor {
  const fused = x.dtype === 'float32' && x.rank >= 1 && hasFused(RMS_NORM, RMS_NORM_GRAD);
  const f = tf.customGrad(((xi: tf.Tensor, save: tf.GradSaveFunc) => {
    let n: tf.Tensor;
    let r: tf.Tensor;
    if (fused) {
      [n, r] = run(RMS_NORM, { x: xi }, { eps }) as tf.Tensor[] as [tf.Tensor, tf.Tensor];
    } else {
      r = tf.rsqrt(tf.add(tf.mean(tf.square(xi), -1, true), eps)); // [..., 1]
      n = tf.mul(xi, r); // [..., d]
    }
    save([n, r]);
    return {
      value: n,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [ns, rs] = saved as [tf.Tensor, tf.Tensor];
        if (fused) return run(RMS_NORM_GRAD, { dy, n: ns, r: rs }) as tf.Tensor;
        const m = tf.mean(tf.mul(dy, ns), -1, true); // [..., 1]
        return tf.mul(tf.sub(dy, tf.mul(ns, m)), rs);
      },
    };
  }) as CustomGradientFunc);
  return f(x);
}

/**
 * (x - mean(x, -1)) * rsqrt(var(x, -1) + eps), the normalising half of LayerNorm. Fused where the
 * backend can, with the gradient dx = r * (dy - mean(dy) - n * mean(dy * n)); tf.moments and
 * autodiff otherwise.
 */
export function layerNormalize(x: tf.Tensor, eps: number): tf.Tensor {
  if (!(x.dtype === 'float32' && x.rank >= 1 && hasFused(LAYER_NORM, LAYER_NORM_GRAD))) {
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, -1, true);
      return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    });
  }
  const f = tf.customGrad(((xi: tf.Tensor, save: tf.GradSaveFunc) => {
    const [n, r] = run(LAYER_NORM, { x: xi }, { eps }) as tf.Tensor[] as [tf.Tensor, tf.Tensor];
    save([n, r]);
    return {
      value: n,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => run(LAYER_NORM_GRAD, { dy, n: saved[0]!, r: saved[1]! }) as tf.Tensor,
    };
  }) as CustomGradientFunc);
  return f(x);
}

/**
 * x * sigmoid(x) with a hand-written gradient dy * (s + y * (1 - s)), s = sigmoid(x), y = x * s:
 * 4 full-size kernels backward instead of autodiff's 6.
 */
export function silu(x: tf.Tensor): tf.Tensor {
  const f = tf.customGrad(((xi: tf.Tensor, save: tf.GradSaveFunc) => {
    const s = tf.sigmoid(xi);
    const y = tf.mul(xi, s);
    save([s, y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [ss, ys] = saved as [tf.Tensor, tf.Tensor];
        return tf.mul(dy, tf.add(ss, tf.mul(ys, tf.sub(1, ss))));
      },
    };
  }) as CustomGradientFunc);
  return f(x);
}

/** silu(gate) * up (LLaMA's SwiGLU), fused where the backend can; gate and up of one shape. */
export function swiglu(gate: tf.Tensor, up: tf.Tensor): tf.Tensor {
  const same = gate.dtype === 'float32' && up.dtype === 'float32' && gate.shape.length === up.shape.length && gate.shape.every((d, i) => d === up.shape[i]);
  if (!same || !hasFused(SWIGLU, SWIGLU_GRAD)) return tf.tidy(() => tf.mul(silu(gate), up));
  const f = tf.customGrad(((g: tf.Tensor, u: tf.Tensor, save: tf.GradSaveFunc) => {
    save([g, u]);
    return {
      value: run(SWIGLU, { gate: g, up: u }) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [gs, us] = saved as [tf.Tensor, tf.Tensor];
        return run(SWIGLU_GRAD, { dy, gate: gs, up: us }) as tf.Tensor[];
      },
    };
  }) as CustomGradientFunc);
  return f(gate, up);
}

/** Whether ropeFused can take x [..., T, hd] with these cos/sin tables. */
export function canFuseRope(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): boolean {
  const T = x.shape[x.rank - 2];
  const hd = x.shape[x.rank - 1];
  const table = (t: tf.Tensor) => t.dtype === 'float32' && t.rank === 2 && t.shape[0] === T && t.shape[1] === hd;
  return x.dtype === 'float32' && x.rank >= 2 && hd !== undefined && hd % 2 === 0 && table(cos) && table(sin) && hasFused(ROPE);
}

/** Rotate-half RoPE in one kernel each way (the gradient is the same kernel, transposed). Check canFuseRope first. */
export function ropeFused(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  const f = tf.customGrad(((xi: tf.Tensor, save: tf.GradSaveFunc) => {
    save([cos, sin]);
    return {
      value: run(ROPE, { x: xi, cos, sin }, { inverse: false }) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [c, s] = saved as [tf.Tensor, tf.Tensor];
        return run(ROPE, { x: dy, cos: c, sin: s }, { inverse: true }) as tf.Tensor;
      },
    };
  }) as CustomGradientFunc);
  return f(x);
}

/**
 * Attention probabilities from raw scores x [..., Tq, S]: softmax(scale * x + mask, -1), where
 * `causal` hides key j from query t when j > past + t, and `mask` (optional) is an additive mask
 * that broadcasts against x. Fused where the backend can (the causal mask then costs nothing).
 */
export function attentionSoftmax(x: tf.Tensor, scale: number, opts: { causal?: boolean; past?: number; mask?: tf.Tensor; causalMask?: () => tf.Tensor } = {}): tf.Tensor {
  const causal = opts.causal ?? false;
  const past = opts.past ?? 0;
  if (x.dtype === 'float32' && x.rank >= 2 && scale > 0 && hasFused(ATTN_SOFTMAX, ATTN_SOFTMAX_GRAD)) {
    return tf.tidy(() => {
      // an extra mask is added to the scaled scores first; the causal part stays in the kernel
      const [xs, s] = opts.mask ? [tf.add(tf.mul(x, scale), opts.mask), 1] : [x, scale];
      const f = tf.customGrad(((xi: tf.Tensor, save: tf.GradSaveFunc) => {
        const y = run(ATTN_SOFTMAX, { x: xi }, { scale: s, causal, past }) as tf.Tensor;
        save([y]);
        return {
          value: y,
          gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => run(ATTN_SOFTMAX_GRAD, { dy, y: saved[0]! }, { scale: s }) as tf.Tensor,
        };
      }) as CustomGradientFunc);
      return f(xs);
    });
  }
  return tf.tidy(() => {
    let scores = tf.mul(x, scale);
    if (causal) {
      if (!opts.causalMask) throw new Error('attentionSoftmax: the composed path needs causalMask for a causal softmax');
      scores = tf.add(scores, opts.causalMask());
    }
    if (opts.mask) scores = tf.add(scores, opts.mask);
    return tf.softmax(scores, -1);
  });
}
