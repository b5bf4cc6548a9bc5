#!/usr/bin/env node
/** The `adaptorkit` command line. */
import * as path from 'node:path';
import { Command } from 'commander';
import { AdaptorkitError, initBackend } from '@adaptorkit/core';
import type { BackendPreference } from '@adaptorkit/core';
import { ShapesWorld } from '@adaptorkit/data';
import { readYaml } from './config-util.js';
import { planTarget, type PlanFlags } from './plan-cmd.js';
import { readRun, writeReport } from './report/index.js';
import { pretrainLM, pretrainVision, saveLM, saveVision, shippedBasesDir } from '@adaptorkit/shapes-bases';
import { METHODS } from './registry.js';
import { finalEval } from './generative.js';
import { writeSummary } from './run/lifecycle.js';
import { loadRunConfig, runTrain } from './train.js';
import { PretrainConfigSchema, TASKS } from './config.js';
import { ask, chat, readImagePixels } from './ask.js';
import { samplingOf, type SamplingFlags } from './config/sampling.js';
import { runDemo, writeIntoReadme } from './demo.js';
import { openRun } from './open-run.js';
import { registerMergeCommand } from './merge-cmd.js';
import { runDoctor } from './doctor.js';
import { registerComposeCommand } from './compose/command.js';
import { registerMergeAdapterCommand } from './merge-adapter-cmd.js';
import { adapterGenerateCommand } from './adapters-generate.js';
import { exitWithParent } from './sweep/child.js';
import { registerSweepCommands } from './sweep/cli.js';
import { sweepRunDirs } from './sweep/run.js';

exitWithParent(); // a run started by a sweep worker stops when its worker is gone
import { evalRetrievalRun, isRetrievalRunFolder } from './retrieval.js';
import { applyOverrides, parseWith } from './config-util.js';

const program = new Command();
program.name('adaptorkit').description('Fine-tune frozen LLMs with small adaptors; compose adapted models by merging.').version('0.1.0');



program
  .command('pretrain')
  .description('Pretrain the small ShapesWorld base LM (text) and vision encoder (contrastive on captions; optionally per-cell scene labels) that the examples freeze.')
  .argument('[config]', 'pretrain config YAML (see examples/pretrain-shapes.yaml); flags override it')
  .option('--out <dir>', 'output folder (default: the shipped packages/shapes-bases/models/shapesworld)')
  .option('--lm-steps <n>', 'LM optimizer steps (default 1200)', (v) => Number(v))
  .option('--vision-steps <n>', 'vision optimizer steps (default 320)', (v) => Number(v))
  .option('--seed <n>', 'seed (default 0)', (v) => Number(v))
  .option('--only <part>', "'lm' or 'vision'")
  .option('--backend <name>', 'tfjs backend (default auto)')
  .action(async (file: string | undefined, o: { out?: string; lmSteps?: number; visionSteps?: number; seed?: number; only?: string; backend?: string }) => {
    const sets: string[] = [];
    if (o.out !== undefined) sets.push(`out=${JSON.stringify(path.resolve(o.out))}`);
    if (o.lmSteps !== undefined) sets.push(`lm.steps=${o.lmSteps}`);
    if (o.visionSteps !== undefined) sets.push(`vision.steps=${o.visionSteps}`);
    if (o.seed !== undefined) sets.push(`seed=${o.seed}`);
    if (o.only !== undefined) sets.push(`only=${o.only}`);
    if (o.backend !== undefined) sets.push(`backend=${o.backend}`);
    const raw = applyOverrides(file ? await readYaml(file) : {}, sets);
    const cfg = parseWith(PretrainConfigSchema, raw, file ?? 'pretrain flags');
    const backend = await initBackend(cfg.backend as BackendPreference);
    const out = path.resolve(file && cfg.out ? path.resolve(path.dirname(file), cfg.out) : (cfg.out ?? shippedBasesDir()));
    const sw = new ShapesWorld({ seed: cfg.seed });
    const log = (l: string): void => console.log(l);
    const command = `adaptorkit pretrain --lm-steps ${cfg.lm.steps} --vision-steps ${cfg.vision.steps} --seed ${cfg.seed}`;
    const meta = { adaptorkit_pretrain: { seed: cfg.seed, backend: backend.name, command, config: cfg } };
    if (cfg.only !== 'vision') {
      const t0 = performance.now();
      const { lm, losses } = await pretrainLM(sw, { ...cfg.lm, seed: cfg.seed, log });
      await saveLM(path.join(out, 'lm'), lm, { ...meta, adaptorkit_final_loss: losses[losses.length - 1], adaptorkit_seconds: Math.round((performance.now() - t0) / 1000) });
      console.log(`saved LM to ${path.join(out, 'lm')}`);
      lm.dispose();
    }
    if (cfg.only !== 'lm') {
      const t0 = performance.now();
      const { vision, losses, retrievalR1, cellShapeAcc } = await pretrainVision(sw, { ...cfg.vision, seed: cfg.seed, log });
      await saveVision(path.join(out, 'vision'), vision, { ...meta, adaptorkit_final_loss: losses[losses.length - 1], adaptorkit_val_r1: retrievalR1, adaptorkit_val_cell_shape_acc: cellShapeAcc, adaptorkit_seconds: Math.round((performance.now() - t0) / 1000) });
      console.log(`saved vision encoder to ${path.join(out, 'vision')} (val image->text R@1 ${(100 * retrievalR1).toFixed(1)}%)`);
      vision.dispose();
    }
  });

program
  .command('plan')
  .description("Parameters (the method's trainable ones for a run) and a memory estimate, no weights loaded: an HF model folder, its config.json, or a run YAML.")
  .argument('<target>', 'HF model folder, config.json, or run YAML (then the method on its bases)')
  .option('--batch <n>', 'batch size (default 1; a run: train.batchSize)', (v) => Number(v))
  .option('--seq <n>', "sequence length (default 2048; a run: data.maxLength or the model's context, at most 2048)", (v) => Number(v))
  .option('--weights-dtype <d>', 'f32 | bf16: how frozen Linear/Embedding weights are held (a run: base.weightsDtype)')
  .option('--recompute <m>', 'none | layers (a run: train.recompute)')
  .option('--mma', "an HF model: a frozen base with LaVIN's MMA adapters in its LM layers (vision tower not counted) instead of full fine-tuning")
  .action(async (target: string, o: { batch?: number; seq?: number; weightsDtype?: string; recompute?: string; mma?: boolean }) => {
    for (const [flag, v] of [['--batch', o.batch], ['--seq', o.seq]] as const) {
      if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new AdaptorkitError('INVALID_ARGUMENT', `${flag} must be a positive integer, got ${v}`);
    }
    if ((o.weightsDtype !== undefined && !['f32', 'bf16'].includes(o.weightsDtype)) || (o.recompute !== undefined && !['none', 'layers'].includes(o.recompute))) {
      throw new AdaptorkitError('INVALID_ARGUMENT', 'plan: --weights-dtype takes f32 or bf16, --recompute none or layers');
    }
    console.log(await planTarget(target, o as PlanFlags));
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
    if (info.status === 'interrupted' && !process.exitCode) process.exitCode = 130; // a stop signal set 128 + its number
  });

program
  .command('eval')
  .description("Score a finished run's adapter on a task's test split, and the text skill of its text path next to the untouched base's.")
  .argument('<run>', 'run folder')
  .option('--task <task>', `task to score (default: the one it trained on): ${TASKS.join(', ')}`)
  .option('--n <n>', 'examples', (v) => Number(v))
  .action(async (dir: string, o: { task?: string; n?: number }) => {
    if (await isRetrievalRunFolder(dir)) return void (await evalRetrievalRun(dir, { task: o.task, n: o.n })); // MWA: R@K, retrieval.ts
    const { cfg, env, info } = await openRun(dir, { task: o.task, evalExamples: o.n, log: (l) => console.log(l) });
    const own = !o.task && !o.n;
    const file = own ? 'eval.json' : `eval-${cfg.data.task}-${cfg.data.evalExamples}.json`;
    const result = await finalEval(env, cfg, dir, info, (l) => console.log(l), file);
    if (own) await writeSummary(dir, info, result);
    console.log(`wrote ${path.join(dir, file)}`);
  });

program
  .command('generate')
  .description("Answer a prompt about an image (or text only) with a run's trained adapter; or continue a prompt on an HF base with LoRA adapters (--base, --adapter).")
  .argument('[run]', 'run folder (or give --adapter, and --base)')
  .option('--prompt <text>', 'the question or instruction')
  .option('--image <file>', 'an image file (PNG/JPEG; resized and padded to the encoder size)')
  .option('--max-new-tokens <n>', 'longest answer', (v) => Number(v), 32)
  .option('--temperature <t>', 'sampling temperature (0 = greedy, the default)', Number)
  .option('--top-k <k>', 'sample from the k most likely tokens', Number)
  .option('--top-p <p>', 'sample from the smallest set of tokens whose probability reaches p', Number)
  .option('--seed <n>', 'sampling seed (same seed, same answer)', Number)
  .option('--base <hf-folder>', 'HF base model folder for --adapter (default: the base the adapter names)')
  .option('--adapter <dir[:weight]>', 'LoRA adapter (PEFT folder or a damc run\'s final/), repeatable; all active, or combined with weights', collect, [])
  .option('--combine <kind>', "how weighted adapters combine: cat (exact weighted sum, default) or linear (PEFT's, same ranks)")
  .option('--prompt-ids <ids>', 'comma-separated token ids instead of --prompt (bases without a tokenizer)')
  .action(async (dir: string | undefined, o: { prompt?: string; image?: string; maxNewTokens: number; base?: string; adapter: string[]; combine?: string; promptIds?: string } & SamplingFlags) => {
    if (o.adapter.length || o.base) return void (await adapterGenerateCommand(o)); // adapters-generate.ts
    if (!dir || o.prompt === undefined) throw new AdaptorkitError('INVALID_ARGUMENT', 'generate: give a run folder and --prompt (or --adapter for LoRA adapters on an HF base)');
    const sampling = samplingOf(o);
    const { env } = await openRun(dir);
    const image = o.image ? await readImagePixels(env, o.image) : undefined;
    console.log(ask(env, o.prompt, image, o.maxNewTokens, sampling));
  });

program
  .command('chat')
  .description("Talk to a run's trained adapter: one conversation through the model's chat template, oldest rounds dropped to fit the context (/image <file> starts one about an image, /text one without, /reset starts over, /quit leaves).")
  .argument('<run>', 'run folder')
  .option('--image <file>', 'start with this image attached')
  .option('--max-new-tokens <n>', 'longest answer', (v) => Number(v), 32)
  .option('--temperature <t>', 'sampling temperature (0 = greedy, the default)', Number)
  .option('--top-k <k>', 'sample from the k most likely tokens', Number)
  .option('--top-p <p>', 'sample from the smallest set of tokens whose probability reaches p', Number)
  .option('--seed <n>', 'sampling seed (turn i uses seed + i)', Number)
  .action(async (dir: string, o: { image?: string; maxNewTokens: number } & SamplingFlags) => {
    const sampling = samplingOf(o);
    const { env } = await openRun(dir);
    const image = o.image ? await readImagePixels(env, o.image) : undefined;
    await chat(env, { input: process.stdin, output: process.stdout, maxNewTokens: o.maxNewTokens, image, sampling });
  });

program
  .command('methods')
  .description('List the methods the trainer can run.')
  .action(() => {
    for (const m of METHODS) console.log(`${m.name.padEnd(10)} ${m.description}`);
  });

program
  .command('doctor')
  .description('Which backend training gets on this machine, why faster ones were skipped, and the commands that get them.')
  .action(async () => void (await runDoctor()));

program
  .command('report')
  .description('Write a self-contained HTML page comparing runs (loss and metric curves, trainable %, step time, memory).')
  .argument('<runs...>', 'run folders (a sweep folder stands for its runs)')
  .option('-o, --out <file>', 'output HTML file', 'report.html')
  .option('--png', 'also write PNG charts beside it (needs Chromium)')
  .action(async (runs: string[], o: { out: string; png?: boolean }) => {
    const dirs = (await Promise.all(runs.map(async (r) => (await sweepRunDirs(r)) ?? [r]))).flat();
    const loaded = await Promise.all(dirs.map((r) => readRun(r)));
    const r = await writeReport(loaded, o.out, { png: o.png ?? false });
    for (const e of r.pageErrors ?? []) console.error(`page error: ${String(e)}`);
    console.log(`wrote ${o.out}`);
  });

program
  .command('demo')
  .description("Reproduce the papers' central claims at ShapesWorld scale: every row a real run, one results table, an HTML report with PNG charts.")
  .option('--spec <file>', 'demo spec', 'examples/demo.yaml')
  .option('--out <dir>', 'output folder (a previous one is kept as <dir>.previous)', 'runs/demo')
  .option('--smoke', "the smoke version the test suite runs (fewer steps; same checks)")
  .option('--full', 'the full demo even on a slow backend (wasm, cpu), where it runs smoke-sized otherwise')
  .option('--only <groups>', 'comma-separated group ids (e.g. iaa,mma)')
  .option('--no-png', 'skip the PNG charts')
  .option('--readme <file>', 'also write the table between <!-- demo:begin --> and <!-- demo:end --> in this README')
  .option('--jobs <n>', 'runs trained at once, each with cores/n native threads (faster on 2+ cores; per-row step times are then their share\'s)', (v) => Number(v), 1)
  .option('--queue <url>', 'run every row as a job on this Redis (redis://host:port/db) for adaptorkit workers; the output folder must be a path every worker sees')
  .action(async (o: { spec: string; out: string; smoke?: boolean; full?: boolean; only?: string; png: boolean; readme?: string; jobs: number; queue?: string }) => {
    if (!Number.isInteger(o.jobs) || o.jobs < 1) throw new AdaptorkitError('INVALID_ARGUMENT', `--jobs must be a positive integer, got ${o.jobs}`);
    const r = await runDemo({ specFile: o.spec, out: o.out, smoke: o.smoke, full: o.full, only: o.only?.split(',').map((s) => s.trim()).filter(Boolean), png: o.png, jobs: o.jobs, ...(o.queue ? { queue: o.queue } : {}) });
    console.log(`\n${r.table}`);
    console.log(`report: ${path.relative(process.cwd(), r.report ?? '')}${r.pngs.length ? ` (+ ${r.pngs.length} PNG charts)` : ''}; table: ${path.relative(process.cwd(), path.join(o.out, 'results.md'))}`);
    if (r.failures.length) {
      console.log(`\nnot reproduced in this run:\n${r.failures.map((f) => `  - ${f}`).join('\n')}`);
    } else {
      console.log('\nevery row beat its baseline by the margin the spec asks for');
    }
    if (o.readme) await writeIntoReadme(o.readme, `${r.table}\n${r.failures.length ? `Not reproduced in this run:\n${r.failures.map((f) => `- ${f}`).join('\n')}\n` : ''}`);
    console.log(`done in ${Math.round(r.seconds)} s`);
  });

registerMergeCommand(program);
registerComposeCommand(program);
registerMergeAdapterCommand(program);
registerSweepCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof AdaptorkitError) {
    console.error(`adaptorkit: ${err.message}`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
});
