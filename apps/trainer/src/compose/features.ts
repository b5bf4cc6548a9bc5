/**
 * What each modality model sees: the frozen ViT's pooled patch features of an image (cached), the
 * fixed short-time Fourier features of a sound (cached), the trainable sound encoder, and the
 * DAMC batches built from them.
 */
import { IGNORE_INDEX, Linear, Module, activate, tf, type VisionEncoder } from '@adaptorkit/core';
import { IMAGE_TOKEN, SOUND_TOKEN, encodeExample, type Scene, type ShapesWorld } from '@adaptorkit/data';
import type { DamcBatch } from '@adaptorkit/damc';
import type { ComposeExample, ComposeModality } from './tasks.js';

/** Image tokens per image: the 2x2-pooled patch grid. */
export const IMG_TOKENS = 16;
// Sound front end: short-time Fourier magnitudes (fixed), grouped into tokens.
const WIN = 32;
const HOP = 8;
const BINS = WIN / 2 + 1;
const GROUP = 4;

/** Cached inputs of every scene the experiment meets, and the batches made of them. */
export class ComposeFeatures {
  readonly imgDim: number;
  readonly sndTokens: number;
  readonly sndDim: number;
  private readonly frames: number;
  private readonly length: number;
  private readonly hann = Float64Array.from({ length: WIN }, (_, n) => 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / WIN));
  private readonly imageCache = new WeakMap<Scene, Float32Array>(); // scene -> [16 * dv]
  private readonly soundCache = new WeakMap<Scene, Float32Array>();

  constructor(private readonly sw: ShapesWorld, private readonly vision: VisionEncoder) {
    this.imgDim = vision.config.hiddenSize;
    this.length = sw.config.sound.length;
    this.frames = this.length / HOP;
    this.sndTokens = this.frames / GROUP;
    this.sndDim = GROUP * BINS;
  }

  /** Frozen ViT features of these scenes, cached: penultimate layer, class token dropped, 2x2 average-pooled. */
  cacheImages(scenes: readonly Scene[]): void {
    const todo = [...new Set(scenes.filter((s) => !this.imageCache.has(s)))];
    const size = this.vision.config.imageSize;
    for (let i = 0; i < todo.length; i += 64) {
      const chunk = todo.slice(i, i + 64);
      const buf = new Float32Array(chunk.length * size * size * 3);
      chunk.forEach((s, j) => {
        const img = this.sw.renderImage(s);
        for (let k = 0; k < img.length; k++) buf[j * img.length + k] = (img[k]! - 0.5) / 0.25; // the trainer's normalisation
      });
      const f = tf.tidy(() => {
        const h = this.vision.patchFeatures(tf.tensor4d(buf, [chunk.length, size, size, 3])); // [B, g*g, dv]: penultimate, class token dropped
        const [B, n, dv] = h.shape;
        const g = Math.round(Math.sqrt(n));
        const grid = tf.reshape(h, [B, g, g, dv]) as tf.Tensor4D;
        return tf.reshape(tf.avgPool(grid, 2, 2, 'valid'), [B, IMG_TOKENS, dv]); // [B, 16, dv]
      });
      const a = f.dataSync() as Float32Array;
      f.dispose();
      chunk.forEach((s, j) => this.imageCache.set(s, a.slice(j * IMG_TOKENS * this.imgDim, (j + 1) * IMG_TOKENS * this.imgDim)));
    }
  }

  private image(scene: Scene): Float32Array {
    const f = this.imageCache.get(scene);
    if (!f) throw new Error('compose: image features were not cached for a scene (cacheImages first)');
    return f;
  }

  /** [frames, BINS] = [sndTokens, GROUP * BINS] log-magnitude STFT of the scene's sound, cached. */
  sound(scene: Scene): Float32Array {
    let f = this.soundCache.get(scene);
    if (f) return f;
    const x = this.sw.renderSound(scene); // [L]
    f = new Float32Array(this.frames * BINS);
    for (let t = 0; t < this.frames; t++) {
      for (let k = 0; k < BINS; k++) {
        let re = 0;
        let im = 0;
        for (let n = 0; n < WIN; n++) {
          const v = t * HOP + n < this.length ? x[t * HOP + n]! * this.hann[n]! : 0;
          re += v * Math.cos((2 * Math.PI * k * n) / WIN);
          im -= v * Math.sin((2 * Math.PI * k * n) / WIN);
        }
        f[t * BINS + k] = Math.log1p(Math.hypot(re, im));
      }
    }
    this.soundCache.set(scene, f);
    return f;
  }

  /** Examples -> DamcBatch. `keep`: the modalities the model has (other placeholders are dropped from the prompt). */
  batch(examples: readonly ComposeExample[], keep: readonly ComposeModality[], withAnswer: boolean): DamcBatch & { inputs: Record<string, tf.Tensor3D> } {
    const tok = this.sw.tokenizer;
    const rows: { ids: number[]; labels: number[] }[] = [];
    const inputs: Record<ComposeModality, Float32Array[]> = { image: [], sound: [] };
    for (const ex of examples) {
      let prompt = ex.prompt;
      for (const [m, t] of [['image', IMAGE_TOKEN], ['sound', SOUND_TOKEN]] as const) if (!keep.includes(m)) prompt = prompt.replace(`${t} `, '');
      const enc = withAnswer ? encodeExample(tok, { prompt, answer: ex.answer }) : encodeExample(tok, { prompt, answer: '' }, { addEos: false });
      rows.push({ ids: [...enc.inputIds], labels: withAnswer ? [...enc.labels] : [...enc.inputIds].map(() => IGNORE_INDEX) });
      for (const m of keep) {
        const input = ex.inputs.find((i) => i.modality === m);
        if (!input) throw new Error(`example ${ex.id} has no ${m} input`);
        inputs[m].push(m === 'image' ? this.image(input.scene) : this.sound(input.scene));
      }
    }
    const B = rows.length;
    const T = Math.max(...rows.map((r) => r.ids.length));
    const ids = new Int32Array(B * T).fill(tok.padId);
    const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
    rows.forEach((r, b) => {
      ids.set(r.ids, b * T);
      labels.set(r.labels, b * T);
    });
    const stack = (arrs: Float32Array[], n: number, d: number): tf.Tensor3D => {
      const buf = new Float32Array(arrs.length * n * d);
      arrs.forEach((a, i) => buf.set(a, i * n * d));
      return tf.tensor3d(buf, [arrs.length, n, d]);
    };
    const tensors: Record<string, tf.Tensor3D> = {};
    if (keep.includes('image')) tensors['image'] = stack(inputs.image, IMG_TOKENS, this.imgDim);
    if (keep.includes('sound')) tensors['sound'] = stack(inputs.sound, this.sndTokens, this.sndDim);
    return { ids, B, T, labels, lengths: rows.map((r) => r.ids.length), inputs: tensors };
  }
}

/** Pass-through "encoder" for cached frozen features. */
export class Cached extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return x;
  }
}

/** The small trainable sound encoder: per-token MLP over the STFT features. [B, T, 68] -> [B, T, 128] */
export class SoundEncoder extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(inDim: number, dim: number) {
    super();
    this.fc1 = this.child('fc1', new Linear(inDim, dim, { bias: true }));
    this.fc2 = this.child('fc2', new Linear(dim, dim, { bias: true }));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.fc2.forward(activate(this.fc1.forward(x), 'gelu')));
  }
}
