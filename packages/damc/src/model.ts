/**
 * A DAMC model: a frozen CausalLM with routed LoRA on its linear maps, plus one branch per
 * modality (encoder -> projector -> [k boundary embeddings, features, k boundary embeddings]).
 *
 * Inputs are token ids with ONE placeholder id per modality per row (as @adaptorkit/data encodes
 * them); the model expands each placeholder into that modality's span, and marks every position
 * with a route: the span (features and boundary embeddings) routes to the modality's delta, every
 * other position (prompt, answer, padding, newly decoded tokens) to the text delta. In naive mode
 * (and NaiveMC) every position routes to the one shared delta.
 */
import {
  AdaptorkitError, GatedMLP, IGNORE_INDEX, Linear, Module, Rng, generate, manualSeed, maskedCrossEntropy, tf,
  type CausalLM, type Forward, type ForwardContext, type GenerativeLM, type KVCache,
} from '@adaptorkit/core';
import { LINEAR_TARGETS, SHARED_DELTA, TEXT_DELTA, type DamcConfig } from './config.js';
import { ROUTES_KEY, RoutedGatedMLP, RoutedLoRALinear, routeMasks } from './lora.js';

class Bag extends Module {}

export interface LoRASelection {
  rank: number;
  alpha: number;
  dropout: number;
  targets: DamcConfig['lora']['targets'];
  layers: DamcConfig['lora']['layers'];
}

/**
 * Wrap the selected linear maps of `lm` in RoutedLoRALinear (once; an already wrapped map is
 * reused) and return the wrapped maps in layer order. Attention projections are replaced in
 * place; an MLP with any targeted projection becomes a RoutedGatedMLP (same child paths).
 */
export function wrapLinears(lm: CausalLM, sel: LoRASelection, seed = 0): RoutedLoRALinear[] {
  const L = lm.numLayers;
  const layers = sel.layers === 'all' ? Array.from({ length: L }, (_, i) => i) : sel.layers;
  for (const i of layers) {
    if (i >= L) throw new AdaptorkitError('INVALID_CONFIG', `damc config: lora.layers: layer ${i} is outside 0..${L - 1} (the LLM has ${L} layers)`);
  }
  const re = Array.isArray(sel.targets) ? undefined : new RegExp(sel.targets.pattern);
  const list = Array.isArray(sel.targets) ? new Set<string>(sel.targets) : undefined;
  const wanted = (path: string, n: string): boolean => (re ? re.test(path) : list!.has(n));
  const out: RoutedLoRALinear[] = [];
  let k = 0;
  const wrap = (parent: Module, n: string): RoutedLoRALinear => {
    const cur = parent.getChild(n);
    if (cur instanceof RoutedLoRALinear) return cur;
    if (!(cur instanceof Linear)) throw new AdaptorkitError('UNSUPPORTED', `${n} is a ${cur.constructor.name}, not a Linear: cannot add LoRA`);
    return parent.replaceChild(n, new RoutedLoRALinear(cur, { rank: sel.rank, alpha: sel.alpha, dropout: sel.dropout, seed: seed * 7919 + k++ }));
  };
  let matched = 0;
  for (const i of layers) {
    const layer = lm.model.layers.at(i);
    const attn = layer.self_attn;
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'o_proj'] as const) {
      if (wanted(`model.layers.${i}.self_attn.${n}`, n)) {
        out.push(wrap(attn, n));
        matched++;
      }
    }
    const mlpTargets = (['gate_proj', 'up_proj', 'down_proj'] as const).filter((n) => wanted(`model.layers.${i}.mlp.${n}`, n));
    if (mlpTargets.length) {
      let mlp = layer.getChild('mlp');
      if (!(mlp instanceof RoutedGatedMLP)) {
        if (!(mlp instanceof GatedMLP)) throw new AdaptorkitError('UNSUPPORTED', `layer ${i} mlp is a ${mlp.constructor.name}, not a GatedMLP`);
        mlp = layer.replaceChild('mlp', new RoutedGatedMLP(mlp));
      }
      for (const n of mlpTargets) {
        out.push(wrap(mlp, n));
        matched++;
      }
    }
  }
  if (matched === 0) {
    throw new AdaptorkitError('INVALID_CONFIG', `damc config: lora.targets: matched no linear map (module paths look like model.layers.0.self_attn.q_proj; names: ${LINEAR_TARGETS.join(', ')})`);
  }
  return out;
}

/** Every RoutedLoRALinear in a model, in path order. */
export function loraLayers(m: Module): [string, RoutedLoRALinear][] {
  return [...m.namedModules()].filter((e): e is [string, RoutedLoRALinear] => e[1] instanceof RoutedLoRALinear);
}

/** encoder -> projector -> [k boundary, N features, k boundary]: [B, ...] -> [B, N + 2k, d]. */
export class ModalityBranch extends Module {
  readonly encoder: Module;
  readonly projector: Module & Forward;
  readonly boundary: ReturnType<Module['getParam']> | undefined;
  constructor(
    encoder: Module,
    projector: Module & Forward,
    readonly dim: number,
    readonly boundaryTokens: number,
    /** How to get [B, N, e] features from the encoder (default: encoder.forward(x)). */
    readonly encode: (encoder: Module, x: tf.Tensor, ctx?: ForwardContext) => tf.Tensor = (e, x, ctx) => (e as unknown as Forward).forward(x, ctx),
  ) {
    super();
    this.encoder = this.child('encoder', encoder);
    this.projector = this.child('projector', projector);
    // zero-initialised: at step 0 the boundary positions carry no signal beyond their position
    this.boundary = boundaryTokens > 0 ? this.param('boundary', [2 * boundaryTokens, dim], { kind: 'zeros' }) : undefined;
  }

  /** Span length for N features. */
  spanLength(n: number): number {
    return n + 2 * this.boundaryTokens;
  }

  /** x [B, ...] -> [B, N + 2k, d] */
  forward(x: tf.Tensor, ctx?: ForwardContext): tf.Tensor3D {
    return tf.tidy(() => {
      const f = this.projector.forward(this.encode(this.encoder, x, ctx), ctx) as tf.Tensor3D; // [B, N, d]
      if (f.rank !== 3 || f.shape[2] !== this.dim) throw new AdaptorkitError('SHAPE_MISMATCH', `modality branch: projector output [${f.shape.join(', ')}] must be [B, N, ${this.dim}]`);
      if (!this.boundary) return f;
      const B = f.shape[0]!;
      const k = this.boundaryTokens;
      const bd = this.boundary.value;
      // broadcast over the batch by a multiply with ones (broadcastTo is a Tile, a slow cpu kernel on the native backend)
      const ones = tf.ones([B, 1, 1]);
      const before = tf.mul(ones, tf.reshape(tf.slice(bd, [0, 0], [k, this.dim]), [1, k, this.dim])); // [B, k, d]
      const after = tf.mul(ones, tf.reshape(tf.slice(bd, [k, 0], [k, this.dim]), [1, k, this.dim])); // [B, k, d]
      return tf.concat([before, f, after], 1) as tf.Tensor3D; // [B, N + 2k, d]
    });
  }
}

export type Routing = 'shared' | 'decoupled';

export interface DamcBatch {
  /** int32 ids, row-major [B, T] (one placeholder id per modality per row, or none). */
  ids: Int32Array;
  B: number;
  T: number;
  /** Labels [B, T] in HF convention (IGNORE_INDEX off the answer); expanded with the ids. */
  labels?: Int32Array;
  /** Valid length of each row (right padding after it); default T. */
  lengths?: number[];
  /** Raw modality inputs, batch-first, keyed by modality name. */
  inputs?: Record<string, tf.Tensor>;
}

export interface Prepared {
  /** [B, S, d] */
  embeds: tf.Tensor3D;
  S: number;
  /** Route index per position into `routeNames` ([B*S]). */
  routeIds: Int32Array;
  routeNames: string[];
  /** Expanded labels [B*S] (undefined when the batch has none). */
  labels?: Int32Array;
  /** Expanded valid length per row. */
  lengths: number[];
  /** Expanded position of each modality span's first feature per row (boundary excluded): modality -> [B] (-1 = absent). */
  spans: Record<string, number[]>;
}

/** Frozen LLM + routed deltas + modality branches. */
export class DamcModel extends Module {
  readonly language_model: CausalLM;
  readonly modalities: Module;
  readonly placeholderIds = new Map<string, number>();
  loras: RoutedLoRALinear[] = [];

  constructor(lm: CausalLM, readonly routing: Routing) {
    super();
    this.language_model = this.child('language_model', lm);
    this.modalities = this.child('modalities', new Bag());
  }

  /**
   * Restart every LoRA dropout stream from `seed`: the trainer calls it with a seed derived from
   * (run seed, step, micro-batch), so the masks of a step do not depend on how many steps this
   * process ran before it (`--resume` then continues exactly like an uninterrupted run).
   */
  reseedMasks(seed: number): void {
    const rng = new Rng((seed ^ 0x64616d63) >>> 0);
    for (const [, m] of this.namedModules()) if (m instanceof RoutedLoRALinear) m.reseed(rng.fork());
  }

  /** Delta name a position of kind 'text' or a modality routes to. */
  routeOf(kind: string): string {
    return this.routing === 'shared' ? SHARED_DELTA : kind;
  }

  get textRoute(): string {
    return this.routeOf(TEXT_DELTA);
  }

  addModality(name: string, branch: ModalityBranch, placeholderId: number): ModalityBranch {
    if (this.placeholderIds.has(name)) throw new AdaptorkitError('INVALID_ARGUMENT', `modality '${name}' is already attached`);
    if ([...this.placeholderIds.values()].includes(placeholderId)) throw new AdaptorkitError('INVALID_ARGUMENT', `placeholder id ${placeholderId} is already used by another modality`);
    this.modalities.addChild(name, branch);
    this.placeholderIds.set(name, placeholderId);
    return branch;
  }

  branch(name: string): ModalityBranch {
    if (!this.modalities.hasChild(name)) throw new AdaptorkitError('INVALID_ARGUMENT', `no modality '${name}' (attached: ${[...this.placeholderIds.keys()].join(', ') || 'none'})`);
    return this.modalities.getChild<ModalityBranch>(name);
  }

  /** Point every LoRA layer's no-route default at the text route (new decoded tokens are text). */
  setDefaultRoute(): void {
    for (const l of this.loras) l.defaultDelta = this.textRoute;
  }

  /** Expand placeholders into modality spans; compute embeddings, routes and labels. Call inside a tidy. */
  prepare(batch: DamcBatch, ctx?: ForwardContext): Prepared {
    const { ids, B, T } = batch;
    if (ids.length !== B * T) throw new AdaptorkitError('SHAPE_MISMATCH', `DamcBatch: ${ids.length} ids for [${B}, ${T}]`);
    const lm = this.language_model;
    const d = lm.config.hiddenSize;
    const routeNames = [this.textRoute];
    const routeIndex = new Map<string, number>([[this.textRoute, 0]]);
    const feats: { name: string; t: tf.Tensor3D; L: number; offset: number; route: number; k: number }[] = [];
    let offset = B * T;
    const byId = new Map<number, number>(); // placeholder id -> index in feats
    for (const [name, x] of Object.entries(batch.inputs ?? {})) {
      const pid = this.placeholderIds.get(name);
      if (pid === undefined) throw new AdaptorkitError('INVALID_ARGUMENT', `DamcBatch.inputs has '${name}' but no such modality is attached (attached: ${[...this.placeholderIds.keys()].join(', ')})`);
      const br = this.branch(name);
      const t = br.forward(x, ctx); // [B, L, d]
      if (t.shape[0] !== B) throw new AdaptorkitError('SHAPE_MISMATCH', `modality '${name}' input has batch ${t.shape[0]}, ids have ${B}`);
      const r = this.routeOf(name);
      if (!routeIndex.has(r)) {
        routeIndex.set(r, routeNames.length);
        routeNames.push(r);
      }
      byId.set(pid, feats.length);
      feats.push({ name, t, L: t.shape[1]!, offset, route: routeIndex.get(r)!, k: br.boundaryTokens });
      offset += B * t.shape[1]!;
    }
    const padRow = offset; // a zero row in the table
    const rows: { idx: number[]; route: number[]; label: number[] }[] = [];
    const spans: Record<string, number[]> = Object.fromEntries(feats.map((f) => [f.name, new Array<number>(B).fill(-1)]));
    for (let b = 0; b < B; b++) {
      const len = batch.lengths?.[b] ?? T;
      const r = { idx: [] as number[], route: [] as number[], label: [] as number[] };
      const seen = new Set<number>();
      for (let t = 0; t < len; t++) {
        const id = ids[b * T + t]!;
        const fi = byId.get(id);
        if (fi !== undefined) {
          const f = feats[fi]!;
          if (seen.has(fi)) throw new AdaptorkitError('INVALID_ARGUMENT', `row ${b} has two '${f.name}' placeholders; one per modality per row is supported`);
          seen.add(fi);
          spans[f.name]![b] = r.idx.length + f.k;
          for (let j = 0; j < f.L; j++) {
            r.idx.push(f.offset + b * f.L + j);
            r.route.push(f.route);
            r.label.push(IGNORE_INDEX);
          }
        } else {
          if ([...this.placeholderIds.values()].includes(id)) {
            const name = [...this.placeholderIds].find(([, v]) => v === id)![0];
            throw new AdaptorkitError('INVALID_ARGUMENT', `row ${b} has a '${name}' placeholder but the batch has no '${name}' input`);
          }
          r.idx.push(b * T + t);
          r.route.push(0);
          r.label.push(batch.labels ? batch.labels[b * T + t]! : IGNORE_INDEX);
        }
      }
      rows.push(r);
    }
    const S = Math.max(...rows.map((r) => r.idx.length));
    const gidx = new Int32Array(B * S).fill(padRow);
    const routeIds = new Int32Array(B * S); // padding routes to text
    const labels = new Int32Array(B * S).fill(IGNORE_INDEX);
    rows.forEach((r, b) => {
      gidx.set(r.idx, b * S);
      routeIds.set(r.route, b * S);
      labels.set(r.label, b * S);
    });
    const text = lm.embed(tf.tensor2d(ids, [B, T], 'int32')); // [B, T, d]
    const table = tf.concat([tf.reshape(text, [B * T, d]), ...feats.map((f) => tf.reshape(f.t, [B * f.L, d])), tf.zeros([1, d])], 0); // [rows, d]
    const embeds = tf.reshape(tf.gather(table, tf.tensor1d(gidx, 'int32')), [B, S, d]) as tf.Tensor3D; // [B, S, d]
    return { embeds, S, routeIds, routeNames, labels: batch.labels ? labels : undefined, lengths: rows.map((r) => r.idx.length), spans };
  }

  /** Forward context with the route masks of `p` (tensors owned by the enclosing tidy). */
  routeContext(p: Prepared, B: number, training: boolean): ForwardContext {
    // with a single route everywhere (naive), no masks: every layer applies its default delta
    const single = p.routeNames.length === 1 && p.routeNames[0] === this.textRoute;
    return { training, ...(single ? {} : { [ROUTES_KEY]: routeMasks(p.routeIds, B, p.S, p.routeNames) }) };
  }

  /** Logits [B, S, V] and the expanded batch. */
  forward(batch: DamcBatch, opts: { training?: boolean; cache?: KVCache } = {}): { logits: tf.Tensor3D; prepared: Prepared } {
    let prepared: Prepared | undefined;
    const logits = tf.tidy(() => {
      const ctx0: ForwardContext = { training: opts.training ?? false };
      const p = this.prepare(batch, ctx0);
      prepared = p;
      const ctx = this.routeContext(p, batch.B, opts.training ?? false);
      return this.language_model.forward({ embeds: p.embeds, cache: opts.cache, ctx }).logits!;
    });
    return { logits, prepared: prepared! };
  }

  /** Mean next-token cross entropy on the expanded labels (answer tokens only). */
  loss(batch: DamcBatch, opts: { training?: boolean } = {}): tf.Scalar {
    return tf.tidy(() => {
      const { logits, prepared } = this.forward(batch, opts);
      if (!prepared.labels) throw new AdaptorkitError('INVALID_ARGUMENT', 'DamcModel.loss needs batch.labels');
      return maskedCrossEntropy(logits, tf.tensor2d(prepared.labels, [batch.B, prepared.S], 'int32'));
    });
  }

  /** Logits at each row's last valid position: [B, V] (the next-token distribution after the prompt). */
  nextTokenLogits(batch: DamcBatch): tf.Tensor2D {
    return tf.tidy(() => {
      const { logits, prepared } = this.forward(batch);
      const [B, S, V] = logits.shape as [number, number, number];
      const idx = tf.tensor1d(prepared.lengths.map((l, b) => b * S + l - 1), 'int32');
      return tf.gather(tf.reshape(logits, [B * S, V]), idx) as tf.Tensor2D;
    });
  }

  /**
   * Greedy decoding through core's generate, one row at a time. The prompt is routed as in
   * training; new tokens carry no routes, so every layer applies its default delta: the text route.
   * A row ends at eosId, which is not returned (core's EOS rule); placeholder ids are never
   * generated. Synchronous.
   */
  generate(batch: DamcBatch, opts: { maxNewTokens: number; eosId?: number }): number[][] {
    const out: number[][] = [];
    for (let b = 0; b < batch.B; b++) {
      const len = batch.lengths?.[b] ?? batch.T;
      const row: DamcBatch = {
        ids: batch.ids.slice(b * batch.T, b * batch.T + len),
        B: 1,
        T: len,
        inputs: Object.fromEntries(Object.entries(batch.inputs ?? {}).map(([k, v]) => [k, tf.slice(v, [b], [1])])),
      };
      // the prompt step expands the placeholders and routes; later steps run the LM on the cache
      let first = true;
      const lm: GenerativeLM<KVCache> = {
        createCache: () => this.language_model.createCache(),
        forward: ({ ids, cache }) => {
          if (!first) return this.language_model.forward({ ids, cache, ctx: { training: false } });
          first = false;
          return { logits: this.forward(row, { cache }).logits };
        },
      };
      try {
        out.push(generate(lm, Array.from(row.ids), { maxNewTokens: opts.maxNewTokens, suppressTokens: [...this.placeholderIds.values()], ...(opts.eosId !== undefined ? { eosId: opts.eosId } : {}) }).tokens[0]!);
      } finally {
        for (const t of Object.values(row.inputs ?? {})) t.dispose();
      }
    }
    return out;
  }
}

/** Seeded wrapper so LoRA A init is reproducible. */
export function seeded<T>(seed: number, fn: () => T): T {
  manualSeed(seed);
  return fn();
}
