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
import { writeJsonAtomic } from './fsutil.js';

const program = new Command();
program.name('adaptorkit').description('Fine-tune frozen LLMs with small adaptors; compose adapted models by merging.').version('0.1.0');

const backendOption = () => new Option('--backend <name>', 'tfjs backend').choices(BACKEND_PREFERENCES as unknown as string[]).default('auto');

program
  .command('pretrain')
  .description('Pretrain the small ShapesWorld base LM (text) and vision encoder (contrastive on captions) that the examples freeze.')
  .option('--out <dir>', 'output folder (default: the shipped models/shapesworld of the trainer)')
  .option('--lm-steps <n>', 'LM optimizer steps', (v) => Number(v), 600)
  .option('--vision-steps <n>', 'vision optimizer steps', (v) => Number(v), 400)
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
      await writeJsonAtomic(path.join(out, 'lm', 'vocab.json'), sw.tokenizer.vocabSize);
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
