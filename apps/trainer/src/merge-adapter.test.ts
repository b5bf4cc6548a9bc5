/** `merge-adapter` and `generate --adapter`: PEFT adapters (written by core's independent script) and a damc run's delta on an HF base. */
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdaptorkitError, Linear, initBackend, loadAdapter, loadCausalLM, readSafetensors, saveAdapter, tf } from '@adaptorkit/core';
import { expectClose, tinyCausalLM } from '@adaptorkit/core/testing';
import { generateWithAdapters, parseAdapterArg } from './adapters-generate.js';
import { RunConfigSchema } from './config.js';
import { parseWith } from './config-util.js';
import { runMergeAdapter } from './merge-adapter-cmd.js';
import { writeTinyBases } from './test-bases.js';
import { runTrain, setup } from './train.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../packages/core/fixtures');
const PEFT = path.join(FIXTURES, 'peft');
const LLAMA = path.join(FIXTURES, 'llama-f32');

let tmp = '';
let lmDir = '';
let visionDir = '';

beforeAll(async () => {
  await initBackend('cpu', { log: false });
  ({ tmp, lmDir, visionDir } = await writeTinyBases('adaptorkit-merge-adapter-'));
});

async function expected(name: string): Promise<Map<string, tf.Tensor>> {
  return (await readSafetensors(path.join(PEFT, name, 'expected.safetensors'))).tensors;
}

describe('merge-adapter', () => {
  it('a PEFT adapter from the independent script merges into an HF folder whose logits equal the reference', async () => {
    const out = path.join(tmp, 'merged-rslora');
    const base = path.join(tmp, 'llama-with-tok');
    await fs.cp(LLAMA, base, { recursive: true });
    await fs.writeFile(path.join(base, 'tokenizer_config.json'), JSON.stringify({ eos_token: '</s>' }));
    const r = await runMergeAdapter(path.join(PEFT, 'rslora-regex'), { base, out, maxShardBytes: 40_000, dtype: 'float32' });
    expect(r.modules).toBe(3);
    expect(r.shards).toBeGreaterThan(1);
    expect(existsSync(path.join(out, 'model.safetensors.index.json'))).toBe(true);
    expect(existsSync(path.join(out, 'tokenizer_config.json'))).toBe(true);
    const cfg = JSON.parse(await fs.readFile(path.join(out, 'config.json'), 'utf8'));
    expect(cfg.torch_dtype).toBe('float32');
    expect(cfg.model_type).toBe('llama');
    const lm = await loadCausalLM(out);
    const exp = await expected('rslora-regex');
    const y = lm.logits(exp.get('ids')!);
    expectClose(y, exp.get('logits')!, { atol: 2e-4, rtol: 1e-4 });
    tf.dispose([y, ...exp.values()]);
    lm.dispose();
    // the base folder comes from the adapter's base_model_name_or_path when --base is left out; bf16 written as asked
    const out16 = path.join(tmp, 'merged-basic-bf16');
    const r16 = await runMergeAdapter(path.join(PEFT, 'basic'), { out: out16, dtype: 'bfloat16' });
    expect(r16.base).toBe(LLAMA);
    expect(JSON.parse(await fs.readFile(path.join(out16, 'config.json'), 'utf8')).torch_dtype).toBe('bfloat16');
  });

  it("a damc run's text delta merges into a base that computes what the run's text path computes", async () => {
    const cfg = parseWith(
      RunConfigSchema,
      {
        name: 'damc-merge',
        backend: 'cpu',
        outputDir: path.join(tmp, 'runs'),
        base: { lm: lmDir, vision: visionDir },
        method: { name: 'damc-decoupled', config: { lora: { rank: 4, alpha: 8, dropout: 0 }, boundaryTokens: 2 } },
        data: { task: 'vqa', evalExamples: 4 },
        train: { steps: 3, batchSize: 2, lr: 1e-2, warmupSteps: 1, saveEvery: 0 },
      },
      'damc-merge (test)',
    );
    const run = await runTrain(cfg, { log: () => {}, noEval: true });
    const out = path.join(tmp, 'merged-damc');
    const r = await runMergeAdapter(path.join(run.dir, 'final'), { out });
    expect(r.base).toBe(path.resolve(lmDir)); // the run's adapter names its base by a relative path
    expect(r.notes.join(' ')).toMatch(/'text' LoRA delta.*modality branch/);
    const env = await setup(cfg, () => {});
    await loadAdapter(path.join(run.dir, 'final'), env.system.module);
    const ids = tf.tensor2d([[1, 5, 6, 7, 3, 2]], [1, 6], 'int32');
    const lm = env.system.module.getChild('language_model') as unknown as { logits(ids: tf.Tensor): tf.Tensor };
    const want = lm.logits(ids); // text positions route to the text delta
    const merged = await loadCausalLM(out);
    const got = merged.logits(ids);
    expectClose(got, want, { atol: 1e-4, rtol: 1e-4 });
    const plain = await loadCausalLM(lmDir);
    const y0 = plain.logits(ids);
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(y0, want))).dataSync()[0]!)).toBeGreaterThan(1e-3); // the delta is not nothing
    tf.dispose([ids, want, got, y0]);
    merged.dispose();
    plain.dispose();
  });

  it('IAA, MMA and MWA adapters are refused with the reason', async () => {
    for (const [method, why] of [['iaa', /inserts whole new decoder layers/], ['mma', /router.*not one fixed weight delta/], ['mwa', /new modules beside the frozen ones/]] as const) {
      const m = tinyCausalLM(0);
      m.freeze();
      m.model.layers.at(0).setAdapter('post', new Linear(32, 32));
      const dir = path.join(tmp, `adapter-${method}`);
      await saveAdapter(dir, m, { method, basePath: LLAMA });
      const err = await runMergeAdapter(dir, { base: LLAMA, out: path.join(tmp, `out-${method}`) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AdaptorkitError);
      expect((err as Error).message).toMatch(new RegExp(`a '${method}' adapter cannot be merged`));
      expect((err as Error).message).toMatch(why);
      expect(existsSync(path.join(tmp, `out-${method}`))).toBe(false);
      m.dispose();
    }
  });
});

describe('generate --adapter', () => {
  it('parses dir:weight', () => {
    expect(parseAdapterArg('a/b')).toEqual({ dir: 'a/b' });
    expect(parseAdapterArg('a/b:0.5')).toEqual({ dir: 'a/b', weight: 0.5 });
    expect(parseAdapterArg('a/b:-1')).toEqual({ dir: 'a/b', weight: -1 });
    expect(parseAdapterArg('C:/x')).toEqual({ dir: 'C:/x' });
  });

  it('one adapter, then two combined with weights, answer as the reference says', async () => {
    const one = await expected('basic');
    const prompt = Array.from(one.get('prompt')!.dataSync());
    const a = await generateWithAdapters({ adapters: [{ dir: path.join(PEFT, 'basic') }], promptIds: prompt, maxNewTokens: 6 });
    expect(a.tokens).toEqual(Array.from(one.get('greedy')!.dataSync()));
    for (const kind of ['linear', 'cat'] as const) {
      const exp = await expected(`weighted-${kind}`);
      const r = await generateWithAdapters({
        base: LLAMA,
        adapters: [parseAdapterArg(`${path.join(PEFT, 'basic')}:0.7`), parseAdapterArg(`${path.join(PEFT, 'second')}:-0.4`)],
        combination: kind,
        promptIds: prompt,
        maxNewTokens: 6,
      });
      expect(r.active).toEqual(['combined']);
      expect(r.tokens).toEqual(Array.from(exp.get('greedy')!.dataSync()));
      tf.dispose([...exp.values()]);
    }
    tf.dispose([...one.values()]);
  });
});
