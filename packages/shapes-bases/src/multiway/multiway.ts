/**
 * The Multiway Transformer MWA adapts (BEiT-3 style, pre-LayerNorm):
 *
 *   h   = x + Attn_m(LN^a_m(x))                       attention per modality, or shared
 *   out = h + FFN_m(LN^f_m(h)) [+ Extractor_m(h)]      FFN and LayerNorms are modality experts
 *   out = out [+ DropPath(Enhancer(out))]              MWA's shared enhancer, own residual
 *
 * FFN_m = fc2(LN(GELU(fc1(x)))) (d -> 4d -> d, LayerNorm on the hidden, torchscale's sub-LN).
 * Images: patch embedding + class token + position table; texts: token embedding + position
 * table. Retrieval encodes each modality separately through its own experts, takes the first token,
 * applies the modality's final LayerNorm and head, and L2-normalises. The top `vlExpertLayers`
 * layers also hold a vision-language expert used only for fused (image then text) inputs.
 *
 * Parameter paths: `layers.3.ffn.vision.fc1.weight`, `layers.3.attn.language.q_proj.weight` (or
 * `layers.3.attn.shared...`), `layers.3.extractor.vision.down.weight`, `layers.3.enhancer.fc2.weight`.
 */
import { AdaptorkitError, Embedding, LayerNorm, Linear, Module, ModuleList, PatchEmbedding, activate, attentionSoftmax, formatShape, l2normalize, tf, type Forward, type ForwardContext, type Parameter } from '@adaptorkit/core';
import { parseMultiwayConfig, type Modality, type MultiwayConfig, type MultiwayConfigInput } from './config.js';

/** An expert key: a modality, or the vision-language expert of the top layers. */
export type Expert = Modality | 'vl';

const NEG = -1e9;

/** FFN expert: fc2(LN(GELU(fc1(x)))), d -> f -> d. */
export class ExpertFFN extends Module {
  readonly fc1: Linear;
  readonly ffn_layernorm: LayerNorm;
  readonly fc2: Linear;
  constructor(readonly dim: number, readonly hidden: number, eps: number) {
    super();
    this.fc1 = this.child('fc1', new Linear(dim, hidden, { bias: true }));
    this.ffn_layernorm = this.child('ffn_layernorm', new LayerNorm(hidden, eps));
    this.fc2 = this.child('fc2', new Linear(hidden, dim, { bias: true }));
  }
  /** [..., d] -> [..., d] */
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.fc2.forward(this.ffn_layernorm.forward(activate(this.fc1.forward(x), 'gelu')))); // [..., f] inside
  }
}

/** One set of attention projections (q, k, v, out with biases) and the optional sub-LN. */
export class AttentionProjections extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly out_proj: Linear;
  readonly inner_attn_ln: LayerNorm | undefined;
  constructor(dim: number, subLN: boolean, eps: number) {
    super();
    this.q_proj = this.child('q_proj', new Linear(dim, dim, { bias: true }));
    this.k_proj = this.child('k_proj', new Linear(dim, dim, { bias: true }));
    this.v_proj = this.child('v_proj', new Linear(dim, dim, { bias: true }));
    this.inner_attn_ln = subLN ? this.child('inner_attn_ln', new LayerNorm(dim, eps)) : undefined;
    this.out_proj = this.child('out_proj', new Linear(dim, dim, { bias: true }));
  }
}

/** A segment of the token axis and the modality of its tokens. */
export interface Segment {
  modality: Modality;
  /** Number of tokens (segments are laid out in order along the token axis). */
  length: number;
}

/**
 * Self-attention whose projections are per modality (or shared): each token segment is projected
 * by its own expert's projections, then all tokens attend jointly.
 */
export class MultiwayAttention extends Module {
  readonly headDim: number;
  constructor(readonly dim: number, readonly numHeads: number, readonly shared: boolean, subLN: boolean, eps: number) {
    super();
    this.headDim = dim / numHeads;
    if (shared) this.child('shared', new AttentionProjections(dim, subLN, eps));
    else {
      // fused inputs keep per-modality projections even in VL layers (only the FFN has a VL expert)
      this.child('vision', new AttentionProjections(dim, subLN, eps));
      this.child('language', new AttentionProjections(dim, subLN, eps));
    }
  }

  projections(m: Modality): AttentionProjections {
    return this.getChild<AttentionProjections>(this.shared ? 'shared' : m);
  }

  /** x [B, T, d] split into `segments` along T; keyMask additive [B, 1, 1, T] or undefined -> [B, T, d] */
  forward(x: tf.Tensor, segments: readonly Segment[], keyMask?: tf.Tensor): tf.Tensor {
    const [B, T, d] = x.shape as [number, number, number];
    const H = this.numHeads;
    const hd = this.headDim;
    return tf.tidy(() => {
      const parts = splitSegments(x, segments);
      const proj = (pick: (p: AttentionProjections) => Linear): tf.Tensor =>
        concatT(parts.map((xs, i) => pick(this.projections(segments[i]!.modality)).forward(xs))); // [B, T, d]
      const heads = (t: tf.Tensor): tf.Tensor => tf.transpose(tf.reshape(t, [B, T, H, hd]), [0, 2, 1, 3]); // [B, H, T, hd]
      const q = heads(proj((p) => p.q_proj));
      const k = heads(proj((p) => p.k_proj));
      const v = heads(proj((p) => p.v_proj));
      // softmax(q k^T / sqrt(hd) + keyMask): one kernel each way where the backend fuses it
      const probs = attentionSoftmax(tf.matMul(q, k, false, true), 1 / Math.sqrt(hd), { mask: keyMask }); // [B, H, T, T]
      const o = tf.reshape(tf.transpose(tf.matMul(probs, v), [0, 2, 1, 3]), [B, T, d]); // [B, T, d]
      const outs = splitSegments(o, segments).map((os, i) => {
        const p = this.projections(segments[i]!.modality);
        return p.out_proj.forward(p.inner_attn_ln ? p.inner_attn_ln.forward(os) : os);
      });
      return concatT(outs);
    });
  }
}

/** Modules keyed by expert, registered as children named after the expert. */
export class Experts<M extends Module> extends Module {
  constructor(make: (e: Expert) => M, experts: readonly Expert[]) {
    super();
    for (const e of experts) this.child(e, make(e));
  }
  get(e: Expert): M {
    return this.getChild<M>(e);
  }
  has(e: Expert): boolean {
    return this.hasChild(e);
  }
}

/** A residual branch added by an adapter: returns the branch output (not x + branch). */
export type Branch = Module & Forward;

export class MultiwayLayer extends Module {
  readonly attn_norm: Experts<LayerNorm>;
  readonly attn: MultiwayAttention;
  readonly ffn_norm: Experts<LayerNorm>;
  readonly ffn: Experts<ExpertFFN>;
  readonly hasVL: boolean;
  private extractorSet: Experts<Module> | undefined;
  private _enhancer: Branch | undefined;

  constructor(readonly index: number, c: MultiwayConfig, vl: boolean) {
    super();
    this.hasVL = vl;
    const experts: Expert[] = vl ? ['vision', 'language', 'vl'] : ['vision', 'language'];
    this.attn_norm = this.child('attn_norm', new Experts(() => new LayerNorm(c.dim, c.layerNormEps), experts));
    this.attn = this.child('attn', new MultiwayAttention(c.dim, c.numHeads, c.sharedAttention, c.attentionSubLN, c.layerNormEps));
    this.ffn_norm = this.child('ffn_norm', new Experts(() => new LayerNorm(c.dim, c.layerNormEps), experts));
    this.ffn = this.child('ffn', new Experts(() => new ExpertFFN(c.dim, c.ffnDim, c.layerNormEps), experts));
  }

  /** Put an extractor (parallel to the FFN expert) on one modality's path. */
  setExtractor(m: Modality, branch: Branch): void {
    if (!this.extractorSet) this.extractorSet = this.addChild('extractor', new Experts<Module>(() => new EmptyModule(), []));
    if (this.extractorSet.has(m)) throw new AdaptorkitError('INVALID_ARGUMENT', `layer ${this.index} already has a ${m} extractor`);
    this.extractorSet.addChild(m, branch);
  }

  extractor(m: Modality): Branch | undefined {
    return this.extractorSet?.has(m) ? (this.extractorSet.get(m) as Branch) : undefined;
  }

  /** Put the shared enhancer after the FFN block (x = x + enhancer(x)). */
  setEnhancer(branch: Branch): void {
    if (this._enhancer) throw new AdaptorkitError('INVALID_ARGUMENT', `layer ${this.index} already has an enhancer`);
    this._enhancer = this.addChild('enhancer', branch);
  }

  get enhancer(): Branch | undefined {
    return this._enhancer;
  }

  /**
   * x [B, T, d] laid out as `segments`; keyMask [B, 1, 1, T] additive -> [B, T, d]. `fused`: an
   * image+text input, which uses the VL expert (LayerNorms and FFN, no extractor) in a VL layer.
   */
  forward(x: tf.Tensor, segments: readonly Segment[], keyMask: tf.Tensor | undefined, opts: { fused?: boolean; ctx?: ForwardContext } = {}): tf.Tensor {
    const useVL = (opts.fused ?? false) && this.hasVL;
    const expertOf = (s: Segment): Expert => (useVL ? 'vl' : s.modality);
    return tf.tidy(() => {
      const xs = splitSegments(x, segments);
      const a = concatT(xs.map((s, i) => this.attn_norm.get(expertOf(segments[i]!)).forward(s)));
      const h = tf.add(x, this.attn.forward(a, segments, keyMask)); // [B, T, d]
      const hs = splitSegments(h, segments);
      const outs = hs.map((hi, i) => {
        const e = expertOf(segments[i]!);
        let m = this.ffn.get(e).forward(this.ffn_norm.get(e).forward(hi)); // [B, Ti, d]
        const ex = e === 'vl' ? undefined : this.extractor(e);
        if (ex) m = tf.add(m, ex.forward(hi, opts.ctx)); // the extractor reads the FFN block's input
        return tf.add(hi, m);
      });
      let out = concatT(outs);
      if (this._enhancer) out = tf.add(out, this._enhancer.forward(out, opts.ctx));
      return out;
    });
  }
}

class EmptyModule extends Module {}

export interface EncodeOptions {
  ctx?: ForwardContext;
  /** Return every layer's output too (hiddenStates[0] = embeddings). */
  outputHiddenStates?: boolean;
}

export interface EncodeOutput {
  /** [B, T, d] after the final LayerNorm of the modality. */
  lastHidden: tf.Tensor3D;
  hiddenStates?: tf.Tensor3D[];
}

export class MultiwayTransformer extends Module {
  readonly config: MultiwayConfig;
  readonly text_embed: Embedding;
  readonly text_pos: Embedding;
  readonly patch_embed: PatchEmbedding;
  readonly cls_token: Parameter;
  readonly image_pos: Embedding;
  readonly layers: ModuleList<MultiwayLayer>;
  readonly final_norm: Experts<LayerNorm>;
  readonly vision_head: Linear;
  readonly language_head: Linear;
  /** log of the contrastive logit scale, learnable. */
  readonly logit_scale: Parameter;

  constructor(config: MultiwayConfigInput | MultiwayConfig = {}) {
    super();
    const c = parseMultiwayConfig(config);
    this.config = c;
    this.text_embed = this.child('text_embed', new Embedding(c.vocabSize, c.dim));
    this.text_pos = this.child('text_pos', new Embedding(c.maxTextLen, c.dim));
    this.patch_embed = this.child('patch_embed', new PatchEmbedding(c.patchSize, c.dim, true));
    this.cls_token = this.param('cls_token', [c.dim], { kind: 'normal', std: 0.02 });
    this.image_pos = this.child('image_pos', new Embedding(this.numImageTokens, c.dim));
    this.layers = this.child(
      'layers',
      new ModuleList(Array.from({ length: c.numLayers }, (_, i) => new MultiwayLayer(i, c, i >= c.numLayers - c.vlExpertLayers))),
    );
    this.final_norm = this.child('final_norm', new Experts(() => new LayerNorm(c.dim, c.layerNormEps), ['vision', 'language']));
    this.vision_head = this.child('vision_head', new Linear(c.dim, c.embedDim));
    this.language_head = this.child('language_head', new Linear(c.dim, c.embedDim));
    this.logit_scale = this.param('logit_scale', [], { kind: 'constant', value: Math.log(c.logitScaleInit) });
  }

  /** Patches plus the class token. */
  get numImageTokens(): number {
    return (this.config.imageSize / this.config.patchSize) ** 2 + 1;
  }

  /** pixels [B, H, W, 3] -> [B, N+1, d] (class token first) */
  embedImages(pixels: tf.Tensor): tf.Tensor3D {
    const c = this.config;
    if (pixels.rank !== 4 || pixels.shape[1] !== c.imageSize || pixels.shape[2] !== c.imageSize || pixels.shape[3] !== 3) {
      throw new AdaptorkitError('SHAPE_MISMATCH', `images: expected [B, ${c.imageSize}, ${c.imageSize}, 3], got ${formatShape(pixels.shape)}`);
    }
    return tf.tidy(() => {
      const p = this.patch_embed.forward(pixels); // [B, N, d]
      const [B, , d] = p.shape;
      const cls = tf.broadcastTo(tf.reshape(this.cls_token.value, [1, 1, d]), [B, 1, d]);
      return tf.add(tf.concat([cls, p], 1), tf.expandDims(this.image_pos.weight.value, 0)) as tf.Tensor3D; // [B, N+1, d]
    });
  }

  /** ids int32 [B, T] -> [B, T, d] */
  embedTexts(ids: tf.Tensor): tf.Tensor3D {
    const c = this.config;
    if (ids.rank !== 2 || ids.dtype !== 'int32') throw new AdaptorkitError('SHAPE_MISMATCH', `text ids: expected int32 [B, T], got ${ids.dtype} ${formatShape(ids.shape)}`);
    const T = ids.shape[1]!;
    if (T > c.maxTextLen) throw new AdaptorkitError('SHAPE_MISMATCH', `text ids: ${T} tokens exceed the position table of ${c.maxTextLen} (maxTextLen)`);
    return tf.tidy(() => {
      const pos = tf.slice(this.text_pos.weight.value, [0, 0], [T, c.dim]); // [T, d]
      return tf.add(this.text_embed.forward(ids), tf.expandDims(pos, 0)) as tf.Tensor3D;
    });
  }

  /** Additive key mask [B, 1, 1, T] from padding ids, or undefined when nothing is padded. */
  textKeyMask(ids: tf.Tensor): tf.Tensor | undefined {
    const [B, T] = ids.shape as [number, number];
    const v = ids.dataSync();
    let any = false;
    const m = new Float32Array(B * T);
    for (let i = 0; i < v.length; i++) {
      if (v[i] === this.config.padId) {
        m[i] = NEG;
        any = true;
      }
    }
    return any ? tf.tensor4d(m, [B, 1, 1, T]) : undefined;
  }

  /** Run the layers over embeddings laid out as `segments`. */
  runLayers(x: tf.Tensor, segments: readonly Segment[], keyMask: tf.Tensor | undefined, opts: EncodeOptions & { fused?: boolean } = {}): { h: tf.Tensor3D; hiddenStates?: tf.Tensor3D[] } {
    const hs: tf.Tensor3D[] | undefined = opts.outputHiddenStates ? [x as tf.Tensor3D] : undefined;
    let h = x;
    for (const layer of this.layers) {
      h = layer.forward(h, segments, keyMask, { fused: opts.fused, ctx: opts.ctx });
      hs?.push(h as tf.Tensor3D);
    }
    return { h: h as tf.Tensor3D, hiddenStates: hs };
  }

  /** Image-only pass through the vision experts. pixels [B, H, W, 3] -> lastHidden [B, N+1, d] */
  encodeImage(pixels: tf.Tensor, opts: EncodeOptions = {}): EncodeOutput {
    return tf.tidy(() => {
      const x = this.embedImages(pixels);
      const { h, hiddenStates } = this.runLayers(x, [{ modality: 'vision', length: x.shape[1] }], undefined, opts);
      const lastHidden = this.final_norm.get('vision').forward(h) as tf.Tensor3D;
      return (hiddenStates ? { lastHidden, hiddenStates } : { lastHidden }) as unknown as tf.TensorContainer;
    }) as unknown as EncodeOutput;
  }

  /** Text-only pass through the language experts, padded keys masked. ids [B, T] -> lastHidden [B, T, d] */
  encodeText(ids: tf.Tensor, opts: EncodeOptions = {}): EncodeOutput {
    return tf.tidy(() => {
      const x = this.embedTexts(ids);
      const mask = this.textKeyMask(ids);
      const { h, hiddenStates } = this.runLayers(x, [{ modality: 'language', length: x.shape[1] }], mask, opts);
      const lastHidden = this.final_norm.get('language').forward(h) as tf.Tensor3D;
      return (hiddenStates ? { lastHidden, hiddenStates } : { lastHidden }) as unknown as tf.TensorContainer;
    }) as unknown as EncodeOutput;
  }

  /**
   * Fused pass (image tokens, then text tokens): per-modality experts in the lower layers, the
   * vision-language FFN expert for every token in the top `vlExpertLayers` layers (attention stays
   * per modality). Returns the hidden state [B, N+1+T, d] without a final norm.
   */
  encodeFused(pixels: tf.Tensor, ids: tf.Tensor, opts: EncodeOptions = {}): EncodeOutput {
    if (this.config.vlExpertLayers === 0) {
      throw new AdaptorkitError('UNSUPPORTED', 'encodeFused needs a vision-language expert: set vlExpertLayers > 0 in the multiway config');
    }
    return tf.tidy(() => {
      const xi = this.embedImages(pixels);
      const xt = this.embedTexts(ids);
      const [B, Ni] = xi.shape;
      const T = xt.shape[1];
      const tm = this.textKeyMask(ids);
      const mask = tm ? tf.concat([tf.zeros([B, 1, 1, Ni]), tm], 3) : undefined; // [B, 1, 1, Ni+T]
      const segments: Segment[] = [
        { modality: 'vision', length: Ni },
        { modality: 'language', length: T },
      ];
      const { h, hiddenStates } = this.runLayers(tf.concat([xi, xt], 1), segments, mask, { ...opts, fused: true }); // [B, Ni+T, d]
      return (hiddenStates ? { lastHidden: h, hiddenStates } : { lastHidden: h }) as unknown as tf.TensorContainer;
    }) as unknown as EncodeOutput;
  }

  /** Retrieval embedding of images: first token -> vision head -> L2-normalise. [B, e] */
  imageEmbeddings(pixels: tf.Tensor, opts: EncodeOptions = {}): tf.Tensor2D {
    return tf.tidy(() => l2normalize(this.vision_head.forward(firstToken(this.encodeImage(pixels, opts).lastHidden))) as tf.Tensor2D);
  }

  /** Retrieval embedding of texts: first token -> language head -> L2-normalise. [B, e] */
  textEmbeddings(ids: tf.Tensor, opts: EncodeOptions = {}): tf.Tensor2D {
    return tf.tidy(() => l2normalize(this.language_head.forward(firstToken(this.encodeText(ids, opts).lastHidden))) as tf.Tensor2D);
  }
}

/** [B, T, d] -> [B, d] (the first token) */
function firstToken(h: tf.Tensor): tf.Tensor {
  const [B, , d] = h.shape as [number, number, number];
  return tf.reshape(tf.slice(h, [0, 0, 0], [B, 1, d]), [B, d]);
}

function splitSegments(x: tf.Tensor, segments: readonly Segment[]): tf.Tensor[] {
  if (segments.length === 1) return [x];
  const total = segments.reduce((n, s) => n + s.length, 0);
  if (total !== x.shape[1]) throw new AdaptorkitError('SHAPE_MISMATCH', `segments cover ${total} tokens, input has ${x.shape[1]}`);
  return tf.split(x, segments.map((s) => s.length), 1);
}

function concatT(parts: tf.Tensor[]): tf.Tensor {
  return parts.length === 1 ? parts[0]! : tf.concat(parts, 1);
}
