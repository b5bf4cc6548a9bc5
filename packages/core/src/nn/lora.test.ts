import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdaptorkitError, initBackend, tf } from '../index.js';
import { loadCausalLM } from '../io/hf.js';
import { mergedEntries } from '../io/merge-adapter.js';
import { loadPeftAdapter, savePeftAdapter } from '../io/peft.js';
import { readSafetensors } from '../io/safetensors.js';
import type { CausalLM } from '../models/causal-lm.js';
import { expectBitIdentical, expectClose, expectFlatTensorCount, snapshotParameters } from '../testing/index.js';
import { addWeightedAdapter } from './lora-combine.js';
import { activeAdapters, adapterNames, deleteAdapter, disableAdapters, setAdapter } from './lora.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures');
const PEFT = path.join(FIXTURES, 'peft');
const BASE = path.join(FIXTURES, 'llama-f32');

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

async function expected(name: string): Promise<Map<string, tf.Tensor>> {
  return (await readSafetensors(path.join(PEFT, name, 'expected.safetensors'))).tensors;
}

/** Logits of a fresh base with only `name` loaded (the reference for switching). */
async function alone(name: string | undefined, ids: tf.Tensor): Promise<tf.Tensor> {
  const lm = await loadCausalLM(BASE);
  if (name) await loadPeftAdapter(lm, path.join(PEFT, name));
  const y = lm.logits(ids);
  lm.dispose();
  return y;
}

describe('several adapters on one frozen base', () => {
  it('load by name, switch, disable: outputs equal loading each alone, bit for bit; the base is untouched', async () => {
    const ids = tf.tensor2d([[3, 1, 4, 1, 5, 9, 2]], [1, 7], 'int32');
    const lm: CausalLM = await loadCausalLM(BASE);
    const before = snapshotParameters(lm.namedParameters());
    await loadPeftAdapter(lm, path.join(PEFT, 'basic'), { name: 'a' });
    await loadPeftAdapter(lm, path.join(PEFT, 'second'), { name: 'b' });
    await loadPeftAdapter(lm, path.join(PEFT, 'saved-head'), { name: 'h' });
    expect(adapterNames(lm)).toEqual(['a', 'b', 'h']);
    expect(activeAdapters(lm)).toEqual(['a']); // the first loaded is active; later ones load inactive
    const refs = { a: await alone('basic', ids), b: await alone('second', ids), h: await alone('saved-head', ids), base: await alone(undefined, ids) };
    for (const n of ['a', 'b', 'h', 'a'] as const) {
      setAdapter(lm, n);
      const y = lm.logits(ids);
      expectBitIdentical(y, refs[n], `adapter ${n}`);
      y.dispose();
    }
    disableAdapters(lm);
    expect(activeAdapters(lm)).toEqual([]);
    const y0 = lm.logits(ids);
    expectBitIdentical(y0, refs.base, 'disabled');
    // frozen: no parameter is trainable, and every base weight keeps its bits
    expect(lm.namedTrainableParameters()).toHaveLength(0);
    for (const [n, p] of lm.namedParameters()) {
      const k = n.replace('.base_layer.', '.');
      if (before.has(k)) expectBitIdentical(p.value, before.get(k)!, n);
    }
    // switching does not leak tensors
    await expectFlatTensorCount((i) => {
      setAdapter(lm, i % 2 ? 'a' : 'h');
      lm.logits(ids).dispose();
    }, 6);
    expect(() => setAdapter(lm, 'nope')).toThrow(/no adapter named 'nope' is loaded \(loaded: a, b, h\)/);
    deleteAdapter(lm, 'b');
    expect(adapterNames(lm)).toEqual(['a', 'h']);
    tf.dispose([ids, y0, ...Object.values(refs)]);
    lm.dispose();
  });

  it('several active adapters add their deltas', async () => {
    const lm = await loadCausalLM(BASE);
    await loadPeftAdapter(lm, path.join(PEFT, 'basic'), { name: 'a' });
    await loadPeftAdapter(lm, path.join(PEFT, 'second'), { name: 'b' });
    setAdapter(lm, ['a', 'b']);
    const w = new Map(mergedEntries(lm).map((e) => [e.name, e]));
    const ea = await expected('basic');
    const eb = await expected('second');
    const base = await readSafetensors(path.join(BASE, 'model.safetensors'));
    const q = 'model.layers.1.self_attn.q_proj.weight'; // both adapters touch q_proj
    const want = tf.tidy(() => tf.sub(tf.add(ea.get(`merged.${q}`)!, eb.get(`merged.${q}`)!), base.tensors.get(q)!));
    const got = w.get(q)!.get();
    expectClose(got, want, { atol: 1e-5, rtol: 1e-5 });
    tf.dispose([want, got, ...ea.values(), ...eb.values(), ...base.tensors.values()]);
    lm.dispose();
  });

  for (const kind of ['linear', 'cat'] as const) {
    it(`add_weighted_adapter ${kind} (weights 0.7, -0.4) equals PEFT's definition computed by the script`, async () => {
      const lm = await loadCausalLM(BASE);
      await loadPeftAdapter(lm, path.join(PEFT, 'basic'), { name: 'a' });
      await loadPeftAdapter(lm, path.join(PEFT, 'second'), { name: 'b' });
      const info = addWeightedAdapter(lm, ['a', 'b'], [0.7, -0.4], 'mix', kind);
      expect(info.scale).toBe(1);
      expect(info.ranks.get('model.layers.0.self_attn.q_proj')).toBe(kind === 'cat' ? 8 : 4);
      expect(info.ranks.get('model.layers.0.self_attn.v_proj')).toBe(4); // only 'a' has v_proj
      setAdapter(lm, 'mix');
      const exp = await expected(`weighted-${kind}`);
      const y = lm.logits(exp.get('ids')!);
      expectClose(y, exp.get('logits')!, { atol: 2e-4, rtol: 1e-4 });
      // the combination exports as a PEFT adapter and loads back to the same outputs
      const dir = mkdtempSync(path.join(tmpdir(), 'akit-mix-'));
      const cfg = await savePeftAdapter(dir, lm, 'mix');
      expect(cfg.lora_alpha).toBe(cfg.r);
      const fresh = await loadCausalLM(BASE);
      await loadPeftAdapter(fresh, dir);
      const y2 = fresh.logits(exp.get('ids')!);
      expectClose(y2, y, { atol: 1e-5, rtol: 1e-5 });
      tf.dispose([y, y2, ...exp.values()]);
      lm.dispose();
      fresh.dispose();
    });
  }

  it('refuses combinations PEFT refuses or that have no weighted meaning', async () => {
    const lm = await loadCausalLM(BASE);
    await loadPeftAdapter(lm, path.join(PEFT, 'basic'), { name: 'a' });
    await loadPeftAdapter(lm, path.join(PEFT, 'second'), { name: 'b' });
    await loadPeftAdapter(lm, path.join(PEFT, 'saved-head'), { name: 'h' });
    addWeightedAdapter(lm, ['a', 'b'], [1, 1], 'ab', 'cat'); // rank 8 where both adapt q_proj
    expect(() => addWeightedAdapter(lm, ['a', 'ab'], [1, 1], 'x', 'linear')).toThrow(/ranks 4, 8 at 'model\.layers\.0\.self_attn\.q_proj'.*use 'cat'/);
    expect(() => addWeightedAdapter(lm, ['a', 'h'], [1, 1], 'x', 'cat')).toThrow(/modules_to_save/);
    expect(() => addWeightedAdapter(lm, ['a'], [1, 2], 'x')).toThrow(AdaptorkitError);
    expect(() => addWeightedAdapter(lm, ['a', 'b'], [1, 1], 'a', 'cat')).toThrow(/already loaded/);
    expect(adapterNames(lm)).toEqual(['a', 'b', 'ab', 'h']); // nothing half-added
    lm.dispose();
  });
});
