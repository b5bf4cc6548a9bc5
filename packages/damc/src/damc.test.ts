import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, Linear, MLPProjector, Rng, applyRope, disposeGrads, initBackend, manualSeed, tf, valueAndGrads, type CausalLM, type Module } from '@adaptorkit/core';
import { expectBitIdentical, expectClose, expectFlatTensorCount, snapshotParameters, tinyCausalLM } from '@adaptorkit/core/testing';
import {
  ROUTES_KEY, RoutedDelta, RoutedGatedMLP, RoutedLoRALinear, attachDamc, isOneHot, loraDropout, MaskBuffers, routeMasks, composeModels, damcDecoupledMethod, damcNaiveMethod, loraLayers, parseDamcConfig,
  searchCoefficients, type DamcBatch, type DamcModel,
} from './index.js';

const IMG = 60;
const SND = 61;
const E = 8; // encoder width
const N = 3; // features per input

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

function spec(seed: number, placeholderId: number) {
  manualSeed(seed);
  return { encoder: new Linear(E, E), projector: new MLPProjector(E, 32, 2), placeholderId };
}

/** Give every B factor random values so deltas are non-zero (B starts at 0). */
function randomizeDeltas(m: Module, seed: number): void {
  let s = seed;
  for (const [name, p] of m.namedParameters()) {
    if (/\.lora_B\./.test(name) || name.endsWith('boundary')) p.assign(tf.randomNormal(p.shape as number[], 0, 0.3, 'float32', s++));
  }
}

function feats(B: number, seed: number): tf.Tensor {
  return tf.randomNormal([B, N, E], 0, 1, 'float32', seed);
}

/** ids [B, T]: text tokens around one placeholder per listed id. */
function batchOf(rows: number[][], inputs: Record<string, tf.Tensor>, labels = false): DamcBatch {
  const T = Math.max(...rows.map((r) => r.length));
  const ids = new Int32Array(rows.length * T);
  rows.forEach((r, b) => ids.set(r, b * T));
  const lab = labels ? Int32Array.from(ids, (v, i) => (i % T >= T - 2 ? v : -100)) : undefined;
  return { ids, B: rows.length, T, lengths: rows.map((r) => r.length), inputs, ...(lab ? { labels: lab } : {}) };
}

const dense = (l: RoutedLoRALinear, delta: string | undefined): tf.Tensor2D =>
  tf.tidy(() => (delta && l.deltas.has(delta) ? tf.add(l.base_layer.weight.value, l.deltas.get(delta)!.weightDelta()) : l.base_layer.weight.value.clone()) as tf.Tensor2D);

/**
 * Hand-built forward of a tiny LLaMA with per-position weights: position t uses W0 + dW_{route(t)}
 * in every linear map (and the whole SwiGLU path), attention is joint. Written with plain per-row
 * matmuls, independent of the routing code.
 */
function handForward(lm: CausalLM, embeds: tf.Tensor2D, routes: (string | undefined)[]): tf.Tensor2D {
  return tf.tidy(() => {
    const c = lm.config;
    const T = embeds.shape[0];
    const H = c.numHeads;
    const Hkv = c.numKVHeads;
    const hd = c.headDim;
    const rms = (x: tf.Tensor, w: tf.Tensor): tf.Tensor => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), c.rmsNormEps))), w);
    const perPos = (x: tf.Tensor2D, l: Module): tf.Tensor2D => {
      const rows = routes.map((r, t) => {
        const xt = tf.slice(x, [t, 0], [1, -1]);
        const w = l instanceof RoutedLoRALinear ? dense(l, r) : (l as Linear).weight.value;
        return tf.matMul(xt, w as tf.Tensor2D);
      });
      return tf.concat(rows, 0) as tf.Tensor2D;
    };
    const { cos, sin } = lm.rope(0, T);
    let h = embeds as tf.Tensor2D;
    for (const layer of lm.model.layers) {
      const attn = layer.self_attn;
      const a = rms(h, layer.getChild<Module>('input_layernorm').getParam('weight').value) as tf.Tensor2D;
      const q = tf.transpose(tf.reshape(perPos(a, attn.getChild('q_proj')), [T, H, hd]), [1, 0, 2]); // [H, T, hd]
      const k = tf.transpose(tf.reshape(perPos(a, attn.getChild('k_proj')), [T, Hkv, hd]), [1, 0, 2]);
      const v = tf.transpose(tf.reshape(perPos(a, attn.getChild('v_proj')), [T, Hkv, hd]), [1, 0, 2]);
      const qr = applyRope(q, cos, sin);
      const kr = applyRope(k, cos, sin);
      const rep = H / Hkv;
      const heads: tf.Tensor[] = [];
      for (let i = 0; i < H; i++) {
        const qi = tf.squeeze(tf.slice(qr, [i, 0, 0], [1, -1, -1]), [0]) as tf.Tensor2D;
        const j = Math.floor(i / rep);
        const kj = tf.squeeze(tf.slice(kr, [j, 0, 0], [1, -1, -1]), [0]) as tf.Tensor2D;
        const vj = tf.squeeze(tf.slice(v, [j, 0, 0], [1, -1, -1]), [0]) as tf.Tensor2D;
        const mask = tf.tensor2d(Array.from({ length: T * T }, (_, x) => (x % T <= Math.floor(x / T) ? 0 : -1e9)), [T, T]);
        const p = tf.softmax(tf.add(tf.mul(tf.matMul(qi, kj, false, true), 1 / Math.sqrt(hd)), mask), -1);
        heads.push(tf.matMul(p, vj)); // [T, hd]
      }
      const o = perPos(tf.concat(heads, 1) as tf.Tensor2D, attn.getChild('o_proj'));
      h = tf.add(h, o) as tf.Tensor2D;
      const m = rms(h, layer.getChild<Module>('post_attention_layernorm').getParam('weight').value) as tf.Tensor2D;
      const mlp = layer.getChild<Module>('mlp');
      const g = perPos(m, mlp.getChild('gate_proj'));
      const u = perPos(m, mlp.getChild('up_proj'));
      const hid = tf.mul(tf.mul(g, tf.sigmoid(g)), u) as tf.Tensor2D;
      h = tf.add(h, perPos(hid, mlp.getChild('down_proj'))) as tf.Tensor2D;
    }
    const hn = rms(h, lm.model.norm.weight.value);
    return tf.matMul(hn as tf.Tensor2D, lm.lm_head!.weight.value as tf.Tensor2D) as tf.Tensor2D;
  });
}

function decoupled(seed: number, modality: string, pid: number, lora: object = {}): DamcModel {
  return attachDamc(tinyCausalLM(0), { mode: 'decoupled', modality, lora: { rank: 4, alpha: 8, dropout: 0, ...lora }, boundaryTokens: 2, seed }, spec(seed + 100, pid)).model;
}

describe('routed LoRA', () => {
  it('zero-initialised deltas reproduce the base model exactly (text-only ids, both modes)', () => {
    const base = tinyCausalLM(0);
    const ids = tf.tensor2d([[1, 5, 9, 2, 7]], [1, 5], 'int32');
    const ref = base.logits(ids);
    for (const mode of ['naive', 'decoupled'] as const) {
      const { model } = attachDamc(tinyCausalLM(0), { mode, lora: { rank: 4, alpha: 8 } }, spec(1, IMG));
      const { logits } = model.forward({ ids: ids.dataSync() as Int32Array, B: 1, T: 5 });
      expectBitIdentical(logits, ref, `${mode} logits`);
      logits.dispose();
      model.dispose();
    }
    ids.dispose();
    ref.dispose();
    base.dispose();
  });

  it('routes each position to its delta: matches a hand-built per-position forward', () => {
    const model = decoupled(1, 'image', IMG);
    randomizeDeltas(model, 3);
    const lm = model.language_model;
    expect(lm.model.layers.at(0).getChild('mlp')).toBeInstanceOf(RoutedGatedMLP);
    const x = feats(1, 5);
    const b = batchOf([[1, 4, IMG, 6, 3]], { image: x });
    const { logits, prepared } = model.forward(b);
    // positions: 2 text, 2 + 3 + 2 image span (boundary, features, boundary), 2 text
    const routes = Array.from(prepared.routeIds, (k) => prepared.routeNames[k]);
    expect(routes).toEqual(['text', 'text', ...Array<string>(7).fill('image'), 'text', 'text']);
    expect(prepared.spans.image).toEqual([4]);
    const embeds = tf.tidy(() => tf.squeeze(model.prepare(b).embeds, [0]) as tf.Tensor2D);
    const want = handForward(lm, embeds, routes);
    expectClose(tf.squeeze(logits, [0]), want, { atol: 2e-4, rtol: 1e-4 });
    // and it is not the single-delta forward: routing matters
    const allText = handForward(lm, embeds, routes.map(() => 'text'));
    expect(tf.max(tf.abs(tf.sub(allText, want))).dataSync()[0]).toBeGreaterThan(1e-3);
    // boundary embeddings sit around the features
    const span = tf.slice(embeds, [2, 0], [7, -1]);
    const bd = model.branch('image').boundary!.value;
    expectClose(tf.slice(span, [0, 0], [2, -1]), tf.slice(bd, [0, 0], [2, -1]));
    expectClose(tf.slice(span, [5, 0], [2, -1]), tf.slice(bd, [2, 0], [2, -1]));
    tf.dispose([logits, embeds, want, allText, x]);
    model.dispose();
  });

  it('one-hot routes: the routed-projection MLP equals the whole-path-per-delta reference (values and gradients)', () => {
    const model = decoupled(4, 'image', IMG);
    randomizeDeltas(model, 21);
    const mlp = model.language_model.model.layers.at(1).getChild<RoutedGatedMLP>('mlp');
    const [B, T] = [2, 5];
    // text, image and unrouted (-1: base only) positions
    const masks = routeMasks(Int32Array.from([0, 1, 1, 0, -1, 1, 0, 0, 1, -1]), B, T, ['text', 'image']);
    expect(isOneHot(masks)).toBe(true);
    const soft = new Map(masks); // the same masks, not known to be one-hot: the reference path
    expect(isOneHot(soft)).toBe(false);
    const x = tf.randomNormal([B, T, 32], 0, 1, 'float32', 7);
    const params = model.namedTrainableParameters().filter(([n]) => n.includes('layers.1.mlp')).map(([, p]) => p.value);
    expect(params.length).toBe(12); // gate, up, down x text, image x A, B
    const run = (routes: Map<string, tf.Tensor>, whole: boolean) =>
      tf.variableGrads(() => tf.sum(tf.square(whole ? mlp.forwardWholePaths(x, { training: false, [ROUTES_KEY]: routes }) : mlp.forward(x, { training: false, [ROUTES_KEY]: routes }))) as tf.Scalar, params);
    const fast = run(masks, false);
    const ref = run(soft, true);
    const viaForward = run(soft, false); // forward() falls back to the whole paths for unknown masks
    expectClose(fast.value, ref.value, { atol: 1e-3, rtol: 1e-5 });
    expectClose(viaForward.value, ref.value, { atol: 0, rtol: 0 });
    for (const v of params) expectClose(fast.grads[v.name]!, ref.grads[v.name]!, { atol: 1e-4, rtol: 1e-4 });
    // and the routes matter: all-text differs
    const allText = run(routeMasks(new Int32Array(B * T), B, T, ['text', 'image']), false);
    expect(Math.abs(allText.value.dataSync()[0]! - ref.value.dataSync()[0]!)).toBeGreaterThan(1e-3);
    for (const r of [fast, ref, viaForward, allText]) tf.dispose([r.value, ...Object.values(r.grads)]);
    tf.dispose([x, ...masks.values()]);
    model.dispose();
  });

  it('a routed linear with a composite delta equals its dense per-position weights', () => {
    const model = decoupled(5, 'image', IMG);
    randomizeDeltas(model, 31);
    const l = model.language_model.model.layers.at(0).self_attn.getChild<RoutedLoRALinear>('q_proj');
    const [t, im] = [l.deltas.get('text')!, l.deltas.get('image')!];
    l.addComposite('mix', new RoutedDelta([...t.parts, ...im.parts], [0.25, 0.5]));
    const ids = Int32Array.from([0, 1, 2, 2, -1, 1]);
    const masks = routeMasks(ids, 1, 6, ['text', 'image', 'mix']);
    const x = tf.randomNormal([1, 6, 32], 0, 1, 'float32', 8);
    const y = l.forward(x, { training: false, [ROUTES_KEY]: masks });
    const mixW = tf.tidy(() => tf.add(tf.mul(t.weightDelta(), 0.25), tf.mul(im.weightDelta(), 0.5)));
    const rows = Array.from(ids, (k, i) => tf.tidy(() => {
      const w = tf.add(l.base_layer.weight.value, k === 0 ? t.weightDelta() : k === 1 ? im.weightDelta() : k === 2 ? mixW : tf.zerosLike(mixW));
      return tf.matMul(tf.reshape(tf.slice(x, [0, i, 0], [1, 1, -1]), [1, 32]), w as tf.Tensor2D);
    }));
    expectClose(tf.reshape(y, [6, -1]), tf.concat(rows, 0), { atol: 1e-4, rtol: 1e-4 });
    tf.dispose([y, x, mixW, ...rows, ...masks.values()]);
    model.dispose();
  });

  it('LoRA dropout: Bernoulli(1 - p) keep mask scaled by 1 / (1 - p), seeded, identity when not training', () => {
    const x = tf.ones([200, 1000]);
    for (const p of [0.05, 0.5, 0.9]) {
      const y = loraDropout(x, p, { training: true }, new Rng(3));
      const v = y.dataSync();
      let kept = 0;
      let off = 0; // kept values other than 1 / (1 - p)
      for (const e of v) {
        if (e !== 0) {
          kept++;
          if (Math.abs(e - 1 / (1 - p)) > 1e-6) off++;
        }
      }
      expect(off).toBe(0);
      const n = v.length;
      expect(Math.abs(kept / n - (1 - p))).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n)); // within 5 sigma
      const again = loraDropout(x, p, { training: true }, new Rng(3));
      expectBitIdentical(again, y, 'same seed, same mask');
      tf.dispose([y, again]);
    }
    // no runs longer than chance would give: the first and last drops spread over the array
    const y = loraDropout(x, 0.05, { training: true }, new Rng(4)).dataSync();
    expect(y.indexOf(0)).toBeLessThan(400);
    expect(y.lastIndexOf(0)).toBeGreaterThan(y.length - 400);
    expect(loraDropout(x, 0.05, { training: false }, new Rng(3))).toBe(x);
    x.dispose();
  });

  it('a delta whose coefficients are all 0 is skipped: base output exactly, no dropout mask drawn', () => {
    manualSeed(5);
    const l = new RoutedLoRALinear(new Linear(6, 5), { rank: 2, alpha: 4, dropout: 0.5 });
    const d = l.addLoRA('text');
    l.defaultDelta = 'text';
    tf.tidy(() => d.parts[0]!.B.weight.value.assign(tf.randomNormal([2, 5], 0, 1, 'float32', 3))); // a non-zero delta
    const x = tf.randomNormal([3, 6], 0, 1, 'float32', 4);
    const base = l.base_layer.forward(x);
    const withDelta = l.forward(x, { training: true });
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(withDelta, base))).dataSync()[0])).toBeGreaterThan(1e-3);
    d.coefs = [0];
    const rng = new Rng(8);
    l.reseed(rng);
    const skipped = l.forward(x, { training: true });
    expectBitIdentical(skipped, base, 'coefficient 0: the base layer alone');
    expect(l.deltaOutput(x, undefined, { training: true })).toBeUndefined();
    expect(rng.next()).toBe(new Rng(8).next()); // the dropout stream was not advanced
    tf.dispose([x, base, withDelta, skipped]);
    l.dispose();
  });

  it('mask buffers are reused only when no tensor holds them', () => {
    const bufs = new MaskBuffers();
    const filled = (v: number) => bufs.tensor([2, 3], (a) => a.fill(v));
    const t1 = filled(1);
    const t2 = filled(2); // t1 alive: a new array
    expect(Array.from(t1.dataSync())).toEqual(Array(6).fill(1));
    t1.dispose();
    const shared = tf.reshape(t2, [6]); // shares t2's data by reference
    t2.dispose();
    const t3 = filled(3); // t1's array is free, t2's is still held by `shared`
    expect(Array.from(shared.dataSync())).toEqual(Array(6).fill(2));
    expect(Array.from(t3.dataSync())).toEqual(Array(6).fill(3));
    tf.dispose([shared, t3]);
    // the same mask with and without reuse
    const x = tf.randomNormal([4, 50], 0, 1, 'float32', 1);
    const a = loraDropout(x, 0.3, { training: true }, new Rng(9));
    const b = loraDropout(x, 0.3, { training: true }, new Rng(9), bufs);
    expectBitIdentical(b, a, 'mask from reused buffers');
    tf.dispose([x, a, b]);
  });

  it('naive mode applies its one delta to every position', () => {
    const { model } = attachDamc(tinyCausalLM(0), { mode: 'naive', lora: { rank: 4, alpha: 8, dropout: 0 }, boundaryTokens: 1 }, spec(2, IMG));
    randomizeDeltas(model, 9);
    const x = feats(1, 6);
    const b = batchOf([[3, IMG, 8]], { image: x });
    const { logits, prepared } = model.forward(b);
    const embeds = tf.tidy(() => tf.squeeze(model.prepare(b).embeds, [0]) as tf.Tensor2D);
    const want = handForward(model.language_model, embeds, Array(prepared.S).fill('shared'));
    expectClose(tf.squeeze(logits, [0]), want, { atol: 2e-4, rtol: 1e-4 });
    tf.dispose([logits, embeds, want, x]);
    model.dispose();
  });

  it('target and layer selection by list or pattern', () => {
    const m1 = attachDamc(tinyCausalLM(0), { lora: { rank: 2, targets: ['q_proj', 'down_proj'], layers: [1] } }, spec(1, IMG)).model;
    expect(loraLayers(m1).map(([p]) => p)).toEqual(['language_model.model.layers.1.self_attn.q_proj', 'language_model.model.layers.1.mlp.down_proj']);
    const m2 = attachDamc(tinyCausalLM(0), { lora: { rank: 2, targets: { pattern: 'layers\\.0\\.self_attn\\.(k|v)_proj$' } } }, spec(1, IMG)).model;
    expect(loraLayers(m2).map(([p]) => p)).toEqual(['language_model.model.layers.0.self_attn.k_proj', 'language_model.model.layers.0.self_attn.v_proj']);
    // trainable = 2 deltas * r (in + out) per map + projector + boundary (encoder frozen)
    const { trainable, model: m3 } = attachDamc(tinyCausalLM(0), { lora: { rank: 2 } }, spec(1, IMG));
    const d = 32, f = 64, kv = 16, r = 2;
    // 2 layers x 2 deltas x r (in + out) summed over q, k, v, o, gate, up, down
    const lora = 2 * 2 * r * ((d + d) + (d + kv) + (d + kv) + (d + d) + (d + f) + (d + f) + (f + d));
    const proj = E * 32 + 32 + 32 * 32 + 32;
    expect(trainable.reduce((s, p) => s + p.size, 0)).toBe(lora + proj + 2 * 5 * 32);
    for (const m of [m1, m2, m3]) m.dispose();
    expect(() => attachDamc(tinyCausalLM(0), { lora: { layers: [7] } })).toThrow(/lora.layers: layer 7 is outside 0..1/);
    expect(() => attachDamc(tinyCausalLM(0), { lora: { targets: { pattern: 'nothing' } } })).toThrow(/lora.targets: matched no linear map/);
  });

  it('config errors name the field path', () => {
    expect(() => parseDamcConfig({ lora: { rank: 0 } })).toThrow(/lora\.rank:/);
    expect(() => parseDamcConfig({ lora: { targets: ['q_proj', 'x_proj'] } })).toThrow(/lora\.targets/);
    expect(() => parseDamcConfig({ lora: { targets: { pattern: '(' } } })).toThrow(/lora\.targets\.pattern: not a valid regular expression/);
    expect(() => parseDamcConfig({ mode: 'mixed' })).toThrow(/mode:/);
    expect(() => parseDamcConfig({ modality: 'text' })).toThrow(/modality: 'text' is reserved/);
    expect(parseDamcConfig({}).lora).toMatchObject({ rank: 128, alpha: 256, dropout: 0.05 });
  });
});

describe('training', () => {
  it('trains only the adapters: frozen weights bit-identical, tensor count flat', async () => {
    const { model, trainable } = attachDamc(tinyCausalLM(0), { lora: { rank: 4, alpha: 8, dropout: 0.1 }, boundaryTokens: 2 }, spec(3, IMG));
    const frozen = model.namedParameters().filter(([, p]) => !p.trainable);
    expect(frozen.some(([n]) => n.includes('base_layer'))).toBe(true);
    expect(frozen.some(([n]) => n.startsWith('modalities.image.encoder'))).toBe(true);
    const before = snapshotParameters(frozen);
    const trainedBefore = snapshotParameters(model.namedTrainableParameters());
    const opt = new AdamW(trainable, { lr: 1e-2 });
    const x = feats(2, 11);
    const b = batchOf([[1, IMG, 4, 5, 6], [2, 3, IMG, 7]], { image: x }, true);
    const losses: number[] = [];
    await expectFlatTensorCount(() => {
      const { loss, grads } = valueAndGrads(() => model.loss(b, { training: true }), trainable);
      opt.step(grads);
      disposeGrads(grads);
      losses.push(loss);
    }, 6);
    expect(losses[losses.length - 1]!).toBeLessThan(losses[0]!);
    for (const [n, p] of frozen) expectBitIdentical(p.value, before.get(n)!, n);
    const changed = model.namedTrainableParameters().filter(([n, p]) => {
      const a = p.value.dataSync();
      const o = trainedBefore.get(n)!;
      return a.some((v, i) => v !== o[i]);
    });
    // every LoRA factor, the projector and the boundary moved
    expect(changed.length).toBe(model.namedTrainableParameters().length);
    x.dispose();
    model.dispose();
  });
});

describe('composition', () => {
  it('DAMC keeps modality deltas and merges text deltas as a weighted sum of products', () => {
    const a = decoupled(1, 'image', IMG);
    const s = decoupled(2, 'sound', SND);
    randomizeDeltas(a, 20);
    randomizeDeltas(s, 40);
    const c = composeModels(tinyCausalLM(0), [a, s], { method: 'damc' });
    const layer = (m: DamcModel) => loraLayers(m.language_model).find(([p]) => p.endsWith('layers.1.mlp.down_proj'))![1];
    const la = layer(a), ls = layer(s), lc = layer(c.model);
    const avg = tf.tidy(() => tf.mul(tf.add(la.deltas.get('text')!.weightDelta(), ls.deltas.get('text')!.weightDelta()), 0.5));
    expectClose(lc.deltas.get('text')!.weightDelta(), avg, { atol: 1e-6 });
    // averaging the factors is a different merge
    const factorAvg = tf.tidy(() => {
      const pa = la.deltas.get('text')!.parts[0]!, ps = ls.deltas.get('text')!.parts[0]!;
      const A = tf.mul(tf.add(pa.A.weight.value, ps.A.weight.value), 0.5);
      const B = tf.mul(tf.add(pa.B.weight.value, ps.B.weight.value), 0.5);
      return tf.mul(tf.matMul(A as tf.Tensor2D, B as tf.Tensor2D), pa.scale);
    });
    expect(tf.max(tf.abs(tf.sub(factorAvg, avg))).dataSync()[0]).toBeGreaterThan(1e-4);
    expectClose(lc.deltas.get('image')!.weightDelta(), la.deltas.get('image')!.weightDelta(), { atol: 0 });
    expectClose(lc.deltas.get('sound')!.weightDelta(), ls.deltas.get('sound')!.weightDelta(), { atol: 0 });

    // with text coefficients [1, 0], an image-only input gives model a's output exactly
    const xi = feats(1, 7);
    const bi = batchOf([[1, IMG, 4, 5]], { image: xi });
    c.setCoefficients([1, 0]);
    const ya = a.forward(bi).logits;
    const yc = c.model.forward(bi).logits;
    expectClose(yc, ya, { atol: 1e-5 });
    // both modalities at once: each span routes to its own delta
    const xs = feats(1, 8);
    const both = batchOf([[1, IMG, SND, 4, 5]], { image: xi, sound: xs });
    c.setCoefficients([0.5, 0.5]);
    const { logits, prepared } = c.model.forward(both);
    const routes = Array.from(prepared.routeIds, (k) => prepared.routeNames[k]);
    expect(routes).toEqual(['text', ...Array<string>(7).fill('image'), ...Array<string>(7).fill('sound'), 'text', 'text']);
    const embeds = tf.tidy(() => tf.squeeze(c.model.prepare(both).embeds, [0]) as tf.Tensor2D);
    expectClose(tf.squeeze(logits, [0]), handForward(c.model.language_model, embeds, routes), { atol: 2e-4, rtol: 1e-4 });
    tf.dispose([avg, factorAvg, xi, xs, ya, yc, logits, embeds]);
  });

  it('NaiveMC merges the shared deltas (1/N) and applies them everywhere; a mode mismatch is refused', () => {
    const mk = (seed: number, modality: string, pid: number) => {
      const m = attachDamc(tinyCausalLM(0), { mode: 'naive', modality, lora: { rank: 3, alpha: 3, dropout: 0 }, boundaryTokens: 0, seed }, spec(seed, pid)).model;
      randomizeDeltas(m, seed * 10);
      return m;
    };
    const a = mk(1, 'image', IMG);
    const s = mk(2, 'sound', SND);
    const c = composeModels(tinyCausalLM(0), [a, s], { method: 'naive' });
    const pick = (m: DamcModel) => loraLayers(m.language_model)[0]![1].deltas.get('shared')!.weightDelta();
    expectClose(pick(c.model), tf.mul(tf.add(pick(a), pick(s)), 0.5), { atol: 1e-6 });
    const xi = feats(1, 3);
    const xs = feats(1, 4);
    const b = batchOf([[2, IMG, SND, 9]], { image: xi, sound: xs });
    const { logits, prepared } = c.model.forward(b);
    const embeds = tf.tidy(() => tf.squeeze(c.model.prepare(b).embeds, [0]) as tf.Tensor2D);
    expectClose(tf.squeeze(logits, [0]), handForward(c.model.language_model, embeds, Array(prepared.S).fill('shared')), { atol: 2e-4, rtol: 1e-4 });
    expect(() => composeModels(tinyCausalLM(0), [a, decoupled(3, 'points', 62)], { method: 'naive' })).toThrow(/model 1 was trained with mode 'decoupled'/);
    expect(() => composeModels(tinyCausalLM(5), [a], { method: 'naive' })).toThrow(/not trained on this base/);
  });

  it('coefficient search picks the best grid point and leaves it set', async () => {
    const c = composeModels(tinyCausalLM(0), [decoupled(1, 'image', IMG), decoupled(2, 'sound', SND)], { method: 'damc' });
    const r = await searchCoefficients(c, [0, 0.5, 1], (k) => -Math.abs(k[0]! - 1) - Math.abs(k[1]! - 0.5));
    expect(r.tried.length).toBe(9);
    expect(r.best).toEqual([1, 0.5]);
    expect(c.coefficients()).toEqual([1, 0.5]);
  });

  it('generation: new tokens are text (cached decoding equals full re-forward with text routes)', async () => {
    const c = composeModels(tinyCausalLM(0), [decoupled(1, 'image', IMG), decoupled(2, 'sound', SND)], { method: 'damc' });
    const m = c.model;
    // make deltas non-zero through the sources' parameters
    randomizeDeltas(m.modalities, 1);
    for (const [, l] of loraLayers(m.language_model)) for (const d of l.deltas.values()) for (const p of d.parts) p.B.weight.assign(tf.randomNormal(p.B.weight.shape as number[], 0, 0.3, 'float32', 17));
    const xi = feats(1, 7);
    const xs = feats(1, 8);
    const prompt = [1, IMG, SND, 4];
    const [gen] = await m.generate(batchOf([prompt], { image: xi, sound: xs }), { maxNewTokens: 4 });
    expect(gen!.length).toBe(4);
    for (let i = 0; i < gen!.length; i++) {
      const ids = [...prompt, ...gen!.slice(0, i)];
      const lg = m.nextTokenLogits(batchOf([ids], { image: xi, sound: xs }));
      expect(tf.argMax(lg, -1).dataSync()[0]).toBe(gen![i]);
      lg.dispose();
    }
    tf.dispose([xi, xs]);
  });

  it('method values for the trainer', () => {
    const { model } = damcNaiveMethod.attach(tinyCausalLM(0), { lora: { rank: 2 } }, spec(1, IMG));
    expect(model.routing).toBe('shared');
    expect(damcDecoupledMethod.configSchema.parse({}).mode).toBe('decoupled');
    model.dispose();
  });
});
