import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdaptorkitError, initBackend, tf } from '../index.js';
import { compareClose, tinyCausalLM } from '../testing/index.js';
import { causalLMConfigFromHF, visionConfigFromHF } from './hf-config.js';
import { checkpointSource, loadCausalLM, loadVisionEncoder, saveWeights } from './hf.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';

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

describe('loadCausalLM against an independent PyTorch LLaMA (fixtures/make_fixtures.py)', () => {
  for (const name of ['llama-f32', 'llama-bf16-sharded', 'qwen2-f16-tied']) {
    it(`${name}: logits match to 1e-4`, async () => {
      const lm = await loadCausalLM(path.join(FIXTURES, name));
      const exp = await expected(name);
      const logits = lm.logits(exp.get('ids')!);
      const err = maxAbsDiff(logits, exp.get('logits')!);
      expect(err).toBeLessThan(1e-4);
      // the logits are not trivially small: a wrong weight would show
      expect(tf.tidy(() => tf.max(tf.abs(exp.get('logits')!)).dataSync()[0]!)).toBeGreaterThan(0.5);
      expect(checkpointSource(lm)?.path).toBe(path.join(FIXTURES, name));
      tf.dispose([logits, ...exp.values()]);
      lm.dispose();
    });
  }

  it('reads the config variants: sharded bf16 with rope_parameters llama3 and head_dim, qwen2 biases and tying', async () => {
    const bf = await loadCausalLM(path.join(FIXTURES, 'llama-bf16-sharded'));
    expect(bf.config.headDim).toBe(16);
    expect(bf.config.ropeScaling).toMatchObject({ type: 'llama3', factor: 4, originalMaxPositionEmbeddings: 16 });
    bf.dispose();
    const qw = await loadCausalLM(path.join(FIXTURES, 'qwen2-f16-tied'));
    expect(qw.config.attentionBias).toBe(true);
    expect(qw.lm_head).toBeUndefined();
    expect(qw.namedParameters().some(([n]) => n === 'model.layers.0.self_attn.q_proj.bias')).toBe(true);
    expect(qw.config.ropeScaling).toEqual({ type: 'linear', factor: 2 });
    qw.dispose();
  });

  it('a wrong rope setting changes the logits (so the rope scaling is really exercised)', async () => {
    const dir = copyFixture('llama-bf16-sharded');
    const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    cfg.rope_parameters = { rope_type: 'default', rope_theta: 10000 };
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
    const lm = await loadCausalLM(dir);
    const exp = await expected('llama-bf16-sharded');
    const logits = lm.logits(exp.get('ids')!);
    expect(maxAbsDiff(logits, exp.get('logits')!)).toBeGreaterThan(1e-3);
    tf.dispose([logits, ...exp.values()]);
    lm.dispose();
  });
});

describe('loadVisionEncoder against an independent PyTorch CLIP / SigLIP', () => {
  for (const name of ['clip', 'siglip']) {
    it(`${name}: last hidden state and pooled output match to 1e-4`, async () => {
      const enc = await loadVisionEncoder(path.join(FIXTURES, name));
      const exp = await expected(name);
      const out = enc.forward(exp.get('pixels')!);
      expect(maxAbsDiff(out.lastHiddenState, exp.get('last_hidden_state')!)).toBeLessThan(1e-4);
      expect(maxAbsDiff(out.pooled, exp.get('pooled')!)).toBeLessThan(1e-4);
      if (name === 'clip') {
        // CLIPModel folder: the text tower and projections were skipped, not loaded
        expect(checkpointSource(enc)?.ignored).toEqual(expect.arrayContaining(['text_model.embeddings.token_embedding.weight', 'logit_scale', 'visual_projection.weight']));
        expect(enc.numTokens).toBe(17);
      }
      tf.dispose([out.lastHiddenState, out.pooled, ...out.hiddenStates, ...exp.values()]);
      enc.dispose();
    });
  }
});

function copyFixture(name: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `akit-${name}-`));
  cpSync(path.join(FIXTURES, name), dir, { recursive: true });
  return dir;
}

async function expectCode(p: Promise<unknown>, code: string, ...fragments: string[]): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, 'expected an error').toBeInstanceOf(AdaptorkitError);
  expect((e as AdaptorkitError).code, String(e)).toBe(code);
  for (const f of fragments) expect((e as Error).message).toContain(f);
}

describe('strict loading', () => {
  it('a missing tensor is an error naming it', async () => {
    const dir = copyFixture('llama-f32');
    const { tensors, metadata } = await readSafetensors(path.join(dir, 'model.safetensors'));
    tensors.get('model.layers.1.mlp.up_proj.weight')!.dispose();
    tensors.delete('model.layers.1.mlp.up_proj.weight');
    await writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { metadata });
    await expectCode(loadCausalLM(dir), 'MISSING_TENSOR', 'model.layers.1.mlp.up_proj.weight');
    tf.dispose([...tensors.values()]);
    rmSync(dir, { recursive: true });
  });

  it('an unexpected tensor is an error naming it; a mis-shaped one names both shapes', async () => {
    const dir = copyFixture('llama-f32');
    const { tensors } = await readSafetensors(path.join(dir, 'model.safetensors'));
    tensors.set('model.layers.0.self_attn.extra.weight', tf.zeros([2, 2]));
    await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
    await expectCode(loadCausalLM(dir), 'UNEXPECTED_TENSOR', 'model.layers.0.self_attn.extra.weight');
    tensors.get('model.layers.0.self_attn.extra.weight')!.dispose();
    tensors.delete('model.layers.0.self_attn.extra.weight');
    tensors.get('model.norm.weight')!.dispose();
    tensors.set('model.norm.weight', tf.ones([31]));
    await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
    await expectCode(loadCausalLM(dir), 'SHAPE_MISMATCH', 'model.norm.weight', '[31]', '[32]');
    tf.dispose([...tensors.values()]);
    rmSync(dir, { recursive: true });
  });

  it('an index that names a tensor its shard lacks, and a shard path outside the folder, are refused', async () => {
    const dir = copyFixture('llama-bf16-sharded');
    const idxFile = path.join(dir, 'model.safetensors.index.json');
    const idx = JSON.parse(readFileSync(idxFile, 'utf8'));
    const shards = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    idx.weight_map['model.norm.weight'] = shards.find((s) => s !== idx.weight_map['model.norm.weight']);
    writeFileSync(idxFile, JSON.stringify(idx));
    await expectCode(loadCausalLM(dir), 'BAD_FILE', 'model.norm.weight');
    idx.weight_map['model.norm.weight'] = '../../etc/passwd';
    writeFileSync(idxFile, JSON.stringify(idx));
    await expectCode(loadCausalLM(dir), 'BAD_FILE', '../../etc/passwd');
    rmSync(dir, { recursive: true });
  });

  it('unsupported configs are clear errors', async () => {
    const base = JSON.parse(readFileSync(path.join(FIXTURES, 'llama-f32', 'config.json'), 'utf8'));
    const code = (c: object): string => {
      try {
        causalLMConfigFromHF({ ...base, ...c });
        return 'ok';
      } catch (e) {
        return `${(e as AdaptorkitError).code}: ${(e as Error).message}`;
      }
    };
    expect(code({ rope_scaling: { type: 'dynamic', factor: 2 } })).toMatch(/^UNSUPPORTED: .*rope_scaling type "dynamic"/);
    expect(code({ rope_scaling: { rope_type: 'yarn', factor: 2 } })).toMatch(/^UNSUPPORTED: .*"yarn"/);
    expect(code({ rope_parameters: { rope_type: 'longrope', rope_theta: 1 } })).toMatch(/^UNSUPPORTED: .*rope_parameters type "longrope"/);
    expect(code({ model_type: 'gpt2' })).toMatch(/^UNSUPPORTED: .*gpt2/);
    expect(code({ hidden_size: -3 })).toMatch(/^INVALID_CONFIG: .*hidden_size/);
    expect(code({ vocab_size: undefined })).toMatch(/^INVALID_CONFIG: .*vocab_size.*missing/);
    expect(code({ hidden_act: 'mish' })).toMatch(/^UNSUPPORTED: .*mish/);
    expect(code({ rope_scaling: null })).toBe('ok');
    expect(code({ rope_scaling: { rope_type: 'default' } })).toBe('ok');
    expect(() => visionConfigFromHF({ model_type: 'vit' })).toThrow(/not a supported vision tower/);
    await expectCode(loadCausalLM(path.join(FIXTURES, 'nope')), 'IO_ERROR', 'config.json');
  });
});

describe('saveWeights', () => {
  it('a model saved in HF layout loads back to identical logits', async () => {
    const lm = tinyCausalLM(5, { vocabSize: 40 });
    const dir = mkdtempSync(path.join(tmpdir(), 'akit-save-'));
    await saveWeights(path.join(dir, 'model.safetensors'), lm);
    const hf = {
      model_type: 'llama', vocab_size: 40, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4,
      num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 10000, max_position_embeddings: 128,
    };
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify(hf));
    const back = await loadCausalLM(dir);
    const ids = tf.tensor2d([[1, 5, 9, 2]], [1, 4], 'int32');
    const a = lm.logits(ids);
    const b = back.logits(ids);
    expect(compareClose(a, b, { atol: 0, rtol: 0 }).ok).toBe(true);
    tf.dispose([ids, a, b]);
    lm.dispose();
    back.dispose();
    rmSync(dir, { recursive: true });
  });
});
