/**
 * A merge written as an HF model folder, as mergekit writes one: safetensors (sharded with an
 * index above `outShardSize` elements, mergekit's default 5B), config.json from the base model (or
 * the first model) with `torch_dtype` set to the output dtype and, for slices, `num_hidden_layers`
 * (and a per-layer `layer_types` list) set to the output's layers, the tokenizer files of the
 * tokenizer donor, and the config itself as mergekit_config.yml. Everything is written into a
 * temp folder beside the output and renamed into place at the end, so a failed merge leaves
 * nothing behind.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { AdaptorkitError, TOKENIZER_FILES } from '@adaptorkit/core';
import type { MergeConfig } from './config.js';
import { shardedFolderSink } from './io.js';
import { mergeSources, openSources, type MergeReport } from './merge.js';
import { referencedModels } from './plan.js';

/** mergekit's default shard size, in elements (parameters). */
export const DEFAULT_OUT_SHARD_SIZE = 5_000_000_000;


export interface FolderMergeReport extends MergeReport {
  dir: string;
  files: string[];
  /** Where config.json and the tokenizer came from (undefined when the donor had none). */
  configFrom?: string;
  tokenizerFrom?: string;
}

/** Parse mergekit-style sizes: 5B, 500M, 10K, or a plain number. */
export function parseShardSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmMbB]?)\s*$/.exec(s);
  if (!m) throw new AdaptorkitError('INVALID_ARGUMENT', `shard size '${s}': expected a number with an optional K, M or B suffix (elements), e.g. 5B`);
  const mult = { '': 1, k: 1e3, m: 1e6, b: 1e9 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'b'];
  const v = Math.floor(Number(m[1]) * mult);
  if (v < 1) throw new AdaptorkitError('INVALID_ARGUMENT', `shard size '${s}' is below one element`);
  return v;
}

async function readJson(file: string): Promise<Record<string, unknown> | undefined> {
  const text = await fsp.readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new AdaptorkitError('BAD_FILE', `${file}: not a JSON object`);
}

const isDir = async (p: string): Promise<boolean> => (await fsp.stat(p).catch(() => undefined))?.isDirectory() ?? false;

/** The output config.json: the donor's, with the output dtype and layer count. */
async function outConfig(cfg: MergeConfig, donor: string, numLayers: number): Promise<Record<string, unknown> | undefined> {
  if (!(await isDir(donor))) return undefined;
  const c = await readJson(path.join(donor, 'config.json'));
  if (!c) return undefined;
  c.torch_dtype = cfg.out_dtype ?? cfg.dtype;
  if (cfg.slices) {
    c.num_hidden_layers = numLayers;
    if (Array.isArray(c.layer_types)) {
      // per-layer entries follow their source layers (e.g. sliding / full attention)
      const types: unknown[] = [];
      for (const s of cfg.slices) {
        const src = s.sources[0]!;
        const sc = (await isDir(src.model)) ? await readJson(path.join(src.model, 'config.json')) : undefined;
        const list = Array.isArray(sc?.layer_types) ? (sc!.layer_types as unknown[]) : (c.layer_types as unknown[]);
        for (let l = src.layer_range[0]; l < src.layer_range[1]; l++) types.push(list[l]);
      }
      c.layer_types = types;
    }
  }
  return c;
}

/** Merge into an HF folder `outDir` (which must not exist, or be empty). */
export async function mergeToFolder(cfg: MergeConfig, outDir: string, opts: { outShardSize?: number; configText?: string } = {}): Promise<FolderMergeReport> {
  const out = path.resolve(outDir);
  const existing = await fsp.readdir(out).catch(() => undefined);
  if (existing && existing.length > 0) throw new AdaptorkitError('INVALID_ARGUMENT', `${out} exists and is not empty: choose another output folder or remove it`);
  const refs = referencedModels(cfg);
  const donor = (cfg.slices?.[0]?.base_model ?? cfg.base_model) ?? refs[0]!;
  const tokRef = cfg.tokenizer_source === undefined || cfg.tokenizer_source === 'base' ? donor : cfg.tokenizer_source;
  if (cfg.tokenizer_source === 'base' && cfg.base_model === undefined) {
    throw new AdaptorkitError('INVALID_CONFIG', 'merge config: tokenizer_source: base needs a base_model');
  }
  const tmp = path.join(path.dirname(out), `.${path.basename(out)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const sources = await openSources(cfg);
  try {
    const sink = shardedFolderSink(tmp, opts.outShardSize ?? DEFAULT_OUT_SHARD_SIZE);
    const report = await mergeSources(cfg, sources, sink, { metadata: { format: 'pt', merge_method: cfg.merge_method } });
    const files = [...sink.files];
    const config = await outConfig(cfg, donor, report.numLayers);
    if (config) {
      await fsp.writeFile(path.join(tmp, 'config.json'), JSON.stringify(config, null, 2) + '\n');
      files.push('config.json');
    }
    let tokenizerFrom: string | undefined;
    if (await isDir(tokRef)) {
      // the donor's vocabulary must be the output's: embedding permutation (mergekit's union / added tokens) is not done here
      const tc = await readJson(path.join(tokRef, 'config.json'));
      const vocab = typeof tc?.vocab_size === 'number' ? tc.vocab_size : undefined;
      const embed = report.embedRows;
      if (cfg.tokenizer_source !== undefined && vocab !== undefined && embed !== undefined && vocab !== embed) {
        throw new AdaptorkitError('UNSUPPORTED', `merge config: tokenizer_source '${cfg.tokenizer_source}': its vocab_size ${vocab} differs from the merged embeddings' ${embed} rows; permuting embeddings to another vocabulary is not supported`);
      }
      for (const f of TOKENIZER_FILES) {
        const from = path.join(tokRef, f);
        if ((await fsp.stat(from).catch(() => undefined))?.isFile()) {
          await fsp.copyFile(from, path.join(tmp, f));
          files.push(f);
          tokenizerFrom = tokRef;
        }
      }
    } else if (cfg.tokenizer_source !== undefined) {
      throw new AdaptorkitError('IO_ERROR', `merge config: tokenizer_source: '${tokRef}' is not a model folder`);
    }
    if (opts.configText !== undefined) {
      await fsp.writeFile(path.join(tmp, 'mergekit_config.yml'), opts.configText);
      files.push('mergekit_config.yml');
    }
    if (existing) await fsp.rmdir(out);
    await fsp.rename(tmp, out);
    return { ...report, dir: out, files, ...(config ? { configFrom: donor } : {}), ...(tokenizerFrom ? { tokenizerFrom } : {}) };
  } catch (e) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    for (const s of sources.values()) await s.close();
  }
}

