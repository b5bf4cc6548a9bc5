#!/usr/bin/env node
/** The `adaptorkit` command line. */
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { AdaptorkitError, BACKEND_PREFERENCES, initBackend, plan } from '@adaptorkit/core';
import type { BackendPreference } from '@adaptorkit/core';
import { ShapesWorld } from '@adaptorkit/data';
import { readYaml } from './config-util.js';
import { readRun, writeReport } from './report/index.js';
import { pretrainLM, pretrainVision } from './shapes/pretrain.js';
import { saveLM, saveVision, shippedBasesDir } from './shapes/store.js';
import { readJson } from './fsutil.js';
import { METHODS } from './methods/index.js';
import { finalEval, loadRunConfig, runTrain, setup } from './train.js';
import type { RunInfo } from './run-format.js';
import { RunConfigSchema } from './config.js';
import { parseWith } from './config-util.js';

const program = new Command();
program.name('adaptorkit').description('Fine-tune frozen LLMs with small adaptors; compose adapted models by merging.').version('0.1.0');

const backendOption = () => new Option('--backend <name>', 'tfjs backend').choices(BACKEND_PREFERENCES as unknown as string[]).default('auto');

program
  .command('pretrain')
  .description('Pretrain the small ShapesWorld base LM (text) and vision encoder (contrastive on captions) that the examples freeze.')
  .option('--out <dir>', 'output folder (default: the shipped models/shapesworld of the trainer)')
  .option('--lm-steps <n>', 'LM optimizer steps', (v) => Number(v), 1200)
  .option('--vision-steps <n>', 'vision optimizer steps', (v) => Number(v), 320)
  .option('--seed <n>', 'seed', (v) => Number(v), 0)
  .option('--only <part>', "'lm' or 'vision'")
  .addOption(backendOption())
  .action(async (o: { out?: string; lmSteps: number; visionSteps: number; seed: number; only?: string; backend: BackendPreference }) => {
    const backend = await initBackend(o.backend);
    const out = path.resolve(o.out ?? shippedBasesDir());
    const sw = new ShapesWorld({ seed: o.seed });
    const log = (l: string): void => console.log(l);
    const meta = { adaptorkit_pretrain: { seed: o.seed, backend: backend.name, command: `adaptorkit pretrain --lm-steps ${o.lmSteps} --vision-steps ${o.visionSteps} --seed ${o.seed}` } };
    if (o.only !== 'vision') {
      const t0 = performance.now();
      const { lm, losses } = await pretrainLM(sw, { steps: o.lmSteps, batchSize: 16, seqLen: 64, lr: 3e-3, seed: o.seed, log });
      await saveLM(path.join(out, 'lm'), lm, { ...meta, adaptorkit_final_loss: losses[losses.length - 1], adaptorkit_seconds: Math.round((performance.now() - t0) / 1000) });
      console.log(`saved LM to ${path.join(out, 'lm')}`);
      lm.dispose();
    }
    if (o.only !== 'lm') {
      const t0 = performance.now();
      const { vision, losses, retrievalR1 } = await pretrainVision(sw, { steps: o.visionSteps, batchSize: 64, lr: 2e-3, seed: o.seed, log });
      await saveVision(path.join(out, 'vision'), vision, { ...meta, adaptorkit_final_loss: losses[losses.length - 1], adaptorkit_val_r1: retrievalR1, adaptorkit_seconds: Math.round((performance.now() - t0) / 1000) });
      console.log(`saved vision encoder to ${path.join(out, 'vision')} (val image->text R@1 ${(100 * retrievalR1).toFixed(1)}%)`);
      vision.dispose();
    }
  });

program
  .command('plan')
  .description('Trainable / total parameters and a memory estimate from a model config (HF config.json or a run config), no weights allocated.')
  .argument('<config>', 'HF config.json (or YAML)')
  .option('--batch <n>', 'batch size', (v) => Number(v), 1)
  .option('--seq <n>', 'sequence length', (v) => Number(v), 2048)
  .action(async (file: string, o: { batch: number; seq: number }) => {
    const cfg = file.endsWith('.json') ? JSON.parse(await (await import('node:fs/promises')).readFile(file, 'utf8')) : await readYaml(file);
    const p = plan(cfg as never, { batchSize: o.batch, seqLen: o.seq });
    console.log(p.summary);
  });

const collect = (v: string, prev: string[]): string[] => [...prev, v];

program
  .command('train')
  .description('Train a method from a YAML run config; leaves a run folder (config, metrics, checkpoints, adapter, eval).')
  .argument('<config>', 'run config YAML')
  .option('--set <key=value>', 'override a config key (repeatable), e.g. --set train.steps=50', collect, [])
  .option('--resume', 'continue the run from its last checkpoint')
  .option('--no-eval', 'skip the final evaluation')
  .action(async (file: string, o: { set: string[]; resume?: boolean; eval: boolean }) => {
    const cfg = await loadRunConfig(file, o.set);
    const { dir, info } = await runTrain(cfg, { resume: o.resume ?? false, noEval: !o.eval });
    console.log(`run ${info.status}: ${dir}`);
    if (info.status === 'interrupted') process.exitCode = 130;
  });

program
  .command('eval')
  .description("Score a finished run's adapter on its task's test split, and the text skill of its text path.")
  .argument('<run>', 'run folder')
  .option('--task <task>', 'task to score (default: the one it trained on)')
  .option('--n <n>', 'examples', (v) => Number(v))
  .action(async (dir: string, o: { task?: string; n?: number }) => {
    const { loadAdapter } = await import('@adaptorkit/core');
    const raw = (await import('yaml')).parse(await (await import('node:fs/promises')).readFile(path.join(dir, 'config.yaml'), 'utf8'));
    const cfg = parseWith(RunConfigSchema, raw, path.join(dir, 'config.yaml'));
    if (o.task) cfg.data.task = o.task as never;
    if (o.n) cfg.data.evalExamples = o.n;
    const env = await setup(cfg, (l) => console.log(l));
    await loadAdapter(path.join(dir, 'final'), env.system.module);
    const info = await readJson<RunInfo>(path.join(dir, 'run.json'));
    await finalEval(env, cfg, dir, info, (l) => console.log(l));
  });

program
  .command('generate')
  .description("Answer a prompt about an image (or text only) with a run's trained adapter.")
  .argument('<run>', 'run folder')
  .requiredOption('--prompt <text>', 'the question or instruction')
  .option('--image <file>', 'an image file (PNG/JPEG; resized and padded to the encoder size)')
  .option('--max-new-tokens <n>', 'longest answer', (v) => Number(v), 32)
  .action(async (dir: string, o: { prompt: string; image?: string; maxNewTokens: number }) => {
    const { loadAdapter } = await import('@adaptorkit/core');
    const { loadImage, IMAGE_TOKEN } = await import('@adaptorkit/data');
    const raw = (await import('yaml')).parse(await (await import('node:fs/promises')).readFile(path.join(dir, 'config.yaml'), 'utf8'));
    const cfg = parseWith(RunConfigSchema, raw, path.join(dir, 'config.yaml'));
    const env = await setup(cfg, () => {});
    await loadAdapter(path.join(dir, 'final'), env.system.module);
    const size = env.bases.vision.config.imageSize;
    const inputs = [];
    if (o.image) {
      const img = await loadImage(o.image, { size, fit: 'pad', normalize: 'none' });
      inputs.push({ modality: 'image' as const, row: 0, data: img.data });
    }
    const tok = env.sw.tokenizer;
    const ids: number[] = [tok.bosId];
    if (o.image) for (let i = 0; i < (env.system.tokensPerInput.image ?? 0); i++) ids.push(env.bases.placeholderIds.image!);
    ids.push(...tok.encode(o.prompt.replace(IMAGE_TOKEN, '')));
    const batch = { B: 1, T: ids.length, ids: Int32Array.from(ids), labels: new Int32Array(ids.length).fill(-100), lengths: [ids.length], inputs, examples: [] };
    const out = o.image ? env.system.generate(batch, o.maxNewTokens) : env.system.generateText([ids], o.maxNewTokens);
    console.log(tok.decode(out[0] ?? []));
  });

program
  .command('methods')
  .description('List the methods the trainer can run.')
  .action(() => {
    for (const m of METHODS) console.log(`${m.name.padEnd(10)} ${m.description}`);
  });

program
  .command('report')
  .description('Write a self-contained HTML page comparing runs (loss and metric curves, trainable %, step time, memory).')
  .argument('<runs...>', 'run folders')
  .option('-o, --out <file>', 'output HTML file', 'report.html')
  .option('--png', 'also write PNG charts beside it (needs Chromium)')
  .action(async (runs: string[], o: { out: string; png?: boolean }) => {
    const loaded = await Promise.all(runs.map((r) => readRun(r)));
    const r = await writeReport(loaded, o.out, { png: o.png ?? false });
    for (const e of r.pageErrors ?? []) console.error(`page error: ${String(e)}`);
    console.log(`wrote ${o.out}`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof AdaptorkitError) {
    console.error(`adaptorkit: ${err.message}`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
});
