/**
 * `adaptorkit merge <merge.yaml> <out>`: a mergekit YAML (merge_method, models or slices with
 * per-model / per-slice parameters and filters, base_model, global parameters, dtype / out_dtype,
 * tokenizer_source) through @adaptorkit/damc's streaming merge, tensor by tensor. Model paths are
 * HF folders (model.safetensors or a sharded index) or .safetensors files, relative to the current
 * directory as in mergekit. `out` is a folder (an HF folder: safetensors sharded above
 * --out-shard-size elements, config.json with the output dtype and layer count, the tokenizer, the
 * config as mergekit_config.yml) or a .safetensors file.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { AdaptorkitError } from '@adaptorkit/core';
import { DEFAULT_OUT_SHARD_SIZE, mergeCheckpoints, mergeToFolder, parseMergeYaml, parseShardSize, type MergeReport } from '@adaptorkit/damc';
import { exists } from './fsutil.js';

export interface MergeRun {
  report: MergeReport;
  /** The files written (a folder's, relative to it), or the one .safetensors file. */
  files: string[];
  /** Output folder or file. */
  out: string;
  peakRssMB: number;
}

export async function runMerge(yamlFile: string, out: string, opts: { outShardSize?: number } = {}): Promise<MergeRun> {
  let text: string;
  try {
    text = await fs.readFile(yamlFile, 'utf8');
  } catch (e) {
    throw new AdaptorkitError('IO_ERROR', `cannot read merge config ${yamlFile}: ${(e as Error).message}`);
  }
  const cfg = parseMergeYaml(text);
  const toFile = out.endsWith('.safetensors');
  const target = path.resolve(out);
  if (toFile && (await exists(target))) throw new AdaptorkitError('INVALID_ARGUMENT', `${target} already exists: choose another output or remove it`);
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 200);
  let report: MergeReport;
  let files: string[];
  try {
    if (toFile) {
      report = await mergeCheckpoints(cfg, target, { metadata: { adaptorkit_merge_config: path.basename(yamlFile) } });
      files = [target];
    } else {
      const r = await mergeToFolder(cfg, target, { outShardSize: opts.outShardSize ?? DEFAULT_OUT_SHARD_SIZE, configText: text });
      report = r;
      files = r.files;
    }
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  return { report, files, out: target, peakRssMB: Math.round(peak / 2 ** 20) };
}

/** Register `merge` on the CLI (one call in cli.ts). */
export function registerMergeCommand(program: Command): void {
  program
    .command('merge')
    .description('Merge checkpoints from a mergekit YAML (linear, task_arithmetic, ties, dare_*, breadcrumbs*, della*, slerp, model_stock, passthrough; models or slices), streaming tensor by tensor.')
    .argument('<config>', 'merge YAML (merge_method, models or slices, base_model, parameters, dtype, tokenizer_source)')
    .argument('<out>', 'output HF folder (must not exist or be empty), or a .safetensors file')
    .option('--out-shard-size <n>', 'elements per output shard, e.g. 5B, 500M (mergekit\'s default 5B)')
    .action(async (config: string, out: string, o: { outShardSize?: string }) => {
      const r = await runMerge(config, out, o.outShardSize !== undefined ? { outShardSize: parseShardSize(o.outShardSize) } : {});
      const rep = r.report;
      console.log(
        `merged ${rep.merged} of ${rep.tensors} tensors (${rep.passedThrough.length} passed through, ${rep.numLayers} layers) in ${rep.seconds.toFixed(1)} s, ` +
          `peak RSS ${r.peakRssMB} MiB -> ${r.out}${out.endsWith('.safetensors') ? '' : ` (${r.files.join(', ')})`}`,
      );
    });
}
