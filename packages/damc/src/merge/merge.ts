/**
 * Merge whole state dicts tensor by tensor: check names and shapes from headers, announce the
 * output, then for each name read that tensor from every model, merge, write, and let it go.
 * Peak memory is a few copies of the largest single tensor, whatever the model size: the inputs
 * (base + N models, decoded to f32), one scratch for TIES' magnitude selection, the output written
 * into an input's buffer, and a small conversion buffer.
 */
import { AdaptorkitError, Rng } from '@adaptorkit/core';
import { countLayers, depthFraction, parseMergeYaml, resolveParam, type MergeConfig } from './config.js';
import { memorySink, memorySource, openCheckpoint, safetensorsSink, type MemoryTensor, type OutDtype, type SinkEntry, type TensorSink, type TensorSource } from './io.js';
import { mergeDareLinear, mergeDareTies, mergeLinear, mergeSlerp, mergeTaskArithmetic, mergeTies, type ModelTensor } from './methods.js';

const DTYPE: Record<MergeConfig['dtype'], OutDtype> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' };

export interface MergeReport {
  tensors: number;
  merged: number;
  passedThrough: string[];
  /** Largest tensor handled, in elements. */
  largest: number;
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

/** The DARE mask stream of model `i` for tensor `name`: independent of tensor order. */
export function dareRng(seed: number, name: string, i: number): Rng {
  return new Rng((hashString(`${seed}:${i}:${name}`) ^ Math.imul(seed, 0x9e3779b1)) >>> 0);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Run a merge over open sources. `sources` maps every model reference in the config (models and
 * base_model) to its source. Returns what was done; the sink receives every output tensor.
 */
export async function mergeSources(cfg: MergeConfig, sources: ReadonlyMap<string, TensorSource>, sink: TensorSink, opts: { metadata?: Record<string, string> } = {}): Promise<MergeReport> {
  const t0 = Date.now();
  const method = cfg.merge_method;
  const baseRef = cfg.base_model;
  const src = (ref: string): TensorSource => {
    const s = sources.get(ref);
    if (!s) throw new AdaptorkitError('INVALID_ARGUMENT', `no source opened for model '${ref}'`);
    return s;
  };
  // the models whose task vectors are merged (the base is not one of them, even when listed)
  const usesBase = method !== 'linear';
  const modelIdx = cfg.models.map((_, i) => i).filter((i) => !(usesBase && cfg.models[i]!.model === baseRef));
  if (method === 'slerp' && modelIdx.length !== 1) {
    throw new AdaptorkitError('INVALID_CONFIG', `merge config: models: slerp merges base_model with exactly one other model, got ${modelIdx.length}`);
  }
  if (modelIdx.length === 0) throw new AdaptorkitError('INVALID_CONFIG', 'merge config: models: nothing to merge besides base_model');
  const refs = [...(usesBase && baseRef ? [baseRef] : []), ...modelIdx.map((i) => cfg.models[i]!.model)];
  const all = refs.map(src);

  // names and shapes, from headers only
  const holders = new Map<string, number[]>(); // name -> indices into `all`
  all.forEach((s, k) => {
    for (const n of s.names()) {
      const h = holders.get(n);
      if (h) h.push(k);
      else holders.set(n, [k]);
    }
  });
  const names = [...holders.keys()].sort();
  const numLayers = countLayers(names);
  const entries: SinkEntry[] = [];
  const passed: string[] = [];
  for (const name of names) {
    const h = holders.get(name)!;
    if (h.length < all.length) {
      if (h.length === 1 && cfg.passthrough_unique) passed.push(name);
      else {
        const missing = all.map((s, k) => (h.includes(k) ? undefined : s.label)).filter((x) => x !== undefined);
        throw new AdaptorkitError(
          'MISSING_TENSOR',
          `tensor '${name}' is missing from ${missing.join(', ')} (present in ${h.map((k) => all[k]!.label).join(', ')})` +
            (h.length === 1 ? '; set passthrough_unique: true to copy tensors found in one model only' : ''),
        );
      }
    }
    const metas = h.map((k) => all[k]!.meta(name));
    const m0 = metas[0]!;
    for (const [j, m] of metas.entries()) {
      if (!sameShape(m.shape, m0.shape)) {
        throw new AdaptorkitError('SHAPE_MISMATCH', `tensor '${name}': ${all[h[0]!]!.label} has [${m0.shape.join(', ')}] but ${all[h[j]!]!.label} has [${m.shape.join(', ')}]`);
      }
    }
    entries.push({ name, shape: m0.shape, dtype: m0.isFloat ? DTYPE[cfg.dtype] : 'I32' });
  }

  let largest = 0;
  let merged = 0;
  await sink.begin(entries, opts.metadata);
  try {
    for (const e of entries) {
      const h = holders.get(e.name)!;
      const size = e.shape.reduce((a, b) => a * b, 1);
      largest = Math.max(largest, size);
      if (h.length === 1 || e.dtype === 'I32') {
        await sink.write(e.name, await all[h[0]!]!.read(e.name));
        continue;
      }
      const x = depthFraction(e.name, numLayers);
      const datas = [] as Float32Array[];
      for (const k of h) datas.push((await all[k]!.read(e.name)) as Float32Array);
      const out = mergeOne(cfg, e.name, x, usesBase, datas, modelIdx);
      datas.length = 0;
      await sink.write(e.name, out);
      merged++;
    }
    await sink.end();
  } catch (err) {
    await sink.abort();
    throw err;
  }
  return { tensors: entries.length, merged, passedThrough: passed, largest, seconds: (Date.now() - t0) / 1000 };
}

/** Merge one tensor; datas[0] is the base when the method uses one. */
function mergeOne(cfg: MergeConfig, name: string, x: number, usesBase: boolean, datas: Float32Array[], modelIdx: number[]): Float32Array {
  const method = cfg.merge_method;
  const base = usesBase ? datas[0]! : undefined;
  const rest = usesBase ? datas.slice(1) : datas;
  const models: ModelTensor[] = rest.map((data, j) => ({
    data,
    weight: resolveParam(cfg, modelIdx[j], 'weight', x, 1),
    density: resolveParam(cfg, modelIdx[j], 'density', x, 1),
  }));
  const lambda = resolveParam(cfg, undefined, 'lambda', x, 1);
  const normalize = cfg.parameters.normalize;
  switch (method) {
    case 'linear':
      return mergeLinear(models, { normalize: normalize ?? true, inPlace: true });
    case 'task_arithmetic':
      return mergeTaskArithmetic(base!, models, { lambda, normalize: normalize ?? false, inPlace: true });
    case 'ties':
      return mergeTies(base!, models, { lambda, normalize: normalize ?? true, inPlace: true });
    case 'dare_linear':
      return mergeDareLinear(base!, models, modelIdx.map((i) => dareRng(cfg.seed, name, i)), { lambda, normalize: normalize ?? false, inPlace: true });
    case 'dare_ties':
      return mergeDareTies(base!, models, modelIdx.map((i) => dareRng(cfg.seed, name, i)), { lambda, normalize: normalize ?? true, inPlace: true });
    case 'slerp':
      return mergeSlerp(base!, rest[0]!, resolveParam(cfg, modelIdx[0], 't', x, 0.5));
  }
}

/** Merge checkpoints on disk into one safetensors file (HF names in, HF names out). */
export async function mergeCheckpoints(cfg: MergeConfig, outFile: string, opts: { metadata?: Record<string, string> } = {}): Promise<MergeReport> {
  const refs = [...new Set([...(cfg.base_model ? [cfg.base_model] : []), ...cfg.models.map((m) => m.model)])];
  const sources = new Map<string, TensorSource>();
  try {
    for (const r of refs) sources.set(r, await openCheckpoint(r));
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
