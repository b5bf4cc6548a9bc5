/**
 * The streaming interfaces the merge runs over, and their safetensors implementations.
 *
 * A TensorSource lists names and shapes from headers alone and reads one tensor at a time; a
 * TensorSink is told every output name, shape and dtype first (a safetensors header must precede
 * the data), then receives tensors one by one. So a merge holds only the tensors of the name it is
 * working on, whatever the model size.
 *
 * Reading goes through core's SafetensorsFile (lazy, per tensor, hostile-file checks). Writing is
 * here because core's writeSafetensors takes every tensor at once, which a streaming merge cannot.
 */
import { promises as fsp, existsSync } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { AdaptorkitError, SafetensorsFile, f32ToBf16, f32ToF16 } from '@adaptorkit/core';

export type StoredDtype = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64' | 'I16' | 'I8' | 'U8' | 'BOOL' | 'F64';
export type OutDtype = 'F32' | 'F16' | 'BF16' | 'I32' | 'BOOL';

export interface TensorMeta {
  shape: readonly number[];
  /** Float tensors are merged; integer/bool tensors must agree and are copied. */
  isFloat: boolean;
}

export interface TensorSource {
  /** For messages: the checkpoint path or a label. */
  readonly label: string;
  names(): string[];
  meta(name: string): TensorMeta;
  /** Floats decode to Float32Array, integers to Int32Array, bools to Uint8Array. The caller owns the array. */
  read(name: string): Promise<Float32Array | Int32Array | Uint8Array>;
  close(): Promise<void>;
}

export interface SinkEntry {
  name: string;
  shape: readonly number[];
  dtype: OutDtype;
}

export interface TensorSink {
  /** Every output tensor, in the order they will be written. */
  begin(entries: readonly SinkEntry[], metadata?: Record<string, string>): Promise<void>;
  write(name: string, data: Float32Array | Int32Array | Uint8Array): Promise<void>;
  /** Finish (for files: fsync and rename into place). */
  end(): Promise<void>;
  /** Give up (for files: remove the temp file). */
  abort(): Promise<void>;
}

// ---------------------------------------------------------------- in memory (tests, small models)

export interface MemoryTensor {
  shape: readonly number[];
  data: Float32Array | Int32Array | Uint8Array;
}

/** A source over tensors already in memory; read() returns copies so a merge may overwrite them. */
export function memorySource(label: string, tensors: Map<string, MemoryTensor>): TensorSource {
  return {
    label,
    names: () => [...tensors.keys()],
    meta: (name) => {
      const t = tensors.get(name);
      if (!t) throw new AdaptorkitError('MISSING_TENSOR', `${label}: no tensor '${name}'`);
      return { shape: t.shape, isFloat: t.data instanceof Float32Array };
    },
    read: async (name) => {
      const t = tensors.get(name);
      if (!t) throw new AdaptorkitError('MISSING_TENSOR', `${label}: no tensor '${name}'`);
      return t.data.slice();
    },
    close: async () => undefined,
  };
}

/** A sink that keeps what it is given (for tests). */
export function memorySink(): TensorSink & { tensors: Map<string, MemoryTensor>; entries: SinkEntry[] } {
  const tensors = new Map<string, MemoryTensor>();
  const entries: SinkEntry[] = [];
  return {
    tensors,
    entries,
    begin: async (e) => {
      entries.push(...e);
    },
    write: async (name, data) => {
      const e = entries.find((x) => x.name === name);
      if (!e) throw new AdaptorkitError('INVALID_ARGUMENT', `memorySink: '${name}' was not announced in begin()`);
      tensors.set(name, { shape: e.shape, data });
    },
    end: async () => undefined,
    abort: async () => undefined,
  };
}

// ---------------------------------------------------------------- safetensors

/** Elements converted to f16/bf16 per write (8 MiB of output). */
const HALF_CHUNK = 1 << 22;

const SIZE: Record<StoredDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const FLOATS = new Set<string>(['F64', 'F32', 'F16', 'BF16']);

function badFile(file: string, what: string): never {
  throw new AdaptorkitError('BAD_FILE', `${file}: ${what}`);
}

/**
 * Open a checkpoint lazily: a .safetensors file, a folder with model.safetensors, or a folder with
 * model.safetensors.index.json (shards). Headers are read and checked by core's SafetensorsFile;
 * tensors are read one at a time as typed arrays (never through a tf backend).
 */
export async function openCheckpoint(p: string): Promise<TensorSource> {
  const st = await fsp.stat(p).catch(() => undefined);
  if (!st) throw new AdaptorkitError('IO_ERROR', `checkpoint ${p} does not exist`);
  let files: string[];
  if (st.isFile()) files = [p];
  else if (existsSync(path.join(p, 'model.safetensors'))) files = [path.join(p, 'model.safetensors')];
  else if (existsSync(path.join(p, 'model.safetensors.index.json'))) {
    const idxFile = path.join(p, 'model.safetensors.index.json');
    let idx: { weight_map?: Record<string, string> };
    try {
      idx = JSON.parse(await fsp.readFile(idxFile, 'utf8')) as typeof idx;
    } catch (e) {
      badFile(idxFile, `not valid JSON (${(e as Error).message})`);
    }
    if (!idx.weight_map || typeof idx.weight_map !== 'object') badFile(idxFile, 'no weight_map');
    files = [...new Set(Object.values(idx.weight_map))].map((f) => {
      if (typeof f !== 'string' || f !== path.basename(f)) badFile(idxFile, `shard '${String(f)}' must be a file name inside the folder`);
      return path.join(p, f);
    });
  } else {
    throw new AdaptorkitError('IO_ERROR', `${p} has neither model.safetensors nor model.safetensors.index.json`);
  }
  const shards: SafetensorsFile[] = [];
  const where = new Map<string, SafetensorsFile>();
  try {
    for (const f of files) {
      const sf = await SafetensorsFile.open(f);
      shards.push(sf);
      for (const name of sf.names()) {
        if (where.has(name)) badFile(p, `tensor '${name}' appears in two shards`);
        where.set(name, sf);
      }
    }
  } catch (e) {
    for (const sf of shards) await sf.close();
    throw e;
  }
  // a second handle per shard, for reading F32/BF16 tensors straight into their Float32Array
  const handles = new Map<SafetensorsFile, fsp.FileHandle>();
  try {
    for (const [i, sf] of shards.entries()) handles.set(sf, await fsp.open(files[i]!, 'r'));
  } catch (e) {
    for (const h of handles.values()) await h.close();
    for (const sf of shards) await sf.close();
    throw e;
  }
  const get = (name: string): SafetensorsFile => {
    const sf = where.get(name);
    if (!sf) throw new AdaptorkitError('MISSING_TENSOR', `${p}: no tensor '${name}'`);
    return sf;
  };
  return {
    label: p,
    names: () => [...where.keys()],
    meta: (name) => {
      const info = get(name).info(name);
      return { shape: info.shape, isFloat: FLOATS.has(info.dtype) };
    },
    read: async (name) => {
      const sf = get(name);
      const info = sf.info(name);
      if (info.dtype !== 'BF16' && info.dtype !== 'F32') return sf.readArray(name);
      return readFloatInPlace(handles.get(sf)!, info.begin, info.end, info.shape, info.dtype, `${p}: tensor '${name}'`);
    },
    close: async () => {
      for (const h of handles.values()) await h.close();
      for (const sf of shards) await sf.close();
    },
  };
}

/**
 * Read an F32 or BF16 tensor into a new Float32Array with no second buffer: the file bytes go into
 * the front of the output, and BF16 is widened in place from the back (u32[i] = u16[i] << 16 only
 * overwrites u16 entries at index >= i, already consumed when walking down).
 */
async function readFloatInPlace(fh: fsp.FileHandle, begin: number, end: number, shape: readonly number[], dtype: 'F32' | 'BF16', what: string): Promise<Float32Array> {
  const n = shape.reduce((a, b) => a * b, 1);
  const width = dtype === 'F32' ? 4 : 2;
  if (end - begin !== n * width) badFile(what, `holds ${end - begin} bytes, expected ${n * width} for [${shape.join(', ')}] ${dtype}`);
  const out = new Float32Array(n);
  const bytes = new Uint8Array(out.buffer, 0, n * width);
  let off = 0;
  while (off < bytes.byteLength) {
    const { bytesRead } = await fh.read(bytes, off, Math.min(bytes.byteLength - off, 1 << 30), begin + off);
    if (bytesRead === 0) badFile(what, `unexpected end of file at byte ${begin + off}`);
    off += bytesRead;
  }
  if (dtype === 'BF16') {
    const u16 = new Uint16Array(out.buffer, 0, n);
    const u32 = new Uint32Array(out.buffer);
    for (let i = n - 1; i >= 0; i--) u32[i] = u16[i]! << 16;
  }
  return out;
}

/**
 * A safetensors file written tensor by tensor: the header is written from begin()'s entries, data
 * follows in that order; everything goes to a temp file in the same folder, renamed on end().
 */
export function safetensorsSink(file: string): TensorSink {
  let fh: fsp.FileHandle | undefined;
  let tmp = '';
  let order: SinkEntry[] = [];
  let next = 0;
  return {
    async begin(entries, metadata) {
      order = [...entries];
      const header: Record<string, unknown> = {};
      if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
      let off = 0;
      for (const e of order) {
        const bytes = e.shape.reduce((a, b) => a * b, 1) * SIZE[e.dtype];
        header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, off + bytes] };
        off += bytes;
      }
      let text = JSON.stringify(header);
      text += ' '.repeat((8 - (Buffer.byteLength(text) % 8)) % 8);
      const hb = Buffer.from(text, 'utf8');
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(hb.length));
      await fsp.mkdir(path.dirname(file), { recursive: true });
      tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
      fh = await fsp.open(tmp, 'wx');
      await fh.write(len);
      await fh.write(hb);
    },
    async write(name, data) {
      const e = order[next];
      if (!fh || !e) throw new AdaptorkitError('INVALID_ARGUMENT', `safetensorsSink: write('${name}') before begin() or after the last tensor`);
      if (e.name !== name) throw new AdaptorkitError('INVALID_ARGUMENT', `safetensorsSink: expected '${e.name}' next, got '${name}'`);
      next++;
      if (e.dtype === 'F32' || e.dtype === 'I32') await fh.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      else if (e.dtype === 'BOOL') await fh.write(Buffer.from(data as Uint8Array));
      else {
        // half precision in chunks, so no second tensor-sized buffer is held
        const f = data as Float32Array;
        for (let i = 0; i < f.length; i += HALF_CHUNK) {
          const part = f.subarray(i, Math.min(f.length, i + HALF_CHUNK));
          const h = e.dtype === 'BF16' ? f32ToBf16(part) : f32ToF16(part);
          await fh.write(Buffer.from(h.buffer, h.byteOffset, h.byteLength));
        }
      }
    },
    async end() {
      if (!fh) throw new AdaptorkitError('INVALID_ARGUMENT', 'safetensorsSink: end() before begin()');
      if (next !== order.length) throw new AdaptorkitError('INVALID_ARGUMENT', `safetensorsSink: ${order.length - next} tensor(s) announced but not written`);
      await fh.sync();
      await fh.close();
      fh = undefined;
      await fsp.rename(tmp, file);
    },
    async abort() {
      await fh?.close().catch(() => undefined);
      fh = undefined;
      if (tmp) await fsp.rm(tmp, { force: true });
    },
  };
}

// ---------------------------------------------------------------- sharded HF folder

/** HF's shard file name: model-00001-of-00003.safetensors. */
export function shardFileName(i: number, n: number): string {
  return `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

/**
 * Tensors into a folder as HF writes them: one `model.safetensors`, or shards of at most
 * `maxShardElements` elements each (a tensor larger than that gets a shard of its own) with
 * `model.safetensors.index.json` (metadata.total_size in bytes, weight_map). Shards are cut in
 * announced order; each shard file is atomic (temp + rename), the index is written last.
 */
export function shardedFolderSink(dir: string, maxShardElements: number): TensorSink & { files: string[] } {
  if (!(maxShardElements >= 1)) throw new AdaptorkitError('INVALID_ARGUMENT', `shard size must be at least 1 element, got ${maxShardElements}`);
  let groups: SinkEntry[][] = [];
  let current: TensorSink | undefined;
  let g = 0;
  let inGroup = 0;
  let meta: Record<string, string> | undefined;
  const files: string[] = [];
  const fileOf = (i: number): string => (groups.length === 1 ? 'model.safetensors' : shardFileName(i, groups.length));
  return {
    files,
    async begin(entries, metadata) {
      meta = metadata;
      groups = [];
      let size = 0;
      for (const e of entries) {
        const n = e.shape.reduce((a, b) => a * b, 1);
        const last = groups[groups.length - 1];
        if (!last || (size + n > maxShardElements && last.length > 0)) {
          groups.push([e]);
          size = n;
        } else {
          last.push(e);
          size += n;
        }
      }
      if (groups.length === 0) groups.push([]);
      await fsp.mkdir(dir, { recursive: true });
      g = 0;
      inGroup = 0;
      current = safetensorsSink(path.join(dir, fileOf(0)));
      await current.begin(groups[0]!, meta);
    },
    async write(name, data) {
      if (!current) throw new AdaptorkitError('INVALID_ARGUMENT', `shardedFolderSink: write('${name}') before begin()`);
      if (inGroup === groups[g]!.length) {
        await current.end();
        files.push(fileOf(g));
        g++;
        inGroup = 0;
        if (g >= groups.length) throw new AdaptorkitError('INVALID_ARGUMENT', `shardedFolderSink: '${name}' was not announced`);
        current = safetensorsSink(path.join(dir, fileOf(g)));
        await current.begin(groups[g]!, meta);
      }
      await current.write(name, data);
      inGroup++;
    },
    async end() {
      if (!current) throw new AdaptorkitError('INVALID_ARGUMENT', 'shardedFolderSink: end() before begin()');
      if (g !== groups.length - 1 || inGroup !== groups[g]!.length) throw new AdaptorkitError('INVALID_ARGUMENT', 'shardedFolderSink: announced tensors were not all written');
      await current.end();
      files.push(fileOf(g));
      current = undefined;
      if (groups.length > 1) {
        const weightMap: Record<string, string> = {};
        let total = 0;
        groups.forEach((grp, i) => {
          for (const e of grp) {
            weightMap[e.name] = fileOf(i);
            total += e.shape.reduce((a, b) => a * b, 1) * SIZE[e.dtype];
          }
        });
        const idx = path.join(dir, 'model.safetensors.index.json');
        const tmp = `${idx}.tmp-${process.pid}`;
        await fsp.writeFile(tmp, JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + '\n');
        await fsp.rename(tmp, idx);
        files.push('model.safetensors.index.json');
      }
    },
    async abort() {
      await current?.abort();
      current = undefined;
    },
  };
}
