/**
 * safetensors, read lazily and written atomically.
 *
 * File layout: u64 little-endian header length N, N bytes of JSON header
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: { str: str } }`, then the
 * data buffer; offsets are relative to the start of the data buffer.
 *
 * The reader parses only the header, validates it against the file size (so a hostile file is
 * refused before anything is allocated from its claims), and reads each tensor by offset through
 * a file handle when asked: a shard is never read into one Buffer (shards can exceed Node's
 * buffer limit). Every refusal is an AdaptorkitError('BAD_FILE') naming the file and the field.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError, formatShape } from '../errors.js';
import { DTYPE_SIZE, bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, isDtype, type SafetensorsDtype } from './dtypes.js';
import { writeFileAtomic } from './atomic.js';
import { openRegular } from './regular-file.js';

/** Headers larger than this are refused (the format's own reference implementation uses 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;
/**
 * Entries (tensors) one file may hold. The 100 MB header cap alone admits ~1.6M minimal entries
 * (13 s and 1.4 GB to parse here); real checkpoints hold at most a few tens of thousands of tensors
 * in all their shards, so 100,000 per file leaves room and keeps parsing under a second.
 */
export const MAX_TENSORS = 100_000;

export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Absolute byte offsets in the file: [begin, end). */
  readonly begin: number;
  readonly end: number;
}

function bad(file: string, what: string): never {
  throw new AdaptorkitError('BAD_FILE', `${file}: ${what} (not a valid safetensors file; re-export it, e.g. with safetensors.torch.save_file)`);
}

/**
 * Top-level keys of a JSON object text, in order, including duplicates (JSON.parse keeps the last
 * silently). Throws once more than `limit` keys are seen (before anything else is parsed).
 */
function topLevelKeys(text: string, limit: number, file: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i += 2;
        else if (d === 0x22) break;
        else i++;
      }
      const end = i + 1;
      i = end;
      if (depth === 1) {
        let j = i;
        while (j < n && /\s/.test(text[j]!)) j++;
        if (text[j] === ':') {
          if (keys.length >= limit) bad(file, `header holds more than ${MAX_TENSORS} tensors (the limit per file; split the checkpoint into shards)`);
          const raw = text.slice(start, end);
          let key = raw; // an invalid string literal is reported by the JSON.parse that follows
          try {
            key = JSON.parse(raw) as string;
          } catch {
            /* keep raw */
          }
          keys.push(key);
        }
      }
      continue;
    }
    if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
    i++;
  }
  return keys;
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Validate a parsed header against the file; returns tensors sorted by offset. */
export function parseHeader(
  file: string,
  headerText: string,
  dataStart: number,
  fileSize: number,
): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  if (!/^\s*\{/.test(headerText)) bad(file, 'header must be a JSON object');
  const keys = topLevelKeys(headerText, MAX_TENSORS + 1, file); // +1: __metadata__
  let json: unknown;
  try {
    json = JSON.parse(headerText);
  } catch (e) {
    bad(file, `header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) bad(file, 'header must be a JSON object');
  const seen = new Set<string>();
  for (const k of keys) {
    if (seen.has(k)) bad(file, `duplicate tensor name '${k}' in header`);
    seen.add(k);
  }
  const dataLen = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const list: TensorInfo[] = [];
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(file, '__metadata__ must be an object of strings');
      for (const [mk, mv] of Object.entries(v as Record<string, unknown>)) {
        if (typeof mv !== 'string') bad(file, `__metadata__.${mk} must be a string, got ${typeof mv}`);
        metadata[mk] = mv;
      }
      continue;
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(file, `entry '${name}' must be an object with dtype, shape, data_offsets`);
    const e = v as Record<string, unknown>;
    if (!isDtype(e.dtype)) bad(file, `tensor '${name}': unknown dtype ${JSON.stringify(e.dtype)} (supported: ${Object.keys(DTYPE_SIZE).join(', ')})`);
    const dtype = e.dtype;
    if (!Array.isArray(e.shape) || !e.shape.every(isNonNegInt)) bad(file, `tensor '${name}': shape must be an array of non-negative integers, got ${JSON.stringify(e.shape)}`);
    const shape = e.shape as number[];
    if (shape.length > 16) bad(file, `tensor '${name}': rank ${shape.length} is larger than 16`);
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !isNonNegInt(offs[0]) || !isNonNegInt(offs[1])) {
      bad(file, `tensor '${name}': data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offs)}`);
    }
    const [b, en] = offs as [number, number];
    if (b > en) bad(file, `tensor '${name}': data_offsets begin ${b} > end ${en}`);
    if (en > dataLen) bad(file, `tensor '${name}': data_offsets end ${en} is beyond the data buffer (${dataLen} bytes)`);
    // element count times item size, in BigInt: a hostile shape must not overflow into a match
    let bytes = BigInt(DTYPE_SIZE[dtype]);
    for (const d of shape) bytes *= BigInt(d);
    if (bytes !== BigInt(en - b)) {
      bad(file, `tensor '${name}': shape ${formatShape(shape)} x ${dtype} is ${bytes} bytes but data_offsets span ${en - b}`);
    }
    list.push({ name, dtype, shape, begin: dataStart + b, end: dataStart + en });
  }
  // the tensors must tile the data buffer exactly: no gaps, no overlaps, nothing left over
  const sorted = [...list].sort((x, y) => x.begin - y.begin || x.end - y.end);
  let pos = dataStart;
  for (const t of sorted) {
    if (t.begin < pos) bad(file, `tensor '${t.name}' overlaps the previous tensor (starts at ${t.begin - dataStart}, previous ends at ${pos - dataStart})`);
    if (t.begin > pos) bad(file, `gap in the data buffer before tensor '${t.name}' (bytes ${pos - dataStart}..${t.begin - dataStart} unused)`);
    pos = t.end;
  }
  if (pos !== fileSize) bad(file, `data buffer has ${fileSize - pos} trailing bytes not covered by any tensor`);
  return { tensors: new Map(sorted.map((t) => [t.name, t])), metadata };
}

/** An open safetensors file: header parsed, tensors read on demand. Call close() when done. */
export class SafetensorsFile {
  /** Largest single buffer this reader allocated from the file (tests check it never exceeds the file size). */
  maxAllocation = 0;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly fh: fsp.FileHandle,
    readonly size: number,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    readonly metadata: Readonly<Record<string, string>>,
    headerBytes: number,
  ) {
    this.maxAllocation = headerBytes;
  }

  static async open(file: string): Promise<SafetensorsFile> {
    const { fh, size } = await openRegular(file, 'safetensors file');
    try {
      if (size < 8) bad(file, `file is ${size} bytes, shorter than the 8-byte header length`);
      const lenBuf = new Uint8Array(8);
      await readFully(fh, lenBuf, 0, file);
      const n = new DataView(lenBuf.buffer).getBigUint64(0, true);
      if (n > BigInt(MAX_HEADER_BYTES)) bad(file, `header length ${n} is over the ${MAX_HEADER_BYTES}-byte limit`);
      if (n > BigInt(size - 8)) bad(file, `header length ${n} runs past the end of the ${size}-byte file`);
      const headerLen = Number(n);
      if (headerLen < 2) bad(file, `header length ${headerLen} is too short for a JSON object`);
      const hb = new Uint8Array(headerLen);
      await readFully(fh, hb, 8, file);
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(hb);
      } catch {
        bad(file, 'header is not valid UTF-8');
      }
      const { tensors, metadata } = parseHeader(file, text, 8 + headerLen, size);
      return new SafetensorsFile(file, fh, size, tensors, metadata, headerLen);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new AdaptorkitError('MISSING_TENSOR', `${this.path}: no tensor '${name}'`);
    return t;
  }

  /** The raw little-endian bytes of one tensor (a fresh, aligned buffer). */
  async readBytes(name: string): Promise<Uint8Array> {
    if (this.closed) throw new AdaptorkitError('DISPOSED', `${this.path} is closed`);
    const t = this.info(name);
    const buf = new Uint8Array(t.end - t.begin);
    this.maxAllocation = Math.max(this.maxAllocation, buf.byteLength);
    await readFully(this.fh, buf, t.begin, this.path);
    return buf;
  }

  /** One tensor's values as a typed array: floats as Float32Array, integers as Int32Array, BOOL as Uint8Array. */
  async readArray(name: string): Promise<Float32Array | Int32Array | Uint8Array> {
    const t = this.info(name);
    return decode(await this.readBytes(name), t.dtype, `${this.path}: tensor '${name}'`);
  }

  /** One tensor as a tf.Tensor (float32, int32 or bool). The caller owns it. */
  async read(name: string): Promise<tf.Tensor> {
    const t = this.info(name);
    const a = await this.readArray(name);
    const dt = a instanceof Float32Array ? 'float32' : a instanceof Int32Array ? 'int32' : 'bool';
    return tf.tensor(a, [...t.shape], dt);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

async function readFully(fh: fsp.FileHandle, buf: Uint8Array, position: number, file: string): Promise<void> {
  let off = 0;
  while (off < buf.byteLength) {
    const { bytesRead } = await fh.read(buf, off, buf.byteLength - off, position + off);
    if (bytesRead === 0) bad(file, `unexpected end of file at byte ${position + off}`);
    off += bytesRead;
  }
}

/** Raw bytes (own, aligned buffer) -> typed array. */
export function decode(bytes: Uint8Array, dtype: SafetensorsDtype, what: string): Float32Array | Int32Array | Uint8Array {
  const n = bytes.byteLength / DTYPE_SIZE[dtype];
  const ab = bytes.buffer;
  const o = bytes.byteOffset;
  switch (dtype) {
    case 'F32':
      return new Float32Array(ab, o, n);
    case 'F16':
      return f16ToF32(new Uint16Array(ab, o, n));
    case 'BF16':
      return bf16ToF32(new Uint16Array(ab, o, n));
    case 'F64':
      return Float32Array.from(new Float64Array(ab, o, n));
    case 'I32':
      return new Int32Array(ab, o, n);
    case 'I16':
      return Int32Array.from(new Int16Array(ab, o, n));
    case 'I8':
      return Int32Array.from(new Int8Array(ab, o, n));
    case 'U8':
      return Int32Array.from(bytes);
    case 'BOOL':
      return Uint8Array.from(bytes, (b) => (b ? 1 : 0));
    case 'I64': {
      const src = new BigInt64Array(ab, o, n);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = src[i]!;
        if (v > 2147483647n || v < -2147483648n) throw new AdaptorkitError('UNSUPPORTED', `${what}: I64 value ${v} does not fit int32 (tfjs has no int64)`);
        out[i] = Number(v);
      }
      return out;
    }
  }
}

/** Read every tensor of one safetensors file into memory (for small files: adapters, fixtures). */
export async function readSafetensors(file: string): Promise<{ tensors: Map<string, tf.Tensor>; metadata: Record<string, string> }> {
  const f = await SafetensorsFile.open(file);
  const tensors = new Map<string, tf.Tensor>();
  try {
    for (const name of f.names()) tensors.set(name, await f.read(name));
  } catch (e) {
    for (const t of tensors.values()) t.dispose();
    throw e;
  } finally {
    await f.close();
  }
  return { tensors, metadata: { ...f.metadata } };
}

export interface WriteOptions {
  /** Stored dtype for float tensors (default F32). int32 tensors are written I32, bool BOOL. */
  dtype?: 'F32' | 'F16' | 'BF16';
  /** String key/values stored under __metadata__. */
  metadata?: Record<string, string>;
}

function encode(t: tf.Tensor, floatDtype: 'F32' | 'F16' | 'BF16'): { dtype: SafetensorsDtype; bytes: Uint8Array } {
  const data = t.dataSync();
  if (t.dtype === 'int32') return { dtype: 'I32', bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  if (t.dtype === 'bool') return { dtype: 'BOOL', bytes: Uint8Array.from(data as Uint8Array) };
  if (t.dtype !== 'float32') throw new AdaptorkitError('UNSUPPORTED', `cannot write a ${t.dtype} tensor to safetensors`);
  const f = data as Float32Array;
  if (floatDtype === 'F32') return { dtype: 'F32', bytes: new Uint8Array(f.buffer, f.byteOffset, f.byteLength) };
  const h = floatDtype === 'BF16' ? f32ToBf16(f) : f32ToF16(f);
  return { dtype: floatDtype, bytes: new Uint8Array(h.buffer) };
}

/**
 * Write tensors to a safetensors file atomically (temp file in the same folder, fsync, rename):
 * a crash mid-write never leaves a half file under `file`. Tensors are written in name order,
 * one at a time; the header is padded with spaces so the data buffer starts 8-byte aligned.
 */
export async function writeSafetensors(file: string, tensors: Map<string, tf.Tensor> | Record<string, tf.Tensor>, opts: WriteOptions = {}): Promise<void> {
  const entries = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const floatDtype = opts.dtype ?? 'F32';
  const header: Record<string, unknown> = {};
  if (opts.metadata && Object.keys(opts.metadata).length > 0) {
    for (const [k, v] of Object.entries(opts.metadata)) {
      if (typeof v !== 'string') throw new AdaptorkitError('INVALID_ARGUMENT', `safetensors metadata '${k}' must be a string`);
    }
    header.__metadata__ = opts.metadata;
  }
  let offset = 0;
  const dtypes: SafetensorsDtype[] = [];
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new AdaptorkitError('INVALID_ARGUMENT', `'__metadata__' is reserved and cannot name a tensor`);
    const dt: SafetensorsDtype = t.dtype === 'int32' ? 'I32' : t.dtype === 'bool' ? 'BOOL' : t.dtype === 'float32' ? floatDtype : 'F32';
    if (t.dtype !== 'float32' && t.dtype !== 'int32' && t.dtype !== 'bool') throw new AdaptorkitError('UNSUPPORTED', `tensor '${name}': cannot write dtype ${t.dtype}`);
    const bytes = t.size * DTYPE_SIZE[dt];
    header[name] = { dtype: dt, shape: t.shape, data_offsets: [offset, offset + bytes] };
    dtypes.push(dt);
    offset += bytes;
  }
  let text = JSON.stringify(header);
  const enc = new TextEncoder();
  let hb = enc.encode(text);
  const pad = (8 - (hb.byteLength % 8)) % 8;
  if (pad) {
    text += ' '.repeat(pad);
    hb = enc.encode(text);
  }
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(hb.byteLength), true);
  await writeFileAtomic(file, async (fh) => {
    await fh.write(len);
    await fh.write(hb);
    for (const [, t] of entries) {
      const { bytes } = encode(t, floatDtype);
      await fh.write(bytes);
    }
  });
}

/** Path helper: a safetensors file name must be a plain file name inside `dir` (no traversal). */
export function safeJoin(dir: string, name: string, what: string): string {
  if (name !== path.basename(name) || name === '.' || name === '..' || name.length === 0) {
    throw new AdaptorkitError('BAD_FILE', `${what}: '${name}' must be a file name inside ${dir}, not a path`);
  }
  return path.join(dir, name);
}
