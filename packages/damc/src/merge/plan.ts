/**
 * The merge plan: for every output tensor, which input tensors (model, name) it is made from and
 * where its parameters come from. Built from headers alone, before any tensor is read.
 *
 * `models:` is one slice over all layers of every model. `slices:` concatenate layer ranges: output
 * layer k of a slice of n layers takes layer first + k of each source, at depth t = k / (n - 1)
 * (1 for a one-layer slice). Tensors outside numbered layers take t = 0: embeddings from the first
 * slice's sources, the rest (final norm, head) from the last slice's, as mergekit plans them.
 */
import { AdaptorkitError } from '@adaptorkit/core';
import { countLayers, layerIndex, sliceDepth, withLayerIndex, type MergeConfig, type ParamScope, type SliceDef } from './config.js';
import type { TensorMeta, TensorSource } from './io.js';

/** Methods that take task vectors against a base model. */
export const USES_BASE = new Set(['task_arithmetic', 'ties', 'dare_linear', 'dare_ties', 'breadcrumbs', 'breadcrumbs_ties', 'della', 'della_linear', 'slerp', 'model_stock']);

export interface PlanInput {
  ref: string;
  /** Tensor name in that model. */
  name: string;
  /** Index of the source in the slice (or in models) for its own parameters; undefined for an unlisted base. */
  source?: number;
}

export interface PlannedTensor {
  name: string;
  meta: TensorMeta;
  /** The base model's tensor (methods that use one), else undefined. */
  base?: PlanInput;
  /** The other inputs, in config order. */
  inputs: PlanInput[];
  scope: ParamScope;
  /** A tensor found in one model only, copied (passthrough_unique). */
  unique?: boolean;
}

export interface MergePlan {
  tensors: PlannedTensor[];
  /** Numbered layers in the output. */
  numLayers: number;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** The output tensor from its inputs, checking presence and shapes. */
function planOne(
  cfg: MergeConfig, outName: string, candidates: { ref: string; name: string; source?: number; isBase: boolean }[],
  sources: ReadonlyMap<string, TensorSource>, scope: ParamScope,
): PlannedTensor {
  const src = (ref: string): TensorSource => {
    const s = sources.get(ref);
    if (!s) throw new AdaptorkitError('INVALID_ARGUMENT', `no source opened for model '${ref}'`);
    return s;
  };
  const present = candidates.filter((c) => src(c.ref).names().includes(c.name));
  if (present.length < candidates.length) {
    if (present.length === 1 && cfg.passthrough_unique) {
      const only = present[0]!;
      return { name: outName, meta: src(only.ref).meta(only.name), inputs: [{ ref: only.ref, name: only.name }], scope, unique: true };
    }
    const missing = candidates.filter((c) => !present.includes(c)).map((c) => src(c.ref).label);
    throw new AdaptorkitError(
      'MISSING_TENSOR',
      `tensor '${outName}' is missing from ${missing.join(', ')} (present in ${present.map((c) => src(c.ref).label).join(', ') || 'none'})` +
        (present.length === 1 ? '; set passthrough_unique: true to copy tensors found in one model only' : ''),
    );
  }
  const metas = present.map((c) => src(c.ref).meta(c.name));
  for (const [j, m] of metas.entries()) {
    if (!sameShape(m.shape, metas[0]!.shape)) {
      throw new AdaptorkitError('SHAPE_MISMATCH', `tensor '${outName}': ${src(present[0]!.ref).label} has [${metas[0]!.shape.join(', ')}] but ${src(present[j]!.ref).label} has [${m.shape.join(', ')}]`);
    }
  }
  const base = present.find((c) => c.isBase);
  const strip = (c: (typeof present)[number]): PlanInput => ({ ref: c.ref, name: c.name, ...(c.source !== undefined ? { source: c.source } : {}) });
  return { name: outName, meta: metas[0]!, ...(base ? { base: strip(base) } : {}), inputs: present.filter((c) => !c.isBase).map(strip), scope };
}

/** Plan a `models:` merge: every tensor name of every model, layers at their own depth. */
function planModels(cfg: MergeConfig, sources: ReadonlyMap<string, TensorSource>): MergePlan {
  const models = cfg.models!;
  const usesBase = USES_BASE.has(cfg.merge_method);
  const baseRef = usesBase ? cfg.base_model : undefined;
  const cands = [
    ...(baseRef ? [{ ref: baseRef, source: models.findIndex((m) => m.model === baseRef), isBase: true }] : []),
    ...models.map((m, i) => ({ ref: m.model, source: i, isBase: false })).filter((c) => c.ref !== baseRef),
  ].map((c) => ({ ...c, source: c.source !== undefined && c.source >= 0 ? c.source : undefined }));
  if (cands.filter((c) => !c.isBase).length === 0) throw new AdaptorkitError('INVALID_CONFIG', 'merge config: models: nothing to merge besides base_model');
  const names = [...new Set(cands.flatMap((c) => sources.get(c.ref)?.names() ?? []))].sort();
  const numLayers = countLayers(names);
  const tensors = names.map((name) => {
    const i = layerIndex(name);
    const scope: ParamScope = { cfg, t: i === undefined ? 0 : sliceDepth(i, numLayers) };
    return planOne(cfg, name, cands.map((c) => ({ ...c, name })), sources, scope);
  });
  return { tensors, numLayers };
}

/** Plan a `slices:` merge: output layers concatenated from the sources' layer ranges. */
function planSlices(cfg: MergeConfig, sources: ReadonlyMap<string, TensorSource>): MergePlan {
  const slices = cfg.slices!;
  const usesBase = USES_BASE.has(cfg.merge_method);
  const candsOf = (s: SliceDef, si: number): { ref: string; source: number; isBase: boolean }[] => {
    const baseRef = usesBase ? (s.base_model ?? cfg.base_model) : undefined;
    if (baseRef !== undefined && !s.sources.some((x) => x.model === baseRef)) {
      throw new AdaptorkitError('INVALID_CONFIG', `merge config: slices.${si}.sources: base model '${baseRef}' must be one of the slice's sources (with a layer_range), as mergekit requires`);
    }
    if (usesBase && s.sources.filter((x) => x.model !== baseRef).length === 0) {
      throw new AdaptorkitError('INVALID_CONFIG', `merge config: slices.${si}.sources: nothing to merge besides the base model`);
    }
    return s.sources.map((x, j) => ({ ref: x.model, source: j, isBase: x.model === baseRef }));
  };
  const layerCount = new Map<string, number>();
  for (const [si, s] of slices.entries()) {
    for (const [j, x] of s.sources.entries()) {
      const src = sources.get(x.model);
      if (!src) throw new AdaptorkitError('INVALID_ARGUMENT', `no source opened for model '${x.model}'`);
      const L = layerCount.get(x.model) ?? countLayers(src.names());
      layerCount.set(x.model, L);
      if (x.layer_range[1] > L) {
        throw new AdaptorkitError('INVALID_CONFIG', `merge config: slices.${si}.sources.${j}.layer_range: [${x.layer_range.join(', ')}] goes past ${src.label}'s ${L} layers`);
      }
    }
  }
  const tensors: PlannedTensor[] = [];
  const nonLayer = (ref: string): string[] => sources.get(ref)!.names().filter((n) => layerIndex(n) === undefined);
  const first = slices[0]!;
  const last = slices[slices.length - 1]!;
  const plannedOutside = (s: SliceDef, si: number, pick: (n: string) => boolean): void => {
    const cands = candsOf(s, si);
    const names = [...new Set(cands.flatMap((c) => nonLayer(c.ref)))].filter(pick).sort();
    for (const name of names) tensors.push(planOne(cfg, name, cands.map((c) => ({ ...c, name })), sources, { cfg, slice: s, t: 0 }));
  };
  const isEmbed = (n: string): boolean => /embed/.test(n);
  plannedOutside(first, 0, isEmbed);
  let out = 0;
  for (const [si, s] of slices.entries()) {
    const cands = candsOf(s, si);
    const n = s.sources[0]!.layer_range[1] - s.sources[0]!.layer_range[0];
    for (let k = 0; k < n; k++, out++) {
      // the layer's tensor names, from every source at its own layer index
      const suffixes = new Set<string>();
      for (const x of s.sources) {
        const l = x.layer_range[0] + k;
        for (const name of sources.get(x.model)!.names()) if (layerIndex(name) === l) suffixes.add(withLayerIndex(name, out));
      }
      for (const outName of [...suffixes].sort()) {
        const inCands = cands.map((c) => ({ ...c, name: withLayerIndex(outName, s.sources[c.source]!.layer_range[0] + k) }));
        tensors.push(planOne(cfg, outName, inCands, sources, { cfg, slice: s, t: sliceDepth(k, n) }));
      }
    }
  }
  plannedOutside(last, slices.length - 1, (n) => !isEmbed(n));
  return { tensors, numLayers: out };
}

/** The plan of a merge over open sources (headers only). */
export function planMerge(cfg: MergeConfig, sources: ReadonlyMap<string, TensorSource>): MergePlan {
  return cfg.slices ? planSlices(cfg, sources) : planModels(cfg, sources);
}

/** Every model reference a config reads. */
export function referencedModels(cfg: MergeConfig): string[] {
  const refs = [
    ...(cfg.base_model && USES_BASE.has(cfg.merge_method) ? [cfg.base_model] : []),
    ...(cfg.models ?? []).map((m) => m.model),
    ...(cfg.slices ?? []).flatMap((s) => [...(s.base_model && USES_BASE.has(cfg.merge_method) ? [s.base_model] : []), ...s.sources.map((x) => x.model)]),
  ];
  return [...new Set(refs)];
}
