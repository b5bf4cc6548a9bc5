/**
 * Every decoder family against the independent PyTorch reference (fixtures/make_fixtures.py,
 * family_forward): full forwards, cached decoding past the sliding window, and checks that each
 * distinguishing feature is really exercised (switching it off in config.json breaks the match).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdaptorkitError, generate, initBackend, tf } from '../index.js';
import { causalLMConfigFromHF, gemmaEmbedScale } from './hf-config.js';
import { loadCausalLM, loadVisionEncoder } from './hf.js';
import { readSafetensors } from './safetensors.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures');

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

async function expected(name: string): Promise<Map<string, tf.Tensor>> {
  return (await readSafetensors(path.join(FIXTURES, name, 'expected.safetensors'))).tensors;
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  expect(a.shape).toEqual(b.shape);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

/** A copy of a fixture folder with config.json edited. */
function withConfig(name: string, edit: (c: Record<string, unknown>) => void): string {
  const dir = mkdtempSync(path.join(tmpdir(), `akit-${name}-`));
  cpSync(path.join(FIXTURES, name), dir, { recursive: true });
  const file = path.join(dir, 'config.json');
  const c = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(c);
  writeFileSync(file, JSON.stringify(c));
  return dir;
}

async function logitsError(dir: string, name: string): Promise<number> {
  const lm = await loadCausalLM(dir);
  const exp = await expected(name);
  const logits = lm.logits(exp.get('ids')!);
  const err = maxAbsDiff(logits, exp.get('logits')!);
  tf.dispose([logits, ...exp.values()]);
  lm.dispose();
  return err;
}

const FAMILIES = ['qwen3-f32', 'qwen2-sliding-f32', 'mistral-f32', 'gemma-bf16', 'gemma2-f32', 'gemma3-text-f32', 'phi3-bf16'];

describe('every decoder family matches its PyTorch reference', () => {
  for (const name of FAMILIES) {
    it(`${name}: logits of 9 tokens match to 1e-4`, async () => {
      const err = await logitsError(path.join(FIXTURES, name), name);
      expect(err).toBeLessThan(1e-4);
    });
  }

  // the sliding windows (3 or 4) are shorter than the 9 tokens: decoding with the KV cache must keep them
  for (const name of ['qwen3-f32', 'qwen2-sliding-f32', 'mistral-f32', 'gemma2-f32', 'gemma3-text-f32', 'phi3-bf16']) {
    it(`${name}: cached decoding (prefill 5, then one token at a time) gives the same logits`, async () => {
      const lm = await loadCausalLM(path.join(FIXTURES, name));
      const exp = await expected(name);
      const ids = exp.get('ids')!;
      const want = exp.get('logits')!;
      const [B, T] = ids.shape as [number, number];
      const V = want.shape[2]!;
      tf.dispose(lm.logits(ids)); // builds the rotary tables the model keeps
      const cache = lm.createCache();
      const before = tf.memory().numTensors;
      let worst = 0;
      for (let t = 0; t < T; ) {
        const n = t === 0 ? 5 : 1;
        const step = tf.slice(ids, [0, t], [B, n]);
        const out = lm.forward({ ids: step, cache });
        const ref = tf.slice(want, [0, t, 0], [B, n, V]);
        worst = Math.max(worst, maxAbsDiff(out.logits!, ref));
        tf.dispose([step, out.logits!, out.lastHidden, ref]);
        t += n;
      }
      expect(cache.length).toBe(T);
      expect(worst).toBeLessThan(1e-4);
      cache.dispose();
      expect(tf.memory().numTensors).toBeLessThanOrEqual(before);
      tf.dispose([...exp.values()]);
      lm.dispose();
    });
  }
});

describe('generation keeps the sliding window under the KV cache', () => {
  for (const name of ['mistral-f32', 'gemma2-f32', 'gemma3-text-f32']) {
    it(`${name}: greedy generate() past the window equals argmax of full forwards`, async () => {
      const lm = await loadCausalLM(path.join(FIXTURES, name));
      const prompt = [7, 3];
      const { tokens } = generate(lm, prompt, { maxNewTokens: 8, temperature: 0 });
      const seq = [...prompt];
      for (let i = 0; i < 8; i++) {
        const next = tf.tidy(() => {
          const logits = lm.logits(tf.tensor2d([seq], [1, seq.length], 'int32'));
          return tf.argMax(tf.slice(logits, [0, seq.length - 1, 0], [1, 1, -1]), -1).dataSync()[0]!;
        });
        seq.push(next);
      }
      expect(tokens[0]).toEqual(seq.slice(2));
      lm.dispose();
    });
  }
});

describe('the distinguishing features are exercised (switched off, the match breaks)', () => {
  const cases: Array<[string, string, (c: Record<string, unknown>) => void]> = [
    ['mistral-f32', 'sliding_window null', (c) => (c.sliding_window = null)],
    ['qwen2-sliding-f32', 'use_sliding_window false', (c) => (c.use_sliding_window = false)],
    ['qwen3-f32', 'use_sliding_window false', (c) => (c.use_sliding_window = false)],
    ['phi3-bf16', 'sliding_window null', (c) => (c.sliding_window = null)],
    ['gemma-bf16', 'torch_dtype float32 (unrounded sqrt(hidden) normalizer)', (c) => (c.torch_dtype = 'float32')],
    ['gemma2-f32', 'attn_logit_softcapping null', (c) => (c.attn_logit_softcapping = null)],
    ['gemma2-f32', 'final_logit_softcapping null', (c) => (c.final_logit_softcapping = null)],
    ['gemma2-f32', 'query_pre_attn_scalar = head_dim', (c) => (c.query_pre_attn_scalar = 16)],
    ['gemma2-f32', 'layer_types all global', (c) => (c.layer_types = ['full_attention', 'full_attention', 'full_attention'])],
    ['gemma3-text-f32', 'rope_local_base_freq = rope_theta', (c) => (c.rope_local_base_freq = 1000000)],
    ['gemma3-text-f32', 'sliding_window_pattern 1 (no sliding layer)', (c) => (c.sliding_window_pattern = 1)],
    ['gemma3-text-f32', 'no linear rope_scaling on global layers', (c) => (c.rope_scaling = null)],
  ];
  for (const [name, what, edit] of cases) {
    it(`${name}: ${what}`, async () => {
      const dir = withConfig(name, edit);
      expect(await logitsError(dir, name)).toBeGreaterThan(1e-3);
      rmSync(dir, { recursive: true });
    });
  }

  it('gemma3_text: rope_parameters keyed by layer type (newer transformers) read the same as rope_theta / rope_scaling / rope_local_base_freq', async () => {
    const dir = withConfig('gemma3-text-f32', (c) => {
      c.rope_parameters = {
        full_attention: { rope_type: 'linear', factor: 2, rope_theta: 1000000 },
        sliding_attention: { rope_type: 'default', rope_theta: 100 },
      };
      delete c.rope_theta;
      delete c.rope_scaling;
      delete c.rope_local_base_freq;
    });
    expect(await logitsError(dir, 'gemma3-text-f32')).toBeLessThan(1e-4);
    rmSync(dir, { recursive: true });
  });

  it('q/k norm weights are not 1 (qwen3) / not 0 (gemma3 offsets), and gemma2 really clips its final logits', async () => {
    const q3 = await loadCausalLM(path.join(FIXTURES, 'qwen3-f32'));
    const qn = q3.namedParameters().find(([n]) => n === 'model.layers.0.self_attn.q_norm.weight')![1];
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(qn.value, 1))).dataSync()[0]!)).toBeGreaterThan(0.1);
    expect(q3.config.qkNorm).toBe('plain');
    expect(q3.config.headDim).toBe(16);
    q3.dispose();
    const g3 = await loadCausalLM(path.join(FIXTURES, 'gemma3-text-f32'));
    const kn = g3.namedParameters().find(([n]) => n === 'model.layers.1.self_attn.k_norm.weight')![1];
    expect(tf.tidy(() => tf.max(tf.abs(kn.value)).dataSync()[0]!)).toBeGreaterThan(0.1);
    expect(g3.config.layerTypes).toEqual(['sliding_attention', 'sliding_attention', 'full_attention']);
    g3.dispose();
    const exp = await expected('gemma2-f32');
    // |logit| reaches 0.99 x the cap of 2.5 somewhere: the tanh is in its saturating range
    expect(tf.tidy(() => tf.max(tf.abs(exp.get('logits')!)).dataSync()[0]!)).toBeGreaterThan(0.99 * 2.5);
    tf.dispose([...exp.values()]);
  });
});

describe('config parsing of the families', () => {
  const base = JSON.parse(readFileSync(path.join(FIXTURES, 'phi3-bf16', 'config.json'), 'utf8')) as Record<string, unknown>;
  const parse = (c: Record<string, unknown>, where = '/models/x/config.json'): string => {
    try {
      causalLMConfigFromHF(c, where);
      return 'ok';
    } catch (e) {
      return `${(e as AdaptorkitError).code}: ${(e as Error).message}`;
    }
  };

  it('refuses what a family has and adaptorkit does not implement, by name and with the file path', () => {
    expect(parse({ ...base, rope_scaling: { type: 'longrope', short_factor: [1], long_factor: [1] } })).toMatch(/^UNSUPPORTED: \/models\/x\/config\.json rope_scaling type "longrope" \(LongRoPE/);
    expect(parse({ ...base, rope_scaling: { type: 'su', short_factor: [1], long_factor: [1] } })).toMatch(/^UNSUPPORTED: .*"su"/);
    expect(parse({ ...base, rope_scaling: { rope_type: 'yarn', factor: 4 } })).toMatch(/^UNSUPPORTED: .*"yarn" \(YaRN\)/);
    expect(parse({ ...base, partial_rotary_factor: 0.75 })).toMatch(/^UNSUPPORTED: .*partial_rotary_factor 0\.75/);
    expect(parse({ ...base, model_type: 'qwen3', attention_bias: true })).toMatch(/^UNSUPPORTED: .*attention_bias true/);
    expect(parse({ ...base, model_type: 'gemma3_text', use_bidirectional_attention: true })).toMatch(/^UNSUPPORTED: .*use_bidirectional_attention/);
    expect(parse({ ...base, model_type: 'gemma3' })).toMatch(/^UNSUPPORTED: .*"gemma3".*gemma3_text/);
    expect(parse({ ...base, model_type: 'gemma2', layer_types: ['chunked_attention', 'full_attention'] })).toMatch(/^UNSUPPORTED: .*"chunked_attention"/);
    expect(parse({ ...base, model_type: 'llama', final_logit_softcapping: 30 })).toMatch(/^UNSUPPORTED: .*final_logit_softcapping/);
    expect(parse({ ...base, quantization_config: { quant_method: 'gptq', bits: 4 } })).toMatch(/^UNSUPPORTED: .*quantized checkpoint \(quantization_config "gptq"\)/);
    expect(parse({ ...base, rope_scaling: null })).toBe('ok');
  });

  it('applies the HF config-class defaults of each family', () => {
    const g2 = causalLMConfigFromHF({ model_type: 'gemma2', vocab_size: 10, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 4, num_attention_heads: 2 });
    expect(g2).toMatchObject({ headDim: 256, tieWordEmbeddings: true, attnLogitSoftcap: 50, finalLogitSoftcap: 30, slidingWindow: 4096, attnScale: 1 / 16, hiddenAct: 'gelu_tanh' });
    expect(g2.layerTypes).toEqual(['sliding_attention', 'full_attention', 'sliding_attention', 'full_attention']);
    const g3 = causalLMConfigFromHF({ model_type: 'gemma3_text', vocab_size: 10, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 6, num_attention_heads: 2 });
    expect(g3).toMatchObject({ ropeTheta: 1_000_000, localRopeTheta: 10000, qkNorm: 'unit-offset' });
    expect(g3.attnLogitSoftcap).toBeUndefined();
    expect(g3.layerTypes!.indexOf('full_attention')).toBe(5);
    const m = causalLMConfigFromHF({ model_type: 'mistral', vocab_size: 10, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2 });
    expect(m.slidingWindow).toBe(4096); // MistralConfig's default when the key is absent
    const q2 = causalLMConfigFromHF({ model_type: 'qwen2', vocab_size: 10, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 4, num_attention_heads: 2, sliding_window: 8, use_sliding_window: false });
    expect(q2.slidingWindow).toBeUndefined();
    // HF rounds Gemma's normalizer to the model dtype: sqrt(3072) = 55.4256... is 55.5 in bfloat16
    expect(gemmaEmbedScale(3072, 'bfloat16')).toBe(55.5);
    expect(gemmaEmbedScale(48, 'bfloat16')).toBe(6.9375);
    expect(gemmaEmbedScale(48, 'float32')).toBe(Math.fround(Math.sqrt(48)));
  });

  it('a config.json error names the file path', async () => {
    const dir = withConfig('mistral-f32', (c) => (c.rope_scaling = { rope_type: 'dynamic', factor: 2 }));
    const e = await loadCausalLM(dir).then(() => undefined, (err: unknown) => err);
    expect(e).toBeInstanceOf(AdaptorkitError);
    expect((e as Error).message).toContain(path.join(dir, 'config.json'));
    rmSync(dir, { recursive: true });
  });
});

describe('vision towers at image sizes that are not a multiple of the patch size', () => {
  for (const [name, tokens] of [['siglip-odd', 16], ['clip-odd', 17]] as const) {
    it(`${name}: 18 x 18 pixels with 4-pixel patches -> 4 x 4 patches (floored as HF's conv), outputs match`, async () => {
      const enc = await loadVisionEncoder(path.join(FIXTURES, name));
      expect(enc.numTokens).toBe(tokens);
      const exp = await expected(name);
      const out = enc.forward(exp.get('pixels')!);
      expect(maxAbsDiff(out.lastHiddenState, exp.get('last_hidden_state')!)).toBeLessThan(1e-4);
      expect(maxAbsDiff(out.pooled, exp.get('pooled')!)).toBeLessThan(1e-4);
      tf.dispose([out.lastHiddenState, out.pooled, ...out.hiddenStates, ...exp.values()]);
      enc.dispose();
    });
  }
});
