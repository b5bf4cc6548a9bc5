import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdaptorkitError, Linear, generate, initBackend, tf } from '../index.js';
import { LoraLinear, loraLinears } from '../nn/lora.js';
import { expectBitIdentical, expectClose, snapshotParameters } from '../testing/index.js';
import { loadCausalLM } from './hf.js';
import { mergeAdaptersToFolder, mergedEntries } from './merge-adapter.js';
import { PEFT_CONFIG, PEFT_WEIGHTS, parsePeftConfig } from './peft-config.js';
import { loadPeftAdapter, savePeftAdapter, writePeftAdapter } from './peft.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures');
const PEFT = path.join(FIXTURES, 'peft');

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

async function expected(name: string): Promise<Map<string, tf.Tensor>> {
  return (await readSafetensors(path.join(PEFT, name, 'expected.safetensors'))).tensors;
}

const BASE: Record<string, string> = { basic: 'llama-f32', 'rslora-regex': 'llama-f32', 'saved-head': 'llama-f32', 'qwen2-bias': 'qwen2-f16-tied', second: 'llama-f32' };

function tmp(): string {
  return mkdtempSync(path.join(tmpdir(), 'akit-peft-'));
}

/** A copy of a fixture adapter with its config edited (and optionally its tensors). */
function variant(name: string, edit: (c: Record<string, unknown>) => void): string {
  const dir = tmp();
  cpSync(path.join(PEFT, name), dir, { recursive: true });
  const f = path.join(dir, PEFT_CONFIG);
  const c = JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;
  edit(c);
  writeFileSync(f, JSON.stringify(c));
  return dir;
}

describe('PEFT LoRA import against an independent script (fixtures/make_peft_fixtures.py)', () => {
  for (const name of ['basic', 'rslora-regex', 'saved-head', 'qwen2-bias']) {
    it(`${name}: logits, greedy tokens and merged weights equal the float64 reference; the base stays bit-identical`, async () => {
      const lm = await loadCausalLM(path.join(FIXTURES, BASE[name]!));
      const before = snapshotParameters(lm.namedParameters());
      const exp = await expected(name);
      const r = await loadPeftAdapter(lm, path.join(PEFT, name));
      expect(r.modules.length).toBeGreaterThan(0);
      const logits = lm.logits(exp.get('ids')!);
      expectClose(logits, exp.get('logits')!, { atol: 2e-4, rtol: 1e-4 });
      const gen = generate(lm, Array.from(exp.get('prompt')!.dataSync()), { maxNewTokens: 6 });
      expect(gen.tokens[0]).toEqual(Array.from(exp.get('greedy')!.dataSync()));
      // merged weights, in checkpoint layout [out, in]
      const entries = new Map(mergedEntries(lm).map((e) => [e.name, e]));
      let checked = 0;
      for (const [k, want] of exp) {
        if (!k.startsWith('merged.')) continue;
        const got = entries.get(k.slice('merged.'.length))!.get();
        expectClose(got, want, { atol: 1e-5, rtol: 1e-5 });
        got.dispose();
        checked++;
      }
      expect(checked).toBe(r.modules.length + (name === 'saved-head' ? 1 : 0));
      for (const [n, p] of lm.namedParameters()) if (before.has(n.replace('.base_layer.', '.'))) expectBitIdentical(p.value, before.get(n.replace('.base_layer.', '.'))!, n);
      tf.dispose([logits, ...exp.values()]);
      lm.dispose();
    });
  }

  it('merge into an HF folder: sharded with an index, torch_dtype written, loadCausalLM gives the reference logits', async () => {
    const lm = await loadCausalLM(path.join(FIXTURES, 'llama-f32'));
    await loadPeftAdapter(lm, path.join(PEFT, 'saved-head'));
    const out = path.join(tmp(), 'merged');
    const rep = await mergeAdaptersToFolder(lm, out, { maxShardBytes: 30_000 });
    expect(rep.shards).toBeGreaterThan(1);
    const index = JSON.parse(readFileSync(path.join(out, 'model.safetensors.index.json'), 'utf8'));
    expect(Object.keys(index.weight_map)).toContain('model.layers.0.mlp.gate_proj.weight');
    expect(Object.keys(index.weight_map).some((k: string) => /lora|base_layer|modules_to_save/.test(k))).toBe(false);
    expect(JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')).torch_dtype).toBe('float32');
    const merged = await loadCausalLM(out); // strict: exactly the base's tensor names
    const exp = await expected('saved-head');
    const logits = merged.logits(exp.get('ids')!);
    expectClose(logits, exp.get('logits')!, { atol: 2e-4, rtol: 1e-4 });
    // bfloat16 output: config says so, and the logits stay near
    const out16 = path.join(tmp(), 'merged16');
    await mergeAdaptersToFolder(lm, out16, { dtype: 'bfloat16' });
    expect(JSON.parse(readFileSync(path.join(out16, 'config.json'), 'utf8')).torch_dtype).toBe('bfloat16');
    expect(existsSync(path.join(out16, 'model.safetensors'))).toBe(true);
    const m16 = await loadCausalLM(out16);
    const l16 = m16.logits(exp.get('ids')!);
    expectClose(l16, exp.get('logits')!, { atol: 0.15, rtol: 0.05 });
    await expect(mergeAdaptersToFolder(lm, out)).rejects.toThrow(/already exists/);
    tf.dispose([logits, l16, ...exp.values()]);
    for (const m of [lm, merged, m16]) m.dispose();
  });

  it('export: a loaded adapter saved again parses back field by field, with the same tensors, and loads to the same logits', async () => {
    for (const name of ['rslora-regex', 'saved-head', 'qwen2-bias']) {
      const lm = await loadCausalLM(path.join(FIXTURES, BASE[name]!));
      await loadPeftAdapter(lm, path.join(PEFT, name));
      const out = tmp();
      await savePeftAdapter(out, lm, 'default');
      const orig = parsePeftConfig(JSON.parse(readFileSync(path.join(PEFT, name, PEFT_CONFIG), 'utf8')));
      const back = parsePeftConfig(JSON.parse(readFileSync(path.join(out, PEFT_CONFIG), 'utf8')));
      for (const k of ['peft_type', 'task_type', 'r', 'lora_alpha', 'target_modules', 'use_rslora', 'bias', 'modules_to_save', 'base_model_name_or_path'] as const) expect(back[k], `${name}: ${k}`).toEqual(orig[k]);
      const a = (await readSafetensors(path.join(PEFT, name, PEFT_WEIGHTS))).tensors;
      const b = (await readSafetensors(path.join(out, PEFT_WEIGHTS))).tensors;
      expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
      for (const [k, t] of a) expectBitIdentical(t, b.get(k)!, k);
      const fresh = await loadCausalLM(path.join(FIXTURES, BASE[name]!));
      await loadPeftAdapter(fresh, out);
      const ids = tf.tensor2d([[1, 2, 3, 4, 5]], [1, 5], 'int32');
      const y1 = lm.logits(ids);
      const y2 = fresh.logits(ids);
      expectBitIdentical(y1, y2);
      tf.dispose([ids, y1, y2, ...a.values(), ...b.values()]);
      lm.dispose();
      fresh.dispose();
    }
  });
});

describe('PEFT import refuses what it cannot apply exactly, by name', () => {
  const refused: [string, (c: Record<string, unknown>) => void, RegExp][] = [
    ['DoRA', (c) => (c.use_dora = true), /use_dora = true is not supported \(DoRA/],
    ['another peft_type', (c) => (c.peft_type = 'IA3'), /peft_type "IA3" is not supported/],
    ['bias all', (c) => (c.bias = 'all'), /bias "all"/],
    ['layers_to_transform', (c) => (c.layers_to_transform = [0]), /layers_to_transform = \[0\] is not supported/],
    ['another task', (c) => (c.task_type = 'SEQ_CLS'), /task_type "SEQ_CLS"/],
    ['lora_bias', (c) => (c.lora_bias = true), /lora_bias = true/],
    ['a target that matches nothing', (c) => (c.target_modules = ['nothing_here']), /matches no Linear module/],
    ['a target matching more modules than the file has', (c) => (c.target_modules = ['q_proj', 'v_proj', 'k_proj']), /no tensor 'base_model\.model\.model\.layers\.0\.self_attn\.k_proj\.lora_A\.weight'/],
    ['a target matching fewer modules than the file has', (c) => (c.target_modules = ['q_proj']), /v_proj\.lora_A\.weight.*match no targeted module/],
    ['a rank that disagrees with the tensors', (c) => (c.r = 3), /is \[4, 32\], the base model needs \[3, 32\]/],
    ['LoRA on an embedding', (c) => (c.target_modules = ['q_proj', 'v_proj', 'embed_tokens']), /matches 'model\.embed_tokens', an Embedding; adaptorkit puts LoRA on Linear maps only/],
    ['LoRA on a whole block', (c) => (c.target_modules = 'model\\.layers\\.0(\\.self_attn\\.(q|v)_proj)?'), /matches 'model\.layers\.0', a DecoderLayer/],
    ['LoRA on the LM head (held in a field by CausalLM)', (c) => (c.target_modules = ['q_proj', 'v_proj', 'lm_head']), /'lm_head' is read directly by its parent CausalLM/],
  ];
  for (const [what, edit, msg] of refused) {
    it(what, async () => {
      const lm = await loadCausalLM(path.join(FIXTURES, 'llama-f32'));
      const before = lm.namedParameters().length;
      const err = await loadPeftAdapter(lm, variant('basic', edit)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AdaptorkitError);
      expect((err as Error).message).toMatch(msg);
      expect(lm.namedParameters().length).toBe(before); // nothing was added
      expect(loraLinears(lm)).toHaveLength(0);
      lm.dispose();
    });
  }

  it('a pickle-only adapter folder, and an adaptorkit adapter in the old layout', async () => {
    const dir = variant('basic', () => undefined);
    rmSync(path.join(dir, PEFT_WEIGHTS));
    writeFileSync(path.join(dir, 'adapter_model.bin'), 'x');
    const lm = await loadCausalLM(path.join(FIXTURES, 'llama-f32'));
    await expect(loadPeftAdapter(lm, dir)).rejects.toThrow(/adapter_model\.bin.*safe_serialization/);
    const old = variant('basic', (c) => {
      for (const k of Object.keys(c)) delete c[k];
      Object.assign(c, { format: 'adaptorkit-adapter', version: 1, method: 'iaa' });
    });
    await expect(loadPeftAdapter(lm, old)).rejects.toThrow(/adaptorkit adapter \(method 'iaa'\)/);
    lm.dispose();
  });

  it('a tensor stored under an extra name is refused (strict)', async () => {
    const dir = variant('basic', () => undefined);
    const { tensors } = await readSafetensors(path.join(dir, PEFT_WEIGHTS));
    tensors.set('base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight', tf.zeros([4, 32]));
    await writeSafetensors(path.join(dir, PEFT_WEIGHTS), tensors);
    const lm = await loadCausalLM(path.join(FIXTURES, 'llama-f32'));
    await expect(loadPeftAdapter(lm, dir)).rejects.toThrow(/lora_A\.default\.weight.*match no targeted module/);
    tf.dispose([...tensors.values()]);
    expect(lm.namedParameters().some(([n]) => n.includes('lora'))).toBe(false);
    expect(lm.model.layers.at(0).self_attn.q_proj).not.toBeInstanceOf(LoraLinear);
    lm.dispose();
  });
});

describe('LoRA on every architecture the loader knows (found by HF module path)', () => {
  for (const name of ['mistral-f32', 'qwen2-sliding-f32', 'qwen3-f32', 'gemma-bf16', 'gemma2-f32', 'gemma3-text-f32', 'phi3-bf16']) {
    it(`${name}: an adapter on every Linear map runs, and its merged HF folder computes the same logits`, async () => {
      const base = path.join(FIXTURES, name);
      const lm = await loadCausalLM(base);
      const linears = [...lm.namedModules()].filter(([p, m]) => m instanceof Linear && p !== 'lm_head').map(([p, m]) => [p, m as Linear] as const);
      expect(linears.length).toBeGreaterThan(4);
      const layers = linears.map(([p, m], i) => ({ module: p, A: tf.randomNormal([2, m.inFeatures], 0, 0.3, 'float32', i), B: tf.randomNormal([m.outFeatures, 2], 0, 0.3, 'float32', 1000 + i), alpha: 4 }));
      const dir = tmp();
      await writePeftAdapter(dir, layers, { targetModules: [...new Set(linears.map(([p]) => p.split('.').pop()!))] });
      tf.dispose(layers.flatMap((l) => [l.A, l.B]));
      const ids = tf.tensor2d([[3, 1, 4, 1, 5, 9, 2]], [1, 7], 'int32');
      const y0 = lm.logits(ids);
      const r = await loadPeftAdapter(lm, dir);
      expect(r.modules.length).toBe(linears.length);
      const y1 = lm.logits(ids);
      expect(tf.tidy(() => tf.max(tf.abs(tf.sub(y1, y0))).dataSync()[0]!)).toBeGreaterThan(1e-2);
      const out = path.join(tmp(), 'merged');
      await mergeAdaptersToFolder(lm, out, { dtype: 'float32' });
      // Gemma rounds its embedding scale sqrt(d) to the config's torch_dtype (as transformers does): put the
      // base's dtype back so that this compares the merged weights, not a bf16 vs f32 scale
      const cfgFile = path.join(out, 'config.json');
      const written = JSON.parse(readFileSync(cfgFile, 'utf8'));
      expect(written.torch_dtype).toBe('float32');
      const orig = JSON.parse(readFileSync(path.join(base, 'config.json'), 'utf8'));
      writeFileSync(cfgFile, JSON.stringify({ ...written, torch_dtype: orig.torch_dtype, ...(orig.dtype ? { dtype: orig.dtype } : {}) }));
      const merged = await loadCausalLM(out);
      const y2 = merged.logits(ids);
      expectClose(y2, y1, { atol: 2e-4, rtol: 1e-4 });
      tf.dispose([ids, y0, y1, y2]);
      lm.dispose();
      merged.dispose();
    });
  }
});
