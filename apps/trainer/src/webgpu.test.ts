/**
 * Every method's training step on the webgpu backend (Mesa's CPU renderer, 'webgpu:cpu') against the
 * cpu backend: two steps through runTrain, the step losses and the saved adapter compared. Kernels a
 * method needs and webgpu lacks fail here. Skipped, with a note, where WebGPU cannot start.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADAPTER_WEIGHTS, manualSeed, readSafetensors, tf } from '@adaptorkit/core';
import { compareClose, webgpuCpuSkipReason } from '@adaptorkit/core/testing';
import { ShapesWorld } from '@adaptorkit/data';
import { MultiwayTransformer, saveMultiway, shapesWorldMultiwayShape } from '@adaptorkit/shapes-bases';
import { applyOverrides, parseWith } from './config-util.js';
import { RunConfigSchema } from './config.js';
import type { StepLine } from './run-format.js';
import { writeTinyBases } from './test-bases.js';
import { runTrain } from './train.js';

const skip = await webgpuCpuSkipReason('webgpu method tests');
let tmp = '';
let lmDir = '';
let visionDir = '';
let multiwayDir = '';

beforeAll(async () => {
  if (skip !== undefined) return;
  ({ tmp, lmDir, visionDir } = await writeTinyBases('adaptorkit-webgpu-'));
  manualSeed(3);
  const mw = new MultiwayTransformer({ ...shapesWorldMultiwayShape(new ShapesWorld({ seed: 0 })), dim: 16, numLayers: 2, numHeads: 2, maxTextLen: 48, patchSize: 8 });
  multiwayDir = path.join(tmp, 'multiway');
  await saveMultiway(multiwayDir, mw);
  mw.dispose();
});

afterAll(async () => {
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

const METHOD_CASES: [string, Record<string, unknown>, string][] = [
  ['frozen', {}, 'vqa'],
  ['full', {}, 'vqa'],
  ['iaa', { depths: [1] }, 'vqa'],
  ['mma', {}, 'instruct'],
  ['damc-naive', { lora: { rank: 4, alpha: 8 }, boundaryTokens: 2 }, 'vqa'],
  ['damc-decoupled', { lora: { rank: 4, alpha: 8 }, boundaryTokens: 2 }, 'vqa'],
  ['mwa', { extractor: { bottleneck: 4 } }, 'retrieval'],
];

async function trainTwoSteps(method: string, methodCfg: Record<string, unknown>, task: string, backend: string) {
  const retrieval = task === 'retrieval';
  const raw = {
    name: `${method}-${backend.replace(':', '-')}`,
    backend,
    outputDir: path.join(tmp, 'runs'),
    ...(retrieval ? {} : { base: { lm: lmDir, vision: visionDir } }),
    method: { name: method, config: retrieval ? { base: multiwayDir, ...methodCfg } : methodCfg },
    data: { task, evalExamples: 8, ...(retrieval ? {} : { textEvalExamples: 8 }) },
    train: { steps: 2, batchSize: retrieval ? 8 : 2, lr: 1e-2, warmupSteps: 0, saveEvery: 0 },
  };
  const cfg = parseWith(RunConfigSchema, applyOverrides(raw, []), `${method} on ${backend} (test)`);
  const tensors0 = tf.memory().numTensors;
  const { dir, info } = await runTrain(cfg, { log: () => {}, noEval: true });
  expect(info.status).toBe('completed');
  const tensorsLeft = tf.memory().numTensors - tensors0;
  const losses = (await fs.readFile(path.join(dir, 'metrics.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as StepLine)
    .filter((l) => l.kind === 'step')
    .map((l) => l.loss);
  const { tensors } = await readSafetensors(path.join(dir, 'final', ADAPTER_WEIGHTS));
  const weights = new Map<string, Float32Array>();
  for (const [name, t] of tensors) {
    weights.set(name, (t.dataSync() as Float32Array).slice());
    t.dispose();
  }
  return { losses, weights, tensorsLeft, backend: info.backend };
}

describe.skipIf(skip !== undefined)('every method trains on webgpu (webgpu:cpu) like on cpu', () => {
  // Tolerance 1e-4 (abs and rel) on the two step losses and every saved adapter tensor after two
  // AdamW steps at lr 1e-2: float32 on both backends, other summation orders and WGSL exp/rsqrt.
  for (const [method, methodCfg, task] of METHOD_CASES) {
    it(`${method}: one training step and the next loss match cpu within 1e-4; no tensor left behind`, async () => {
      const cpu = await trainTwoSteps(method, methodCfg, task, 'cpu');
      const gpu = await trainTwoSteps(method, methodCfg, task, 'webgpu:cpu');
      expect(gpu.backend.name).toBe('webgpu');
      expect(gpu.backend.detail).toMatch(/^adapter .+ via Dawn opengl/);
      expect(gpu.losses.length).toBe(2);
      const rl = compareClose(gpu.losses, cpu.losses, { atol: 1e-4, rtol: 1e-4 });
      expect(rl.ok, `losses ${gpu.losses} vs ${cpu.losses}: ${rl.message}`).toBe(true);
      expect([...gpu.weights.keys()]).toEqual([...cpu.weights.keys()]);
      for (const [name, w] of gpu.weights) {
        const r = compareClose(w, cpu.weights.get(name)!, { atol: 1e-4, rtol: 1e-4 });
        expect(r.ok, `${name}: ${r.message}`).toBe(true);
      }
      expect(gpu.tensorsLeft).toBe(cpu.tensorsLeft);
    });
  }
});
