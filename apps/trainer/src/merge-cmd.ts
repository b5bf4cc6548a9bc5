/**
 * `adaptorkit merge <merge.yaml> <out>`: a mergekit-style YAML (merge_method, models with
 * per-model parameters, base_model, global parameters, dtype) through @adaptorkit/damc's streaming
 * merge, tensor by tensor. Model paths are HF folders (model.safetensors or a sharded index) or
 * .safetensors files, relative to the current directory as in mergekit. `out` is a folder (written
 * as an HF folder: model.safetensors, plus the base model's config.json when it has one) or a
 * .safetensors file.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { AdaptorkitError } from '@adaptorkit/core';
import { mergeCheckpoints, parseMergeYaml, type MergeReport } from '@adaptorkit/damc';
import { exists } from './fsutil.js';

export interface MergeRun {
  report: MergeReport;
  /** The safetensors file written. */
  file: string;
  /** config.json copied beside it (folder output), if any. */
  config?: string;
  peakRssMB: number;
}

export async function runMerge(yamlFile: string, out: string): Promise<MergeRun> {
  let text: string;
  try {
    text = await fs.readFile(yamlFile, 'utf8');
  } catch (e) {
    throw new AdaptorkitError('IO_ERROR', `cannot read merge config ${yamlFile}: ${(e as Error).message}`);
  }
  const cfg = parseMergeYaml(text);
  const toFile = out.endsWith('.safetensors');
  const file = toFile ? path.resolve(out) : path.resolve(out, 'model.safetensors');
  if (await exists(file)) throw new AdaptorkitError('INVALID_ARGUMENT', `${file} already exists: choose another output or remove it`);
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 200);
  let report: MergeReport;
  try {
    report = await mergeCheckpoints(cfg, file, { metadata: { adaptorkit_merge_config: path.basename(yamlFile) } });
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  let config: string | undefined;
  if (!toFile) {
    // an HF folder needs the architecture: take config.json from the base model (or the first model)
    const from = cfg.base_model ?? cfg.models[0]?.model;
    const src = from && path.join(from, 'config.json');
    if (src && (await exists(src))) {
      config = path.join(path.dirname(file), 'config.json');
      await fs.copyFile(src, config);
    }
  }
  return { report, file, ...(config ? { config } : {}), peakRssMB: Math.round(peak / 2 ** 20) };
}

/** Register `merge` on the CLI (one call in cli.ts). */
export function registerMergeCommand(program: Command): void {
  program
    .command('merge')
    .description('Merge checkpoints from a mergekit-style YAML (linear, task_arithmetic, ties, dare_linear, dare_ties, slerp), streaming tensor by tensor.')
    .argument('<config>', 'merge YAML (merge_method, models, base_model, parameters, dtype)')
    .argument('<out>', 'output folder (model.safetensors + config.json) or a .safetensors file')
    .action(async (config: string, out: string) => {
      const r = await runMerge(config, out);
      const rep = r.report;
      console.log(
        `merged ${rep.merged} of ${rep.tensors} tensors (${rep.passedThrough.length} passed through) in ${rep.seconds.toFixed(1)} s, ` +
          `peak RSS ${r.peakRssMB} MiB -> ${r.file}${r.config ? ` (+ config.json)` : ''}`,
      );
    });
}
