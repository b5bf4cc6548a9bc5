import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../index.js';
import { tinyCausalLM } from '../testing/index.js';
import { Rng } from '../train/rng.js';
import { argmax, generate, sampleToken, topKIndices } from './generate.js';

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

/** Reference: argmax decoding by a full forward over the whole sequence at every step (no cache). */
function greedyByFullForwards(lm: ReturnType<typeof tinyCausalLM>, prompt: number[], n: number, prefix?: tf.Tensor): number[] {
  const seq = [...prompt];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const id = tf.tidy(() => {
      let embeds = lm.embed(tf.tensor2d([seq], [1, seq.length], 'int32'));
      if (prefix) embeds = tf.concat([prefix, embeds], 1) as tf.Tensor3D;
      const logits = lm.forward({ embeds }).logits!; // [1, L, V]
      const L = logits.shape[1];
      return argmax(tf.slice(logits, [0, L - 1, 0], [1, 1, -1]).dataSync());
    });
    seq.push(id);
    out.push(id);
  }
  return out;
}

describe('generate', () => {
  it("lastLogitsOnly gives the full forward's last position, and the prompt step asks for it", () => {
    const lm = tinyCausalLM(5);
    const ids = tf.tensor2d([[3, 9, 4, 1, 7], [2, 2, 8, 6, 5]], [2, 5], 'int32');
    const full = lm.forward({ ids }).logits!;
    const last = lm.forward({ ids, lastLogitsOnly: true }).logits!;
    expect(last.shape).toEqual([2, 1, full.shape[2]]);
    const want = tf.slice(full, [0, 4, 0], [2, 1, -1]);
    expect(Array.from(last.dataSync())).toEqual(Array.from(want.dataSync()));
    const seen: (boolean | undefined)[] = [];
    generate({ createCache: () => lm.createCache(), forward: (i) => (seen.push(i.lastLogitsOnly), lm.forward(i)) }, [3, 9, 4], { maxNewTokens: 3 });
    expect(seen).toEqual([true, undefined, undefined]);
    tf.dispose([ids, full, last, want]);
  });

  it('greedy with the KV cache equals argmax by repeated full forwards', () => {
    const lm = tinyCausalLM(3);
    const prompt = [5, 17, 2, 40, 33];
    const got = generate(lm, prompt, { maxNewTokens: 12 });
    const want = greedyByFullForwards(lm, prompt, 12);
    expect(got.tokens[0]).toEqual(want);
    expect(got.finishReason).toEqual(['length']);
    // not a degenerate sequence (the test would be weak if the model repeated one token)
    expect(new Set(want).size).toBeGreaterThan(1);
    lm.dispose();
  });

  it('prefix embeddings go before the prompt, and batches decode each row like alone', () => {
    const lm = tinyCausalLM(4);
    const prefix = tf.tidy(() => tf.mul(tf.randomNormal([1, 3, 32], 0, 1, 'float32', 7), 3)); // [1, P, d]
    const prompt = [9, 1, 22];
    const got = generate(lm, prompt, { maxNewTokens: 6, prefixEmbeds: prefix });
    expect(got.tokens[0]).toEqual(greedyByFullForwards(lm, prompt, 6, prefix));
    const noPrefix = generate(lm, prompt, { maxNewTokens: 6 });
    expect(noPrefix.tokens[0]).not.toEqual(got.tokens[0]);
    const batch = generate(lm, [prompt, [3, 3, 60]], { maxNewTokens: 6 });
    expect(batch.tokens[0]).toEqual(noPrefix.tokens[0]);
    expect(batch.tokens[1]).toEqual(generate(lm, [3, 3, 60], { maxNewTokens: 6 }).tokens[0]);
    prefix.dispose();
    lm.dispose();
  });

  it('stops at a stop token or sequence (kept in the output)', () => {
    const lm = tinyCausalLM(3);
    const prompt = [5, 17, 2, 40, 33];
    const full = generate(lm, prompt, { maxNewTokens: 12 }).tokens[0]!;
    const r = generate(lm, prompt, { maxNewTokens: 12, stop: [full[3]!] });
    const firstAt = full.indexOf(full[3]!);
    expect(r.tokens[0]).toEqual(full.slice(0, firstAt + 1));
    expect(r.finishReason).toEqual(['stop']);
    const seq = generate(lm, prompt, { maxNewTokens: 12, stop: [[full[4]!, full[5]!]] });
    expect(seq.tokens[0]!.slice(-2)).toEqual([full[4], full[5]]);
    lm.dispose();
  });

  it('sampling is seeded; topK 1 is greedy; temperature changes the result; no tensors leak', () => {
    const lm = tinyCausalLM(3);
    const prompt = [5, 17, 2];
    generate(lm, prompt, { maxNewTokens: 1 }); // builds the rotary tables once (kept by the model)
    const before = tf.memory().numTensors;
    const greedy = generate(lm, prompt, { maxNewTokens: 8 }).tokens[0];
    expect(generate(lm, prompt, { maxNewTokens: 8, temperature: 1, topK: 1, seed: 4 }).tokens[0]).toEqual(greedy);
    const a = generate(lm, prompt, { maxNewTokens: 8, temperature: 5, seed: 1 }).tokens[0];
    const b = generate(lm, prompt, { maxNewTokens: 8, temperature: 5, seed: 1 }).tokens[0];
    const c = generate(lm, prompt, { maxNewTokens: 8, temperature: 5, seed: 2 }).tokens[0];
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(tf.memory().numTensors).toBe(before);
    lm.dispose();
  });

  it("topKIndices equals a full descending sort's first k, ties by lower index", () => {
    const rng = new Rng(11);
    for (let trial = 0; trial < 50; trial++) {
      const V = 1 + Math.floor(rng.uniform() * 300);
      const v = Float32Array.from({ length: V }, () => Math.floor(rng.uniform() * 20)); // many ties
      const full = Array.from({ length: V }, (_, i) => i).sort((a, b) => v[b]! - v[a]! || a - b);
      for (const k of [1, 2, 7, V - 1, V]) if (k >= 1) expect(topKIndices(v, k), `V ${V} k ${k}`).toEqual(full.slice(0, k));
    }
  });

  it('sampleToken: topK / topP restrict the support; the empirical distribution follows the softmax', () => {
    const logits = new Float32Array([2, 1, 0, -1, 0.5]);
    const rng = new Rng(0);
    const counts = new Array<number>(5).fill(0);
    for (let i = 0; i < 4000; i++) counts[sampleToken(logits, { temperature: 1 }, rng)]!++;
    const z = Array.from(logits).reduce((s, v) => s + Math.exp(v), 0);
    for (let k = 0; k < 5; k++) expect(Math.abs(counts[k]! / 4000 - Math.exp(logits[k]!) / z)).toBeLessThan(0.03);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(sampleToken(logits, { temperature: 1, topK: 2 }, rng));
    expect([...seen].sort()).toEqual([0, 1]);
    seen.clear();
    // p = [0.53, 0.20, 0.07, 0.03, 0.12] (sorted: 0, 1, 4, 2, 3): topP 0.7 keeps {0, 1}
    for (let i = 0; i < 500; i++) seen.add(sampleToken(logits, { temperature: 1, topP: 0.7 }, rng));
    expect([...seen].sort()).toEqual([0, 1]);
    expect(() => generate(tinyCausalLM(0), [1], { topP: 0 })).toThrow(/topP/);
  });

  it('ragged rows (padId): each row decodes as it would alone; the EOS rule drops the EOS id; suppressed ids never come', () => {
    const lm = tinyCausalLM(4);
    const rows = [
      [1, 9, 10, 11, 12, 13],
      [1, 20, 21],
      [1, 30, 31, 32],
    ];
    const together = generate(lm, rows, { maxNewTokens: 6, padId: 0 });
    for (let b = 0; b < rows.length; b++) {
      const alone = greedyByFullForwards(lm, rows[b]!, 6);
      expect(together.tokens[b]).toEqual(alone);
    }
    expect(() => generate(lm, rows, { maxNewTokens: 2 })).toThrow(/pass padId/);
    // EOS: the row ends at it and it is not returned
    const first = together.tokens[1]!;
    const eos = first[3]!;
    const cut = generate(lm, rows, { maxNewTokens: 6, padId: 0, eosId: eos });
    expect(cut.tokens[1]).toEqual(first.slice(0, first.indexOf(eos)));
    expect(cut.finishReason[1]).toBe('stop');
    expect(cut.tokens[1]).not.toContain(eos);
    // suppressTokens: the greedy choice moves to the next best id
    const banned = together.tokens[0]![0]!;
    const s = generate(lm, [rows[0]!], { maxNewTokens: 3, suppressTokens: [banned] });
    expect(s.tokens[0]![0]).not.toBe(banned);
    expect(s.tokens[0]).not.toContain(banned);
    lm.dispose();
  });

  it('embedPrompt: the hook builds the prompt embeddings (a method splicing features in)', () => {
    const lm = tinyCausalLM(5);
    const prompt = [1, 7, 8, 9];
    const shift = tf.fill([1, prompt.length, 32], 0.5);
    const hooked = generate(lm, prompt, { maxNewTokens: 4, embedPrompt: (ids) => tf.add(lm.embed(ids), shift) });
    const want: number[] = [];
    const seq = [...prompt];
    for (let i = 0; i < 4; i++) {
      const id = tf.tidy(() => {
        const e = lm.embed(tf.tensor2d([seq], [1, seq.length], 'int32'));
        const embeds = tf.concat([tf.add(tf.slice(e, [0, 0, 0], [1, prompt.length, 32]), shift), tf.slice(e, [0, prompt.length, 0], [1, seq.length - prompt.length, 32])], 1);
        const logits = lm.forward({ embeds }).logits!;
        return argmax(tf.slice(logits, [0, seq.length - 1, 0], [1, 1, -1]).dataSync());
      });
      seq.push(id);
      want.push(id);
    }
    expect(hooked.tokens[0]).toEqual(want);
    expect(hooked.tokens[0]).not.toEqual(generate(lm, prompt, { maxNewTokens: 4 }).tokens[0]);
    shift.dispose();
    lm.dispose();
  });
});
