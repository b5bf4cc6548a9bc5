/**
 * LoRA with per-position routing. An adapted linear map holds several named deltas; a per-position
 * mask (handed down in the forward context under ROUTES_KEY) picks which applies:
 *
 *   y = W0 x + b + sum_a M_a * dW_a x          (M_a: [B, T, 1], one-hot over route names)
 *
 * Positions whose route names no delta of this layer (or with no routes at all and no default
 * delta) get the frozen base only. With no routes in the context every position takes the
 * layer's default delta (DAMC: 'text', so newly decoded tokens are text).
 *
 * Module paths follow PEFT: `q_proj.base_layer.weight`, `q_proj.lora_A.<delta>.weight` [r, in],
 * `q_proj.lora_B.<delta>.weight` [out, r] in checkpoint layout (stored transposed, as every Linear).
 */
import { AdaptorkitError, Linear, Module, Rng, activate, linear, tf, type Activation, type Forward, type ForwardContext, type GatedMLP } from '@adaptorkit/core';

/** ForwardContext key of the route masks: Map<route name, float32 [B, T, 1]>. */
export const ROUTES_KEY = 'damc.routes';
export type RouteMasks = ReadonlyMap<string, tf.Tensor>;

/** Route-mask maps known to be one-hot per position (disjoint 0/1 masks, as `routeMasks` builds them). */
const ONE_HOT = new WeakSet<RouteMasks>();

/** Whether `masks` is one-hot per position (every position in at most one mask, with weight 1). */
export function isOneHot(masks: RouteMasks): boolean {
  return ONE_HOT.has(masks);
}

/**
 * Keep-mask arrays of one layer, reused once the backend holds no tensor on them: a fresh
 * Float32Array per mask cost page faults on first touch and garbage collection (~25 MB of masks
 * per damc step on the ShapesWorld LM). An array is handed out again only when the backend's
 * reference count of the tensor made on it is 0 (tensors that share its data by reference, e.g. a
 * Cast in Multiply's gradient, count too), and only on the same backend.
 */
export class MaskBuffers {
  private readonly entries: { buf: Float32Array; dataId: object | undefined; backend: tf.KernelBackend | undefined }[] = [];

  /** A float32 tensor of `shape` whose values `fill` writes into a (possibly reused) array. */
  tensor(shape: number[], fill: (a: Float32Array) => void): tf.Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    const backend = tf.backend();
    let e = this.entries.find((x) => x.buf.length === n && (x.dataId === undefined || (x.backend === backend && backend.refCount(x.dataId) === 0)));
    if (!e) {
      if (this.entries.length >= 8) this.entries.shift(); // bounded: shapes change between train and eval batches
      e = { buf: new Float32Array(n), dataId: undefined, backend: undefined };
      this.entries.push(e);
    }
    fill(e.buf);
    const t = tf.tensor(e.buf, shape, 'float32');
    e.dataId = t.dataId;
    e.backend = backend;
    return t;
  }
}

/**
 * Inverted dropout on the LoRA input, training only: each element is kept with probability 1 - p
 * and scaled by 1 / (1 - p). The keep mask is drawn by geometric skips between dropped elements
 * (the number of kept elements before the next drop is floor(log u / log(1 - p)), u uniform in
 * (0, 1]), which is the same iid Bernoulli mask as one draw per element but costs one draw per
 * *dropped* element: at p = 0.05 twenty times fewer (the per-element loop took ~45 % of a
 * damc-decoupled training step on the ShapesWorld LM). `bufs` reuses the mask arrays.
 */
export function loraDropout(x: tf.Tensor, p: number, ctx: ForwardContext | undefined, rng: Rng, bufs?: MaskBuffers): tf.Tensor {
  if (!ctx?.training || p <= 0) return x;
  return tf.tidy(() => {
    const fill = (keep: Float32Array): void => {
      const n = keep.length;
      if (p >= 1) return void keep.fill(0);
      keep.fill(1 / (1 - p));
      const logq = Math.log1p(-p);
      for (let i = Math.floor(Math.log(1 - rng.next()) / logq); i < n; i += 1 + Math.floor(Math.log(1 - rng.next()) / logq)) keep[i] = 0;
    };
    let mask: tf.Tensor;
    if (bufs) mask = bufs.tensor(x.shape, fill);
    else {
      const a = new Float32Array(x.size);
      fill(a);
      mask = tf.tensor(a, x.shape, 'float32');
    }
    return tf.mul(x, mask);
  });
}

/** A delta dW x computed from its parts; dW = sum_i coef_i * scale_i * A_i B_i (one part for a plain LoRA). */
export interface DeltaPart {
  A: Linear; // [in, r] stored
  B: Linear; // [r, out] stored
  scale: number;
}

export class RoutedDelta {
  constructor(
    readonly parts: DeltaPart[],
    /** Per-part coefficients (composition's lambda_i); 1 for a trained delta. */
    public coefs: number[] = parts.map(() => 1),
  ) {}

  /** x [..., in] -> [..., out] (the caller applies dropout to x). */
  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      let y: tf.Tensor | undefined;
      this.parts.forEach((p, i) => {
        const c = (this.coefs[i] ?? 1) * p.scale;
        if (c === 0) return;
        const t = linear(tf.mul(linear(x, p.A.weight.value), c), p.B.weight.value); // [..., out] (scaled at rank r)
        y = y ? tf.add(y, t) : t;
      });
      if (!y) {
        const out = this.parts[0]!.B.outFeatures;
        y = tf.zeros([...x.shape.slice(0, -1), out]);
      }
      return y;
    });
  }

  /** dW in stored layout [in, out] (for folding into a base weight). */
  weightDelta(): tf.Tensor2D {
    return tf.tidy(() => {
      let w: tf.Tensor | undefined;
      this.parts.forEach((p, i) => {
        const t = tf.mul(tf.matMul(p.A.weight.value as tf.Tensor2D, p.B.weight.value as tf.Tensor2D), (this.coefs[i] ?? 1) * p.scale);
        w = w ? tf.add(w, t) : t;
      });
      return w as tf.Tensor2D;
    });
  }
}

class Bag extends Module {}

export interface LoRAOptions {
  rank: number;
  alpha: number;
  dropout: number;
  /** Seed of this layer's dropout masks. */
  seed?: number;
}

/** A frozen Linear plus named, routed low-rank deltas. */
export class RoutedLoRALinear extends Module implements Forward {
  readonly base_layer: Linear;
  readonly lora_A: Module;
  readonly lora_B: Module;
  readonly deltas = new Map<string, RoutedDelta>();
  /** Delta applied everywhere when the context carries no routes. */
  defaultDelta: string | undefined;
  private rng: Rng;
  private readonly masks = new MaskBuffers();

  constructor(base: Linear, readonly opts: LoRAOptions) {
    super();
    this.base_layer = this.child('base_layer', base);
    this.lora_A = this.child('lora_A', new Bag());
    this.lora_B = this.child('lora_B', new Bag());
    this.rng = new Rng(opts.seed ?? 0);
  }

  get inFeatures(): number {
    return this.base_layer.inFeatures;
  }
  get outFeatures(): number {
    return this.base_layer.outFeatures;
  }

  /** Add a trainable LoRA delta `name`: A ~ U(+-1/sqrt(in)) (PEFT's kaiming init), B = 0, so dW = 0. */
  addLoRA(name: string, rank = this.opts.rank, alpha = this.opts.alpha): RoutedDelta {
    if (this.deltas.has(name)) throw new AdaptorkitError('INVALID_ARGUMENT', `delta '${name}' already exists on this layer`);
    if (!Number.isInteger(rank) || rank < 1) throw new AdaptorkitError('INVALID_CONFIG', `lora rank must be a positive integer, got ${rank}`);
    const A = this.lora_A.addChild(name, new Linear(this.inFeatures, rank, { bias: false }));
    const B = this.lora_B.addChild(name, new Linear(rank, this.outFeatures, { bias: false, init: { kind: 'zeros' } }));
    const d = new RoutedDelta([{ A, B, scale: alpha / rank }]);
    this.deltas.set(name, d);
    return d;
  }

  /** Add a delta made of existing parts (composition); its parameters stay where they are registered. */
  addComposite(name: string, delta: RoutedDelta): void {
    if (this.deltas.has(name)) throw new AdaptorkitError('INVALID_ARGUMENT', `delta '${name}' already exists on this layer`);
    this.deltas.set(name, delta);
  }

  /** Restart the dropout stream (a training step's masks as a function of a seed, so a resumed run draws what the uninterrupted one did). */
  reseed(rng: Rng): void {
    this.rng = rng;
  }

  /**
   * The low-rank part: sum_a M_a * dW_a x ([..., out]), or undefined when no delta applies (or every
   * part's coefficient is 0).
   * One dropout mask per call, shared by the deltas (masks are disjoint, so each position still
   * sees one independent mask). Every part's coefficient and route mask are applied at rank r,
   * (x A_p) * (c_p M_a) [..., r], and all parts go through ONE matMul with their B factors stacked:
   * [..., sum r] x [sum r, out]. No [..., out]-sized scale, mask or sum per delta.
   */
  deltaOutput(x: tf.Tensor, masks: RouteMasks | undefined, ctx: ForwardContext | undefined): tf.Tensor | undefined {
    const active: [RoutedDelta, tf.Tensor | undefined][] = [];
    if (masks) {
      for (const [name, d] of this.deltas) {
        const m = masks.get(name);
        if (m) active.push([d, m]);
      }
    } else if (this.defaultDelta !== undefined) {
      const d = this.deltas.get(this.defaultDelta);
      if (d) active.push([d, undefined]);
    }
    // parts with coefficient 0 contribute nothing and are not computed (nor is the dropout mask
    // when no part is left: a delta set to 0, e.g. a frozen-LLM baseline's untrained B = 0 factors)
    const parts: [DeltaPart, number, tf.Tensor | undefined][] = [];
    for (const [d, m] of active) {
      d.parts.forEach((p, i) => {
        const c = (d.coefs[i] ?? 1) * p.scale;
        if (c !== 0) parts.push([p, c, m]);
      });
    }
    if (parts.length === 0) return undefined;
    return tf.tidy(() => {
      const xd = loraDropout(x, this.opts.dropout, ctx, this.rng, this.masks);
      const us: tf.Tensor[] = []; // [..., r_p]
      const bs: tf.Tensor[] = []; // [r_p, out]
      for (const [p, c, m] of parts) {
        us.push(tf.mul(linear(xd, p.A.weight.value), m ? tf.mul(m, c) : c)); // [B, T, r] * [B, T, 1]
        bs.push(p.B.weight.value);
      }
      if (us.length === 1) return linear(us[0]!, bs[0]!);
      return linear(tf.concat(us, -1), tf.concat(bs, 0)); // [..., R] x [R, out]
    });
  }

  /** Output of one named delta alone (no mask): dW_name x; zeros when this layer lacks it. */
  oneDelta(name: string, x: tf.Tensor, ctx: ForwardContext | undefined): tf.Tensor | undefined {
    const d = this.deltas.get(name);
    if (!d) return undefined;
    return tf.tidy(() => d.apply(loraDropout(x, this.opts.dropout, ctx, this.rng, this.masks)));
  }

  /** x [..., in] -> [..., out] */
  forward(x: tf.Tensor, ctx?: ForwardContext): tf.Tensor {
    return tf.tidy(() => {
      const y = this.base_layer.forward(x);
      const d = this.deltaOutput(x, ctx?.[ROUTES_KEY] as RouteMasks | undefined, ctx);
      return d ? tf.add(y, d) : y;
    });
  }
}

/**
 * SwiGLU MLP routed as a whole path per delta: for each delta a,
 *   h_a = act(gate_a(x)) * up_a(x),  out_a = down_a(h_a),  y = sum_a M_a out_a  (+ M_0 * base path)
 * Projections that were not targeted stay plain Linears (their delta is 0).
 *
 * With one-hot route masks (each position in one route at most, weight 1: what `routeMasks` and
 * DamcModel build) a position's whole path is its route's path, so this is computed as a plain
 * SwiGLU over per-position routed projections: gate and up each give W0 x + dW_a x at the
 * positions of route a, and act(.) * (.) then down (routed the same way) finish route a's path
 * there. Nothing is computed per delta at [..., f] size. Other masks (soft or overlapping, passed
 * in by hand) take `forwardWholePaths`, which computes every delta's path and mixes them.
 */
export class RoutedGatedMLP extends Module implements Forward {
  readonly act: Activation;
  constructor(orig: GatedMLP) {
    super();
    this.act = orig.act;
    for (const n of ['gate_proj', 'up_proj', 'down_proj']) this.child(n, orig.getChild(n));
  }
  private proj(n: string): Module & Forward {
    return this.getChild<Module & Forward>(n);
  }
  get gate_proj(): Module & Forward { return this.proj('gate_proj'); }
  get up_proj(): Module & Forward { return this.proj('up_proj'); }
  get down_proj(): Module & Forward { return this.proj('down_proj'); }

  /** Replace a projection (by name) with its LoRA wrapper. */
  adapt(n: 'gate_proj' | 'up_proj' | 'down_proj', lora: RoutedLoRALinear): void {
    this.replaceChild(n, lora);
  }

  /** Names of the deltas any projection holds. */
  deltaNames(): string[] {
    const s = new Set<string>();
    for (const p of [this.gate_proj, this.up_proj, this.down_proj]) if (p instanceof RoutedLoRALinear) for (const k of p.deltas.keys()) s.add(k);
    return [...s];
  }

  /** [..., d] -> [..., d] */
  forward(x: tf.Tensor, ctx?: ForwardContext): tf.Tensor {
    const masks = ctx?.[ROUTES_KEY] as RouteMasks | undefined;
    if (!masks || isOneHot(masks)) {
      // no routes: every position takes the default delta of each projection (or the base);
      // one-hot routes: every position takes its route's delta in each projection = its route's whole path
      return tf.tidy(() => this.down_proj.forward(tf.mul(activate(this.gate_proj.forward(x, ctx), this.act), this.up_proj.forward(x, ctx)), ctx));
    }
    return this.forwardWholePaths(x, ctx);
  }

  /**
   * The reference computation for any masks: every delta's whole path over all positions, mixed by
   * the masks, with the base matmuls shared (W0_down is linear, so W0_down sum_a M_a h_a =
   * sum_a M_a W0_down h_a). Equals `forward` for one-hot masks (tested).
   */
  forwardWholePaths(x: tf.Tensor, ctx?: ForwardContext): tf.Tensor {
    const masks = ctx?.[ROUTES_KEY] as RouteMasks | undefined;
    if (!masks) return this.forward(x, ctx);
    return tf.tidy(() => {
      const base = (p: Module & Forward, v: tf.Tensor): tf.Tensor => (p instanceof RoutedLoRALinear ? p.base_layer.forward(v) : p.forward(v));
      const delta = (p: Module & Forward, name: string, v: tf.Tensor): tf.Tensor | undefined => (p instanceof RoutedLoRALinear ? p.oneDelta(name, v, ctx) : undefined);
      const gb = base(this.gate_proj, x); // [B, T, f]
      const ub = base(this.up_proj, x); // [B, T, f]
      const names = this.deltaNames().filter((n) => masks.has(n));
      let covered: tf.Tensor | undefined; // sum_a M_a, [B, T, 1]
      let h: tf.Tensor | undefined; // sum_a M_a h_a
      let dOut: tf.Tensor | undefined; // sum_a M_a dW_down,a h_a
      for (const n of names) {
        const m = masks.get(n)!;
        const dg = delta(this.gate_proj, n, x);
        const du = delta(this.up_proj, n, x);
        const ha = tf.mul(activate(dg ? tf.add(gb, dg) : gb, this.act), du ? tf.add(ub, du) : ub); // [B, T, f]
        const mh = tf.mul(ha, m);
        h = h ? tf.add(h, mh) : mh;
        covered = covered ? tf.add(covered, m) : m;
        const dd = delta(this.down_proj, n, ha);
        if (dd) {
          const t = tf.mul(dd, m);
          dOut = dOut ? tf.add(dOut, t) : t;
        }
      }
      const h0 = tf.mul(activate(gb, this.act), ub); // the base path
      h = h ? tf.add(h, tf.mul(h0, tf.sub(1, covered!))) : h0;
      const y = base(this.down_proj, h);
      return dOut ? tf.add(y, dOut) : y;
    });
  }
}

/**
 * Route masks from per-position route ids: ids[b*T + t] indexes `names` (-1 = no delta: base only).
 * Returns float32 [B, T, 1] masks keyed by name (the caller owns and disposes them).
 */
export function routeMasks(ids: Int32Array, B: number, T: number, names: readonly string[]): Map<string, tf.Tensor> {
  if (ids.length !== B * T) throw new AdaptorkitError('SHAPE_MISMATCH', `routeMasks: ${ids.length} route ids for [${B}, ${T}]`);
  const out = new Map<string, tf.Tensor>();
  names.forEach((name, k) => {
    const a = new Float32Array(B * T);
    let any = false;
    for (let i = 0; i < a.length; i++) if (ids[i] === k) {
      a[i] = 1;
      any = true;
    }
    const prev = out.get(name);
    if (!any && !prev) return;
    const t = tf.tensor3d(a, [B, T, 1]);
    if (prev) {
      out.set(name, tf.add(prev, t));
      prev.dispose();
      t.dispose();
    } else out.set(name, t);
  });
  ONE_HOT.add(out); // one route id per position
  return out;
}
