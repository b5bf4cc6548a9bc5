import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/init.js';
import { AdaptorkitError } from '../errors.js';
import { CausalLM } from '../models/causal-lm.js';
import { TINY_LM_CONFIG, tinyCausalLM } from '../testing/index.js';
import { Linear } from './layers.js';
import { Module } from './module.js';
import { shapeOnly } from './parameter.js';

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

describe('Module', () => {
  it('names parameters by structure, like HF', () => {
    const lm = tinyCausalLM(0);
    const names = lm.namedParameters().map(([n]) => n);
    expect(names).toContain('model.embed_tokens.weight');
    expect(names).toContain('model.layers.1.self_attn.q_proj.weight');
    expect(names).toContain('model.layers.0.mlp.down_proj.weight');
    expect(names).toContain('model.layers.0.post_attention_layernorm.weight');
    expect(names).toContain('model.norm.weight');
    expect(names).toContain('lm_head.weight');
    expect(new Set(names).size).toBe(names.length);
    lm.dispose();
  });

  it('counts parameters and freezes by subtree', () => {
    const lm = tinyCausalLM(0);
    const c = TINY_LM_CONFIG;
    const d = c.hiddenSize;
    const dkv = (c.numKVHeads! * d) / c.numHeads;
    const perLayer = 2 * d * d + 2 * d * dkv + 3 * d * c.intermediateSize + 2 * d;
    const expected = c.vocabSize * d * 2 + c.numLayers * perLayer + d;
    expect(lm.countParameters()).toBe(expected);
    lm.freeze();
    expect(lm.countParameters({ trainable: true })).toBe(0);
    lm.model.layers.at(1).unfreeze();
    expect(lm.countParameters({ trainable: true })).toBe(perLayer);
    expect(lm.trainableParameters().every((p) => p.value.trainable)).toBe(true);
    lm.dispose();
  });

  it('dispose frees every tensor the module made: one tensor per parameter, the weights readable until then', () => {
    const before = tf.memory().numTensors;
    const lm = tinyCausalLM(0);
    expect(tf.memory().numTensors - before).toBe(lm.parameters().length);
    const w = lm.namedParameters().find(([n]) => n === 'lm_head.weight')![1].value;
    const sum = tf.tidy(() => tf.sum(tf.abs(w)).dataSync()[0]!);
    expect(sum).toBeGreaterThan(0);
    lm.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('gives unique variable names across models in one process', () => {
    const a = tinyCausalLM(0);
    const b = tinyCausalLM(0);
    const names = [...a.parameters(), ...b.parameters()].map((p) => p.value.name);
    expect(new Set(names).size).toBe(names.length);
    a.dispose();
    b.dispose();
  });

  it('round-trips the state dict and rejects missing, unexpected and mis-shaped tensors', () => {
    const a = tinyCausalLM(1);
    const b = tinyCausalLM(2);
    b.loadStateDict(a.stateDict());
    const ids = tf.tensor2d([[1, 2, 3]], [1, 3], 'int32');
    const la = a.logits(ids);
    const lb = b.logits(ids);
    expect(Array.from(lb.dataSync())).toEqual(Array.from(la.dataSync()));
    const sd = a.stateDict();
    sd.delete('model.norm.weight');
    expect(() => b.loadStateDict(sd)).toThrow(/missing tensor\(s\) for CausalLM: model\.norm\.weight/);
    const extra = new Map(a.stateDict());
    const t = tf.zeros([2]);
    extra.set('model.bogus.weight', t);
    expect(() => b.loadStateDict(extra)).toThrow(/unexpected tensor\(s\).*model\.bogus\.weight/);
    const wrong = new Map(a.stateDict());
    const w = tf.zeros([3, 3]);
    wrong.set('model.norm.weight', w);
    try {
      b.loadStateDict(wrong);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(AdaptorkitError);
      expect((e as AdaptorkitError).code).toBe('SHAPE_MISMATCH');
      expect((e as Error).message).toBe("tensor 'model.norm.weight': model expects [32], got [3, 3]");
    }
    // non-strict load of a subset
    const sub = new Map([['model.norm.weight', a.stateDict().get('model.norm.weight')!]]);
    const r = b.loadStateDict(sub, { strict: false });
    expect(r.unexpected).toEqual([]);
    expect(r.missing.length).toBe(b.namedParameters().length - 1);
    tf.dispose([ids, la, lb, t, w]);
    a.dispose();
    b.dispose();
  });

  it('replaces a child so forward uses the replacement', () => {
    const lm = tinyCausalLM(3);
    const ids = tf.tensor2d([[1, 2, 3]], [1, 3], 'int32');
    const before = lm.logits(ids);
    class Zero extends Module {
      forward(x: tf.Tensor): tf.Tensor {
        return tf.zeros([...x.shape.slice(0, -1), 32]);
      }
    }
    const attn = lm.model.layers.at(0).self_attn;
    const old = attn.getChild('o_proj');
    attn.replaceChild('o_proj', new Zero());
    const after = lm.logits(ids);
    expect(Array.from(after.dataSync())).not.toEqual(Array.from(before.dataSync()));
    attn.replaceChild('o_proj', old);
    const back = lm.logits(ids);
    expect(Array.from(back.dataSync())).toEqual(Array.from(before.dataSync()));
    expect(() => attn.replaceChild('nope', old)).toThrow(/has no child 'nope'/);
    tf.dispose([ids, before, after, back]);
    lm.dispose();
  });

  it('builds huge models in shape-only mode without allocating', () => {
    const before = tf.memory().numTensors;
    const lm = shapeOnly(() => new CausalLM({ vocabSize: 32000, hiddenSize: 4096, intermediateSize: 11008, numLayers: 32, numHeads: 32 }));
    expect(lm.countParameters()).toBe(6_738_415_616);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => lm.model.norm.weight.value).toThrow(/shape-only/);
  });

  it('keeps Linear weights [in, out] and converts to/from the HF [out, in] layout', () => {
    const l = new Linear(3, 5, { bias: true });
    expect(l.weight.shape).toEqual([3, 5]);
    expect(l.weight.externalShape).toEqual([5, 3]);
    const ext = l.weight.toExternal();
    const back = l.weight.fromExternal(ext);
    expect(Array.from(back.dataSync())).toEqual(Array.from(l.weight.value.dataSync()));
    tf.dispose([ext, back]);
    l.dispose();
  });
});
