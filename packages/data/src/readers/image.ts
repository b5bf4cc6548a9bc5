/**
 * Image decoding and resizing through sharp, and the normalisation constants of the common
 * vision encoders. Output is a Float32Array [H, W, 3] (NHWC without N), RGB.
 */
import { rename, stat, writeFile } from 'node:fs/promises';
import sharp from 'sharp';
import { AdaptorkitError } from '@adaptorkit/core';
import { readInsideRoot } from './open-inside.js';

/** OpenAI CLIP (and LLaVA) pixel mean/std, in 0..1 units. */
export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;
/** SigLIP: x * 2 - 1. */
export const SIGLIP_MEAN = [0.5, 0.5, 0.5] as const;
export const SIGLIP_STD = [0.5, 0.5, 0.5] as const;
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

export type Normalization = 'none' | 'clip' | 'siglip' | 'imagenet' | { mean: readonly number[]; std: readonly number[] };

export interface LoadImageOptions {
  /** Output side (square) or [height, width]. */
  size: number | readonly [number, number];
  /**
   * 'pad' (default): keep aspect, pad to the target with the mean colour (LLaVA's pad-to-square);
   * 'crop': keep aspect, resize to cover and centre-crop (CLIP's preprocessing);
   * 'squash': resize ignoring aspect.
   */
  fit?: 'pad' | 'crop' | 'squash';
  /** Default 'none' (values in 0..1). */
  normalize?: Normalization;
  /** Padding colour 0..1 (default: the normalisation mean, i.e. 0 after normalising; grey for 'none'). */
  padColor?: readonly [number, number, number];
  /** Dataset root: the file is opened checked to be a regular file really inside it (readInsideRoot), at this read. */
  root?: string;
}

export interface LoadedImage {
  /** [H, W, 3] */
  data: Float32Array;
  shape: [number, number, 3];
  originalWidth: number;
  originalHeight: number;
}

export function normalizationConstants(n: Normalization): { mean: readonly number[]; std: readonly number[] } | undefined {
  if (n === 'none') return undefined;
  if (n === 'clip') return { mean: CLIP_MEAN, std: CLIP_STD };
  if (n === 'siglip') return { mean: SIGLIP_MEAN, std: SIGLIP_STD };
  if (n === 'imagenet') return { mean: IMAGENET_MEAN, std: IMAGENET_STD };
  if (n.mean.length !== 3 || n.std.length !== 3 || n.std.some((s) => !(s > 0))) {
    throw new AdaptorkitError('INVALID_ARGUMENT', `normalize: expected { mean: [3 numbers], std: [3 positive numbers] }, got ${JSON.stringify(n)}.`);
  }
  return n;
}

/** (x - mean) / std per channel of an [H, W, 3] array, in place; returns it. */
export function normalizeImage(data: Float32Array, mean: readonly number[], std: readonly number[]): Float32Array {
  const [m0, m1, m2] = mean as [number, number, number];
  const [s0, s1, s2] = std as [number, number, number];
  for (let i = 0; i < data.length; i += 3) {
    data[i] = ((data[i] as number) - m0) / s0;
    data[i + 1] = ((data[i + 1] as number) - m1) / s1;
    data[i + 2] = ((data[i + 2] as number) - m2) / s2;
  }
  return data;
}

/** Decode, resize and (optionally) normalise one image file. */
export async function loadImage(file: string, opts: LoadImageOptions): Promise<LoadedImage> {
  const [H, W] = typeof opts.size === 'number' ? [opts.size, opts.size] : opts.size;
  if (!(Number.isInteger(H) && Number.isInteger(W) && H > 0 && W > 0)) {
    throw new AdaptorkitError('INVALID_ARGUMENT', `loadImage: size must be a positive integer or [height, width], got ${JSON.stringify(opts.size)}.`);
  }
  const norm = normalizationConstants(opts.normalize ?? 'none');
  let input: string | Buffer = file;
  if (opts.root !== undefined) {
    input = await readInsideRoot(opts.root, file);
  } else {
    try {
      await stat(file);
    } catch (e) {
      throw new AdaptorkitError('IO_ERROR', `${file}: image not found or unreadable (${(e as Error).message}).`, { cause: e });
    }
  }
  const pad = opts.padColor ?? ((norm?.mean as [number, number, number] | undefined) ?? [0.5, 0.5, 0.5]);
  const fit = opts.fit ?? 'pad';
  try {
    const img = sharp(input, { failOn: 'error' }).rotate();
    const meta = await img.metadata();
    const { data, info } = await img
      .removeAlpha()
      .toColourspace('srgb')
      .resize(W, H, {
        fit: fit === 'pad' ? 'contain' : fit === 'crop' ? 'cover' : 'fill',
        background: { r: Math.round(pad[0] * 255), g: Math.round(pad[1] * 255), b: Math.round(pad[2] * 255) },
        kernel: 'cubic',
      })
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || info.width !== W || info.height !== H) {
      throw new Error(`decoder returned ${info.width}x${info.height}x${info.channels}, expected ${W}x${H}x3`);
    }
    const out = new Float32Array(H * W * 3); // [H, W, 3]
    for (let i = 0; i < out.length; i++) out[i] = (data[i] as number) / 255;
    if (norm) normalizeImage(out, norm.mean, norm.std);
    return { data: out, shape: [H, W, 3], originalWidth: meta.autoOrient?.width ?? meta.width ?? 0, originalHeight: meta.autoOrient?.height ?? meta.height ?? 0 };
  } catch (e) {
    throw new AdaptorkitError('BAD_FILE', `${file}: cannot decode image (${(e as Error).message}); expected a readable JPEG/PNG/WebP/GIF/TIFF file.`, { cause: e });
  }
}

/** Decode the whole image (no resize) to prove it is readable; returns its size. Throws BAD_FILE naming the file. */
export async function checkImageDecodes(file: string): Promise<{ width: number; height: number }> {
  try {
    const { info } = await sharp(file, { failOn: 'error' }).raw().toBuffer({ resolveWithObject: true });
    if (!info.width || !info.height) throw new Error('decoded to an empty image');
    return { width: info.width, height: info.height };
  } catch (e) {
    throw new AdaptorkitError('BAD_FILE', `${file}: cannot decode image (${(e as Error).message}); expected a readable JPEG/PNG/WebP/GIF/TIFF file.`, { cause: e });
  }
}

/** Width and height from the image header (no full decode). */
export async function imageSize(file: string): Promise<{ width: number; height: number }> {
  try {
    const meta = await sharp(file).metadata();
    const width = meta.autoOrient?.width ?? meta.width, height = meta.autoOrient?.height ?? meta.height;
    if (!width || !height) throw new Error('no dimensions in the header');
    return { width, height };
  } catch (e) {
    throw new AdaptorkitError('BAD_FILE', `${file}: cannot read image header (${(e as Error).message}).`, { cause: e });
  }
}

/**
 * Encode float pixels [H, W, 3] in 0..1 (e.g. a ShapesWorld rendering) as a PNG file, written
 * atomically. `scale` enlarges it (nearest neighbour) for viewing.
 */
export async function writeImagePng(file: string, data: Float32Array, size: number | [number, number], scale = 1): Promise<void> {
  const [H, W] = typeof size === 'number' ? [size, size] : size;
  if (data.length !== H * W * 3) throw new AdaptorkitError('SHAPE_MISMATCH', `writeImagePng(${file}): ${data.length} values is not [${H}, ${W}, 3]`);
  if (!(Number.isInteger(scale) && scale >= 1)) throw new AdaptorkitError('INVALID_ARGUMENT', `writeImagePng: scale must be a positive integer, got ${scale}`);
  const bytes = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) bytes[i] = Math.max(0, Math.min(255, Math.round((data[i] as number) * 255)));
  let img = sharp(bytes, { raw: { width: W, height: H, channels: 3 } });
  if (scale > 1) img = img.resize(W * scale, H * scale, { kernel: 'nearest' });
  const png = await img.png().toBuffer();
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, png);
  await rename(tmp, file);
}
