import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../index.js';
import { expectBitIdentical } from '../testing/index.js';
import { CheckpointReader } from './checkpoint.js';
import { parseSize, writeHfFolder, type HfTensorEntry } from './hf-folder.js';

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

const entry = (name: string, shape: number[], seed: number): HfTensorEntry => ({ name, shape, get: () => tf.randomNormal(shape, 0, 1, 'float32', seed) });

describe('writeHfFolder', () => {
  it('shards above the limit (a bigger tensor gets a shard of its own), writes the index, the dtype and the tokenizer files', async () => {
    const src = mkdtempSync(path.join(tmpdir(), 'akit-hf-src-'));
    const bin = Uint8Array.from([0, 255, 128, 10, 13, 0xc3]); // not UTF-8: must be copied byte for byte
    writeFileSync(path.join(src, 'tokenizer.model'), bin);
    writeFileSync(path.join(src, 'tokenizer.json'), '{"a": 1}');
    const dir = path.join(mkdtempSync(path.join(tmpdir(), 'akit-hf-')), 'out');
    const entries = [entry('a.weight', [10, 10], 1), entry('b.weight', [10, 10], 2), entry('big.weight', [40, 10], 3), entry('c.bias', [10], 4)];
    const before = tf.memory().numTensors;
    const rep = await writeHfFolder(dir, entries, { config: { model_type: 'llama', torch_dtype: 'bfloat16', dtype: 'bfloat16' }, maxShardBytes: 900, tokenizerFrom: src });
    expect(tf.memory().numTensors).toBe(before); // every produced tensor was disposed
    // 400 + 400 > 900? no: a+b share a shard (800 B); big (1600 B) alone; c (40 B) after it
    expect(rep.shards).toBe(3);
    expect(rep.totalBytes).toBe((100 + 100 + 400 + 10) * 4);
    const index = JSON.parse(readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
    expect(index.metadata.total_size).toBe(rep.totalBytes);
    expect(index.weight_map).toEqual({
      'a.weight': 'model-00001-of-00003.safetensors',
      'b.weight': 'model-00001-of-00003.safetensors',
      'big.weight': 'model-00002-of-00003.safetensors',
      'c.bias': 'model-00003-of-00003.safetensors',
    });
    const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({ torch_dtype: 'float32', dtype: 'float32', model_type: 'llama' });
    expect(new Uint8Array(readFileSync(path.join(dir, 'tokenizer.model')))).toEqual(bin);
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer.model']);
    const r = await CheckpointReader.open(dir);
    const t = await r.read('big.weight');
    const want = entries[2]!.get();
    expectBitIdentical(t, want);
    tf.dispose([t, want]);
    await r.close();
    await expect(writeHfFolder(dir, entries, { config: {} })).rejects.toThrow(/already exists/);
  });

  it('one shard is model.safetensors without an index; float16 is written as F16', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'akit-hf-'));
    const rep = await writeHfFolder(dir, [entry('w', [4, 4], 1)], { config: {}, dtype: 'float16' });
    expect(rep.files).toEqual(['model.safetensors', 'config.json']);
    const r = await CheckpointReader.open(dir);
    expect(r.info('w').dtype).toBe('F16');
    await r.close();
  });

  it('parses sizes', () => {
    expect(parseSize('5GB')).toBe(5e9);
    expect(parseSize('500MB')).toBe(5e8);
    expect(parseSize('2GiB')).toBe(2 * 2 ** 30);
    expect(parseSize('1000')).toBe(1000);
    expect(() => parseSize('lots')).toThrow(/not a size/);
  });
});
