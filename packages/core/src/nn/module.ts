/**
 * Module: a tree of named children and parameters. Paths come from structure
 * (`model.layers.3.self_attn.q_proj.weight`), so the same walk gives parameter names, the state
 * dict, freezing by subtree, and the optimizer's trainable list.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError, formatShape } from '../errors.js';
import { Parameter, shapesEqual, type Init, type ParamLayout } from './parameter.js';

export abstract class Module {
  private readonly _params = new Map<string, Parameter>();
  private readonly _children = new Map<string, Module>();

  /** Register a new parameter under `name`. */
  protected param(name: string, shape: readonly number[], init: Init, opts: { trainable?: boolean; layout?: ParamLayout; bf16Capable?: boolean } = {}): Parameter {
    checkName(name);
    if (this._params.has(name) || this._children.has(name)) {
      throw new AdaptorkitError('INVALID_ARGUMENT', `'${name}' is already registered in ${this.constructor.name}`);
    }
    const p = new Parameter(shape, init, opts);
    this._params.set(name, p);
    return p;
  }

  /** Register a child module under `name` and return it. */
  protected child<M extends Module>(name: string, m: M): M {
    checkName(name);
    if (this._params.has(name) || this._children.has(name)) {
      throw new AdaptorkitError('INVALID_ARGUMENT', `'${name}' is already registered in ${this.constructor.name}`);
    }
    this._children.set(name, m);
    return m;
  }

  /**
   * Replace the child registered as `name` (e.g. wrap a Linear with a LoRA layer). The caller must
   * also point any field that holds the old child at the new one; layers in core read their
   * children through `getChild`-backed accessors so replacement takes effect in forward.
   */
  replaceChild<M extends Module>(name: string, m: M): M {
    if (!this._children.has(name)) {
      throw new AdaptorkitError('INVALID_ARGUMENT', `${this.constructor.name} has no child '${name}' to replace (children: ${[...this._children.keys()].join(', ')})`);
    }
    this._children.set(name, m);
    return m;
  }

  /** Add a child after construction (adapters attach this way). */
  addChild<M extends Module>(name: string, m: M): M {
    return this.child(name, m);
  }

  /** Remove a child added after construction; returns it (not disposed). */
  removeChild(name: string): Module | undefined {
    const m = this._children.get(name);
    this._children.delete(name);
    return m;
  }

  getChild<M extends Module = Module>(name: string): M {
    const m = this._children.get(name);
    if (m === undefined) throw new AdaptorkitError('INVALID_ARGUMENT', `${this.constructor.name} has no child '${name}'`);
    return m as M;
  }

  hasChild(name: string): boolean {
    return this._children.has(name);
  }

  getParam(name: string): Parameter {
    const p = this._params.get(name);
    if (p === undefined) throw new AdaptorkitError('INVALID_ARGUMENT', `${this.constructor.name} has no parameter '${name}'`);
    return p;
  }

  *namedChildren(): IterableIterator<[string, Module]> {
    yield* this._children.entries();
  }

  /** Every module in the tree with its dotted path ('' for this one), depth first. */
  *namedModules(prefix = ''): IterableIterator<[string, Module]> {
    yield [prefix, this];
    for (const [name, m] of this._children) yield* m.namedModules(prefix ? `${prefix}.${name}` : name);
  }

  /** Every parameter with its dotted path, depth first; a parameter shared by two paths is listed once. */
  namedParameters(prefix = ''): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    const seen = new Set<Parameter>();
    const walk = (m: Module, pre: string): void => {
      for (const [name, p] of m._params) {
        if (seen.has(p)) continue;
        seen.add(p);
        out.push([pre ? `${pre}.${name}` : name, p]);
      }
      for (const [name, c] of m._children) walk(c, pre ? `${pre}.${name}` : name);
    };
    walk(this, prefix);
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedTrainableParameters(): [string, Parameter][] {
    return this.namedParameters().filter(([, p]) => p.trainable);
  }

  trainableParameters(): Parameter[] {
    return this.parameters().filter((p) => p.trainable);
  }

  /** Mark every parameter of this subtree frozen. */
  freeze(): this {
    for (const p of this.parameters()) p.trainable = false;
    return this;
  }

  /** Mark every parameter of this subtree trainable. */
  unfreeze(): this {
    for (const p of this.parameters()) p.trainable = true;
    return this;
  }

  countParameters(opts: { trainable?: boolean } = {}): number {
    let n = 0;
    for (const p of this.parameters()) if (opts.trainable === undefined || p.trainable === opts.trainable) n += p.size;
    return n;
  }

  /** Name -> live variable (stored layout). The tensors belong to the module: do not dispose them. */
  stateDict(opts: { trainableOnly?: boolean } = {}): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const [name, p] of this.namedParameters()) if (!opts.trainableOnly || p.trainable) out.set(name, p.value);
    return out;
  }

  /**
   * Copy tensors into parameters by name (stored layout). strict (default): every parameter must be
   * present and no name may be unknown. A wrong shape is always an error naming the tensor and both
   * shapes. Nothing is written unless every check passes.
   */
  loadStateDict(state: Map<string, tf.Tensor> | Record<string, tf.Tensor>, opts: { strict?: boolean } = {}): { missing: string[]; unexpected: string[] } {
    const strict = opts.strict ?? true;
    const entries = state instanceof Map ? state : new Map(Object.entries(state));
    const params = new Map(this.namedParameters());
    const missing = [...params.keys()].filter((k) => !entries.has(k));
    const unexpected = [...entries.keys()].filter((k) => !params.has(k));
    if (strict && missing.length > 0) {
      throw new AdaptorkitError('MISSING_TENSOR', `missing tensor(s) for ${this.constructor.name}: ${preview(missing)}`);
    }
    if (strict && unexpected.length > 0) {
      throw new AdaptorkitError('UNEXPECTED_TENSOR', `unexpected tensor(s) for ${this.constructor.name}: ${preview(unexpected)}`);
    }
    for (const [name, t] of entries) {
      const p = params.get(name);
      if (p && !shapesEqual(p.shape, t.shape)) {
        throw new AdaptorkitError('SHAPE_MISMATCH', `tensor '${name}': model expects ${formatShape(p.shape)}, got ${formatShape(t.shape)}`);
      }
    }
    for (const [name, t] of entries) params.get(name)?.assign(t, name);
    return { missing, unexpected };
  }

  /** Dispose every parameter of the tree. */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
  }
}

/** An ordered list of modules; children are named '0', '1', ... */
export class ModuleList<M extends Module = Module> extends Module implements Iterable<M> {
  private readonly items: M[] = [];
  constructor(items: Iterable<M> = []) {
    super();
    for (const m of items) this.push(m);
  }
  push(m: M): void {
    this.child(String(this.items.length), m);
    this.items.push(m);
  }
  get length(): number {
    return this.items.length;
  }
  at(i: number): M {
    const m = this.items[i];
    if (m === undefined) throw new AdaptorkitError('INVALID_ARGUMENT', `index ${i} out of range for a list of ${this.items.length}`);
    return m;
  }
  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}

function checkName(name: string): void {
  if (!/^[A-Za-z0-9_]+$/.test(name)) {
    throw new AdaptorkitError('INVALID_ARGUMENT', `invalid module/parameter name '${name}': use letters, digits and _ (dots come from structure)`);
  }
}

function preview(names: string[]): string {
  return names.length <= 8 ? names.join(', ') : `${names.slice(0, 8).join(', ')} ... (${names.length} in all)`;
}
