/**
 * plan at scale: weights by storage dtype (base.weightsDtype: bf16) and activations with and
 * without recompute: layers (measured against the bytes tfjs keeps, on a shape not used to tune it).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../index.js';
import { tinyCausalLM } from '../testing/index.js';
import { valueAndGrads } from '../train/grad.js';
import { maskedCrossEntropy } from '../train/losses.js';
import { plan } from './plan.js';

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

const LLAMA_7B_HF = {
  model_type: 'llama', hidden_size: 4096, intermediate_size: 11008, num_attention_heads: 32, num_hidden_layers: 32,
  num_key_value_heads: 32, rms_norm_eps: 1e-6, vocab_size: 32000, max_position_embeddings: 2048,
};

describe('plan: bf16 weights and recompute', () => {
  it('LLaMA-7B frozen in bf16: 2 bytes per matrix weight, norms in float32; recompute shrinks activations', () => {
    const frozen = (m: { freeze: () => void }) => m.freeze();
    const f32 = plan(LLAMA_7B_HF, { trainable: frozen, batchSize: 1, seqLen: 256 });
    const b16 = plan(LLAMA_7B_HF, { trainable: frozen, batchSize: 1, seqLen: 256, weightsDtype: 'bf16' });
    const norms = 4096 * (2 * 32 + 1);
    expect(b16.bytes.weightsByDtype).toEqual({ f32: norms * 4, bf16: (6_738_415_616 - norms) * 2 });
    expect(f32.bytes.weights).toBe(6_738_415_616 * 4);
    expect(b16.summary).toContain('bf16 frozen 12.55 GiB');
    // full fine-tuning: nothing frozen, nothing in bf16
    expect(plan(LLAMA_7B_HF, { weightsDtype: 'bf16' }).bytes.weightsByDtype.bf16).toBe(0);
    const a = plan(LLAMA_7B_HF, { batchSize: 8, seqLen: 2048 });
    const r = plan(LLAMA_7B_HF, { batchSize: 8, seqLen: 2048, recompute: 'layers' });
    expect(r.bytes.activations).toBe(r.bytes.activationsByRecompute.layers);
    expect(r.bytes.activationsByRecompute.none).toBe(a.bytes.activations);
    expect(a.bytes.activations / r.bytes.activations).toBeGreaterThan(10);
  });

  it('the recompute estimate is within 0.6-1.6x of what tfjs keeps after the forward', () => {
    const lm = tinyCausalLM(2, { vocabSize: 90, hiddenSize: 64, intermediateSize: 160, numHeads: 4, numKVHeads: 2, numLayers: 6 });
    lm.recompute = 'layers';
    const [B, T] = [2, 48];
    const ids = tf.tidy(() => tf.cast(tf.floor(tf.randomUniform([B, T], 0, 90, 'float32', 4)), 'int32'));
    lm.forward({ ids }).logits!.dispose();
    const base = tf.memory().numBytes;
    let kept = 0;
    const { grads } = valueAndGrads(() => {
      const l = maskedCrossEntropy(lm.forward({ ids }).logits!, ids);
      kept = tf.memory().numBytes - base;
      return l;
    }, lm.trainableParameters());
    const p = plan(lm.config, { batchSize: B, seqLen: T, recompute: 'layers' });
    // After the forward only each layer's input (and the head's activations) is kept; the estimate's
    // peak adds one layer being recomputed in the backward pass. Its size follows from the two estimates:
    // none - layers = B T 4 (L layer - L d - layer)
    const { none, layers } = p.bytes.activationsByRecompute;
    const L = lm.config.numLayers;
    const layerBytes = ((none - layers) / (B * T * 4) + L * lm.config.hiddenSize) / (L - 1) * B * T * 4;
    const afterForward = layers - layerBytes;
    console.log(`recompute estimate after forward / measured: ${(afterForward / kept).toFixed(2)}`);
    expect(afterForward / kept).toBeGreaterThan(0.6);
    expect(afterForward / kept).toBeLessThan(1.6);
    expect(p.bytes.activationsByRecompute.none / kept).toBeGreaterThan(2);
    for (const g of grads.values()) g.dispose();
    ids.dispose();
    lm.dispose();
  });
});
