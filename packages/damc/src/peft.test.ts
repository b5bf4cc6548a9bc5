import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { Linear, MLPProjector, initBackend, loadCausalLM, loadPeftAdapter, manualSeed, parsePeftConfig, readSafetensors, saveAdapter, tf, type Module } from '@adaptorkit/core';
import { expectClose } from '@adaptorkit/core/testing';
import { attachDamc, composeModels, exportDamcPeft, saveDeltaAsPeft, type DamcModel } from './index.js';

const BASE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../core/fixtures/llama-f32');

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

function randomizeB(m: Module, seed: number): void {
  let s = seed;
  for (const [name, p] of m.namedParameters()) if (/\.lora_B\./.test(name)) p.assign(tf.randomNormal(p.shape as number[], 0, 0.3, 'float32', s++));
}

async function trainedDamc(seed: number, mode: 'naive' | 'decoupled', lora: Record<string, unknown> = {}, modality = 'image', placeholderId = 90): Promise<DamcModel> {
  const lm = await loadCausalLM(BASE);
  manualSeed(seed);
  const { model } = attachDamc(lm, { mode, modality, seed, lora: { rank: 4, alpha: 12, dropout: 0, ...lora } }, { encoder: new Linear(8, 8), projector: new MLPProjector(8, 32, 2), placeholderId });
  randomizeB(model, seed * 100);
  return model;
}

/** Text-only logits of a DAMC LM with every LoRA layer defaulting to `delta`. */
function logitsWith(m: DamcModel, delta: string, ids: tf.Tensor): tf.Tensor {
  for (const l of m.loras) l.defaultDelta = delta;
  const y = m.language_model.logits(ids);
  m.setDefaultRoute();
  return y;
}

async function peftLogits(dir: string, ids: tf.Tensor): Promise<tf.Tensor> {
  const lm = await loadCausalLM(BASE);
  await loadPeftAdapter(lm, dir);
  const y = lm.logits(ids);
  lm.dispose();
  return y;
}

describe('DAMC deltas as PEFT adapters', () => {
  it('a decoupled run folder exports one PEFT adapter per delta, in PEFT names and layouts, that loads to the same outputs', async () => {
    const m = await trainedDamc(1, 'decoupled');
    const run = mkdtempSync(path.join(tmpdir(), 'akit-damc-peft-'));
    await saveAdapter(path.join(run, 'final'), m, { method: 'damc-decoupled', config: { mode: 'decoupled', modality: 'image', seed: 1, lora: { rank: 4, alpha: 12, dropout: 0 } }, basePath: BASE });
    const out = path.join(run, 'peft');
    const done = await exportDamcPeft(path.join(run, 'final'), out);
    expect(done.map((d) => d.delta).sort()).toEqual(['image', 'text']);
    const ids = tf.tensor2d([[3, 1, 4, 1, 5, 9, 2]], [1, 7], 'int32');
    for (const d of done) {
      // the config parses back field by field
      const raw = JSON.parse(readFileSync(path.join(d.dir, 'adapter_config.json'), 'utf8'));
      const c = parsePeftConfig(raw);
      expect(c).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 12, use_rslora: false, bias: 'none', rank_pattern: {}, alpha_pattern: {} });
      expect(c.target_modules).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
      expect(path.resolve(d.dir, c.base_model_name_or_path!)).toBe(BASE);
      expect(raw.inference_mode).toBe(true);
      // PEFT's exact key names and layouts
      const { tensors } = await readSafetensors(path.join(d.dir, 'adapter_model.safetensors'));
      expect(tensors.get('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')!.shape).toEqual([4, 32]);
      expect(tensors.get('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight')!.shape).toEqual([32, 4]);
      expect(tensors.get('base_model.model.model.layers.1.mlp.down_proj.lora_A.weight')!.shape).toEqual([4, 64]);
      expect(tensors.size).toBe(2 * 7 * 2);
      // the same function: a fresh base + the PEFT file computes what the DAMC LM computes with this delta everywhere
      const want = logitsWith(m, d.delta, ids);
      const got = await peftLogits(d.dir, ids);
      expectClose(got, want, { atol: 1e-5, rtol: 1e-5 });
      tf.dispose([want, got, ...tensors.values()]);
    }
    expect(existsSync(path.join(out, 'text', 'adapter_model.safetensors'))).toBe(true);
    await expect(exportDamcPeft(path.join(run, 'final'), path.join(run, 'x'), { deltas: ['sound'] })).rejects.toThrow(/no delta named sound \(has: /);
    ids.dispose();
    m.dispose();
  });

  it('a subset of layers and targets exports an exact target_modules regex', async () => {
    const m = await trainedDamc(2, 'naive', { layers: [1], targets: ['q_proj', 'down_proj'] });
    const dir = mkdtempSync(path.join(tmpdir(), 'akit-damc-peft-'));
    const c = await saveDeltaAsPeft(dir, m.language_model, 'shared');
    expect(typeof c.target_modules).toBe('string');
    const ids = tf.tensor2d([[7, 7, 1, 2]], [1, 4], 'int32');
    const lm = await loadCausalLM(BASE);
    const r = await loadPeftAdapter(lm, dir);
    expect(r.modules.sort()).toEqual(['model.layers.1.mlp.down_proj', 'model.layers.1.self_attn.q_proj']);
    const got = lm.logits(ids);
    const want = m.language_model.logits(ids);
    expectClose(got, want, { atol: 1e-5, rtol: 1e-5 });
    tf.dispose([ids, got, want]);
    lm.dispose();
    m.dispose();
  });

  it("a composed delta (sum of two models' products, NaiveMC) exports as PEFT's cat combination, exactly", async () => {
    const a = await trainedDamc(3, 'naive');
    const b = await trainedDamc(4, 'naive', {}, 'sound', 91);
    const composed = composeModels(await loadCausalLM(BASE), [a, b], { method: 'naive', coefficients: [0.6, 0.3] });
    const dir = mkdtempSync(path.join(tmpdir(), 'akit-damc-peft-'));
    const c = await saveDeltaAsPeft(dir, composed.model.language_model, 'shared');
    expect(c.r).toBe(8);
    expect(c.lora_alpha).toBe(8);
    const ids = tf.tensor2d([[5, 4, 3, 2, 1]], [1, 5], 'int32');
    const want = composed.model.language_model.logits(ids);
    const got = await peftLogits(dir, ids);
    expectClose(got, want, { atol: 1e-5, rtol: 1e-5 });
    tf.dispose([ids, got, want]);
    composed.model.dispose();
    a.dispose();
    b.dispose();
  });
});
