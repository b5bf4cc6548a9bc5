import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { CausalLM, initBackend, manualSeed, VisionEncoder } from '@adaptorkit/core';
import { ShapesWorld } from '@adaptorkit/data';
import { RunConfigSchema, type RunConfig } from './config.js';
import { applyOverrides, parseWith } from './config-util.js';
import { readRun, renderReport } from './report/index.js';
import type { RunInfo, StepLine } from './run-format.js';
import { saveLM, saveVision } from './shapes/store.js';
import { runTrain } from './train.js';

let tmp = '';
let lmDir = '';
let visionDir = '';

beforeAll(async () => {
  await initBackend('cpu', { log: false });
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'adaptorkit-trainer-'));
  const vocab = new ShapesWorld({ seed: 0 }).tokenizer.vocabSize;
  manualSeed(1);
  const lm = new CausalLM({ vocabSize: vocab, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKVHeads: 2, maxPositionEmbeddings: 256 });
  const vision = new VisionEncoder({ kind: 'clip', imageSize: 32, patchSize: 8, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4 });
  lmDir = path.join(tmp, 'bases', 'lm');
  visionDir = path.join(tmp, 'bases', 'vision');
  await saveLM(lmDir, lm);
  await saveVision(visionDir, vision);
  lm.dispose();
  vision.dispose();
});

function config(name: string, over: string[] = []): RunConfig {
  const raw = {
    name,
    backend: 'cpu',
    outputDir: path.join(tmp, 'runs'),
    base: { lm: lmDir, vision: visionDir },
    method: { name: 'iaa', config: { depths: [1] } },
    data: { task: 'vqa', evalExamples: 8 },
    train: { steps: 6, batchSize: 4, lr: 1e-3, warmupSteps: 1, saveEvery: 0 },
  };
  return parseWith(RunConfigSchema, applyOverrides(raw, over), `${name} (test)`);
}

async function stepLosses(dir: string): Promise<number[]> {
  const text = await fs.readFile(path.join(dir, 'metrics.jsonl'), 'utf8');
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as StepLine)
    .filter((l) => l.kind === 'step')
    .map((l) => l.loss);
}

const quiet = (): void => {};

describe('adaptorkit train', () => {
  it('a resumed run continues exactly like an uninterrupted one', async () => {
    const whole = await runTrain(config('whole'), { log: quiet, noEval: true });
    expect(whole.info.status).toBe('completed');
    const partCfg = config('parts');
    const first = await runTrain(partCfg, { log: quiet, noEval: true, stopAfter: 3 });
    expect(first.info.status).toBe('interrupted');
    expect(first.info.statusDetail).toMatch(/--resume/);
    await expect(runTrain(partCfg, { log: quiet, noEval: true })).rejects.toThrow(/already holds a run: pass --resume/);
    const second = await runTrain(partCfg, { log: quiet, noEval: true, resume: true });
    expect(second.info.status).toBe('completed');
    const a = await stepLosses(whole.dir);
    const b = await stepLosses(second.dir);
    expect(b.length).toBe(6);
    expect(b).toEqual(a);
    const wa = await fs.readFile(path.join(whole.dir, 'final', 'adapter_model.safetensors'));
    const wb = await fs.readFile(path.join(second.dir, 'final', 'adapter_model.safetensors'));
    expect(Buffer.compare(wa, wb)).toBe(0);
  });

  it('train -> eval -> report end to end on ShapesWorld', async () => {
    const r = await runTrain(config('e2e', ['train.steps=3']), { log: quiet });
    expect(r.eval?.metrics.n).toBe(8); // every eval example was generated and scored
    expect(r.eval?.textSkill?.perplexity).toBeGreaterThan(1);
    expect(r.eval?.samples?.length).toBeGreaterThan(0);
    const run = await readRun(r.dir);
    expect(run.info.status).toBe('completed');
    expect(run.info.trainableParams).toBeGreaterThan(0);
    const html = renderReport([run]);
    expect(html).toContain('e2e');
  });

  it('stops on a non-finite loss, marks the run failed and keeps the last checkpoint', async () => {
    const cfg = config('nan', ['train.lr=1e30', 'train.steps=8', 'train.saveEvery=1', 'train.warmupSteps=0']);
    await expect(runTrain(cfg, { log: quiet, noEval: true })).rejects.toThrow(/loss became (NaN|Infinity)/);
    const dir = path.join(cfg.outputDir, 'nan');
    const info = JSON.parse(await fs.readFile(path.join(dir, 'run.json'), 'utf8')) as RunInfo;
    expect(info.status).toBe('failed');
    const ckpts = await fs.readdir(path.join(dir, 'checkpoints'));
    expect(ckpts.some((c) => /^step-\d{6}$/.test(c))).toBe(true);
    expect(ckpts.some((c) => c.includes('.tmp'))).toBe(false);
  });

  it('reports invalid config fields with their path and the allowed values', () => {
    expect(() => config('bad', ['train.steps=-3'])).toThrow(/train\.steps: /);
    expect(() => config('bad', ['data.task=poetry'])).toThrow(/data\.task: .*vqa/);
    expect(() => config('../escape')).toThrow(/name: use letters, digits/);
    expect(() => config('bad', ['backend=gpu'])).toThrow(/backend: /);
  });

  it('refuses an unknown method naming the allowed ones', async () => {
    await expect(runTrain(config('unknown', ['method.name=nope']), { log: quiet })).rejects.toThrow(/method\.name: unknown method 'nope' \(allowed: frozen, full, iaa, mma/);
  });

  it('SIGINT finishes the step, checkpoints and marks the run interrupted (real process)', async () => {
    const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
    const cfgFile = path.join(tmp, 'sigint.yaml');
    const cfg = config('sigint', ['train.steps=400']);
    await fs.writeFile(cfgFile, JSON.stringify(cfg));
    const child = spawn(process.execPath, [cli, 'train', cfgFile, '--no-eval'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const done = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('step 10/400') && !child.killed) child.kill('SIGINT');
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await done;
    expect(code, out).toBe(130);
    const dir = path.join(cfg.outputDir, 'sigint');
    const info = JSON.parse(await fs.readFile(path.join(dir, 'run.json'), 'utf8')) as RunInfo;
    expect(info.status).toBe('interrupted');
    expect(info.step).toBeGreaterThanOrEqual(10);
    expect(await fs.readdir(path.join(dir, 'checkpoints'))).toContain(`step-${String(info.step).padStart(6, '0')}`);
  });
});
