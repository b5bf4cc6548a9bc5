import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, loadAdapter, manualSeed, tf } from '@adaptorkit/core';
import { ShapesWorld } from '@adaptorkit/data';

import { applyOverrides, parseWith } from './config-util.js';
import { RunConfigSchema, type RunConfig } from './config.js';
import { methodByName, METHODS } from './methods/index.js';
import type { StepLine } from './run-format.js';
import { evalRetrievalRun, isRetrievalRunFolder, type RetrievalEvalResult } from './retrieval.js';
import { loadMultiway, MultiwayTransformer, saveMultiway, shapesWorldMultiwayShape } from '@adaptorkit/shapes-bases';
import { runTrain } from './train.js';

let tmp = '';
let baseDir = '';
const quiet = (): void => {};

beforeAll(async () => {
  await initBackend('cpu', { log: false });
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'adaptorkit-mwa-'));
  manualSeed(3);
  const base = new MultiwayTransformer({ ...shapesWorldMultiwayShape(new ShapesWorld({ seed: 0 })), dim: 16, numLayers: 2, numHeads: 2, maxTextLen: 48, patchSize: 8 });
  baseDir = path.join(tmp, 'multiway');
  await saveMultiway(baseDir, base);
  base.dispose();
});

function config(name: string, over: string[] = []): RunConfig {
  const raw = {
    name,
    backend: 'cpu',
    outputDir: path.join(tmp, 'runs'),
    method: { name: 'mwa', config: { base: baseDir, extractor: { bottleneck: 4 } } },
    data: { task: 'retrieval', evalExamples: 24 },
    train: { steps: 4, batchSize: 8, lr: 1e-2, warmupSteps: 1, saveEvery: 2 },
  };
  return parseWith(RunConfigSchema, applyOverrides(raw, over), `${name} (test)`);
}

describe('mwa in the trainer (retrieval)', () => {
  it('is listed in the registry as a retrieval method and refused by the generative path', () => {
    expect(METHODS.find((m) => m.name === 'mwa')?.kind).toBe('retrieval');
    expect(() => methodByName('mwa')).toThrow(/retrieval method/);
  });

  it('trains a few steps, saves the adapter, scores R@K against the frozen base, and eval reproduces it', async () => {
    const before = await fs.readFile(path.join(baseDir, 'model.safetensors'));
    const { dir, info, eval: result } = await runTrain(config('mwa-tiny'), { log: quiet });
    const ev = result as RetrievalEvalResult | undefined; // runTrain handed the run to runRetrievalTrain
    expect(info.status).toBe('completed');
    expect(info.method).toBe('mwa');
    expect(info.trainableParams).toBeGreaterThan(0);
    expect(info.trainablePercent).toBeLessThan(100);
    const steps = (await fs.readFile(path.join(dir, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as StepLine)
      .filter((l) => l.kind === 'step');
    expect(steps.map((s) => s.step)).toEqual([1, 2, 3, 4]);
    expect(steps.every((s) => Number.isFinite(s.loss))).toBe(true);
    // adapter-only checkpoint: extractor and enhancer tensors, nothing of the base
    const adapter = JSON.parse(await fs.readFile(path.join(dir, 'final', 'adaptorkit_adapter.json'), 'utf8')) as { method: string; tensors: string[] };
    expect(adapter.method).toBe('mwa');
    expect(adapter.tensors.length).toBeGreaterThan(0);
    expect(adapter.tensors.every((n) => /\.(extractor|enhancer)\./.test(n))).toBe(true);
    // both directions at 1/5/10, for the run and for the frozen base, on the same 24 pairs
    const keys = ['i2t_r1', 'i2t_r5', 'i2t_r10', 't2i_r1', 't2i_r5', 't2i_r10', 'rsum'];
    expect(Object.keys(ev!.metrics).sort()).toEqual([...keys].sort());
    expect(Object.keys(ev!.frozenBaseMetrics).sort()).toEqual([...keys].sort());
    for (const v of [...Object.values(ev!.metrics), ...Object.values(ev!.frozenBaseMetrics)]) expect(v).toBeGreaterThanOrEqual(0);
    expect(ev!.metrics.i2t_r10!).toBeGreaterThanOrEqual(ev!.metrics.i2t_r1!);
    // the base on disk is untouched, and `adaptorkit eval` on the folder gives the same numbers
    expect(Buffer.compare(before, await fs.readFile(path.join(baseDir, 'model.safetensors')))).toBe(0);
    expect(await isRetrievalRunFolder(dir)).toBe(true);
    const again = await evalRetrievalRun(dir, { log: quiet });
    expect(again.metrics).toEqual(ev!.metrics);
    const onDisk = JSON.parse(await fs.readFile(path.join(dir, 'eval.json'), 'utf8')) as RetrievalEvalResult;
    expect(onDisk.frozenBaseMetrics).toEqual(ev!.frozenBaseMetrics);
    const summary = JSON.parse(await fs.readFile(path.join(dir, 'summary.json'), 'utf8')) as { task: string; metrics: Record<string, number>; frozenBaseMetrics: Record<string, number> };
    expect(summary.task).toBe('retrieval');
    expect(summary.metrics).toEqual(ev!.metrics);
    expect(summary.frozenBaseMetrics).toEqual(ev!.frozenBaseMetrics);
    await expect(evalRetrievalRun(dir, { task: 'vqa', log: quiet })).rejects.toThrow(/retrieval only/);
  });

  it('full: true fine-tunes every base parameter (no MWA modules), with the same metrics, and eval reloads it', async () => {
    const before = await fs.readFile(path.join(baseDir, 'model.safetensors'));
    const base = await loadMultiway(baseDir);
    const total = base.countParameters();
    const names = [...base.namedParameters()].map(([n]) => n).sort();
    base.dispose();
    const { dir, info, eval: result } = await runTrain(config('mwa-full', ['method.config.full=true', 'train.steps=3', 'train.saveEvery=0']), { log: quiet });
    const ev = result as RetrievalEvalResult;
    expect(info.status).toBe('completed');
    expect(info.trainableParams).toBe(total);
    expect(info.totalParams).toBe(total);
    expect(info.trainablePercent).toBe(100);
    expect(info.medianStepMs).toBeGreaterThan(0);
    expect(info.peakRssMB).toBeGreaterThan(0);
    expect((info.extras as { mwa: { full: boolean; extractors: number } }).mwa).toMatchObject({ full: true, extractors: 0, enhancers: 0, trainable: total });
    // the checkpoint is the whole base, no adapter module
    const adapter = JSON.parse(await fs.readFile(path.join(dir, 'final', 'adaptorkit_adapter.json'), 'utf8')) as { method: string; config: { full: boolean }; tensors: string[] };
    expect(adapter.config.full).toBe(true);
    expect([...adapter.tensors].sort()).toEqual(names);
    // it trained: scores moved off the frozen base's, on the same pairs and keys
    expect(Object.keys(ev.metrics).sort()).toEqual(Object.keys(ev.frozenBaseMetrics).sort());
    const trained = await loadMultiway(baseDir);
    await loadAdapter(path.join(dir, 'final'), trained.unfreeze());
    const frozen = await loadMultiway(baseDir);
    const moved = [...trained.namedParameters()].filter(([n, p]) => {
      const q = [...frozen.namedParameters()].find(([m]) => m === n)![1];
      return tf.tidy(() => tf.max(tf.abs(tf.sub(p.value, q.value))).dataSync()[0]!) > 0;
    });
    expect(moved.length).toBe(names.length); // every tensor, the temperature included, took a step
    trained.dispose();
    frozen.dispose();
    expect(Buffer.compare(before, await fs.readFile(path.join(baseDir, 'model.safetensors')))).toBe(0);
    expect((await evalRetrievalRun(dir, { log: quiet })).metrics).toEqual(ev.metrics);
  });

  it('a resumed retrieval run continues exactly like an uninterrupted one', async () => {
    const whole = await runTrain(config('mwa-whole'), { log: quiet, noEval: true });
    const part = config('mwa-parts');
    expect((await runTrain(part, { log: quiet, noEval: true, stopAfter: 2 })).info.status).toBe('interrupted');
    expect((await runTrain(part, { log: quiet, noEval: true, resume: true })).info.status).toBe('completed');
    const a = await fs.readFile(path.join(whole.dir, 'final', 'adaptorkit_adapter.safetensors'));
    const b = await fs.readFile(path.join(tmp, 'runs', 'mwa-parts', 'final', 'adaptorkit_adapter.safetensors'));
    expect(Buffer.compare(a, b)).toBe(0);
  });

  it('refuses a generative task and a missing base with messages that say what to do', async () => {
    await expect(runTrain(config('mwa-vqa', ['data.task=vqa']), { log: quiet })).rejects.toThrow(/data.task: 'vqa' cannot train method 'mwa'.*set data.task: retrieval/);
    await expect(runTrain(config('mwa-nobase', [`method.config.base=${path.join(tmp, 'nope')}`]), { log: quiet })).rejects.toThrow(/Multiway base config/);
    await expect(loadMultiway(path.join(tmp, 'nope'))).rejects.toThrow(/saveMultiway/);
  });
});
