/**
 * The streaming interfaces the merge runs over, and their safetensors implementations.
 *
 * A TensorSource lists names and shapes from headers alone and reads one tensor at a time; a
 * TensorSink is told every output name, shape and dtype first (a safetensors header must precede
 * the data), then receives tensors one by one. So a merge holds only the tensors of the name it is
 * working on, whatever the model size.
 *
 * The file reader/writer here is deliberately small: core's io (SafetensorsFile, CheckpointReader,
 * writeSafetensors) is not exported from @adaptorkit/core yet, and its writer takes every tensor
 * at once, which a streaming merge cannot use. When core exports a lazy reader, `openCheckpoint`
 * can wrap it instead.
 */
import { promises as fsp, existsSync } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { AdaptorkitError } from '@adaptorkit/core';

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

const SIZE: Record<StoredDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const FLOATS = new Set<StoredDtype>(['F64', 'F32', 'F16', 'BF16']);

interface Entry {
  file: string;
  dtype: StoredDtype;
  shape: number[];
  begin: number;
  end: number;
}

function badFile(file: string, what: string): never {
  throw new AdaptorkitError('BAD_FILE', `${file}: ${what}`);
}

async function readHeader(file: string, fh: fsp.FileHandle): Promise<Map<string, Entry>> {
  const size = (await fh.stat()).size;
  if (size < 8) badFile(file, `file is ${size} bytes, shorter than the 8-byte header length`);
  const lenBuf = Buffer.alloc(8);
  await fh.read(lenBuf, 0, 8, 0);
  const n = Number(lenBuf.readBigUInt64LE(0));
  if (n > 100_000_000 || n > size - 8) badFile(file, `header length ${n} is invalid for a ${size}-byte file`);
  const hb = Buffer.alloc(n);
  await fh.read(hb, 0, n, 8);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(hb.toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    badFile(file, `header is not JSON (${(e as Error).message})`);
  }
  const dataStart = 8 + n;
  const out = new Map<string, Entry>();
  for (const [name, v] of Object.entries(json)) {
    if (name === '__metadata__') continue;
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e.dtype !== 'string' || !(e.dtype in SIZE)) badFile(file, `tensor '${name}': unsupported dtype ${JSON.stringify(e.dtype)}`);
    const dtype = e.dtype as StoredDtype;
    const shape = e.shape as number[];
    const offs = e.data_offsets as [number, number];
    if (!Array.isArray(shape) || !Array.isArray(offs) || offs.length !== 2) badFile(file, `tensor '${name}': bad shape/data_offsets`);
    const count = shape.reduce((a, b) => a * b, 1);
    if (offs[1] - offs[0] !== count * SIZE[dtype] || dataStart + offs[1] > size) {
      badFile(file, `tensor '${name}': data_offsets [${offs.join(', ')}] do not match shape [${shape.join(', ')}] x ${dtype} inside the file`);
    }
    out.set(name, { file, dtype, shape, begin: dataStart + offs[0], end: dataStart + offs[1] });
  }
  return out;
}

let halfTable: Float32Array | undefined;
function f16Table(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const f = h & 0x3ff;
    t[h] = e === 0 ? s * f * 2 ** -24 : e === 31 ? (f ? NaN : s * Infinity) : s * (1 + f / 1024) * 2 ** (e - 15);
  }
  halfTable = t;
  return t;
}

function decode(buf: Buffer, dtype: StoredDtype, n: number): Float32Array | Int32Array | Uint8Array {
  // `buf` is a fresh allocation of exactly the tensor's bytes; copy into aligned typed arrays.
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(n);
      new Uint8Array(out.buffer).set(buf);
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(n);
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = buf.readUInt16LE(2 * i) << 16;
      return out;
    }
    case 'F16': {
      const t = f16Table();
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = t[buf.readUInt16LE(2 * i)]!;
      return out;
    }
    case 'F64': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = buf.readDoubleLE(8 * i);
      return out;
    }
    case 'I32': {
      const out = new Int32Array(n);
      new Uint8Array(out.buffer).set(buf);
      return out;
    }
    case 'I64': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(buf.readBigInt64LE(8 * i));
      return out;
    }
    case 'I16':
      return Int32Array.from({ length: n }, (_, i) => buf.readInt16LE(2 * i));
    case 'I8':
      return Int32Array.from({ length: n }, (_, i) => buf.readInt8(i));
    case 'U8':
      return Int32Array.from(buf);
    case 'BOOL':
      return Uint8Array.from(buf, (b) => (b ? 1 : 0));
  }
}

/**
 * Open a checkpoint lazily: a .safetensors file, a folder with model.safetensors, or a folder with
 * model.safetensors.index.json (shards). Only headers are read here.
 */
export async function openCheckpoint(p: string): Promise<TensorSource> {
  const st = await fsp.stat(p).catch(() => undefined);
  if (!st) throw new AdaptorkitError('IO_ERROR', `checkpoint ${p} does not exist`);
  let files: string[];
  if (st.isFile()) files = [p];
  else if (existsSync(path.join(p, 'model.safetensors'))) files = [path.join(p, 'model.safetensors')];
  else if (existsSync(path.join(p, 'model.safetensors.index.json'))) {
    const idx = JSON.parse(await fsp.readFile(path.join(p, 'model.safetensors.index.json'), 'utf8')) as { weight_map?: Record<string, string> };
    if (!idx.weight_map) badFile(path.join(p, 'model.safetensors.index.json'), 'no weight_map');
    files = [...new Set(Object.values(idx.weight_map))].map((f) => {
      if (f !== path.basename(f)) badFile(p, `shard '${f}' must be a file name inside the folder`);
      return path.join(p, f);
    });
  } else {
    throw new AdaptorkitError('IO_ERROR', `${p} has neither model.safetensors nor model.safetensors.index.json`);
  }
  const handles = new Map<string, fsp.FileHandle>();
  const entries = new Map<string, Entry>();
  try {
    for (const f of files) {
      const fh = await fsp.open(f, 'r');
      handles.set(f, fh);
      for (const [name, e] of await readHeader(f, fh)) {
        if (entries.has(name)) badFile(p, `tensor '${name}' appears in two shards`);
        entries.set(name, e);
      }
    }
  } catch (e) {
    for (const fh of handles.values()) await fh.close();
    throw e;
  }
  const get = (name: string): Entry => {
    const e = entries.get(name);
    if (!e) throw new AdaptorkitError('MISSING_TENSOR', `${p}: no tensor '${name}'`);
    return e;
  };
  return {
    label: p,
    names: () => [...entries.keys()],
    meta: (name) => {
      const e = get(name);
      return { shape: e.shape, isFloat: FLOATS.has(e.dtype) };
    },
    read: async (name) => {
      const e = get(name);
      const buf = Buffer.allocUnsafe(e.end - e.begin);
      let off = 0;
      const fh = handles.get(e.file)!;
      while (off < buf.length) {
        const { bytesRead } = await fh.read(buf, off, buf.length - off, e.begin + off);
        if (bytesRead === 0) badFile(e.file, `unexpected end of file reading '${name}'`);
        off += bytesRead;
      }
      return decode(buf, e.dtype, (e.end - e.begin) / SIZE[e.dtype]);
    },
    close: async () => {
      for (const fh of handles.values()) await fh.close();
      handles.clear();
    },
  };
}

/** float32 -> bf16 bits, round to nearest even. */
function toBf16(x: Float32Array, out: Buffer): void {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < x.length; i++) {
    const b = u[i]!;
    const isNaN = (b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0;
    out.writeUInt16LE(isNaN ? (b >>> 16) | 0x40 : ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff, 2 * i);
  }
}

/** float32 -> f16 bits, round to nearest even, overflow to infinity. */
function toF16(x: Float32Array, out: Buffer): void {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < x.length; i++) {
    const b = u[i]!;
    const sign = (b >>> 16) & 0x8000;
    const exp = (b >>> 23) & 0xff;
    let mant = b & 0x7fffff;
    let h: number;
    if (exp === 0xff) h = sign | 0x7c00 | (mant ? 0x200 : 0);
    else {
      const e = exp - 112;
      if (e >= 31) h = sign | 0x7c00;
      else if (e <= 0) {
        if (e < -10) h = sign;
        else {
          mant |= 0x800000;
          const shift = 14 - e;
          const half = 1 << (shift - 1);
          const rest = mant & ((1 << shift) - 1);
          let m = mant >>> shift;
          if (rest > half || (rest === half && m & 1)) m++;
          h = sign | m;
        }
      } else {
        h = (e << 10) | (mant >>> 13);
        const rest = mant & 0x1fff;
        if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
        h |= sign;
      }
    }
    out.writeUInt16LE(h, 2 * i);
  }
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
      let buf: Buffer;
      if (e.dtype === 'F32' || e.dtype === 'I32') buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      else if (e.dtype === 'BOOL') buf = Buffer.from(data as Uint8Array);
      else {
        buf = Buffer.allocUnsafe(data.length * 2);
        if (e.dtype === 'BF16') toBf16(data as Float32Array, buf);
        else toF16(data as Float32Array, buf);
      }
      await fh.write(buf);
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
