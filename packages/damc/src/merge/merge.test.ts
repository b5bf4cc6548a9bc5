import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '@adaptorkit/core';
import { countLayers, interpolate, layerIndex, parseMergeConfig, parseMergeYaml, sliceDepth, withLayerIndex } from './config.js';
import { memorySink, memorySource, openCheckpoint, safetensorsSink, type MemoryTensor } from './io.js';
import { mergeFromYaml, mergeSources, mergeStateDicts } from './merge.js';
import {
  kthLargest, kthLargestMagnitude, mergeDareLinear, mergeDareTies, mergeLinear, mergeSlerp, mergeTaskArithmetic, mergeTies, slerpIsLinear, trimToDensity,
} from './methods.js';

const f = (xs: number[]): Float32Array => Float32Array.from(xs);
const m = (xs: number[], weight = 1, density = 1) => ({ data: f(xs), weight, density });
const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-6): void => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!), `element ${i}: ${a[i]} vs ${b[i]}`).toBeLessThanOrEqual(tol);
};

describe('merge methods on hand-computed cases', () => {
  it('linear: weighted mean, or weighted sum without normalize', () => {
    close(mergeLinear([m([1, 2], 1), m([3, 6], 3)]), [(1 + 9) / 4, (2 + 18) / 4]);
    close(mergeLinear([m([1, 2], 1), m([3, 6], 3)], { normalize: false }), [10, 20]);
  });

  it('task_arithmetic: base + lambda * sum w_i d_i', () => {
    // d1 = [1, -1], d2 = [2, 2]; 0.5*d1 + 0.25*d2 = [1, 0]; lambda 2 -> [2, 0]
    close(mergeTaskArithmetic(f([1, 1]), [m([2, 0], 0.5), m([3, 3], 0.25)], { lambda: 2 }), [3, 1]);
  });

  it('ties: trims by magnitude, elects the sign of the weighted sum, averages the agreeing deltas', () => {
    const base = f([0, 0, 0, 0]);
    // d1 = [3, -1, 2, 0.1] density 0.5 -> keeps 3 and 2: [3, 0, 2, 0]
    // d2 = [-1, -4, -1, 5]  density 0.5 -> keeps -4 and 5: [0, -4, 0, 5]
    // sums: [3, -4, 2, 5] -> signs + - + +; agreeing means: [3, -4, 2, 5]
    close(mergeTies(base, [m([3, -1, 2, 0.1], 1, 0.5), m([-1, -4, -1, 5], 1, 0.5)]), [3, -4, 2, 5]);
    // density 1: d1 = [2, -1], d2 = [-1, -3]; sums [1, -4] -> [+, -]; elem0: only d1 agrees -> 2; elem1: both -> -2
    close(mergeTies(f([0, 0]), [m([2, -1]), m([-1, -3])]), [2, -2]);
    // weights in the disjoint mean: elem0 d = [4, 2] w = [1, 3] -> (4 + 6) / 4
    close(mergeTies(f([1]), [m([5], 1), m([3], 3)]), [1 + 10 / 4]);
  });

  it('ties: a sign election tie (weighted sum exactly 0) elects +, so only positive deltas count', () => {
    // d1 = +2, d2 = -2, equal weights: sum 0 -> '+', result = base + 2
    close(mergeTies(f([1]), [m([3]), m([-1])]), [3]);
    // weighted tie: 2 * (+1) + 1 * (-2) = 0 -> '+': only d1 (w 2) -> +1
    close(mergeTies(f([0]), [m([1], 2), m([-2], 1)]), [1]);
    // a zero delta agrees with neither sign and is left out of the mean
    close(mergeTies(f([0, 0]), [m([0, 4]), m([2, 0])]), [2, 4]);
  });

  it('ties trim keeps round(density * n) largest magnitudes', () => {
    close(trimToDensity(f([1, -5, 3, -2, 4]), 0.4), [0, -5, 0, 0, 4]);
    expect(kthLargest(f([5, 1, 4, 2, 3]), 2)).toBe(4);
    const rng = new Rng(3);
    const big = rng.normalArray(1001);
    const sorted = Float32Array.from(big).sort();
    expect(kthLargest(big, 17)).toBe(sorted[1001 - 17]);
    // the scratch-free radix select agrees with quickselect over |d|, ties and zeros included
    const mixed = Float32Array.from([...big, 0, -0, 2.5, -2.5, 2.5, 1e-30, -1e-30]);
    const mags = mixed.map(Math.abs);
    for (const k of [1, 2, 3, 17, 500, 1001, mixed.length]) expect(kthLargestMagnitude(mixed, k)).toBe(kthLargest(mags, k));
  });

  it('dare with density 1 equals task arithmetic; dare_ties with density 1 equals ties', () => {
    const rng = new Rng(1);
    const base = rng.normalArray(50);
    const a = rng.normalArray(50);
    const b = rng.normalArray(50);
    const ms = [{ data: a, weight: 0.7, density: 1 }, { data: b, weight: 0.3, density: 1 }];
    close(mergeDareLinear(base, ms, [new Rng(0), new Rng(1)], { lambda: 1.5 }), mergeTaskArithmetic(base, ms, { lambda: 1.5 }), 1e-6);
    close(mergeDareTies(base, ms, [new Rng(0), new Rng(1)], { normalize: true }), mergeTies(base, ms), 1e-6);
  });

  it('dare drops and rescales by a seeded mask: reproducible, mean preserved', () => {
    const base = new Float32Array(20000);
    const d = new Float32Array(20000).fill(1);
    const r1 = mergeDareLinear(base, [{ data: d, weight: 1, density: 0.25 }], [new Rng(7)]);
    const r2 = mergeDareLinear(base, [{ data: d, weight: 1, density: 0.25 }], [new Rng(7)]);
    expect(Buffer.from(r1.buffer).equals(Buffer.from(r2.buffer))).toBe(true);
    const kept = r1.filter((v) => v !== 0);
    // rescale (dare's default) keeps the L1 norm: every kept entry becomes n / kept
    expect(new Set(kept)).toEqual(new Set([Math.fround(20000 / kept.length)]));
    expect(Math.abs(kept.length / 20000 - 0.25)).toBeLessThan(0.02);
    const r3 = mergeDareLinear(base, [{ data: d, weight: 1, density: 0.25 }], [new Rng(8)]);
    expect(Buffer.from(r1.buffer).equals(Buffer.from(r3.buffer))).toBe(false);
  });

  it('slerp: spherical on orthogonal vectors, linear fallback when nearly parallel', () => {
    // orthogonal unit vectors, t = 0.5 -> (e1 + e2) / sqrt(2)
    close(mergeSlerp(f([1, 0]), f([0, 1]), 0.5), [Math.SQRT1_2, Math.SQRT1_2]);
    // different norms: weights sin((1-t)th)/sin th apply to the originals
    const th = Math.PI / 2;
    close(mergeSlerp(f([2, 0]), f([0, 4]), 0.25), [2 * Math.sin(0.75 * th), 4 * Math.sin(0.25 * th)], 1e-6);
    // parallel (cos = 1): plain lerp
    const a = f([1, 2, 3]);
    const b = f([2, 4, 6]);
    expect(slerpIsLinear(a, b)).toBe(true);
    close(mergeSlerp(a, b, 0.3), [1.3, 2.6, 3.9], 1e-6);
    // cos slightly above the threshold still lerps, below does not
    const c = f([1, 0.02]);
    expect(slerpIsLinear(f([1, 0]), c)).toBe(true);
    close(mergeSlerp(f([1, 0]), c, 0.5), [1, 0.01], 1e-7);
    expect(slerpIsLinear(f([1, 0]), f([1, 0.1]))).toBe(false);
    // ends
    close(mergeSlerp(f([1, 0]), f([0, 1]), 0), [1, 0]);
    close(mergeSlerp(f([1, 0]), f([0, 1]), 1), [0, 1], 1e-7);
  });
});

// ------------------------------------------------------------------ whole state dicts

function stateDict(seed: number, layers = 3): Map<string, MemoryTensor> {
  const rng = new Rng(seed);
  const sd = new Map<string, MemoryTensor>();
  sd.set('model.embed_tokens.weight', { shape: [8, 4], data: rng.normalArray(32) });
  for (let i = 0; i < layers; i++) sd.set(`model.layers.${i}.self_attn.q_proj.weight`, { shape: [4, 4], data: rng.normalArray(16) });
  sd.set('lm_head.weight', { shape: [8, 4], data: rng.normalArray(32) });
  return sd;
}

describe('merging state dicts', () => {
  const methods = [
    'merge_method: linear',
    'merge_method: task_arithmetic\nbase_model: m0',
    'merge_method: ties\nbase_model: m0\nparameters: {density: 0.5}',
    'merge_method: dare_linear\nbase_model: m0\nparameters: {density: 0.5}',
    'merge_method: dare_ties\nbase_model: m0\nparameters: {density: 0.3}',
  ];
  for (const head of methods) {
    it(`N identical models merge to the model (${head.split('\n')[0]})`, async () => {
      const sd = stateDict(1);
      const cfg = parseMergeYaml(`${head}\nmodels:\n  - model: m1\n    parameters: {weight: 0.3}\n  - model: m2\n    parameters: {weight: 0.7}\n  - model: m3\n`);
      const out = await mergeStateDicts(cfg, new Map([['m0', sd], ['m1', sd], ['m2', sd], ['m3', sd]]));
      expect([...out.keys()].sort()).toEqual([...sd.keys()].sort());
      for (const [name, t] of sd) close(out.get(name)!.data, t.data, 1e-6);
    });
  }
  it('N identical models merge to the model (slerp)', async () => {
    const sd = stateDict(1);
    const out = await mergeStateDicts(parseMergeYaml('merge_method: slerp\nbase_model: a\nmodels: [{model: a}, {model: b}]\nparameters: {t: 0.4}'), new Map([['a', sd], ['b', sd]]));
    for (const [name, t] of sd) close(out.get(name)!.data, t.data, 1e-6);
  });

  it('a parameter list is interpolated across layer depth', async () => {
    expect(interpolate([0, 1], 0.25)).toBeCloseTo(0.25);
    expect(interpolate([0, 1, 0], 0.75)).toBeCloseTo(0.5);
    expect(countLayers(stateDict(0).keys())).toBe(3);
    expect(layerIndex('model.layers.1.self_attn.q_proj.weight')).toBe(1);
    expect(layerIndex('lm_head.weight')).toBeUndefined();
    expect(withLayerIndex('model.layers.1.self_attn.q_proj.weight', 12)).toBe('model.layers.12.self_attn.q_proj.weight');
    expect(sliceDepth(1, 3)).toBe(0.5);
    expect(sliceDepth(0, 1)).toBe(1); // mergekit: a one-layer slice reads t = 1
    // task arithmetic with a weight gradient [0, 1]: layer i gets base + (i/2) * d
    const base = stateDict(1);
    const other = stateDict(2);
    const out = await mergeStateDicts(parseMergeYaml('merge_method: task_arithmetic\nbase_model: b\nmodels: [{model: o, parameters: {weight: [0, 1]}}]'), new Map([['b', base], ['o', other]]));
    for (let i = 0; i < 3; i++) {
      const n = `model.layers.${i}.self_attn.q_proj.weight`;
      const want = base.get(n)!.data.map((v, j) => v + (i / 2) * ((other.get(n)!.data[j] as number) - v));
      close(out.get(n)!.data, want, 1e-6);
    }
    close(out.get('model.embed_tokens.weight')!.data, base.get('model.embed_tokens.weight')!.data);
    // outside numbered layers mergekit reads t = 0: weight 0, so the base's
    close(out.get('lm_head.weight')!.data, base.get('lm_head.weight')!.data, 1e-6);
  });

  it('mismatched shapes, missing tensors and missing base are clear errors; unique tensors pass through when asked', async () => {
    const a = stateDict(1);
    const b = stateDict(2);
    b.set('model.layers.0.self_attn.q_proj.weight', { shape: [2, 8], data: new Float32Array(16) });
    await expect(mergeStateDicts(parseMergeYaml('merge_method: linear\nmodels: [{model: a}, {model: b}]'), new Map([['a', a], ['b', b]]))).rejects.toThrow(
      /model.layers.0.self_attn.q_proj.weight.*\[4, 4\].*\[2, 8\]/,
    );
    const c = stateDict(3);
    c.set('mm_projector.0.weight', { shape: [2, 2], data: f([1, 2, 3, 4]) });
    const d = stateDict(4);
    await expect(mergeStateDicts(parseMergeYaml('merge_method: linear\nmodels: [{model: c}, {model: d}]'), new Map([['c', c], ['d', d]]))).rejects.toThrow(
      /mm_projector.0.weight' is missing from d.*passthrough_unique/,
    );
    const out = await mergeStateDicts(parseMergeYaml('merge_method: linear\npassthrough_unique: true\nmodels: [{model: c}, {model: d}]'), new Map([['c', c], ['d', d]]));
    close(out.get('mm_projector.0.weight')!.data, [1, 2, 3, 4]);
    expect(() => parseMergeYaml('merge_method: ties\nmodels: [{model: a}, {model: b}]')).toThrow(/base_model: ties needs a base_model/);
    expect(() => parseMergeYaml('merge_method: slerp\nbase_model: a\nmodels: [{model: b}, {model: c}]')).toThrow(/models: slerp merges exactly two models/);
  });

  it('YAML config errors name the path of the bad field', () => {
    expect(() => parseMergeYaml('merge_method: tie\nmodels: [{model: a}]')).toThrow(/merge_method: unknown merge method 'tie'/);
    expect(() => parseMergeYaml('merge_method: nuslerp\nmodels: [{model: a}]')).toThrow(/merge_method: 'nuslerp' is a mergekit method adaptorkit refuses/);
    expect(() => parseMergeYaml('merge_method: linear\ntokenizer_source: union\nmodels: [{model: a}]')).toThrow(/tokenizer_source: 'union'/);
    expect(() => parseMergeYaml('merge_method: linear\nmodules: {}\nmodels: [{model: a}]')).toThrow(/modules: multi-module/);
    expect(() => parseMergeYaml('merge_method: linear\nmodels: [{model: a}]\nslices: [{sources: [{model: a, layer_range: [0, 1]}]}]')).toThrow(/exactly one of models or slices/);
    expect(() => parseMergeYaml('merge_method: ties\nbase_model: b\nmodels: [{model: a, parameters: {weight: "x"}}]')).toThrow(/models\.0\.parameters\.weight:/);
    expect(() => parseMergeYaml('merge_method: ties\nbase_model: b\nmodels: [{model: a}, {model: c, parameters: {density: [0.5, 1.5]}}]')).toThrow(
      /models\.1\.parameters\.density: density must be in \(0, 1\]/,
    );
    expect(() => parseMergeYaml('merge_method: linear\nmodels: [{model: a, parameters: {wieght: 1}}]')).toThrow(/models\.0\.parameters/);
    expect(() => parseMergeYaml('merge_method: linear\nmodels: []')).toThrow(/models: list at least one model/);
    expect(() => parseMergeYaml('merge_method: linear\nmodels: [{model: a}]\ndtype: int8')).toThrow(/dtype:/);
    expect(() => parseMergeYaml('merge_method: [linear')).toThrow(/not valid YAML/);
    expect(parseMergeConfig({ merge_method: 'linear', models: [{ model: 'a' }] }).dtype).toBe('float32');
  });
});

describe('safetensors streaming', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'damc-merge-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function writeModel(file: string, sd: Map<string, MemoryTensor>): Promise<void> {
    const sink = safetensorsSink(file);
    const names = [...sd.keys()].sort();
    await sink.begin(names.map((n) => ({ name: n, shape: sd.get(n)!.shape, dtype: 'BF16' as const })));
    for (const n of names) await sink.write(n, sd.get(n)!.data);
    await sink.end();
  }

  it('merges files tensor by tensor from YAML, bf16 in and out', async () => {
    const a = stateDict(1);
    const b = stateDict(2);
    await writeModel(path.join(dir, 'a.safetensors'), a);
    await writeModel(path.join(dir, 'b.safetensors'), b);
    const yaml = `merge_method: linear\nmodels:\n  - model: ${dir}/a.safetensors\n  - model: ${dir}/b.safetensors\ndtype: float32\n`;
    const out = path.join(dir, 'out', 'model.safetensors');
    const rep = await mergeFromYaml(yaml, out);
    expect(rep.tensors).toBe(5);
    const src = await openCheckpoint(path.join(dir, 'out'));
    const ra = await openCheckpoint(path.join(dir, 'a.safetensors'));
    const rb = await openCheckpoint(path.join(dir, 'b.safetensors'));
    for (const n of a.keys()) {
      const got = await src.read(n);
      const x = await ra.read(n);
      const y = await rb.read(n);
      close(got, x.map((v, j) => (v + (y[j] as number)) / 2), 1e-6);
      // bf16 round trip of the inputs within bf16 precision
      close(x, a.get(n)!.data, 0.02 * 4);
    }
    await Promise.all([src.close(), ra.close(), rb.close()]);
  });

  it('reads one tensor at a time (the source is never asked for more before the sink takes it)', async () => {
    const sds = [stateDict(1), stateDict(2)];
    let inFlight = 0;
    let peak = 0;
    const sources = new Map(
      sds.map((sd, i) => {
        const s = memorySource(`m${i}`, sd);
        return [`m${i}`, { ...s, read: async (n: string) => { inFlight++; peak = Math.max(peak, inFlight); return s.read(n); } }];
      }),
    );
    const sink = memorySink();
    const write = sink.write;
    sink.write = async (n, d) => { inFlight = 0; return write(n, d); };
    await mergeSources(parseMergeYaml('merge_method: linear\nmodels: [{model: m0}, {model: m1}]'), sources, sink);
    expect(peak).toBe(2);
    expect(sink.entries.map((e) => e.name)).toEqual([...sds[0]!.keys()].sort());
  });

  it('a bad model file is refused with its name', async () => {
    writeFileSync(path.join(dir, 'bad.safetensors'), Buffer.from([1, 2, 3]));
    await expect(openCheckpoint(path.join(dir, 'bad.safetensors'))).rejects.toThrow(/bad.safetensors.*shorter/);
  });
});
