/**
 * LoRA on frozen Linear maps, PEFT-style: several named adapters on one frozen base, one process.
 *
 *   y = x W0 + b + sum_{a active} s_a (x A_a) B_a          s_a = alpha / r  (rsLoRA: alpha / sqrt(r))
 *
 * `LoraLinear` wraps any Linear (found by its HF module path, so it works for every architecture
 * whose projections are Linear children); the paths follow PEFT's in-memory names:
 * `q_proj.base_layer.weight`, `q_proj.lora_A.<adapter>.weight` ([r, in] in checkpoint layout) and
 * `q_proj.lora_B.<adapter>.weight` ([out, r]). The base layer is never written to: switching,
 * disabling and combining adapters only changes which factors the forward adds.
 *
 * `modules_to_save` (a whole module trained beside the LoRA factors, e.g. lm_head) is a per-adapter
 * copy of the module; while its adapter is active the module's forward runs the copy
 * (`ModuleCopies`). Model-level switching (`setAdapter`, `disableAdapters`, `addWeightedAdapter`)
 * walks the tree for both.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError } from '../errors.js';
import type { Forward, ForwardContext } from './context.js';
import { Embedding, LayerNorm, Linear, RMSNorm, linear } from './layers.js';
import { Module } from './module.js';
import type { Parameter } from './parameter.js';

class Bag extends Module {}

/** A replacement bias for one adapter (PEFT `bias: lora_only`: the trained bias of an adapted layer). */
class BiasOverride extends Module {
  readonly bias: Parameter;
  constructor(n: number) {
    super();
    this.bias = this.param('bias', [n], { kind: 'zeros' }, { trainable: false });
  }
}

export interface LoraAdapter {
  rank: number;
  /** s = alpha / r (or alpha / sqrt(r) with rsLoRA). */
  scale: number;
  /** [in, r] stored ([r, in] in checkpoint layout). */
  A: Linear;
  /** [r, out] stored ([out, r] in checkpoint layout). */
  B: Linear;
  /** Replacement bias while this adapter is active (bias: lora_only). */
  bias?: Parameter;
}

/** A frozen Linear plus named LoRA adapters; `active` lists the adapters the forward adds. */
export class LoraLinear extends Module implements Forward {
  readonly base_layer: Linear;
  readonly lora_A: Module;
  readonly lora_B: Module;
  private readonly adapters = new Map<string, LoraAdapter>();
  private biasBag: Module | undefined;
  active: string[] = [];
  /** false: the base layer alone (PEFT's disable_adapter_layers). */
  enabled = true;

  constructor(base: Linear) {
    super();
    this.base_layer = this.child('base_layer', base);
    this.lora_A = this.child('lora_A', new Bag());
    this.lora_B = this.child('lora_B', new Bag());
  }

  get inFeatures(): number {
    return this.base_layer.inFeatures;
  }
  get outFeatures(): number {
    return this.base_layer.outFeatures;
  }

  /** Add adapter `name` with zero factors (the loader assigns them); frozen. */
  addAdapter(name: string, rank: number, scale: number, opts: { bias?: boolean } = {}): LoraAdapter {
    if (this.adapters.has(name)) throw new AdaptorkitError('INVALID_ARGUMENT', `adapter '${name}' already exists on this layer (delete it first)`);
    if (!Number.isInteger(rank) || rank < 1) throw new AdaptorkitError('INVALID_CONFIG', `lora rank must be a positive integer, got ${rank}`);
    if (!Number.isFinite(scale)) throw new AdaptorkitError('INVALID_CONFIG', `lora scale must be finite, got ${scale}`);
    const A = this.lora_A.addChild(name, new Linear(this.inFeatures, rank, { bias: false, init: { kind: 'zeros' } }));
    const B = this.lora_B.addChild(name, new Linear(rank, this.outFeatures, { bias: false, init: { kind: 'zeros' } }));
    A.freeze();
    B.freeze();
    const a: LoraAdapter = { rank, scale, A, B };
    if (opts.bias) {
      if (!this.base_layer.bias) throw new AdaptorkitError('UNSUPPORTED', `adapter '${name}': a LoRA bias needs a base layer with a bias`);
      this.biasBag ??= this.addChild('lora_bias', new Bag());
      a.bias = this.biasBag.addChild(name, new BiasOverride(this.outFeatures)).bias;
    }
    this.adapters.set(name, a);
    return a;
  }

  deleteAdapter(name: string): void {
    const a = this.adapters.get(name);
    if (!a) return;
    a.A.dispose();
    a.B.dispose();
    a.bias?.dispose();
    this.lora_A.removeChild(name);
    this.lora_B.removeChild(name);
    this.biasBag?.removeChild(name);
    this.adapters.delete(name);
    this.active = this.active.filter((n) => n !== name);
  }

  has(name: string): boolean {
    return this.adapters.has(name);
  }

  adapter(name: string): LoraAdapter {
    const a = this.adapters.get(name);
    if (!a) throw new AdaptorkitError('INVALID_ARGUMENT', `this layer has no adapter '${name}' (has: ${[...this.adapters.keys()].join(', ') || 'none'})`);
    return a;
  }

  names(): string[] {
    return [...this.adapters.keys()];
  }

  /** Adapters the forward applies now. */
  applied(): string[] {
    return this.enabled ? this.active.filter((n) => this.adapters.has(n)) : [];
  }

  /** The bias the forward uses now: an active adapter's replacement, else the base layer's. */
  currentBias(): tf.Tensor | undefined {
    const over = this.applied()
      .map((n) => this.adapters.get(n)!.bias)
      .filter((b): b is Parameter => b !== undefined);
    if (over.length > 1) throw new AdaptorkitError('UNSUPPORTED', `two active adapters replace the same bias (bias: lora_only); activate one of them`);
    return over[0]?.value ?? this.base_layer.bias?.value;
  }

  /** x [..., in] -> [..., out] */
  forward(x: tf.Tensor, _ctx?: ForwardContext): tf.Tensor {
    return tf.tidy(() => {
      let y = this.base_layer.project(x, this.currentBias()); // float32 or bf16-stored base weight
      for (const n of this.applied()) {
        const a = this.adapters.get(n)!;
        if (a.scale === 0) continue;
        y = tf.add(y, linear(tf.mul(linear(x, a.A.weight.value), a.scale), a.B.weight.value)); // [..., r] -> [..., out]
      }
      return y;
    });
  }

  /** s B A of one adapter in stored layout [in, out] (to fold into the base weight). */
  deltaWeight(name: string): tf.Tensor2D {
    const a = this.adapter(name);
    return tf.tidy(() => tf.mul(tf.matMul(a.A.weight.value as tf.Tensor2D, a.B.weight.value as tf.Tensor2D), a.scale));
  }
}

type Copyable = Linear | Embedding | RMSNorm | LayerNorm;

/** Why `m` cannot get per-adapter copies (modules_to_save), or undefined when it can. */
export function copyKindError(m: Module, where: string): string | undefined {
  if (m instanceof Linear || m instanceof Embedding || m instanceof RMSNorm || m instanceof LayerNorm) return undefined;
  return `modules_to_save: '${where}' is a ${m.constructor.name}; adaptorkit keeps per-adapter copies of Linear, Embedding, RMSNorm and LayerNorm modules only`;
}

function copyOf(m: Module, where: string): Copyable {
  if (m instanceof Linear) return new Linear(m.inFeatures, m.outFeatures, { bias: m.bias !== undefined, init: { kind: 'zeros' } });
  if (m instanceof Embedding) return new Embedding(m.numEmbeddings, m.dim, { init: { kind: 'zeros' } });
  if (m instanceof RMSNorm) return new RMSNorm(m.dim, m.eps);
  if (m instanceof LayerNorm) return new LayerNorm(m.dim, m.eps);
  throw new AdaptorkitError('UNSUPPORTED', `modules_to_save: '${where}' is a ${m.constructor.name}; adaptorkit keeps per-adapter copies of Linear, Embedding, RMSNorm and LayerNorm modules only`);
}

interface CopyState {
  copies: Module;
  active: string | undefined;
}
const copyStates = new WeakMap<Module, CopyState>();

/**
 * Per-adapter copies of one module (PEFT's modules_to_save). The copies live under
 * `<module>.modules_to_save.<adapter>`; the module's own parameters are never touched. While an
 * adapter with a copy is active, the module's forward runs that copy. (Code that reads the
 * module's weight directly, e.g. a tied LM head reading embed_tokens.weight, keeps the original,
 * as PEFT's tied head does.)
 */
export class ModuleCopies {
  private constructor(readonly module: Module, private readonly state: CopyState) {}

  static of(module: Module, where: string): ModuleCopies {
    let s = copyStates.get(module);
    if (!s) {
      const why = copyKindError(module, where);
      if (why) throw new AdaptorkitError('UNSUPPORTED', why);
      const copies = module.addChild('modules_to_save', new Bag());
      s = { copies, active: undefined };
      copyStates.set(module, s);
      const state = s;
      const own = (module as unknown as Forward).forward.bind(module);
      (module as unknown as Forward).forward = (x: tf.Tensor, ctx?: ForwardContext): tf.Tensor => {
        const c = state.active === undefined ? undefined : state.copies.getChild<Module & Forward>(state.active);
        return c ? c.forward(x, ctx) : own(x, ctx);
      };
    }
    return new ModuleCopies(module, s);
  }

  static existing(module: Module): ModuleCopies | undefined {
    const s = copyStates.get(module);
    return s ? new ModuleCopies(module, s) : undefined;
  }

  add(name: string, where: string): Module {
    const c = this.state.copies.addChild(name, copyOf(this.module, where));
    c.freeze();
    return c;
  }

  has(name: string): boolean {
    return this.state.copies.hasChild(name);
  }

  get(name: string): Module {
    return this.state.copies.getChild(name);
  }

  names(): string[] {
    return [...this.state.copies.namedChildren()].map(([n]) => n);
  }

  delete(name: string): void {
    const c = this.state.copies.removeChild(name);
    c?.dispose();
    if (this.state.active === name) this.state.active = undefined;
  }

  get active(): string | undefined {
    return this.state.active;
  }

  set active(name: string | undefined) {
    this.state.active = name;
  }
}

/** Every LoraLinear of a model with its path (the original Linear's path). */
export function loraLinears(model: Module): [string, LoraLinear][] {
  return [...model.namedModules()].filter((e): e is [string, LoraLinear] => e[1] instanceof LoraLinear);
}

/** Every module with per-adapter copies, with its path. */
export function moduleCopies(model: Module): [string, ModuleCopies][] {
  const out: [string, ModuleCopies][] = [];
  for (const [p, m] of model.namedModules()) {
    const c = ModuleCopies.existing(m);
    if (c) out.push([p, c]);
  }
  return out;
}

/** Names of the adapters loaded on a model (in the order first seen). */
export function adapterNames(model: Module): string[] {
  const s = new Set<string>();
  for (const [, l] of loraLinears(model)) for (const n of l.names()) s.add(n);
  for (const [, c] of moduleCopies(model)) for (const n of c.names()) s.add(n);
  return [...s];
}

/**
 * Make `names` the active adapters (PEFT's set_adapter; several = their outputs add up) and enable
 * adapter layers. Unknown names are refused. At most one active adapter may carry a copy of the
 * same module (modules_to_save).
 */
export function setAdapter(model: Module, names: string | readonly string[]): void {
  const list = typeof names === 'string' ? [names] : [...names];
  const known = adapterNames(model);
  const unknown = list.filter((n) => !known.includes(n));
  if (unknown.length) throw new AdaptorkitError('INVALID_ARGUMENT', `no adapter named ${unknown.map((n) => `'${n}'`).join(', ')} is loaded (loaded: ${known.join(', ') || 'none'})`);
  for (const [p, c] of moduleCopies(model)) {
    const withCopy = list.filter((n) => c.has(n));
    if (withCopy.length > 1) throw new AdaptorkitError('UNSUPPORTED', `adapters ${withCopy.join(' and ')} both replace '${p}' (modules_to_save): activate one of them`);
  }
  for (const [, l] of loraLinears(model)) {
    l.active = [...list];
    l.enabled = true;
  }
  for (const [, c] of moduleCopies(model)) c.active = list.find((n) => c.has(n));
}

/** The active adapters (as set by setAdapter), or [] when adapters are disabled. */
export function activeAdapters(model: Module): string[] {
  const l = loraLinears(model)[0]?.[1];
  if (l) return l.enabled ? [...l.active] : [];
  const c = moduleCopies(model).find(([, x]) => x.active !== undefined)?.[1];
  return c?.active ? [c.active] : [];
}

/** Run the frozen base alone (every adapter stays loaded); setAdapter enables them again. */
export function disableAdapters(model: Module): void {
  for (const [, l] of loraLinears(model)) l.enabled = false;
  for (const [, c] of moduleCopies(model)) c.active = undefined;
}

/** Remove an adapter from every layer (its tensors are disposed). */
export function deleteAdapter(model: Module, name: string): void {
  if (!adapterNames(model).includes(name)) throw new AdaptorkitError('INVALID_ARGUMENT', `no adapter named '${name}' is loaded`);
  for (const [, l] of loraLinears(model)) l.deleteAdapter(name);
  for (const [, c] of moduleCopies(model)) c.delete(name);
}

function parentOf(model: Module, path: string): [Module, string] {
  const parts = path.split('.');
  const last = parts.pop()!;
  let parent = model;
  for (const p of parts) parent = parent.getChild(p);
  return [parent, last];
}

/**
 * Why the module at `path` cannot be wrapped in a LoraLinear, or undefined when it can: it must be
 * a Linear (or already wrapped), and its parent must reach it through its children (a parent that
 * also keeps it in a field of its own, e.g. CausalLM's lm_head, would bypass the wrapper).
 */
export function loraWrapBlocker(model: Module, path: string): string | undefined {
  const [parent, last] = parentOf(model, path);
  const cur = parent.getChild(last);
  if (cur instanceof LoraLinear) return undefined;
  if (!(cur instanceof Linear)) return `'${path}' is a ${cur.constructor.name}, not a Linear: LoRA goes on Linear maps only`;
  if (Object.values(parent).includes(cur)) return `'${path}' is read directly by its parent ${parent.constructor.name} (a field, not a child lookup), so a LoRA wrapper there would be bypassed; LoRA on it is not supported`;
  return undefined;
}

/** Wrap the Linear at `path` in a LoraLinear (once) and return the wrapper. */
export function wrapLinearAt(model: Module, path: string): LoraLinear {
  const why = loraWrapBlocker(model, path);
  if (why) throw new AdaptorkitError('UNSUPPORTED', why);
  const [parent, last] = parentOf(model, path);
  const cur = parent.getChild(last);
  return cur instanceof LoraLinear ? cur : parent.replaceChild(last, new LoraLinear(cur as Linear));
}
