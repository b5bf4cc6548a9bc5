import { mkdtempSync, readdirSync, writeFileSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdaptorkitError, initBackend, tf } from '../index.js';
import { Rng } from '../train/rng.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './dtypes.js';
import { SafetensorsFile, readSafetensors, writeSafetensors } from './safetensors.js';

let dir: string;
beforeAll(async () => {
  await initBackend('cpu', { log: false });
  dir = mkdtempSync(path.join(tmpdir(), 'akit-st-'));
});
afterAll(() => undefined);

/** Build a safetensors file by hand (independent of the writer). */
function handMade(header: unknown, data: Uint8Array, opts: { rawHeader?: string; lenOverride?: bigint } = {}): Buffer {
  const text = opts.rawHeader ?? JSON.stringify(header);
  const hb = Buffer.from(text, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(opts.lenOverride ?? BigInt(hb.length));
  return Buffer.concat([len, hb, Buffer.from(data)]);
}

describe('16-bit float conversions', () => {
  it('bf16 and f16 round-trip exactly representable values and round to nearest even', () => {
    const xs = new Float32Array([0, -0, 1, -2.5, 65504, 6.103515625e-5, 5.960464477539063e-8, 0.333251953125, Infinity, -Infinity]);
    expect(Array.from(f16ToF32(f32ToF16(xs)))).toEqual(Array.from(xs));
    const bx = new Float32Array([0, 1, -3, 0.15625, 2 ** 100, -Infinity]);
    expect(Array.from(bf16ToF32(f32ToBf16(bx)))).toEqual(Array.from(bx));
    // 1 + 2^-8 lies exactly between two bf16 values: ties to even (1.0); 1 + 3*2^-8 rounds up
    expect(bf16ToF32(f32ToBf16([1 + 2 ** -8, 1 + 3 * 2 ** -8]))).toEqual(new Float32Array([1, 1 + 2 ** -6]));
    expect(f16ToF32(f32ToF16([1 + 2 ** -11, 70000, 1e-9]))).toEqual(new Float32Array([1, Infinity, 0]));
    expect(Number.isNaN(f16ToF32(f32ToF16([NaN]))[0])).toBe(true);
    expect(Number.isNaN(bf16ToF32(f32ToBf16([NaN]))[0])).toBe(true);
  });
});

describe('safetensors writer and reader', () => {
  it('F32 write -> read is bit-exact, with metadata, 8-byte aligned header and int/bool tensors', async () => {
    const rng = new Rng(3);
    const a = tf.tensor(rng.normalArray(3 * 5, 1), [3, 5]);
    const b = tf.tensor(new Float32Array([NaN, -0, 1e-45, 3.4e38]), [2, 2]);
    const c = tf.tensor([1, -2, 2147483647], [3], 'int32');
    const e = tf.tensor([], [0, 4]);
    const f = path.join(dir, 'rt.safetensors');
    await writeSafetensors(f, { 'x.a': a, 'x.b': b, count: c, empty: e }, { metadata: { format: 'pt', note: 'hi' } });
    const raw = readFileSync(f);
    const n = Number(raw.readBigUInt64LE(0));
    expect((8 + n) % 8).toBe(0);
    const { tensors, metadata } = await readSafetensors(f);
    expect(metadata).toEqual({ format: 'pt', note: 'hi' });
    expect([...tensors.keys()].sort()).toEqual(['count', 'empty', 'x.a', 'x.b']);
    const bits = (t: tf.Tensor): number[] => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));
    expect(bits(tensors.get('x.a')!)).toEqual(bits(a));
    expect(bits(tensors.get('x.b')!)).toEqual(bits(b));
    expect(tensors.get('count')!.dtype).toBe('int32');
    expect(Array.from(tensors.get('count')!.dataSync())).toEqual([1, -2, 2147483647]);
    expect(tensors.get('empty')!.shape).toEqual([0, 4]);
    expect(readdirSync(dir).filter((x) => x.includes('.tmp-'))).toEqual([]);
    tf.dispose([a, b, c, e, ...tensors.values()]);
  });

  it('writes BF16 / F16 on request and reads them back upcast to float32', async () => {
    const x = tf.tensor([1, 0.1, -300.5, 1e-3], [4]);
    for (const dtype of ['BF16', 'F16'] as const) {
      const f = path.join(dir, `h-${dtype}.safetensors`);
      await writeSafetensors(f, { x }, { dtype });
      const st = await SafetensorsFile.open(f);
      expect(st.info('x').dtype).toBe(dtype);
      expect(st.info('x').end - st.info('x').begin).toBe(8);
      const y = await st.read('x');
      await st.close();
      const want = dtype === 'BF16' ? bf16ToF32(f32ToBf16(x.dataSync() as Float32Array)) : f16ToF32(f32ToF16(x.dataSync() as Float32Array));
      expect(Array.from(y.dataSync())).toEqual(Array.from(want));
      expect(y.dtype).toBe('float32');
      y.dispose();
    }
    x.dispose();
  });

  it('reads hand-made files with I64 / I8 / U8 / BOOL / F16 tensors', async () => {
    const data = new Uint8Array(16 + 2 + 2 + 2 + 2);
    const dv = new DataView(data.buffer);
    dv.setBigInt64(0, -5n, true);
    dv.setBigInt64(8, 7n, true);
    data[16] = 0xff; // I8 -1
    data[17] = 3;
    data[18] = 200; // U8
    data[19] = 1;
    data[20] = 1; // BOOL
    data[21] = 0;
    dv.setUint16(22, 0x3c00, true); // F16 1.0
    const header = {
      a: { dtype: 'I64', shape: [2], data_offsets: [0, 16] },
      b: { dtype: 'I8', shape: [2], data_offsets: [16, 18] },
      c: { dtype: 'U8', shape: [2], data_offsets: [18, 20] },
      d: { dtype: 'BOOL', shape: [2], data_offsets: [20, 22] },
      e: { dtype: 'F16', shape: [], data_offsets: [22, 24] },
    };
    const f = path.join(dir, 'ints.safetensors');
    writeFileSync(f, handMade(header, data));
    const { tensors } = await readSafetensors(f);
    expect(Array.from(tensors.get('a')!.dataSync())).toEqual([-5, 7]);
    expect(Array.from(tensors.get('b')!.dataSync())).toEqual([-1, 3]);
    expect(Array.from(tensors.get('c')!.dataSync())).toEqual([200, 1]);
    expect(tensors.get('d')!.dtype).toBe('bool');
    expect(Array.from(tensors.get('d')!.dataSync())).toEqual([1, 0]);
    expect(tensors.get('e')!.shape).toEqual([]);
    expect(tensors.get('e')!.dataSync()[0]).toBe(1);
    tf.dispose([...tensors.values()]);
  });

  it('a write that fails midway keeps the previous file intact and leaves no temp file', async () => {
    const f = path.join(dir, 'fail.safetensors');
    const ok = tf.tensor([1, 2, 3]);
    await writeSafetensors(f, { ok });
    const before = readFileSync(f);
    const gone = tf.tensor([4, 5]);
    gone.dispose(); // reading its data throws after the temp file is open and partly written
    await expect(writeSafetensors(f, { a: ok, b: gone })).rejects.toBeInstanceOf(AdaptorkitError);
    expect(readFileSync(f).equals(before)).toBe(true);
    expect(readdirSync(dir).filter((x) => x.includes('.tmp-'))).toEqual([]);
    ok.dispose();
  });
});

describe('hostile safetensors files', () => {
  /** A valid base file with three tensors, built by hand. */
  function base(): { header: Record<string, unknown>; data: Uint8Array } {
    const data = new Uint8Array(4 * 6 + 2 * 4 + 4 * 2);
    for (let i = 0; i < data.length; i++) data[i] = (i * 37) & 0xff;
    return {
      header: {
        __metadata__: { format: 'pt' },
        'w.weight': { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
        'w.half': { dtype: 'BF16', shape: [4], data_offsets: [24, 32] },
        'w.idx': { dtype: 'I32', shape: [2], data_offsets: [32, 40] },
      },
      data,
    };
  }

  /** Each case: a mutation of the base file that must be refused. */
  function cases(): { name: string; bytes: Buffer }[] {
    const out: { name: string; bytes: Buffer }[] = [];
    const add = (name: string, bytes: Buffer): void => void out.push({ name, bytes });
    const b = base();
    const good = handMade(b.header, b.data);
    // truncations at every byte boundary (header and data) except the full length
    for (let n = 0; n < good.length; n += 1) add(`truncate-${n}`, good.subarray(0, n));
    // header lengths that lie
    for (const len of [0n, 1n, 2n ** 63n, 2n ** 64n - 1n, 100_000_001n, BigInt(good.length), BigInt(good.length - 7), 2n ** 32n + 5n]) {
      add(`len-${len}`, handMade(b.header, b.data, { lenOverride: len }));
    }
    // invalid JSON / wrong JSON types
    for (const raw of ['{', 'nul', '[]', '"x"', '12', 'null', '{"a":}', '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]', '\u0000\u0001', '{}x']) {
      add(`json-${JSON.stringify(raw)}`, handMade(null, b.data, { rawHeader: raw }));
    }
    // invalid UTF-8 in the header
    {
      const text = Buffer.from(JSON.stringify(b.header));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(text.length + 2));
      add('utf8', Buffer.concat([len, text, Buffer.from([0xc3, 0x28]), Buffer.from(b.data)]));
    }
    const mutate = (name: string, f: (h: Record<string, Record<string, unknown>>) => void, data = b.data): void => {
      const h = structuredClone(b.header) as Record<string, Record<string, unknown>>;
      f(h);
      add(name, handMade(h, data));
    };
    // unknown dtypes and bad dtype values
    for (const dt of ['F8', 'f32', 'FLOAT', 'U16x', '', 7, null, ['F32'], 'C64', 'F8_E4M3']) {
      mutate(`dtype-${JSON.stringify(dt)}`, (h) => void (h['w.weight']!.dtype = dt));
    }
    // bad shapes (size mismatch, negative, fractional, huge, non-array)
    for (const s of [[2, 2], [3, 3], [6, 1, 2], [-2, -3], [2.5, 2], [2 ** 53, 2 ** 53], [1e300], [2 ** 31, 2 ** 31, 4], 'x', null, [null], [[2]], [2, '3'], Array(20).fill(1), [0, 0], [24]]) {
      mutate(`shape-${JSON.stringify(s)}`, (h) => void (h['w.weight']!.shape = s));
    }
    // bad offsets: out of range, overlapping, gaps, reversed, wrong types
    const offs: unknown[] = [
      [0, 28], [4, 28], [0, 1e12], [-24, 0], [24, 0], [0, 24.5], [0], [0, 24, 48], 'x', null, [null, 24], ['0', '24'],
      [2 ** 53, 2 ** 53 + 24], [8, 32], [16, 40], [40, 64], [1, 25], [0, 2 ** 64],
    ];
    for (const o of offs) mutate(`offsets-${JSON.stringify(o)}`, (h) => void (h['w.weight']!.data_offsets = o));
    for (const o of [[0, 8], [16, 24], [20, 28], [32, 40], [30, 38], [40, 48]]) mutate(`half-offsets-${JSON.stringify(o)}`, (h) => void (h['w.half']!.data_offsets = o));
    // missing fields and wrong entry types
    for (const key of ['dtype', 'shape', 'data_offsets']) mutate(`missing-${key}`, (h) => void delete h['w.weight']![key]);
    for (const v of [null, 1, 'x', [], true]) mutate(`entry-${JSON.stringify(v)}`, (h) => void ((h as Record<string, unknown>)['w.weight'] = v));
    // bad metadata
    for (const m of [null, 1, 'x', [], { a: 1 }, { a: null }, { a: { b: 'c' } }]) mutate(`meta-${JSON.stringify(m)}`, (h) => void ((h as Record<string, unknown>).__metadata__ = m));
    // data buffer not covered / trailing bytes / missing bytes
    for (const extra of [1, 3, 8, 100]) add(`trailing-${extra}`, Buffer.concat([good, Buffer.alloc(extra)]));
    mutate('dropped-tensor', (h) => void delete h['w.idx']);
    mutate('extra-tensor', (h) => void (h['w.extra'] = { dtype: 'F32', shape: [1], data_offsets: [40, 44] }));
    mutate('dup-offsets', (h) => void (h['w.twin'] = { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] }));
    // duplicate names (JSON.parse would silently keep the last)
    {
      const text = JSON.stringify(b.header);
      const dup = text.slice(0, -1) + ',"w.idx":{"dtype":"I32","shape":[2],"data_offsets":[32,40]}}';
      add('duplicate-name', handMade(null, b.data, { rawHeader: dup }));
      const dup2 = text.slice(0, -1) + ',"w\\u002eidx":{"dtype":"I32","shape":[2],"data_offsets":[32,40]}}';
      add('duplicate-escaped-name', handMade(null, b.data, { rawHeader: dup2 }));
    }
    // random byte flips in the header region, kept only when they break the file
    const rng = new Rng(11);
    const headerLen = good.length - b.data.length;
    let flips = 0;
    while (flips < 80) {
      const bytes = Buffer.from(good);
      const at = 8 + Math.floor(rng.uniform(0, headerLen - 8));
      bytes[at] = Math.floor(rng.uniform(0, 256));
      // keep it only if the header text changed in a way that matters: checked below by expecting a typed error or a
      // successful read whose tensors still tile the file (a flip inside a name is a valid, different file)
      out.push({ name: `flip-${flips}-at-${at}`, bytes });
      flips++;
    }
    return out;
  }

  it('refuses at least 200 corrupted files with a typed BAD_FILE error, never allocating more than the file', async () => {
    const all = cases();
    let refused = 0;
    let acceptedFlips = 0;
    for (const [i, c] of all.entries()) {
      const f = path.join(dir, `hostile-${i}.safetensors`);
      writeFileSync(f, c.bytes);
      const size = statSync(f).size;
      let st: SafetensorsFile | undefined;
      try {
        st = await SafetensorsFile.open(f);
        // opened: must be a benign random flip (e.g. inside a name or metadata value); it must read fully
        expect(c.name, `${c.name} was accepted`).toMatch(/^flip-/);
        for (const n of st.names()) (await st.read(n)).dispose();
        expect(st.maxAllocation).toBeLessThanOrEqual(size);
        acceptedFlips++;
      } catch (e) {
        expect(e, `${c.name}: ${String(e)}`).toBeInstanceOf(AdaptorkitError);
        const code = (e as AdaptorkitError).code;
        expect(code, `${c.name}: ${String(e)}`).toBe('BAD_FILE');
        expect((e as Error).message).toContain(f);
        refused++;
      } finally {
        await st?.close();
      }
    }
    const deterministic = all.filter((c) => !c.name.startsWith('flip-')).length;
    expect(deterministic).toBeGreaterThanOrEqual(200);
    expect(refused).toBeGreaterThanOrEqual(deterministic);
    expect(acceptedFlips).toBeLessThan(80);
  });

  it('the unmodified base file reads, so the refusals above are not a broken reader', async () => {
    const b = base();
    const f = path.join(dir, 'base.safetensors');
    writeFileSync(f, handMade(b.header, b.data));
    const st = await SafetensorsFile.open(f);
    expect(st.names()).toEqual(['w.weight', 'w.half', 'w.idx']);
    expect(st.metadata).toEqual({ format: 'pt' });
    const w = await st.readArray('w.weight');
    expect(w).toEqual(new Float32Array(b.data.slice(0, 24).buffer));
    expect(st.maxAllocation).toBeLessThanOrEqual(statSync(f).size);
    await st.close();
  });
});
