/**
 * Rotary position embedding, HF LLaMA convention ("rotate half"):
 *   inv_freq[i] = theta^(-2i/dim), i < dim/2;  angle[p, i] = p * inv_freq[i]
 *   cos/sin tables are [maxPos, dim] with the half-table repeated: cat(angle, angle)
 *   rope(x) = x * cos + rotate_half(x) * sin,  rotate_half([x1, x2]) = [-x2, x1]
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError } from '../errors.js';
import { canFuseRope, ropeFused } from './fused.js';

export interface RopeScaling {
  type: 'linear' | 'llama3';
  factor: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
  originalMaxPositionEmbeddings?: number;
}

export function ropeInvFreq(dim: number, theta: number, scaling?: RopeScaling): Float64Array {
  const half = dim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(theta, (2 * i) / dim);
  if (scaling?.type === 'linear') {
    for (let i = 0; i < half; i++) inv[i]! /= scaling.factor;
  } else if (scaling?.type === 'llama3') {
    const low = scaling.lowFreqFactor ?? 1;
    const high = scaling.highFreqFactor ?? 4;
    const oldCtx = scaling.originalMaxPositionEmbeddings ?? 8192;
    const lowWavelen = oldCtx / low;
    const highWavelen = oldCtx / high;
    for (let i = 0; i < half; i++) {
      const f = inv[i]!;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowWavelen) inv[i] = f / scaling.factor;
      else if (wavelen >= highWavelen) {
        const smooth = (oldCtx / wavelen - low) / (high - low);
        inv[i] = (1 - smooth) * (f / scaling.factor) + smooth * f;
      }
    }
  }
  return inv;
}

/** Precomputed cos/sin tables; `slice(offset, length)` gives [T, dim] views for positions offset.. */
export class RotaryTables {
  private cos: tf.Tensor2D | undefined;
  private sin: tf.Tensor2D | undefined;
  private built = 0;
  constructor(readonly dim: number, readonly theta: number, readonly scaling?: RopeScaling) {
    if (dim % 2 !== 0) throw new AdaptorkitError('INVALID_CONFIG', `rotary dim must be even, got ${dim}`);
  }

  private ensure(n: number): void {
    if (n <= this.built) return;
    const size = Math.max(n, this.built * 2, 256);
    const inv = ropeInvFreq(this.dim, this.theta, this.scaling);
    const half = this.dim / 2;
    const c = new Float32Array(size * this.dim);
    const s = new Float32Array(size * this.dim);
    for (let p = 0; p < size; p++) {
      for (let i = 0; i < half; i++) {
        // angles in float32 like PyTorch (inv_freq float32, positions float32, outer product float32)
        const a = Math.fround(Math.fround(p) * Math.fround(inv[i]!));
        const cv = Math.cos(a);
        const sv = Math.sin(a);
        c[p * this.dim + i] = cv;
        c[p * this.dim + i + half] = cv;
        s[p * this.dim + i] = sv;
        s[p * this.dim + i + half] = sv;
      }
    }
    this.cos?.dispose();
    this.sin?.dispose();
    this.cos = tf.keep(tf.tensor2d(c, [size, this.dim]));
    this.sin = tf.keep(tf.tensor2d(s, [size, this.dim]));
    this.built = size;
  }

  /** cos, sin for positions [offset, offset + length): each [length, dim]. */
  slice(offset: number, length: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
    this.ensure(offset + length);
    return {
      cos: tf.slice(this.cos!, [offset, 0], [length, this.dim]),
      sin: tf.slice(this.sin!, [offset, 0], [length, this.dim]),
    };
  }

  /** cos, sin gathered for explicit positions (int32 [T]): each [T, dim]. */
  gather(positions: number[]): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
    this.ensure(Math.max(0, ...positions) + 1);
    const idx = tf.tensor1d(positions, 'int32');
    const out = { cos: tf.gather(this.cos!, idx) as tf.Tensor2D, sin: tf.gather(this.sin!, idx) as tf.Tensor2D };
    idx.dispose();
    return out;
  }

  dispose(): void {
    this.cos?.dispose();
    this.sin?.dispose();
    this.cos = this.sin = undefined;
    this.built = 0;
  }
}

/** rotate_half as a matrix: (x @ P)[j] = -x[j + hd/2] for j < hd/2, x[j - hd/2] otherwise. */
const rotateHalfMatrices = new Map<number, Float32Array>();
function rotateHalfMatrix(hd: number): Float32Array {
  let p = rotateHalfMatrices.get(hd);
  if (!p) {
    const half = hd / 2;
    p = new Float32Array(hd * hd); // [hd (in), hd (out)]
    for (let j = 0; j < half; j++) {
      p[(j + half) * hd + j] = -1;
      p[j * hd + j + half] = 1;
    }
    rotateHalfMatrices.set(hd, p);
  }
  return p;
}

/**
 * x [B, H, T, hd] with cos/sin [T, hd] -> rotated x.
 * rotate_half is one matMul with a signed permutation (exact: every output is one input times +-1),
 * instead of split + neg + concat: 4 kernels forward and 4 backward instead of 6 and 7, and no
 * half-width copies.
 */
export function applyRope(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  if (canFuseRope(x, cos, sin)) return ropeFused(x, cos, sin); // one kernel each way (fused.ts)
  return tf.tidy(() => {
    const hd = x.shape[x.rank - 1]!;
    const p = tf.tensor2d(rotateHalfMatrix(hd), [hd, hd]);
    const rotated = tf.matMul(x, p); // [B, H, T, hd]
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
  });
}
