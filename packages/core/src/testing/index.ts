/**
 * Test helpers for adaptorkit packages: tiny seeded models, numeric asserts and a tensor-leak check.
 * Import from "@adaptorkit/core/testing".
 */
import * as tf from '@tensorflow/tfjs-core';
import { CausalLM, type CausalLMConfig } from '../models/causal-lm.js';
import { VisionEncoder, type VisionConfig } from '../models/vision.js';
import { manualSeed } from '../nn/parameter.js';

export const TINY_LM_CONFIG: CausalLMConfig = {
  vocabSize: 64,
  hiddenSize: 32,
  intermediateSize: 64,
  numLayers: 2,
  numHeads: 4,
  numKVHeads: 2,
  rmsNormEps: 1e-6,
  ropeTheta: 10000,
  maxPositionEmbeddings: 128,
};

export const TINY_VISION_CONFIG: VisionConfig = {
  kind: 'clip',
  imageSize: 16,
  patchSize: 4,
  hiddenSize: 32,
  intermediateSize: 64,
  numLayers: 2,
  numHeads: 4,
};

/**
 * A tiny LLaMA-style model with seeded random weights. Norm weights are perturbed away from 1 so
 * that tests catch a norm applied in the wrong place.
 */
export function tinyCausalLM(seed = 0, overrides: Partial<CausalLMConfig> = {}): CausalLM {
  manualSeed(seed);
  const lm = new CausalLM({ ...TINY_LM_CONFIG, ...overrides });
  perturbOnes(lm.namedParameters(), seed);
  return lm;
}

export function tinyVisionEncoder(seed = 0, overrides: Partial<VisionConfig> = {}): VisionEncoder {
  manualSeed(seed);
  const v = new VisionEncoder({ ...TINY_VISION_CONFIG, ...overrides });
  perturbOnes(v.namedParameters(), seed);
  return v;
}

function perturbOnes(named: [string, import('../nn/parameter.js').Parameter][], seed: number): void {
  manualSeed(seed + 1);
  tf.tidy(() => {
    for (const [name, p] of named) {
      if (p.shape.length === 1 && (name.endsWith('norm.weight') || name.endsWith('layernorm.weight') || /layer_?norm\d?\.weight$/.test(name) || name.endsWith('pre_layrnorm.weight'))) {
        p.assign(tf.add(p.value, tf.randomUniform(p.shape as number[], -0.2, 0.2, 'float32', seed)));
      } else if (name.endsWith('.bias')) {
        p.assign(tf.randomUniform(p.shape as number[], -0.1, 0.1, 'float32', seed + 7));
      }
    }
  });
}

/** Random int32 ids [B, T] in [0, vocab). */
export function randomIds(b: number, t: number, vocab: number, seed = 0): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.floor(tf.randomUniform([b, t], 0, vocab, 'float32', seed)), 'int32') as tf.Tensor2D);
}

export interface CloseOptions {
  atol?: number;
  rtol?: number;
}

/** Max |a - b| over all elements, and the first offending index when over tolerance. */
export function compareClose(a: tf.Tensor | ArrayLike<number>, b: tf.Tensor | ArrayLike<number>, o: CloseOptions = {}): { ok: boolean; maxAbs: number; message: string } {
  const atol = o.atol ?? 1e-5;
  const rtol = o.rtol ?? 1e-5;
  const av = a instanceof tf.Tensor ? a.dataSync() : a;
  const bv = b instanceof tf.Tensor ? b.dataSync() : b;
  if (a instanceof tf.Tensor && b instanceof tf.Tensor && a.shape.join() !== b.shape.join()) {
    return { ok: false, maxAbs: Infinity, message: `shapes differ: [${a.shape}] vs [${b.shape}]` };
  }
  if (av.length !== bv.length) return { ok: false, maxAbs: Infinity, message: `sizes differ: ${av.length} vs ${bv.length}` };
  let maxAbs = 0;
  let bad = -1;
  for (let i = 0; i < av.length; i++) {
    const x = av[i]!;
    const y = bv[i]!;
    const d = Math.abs(x - y);
    if (!(d <= atol + rtol * Math.abs(y))) {
      if (bad < 0) bad = i;
    }
    if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? Infinity : d;
  }
  return {
    ok: bad < 0,
    maxAbs,
    message: bad < 0 ? `max |diff| ${maxAbs}` : `element ${bad}: ${av[bad]} vs ${bv[bad]} (max |diff| ${maxAbs}, atol ${atol}, rtol ${rtol})`,
  };
}

/** Throws unless a and b are elementwise close. */
export function expectClose(a: tf.Tensor | ArrayLike<number>, b: tf.Tensor | ArrayLike<number>, o: CloseOptions = {}): void {
  const r = compareClose(a, b, o);
  if (!r.ok) throw new Error(`expectClose failed: ${r.message}`);
}

/** Throws unless a and b hold exactly the same bits. */
export function expectBitIdentical(a: tf.Tensor | Float32Array, b: tf.Tensor | Float32Array, what = 'tensor'): void {
  const av = a instanceof tf.Tensor ? (a.dataSync() as Float32Array) : a;
  const bv = b instanceof tf.Tensor ? (b.dataSync() as Float32Array) : b;
  const ai = new Uint32Array(av.buffer, av.byteOffset, av.length);
  const bi = new Uint32Array(bv.buffer, bv.byteOffset, bv.length);
  if (ai.length !== bi.length) throw new Error(`${what}: sizes differ (${ai.length} vs ${bi.length})`);
  for (let i = 0; i < ai.length; i++) {
    if (ai[i] !== bi[i]) throw new Error(`${what}: element ${i} differs (${av[i]} vs ${bv[i]})`);
  }
}

/** Copies of every parameter's values by name, for bit-identity checks after training. */
export function snapshotParameters(named: [string, { value: tf.Variable }][]): Map<string, Float32Array> {
  return new Map(named.map(([n, p]) => [n, (p.value.dataSync() as Float32Array).slice()]));
}

/**
 * Run `step` `steps` times and throw if tf.memory().numTensors after the first step differs from
 * the count after the last (a leak of even one tensor per step fails). Returns the counts.
 */
export async function expectFlatTensorCount(step: (i: number) => void | Promise<void>, steps = 20): Promise<number[]> {
  const counts: number[] = [];
  for (let i = 0; i < steps; i++) {
    await step(i);
    counts.push(tf.memory().numTensors);
  }
  const first = counts[0]!;
  const last = counts[counts.length - 1]!;
  if (last !== first) throw new Error(`tensor count grew from ${first} to ${last} over ${steps} steps: ${counts.join(', ')}`);
  return counts;
}
export { webgpuCpuSkipReason, webgpuStats } from './webgpu.js';
