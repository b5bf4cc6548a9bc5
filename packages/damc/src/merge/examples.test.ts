/**
 * Every mergekit config in packages/damc/examples/mergekit runs through mergeToFolder on tiny
 * seeded models and matches reference arithmetic written here independently: plain loops and
 * sorts over number arrays, mergekit's definitions read off its source (ranks by sorting, masks
 * drawn in flat element order from the same seeded streams the merge documents).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '@adaptorkit/core';
import { parseMergeYaml, type MergeConfig } from './config.js';
import { mergeToFolder } from './folder.js';
import { openCheckpoint, safetensorsSink } from './io.js';
import { dareRng } from './merge.js';

const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/mergekit');
type T = { shape: number[]; data: number[] };
type SD = Map<string, T>;
const LAYERS = 4;

function makeModel(seed: number, from?: SD, scale = 0.3): SD {
  const rng = new Rng(seed);
  const sd: SD = new Map();
  const put = (name: string, shape: number[]): void => {
    const n = shape.reduce((a, b) => a * b, 1);
    const noise = Array.from(rng.normalArray(n));
    const base = from?.get(name)?.data;
    sd.set(name, { shape, data: noise.map((v, i) => Math.fround((base ? base[i]! : 0) + (base ? scale : 1) * v)) });
  };
  put('model.embed_tokens.weight', [6, 4]);
  for (let i = 0; i < LAYERS; i++) {
    put(`model.layers.${i}.input_layernorm.weight`, [4]);
    put(`model.layers.${i}.self_attn.q_proj.weight`, [4, 4]);
    put(`model.layers.${i}.self_attn.o_proj.weight`, [4, 4]);
    put(`model.layers.${i}.mlp.up_proj.weight`, [8, 4]);
  }
  put('model.norm.weight', [4]);
  put('lm_head.weight', [6, 4]);
  return sd;
}

let dir = '';
const models: Record<string, SD> = {};

async function writeModel(name: string, sd: SD): Promise<void> {
  const d = path.join(dir, 'models', name);
  await fsp.mkdir(d, { recursive: true });
  const sink = safetensorsSink(path.join(d, 'model.safetensors'));
  const names = [...sd.keys()].sort();
  await sink.begin(names.map((n) => ({ name: n, shape: sd.get(n)!.shape, dtype: 'F32' as const })));
  for (const n of names) await sink.write(n, Float32Array.from(sd.get(n)!.data));
  await sink.end();
  await fsp.writeFile(path.join(d, 'config.json'), JSON.stringify({ model_type: 'llama', num_hidden_layers: LAYERS, vocab_size: 6, hidden_size: 4, torch_dtype: 'float32', name }));
  await fsp.writeFile(path.join(d, 'tokenizer.json'), JSON.stringify({ model: { type: 'WordLevel', vocab: { [name]: 0 } } }));
  await fsp.writeFile(path.join(d, 'tokenizer_config.json'), JSON.stringify({ donor: name }));
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mergekit-examples-'));
  models.base = makeModel(1);
  models.a = makeModel(2, models.base);
  models.b = makeModel(3, models.base);
  models.c = makeModel(4, models.base);
  for (const [k, sd] of Object.entries(models)) await writeModel(k, sd);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// ------------------------------------------------------------------ reference arithmetic

const layerOf = (name: string): number | undefined => {
  const m = /\.layers\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : undefined;
};
const depth = (name: string): number => (layerOf(name) === undefined ? 0 : layerOf(name)! / (LAYERS - 1));
const lerpList = (v: number[], t: number): number => {
  const x = t * (v.length - 1);
  const i = Math.floor(x);
  return i >= v.length - 1 ? v[v.length - 1]! : v[i]! + (x - i) * (v[i + 1]! - v[i]!);
};
const sub = (x: number[], y: number[]): number[] => x.map((v, i) => v - y[i]!);
const l1 = (x: number[]): number => x.reduce((s, v) => s + Math.abs(v), 0);
function rescaleL1(orig: number[], kept: number[], on: boolean): number[] {
  const a = l1(orig);
  const b = l1(kept);
  return on && a >= 1e-7 && b >= 1e-7 ? kept.map((v) => (v * a) / b) : kept;
}
/** Ascending (|d|, index) order. */
const ascending = (d: number[]): number[] => d.map((_, i) => i).sort((i, j) => Math.abs(d[i]!) - Math.abs(d[j]!) || i - j);
function keepRanks(d: number[], lo: number, hi: number): number[] {
  const order = ascending(d);
  const out = d.map(() => 0);
  for (let r = lo; r < hi; r++) out[order[r]!] = d[order[r]!]!;
  return out;
}
const refMagnitude = (d: number[], density: number): number[] => (density >= 1 ? d : keepRanks(d, d.length - Math.floor(density * d.length), d.length));
function refOutliers(d: number[], density: number, gamma: number): number[] {
  if (density >= 1) return d;
  const n = d.length;
  let top = Math.floor(gamma * n);
  let bot = n - Math.floor(density * n) - top;
  if (bot < 0) [top, bot] = [top + bot, 0];
  return keepRanks(d, bot, n - top);
}
function refRandom(d: number[], density: number, rng: Rng, rescale: boolean): number[] {
  if (density >= 1) return d;
  return rescaleL1(d, d.map((v) => (rng.next() < density ? v : 0)), rescale);
}
function refDella(d: number[], shape: number[], density: number, eps: number, rng: Rng, rescale: boolean): number[] {
  if (density >= 1) return d;
  const rows = shape.length === 2 ? shape[0]! : 1;
  const w = d.length / rows;
  const p = d.map(() => 0);
  for (let r = 0; r < rows; r++) {
    const row = d.slice(r * w, (r + 1) * w);
    ascending(row).forEach((idx, rank) => (p[r * w + idx] = density - eps + (2 * eps * rank) / (w - 1)));
  }
  return rescaleL1(d, d.map((v, i) => (rng.next() < p[i]! ? v : 0)), rescale);
}
function refCombine(base: number[], ds: number[][], w: number[], o: { consensus: boolean; normalize: boolean; lambda?: number }): number[] {
  return base.map((b, j) => {
    const e = ds.map((d, i) => w[i]! * d[j]!);
    let num = 0;
    let den = 0;
    if (o.consensus) {
      const s = e.reduce((x, y) => x + y, 0) >= 0 ? 1 : -1;
      e.forEach((v, i) => {
        if ((v > 0 && s > 0) || (v < 0 && s < 0)) {
          num += v;
          den += w[i]!;
        }
      });
      if (den === 0) den = 1;
    } else {
      num = e.reduce((x, y) => x + y, 0);
      den = w.reduce((x, y) => x + y, 0);
      if (Math.abs(den) < 1e-8) den = 1;
    }
    return b + (o.lambda ?? 1) * (o.normalize ? num / den : num);
  });
}
function refSlerp(a: number[], b: number[], t: number): number[] {
  const na = Math.hypot(...a);
  const nb = Math.hypot(...b);
  const dot = a.reduce((s, v, i) => s + (v / na) * (b[i]! / nb), 0);
  if (Math.abs(dot) > 0.9995) return a.map((v, i) => (1 - t) * v + t * b[i]!);
  const th = Math.acos(dot);
  return a.map((v, i) => (Math.sin((1 - t) * th) / Math.sin(th)) * v + (Math.sin(t * th) / Math.sin(th)) * b[i]!);
}
function refModelStock(base: number[], ws: number[][], rows: number): number[] {
  const out = base.map(() => 0);
  const w = base.length / rows;
  for (let r = 0; r < rows; r++) {
    const part = (x: number[]): number[] => x.slice(r * w, (r + 1) * w);
    const offs = ws.map((x) => sub(part(x), part(base)));
    const cos: number[] = [];
    for (let i = 0; i < offs.length; i++) {
      for (let j = i + 1; j < offs.length; j++) {
        const dot = offs[i]!.reduce((s, v, k) => s + v * offs[j]![k]!, 0);
        cos.push(Math.max(-1, Math.min(1, dot / Math.max(1e-6, Math.hypot(...offs[i]!) * Math.hypot(...offs[j]!)))));
      }
    }
    const c = cos.reduce((x, y) => x + y, 0) / cos.length;
    const N = ws.length;
    const t = (N * c) / (1 + (N - 1) * c);
    for (let k = 0; k < w; k++) out[r * w + k] = t * (ws.reduce((s, x) => s + part(x)[k]!, 0) / N) + (1 - t) * part(base)[k]!;
  }
  return out;
}

const get = (m: string, name: string): number[] => models[m]!.get(name)!.data;
const names = (): string[] => [...models.base!.keys()];

/** Expected output tensors of each example, by reference arithmetic. */
const EXPECTED: Record<string, () => Map<string, number[]>> = {
  'linear.yaml': () => new Map(names().map((n) => [n, get('a', n).map((v, i) => (0.7 * v + 0.3 * get('b', n)[i]!) / 1.0)])),
  'task_arithmetic.yaml': () =>
    new Map(names().map((n) => {
      const wa = lerpList([1, 0.5], depth(n));
      return [n, refCombine(get('base', n), [sub(get('a', n), get('base', n)), sub(get('b', n), get('base', n))], [wa, 0.5], { consensus: false, normalize: false, lambda: 0.8 })];
    })),
  'ties.yaml': () =>
    new Map(names().map((n) => {
      const ds = ['a', 'b', 'c'].map((m, i) => refMagnitude(sub(get(m, n), get('base', n)), [0.5, 0.7, 0.3][i]!));
      return [n, refCombine(get('base', n), ds, [1, 0.6, 0.4], { consensus: true, normalize: true })];
    })),
  'dare_ties.yaml': () =>
    new Map(names().map((n) => {
      const ds = ['a', 'b'].map((m, i) => refRandom(sub(get(m, n), get('base', n)), [0.6, 0.4][i]!, dareRng(7, n, i), true));
      return [n, refCombine(get('base', n), ds, [0.5, 0.5], { consensus: true, normalize: false })];
    })),
  'dare_linear.yaml': () =>
    new Map(names().map((n) => {
      const ds = ['a', 'b'].map((m, i) => refRandom(sub(get(m, n), get('base', n)), 0.5, dareRng(3, n, i), false));
      return [n, refCombine(get('base', n), ds, [1, 1], { consensus: false, normalize: true })];
    })),
  'breadcrumbs.yaml': () =>
    new Map(names().map((n) => {
      const ds = ['a', 'b'].map((m) => refOutliers(sub(get(m, n), get('base', n)), 0.6, 0.1));
      return [n, refCombine(get('base', n), ds, [1, 0.5], { consensus: false, normalize: false })];
    })),
  'breadcrumbs_ties.yaml': () =>
    new Map(names().map((n) => {
      const ds = ['a', 'b'].map((m) => refOutliers(sub(get(m, n), get('base', n)), 0.5, 0.2));
      return [n, refCombine(get('base', n), ds, [1, 1], { consensus: true, normalize: true })];
    })),
  'della.yaml': () =>
    new Map(names().map((n) => {
      const shape = models.base!.get(n)!.shape;
      const ds = ['a', 'b'].map((m, i) => refDella(sub(get(m, n), get('base', n)), shape, [0.5, 0.6][i]!, [0.2, 0.1][i]!, dareRng(11, n, i), true));
      return [n, refCombine(get('base', n), ds, [1, 0.5], { consensus: true, normalize: true, lambda: 1.2 })];
    })),
  'della_linear.yaml': () =>
    new Map(names().map((n) => {
      const shape = models.base!.get(n)!.shape;
      const ds = ['a', 'b'].map((m, i) => refDella(sub(get(m, n), get('base', n)), shape, 0.4, 0.15, dareRng(5, n, i), true));
      return [n, refCombine(get('base', n), ds, [0.5, 0.5], { consensus: false, normalize: false })];
    })),
  'slerp-filters.yaml': () =>
    new Map(names().map((n) => {
      const t = layerOf(n) === undefined ? 0.5 : n.includes('self_attn') ? lerpList([0, 0.5, 0.3, 0.7, 1], depth(n)) : n.includes('mlp') ? lerpList([1, 0.5, 0.7, 0.3, 0], depth(n)) : 0.5;
      return [n, refSlerp(get('a', n), get('b', n), t)];
    })),
  'model_stock.yaml': () => new Map(names().map((n) => [n, refModelStock(get('base', n), ['a', 'b', 'c'].map((m) => get(m, n)), 1)])),
  'model_stock-filter_wise.yaml': () =>
    new Map(names().map((n) => {
      const shape = models.base!.get(n)!.shape;
      return [n, refModelStock(get('base', n), ['a', 'b'].map((m) => get(m, n)), shape.length === 2 ? shape[0]! : 1)];
    })),
  'passthrough-frankenmerge.yaml': () => {
    const out = new Map<string, number[]>();
    out.set('model.embed_tokens.weight', get('a', 'model.embed_tokens.weight'));
    const parts = ['input_layernorm', 'self_attn.q_proj', 'self_attn.o_proj', 'mlp.up_proj'];
    const plan: [string, number][] = [['a', 0], ['a', 1], ['a', 2], ['b', 1], ['b', 2], ['b', 3]];
    plan.forEach(([m, src], o) => {
      for (const p of parts) {
        const v = get(m, `model.layers.${src}.${p}.weight`);
        out.set(`model.layers.${o}.${p}.weight`, m === 'b' && p === 'self_attn.o_proj' ? v.map((x) => 0.5 * x) : v);
      }
    });
    out.set('model.norm.weight', get('b', 'model.norm.weight'));
    out.set('lm_head.weight', get('b', 'lm_head.weight'));
    return out;
  },
  'slices-ties.yaml': () =>
    new Map(names().map((n) => {
      const l = layerOf(n);
      const second = l !== undefined && l >= 2;
      const density = l === undefined ? 1 : second ? 1 : 0.5; // embed: first slice (0.5); norm/head: last slice (1)
      const d = n.includes('embed') ? 0.5 : density;
      const w = second || (l === undefined && !n.includes('embed')) ? [0.25, 0.75] : [1, 1];
      const ds = ['a', 'b'].map((m) => refMagnitude(sub(get(m, n), get('base', n)), d));
      return [n, refCombine(get('base', n), ds, w, { consensus: true, normalize: true })];
    })),
  'filters-out_dtype-tokenizer.yaml': () =>
    new Map(names().map((n) => {
      const wa = n.includes('q_proj') ? lerpList([0, 1], depth(n)) : n.includes('layernorm') ? 0 : 0.5;
      return [n, refCombine(get('base', n), [sub(get('a', n), get('base', n)), sub(get('b', n), get('base', n))], [wa, 0.5], { consensus: false, normalize: false })];
    })),
};

/** The config with its model references resolved against the test's folder (mergekit reads them from the working directory). */
function resolved(cfg: MergeConfig): MergeConfig {
  const r = (m: string): string => path.join(dir, m);
  return {
    ...cfg,
    ...(cfg.base_model ? { base_model: r(cfg.base_model) } : {}),
    ...(cfg.tokenizer_source && cfg.tokenizer_source !== 'base' ? { tokenizer_source: r(cfg.tokenizer_source) } : {}),
    ...(cfg.models ? { models: cfg.models.map((m) => ({ ...m, model: r(m.model) })) } : {}),
    ...(cfg.slices ? { slices: cfg.slices.map((s) => ({ ...s, ...(s.base_model ? { base_model: r(s.base_model) } : {}), sources: s.sources.map((x) => ({ ...x, model: r(x.model) })) })) } : {}),
  };
}

describe('mergekit examples match reference arithmetic', () => {
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml')).sort();
  it('every example has a reference here, and every reference an example', () => {
    expect(files).toEqual(Object.keys(EXPECTED).sort());
  });
  for (const file of files) {
    it(file, async () => {
      const text = readFileSync(path.join(EXAMPLES, file), 'utf8');
      const cfg = resolved(parseMergeYaml(text));
      const out = path.join(dir, 'out', file.replace('.yaml', ''));
      const rep = await mergeToFolder(cfg, out, { configText: text });
      const want = EXPECTED[file]!();
      const src = await openCheckpoint(out);
      try {
        expect(src.names().sort()).toEqual([...want.keys()].sort());
        const bf16 = cfg.out_dtype === 'bfloat16';
        for (const [name, exp] of want) {
          const got = await src.read(name);
          expect(got.length).toBe(exp.length);
          for (let i = 0; i < exp.length; i++) {
            const tol = bf16 ? 0.008 * Math.abs(exp[i]!) + 1e-6 : 2e-6 * Math.max(1, Math.abs(exp[i]!));
            expect(Math.abs(got[i]! - exp[i]!), `${file} ${name}[${i}]: ${got[i]} vs ${exp[i]}`).toBeLessThanOrEqual(tol);
          }
        }
      } finally {
        await src.close();
      }
      const conf = JSON.parse(await fsp.readFile(path.join(out, 'config.json'), 'utf8'));
      expect(conf.torch_dtype).toBe(cfg.out_dtype ?? cfg.dtype);
      expect(conf.num_hidden_layers).toBe(rep.numLayers);
      const tokDonor = cfg.tokenizer_source ?? cfg.base_model ?? cfg.models?.[0]?.model ?? cfg.slices![0]!.sources[0]!.model;
      expect(await fsp.readFile(path.join(out, 'tokenizer_config.json'), 'utf8')).toBe(await fsp.readFile(path.join(tokDonor, 'tokenizer_config.json'), 'utf8'));
      expect(await fsp.readFile(path.join(out, 'mergekit_config.yml'), 'utf8')).toBe(text);
    });
  }
});

describe('mergekit output folders', () => {
  it('ties with int8_mask gives the same tensors as without (masks are never materialised)', async () => {
    const text = readFileSync(path.join(EXAMPLES, 'ties.yaml'), 'utf8');
    const a = resolved(parseMergeYaml(text));
    const b = { ...a, parameters: { ...a.parameters, int8_mask: false } };
    await mergeToFolder(a, path.join(dir, 'int8-on'));
    await mergeToFolder(b, path.join(dir, 'int8-off'));
    expect(readFileSync(path.join(dir, 'int8-on', 'model.safetensors')).equals(readFileSync(path.join(dir, 'int8-off', 'model.safetensors')))).toBe(true);
  });

  it('shards above the shard size with an index that loads back, and refuses a non-empty output', async () => {
    const cfg = resolved(parseMergeYaml(readFileSync(path.join(EXAMPLES, 'passthrough-frankenmerge.yaml'), 'utf8')));
    const out = path.join(dir, 'sharded');
    const rep = await mergeToFolder(cfg, out, { outShardSize: 100 });
    const idx = JSON.parse(await fsp.readFile(path.join(out, 'model.safetensors.index.json'), 'utf8'));
    const shards = [...new Set(Object.values(idx.weight_map as Record<string, string>))];
    expect(shards.length).toBeGreaterThan(3);
    expect(shards[0]).toMatch(/^model-00001-of-000\d\d\.safetensors$/);
    expect(rep.files).toContain('model.safetensors.index.json');
    const whole = await openCheckpoint(out);
    expect(whole.names().length).toBe(Object.keys(idx.weight_map).length);
    let bytes = 0;
    for (const n of whole.names()) bytes += whole.meta(n).shape.reduce((x, y) => x * y, 1) * 4;
    expect(idx.metadata.total_size).toBe(bytes);
    await whole.close();
    const conf = JSON.parse(await fsp.readFile(path.join(out, 'config.json'), 'utf8'));
    expect(conf.num_hidden_layers).toBe(6);
    await expect(mergeToFolder(cfg, out)).rejects.toThrow(/exists and is not empty/);
  });

  it('a failed merge leaves no output folder; refusals are named', async () => {
    const cfg = resolved(parseMergeYaml('merge_method: slerp\nbase_model: models/a\nslices: [{sources: [{model: models/a, layer_range: [0, 4]}, {model: models/b, layer_range: [1, 5]}]}]'));
    await expect(mergeToFolder(cfg, path.join(dir, 'bad'))).rejects.toThrow(/slices.0.sources.1.layer_range: \[1, 5\] goes past .*4 layers/);
    expect(readdirSync(dir).filter((f) => f.startsWith('bad') || f.startsWith('.bad'))).toEqual([]);
    expect(() => parseMergeYaml('merge_method: passthrough\nslices: [{sources: [{model: a, layer_range: [0, 2]}, {model: b, layer_range: [0, 2]}]}]')).toThrow(/passthrough takes one source per slice/);
    expect(() => parseMergeYaml('merge_method: ties\nbase_model: a\nslices: [{sources: [{model: a, layer_range: [0, 2]}, {model: b, layer_range: [0, 3]}]}]')).toThrow(/same number of layers/);
    const noBase = resolved(parseMergeYaml('merge_method: ties\nbase_model: models/base\nslices: [{sources: [{model: models/a, layer_range: [0, 4]}, {model: models/b, layer_range: [0, 4]}]}]'));
    await expect(mergeToFolder(noBase, path.join(dir, 'nobase'))).rejects.toThrow(/base model .* must be one of the slice's sources/);
    expect(() => parseMergeYaml('merge_method: della\nbase_model: a\nmodels: [{model: b, parameters: {density: 1.5}}]')).toThrow(/models.0.parameters.density: density must be in \(0, 1\]/);
    expect(() => parseMergeYaml('merge_method: linear\nmodels: [{model: a, parameters: {weight: [{filter: q_proj, valu: 1}]}}]')).toThrow(/models.0.parameters.weight/);
  });
});
