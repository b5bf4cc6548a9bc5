/**
 * Merge whole state dicts tensor by tensor: plan names and shapes from headers, announce the
 * output, then for each output tensor read its inputs, merge, write, and let them go.
 *
 * Memory bound: the inputs of one output tensor decoded to f32 (base + N models), the output
 * written into an input's buffer, and per-method scratch of at most one tensor-sized buffer
 * (model_stock's output; TIES' and breadcrumbs' selections use two 64 K counters and a byte mask;
 * della's keep probabilities, f32) plus an 8 MiB conversion buffer for half-precision output;
 * whatever the model size. Measured: bench/merge-rss.mjs (README).
 */
import { existsSync } from 'node:fs';
import { AdaptorkitError, Rng } from '@adaptorkit/core';
import { boolParam, numParam, parseMergeYaml, type MergeConfig, type MergeDtype } from './config.js';
import { memorySink, memorySource, openCheckpoint, safetensorsSink, type MemoryTensor, type OutDtype, type SinkEntry, type TensorSink, type TensorSource } from './io.js';
import { GTA_METHODS, mergeGta, mergeLinear, mergeModelStock, mergePassthrough, mergeSlerp, type ModelTensor } from './methods.js';
import { planMerge, referencedModels, type PlannedTensor } from './plan.js';

export const OUT_DTYPE: Record<MergeDtype, OutDtype> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' };

export interface MergeReport {
  tensors: number;
  merged: number;
  passedThrough: string[];
  /** Numbered layers in the output. */
  numLayers: number;
  /** Largest tensor handled, in elements. */
  largest: number;
  /** Rows of the output's token embedding (…embed_tokens.weight), when it has one. */
  embedRows?: number;
  seconds: number;
}

/** FNV-1a over a string: a stable per-tensor seed component. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The random mask stream of input `i` for output tensor `name`: independent of tensor order. */
export function dareRng(seed: number, name: string, i: number): Rng {
  return new Rng((hashString(`${seed}:${i}:${name}`) ^ Math.imul(seed, 0x9e3779b1)) >>> 0);
}

/**
 * Run a merge over open sources. `sources` maps every model reference in the config to its
 * source. Returns what was done; the sink receives every output tensor.
 */
export async function mergeSources(cfg: MergeConfig, sources: ReadonlyMap<string, TensorSource>, sink: TensorSink, opts: { metadata?: Record<string, string> } = {}): Promise<MergeReport> {
  const t0 = Date.now();
  const plan = planMerge(cfg, sources);
  const outDtype = OUT_DTYPE[cfg.out_dtype ?? cfg.dtype];
  const entries: SinkEntry[] = plan.tensors.map((p) => ({ name: p.name, shape: p.meta.shape, dtype: p.meta.isFloat ? outDtype : 'I32' }));
  const read = async (ref: string, name: string): Promise<Float32Array | Int32Array | Uint8Array> => sources.get(ref)!.read(name);
  let largest = 0;
  let merged = 0;
  await sink.begin(entries, opts.metadata);
  try {
    for (const p of plan.tensors) {
      largest = Math.max(largest, p.meta.shape.reduce((a, b) => a * b, 1));
      const all = [...(p.base ? [p.base] : []), ...p.inputs];
      if (p.unique || !p.meta.isFloat) {
        await sink.write(p.name, await read(all[0]!.ref, all[0]!.name));
        continue;
      }
      const base = p.base ? ((await read(p.base.ref, p.base.name)) as Float32Array) : undefined;
      const datas: Float32Array[] = [];
      for (const x of p.inputs) datas.push((await read(x.ref, x.name)) as Float32Array);
      await sink.write(p.name, mergeOne(cfg, p, base, datas));
      merged++;
    }
    await sink.end();
  } catch (err) {
    await sink.abort();
    throw err;
  }
  const passedThrough = plan.tensors.filter((p) => p.unique).map((p) => p.name);
  const embedRows = plan.tensors.find((p) => /embed_tokens\.weight$/.test(p.name))?.meta.shape[0];
  return { tensors: entries.length, merged, passedThrough, numLayers: plan.numLayers, largest, ...(embedRows !== undefined ? { embedRows } : {}), seconds: (Date.now() - t0) / 1000 };
}

/** Merge one output tensor from its base (methods that use one) and its other inputs. */
function mergeOne(cfg: MergeConfig, p: PlannedTensor, base: Float32Array | undefined, datas: Float32Array[]): Float32Array {
  const method = cfg.merge_method;
  const { scope, name } = p;
  const need = (what: string): Float32Array => {
    if (!base) throw new AdaptorkitError('MISSING_TENSOR', `tensor '${name}': ${method} needs it in the base model (${what})`);
    return base;
  };
  // per-input parameters are read with the input's own tensor name, global ones with the output's (as mergekit)
  const models: ModelTensor[] = p.inputs.map((x, j) => {
    const m: ModelTensor = {
      data: datas[j]!,
      weight: numParam(scope, 'weight', x.name, 1, x.source),
      density: numParam(scope, 'density', x.name, 1, x.source),
    };
    if (method === 'breadcrumbs' || method === 'breadcrumbs_ties') m.gamma = numParam(scope, 'gamma', x.name, 0.01, x.source);
    if (method === 'della' || method === 'della_linear') m.epsilon = numParam(scope, 'epsilon', x.name, 0.15, x.source);
    if (!(m.density > 0 && m.density <= 1)) throw new AdaptorkitError('INVALID_CONFIG', `merge config: density must be in (0, 1], got ${m.density} for tensor '${x.name}'`);
    return m;
  });
  switch (method) {
    case 'linear':
      return mergeLinear(models, { normalize: boolParam(scope, 'normalize', name, true), inPlace: true });
    case 'slerp': {
      if (models.length !== 1) throw new AdaptorkitError('INVALID_CONFIG', `merge config: slerp merges the base with exactly one other model for tensor '${name}', got ${models.length}`);
      const t = numParam(scope, 't', name, 0.5);
      return mergeSlerp(need('the t = 0 end'), models[0]!.data, t);
    }
    case 'model_stock':
      return mergeModelStock(need('w0'), datas, { filterWise: boolParam(scope, 'filter_wise', name, false), shape: p.meta.shape });
    case 'passthrough': {
      if (datas.length !== 1 || base) throw new AdaptorkitError('INVALID_CONFIG', `merge config: passthrough takes exactly one tensor for '${name}'`);
      const x = p.inputs[0]!;
      const scale = numParam(scope, 'scale', x.name, Number.NaN, x.source);
      return mergePassthrough(datas[0]!, Number.isNaN(scale) ? undefined : scale);
    }
    default: {
      const kind = GTA_METHODS[method];
      return mergeGta(kind, need('task vectors are taken against it'), models, {
        lambda: numParam(scope, 'lambda', name, 1),
        normalize: boolParam(scope, 'normalize', name, kind.defaultNormalize),
        rescale: boolParam(scope, 'rescale', name, kind.defaultRescale),
        rngs: p.inputs.map((x, j) => dareRng(cfg.seed, name, x.source ?? j)),
        shape: p.meta.shape,
        inPlace: true,
      });
    }
  }
}

/** Open every checkpoint a config reads (closing what was opened when one fails). */
export async function openSources(cfg: MergeConfig): Promise<Map<string, TensorSource>> {
  const sources = new Map<string, TensorSource>();
  try {
    for (const r of referencedModels(cfg)) {
      if (r.includes('+') && !existsSync(r)) {
        throw new AdaptorkitError('UNSUPPORTED', `merge config: model '${r}': LoRA references (model+lora) are not supported; merge the adapter into its base first (adaptorkit merge-adapter)`);
      }
      sources.set(r, await openCheckpoint(r));
    }
  } catch (e) {
    for (const s of sources.values()) await s.close();
    throw e;
  }
  return sources;
}

/** Merge checkpoints on disk into one safetensors file (HF names in, HF names out). */
export async function mergeCheckpoints(cfg: MergeConfig, outFile: string, opts: { metadata?: Record<string, string> } = {}): Promise<MergeReport> {
  const sources = await openSources(cfg);
  try {
    return await mergeSources(cfg, sources, safetensorsSink(outFile), { metadata: { merge_method: cfg.merge_method, ...opts.metadata } });
  } finally {
    for (const s of sources.values()) await s.close();
  }
}

/** Merge from YAML text (mergekit-style) to a safetensors file. */
export async function mergeFromYaml(yamlText: string, outFile: string): Promise<MergeReport> {
  return mergeCheckpoints(parseMergeYaml(yamlText), outFile);
}

/** In-memory merge of state dicts (name -> {shape, data}); for tests and small models. */
export async function mergeStateDicts(cfg: MergeConfig, models: ReadonlyMap<string, Map<string, MemoryTensor>>): Promise<Map<string, MemoryTensor>> {
  const sources = new Map<string, TensorSource>([...models].map(([ref, sd]) => [ref, memorySource(ref, sd)]));
  const sink = memorySink();
  await mergeSources(cfg, sources, sink);
  return sink.tensors;
}
