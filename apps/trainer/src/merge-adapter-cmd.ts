/**
 * `adaptorkit merge-adapter <adapter> --base <hf-folder> --out <hf-folder>`: fold a LoRA adapter
 * (PEFT, or an adaptorkit damc run's delta) into its base and write an HF folder that
 * transformers and loadCausalLM load: config.json with the written torch_dtype, tokenizer files
 * copied from the base, safetensors sharded with an index above --max-shard-size.
 */
import * as path from 'node:path';
import type { Command } from 'commander';
import { AdaptorkitError, checkpointSource, initBackend, loadCausalLM, loadPeftAdapter, mergeAdaptersToFolder, parseSize, type HfDtype, type HfFolderReport } from '@adaptorkit/core';
import { resolveLoraAdapter } from './lora-adapters.js';

export interface MergeAdapterOptions {
  /** Base HF folder (default: the base the adapter names, when it exists). */
  base?: string;
  out: string;
  /** Default: the base's torch_dtype when it is float32 / float16 / bfloat16, else float32. */
  dtype?: HfDtype;
  /** Bytes (default 5 GB). */
  maxShardBytes?: number;
  /** DAMC delta to merge (default text, or shared for naive runs). */
  delta?: string;
}

export interface MergeAdapterResult extends HfFolderReport {
  base: string;
  dtype: HfDtype;
  modules: number;
  notes: string[];
}

const DTYPES: readonly HfDtype[] = ['float32', 'float16', 'bfloat16'];

export async function runMergeAdapter(adapter: string, o: MergeAdapterOptions): Promise<MergeAdapterResult> {
  const r = await resolveLoraAdapter(adapter, { delta: o.delta });
  try {
    const base = o.base ?? r.base;
    if (!base) throw new AdaptorkitError('INVALID_ARGUMENT', `merge-adapter: give --base <hf-folder> (the adapter names no base folder that exists here)`);
    const lm = await loadCausalLM(base);
    try {
      const loaded = await loadPeftAdapter(lm, r.peftDir);
      const td = checkpointSource(lm)?.hfConfig.torch_dtype;
      const dtype = o.dtype ?? (DTYPES.includes(td as HfDtype) ? (td as HfDtype) : 'float32');
      const rep = await mergeAdaptersToFolder(lm, o.out, { dtype, ...(o.maxShardBytes ? { maxShardBytes: o.maxShardBytes } : {}), metadata: { adaptorkit_merged_adapter: path.basename(path.resolve(adapter)) } });
      return { ...rep, base, dtype, modules: loaded.modules.length + loaded.savedModules.length, notes: r.note ? [r.note] : [] };
    } finally {
      lm.dispose();
    }
  } finally {
    r.cleanup();
  }
}

/** Register `merge-adapter` on the CLI (one call in cli.ts). */
export function registerMergeAdapterCommand(program: Command): void {
  program
    .command('merge-adapter')
    .description('Merge a LoRA adapter (PEFT, or a damc run\'s final/) into its base and write an HF folder (config.json, tokenizer, sharded safetensors).')
    .argument('<adapter>', 'PEFT adapter folder (adapter_config.json) or an adaptorkit damc adapter folder (a run\'s final/)')
    .option('--base <hf-folder>', 'base model folder (default: the one the adapter names)')
    .requiredOption('--out <hf-folder>', 'output folder (must not hold a model yet)')
    .option('--dtype <dtype>', `written dtype: ${DTYPES.join(', ')} (default: the base's torch_dtype)`)
    .option('--max-shard-size <size>', 'largest safetensors shard, e.g. 5GB, 500MB (an index is written above it)', '5GB')
    .option('--delta <name>', 'which delta of a damc adapter (default text; shared for damc-naive)')
    .action(async (adapter: string, o: { base?: string; out: string; dtype?: string; maxShardSize: string; delta?: string }) => {
      if (o.dtype !== undefined && !DTYPES.includes(o.dtype as HfDtype)) throw new AdaptorkitError('INVALID_ARGUMENT', `--dtype must be one of ${DTYPES.join(', ')}, got ${o.dtype}`);
      await initBackend('auto', { log: false });
      const r = await runMergeAdapter(adapter, {
        out: o.out,
        maxShardBytes: parseSize(o.maxShardSize),
        ...(o.base ? { base: o.base } : {}),
        ...(o.dtype ? { dtype: o.dtype as HfDtype } : {}),
        ...(o.delta ? { delta: o.delta } : {}),
      });
      for (const n of r.notes) console.log(`note: ${n}`);
      console.log(`merged ${r.modules} adapted modules into ${r.base} -> ${o.out} (${r.dtype}, ${r.shards} shard${r.shards > 1 ? 's + index' : ''}${r.copied.length ? `, copied ${r.copied.join(', ')}` : ''})`);
    });
}
