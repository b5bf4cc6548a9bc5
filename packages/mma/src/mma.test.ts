import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, AdaptorkitError, cellPoolMatrix, defaultParamGroups, disposeGrads, generate, initBackend, tf, valueAndGrads, IGNORE_INDEX, type ForwardContext } from '@adaptorkit/core';
import { expectBitIdentical, expectClose, expectFlatTensorCount, snapshotParameters, tinyCausalLM, tinyVisionEncoder } from '@adaptorkit/core/testing';
import { attachMma, bypassContext, expandImagePlaceholder, lavinPrompt, mmaMethod, mmaParameterFormula, modalityMask, parseMmaConfig, routingWeights, type MmaConfigInput, type MmaModel } from './index.js';

const IMG = 5; // image placeholder id
const BOS = 1;
const EOS = 2;

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

function build(cfg: MmaConfigInput = {}, seed = 1): MmaModel {
  return attachMma({ lm: tinyCausalLM(seed), vision: tinyVisionEncoder(seed + 1), imageTokenId: IMG }, cfg);
}

/** Give every up-projection random weights (an adapter that is not the identity). */
function randomizeUps(m: MmaModel, seed = 3): void {
  tf.tidy(() => {
    m.sites.forEach((s, i) => s.adapter.ups.forEach((u, j) => {
      u.weight.assign(tf.randomNormal(u.weight.shape as number[], 0, 0.3, 'float32', seed + 10 * i + j));
      u.bias?.assign(tf.randomNormal(u.bias.shape as number[], 0, 0.1, 'float32', seed + 10 * i + j + 5));
    }));
  });
}

/** Row 0: image sample, row 1: text-only sample (same length). */
function mixedIds(): tf.Tensor2D {
  return tf.tensor2d([[BOS, IMG, IMG, 10, 11, 12, 13], [BOS, 20, 21, 22, 23, 24, 25]], [2, 7], 'int32');
}
function pixels(n: number, seed = 9): tf.Tensor4D {
  return tf.randomNormal([n, 16, 16, 3], 0, 1, 'float32', seed) as tf.Tensor4D;
}

/** The frozen model's logits for the same layout, computed on an untouched copy of the base. */
function frozenReference(m: MmaModel, ids: tf.Tensor2D, images: tf.Tensor4D | undefined, modality: number[]): tf.Tensor3D {
  const lm = tinyCausalLM(1);
  const vision = tinyVisionEncoder(2);
  return tf.tidy(() => {
    const [B, T] = ids.shape;
    let text = lm.embed(ids);
    if (images) {
      const hs = vision.forward(images).hiddenStates;
      const cls = m.visualDepths.map((k) => tf.slice(hs[k]!, [0, 0, 0], [images.shape[0], 1, 32]));
      const feats = m.projector!.forward(tf.concat(cls, 1)) as tf.Tensor3D; // [B_img, K, d]
      const flat = ids.dataSync() as Int32Array;
      const rows = modality.map((mod, b) => (mod === 1 ? b : -1)).filter((b) => b >= 0);
      const full = tf.stack(Array.from({ length: B }, (_, b) => (rows.includes(b) ? tf.gather(feats, rows.indexOf(b)) : tf.zeros([m.numVisualTokens, 32])))) as tf.Tensor3D;
      const table = text.arraySync();
      const f = full.arraySync();
      for (let b = 0; b < B; b++) {
        let k = 0;
        for (let t = 0; t < T; t++) if (flat[b * T + t] === IMG) table[b]![t] = f[b]![k++]!;
      }
      text = tf.tensor3d(table);
    }
    const mod = tf.reshape(tf.gather(m.modality_embedding.weight.value, tf.tensor1d(modality, 'int32')), [B, 1, 32]);
    const embeds = tf.concat([mod, text], 1);
    const out = lm.forward({ embeds, mask: modalityMask(T + 1), positionOffset: 0, skipHead: true });
    return lm.head(tf.slice(out.lastHidden, [0, 1, 0], [B, T, 32]));
  });
}

describe('zero-initialised up-projections: the adapted model equals the frozen model exactly', () => {
  for (const cfg of [{}, { placement: 'both', routing: 'token' }, { branches: 1 }] as MmaConfigInput[]) {
    it(`mixed image + text batch ${JSON.stringify(cfg)}`, () => {
      const m = build(cfg);
      const ids = mixedIds();
      const img = pixels(1);
      for (const ctx of [undefined, { training: true }] as (ForwardContext | undefined)[]) {
        const got = m.forward({ ids, images: img, ctx }).logits!;
        const want = frozenReference(m, ids, img, [1, 0]);
        expectBitIdentical(got, want, 'logits');
        got.dispose();
        want.dispose();
      }
      // one image per row is accepted too (the text row's image is ignored)
      const perRow = m.forward({ ids, images: pixels(2) }).logits!;
      const compact = m.forward({ ids, images: tf.slice(pixels(2), [0], [1]) }).logits!;
      expectBitIdentical(perRow, compact, 'per-row vs compact images');
      // the text positions match the plain base LLM without the modality token (RoPE is relative; float rounding only)
      const textOnly = tf.slice(ids, [1, 0], [1, 7]);
      const base = tinyCausalLM(1).logits(textOnly);
      expectClose(m.forward({ ids: textOnly }).logits!, base, { atol: 2e-5, rtol: 1e-4 });
      expectBitIdentical(m.baseForward(textOnly).logits!, base, 'baseForward');
      // core's generate on the adapted lm under bypassContext() is the frozen base model
      const prompt = [BOS, 20, 21, 22];
      expect(generate(m.lm, prompt, { maxNewTokens: 4, ctx: bypassContext() }).tokens).toEqual(generate(tinyCausalLM(1), prompt, { maxNewTokens: 4 }).tokens);
    });
  }
});

describe('the modality token', () => {
  it('no other position attends to it: with a router-free adapter, outputs do not depend on the modality row', () => {
    const m = build({ branches: 1 });
    randomizeUps(m);
    const ids = tf.slice(mixedIds(), [1, 0], [1, 7]);
    const a = m.forward({ ids, modality: [0] }).logits!;
    const b = m.forward({ ids, modality: [1] }).logits!;
    expectBitIdentical(a, b, 'logits for modality 0 vs 1');
    // negative control: without the mask the modality token leaks into every position
    const leak = tf.tidy(() => {
      const e0 = m.embedInputs({ ids, modality: [0] }).embeds;
      const e1 = m.embedInputs({ ids, modality: [1] }).embeds;
      const l0 = m.lm.forward({ embeds: e0, positionOffset: 0 }).logits!;
      const l1 = m.lm.forward({ embeds: e1, positionOffset: 0 }).logits!;
      return tf.max(tf.abs(tf.sub(tf.slice(l0, [0, 1, 0]), tf.slice(l1, [0, 1, 0])))).dataSync()[0]!;
    });
    expect(leak).toBeGreaterThan(1e-4);
  });

  it("its hidden state depends on the modality only, so per-sample routing ignores the rest of the sequence", () => {
    const m = build();
    randomizeUps(m);
    const texts = tf.tensor2d([[BOS, 20, 21, 22, 23], [BOS, 40, 41, 42, 43], [BOS, 40, 41, 42, 43]], [3, 5], 'int32');
    const r = routingWeights(m, { ids: texts, modality: [0, 0, 1] });
    expect(r.lm).toHaveLength(2);
    for (const l of r.lm) {
      expect(l.weights[0]).toEqual(l.weights[1]); // same modality, different text: identical weights
      expect(l.weights[1]).not.toEqual(l.weights[2]); // same text, other modality: different weights
    }
    // and position 0's hidden state in every layer is bit-identical across texts
    tf.tidy(() => {
      const e = m.embedInputs({ ids: texts, modality: [0, 0, 1] }).embeds;
      const hs = m.lm.forward({ embeds: e, mask: modalityMask(6), positionOffset: 0, outputHiddenStates: true }).hiddenStates!;
      for (const h of hs) expectBitIdentical(tf.slice(h, [0, 0, 0], [1, 1, 32]), tf.slice(h, [1, 0, 0], [1, 1, 32]), 'position 0');
    });
  });
});

describe('routing weights', () => {
  it('are inspectable per layer and per tower, sum to 1, and follow temperature / hard routing / per-token options', () => {
    const m = build();
    const ids = mixedIds();
    const img = pixels(1);
    const r = routingWeights(m, { ids, images: img });
    expect(r.modality).toEqual([1, 0]);
    expect(r.lm.map((l) => [l.tower, l.layer, l.slot])).toEqual([['lm', 0, 'preAttn'], ['lm', 1, 'preAttn']]);
    expect(r.vision.map((l) => l.layer)).toEqual([0, 1]);
    for (const l of [...r.lm, ...r.vision]) for (const w of l.weights) expect(w[0]! + w[1]!).toBeCloseTo(1, 6);
    expect(r.vision[0]!.weights).toHaveLength(1); // only the image row runs the encoder: [B_img][N]
    // rows of different modality route differently from step 0 (random modality rows)
    expect(r.lm[0]!.weights[0]).not.toEqual(r.lm[0]!.weights[1]);
    // temperature: higher tau -> closer to uniform
    const spread = (mm: MmaModel): number => {
      const rr = routingWeights(mm, { ids, images: img });
      return Math.max(...rr.lm.flatMap((l) => l.weights.map((w) => Math.abs(w[0]! - 0.5))));
    };
    expect(spread(build({ temperature: 100 }))).toBeLessThan(spread(build({ temperature: 0.1 })));
    // hard routing: one-hot at inference
    const hard = routingWeights(build({ hardRouting: true }), { ids, images: img });
    for (const l of hard.lm) for (const w of l.weights) expect([...w].sort()).toEqual([0, 1]);
    // per-token: [B][T][N] without the modality token
    const tok = routingWeights(build({ routing: 'token' }), { ids, images: img });
    expect(tok.lm[0]!.perToken).toHaveLength(2);
    expect(tok.lm[0]!.perToken![0]).toHaveLength(7);
  });
});

/**
 * A toy mixed task: image rows ask "what is the image?" and the answer (30 or 31) is the sign of
 * the image's mean; text rows end in a token X and the answer is X + 10 (copy with an offset).
 */
function toyBatch(step: number, B = 8): { ids: tf.Tensor2D; labels: tf.Tensor2D; images: tf.Tensor4D } {
  const ids: number[][] = [];
  const labels: number[][] = [];
  const imgs: tf.Tensor[] = [];
  for (let b = 0; b < B; b++) {
    const s = step * B + b;
    if (b % 2 === 0) {
      const bright = (s >> 1) % 2 === 0;
      const ans = bright ? 30 : 31;
      ids.push([BOS, IMG, IMG, 10, 11, ans, EOS]);
      labels.push([IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, ans, EOS]);
      imgs.push(tf.add(tf.randomNormal([1, 16, 16, 3], 0, 0.3, 'float32', s), bright ? 1 : -1));
    } else {
      const x = 40 + ((s * 31) % 8);
      ids.push([BOS, 12, 13, 14, x, x + 10, EOS]);
      labels.push([IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, x + 10, EOS]);
    }
  }
  const images = tf.concat(imgs, 0) as tf.Tensor4D; // one per image row
  imgs.forEach((t) => t.dispose());
  return { ids: tf.tensor2d(ids, [B, 7], 'int32'), labels: tf.tensor2d(labels, [B, 7], 'int32'), images };
}

async function train(m: MmaModel, steps: number, lr: number): Promise<number[]> {
  const named = m.namedMmaParameters();
  const opt = new AdamW(defaultParamGroups(named, 0.02), { lr, betas: [0.9, 0.95] });
  const losses: number[] = [];
  const batches = Array.from({ length: 4 }, (_, i) => toyBatch(i));
  await expectFlatTensorCount((i) => {
    const b = batches[i % batches.length]!;
    const { loss, grads } = valueAndGrads(() => m.loss({ ...b, ctx: { training: true } }), named.map(([, p]) => p));
    opt.step(grads);
    disposeGrads(grads);
    losses.push(loss);
  }, steps);
  for (const b of batches) for (const t of Object.values(b)) t.dispose();
  return losses;
}

const mean = (a: number[]): number => a.reduce((x, y) => x + y, 0) / a.length;

describe('training', () => {
  it('only MMA trains; loss drops on a toy mixed task; frozen weights stay bit-identical; tensor count flat', async () => {
    const m = build({ dropout: 0.1 });
    const trainable = new Set(m.trainableParameters());
    const mine = m.mmaParameters();
    expect(new Set(mine)).toEqual(trainable);
    expect(m.countParameters({ trainable: true })).toBe(mmaParameterFormula({ lm: tinyCausalLM(1).config, vision: tinyVisionEncoder(2).config }));
    expect(m.namedMmaParameters().map(([n]) => n)).toContain('lm.model.layers.0.preAttn.ups.1.weight');
    expect(m.namedMmaParameters().map(([n]) => n)).toContain('vision.vision_model.encoder.layers.1.preAttn.router.weight');
    const frozen = m.namedParameters().filter(([, p]) => !p.trainable);
    const before = snapshotParameters(frozen);
    const losses = await train(m, 30, 3e-2);
    expect(mean(losses.slice(-8))).toBeLessThan(0.6 * mean(losses.slice(0, 4)));
    for (const [n, p] of frozen) expectBitIdentical(p.value, before.get(n)!, n);
    // the up-projections moved off zero (the adapters are no longer the identity)
    for (const s of m.sites) expect(tf.tidy(() => tf.max(tf.abs(s.adapter.ups[0]!.weight.value)).dataSync()[0]!)).toBeGreaterThan(0);
  });

  it('router-off ablation (one branch) trains too and reports weight 1', async () => {
    const m = build({ branches: 1 });
    expect(m.sites.every((s) => s.adapter.router === undefined)).toBe(true);
    const losses = await train(m, 20, 3e-2);
    expect(mean(losses.slice(-6))).toBeLessThan(0.7 * mean(losses.slice(0, 4)));
    const r = routingWeights(m, { ids: mixedIds(), images: pixels(1) });
    for (const l of r.lm) expect(l.weights).toEqual([[1], [1]]);
  });
});

describe('generation', () => {
  it('KV-cached greedy decoding (modality token out of the cache, routing from prefill) equals full-forward argmax', () => {
    const m = build();
    randomizeUps(m);
    const prompts = [[BOS, IMG, IMG, 10, 11], [BOS, 20, 21, 22, 23]];
    const img = pixels(1);
    const out = m.generate({ ids: prompts, images: img, maxNewTokens: 5 });
    expect(out.routing.lm).toHaveLength(2);
    expect(out.routing.modality).toEqual([1, 0]);
    // reference: re-run the whole sequence each step, no cache
    const seqs = prompts.map((p) => [...p]);
    for (let s = 0; s < 5; s++) {
      const next = tf.tidy(() => {
        const logits = m.forward({ ids: tf.tensor2d(seqs, [2, seqs[0]!.length], 'int32'), images: img }).logits!;
        const T = logits.shape[1];
        return tf.argMax(tf.slice(logits, [0, T - 1, 0], [2, 1, -1]), -1).dataSync();
      });
      seqs.forEach((r, b) => r.push(next[b]!));
    }
    expect(out.tokens).toEqual(seqs.map((r) => r.slice(5)));
    // ragged prompts (left padding + key mask) give each row's own result
    const ragged = m.generate({ ids: [[BOS, 20, 21, 22, 23], [BOS, 30, 31]], maxNewTokens: 4 });
    const alone = m.generate({ ids: [[BOS, 30, 31]], maxNewTokens: 4 });
    expect(ragged.tokens[1]).toEqual(alone.tokens[0]);
    expect(ragged.tokens[0]).toEqual(out.tokens[1]!.slice(0, 4));
  });
});

describe('config and method value', () => {
  it('defaults are the paper; invalid fields are named', () => {
    const c = parseMmaConfig({});
    expect([c.rank, c.groups, c.branches, c.temperature, c.scale, c.dropout, c.placement, c.routing]).toEqual([8, 2, 2, 10, 1, 0.1, 'preAttn', 'sample']);
    expect(() => parseMmaConfig({ rank: 0 })).toThrow(/rank/);
    expect(() => parseMmaConfig({ rank: 8, groups: 3 })).toThrow(/groups/);
    expect(() => parseMmaConfig({ placement: 'postMlp' })).toThrow(/placement/);
    expect(() => build({ visualDepths: [3] })).toThrow(/visualDepths\.0/);
    expect(() => m0().forward({ ids: mixedIds() })).toThrow(AdaptorkitError);
    expect(mmaMethod.configSchema.parse({}).temperature).toBe(10);
    expect(mmaMethod.attach({ lm: tinyCausalLM(1) }, {}).countMmaParameters().total).toBe(2 * (20 * 32 + 10) + 64);
  });
});

describe('patch tokens (beyond the paper, off by default)', () => {
  it('follow the class tokens: pooled patch grid of the chosen block through the same projection', () => {
    expect(m0().numVisualTokens).toBe(m0().visualDepths.length); // default: class tokens only (LaVIN)
    const m = build({ patchTokens: { depth: 1, pool: 2 } }); // tiny encoder: 16 x 16 image, patch 4 -> 4 x 4 grid -> 2 x 2
    expect(m.numVisualTokens).toBe(m.visualDepths.length + 4);
    const img = pixels(2);
    const got = m.visualTokens(img);
    const want = tf.tidy(() => {
      const hs = tinyVisionEncoder(2).forward(img).hiddenStates; // zero-initialised vision adapters: the plain encoder
      const cls = m.visualDepths.map((k) => tf.slice(hs[k]!, [0, 0, 0], [2, 1, 32]));
      const grid = (tf.reshape(tf.slice(hs[1]!, [0, 1, 0], [2, 16, 32]), [2, 4, 4, 32]) as tf.Tensor4D).arraySync();
      // average each 2 x 2 block by hand, row-major over the pooled grid
      const pooled = [0, 1].map((b) => [0, 1].flatMap((i) => [0, 1].map((j) =>
        Array.from({ length: 32 }, (_, c) => (grid[b]![2 * i]![2 * j]![c]! + grid[b]![2 * i]![2 * j + 1]![c]! + grid[b]![2 * i + 1]![2 * j]![c]! + grid[b]![2 * i + 1]![2 * j + 1]![c]!) / 4))));
      return m.projector!.forward(tf.concat([...cls, tf.tensor3d(pooled)], 1));
    });
    expectClose(got, want, { atol: 1e-5, rtol: 1e-5 });
    tf.dispose([got, want]);
    expect(() => build({ patchTokens: { depth: 3, pool: 1 } })).toThrow(/patchTokens\.depth: block 3 is outside 1\.\.2/);
    expect(() => build({ patchTokens: { depth: 1, pool: 3 } })).toThrow(/patchTokens\.pool: 3 does not divide the 4 x 4 patch grid/);
    expect(() => parseMmaConfig({ patchTokens: { depth: 0 } })).toThrow(/patchTokens\.depth/);
  });

  it('cells: each token averages the patches whose centre lies in its cell of a 3 x 3 grid', () => {
    const m = build({ patchTokens: { depth: 2, cells: 3 } }); // 4 x 4 patches -> centres fall in cells 0, 1, 1, 2 per axis
    expect(m.numVisualTokens).toBe(m.visualDepths.length + 9);
    const img = pixels(2);
    const got = m.visualTokens(img);
    const want = tf.tidy(() => {
      const hs = tinyVisionEncoder(2).forward(img).hiddenStates;
      const cls = m.visualDepths.map((k) => tf.slice(hs[k]!, [0, 0, 0], [2, 1, 32]));
      const grid = (tf.reshape(tf.slice(hs[2]!, [0, 1, 0], [2, 16, 32]), [2, 4, 4, 32]) as tf.Tensor4D).arraySync();
      const spans = [[0], [1, 2], [3]]; // patch rows / columns of cell row / column 0, 1, 2
      const cells = [0, 1].map((b) => [0, 1, 2].flatMap((i) => [0, 1, 2].map((j) => Array.from({ length: 32 }, (_, c) => {
        let sum = 0, n = 0;
        for (const y of spans[i]!) for (const x of spans[j]!) { sum += grid[b]![y]![x]![c]!; n++; }
        return sum / n;
      }))));
      return m.projector!.forward(tf.concat([...cls, tf.tensor3d(cells)], 1));
    });
    expectClose(got, want, { atol: 1e-5, rtol: 1e-5 });
    tf.dispose([got, want]);
    m.dispose();
    expect(() => build({ patchTokens: { depth: 1, cells: 5 } })).toThrow(/patchTokens\.cells: 5 x 5 cells need at least that many patches per side \(the vision encoder has 4 x 4\)/);
    expect(() => parseMmaConfig({ patchTokens: { depth: 1, pool: 2, cells: 3 } })).toThrow(/patchTokens\.cells: set either pool or cells/);
  });

  it('perCell: each cell token becomes k consecutive tokens through its own projection; counted by the formula', () => {
    const cfg = { patchTokens: { depth: 2, cells: 3, perCell: 3 } };
    const m = build(cfg);
    const k = m.visualDepths.length;
    expect(m.numVisualTokens).toBe(k + 27);
    const img = pixels(2);
    const got = m.visualTokens(img);
    expect(got.shape).toEqual([2, k + 27, 32]);
    const want = tf.tidy(() => {
      const hs = tinyVisionEncoder(2).forward(img).hiddenStates;
      const cls = m.projector!.forward(tf.concat(m.visualDepths.map((d) => tf.slice(hs[d]!, [0, 0, 0], [2, 1, 32])), 1)) as tf.Tensor3D;
      const cells = tf.matMul(tf.tile(tf.expandDims(cellPoolMatrix(4, 3)), [2, 1, 1]), tf.slice(hs[2]!, [0, 1, 0], [2, 16, 32])); // [2, 9, 32]: batched mean per cell
      const out = m.patch_projector!.forward(cells).arraySync() as number[][][]; // [2, 9, 3 * 32]
      // cell c's three tokens are the three 32-wide slices of its output, in order
      const words = out.map((row) => row.flatMap((v) => [0, 1, 2].map((j) => v.slice(32 * j, 32 * (j + 1)))));
      return tf.concat([cls, tf.tensor3d(words)], 1);
    });
    expectClose(got, want, { atol: 1e-5, rtol: 1e-5 });
    tf.dispose([got, want]);
    expect(m.countMmaParameters().total).toBe(mmaParameterFormula({ lm: m.lm.config, vision: m.vision!.config }, cfg));
    expect(m.namedMmaParameters().some(([n]) => n.startsWith('patch_projector.'))).toBe(true);
    m.dispose();
  });
});

function m0(): MmaModel {
  return build();
}

describe('sequence layout helpers', () => {
  it("LaVIN's 'Image: <image>' / 'Image: N/A' prompt and placeholder expansion with ignored labels", () => {
    expect(lavinPrompt('What colour is the <image> circle?')).toBe('Image: <image>\nWhat colour is the circle?');
    expect(lavinPrompt('What is two plus two?')).toBe('Image: N/A\nWhat is two plus two?');
    expect(() => lavinPrompt('<image> and <image>')).toThrow(/one image/);
    const e = expandImagePlaceholder({ inputIds: [BOS, IMG, 10, 30, EOS], labels: [-100, -100, -100, 30, EOS] }, IMG, 3);
    expect([...e.inputIds]).toEqual([BOS, IMG, IMG, IMG, 10, 30, EOS]);
    expect([...e.labels]).toEqual([-100, -100, -100, -100, -100, 30, EOS]);
  });
});
