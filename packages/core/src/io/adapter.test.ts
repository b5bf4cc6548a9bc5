import { mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdaptorkitError, initBackend, Linear, manualSeed, tf } from '../index.js';
import type { CausalLM } from '../models/causal-lm.js';
import { expectBitIdentical, tinyCausalLM } from '../testing/index.js';
import { adapterBasePath, loadAdapter, readAdapterConfig, saveAdapter } from './adapter.js';
import { loadCausalLM } from './hf.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures');

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

/** A toy method: freeze the base, put a small random Linear in each layer's 'post' slot. */
function attach(lm: CausalLM, seed: number): void {
  lm.freeze();
  manualSeed(seed);
  for (const layer of lm.model.layers) {
    const d = lm.config.hiddenSize;
    layer.setAdapter('post', new Linear(d, d, { bias: true, init: { kind: 'normal', std: 0.05 } }));
  }
}

describe('saveAdapter / loadAdapter', () => {
  it('saves only trainable tensors and restores identical outputs on a fresh base', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'akit-adapter-'));
    const base = path.join(FIXTURES, 'llama-f32');
    const a = await loadCausalLM(base);
    attach(a, 1);
    const file = await saveAdapter(dir, a, { method: 'toy', config: { slot: 'post' } });
    expect(file.tensors.length).toBe(4); // 2 layers x (weight, bias)
    // a portable base reference: relative to the adapter folder, plus the folder's name
    expect(path.isAbsolute(file.baseModel.path!)).toBe(false);
    expect(adapterBasePath(dir, file)).toBe(base);
    expect(file.baseModel.name).toBe('llama-f32');
    // adaptorkit's own file names: nothing a PEFT tool would read as its adapter_config.json
    expect(readdirSync(dir).sort()).toEqual(['adaptorkit_adapter.json', 'adaptorkit_adapter.safetensors']);
    const cfg = JSON.parse(readFileSync(path.join(dir, 'adaptorkit_adapter.json'), 'utf8'));
    expect(cfg).toMatchObject({ method: 'toy', config: { slot: 'post' }, trainableParameters: 2 * (32 * 32 + 32) });

    const b = await loadCausalLM(base);
    attach(b, 2); // different random adapter weights until loaded
    const ids = tf.tensor2d([[3, 1, 4, 1, 5, 9]], [1, 6], 'int32');
    const ya = a.logits(ids);
    const before = b.logits(ids);
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(ya, before))).dataSync()[0]!)).toBeGreaterThan(1e-3);
    const frozen = new Map(b.namedParameters().filter(([, p]) => !p.trainable).map(([n, p]) => [n, p.value.clone()]));
    await loadAdapter(dir, b);
    const yb = b.logits(ids);
    expectBitIdentical(ya, yb);
    for (const [n, p] of b.namedParameters()) if (!p.trainable) expectBitIdentical(p.value, frozen.get(n)!);
    // a folder in the first layout (PEFT's file names, absolute base path) still loads
    const old = mkdtempSync(path.join(tmpdir(), 'akit-adapter-old-'));
    renameSync(path.join(dir, 'adaptorkit_adapter.safetensors'), path.join(old, 'adapter_model.safetensors'));
    writeFileSync(path.join(old, 'adapter_config.json'), JSON.stringify({ ...cfg, version: 1, baseModel: { ...cfg.baseModel, path: base, name: undefined } }));
    const migrated = await readAdapterConfig(old);
    expect(migrated.version).toBe(1);
    expect(adapterBasePath(old, migrated)).toBe(base);
    const c = await loadCausalLM(base);
    attach(c, 3);
    await loadAdapter(old, c);
    const yc = c.logits(ids);
    expectBitIdentical(ya, yc);
    tf.dispose([ids, ya, yb, yc, before, ...frozen.values()]);
    a.dispose();
    b.dispose();
    c.dispose();
  });

  it('refuses an adapter saved on a different base, and a differently attached method', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'akit-adapter-'));
    const a = tinyCausalLM(0);
    attach(a, 1);
    await saveAdapter(dir, a, { method: 'toy' });
    const other = tinyCausalLM(0, { numLayers: 3 });
    attach(other, 1);
    const err = await loadAdapter(dir, other).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdaptorkitError);
    expect((err as Error).message).toMatch(/different base model.*numLayers: saved 2, this model 3/);
    // same base, method attached differently (an extra adapter): strict on tensor names
    const c = tinyCausalLM(0);
    attach(c, 1);
    c.model.layers.at(0).setAdapter('preMlp', new Linear(32, 32));
    const err2 = await loadAdapter(dir, c).catch((e: unknown) => e);
    expect((err2 as AdaptorkitError).code).toBe('MISSING_TENSOR');
    expect((err2 as Error).message).toContain('preMlp');
    a.dispose();
    other.dispose();
    c.dispose();
  });
});
