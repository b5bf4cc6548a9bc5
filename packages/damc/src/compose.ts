/**
 * Composition of models trained on one frozen base, each for its own modality.
 *
 * NaiveMC: the shared deltas are merged as task vectors, dW = sum_i lambda_i * s_i B_i A_i
 *   (lambda_i = 1/N by default) and applied to every position.
 * DAMC: the text deltas are merged the same way; each modality delta is kept as trained (optionally
 *   rescaled by its own coefficient) and applies only on its modality's span.
 *
 * The merged delta is kept factored, as the list of (A_i, B_i) with coefficients: exactly the sum
 * of the products, never an average of the factors, and the coefficients can be changed without
 * recomputation (coefficient search). Encoders, projectors and boundary embeddings are taken over
 * from their models unchanged (shared, not copied: dispose the sources with the composition).
 */
import { AdaptorkitError, Linear, type CausalLM, type Module } from '@adaptorkit/core';
import { SHARED_DELTA, TEXT_DELTA } from './config.js';
import { RoutedDelta, RoutedGatedMLP, RoutedLoRALinear, type DeltaPart } from './lora.js';
import { DamcModel, loraLayers } from './model.js';

export type ComposeMethod = 'naive' | 'damc';

export interface ComposeOptions {
  method: ComposeMethod;
  /** lambda_i per model for the merged (text / shared) deltas; default 1/N each. */
  coefficients?: number[];
  /** Per-modality rescaling of kept modality deltas (DAMC only); default 1. */
  modalityScales?: Record<string, number>;
  /** Check that every source's frozen base weights equal `base`'s (default true). */
  checkBase?: boolean;
}

export interface ComposedModel {
  model: DamcModel;
  /** Set lambda_i of the merged deltas (takes effect on the next forward). */
  setCoefficients(coefs: number[]): void;
  coefficients(): number[];
}

function parentAndName(root: Module, path: string): [Module, string] {
  const parts = path.split('.');
  const name = parts.pop()!;
  let m = root;
  for (const p of parts) m = m.getChild(p);
  return [m, name];
}

function baseName(path: string): string {
  return path.replace(/\.base_layer\./, '.');
}

/** Compose trained DamcModels on a fresh frozen copy of their shared base LLM. */
export function composeModels(base: CausalLM, models: readonly DamcModel[], opts: ComposeOptions): ComposedModel {
  const N = models.length;
  if (N < 1) throw new AdaptorkitError('INVALID_ARGUMENT', 'composeModels needs at least one model');
  const coefs = opts.coefficients ?? models.map(() => 1 / N);
  if (coefs.length !== N) throw new AdaptorkitError('INVALID_ARGUMENT', `composeModels: ${coefs.length} coefficients for ${N} models`);
  const want = opts.method === 'naive' ? 'shared' : 'decoupled';
  models.forEach((m, i) => {
    if (m.routing !== want) {
      throw new AdaptorkitError('INVALID_ARGUMENT', `composeModels(${opts.method}): model ${i} was trained with ${m.routing === 'shared' ? "mode 'naive'" : "mode 'decoupled'"}; ${opts.method === 'naive' ? 'NaiveMC needs naive' : 'DAMC needs decoupled'} models`);
    }
  });
  if (opts.checkBase ?? true) checkSameBase(base, models);
  base.freeze();

  const composed = new DamcModel(base, want);
  const merged: RoutedDelta[] = [];
  const partOwner: number[][] = []; // per merged delta: model index of each part
  const wrappers = new Map<string, RoutedLoRALinear>();
  const mergedName = opts.method === 'naive' ? SHARED_DELTA : TEXT_DELTA;
  const mergedParts = new Map<string, { parts: DeltaPart[]; owners: number[] }>();

  models.forEach((m, i) => {
    for (const [path, src] of loraLayers(m.language_model)) {
      let w = wrappers.get(path);
      if (!w) {
        const [parent, name] = parentAndName(base, path);
        let p = parent;
        if (name.endsWith('_proj') && ['gate_proj', 'up_proj', 'down_proj'].includes(name) && !(parent instanceof RoutedGatedMLP)) {
          const [gp, gname] = parentAndName(base, path.slice(0, path.lastIndexOf('.')));
          p = gp.replaceChild(gname, new RoutedGatedMLP(parent as never));
        }
        const lin = p.getChild(name);
        if (!(lin instanceof Linear)) throw new AdaptorkitError('INVALID_ARGUMENT', `composeModels: base module ${path} is a ${lin.constructor.name}, not a Linear`);
        w = p.replaceChild(name, new RoutedLoRALinear(lin, { ...src.opts, dropout: 0 }));
        wrappers.set(path, w);
      }
      for (const [dname, d] of src.deltas) {
        if (dname === mergedName) {
          const e = mergedParts.get(path) ?? { parts: [], owners: [] };
          for (const p of d.parts) {
            e.parts.push(p);
            e.owners.push(i);
          }
          mergedParts.set(path, e);
        } else if (opts.method === 'damc') {
          if (w.deltas.has(dname)) throw new AdaptorkitError('INVALID_ARGUMENT', `composeModels: two models have a '${dname}' delta at ${path}; each modality must come from one model`);
          w.addComposite(dname, new RoutedDelta(d.parts, d.parts.map(() => opts.modalityScales?.[dname] ?? 1)));
        } else {
          throw new AdaptorkitError('INVALID_ARGUMENT', `composeModels(naive): model ${i} has a delta '${dname}' besides '${SHARED_DELTA}'`);
        }
      }
    }
    for (const [name, pid] of m.placeholderIds) composed.addModality(name, m.branch(name), pid);
  });
  for (const [path, e] of mergedParts) {
    const d = new RoutedDelta(e.parts, e.owners.map((i) => coefs[i]!));
    wrappers.get(path)!.addComposite(mergedName, d);
    merged.push(d);
    partOwner.push(e.owners);
  }
  composed.loras = [...wrappers.values()];
  composed.setDefaultRoute();
  composed.freeze();
  let current = [...coefs];
  return {
    model: composed,
    setCoefficients(c: number[]) {
      if (c.length !== N) throw new AdaptorkitError('INVALID_ARGUMENT', `setCoefficients: ${c.length} coefficients for ${N} models`);
      current = [...c];
      merged.forEach((d, k) => {
        d.coefs = partOwner[k]!.map((i) => c[i]!);
      });
    },
    coefficients: () => [...current],
  };
}

/** Every frozen LLM weight of every source must equal the base's (bitwise). */
function checkSameBase(base: CausalLM, models: readonly DamcModel[]): void {
  const ref = new Map(base.namedParameters());
  models.forEach((m, i) => {
    for (const [path, p] of m.language_model.namedParameters()) {
      if (/\.lora_[AB]\./.test(path)) continue;
      const name = baseName(path);
      const q = ref.get(name);
      if (!q) throw new AdaptorkitError('MISSING_TENSOR', `composeModels: model ${i} has '${name}', the base does not`);
      const a = p.value.dataSync();
      const b = q.value.dataSync();
      if (a.length !== b.length) throw new AdaptorkitError('SHAPE_MISMATCH', `composeModels: '${name}' is [${p.shape.join(', ')}] in model ${i}, [${q.shape.join(', ')}] in the base`);
      for (let j = 0; j < a.length; j++) {
        if (!Object.is(a[j], b[j])) throw new AdaptorkitError('INVALID_ARGUMENT', `composeModels: model ${i} was not trained on this base: '${name}' differs at element ${j}`);
      }
    }
  });
}

/**
 * Coefficient search on a validation split (an extension; the paper picks them by hand): try every
 * combination of `grid` values for the N merged coefficients, keep the best `evaluate()` score
 * (higher is better), and leave the composition set to it.
 */
export async function searchCoefficients(
  c: ComposedModel,
  grid: readonly number[],
  evaluate: (coefs: number[]) => number | Promise<number>,
): Promise<{ best: number[]; score: number; tried: { coefs: number[]; score: number }[] }> {
  const N = c.coefficients().length;
  const tried: { coefs: number[]; score: number }[] = [];
  const combo = new Array<number>(N).fill(0);
  let best: { coefs: number[]; score: number } | undefined;
  for (;;) {
    const coefs = combo.map((k) => grid[k]!);
    c.setCoefficients(coefs);
    const score = await evaluate(coefs);
    tried.push({ coefs, score });
    if (!best || score > best.score) best = { coefs, score };
    let j = 0;
    while (j < N && ++combo[j]! >= grid.length) combo[j++] = 0;
    if (j === N) break;
  }
  c.setCoefficients(best!.coefs);
  return { best: best!.coefs, score: best!.score, tried };
}
