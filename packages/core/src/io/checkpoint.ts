/**
 * A checkpoint folder as HF writes it: `model.safetensors`, or shards listed by
 * `model.safetensors.index.json` (`{ "weight_map": { tensor name: shard file } }`).
 * Shards are opened lazily, tensors read one at a time.
 */
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError } from '../errors.js';
import { readRegularText } from './regular-file.js';
import { SafetensorsFile, safeJoin, type TensorInfo } from './safetensors.js';

export class CheckpointReader {
  private readonly open = new Map<string, SafetensorsFile>();

  private constructor(
    readonly dir: string,
    /** tensor name -> shard file name */
    private readonly weightMap: Map<string, string>,
    private readonly infos: Map<string, TensorInfo>,
  ) {}

  /**
   * Open a checkpoint folder (or a single .safetensors file). Every shard's header is read and
   * checked against the index: a tensor the index lists but its shard lacks is an error.
   */
  static async open(dirOrFile: string): Promise<CheckpointReader> {
    let dir = dirOrFile;
    let files: Map<string, string>;
    const stat = await fsp.stat(dirOrFile).catch(() => undefined);
    if (!stat) throw new AdaptorkitError('IO_ERROR', `checkpoint path ${dirOrFile} does not exist`);
    if (stat.isFile()) {
      dir = path.dirname(dirOrFile);
      files = new Map([['*', path.basename(dirOrFile)]]);
    } else {
      const index = path.join(dir, 'model.safetensors.index.json');
      const single = path.join(dir, 'model.safetensors');
      if (existsSync(single)) files = new Map([['*', 'model.safetensors']]);
      else if (existsSync(index)) files = await readIndex(index);
      else {
        const bin = ['pytorch_model.bin', 'model.bin', 'pytorch_model.bin.index.json'].find((f) => existsSync(path.join(dir, f)));
        throw new AdaptorkitError(
          'IO_ERROR',
          `${dir} has neither model.safetensors nor model.safetensors.index.json` +
            (bin ? ` (found ${bin}: convert it to safetensors first, e.g. with transformers' save_pretrained(safe_serialization=True))` : ''),
        );
      }
    }
    const weightMap = new Map<string, string>();
    const infos = new Map<string, TensorInfo>();
    const shards = [...new Set(files.values())];
    const reader = new CheckpointReader(dir, weightMap, infos);
    try {
      for (const shard of shards) {
        const f = await reader.shard(shard);
        for (const [name, info] of f.tensors) {
          const listed = files.get(name);
          if (files.has('*') || listed === shard) {
            if (weightMap.has(name)) throw new AdaptorkitError('BAD_FILE', `${dir}: tensor '${name}' appears in two shards (${weightMap.get(name)} and ${shard})`);
            weightMap.set(name, shard);
            infos.set(name, info);
          }
        }
      }
      for (const [name, shard] of files) {
        if (name !== '*' && !weightMap.has(name)) throw new AdaptorkitError('BAD_FILE', `${dir}: index lists tensor '${name}' in ${shard}, but that shard does not contain it`);
      }
    } catch (e) {
      await reader.close();
      throw e;
    }
    return reader;
  }

  private async shard(file: string): Promise<SafetensorsFile> {
    let f = this.open.get(file);
    if (!f) {
      f = await SafetensorsFile.open(safeJoin(this.dir, file, 'checkpoint shard'));
      this.open.set(file, f);
    }
    return f;
  }

  names(): string[] {
    return [...this.infos.keys()];
  }

  has(name: string): boolean {
    return this.infos.has(name);
  }

  info(name: string): TensorInfo {
    const i = this.infos.get(name);
    if (!i) throw new AdaptorkitError('MISSING_TENSOR', `checkpoint ${this.dir} has no tensor '${name}'`);
    return i;
  }

  /** Read one tensor (float32 / int32 / bool); the caller owns it. */
  async read(name: string): Promise<tf.Tensor> {
    const shard = this.weightMap.get(name);
    if (shard === undefined) throw new AdaptorkitError('MISSING_TENSOR', `checkpoint ${this.dir} has no tensor '${name}'`);
    return (await this.shard(shard)).read(name);
  }

  /** One tensor's raw little-endian bytes, exactly as stored (e.g. bf16 bits kept as they are). */
  async readBytes(name: string): Promise<Uint8Array> {
    const shard = this.weightMap.get(name);
    if (shard === undefined) throw new AdaptorkitError('MISSING_TENSOR', `checkpoint ${this.dir} has no tensor '${name}'`);
    return (await this.shard(shard)).readBytes(name);
  }

  async close(): Promise<void> {
    for (const f of this.open.values()) await f.close();
    this.open.clear();
  }
}

async function readIndex(file: string): Promise<Map<string, string>> {
  let json: unknown;
  try {
    json = JSON.parse(await readRegularText(file, 'checkpoint index'));
  } catch (e) {
    if (e instanceof AdaptorkitError) throw e;
    throw new AdaptorkitError('BAD_FILE', `${file} is not valid JSON: ${(e as Error).message}`);
  }
  const wm = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) throw new AdaptorkitError('BAD_FILE', `${file}: missing "weight_map" object`);
  const out = new Map<string, string>();
  for (const [name, shard] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof shard !== 'string') throw new AdaptorkitError('BAD_FILE', `${file}: weight_map["${name}"] must be a file name`);
    out.set(name, shard);
  }
  if (out.size === 0) throw new AdaptorkitError('BAD_FILE', `${file}: weight_map is empty`);
  return out;
}
