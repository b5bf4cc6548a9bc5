/**
 * The routed MMA adapter (one per adapted layer), input z [B, L, d]:
 *   h  = dropout(A z)                    A: Linear d -> r with bias, Xavier-uniform, no nonlinearity
 *   w  = softmax(router(r_tok) / tau)    router: Linear d -> N; r_tok = z at position 0 (per sample)
 *   z' = z + s * sum_i w_i B_i(h)        B_i: grouped Linear r -> d (groups g), bias, zero-initialised
 * With N = 1 there is no router (the router-off ablation): z' = z + s B_1(h).
 *
 * Routing info travels in the ForwardContext under MMA_CTX (see MmaRoutingState): record the
 * weights (inspection, generation prefill), reuse fixed ones (decode steps), or bypass adapters.
 */
import { AdaptorkitError, Linear, Module, Rng, dropout, formatShape, tf, type ForwardContext, type Parameter } from '@adaptorkit/core';

/** Context key for MMA routing state. */
export const MMA_CTX = 'mma';

export interface MmaRoutingState {
  /** Every adapter that runs puts its routing weights here ([B, 1, N] per sample, [B, T, N] per token); the caller owns (and disposes) them. */
  record?: Map<MmaAdapter, tf.Tensor>;
  /** Per-sample adapters use these weights instead of routing (decode steps after a prefill). */
  fixed?: Map<MmaAdapter, tf.Tensor>;
  /** Adapters return their input unchanged (the frozen base model). */
  bypass?: boolean;
}

/**
 * A ForwardContext under which every MMA adapter is the identity: core's generate / CausalLM.forward
 * on the adapted `lm` with this ctx is the frozen base model (the text-only baseline).
 */
export function bypassContext(extra: ForwardContext = {}): ForwardContext {
  return { ...extra, [MMA_CTX]: { bypass: true } satisfies MmaRoutingState };
}

export function routingState(ctx: ForwardContext | undefined): MmaRoutingState | undefined {
  return ctx?.[MMA_CTX] as MmaRoutingState | undefined;
}

/**
 * A Linear r -> d split into g groups (PyTorch Conv1d(r, d, 1, groups=g)): input slice
 * [i r/g, (i+1) r/g) feeds output slice [i d/g, (i+1) d/g). weight stored [g, r/g, d/g]
 * (PyTorch: [d, r/g, 1]), bias [d].
 */
export class GroupedLinear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | undefined;
  constructor(readonly inFeatures: number, readonly outFeatures: number, readonly groups: number, opts: { bias?: boolean } = {}) {
    super();
    if (inFeatures % groups !== 0 || outFeatures % groups !== 0) {
      throw new AdaptorkitError('INVALID_CONFIG', `grouped linear ${inFeatures} -> ${outFeatures}: ${groups} groups must divide both widths`);
    }
    this.weight = this.param('weight', [groups, inFeatures / groups, outFeatures / groups], { kind: 'zeros' });
    this.bias = opts.bias === false ? undefined : this.param('bias', [outFeatures], { kind: 'zeros' });
  }

  /** [..., in] -> [..., out] */
  forward(x: tf.Tensor, _ctx?: ForwardContext): tf.Tensor {
    const g = this.groups;
    const lead = x.shape.slice(0, -1);
    if (x.shape[x.rank - 1] !== this.inFeatures) {
      throw new AdaptorkitError('SHAPE_MISMATCH', `grouped linear: input ${formatShape(x.shape)} does not end in ${this.inFeatures}`);
    }
    return tf.tidy(() => {
      const M = lead.reduce((a, b) => a * b, 1);
      const xg = tf.transpose(tf.reshape(x, [M, g, this.inFeatures / g]), [1, 0, 2]); // [g, M, r/g]
      const yg = tf.matMul(xg as tf.Tensor3D, this.weight.value as unknown as tf.Tensor3D); // [g, M, d/g]
      let y = tf.reshape(tf.transpose(yg, [1, 0, 2]), [...lead, this.outFeatures]); // [..., d]
      if (this.bias) y = tf.add(y, this.bias.value);
      return y;
    });
  }
}

export interface MmaAdapterOptions {
  dim: number;
  rank: number;
  groups: number;
  branches: number;
  temperature: number;
  scale: number;
  dropout: number;
  routing: 'sample' | 'token';
  hardRouting: boolean;
  /** Routing token for per-sample routing: position 0 ('first': modality / class token) or the mean over positions (encoders without a class token). */
  routeBy?: 'first' | 'mean';
  /** Seed of the dropout masks. */
  seed?: number;
}

/** Empty holder so up-projections get paths `ups.0.weight`, `ups.1.weight`, ... */
class Branches extends Module {}

export class MmaAdapter extends Module {
  readonly down: Linear;
  readonly ups: GroupedLinear[] = [];
  readonly router: Linear | undefined;
  private rng: Rng;
  constructor(readonly opts: MmaAdapterOptions) {
    super();
    const { dim: d, rank: r } = opts;
    if (opts.rank % opts.groups !== 0 || d % opts.groups !== 0) {
      throw new AdaptorkitError('INVALID_CONFIG', `mma adapter: groups ${opts.groups} must divide the rank ${r} and the width ${d}`);
    }
    const bound = Math.sqrt(6 / (d + r)); // Xavier uniform
    this.down = this.child('down', new Linear(d, r, { bias: true, init: { kind: 'uniform', low: -bound, high: bound } }));
    const ups = this.child('ups', new Branches());
    for (let i = 0; i < opts.branches; i++) this.ups.push(ups.addChild(String(i), new GroupedLinear(r, d, opts.groups)));
    // PyTorch nn.Linear default init (kaiming-uniform bound 1/sqrt(d), bias the same bound)
    const rb = 1 / Math.sqrt(d);
    this.router = opts.branches > 1 ? this.child('router', new Linear(d, opts.branches, { bias: true, biasInit: { kind: 'uniform', low: -rb, high: rb } })) : undefined;
    this.rng = new Rng(opts.seed ?? 0);
  }

  /** Restart the dropout stream (see MmaModel.reseedMasks). */
  reseed(rng: Rng): void {
    this.rng = rng;
  }

  get numBranches(): number {
    return this.opts.branches;
  }

  /**
   * Routing weights for input z [B, T, d]: [B, 1, N] per sample, [B, T, N] per token. With no
   * router (one branch) all ones.
   */
  route(z: tf.Tensor, ctx?: ForwardContext): tf.Tensor3D {
    const [B, T, d] = z.shape as [number, number, number];
    const N = this.opts.branches;
    return tf.tidy(() => {
      if (!this.router) return tf.ones([B, this.opts.routing === 'token' ? T : 1, 1]) as tf.Tensor3D;
      let tok: tf.Tensor; // [B, 1 or T, d]
      if (this.opts.routing === 'token') tok = z;
      else if (this.opts.routeBy === 'mean') tok = tf.mean(z, 1, true);
      else tok = tf.slice(z, [0, 0, 0], [B, 1, d]);
      const logits = tf.div(this.router.forward(tok), this.opts.temperature); // [B, 1|T, N]
      if (this.opts.hardRouting && !ctx?.training) return tf.cast(tf.oneHot(tf.argMax(logits, -1), N), 'float32') as tf.Tensor3D;
      return tf.softmax(logits, -1) as tf.Tensor3D;
    });
  }

  /** z [B, T, d] -> z + s * sum_i w_i B_i(dropout(A z)) */
  forward(z: tf.Tensor, ctx?: ForwardContext): tf.Tensor {
    if (z.rank !== 3 || z.shape[2] !== this.opts.dim) {
      throw new AdaptorkitError('SHAPE_MISMATCH', `mma adapter: input must be [B, T, ${this.opts.dim}], got ${formatShape(z.shape)}`);
    }
    const st = routingState(ctx);
    if (st?.bypass) return z;
    return tf.tidy(() => {
      const h = dropout(this.down.forward(z), this.opts.dropout, ctx, this.rng); // [B, T, r]
      const fixed = this.opts.routing === 'sample' ? st?.fixed?.get(this) : undefined;
      const w = fixed ?? this.route(z, ctx); // [B, 1|T, N]
      if (st?.record) {
        st.record.get(this)?.dispose();
        st.record.set(this, tf.keep(tf.clone(w)));
      }
      const N = this.opts.branches;
      let mix: tf.Tensor | undefined;
      for (let i = 0; i < N; i++) {
        const up = this.ups[i]!.forward(h); // [B, T, d]
        const term = N === 1 ? up : tf.mul(tf.slice(w, [0, 0, i], [-1, -1, 1]), up); // [B, T, d]
        mix = mix ? tf.add(mix, term) : term;
      }
      return tf.add(z, tf.mul(mix!, this.opts.scale)); // [B, T, d]
    });
  }
}
