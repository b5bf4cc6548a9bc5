/**
 * Write a Hugging Face model folder that transformers and loadCausalLM read:
 *   config.json                      the base config with torch_dtype set to the written dtype
 *   model.safetensors                when everything fits in one shard, else
 *   model-0000i-of-0000n.safetensors + model.safetensors.index.json ({ metadata.total_size, weight_map })
 *   tokenizer / generation files     copied from a source folder when present
 * Tensors are produced one shard at a time (`get` is called while that shard is written, and the
 * tensors are disposed right after), so peak memory is about one shard beside the model. Every file
 * is written atomically; config.json and the index are written last.
 */
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError } from '../errors.js';
import { writeFileAtomic, writeTextAtomic } from './atomic.js';
import { DTYPE_SIZE } from './dtypes.js';
import { writeSafetensors } from './safetensors.js';

export type HfDtype = 'float32' | 'float16' | 'bfloat16';
const ST_DTYPE = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' } as const;

/** Files copied beside the weights when the source folder has them. */
export const TOKENIZER_FILES = [
  'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.model', 'vocab.json', 'merges.txt',
  'added_tokens.json', 'chat_template.jinja', 'chat_template.json', 'generation_config.json',
] as const;

export interface HfTensorEntry {
  /** HF tensor name. */
  name: string;
  /** Shape in checkpoint layout (for the shard plan and the index's total_size). */
  shape: readonly number[];
  /** The float32 tensor in checkpoint layout; disposed by the writer. */
  get: () => tf.Tensor;
}

export interface WriteHfFolderOptions {
  /** The config.json object to write (its torch_dtype / dtype are set to `dtype`). */
  config: Record<string, unknown>;
  /** Default float32. */
  dtype?: HfDtype;
  /** Largest shard in bytes (default 5 GB, transformers' default); a bigger tensor gets a shard of its own. */
  maxShardBytes?: number;
  /** Copy tokenizer and generation files from this folder. */
  tokenizerFrom?: string;
  /** Extra __metadata__ strings for every shard. */
  metadata?: Record<string, string>;
}

export interface HfFolderReport {
  files: string[];
  shards: number;
  totalBytes: number;
  copied: string[];
}

/** Parse sizes like 5GB, 500MB, 2GiB, 1000 (bytes). */
export function parseSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)?\s*$/i.exec(s);
  if (!m) throw new AdaptorkitError('INVALID_ARGUMENT', `size ${JSON.stringify(s)} is not a size like 5GB, 500MB or 1000000`);
  const unit = (m[2] ?? 'B').toUpperCase();
  const mult: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30, TIB: 2 ** 40 };
  return Math.floor(Number(m[1]) * mult[unit]!);
}

/** Write `entries` as an HF folder in `dir` (which must not hold model files already). */
export async function writeHfFolder(dir: string, entries: readonly HfTensorEntry[], opts: WriteHfFolderOptions): Promise<HfFolderReport> {
  const dtype = opts.dtype ?? 'float32';
  if (!(dtype in ST_DTYPE)) throw new AdaptorkitError('INVALID_ARGUMENT', `dtype must be float32, float16 or bfloat16, got ${JSON.stringify(dtype)}`);
  const st = ST_DTYPE[dtype];
  const limit = opts.maxShardBytes ?? 5e9;
  if (!(limit > 0)) throw new AdaptorkitError('INVALID_ARGUMENT', `maxShardBytes must be positive, got ${limit}`);
  for (const f of ['config.json', 'model.safetensors', 'model.safetensors.index.json']) {
    if (existsSync(path.join(dir, f))) throw new AdaptorkitError('INVALID_ARGUMENT', `${path.join(dir, f)} already exists: write into a new folder`);
  }
  const names = new Set<string>();
  for (const e of entries) {
    if (names.has(e.name)) throw new AdaptorkitError('INVALID_ARGUMENT', `writeHfFolder: tensor '${e.name}' is given twice`);
    names.add(e.name);
  }
  // greedy shard plan in the given order
  const bytesOf = (e: HfTensorEntry): number => e.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[st];
  const shards: HfTensorEntry[][] = [];
  let cur: HfTensorEntry[] = [];
  let curBytes = 0;
  let total = 0;
  for (const e of entries) {
    const b = bytesOf(e);
    total += b;
    if (cur.length > 0 && curBytes + b > limit) {
      shards.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push(e);
    curBytes += b;
  }
  if (cur.length) shards.push(cur);
  await fsp.mkdir(dir, { recursive: true });
  const n = shards.length;
  const fileOf = (i: number): string => (n === 1 ? 'model.safetensors' : `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`);
  const weightMap: Record<string, string> = {};
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const tensors = new Map<string, tf.Tensor>();
    try {
      for (const e of shards[i]!) {
        const t = e.get();
        tensors.set(e.name, t);
        weightMap[e.name] = fileOf(i);
      }
      await writeSafetensors(path.join(dir, fileOf(i)), tensors, { dtype: st, metadata: { format: 'pt', ...opts.metadata } });
    } finally {
      for (const t of tensors.values()) t.dispose();
    }
    files.push(fileOf(i));
  }
  if (n > 1) {
    const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    await writeTextAtomic(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: sorted }, null, 2) + '\n');
    files.push('model.safetensors.index.json');
  }
  const copied: string[] = [];
  if (opts.tokenizerFrom) {
    for (const f of TOKENIZER_FILES) {
      const src = path.join(opts.tokenizerFrom, f);
      if (!existsSync(src)) continue;
      const bytes = await fsp.readFile(src); // tokenizer.model is binary
      await writeFileAtomic(path.join(dir, f), async (fh) => {
        await fh.write(bytes);
      });
      copied.push(f);
    }
  }
  const config: Record<string, unknown> = { ...opts.config, torch_dtype: dtype };
  if ('dtype' in opts.config) config.dtype = dtype; // newer transformers write `dtype`
  await writeTextAtomic(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  files.push('config.json', ...copied);
  return { files, shards: n, totalBytes: total, copied };
}
