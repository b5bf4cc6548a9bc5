/**
 * Load Hugging Face checkpoints as they are on disk: config.json + safetensors (single file or
 * shards with model.safetensors.index.json). Module paths equal HF tensor names, so loading is:
 * read the tensor by name, convert from the checkpoint layout (`param.fromExternal`), assign.
 *
 * Loading is strict: before any weight is read, every model parameter must have a tensor of the
 * right (HF-layout) shape, and every checkpoint tensor belonging to the model must be used. The
 * error names the tensors and both shapes.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError, formatShape } from '../errors.js';
import { CausalLM } from '../models/causal-lm.js';
import { VisionEncoder } from '../models/vision.js';
import type { Module } from '../nn/module.js';
import { shapesEqual, skipInit } from '../nn/parameter.js';
import { CheckpointReader } from './checkpoint.js';
import { causalLMConfigFromHF, visionConfigFromHF, type HFConfig } from './hf-config.js';
import { writeSafetensors } from './safetensors.js';
import { readRegularText } from './regular-file.js';
import { preflightWeights, validateConfigFields } from './validate-config.js';
import { assertBf16Supported, type WeightsDtype } from '../nn/bf16.js';

/** Where a loaded model came from (recorded by the loaders; read by saveAdapter). */
export interface CheckpointSource {
  path: string;
  kind: 'causal-lm' | 'vision';
  /** The config.json object as read. */
  hfConfig: HFConfig;
  /** Checkpoint tensors that were present but deliberately not loaded (e.g. a CLIP text tower). */
  ignored: string[];
}

const sources = new WeakMap<Module, CheckpointSource>();

/** The checkpoint a model was loaded from, if it came from loadCausalLM / loadVisionEncoder. */
export function checkpointSource(m: Module): CheckpointSource | undefined {
  return sources.get(m);
}

export async function readJson(file: string, what = 'file'): Promise<HFConfig> {
  const text = await readRegularText(file, what); // regular files only, size-capped (regular-file.ts)
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new AdaptorkitError('BAD_FILE', `${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new AdaptorkitError('BAD_FILE', `${file} must hold a JSON object`);
  return json as HFConfig;
}

export interface LoadWeightsOptions {
  /** Default true: missing / unexpected tensors are errors. Shape mismatches are always errors. */
  strict?: boolean;
  /** Checkpoint names that belong to this model (others, e.g. a CLIP text tower, are skipped). */
  belongs?: (name: string) => boolean;
  /** Checkpoint names to skip silently (buffers such as rotary inv_freq or position_ids). */
  ignore?: (name: string) => boolean;
  /**
   * 'bf16': Linear and Embedding weights whose checkpoint tensor is BF16 keep its bits (frozen,
   * half the memory; products through the backend's bf16 kernels); other tensors load as float32.
   * Default 'f32': everything upcast to float32.
   */
  weightsDtype?: WeightsDtype;
}

function preview(names: string[]): string {
  return names.length <= 8 ? names.join(', ') : `${names.slice(0, 8).join(', ')} ... (${names.length} in all)`;
}

/**
 * Load a module's parameters from a checkpoint by HF name. Everything is checked before the first
 * tensor is read; then tensors are read, converted and assigned one at a time.
 * Returns the checkpoint names that were skipped.
 */
export async function loadWeights(module: Module, reader: CheckpointReader, opts: LoadWeightsOptions = {}): Promise<{ loaded: string[]; skipped: string[] }> {
  const strict = opts.strict ?? true;
  const params = module.namedParameters();
  const wanted = new Set(params.map(([n]) => n));
  const skipped: string[] = [];
  const extra: string[] = [];
  for (const name of reader.names()) {
    if (wanted.has(name)) continue;
    if ((opts.belongs && !opts.belongs(name)) || opts.ignore?.(name)) skipped.push(name);
    else extra.push(name);
  }
  const missing = params.filter(([n]) => !reader.has(n)).map(([n]) => n);
  const mismatched: string[] = [];
  for (const [n, p] of params) {
    if (!reader.has(n)) continue;
    const got = reader.info(n).shape;
    if (!shapesEqual(got, p.externalShape)) mismatched.push(`'${n}': checkpoint has ${formatShape(got)}, model expects ${formatShape(p.externalShape)}`);
  }
  const where = `checkpoint ${reader.dir}`;
  if (mismatched.length > 0) {
    throw new AdaptorkitError('SHAPE_MISMATCH', `${where}: tensor shape mismatch (HF layout) for ${preview(mismatched)}; does config.json match the weights?`);
  }
  if (strict && missing.length > 0) {
    throw new AdaptorkitError('MISSING_TENSOR', `${where}: missing tensor(s) ${preview(missing)} (${missing.length} of ${params.length} parameters); is this the right model folder?`);
  }
  if (strict && extra.length > 0) {
    throw new AdaptorkitError('UNEXPECTED_TENSOR', `${where}: unexpected tensor(s) ${preview(extra)}: the model built from config.json has no such parameter`);
  }
  const paramMap = new Map(params);
  const loaded: string[] = [];
  for (const [n, p] of paramMap) {
    if (!reader.has(n)) continue;
    const info = reader.info(n);
    if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16' && info.dtype !== 'F64') {
      throw new AdaptorkitError('BAD_FILE', `${where}: tensor '${n}' has dtype ${info.dtype}; a weight must be a float tensor`);
    }
    if (opts.weightsDtype === 'bf16' && info.dtype === 'BF16' && p.bf16Capable) {
      const bytes = await reader.readBytes(n);
      p.trainable = false; // a base weight: frozen (bf16 storage is for frozen weights only)
      p.storeBf16(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2), n);
      loaded.push(n);
      continue;
    }
    const t = await reader.read(n);
    try {
      tf.tidy(() => p.assign(p.fromExternal(t), n));
    } finally {
      t.dispose();
    }
    loaded.push(n);
  }
  return { loaded, skipped: [...skipped, ...extra] };
}

/** Buffers HF checkpoints sometimes carry that are not parameters. */
function isBuffer(name: string): boolean {
  return name.endsWith('.rotary_emb.inv_freq') || name.endsWith('.position_ids') || name.endsWith('.masked_bias') || name.endsWith('.attn.bias');
}

export interface LoadModelOptions {
  /** Default true (see loadWeights). */
  strict?: boolean;
  /** Default 'f32' (see LoadWeightsOptions.weightsDtype); 'bf16' needs a backend with bf16 kernels (native). */
  weightsDtype?: WeightsDtype;
}

/**
 * Load a LLaMA-family causal LM (model_type llama, mistral, qwen2) from a folder with config.json
 * and model.safetensors or model.safetensors.index.json. Tied embeddings: lm_head.weight is not
 * needed (and ignored if present).
 */
export async function loadCausalLM(dir: string, opts: LoadModelOptions = {}): Promise<CausalLM> {
  const hfConfig = await readJson(path.join(dir, 'config.json'), 'config.json');
  validateConfigFields(hfConfig, path.join(dir, 'config.json')); // bounds first (validate-config.ts)
  const config = causalLMConfigFromHF(hfConfig, path.join(dir, 'config.json'));
  if (opts.weightsDtype === 'bf16') assertBf16Supported(`loading ${dir} with weightsDtype bf16`);
  const reader = await CheckpointReader.open(dir);
  let lm: CausalLM | undefined;
  try {
    const tied = config.tieWordEmbeddings ?? false;
    const weightOpts: LoadWeightsOptions = { strict: opts.strict ?? true, ignore: (n) => isBuffer(n) || (tied && n === 'lm_head.weight'), weightsDtype: opts.weightsDtype };
    await preflightWeights(loadWeights, () => new CausalLM(config), reader, weightOpts, hfConfig, path.join(dir, 'config.json')); // checked shape-only before allocating
    lm = skipInit(() => new CausalLM(config));
    const { skipped } = await loadWeights(lm, reader, weightOpts);
    sources.set(lm, { path: path.resolve(dir), kind: 'causal-lm', hfConfig, ignored: skipped });
    return lm;
  } catch (e) {
    lm?.dispose();
    throw e;
  } finally {
    await reader.close();
  }
}

/**
 * Load a CLIP or SigLIP vision tower: CLIPVisionModel / SiglipVisionModel folders, or the vision
 * part of a CLIPModel / SiglipModel folder (text tower and projections are skipped).
 */
export async function loadVisionEncoder(dir: string, opts: LoadModelOptions = {}): Promise<VisionEncoder> {
  const hfConfig = await readJson(path.join(dir, 'config.json'), 'config.json');
  validateConfigFields(hfConfig, path.join(dir, 'config.json')); // bounds first (validate-config.ts)
  const config = visionConfigFromHF(hfConfig, path.join(dir, 'config.json'));
  const reader = await CheckpointReader.open(dir);
  let enc: VisionEncoder | undefined;
  try {
    const weightOpts: LoadWeightsOptions = { strict: opts.strict ?? true, belongs: (n) => n.startsWith('vision_model.'), ignore: isBuffer };
    await preflightWeights(loadWeights, () => new VisionEncoder(config), reader, weightOpts, hfConfig, path.join(dir, 'config.json')); // checked shape-only before allocating
    enc = skipInit(() => new VisionEncoder(config));
    const { skipped } = await loadWeights(enc, reader, weightOpts);
    sources.set(enc, { path: path.resolve(dir), kind: 'vision', hfConfig, ignored: skipped });
    return enc;
  } catch (e) {
    enc?.dispose();
    throw e;
  } finally {
    await reader.close();
  }
}

/** Save a model's parameters in HF layout (the inverse of the loaders' weight step). */
export async function saveWeights(file: string, module: Module, opts: { dtype?: 'F32' | 'F16' | 'BF16'; metadata?: Record<string, string> } = {}): Promise<void> {
  const tensors = new Map<string, tf.Tensor>();
  try {
    for (const [n, p] of module.namedParameters()) tensors.set(n, p.toExternal());
    await writeSafetensors(file, tensors, { dtype: opts.dtype, metadata: { format: 'pt', ...opts.metadata } });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}
