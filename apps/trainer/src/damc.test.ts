/** The DAMC trainer path (damc-decoupled / damc-naive through runTrain) and the `merge` command. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, loadAdapter, readSafetensors, tf, writeSafetensors } from '@adaptorkit/core';
import { RunConfigSchema } from './config.js';
import { parseWith } from './config-util.js';
import { runMerge } from './merge-cmd.js';
import { methodByName } from './methods/index.js';
import { writeTinyBases } from './test-bases.js';
import { evaluate, runTrain, setup } from './train.js';

let tmp = '';
let lmDir = '';
let visionDir = '';

beforeAll(async () => {
  await initBackend('cpu', { log: false });
  ({ tmp, lmDir, visionDir } = await writeTinyBases('adaptorkit-damc-'));
});

const config = (name: string, method: string) =>
  parseWith(
    RunConfigSchema,
    {
      name,
      backend: 'cpu',
      outputDir: path.join(tmp, 'runs'),
      base: { lm: lmDir, vision: visionDir },
      method: { name: method, config: { lora: { rank: 4, alpha: 8 }, boundaryTokens: 2 } },
      data: { task: 'vqa', evalExamples: 4 },
      train: { steps: 3, batchSize: 2, lr: 1e-3, warmupSteps: 1, saveEvery: 0 },
    },
    `${name} (test)`,
  );

const quiet = (): void => {};

describe('damc in the trainer', () => {
  it('damc-decoupled trains, saves an adapter that reloads to the same answers, and is scored', async () => {
    const cfg = config('damc-dec', 'damc-decoupled');
    const r = await runTrain(cfg, { log: quiet, noEval: true }); // the final eval's text skill is the e2e test's job
    expect(r.info.status).toBe('completed');
    const env0 = await setup(cfg, quiet);
    await loadAdapter(path.join(r.dir, 'final'), env0.system.module);
    const first = await evaluate(env0, 'vqa', 'test', 4);
    expect(first.metrics.n).toBe(4);
    const ids = tf.tensor2d([[1, 5, 6, 7, 0]], [1, 5], 'int32');
    const nll = env0.system.textNll(ids);
    ids.dispose();
    expect(nll.tokens).toBeGreaterThan(0);
    expect(nll.nll / nll.tokens).toBeGreaterThan(0);
    // trainable: LoRA text + image deltas on the 7 maps of 2 layers (k/v are 2 KV heads x 8 = 16 wide),
    // the 2-layer projector, 2 x 2 boundary embeddings
    const perDelta = 4 * ((32 + 32) + (32 + 16) + (32 + 16) + (32 + 32) + (32 + 64) + (32 + 64) + (64 + 32));
    expect(r.info.trainableParams).toBe(2 * 2 * perDelta + 2 * (32 * 32 + 32) + 2 * 2 * 32);
    // a second fresh setup + loadAdapter answers exactly the same
    const env = await setup(cfg, quiet);
    await loadAdapter(path.join(r.dir, 'final'), env.system.module);
    const again = await evaluate(env, 'vqa', 'test', 4);
    expect(again.samples?.map((x) => x.prediction)).toEqual(first.samples?.map((x) => x.prediction));
    const { tensors } = await readSafetensors(path.join(r.dir, 'final', 'adaptorkit_adapter.safetensors'));
    const names = [...tensors.keys()];
    expect(names.some((n) => n.includes('lora_A.text'))).toBe(true);
    expect(names.some((n) => n.includes('lora_A.image'))).toBe(true);
    expect(names.some((n) => n.includes('base_layer'))).toBe(false);
    tf.dispose([...tensors.values()]);
  });

  it('damc-naive trains one shared delta', async () => {
    const r = await runTrain(config('damc-naive', 'damc-naive'), { log: quiet, noEval: true });
    expect(r.info.status).toBe('completed');
    const { tensors } = await readSafetensors(path.join(r.dir, 'final', 'adaptorkit_adapter.safetensors'));
    expect([...tensors.keys()].some((n) => n.includes('lora_B.shared'))).toBe(true);
    expect([...tensors.keys()].some((n) => n.includes('.text.'))).toBe(false);
    tf.dispose([...tensors.values()]);
  });

  it('a modality without trainer data is a clear error', async () => {
    const env = config('damc-sound', 'damc-decoupled');
    env.method.config = { modality: 'sound' };
    await expect(runTrain(env, { log: quiet })).rejects.toThrow(/modality: 'sound'.*adaptorkit compose/);
    expect(methodByName('damc-naive').name).toBe('damc-naive');
  });
});

describe('adaptorkit merge', () => {
  it('merges a mergekit-style YAML into an HF folder (linear = mean; ties with a base)', async () => {
    const dir = path.join(tmp, 'merge');
    await fs.mkdir(dir, { recursive: true });
    const ckpt = async (name: string, w: number[], extra?: number[]) => {
      await fs.mkdir(path.join(dir, name), { recursive: true });
      const m = new Map<string, tf.Tensor>([['model.layers.0.mlp.up_proj.weight', tf.tensor2d(w, [2, 2])]]);
      if (extra) m.set('mm_projector.weight', tf.tensor1d(extra));
      await writeSafetensors(path.join(dir, name, 'model.safetensors'), m);
      await fs.writeFile(path.join(dir, name, 'config.json'), JSON.stringify({ model_type: 'llama', name }));
      tf.dispose([...m.values()]);
    };
    await ckpt('base', [0, 0, 0, 0]);
    await ckpt('a', [1, 2, -3, 4]);
    await ckpt('b', [3, -2, 1, 4], [7, 8]);
    const yaml = (method: string, extra = '') =>
      `merge_method: ${method}\n${extra}models:\n  - model: ${path.join(dir, 'a')}\n  - model: ${path.join(dir, 'b')}\ndtype: float32\npassthrough_unique: true\n`;
    await fs.writeFile(path.join(dir, 'linear.yaml'), yaml('linear'));
    const r = await runMerge(path.join(dir, 'linear.yaml'), path.join(dir, 'out-linear'));
    expect(r.report.merged).toBe(1);
    expect(r.report.passedThrough).toEqual(['mm_projector.weight']);
    expect(r.files).toEqual(['model.safetensors', 'config.json', 'mergekit_config.yml']);
    const outCfg = JSON.parse(await fs.readFile(path.join(r.out, 'config.json'), 'utf8'));
    expect(outCfg.name).toBe('a'); // no base_model: the first model's config
    expect(outCfg.torch_dtype).toBe('float32');
    const { tensors } = await readSafetensors(path.join(r.out, 'model.safetensors'));
    expect(Array.from(tensors.get('model.layers.0.mlp.up_proj.weight')!.dataSync())).toEqual([2, 0, -1, 4]);
    expect(Array.from(tensors.get('mm_projector.weight')!.dataSync())).toEqual([7, 8]);
    tf.dispose([...tensors.values()]);

    // ties, density 1: elected sign per element, mean of the agreeing deltas
    await fs.writeFile(path.join(dir, 'ties.yaml'), yaml('ties', `base_model: ${path.join(dir, 'base')}\nparameters: { density: 1 }\n`));
    const t = await runMerge(path.join(dir, 'ties.yaml'), path.join(dir, 'ties.safetensors'));
    expect(t.files).toEqual([path.join(dir, 'ties.safetensors')]);
    const { tensors: tt } = await readSafetensors(t.out);
    expect(Array.from(tt.get('model.layers.0.mlp.up_proj.weight')!.dataSync())).toEqual([2, 2, -3, 4]);
    tf.dispose([...tt.values()]);
    // refuses to overwrite, and a bad config names its field
    await expect(runMerge(path.join(dir, 'ties.yaml'), path.join(dir, 'ties.safetensors'))).rejects.toThrow(/already exists/);
    await fs.writeFile(path.join(dir, 'bad.yaml'), yaml('ties'));
    await expect(runMerge(path.join(dir, 'bad.yaml'), path.join(dir, 'bad-out'))).rejects.toThrow(/base_model/);
  });
});
