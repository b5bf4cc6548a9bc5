/**
 * Save / load only the trainable tensors of a model (the adaptors), beside a frozen base:
 *   adaptorkit_adapter.safetensors  trainable parameters by module path, in checkpoint (HF) layout
 *   adaptorkit_adapter.json         method name and config, base reference, base fingerprint
 * The names are adaptorkit's own so that no PEFT tool takes these files for a PEFT adapter (LoRA
 * deltas are exported in PEFT's format separately: io/peft.ts, @adaptorkit/damc's exportDamcPeft).
 * The base reference is portable: the base folder's path relative to the adapter folder and its
 * name, plus the fingerprint, which hashes the base model's config and the names + shapes of its
 * frozen parameters, so an adapter loaded onto a different base (other size, other architecture)
 * is refused. Adapter folders of the first layout (adapter_config.json / adapter_model.safetensors
 * with format 'adaptorkit-adapter', an absolute base path) still load: they are migrated on read.
 * Both files are written atomically.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError, formatShape } from '../errors.js';
import type { Module } from '../nn/module.js';
import { shapesEqual } from '../nn/parameter.js';
import { writeTextAtomic } from './atomic.js';
import { checkpointSource, readJson } from './hf.js';
import { SafetensorsFile, writeSafetensors } from './safetensors.js';

export const ADAPTER_WEIGHTS = 'adaptorkit_adapter.safetensors';
export const ADAPTER_CONFIG = 'adaptorkit_adapter.json';
/** File names of the first layout (read, never written: they are PEFT's names). */
export const LEGACY_ADAPTER_WEIGHTS = 'adapter_model.safetensors';
export const LEGACY_ADAPTER_CONFIG = 'adapter_config.json';

export interface AdapterFile {
  format: 'adaptorkit-adapter';
  /** 2: portable base reference; 1 (migrated on read): absolute base path, PEFT's file names. */
  version: 1 | 2;
  /** Method name, e.g. 'iaa'. */
  method: string;
  /** The method's config, as given to saveAdapter. */
  config: unknown;
  baseModel: {
    /** Folder the base was loaded from (when known), relative to the adapter folder (version 1: absolute). */
    path: string | null;
    /** That folder's name (a hint when the relative path no longer leads there). */
    name?: string | null;
    /** sha256 of the base config + frozen parameter names and shapes. */
    fingerprint: string;
    /** The base model's config object (for error messages). */
    config: unknown;
    frozenParameters: number;
  };
  /** Saved tensor names (module paths). */
  tensors: string[];
  trainableParameters: number;
}

export interface SaveAdapterOptions {
  method?: string;
  config?: unknown;
  /** Overrides the base path recorded by loadCausalLM / loadVisionEncoder. */
  basePath?: string;
  /** Stored float dtype (default F32, bit-exact). */
  dtype?: 'F32' | 'F16' | 'BF16';
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v as object)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/** The model's own config (CausalLM / VisionEncoder have `.config`), or null. */
function baseConfig(model: Module): unknown {
  const c = (model as unknown as { config?: unknown }).config;
  return c === undefined ? null : canonical(JSON.parse(JSON.stringify(c)));
}

/** Fingerprint of the frozen base: config + frozen parameter names and shapes. */
export function baseFingerprint(model: Module): string {
  const frozen = model
    .namedParameters()
    .filter(([, p]) => !p.trainable)
    .map(([n, p]) => `${n}:${p.shape.join('x')}`);
  const h = createHash('sha256');
  h.update(JSON.stringify(baseConfig(model)));
  h.update('\n');
  h.update(frozen.join('\n'));
  return h.digest('hex');
}

/** The base folder an adapter refers to, resolved against the adapter folder (null when unknown). */
export function adapterBasePath(dir: string, file: AdapterFile): string | null {
  const p = file.baseModel.path;
  return p === null ? null : path.resolve(dir, p);
}

/** Save the trainable tensors of `model` and adaptorkit_adapter.json into `dir`. */
export async function saveAdapter(dir: string, model: Module, opts: SaveAdapterOptions = {}): Promise<AdapterFile> {
  const named = model.namedTrainableParameters();
  if (named.length === 0) {
    throw new AdaptorkitError('INVALID_ARGUMENT', 'saveAdapter: the model has no trainable parameters (attach a method and keep its modules trainable)');
  }
  const frozenCount = model.countParameters({ trainable: false });
  const base = opts.basePath ?? checkpointSource(model)?.path ?? null;
  const file: AdapterFile = {
    format: 'adaptorkit-adapter',
    version: 2,
    method: opts.method ?? 'unknown',
    config: opts.config ?? null,
    baseModel: {
      path: base === null ? null : path.relative(path.resolve(dir), path.resolve(base)).split(path.sep).join('/') || '.',
      name: base === null ? null : path.basename(path.resolve(base)),
      fingerprint: baseFingerprint(model),
      config: baseConfig(model),
      frozenParameters: frozenCount,
    },
    tensors: named.map(([n]) => n),
    trainableParameters: model.countParameters({ trainable: true }),
  };
  const tensors = new Map<string, tf.Tensor>();
  try {
    for (const [n, p] of named) tensors.set(n, p.toExternal());
    await writeSafetensors(path.join(dir, ADAPTER_WEIGHTS), tensors, {
      dtype: opts.dtype,
      metadata: { format: 'pt', method: file.method, base_fingerprint: file.baseModel.fingerprint },
    });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  await writeTextAtomic(path.join(dir, ADAPTER_CONFIG), JSON.stringify(file, null, 2) + '\n');
  return file;
}

/** Where an adapter folder's files are (the current layout, or the first one). */
export function adapterFiles(dir: string): { config: string; weights: string; legacy: boolean } {
  if (!existsSync(path.join(dir, ADAPTER_CONFIG)) && existsSync(path.join(dir, LEGACY_ADAPTER_CONFIG))) {
    return { config: path.join(dir, LEGACY_ADAPTER_CONFIG), weights: path.join(dir, LEGACY_ADAPTER_WEIGHTS), legacy: true };
  }
  return { config: path.join(dir, ADAPTER_CONFIG), weights: path.join(dir, ADAPTER_WEIGHTS), legacy: false };
}

/** Read an adapter's config without touching a model (first-layout folders are migrated in memory). */
export async function readAdapterConfig(dir: string): Promise<AdapterFile> {
  const f = adapterFiles(dir);
  const j = (await readJson(f.config, path.basename(f.config))) as unknown as AdapterFile & { peft_type?: unknown };
  if (f.legacy && typeof j.peft_type === 'string') {
    throw new AdaptorkitError('BAD_FILE', `${f.config} is a PEFT adapter (peft_type ${JSON.stringify(j.peft_type)}), not an adaptorkit one: load it with loadPeftAdapter`);
  }
  const version = f.legacy ? 1 : 2;
  if (j.format !== 'adaptorkit-adapter' || j.version !== version || typeof j.baseModel?.fingerprint !== 'string') {
    throw new AdaptorkitError('BAD_FILE', `${f.config} is not an adaptorkit adapter config (format 'adaptorkit-adapter', version ${version})`);
  }
  return j;
}

function describeConfigDiff(saved: unknown, now: unknown): string {
  if (!saved || !now || typeof saved !== 'object' || typeof now !== 'object') return '';
  const s = saved as Record<string, unknown>;
  const n = now as Record<string, unknown>;
  const diffs = [...new Set([...Object.keys(s), ...Object.keys(n)])]
    .filter((k) => JSON.stringify(s[k]) !== JSON.stringify(n[k]))
    .map((k) => `${k}: saved ${JSON.stringify(s[k])}, this model ${JSON.stringify(n[k])}`);
  return diffs.length ? ` (config differs: ${diffs.slice(0, 6).join('; ')})` : ' (same config, different frozen parameters: was the method attached the same way?)';
}

/**
 * Load an adapter saved by saveAdapter into `model` (the same base, with the same method attached
 * with the same config). Refuses a different base; strict on names and shapes of the trainable
 * tensors. Nothing is assigned unless every check passes.
 */
export async function loadAdapter(dir: string, model: Module, opts: { allowBaseMismatch?: boolean } = {}): Promise<AdapterFile> {
  const file = await readAdapterConfig(dir);
  const fp = baseFingerprint(model);
  if (!opts.allowBaseMismatch && fp !== file.baseModel.fingerprint) {
    throw new AdaptorkitError(
      'SHAPE_MISMATCH',
      `adapter in ${dir} was trained on a different base model` +
        (file.baseModel.path ? ` (${adapterBasePath(dir, file)})` : '') +
        describeConfigDiff(file.baseModel.config, baseConfig(model)) +
        `; load the base it was trained on, or pass { allowBaseMismatch: true } if you know better`,
    );
  }
  const weights = adapterFiles(dir).weights;
  if (!existsSync(weights)) throw new AdaptorkitError('IO_ERROR', `${weights} is missing`);
  const st = await SafetensorsFile.open(weights);
  try {
    const params = new Map(model.namedTrainableParameters());
    const missing = [...params.keys()].filter((n) => !st.has(n));
    const unexpected = st.names().filter((n) => !params.has(n));
    if (missing.length) throw new AdaptorkitError('MISSING_TENSOR', `${weights}: no tensor for trainable parameter(s) ${missing.slice(0, 8).join(', ')}; was the method attached with the same config?`);
    if (unexpected.length) throw new AdaptorkitError('UNEXPECTED_TENSOR', `${weights}: tensor(s) ${unexpected.slice(0, 8).join(', ')} match no trainable parameter of this model`);
    for (const [n, p] of params) {
      const got = st.info(n).shape;
      if (!shapesEqual(got, p.externalShape)) throw new AdaptorkitError('SHAPE_MISMATCH', `${weights}: tensor '${n}' is ${formatShape(got)}, the model expects ${formatShape(p.externalShape)}`);
    }
    for (const [n, p] of params) {
      const t = await st.read(n);
      try {
        tf.tidy(() => p.assign(p.fromExternal(t), n));
      } finally {
        t.dispose();
      }
    }
  } finally {
    await st.close();
  }
  return file;
}
