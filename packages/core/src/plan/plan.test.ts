import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, Linear, tf, type CausalLM } from '../index.js';
import { tinyCausalLM, TINY_LM_CONFIG } from '../testing/index.js';
import { valueAndGrads } from '../train/grad.js';
import { maskedCrossEntropy } from '../train/losses.js';
import { buildShapeOnly, plan } from './plan.js';

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

const LLAMA2_7B_HF = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 4096,
  intermediate_size: 11008,
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 32,
  rms_norm_eps: 1e-5,
  vocab_size: 32000,
  max_position_embeddings: 4096,
  tie_word_embeddings: false,
  torch_dtype: 'float16',
};

const LLAMA3_8B_HF = {
  model_type: 'llama',
  hidden_size: 4096,
  intermediate_size: 14336,
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
  vocab_size: 128256,
  max_position_embeddings: 131072,
};

describe('plan', () => {
  it('LLaMA-2-7B from its HF config.json: 6,738,415,616 parameters, no weights allocated, under a second', () => {
    const before = tf.memory().numBytes;
    const t0 = performance.now();
    const p = plan(LLAMA2_7B_HF, { batchSize: 1, seqLen: 2048 });
    const ms = performance.now() - t0;
    expect(p.parameters).toBe(6_738_415_616);
    expect(p.trainableParameters).toBe(6_738_415_616);
    expect(ms).toBeLessThan(1000);
    expect(tf.memory().numBytes).toBe(before);
    expect(p.bytes.weights).toBe(6_738_415_616 * 4);
    expect(p.bytes.optimizer).toBe(2 * p.bytes.gradients);
    expect(p.bytes.kvCache).toBe(2 * 32 * 2048 * 4096 * 4); // 2 x layers x seq x kv dim x 4 B = 2 GiB
    expect(p.summary).toContain('6,738,415,616');
    expect(() => (buildShapeOnly(LLAMA2_7B_HF) as CausalLM).model.norm.weight.value).toThrow(/shape-only/);
  });

  it('Llama-3-8B (GQA, llama3 rope): 8,030,261,248; frozen base with a small adapter trains only the adapter', () => {
    const t0 = performance.now();
    const full = plan(LLAMA3_8B_HF);
    expect(full.parameters).toBe(8_030_261_248);
    const adapted = plan(LLAMA3_8B_HF, {
      trainable: (m) => {
        m.freeze();
        (m as ReturnType<typeof buildShapeOnly> & { addChild: (n: string, x: Linear) => Linear }).addChild('probe', new Linear(4096, 16, { bias: true }));
      },
    });
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(adapted.parameters).toBe(8_030_261_248 + 4096 * 16 + 16);
    expect(adapted.trainableParameters).toBe(4096 * 16 + 16);
    expect(adapted.bytes.gradients).toBe((4096 * 16 + 16) * 4);
    expect(plan(LLAMA3_8B_HF, { trainable: 'none' }).bytes.activations).toBe(0);
  });

  it('vision towers and adaptorkit configs plan too', () => {
    const clipL = plan({ model_type: 'clip_vision_model', hidden_size: 1024, intermediate_size: 4096, num_hidden_layers: 24, num_attention_heads: 16, image_size: 224, patch_size: 14 });
    expect(clipL.parameters).toBe(303_179_776); // CLIP ViT-L/14 vision tower (HF CLIPVisionModel)
    expect(clipL.seqLen).toBe(257);
    expect(plan(TINY_LM_CONFIG).parameters).toBe(tinyCausalLM(0).countParameters());
  });

  it('the activation estimate is within 0.7-1.4x of the bytes tfjs keeps for backward (a shape not used to calibrate it)', () => {
    const lm = tinyCausalLM(1, { vocabSize: 100, hiddenSize: 96, intermediateSize: 200, numHeads: 6, numKVHeads: 2, numLayers: 2 });
    const B = 2;
    const T = 40;
    const ids = tf.tidy(() => tf.cast(tf.floor(tf.randomUniform([B, T], 0, 100, 'float32', 3)), 'int32'));
    lm.forward({ ids }).logits!.dispose(); // build rotary tables first
    const base = tf.memory().numBytes;
    let kept = 0;
    const { grads } = valueAndGrads(() => {
      const logits = lm.forward({ ids }).logits!;
      const l = maskedCrossEntropy(logits, ids);
      kept = tf.memory().numBytes - base; // everything the tape holds before backward
      return l;
    }, lm.trainableParameters());
    const est = plan(lm.config, { batchSize: B, seqLen: T }).bytes.activations;
    console.log(`activation estimate / measured: ${(est / kept).toFixed(2)}`);
    expect(est / kept).toBeGreaterThan(0.7);
    expect(est / kept).toBeLessThan(1.4);
    for (const g of grads.values()) g.dispose();
    ids.dispose();
    lm.dispose();
  });
});
