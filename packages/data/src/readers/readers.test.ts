import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { boxToText, readCaptions, readGrounding, readLlava, streamLlava } from './datasets.js';
import { CLIP_MEAN, CLIP_STD, loadImage, writeImagePng } from './image.js';
import { ShapesWorld } from '../shapesworld/generate.js';
import { DataRecordError, type ReadIssue } from './issues.js';
import { checkInsideRoot } from './paths.js';
import { splitJsonArray } from './records.js';

let dir = '';
let root = '';
let outside = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'adaptorkit-data-'));
  root = join(dir, 'images');
  mkdirSync(join(root, 'sub'), { recursive: true });
  // a 40x20 image: left half red, right half blue
  const px = Buffer.alloc(40 * 20 * 3);
  for (let y = 0; y < 20; y++) for (let x = 0; x < 40; x++) px.set(x < 20 ? [255, 0, 0] : [0, 0, 255], (y * 40 + x) * 3);
  await sharp(px, { raw: { width: 40, height: 20, channels: 3 } }).png().toFile(join(root, 'a.png'));
  await sharp(px, { raw: { width: 40, height: 20, channels: 3 } }).jpeg().toFile(join(root, 'sub', 'b.jpg'));
  writeFileSync(join(root, 'corrupt.png'), Buffer.from('\x89PNG\r\n\x1a\nthis is not really a png'));
  outside = join(dir, 'secret.png');
  await sharp(px, { raw: { width: 40, height: 20, channels: 3 } }).png().toFile(outside);
  symlinkSync(outside, join(root, 'link.png'));
});

function write(name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

const good = (id: string, image?: string) => ({
  id, ...(image ? { image } : {}),
  conversations: [{ from: 'human', value: `${image ? '<image>\n' : ''}What is this?` }, { from: 'gpt', value: 'A picture.' }],
});

describe('path safety', () => {
  it('rejects absolute paths, .. escapes, NUL bytes, backslash escapes and links out', () => {
    expect(checkInsideRoot(root, 'a.png').resolved).toBe(join(root, 'a.png'));
    expect(checkInsideRoot(root, 'sub/../a.png').resolved).toBe(join(root, 'a.png'));
    expect(checkInsideRoot(root, '/etc/passwd').problem).toMatch(/absolute/);
    expect(checkInsideRoot(root, 'C:\\Windows\\win.ini').problem).toMatch(/absolute/);
    expect(checkInsideRoot(root, '../secret.png').problem).toMatch(/escapes the dataset root/);
    expect(checkInsideRoot(root, 'sub/../../secret.png').problem).toMatch(/escapes/);
    expect(checkInsideRoot(root, '..\\secret.png').problem).toMatch(/escapes/);
    expect(checkInsideRoot(root, 'a.png\0.txt').problem).toMatch(/NUL/);
    expect(checkInsideRoot(root, 'link.png').problem).toMatch(/leads outside/);
    expect(checkInsideRoot(root, '').problem).toMatch(/non-empty/);
    expect(checkInsideRoot(root, 42).problem).toMatch(/non-empty relative path/);
  });
});

describe('readLlava', () => {
  it('reads good records, text-only records too, as turns with resolved images', async () => {
    const f = write('ok.json', JSON.stringify([good('1', 'a.png'), good('2', 'sub/b.jpg'), good('3')], null, 2));
    const { records, issues } = await readLlava(f, { root });
    expect(issues).toEqual([]);
    expect(records.map((r) => r.id)).toEqual(['1', '2', '3']);
    expect(records[0]!.image).toBe(join(root, 'a.png'));
    expect(records[2]!.image).toBeUndefined();
    expect(records[0]!.turns.map((t) => t.role)).toEqual(['user', 'assistant']);
  });

  it('fails on path traversal by default, naming file, line and field', async () => {
    const f = write('trav.json', JSON.stringify([good('1', 'a.png'), good('2', '../secret.png')], null, 2));
    const err = await readLlava(f, { root }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataRecordError);
    const e = err as DataRecordError;
    expect(e.code).toBe('BAD_FILE');
    expect(e.issue).toMatchObject({ file: f, index: 1, field: 'image' });
    expect(e.issue.line).toBe(16);
    expect(e.message).toMatch(new RegExp(`trav\\.json:16: record 1 field 'image': path '../secret.png' escapes the dataset root`));
  });

  it('in skip mode drops and reports every bad record, never silently', async () => {
    const recs = [
      good('ok', 'a.png'),
      good('abs', '/etc/passwd'),
      good('link', 'link.png'),
      good('missing', 'nope.png'),
      { id: 'noconv', image: 'a.png' },
      { id: 'badfrom', conversations: [{ from: 'bot', value: 'x' }, { from: 'gpt', value: 'y' }] },
      { id: 'noimage-token', image: 'a.png', conversations: [{ from: 'human', value: 'hi' }, { from: 'gpt', value: 'yo' }] },
      { id: 'stray-token', conversations: [{ from: 'human', value: '<image> hi' }, { from: 'gpt', value: 'yo' }] },
      { id: 'order', conversations: [{ from: 'gpt', value: 'hi' }, { from: 'human', value: 'yo' }] },
      'just a string',
      good('ok2'),
    ];
    const lines = recs.map((r) => JSON.stringify(r));
    const f = write('mixed.jsonl', `${lines.slice(0, 5).join('\n')}\n{"id": "broken", "conversations": [\n\n${lines.slice(5).join('\n')}\n`);
    const seen: ReadIssue[] = [];
    const { records, issues } = await readLlava(f, { root, onError: 'skip', onIssue: (i) => seen.push(i) });
    expect(records.map((r) => r.id)).toEqual(['ok', 'ok2']);
    const streamed: string[] = [];
    let streamedIssues = 0;
    for await (const r of streamLlava(f, { root, onError: 'skip', onIssue: () => streamedIssues++ })) streamed.push(r.id);
    expect(streamed).toEqual(['ok', 'ok2']);
    expect(streamedIssues).toBe(issues.length);
    expect(seen).toEqual(issues);
    expect(issues.map((i) => i.line)).toEqual([2, 3, 4, 5, 6, 8, 9, 10, 11, 12]);
    const msg = issues.map((i) => `${i.field ?? '-'}: ${i.message}`);
    expect(msg[0]).toMatch(/image: .*absolute/);
    expect(msg[1]).toMatch(/image: .*leads outside/);
    expect(msg[2]).toMatch(/image: .*missing/);
    expect(msg[3]).toMatch(/conversations: /);
    expect(msg[4]).toMatch(/malformed JSON line/);
    expect(msg[5]).toMatch(/conversations\.0\.from: expected 'human', 'gpt' or 'system'/);
    expect(msg[6]).toMatch(/exactly one '<image>'/);
    expect(msg[7]).toMatch(/image: .*has no image/);
    expect(msg[8]).toMatch(/must alternate/);
  });

  it('reports broken JSON arrays with their line', async () => {
    const txt = `[\n  ${JSON.stringify(good('1', 'a.png'))},\n  {"id": "2", "conversations": [1,]}\n, ${JSON.stringify(good('3'))}\n]`;
    const f = write('broken.json', txt);
    await expect(readLlava(f, { root })).rejects.toThrow(/broken\.json:3: record 1: malformed JSON record/);
    const skipped = await readLlava(f, { root, onError: 'skip', onIssue: () => {} });
    expect(skipped.records.map((r) => r.id)).toEqual(['1', '3']);
    expect(() => splitJsonArray('[{"a": 1},\n{"b": "unterminated}\n]', 'x.json')).toThrow(/x\.json:2: broken JSON: newline inside a string/);
    expect(() => splitJsonArray('[{"a": 1},\n{"b": 2}', 'x.json')).toThrow(/unterminated array/);
    expect(() => splitJsonArray('{"a": 1}', 'x.json')).toThrow(/expected a JSON array/);
    expect(() => splitJsonArray('[1,,2]', 'x.json')).toThrow(/empty element/);
    expect(() => splitJsonArray('[{"a": 1},\n {"b": [}\n]', 'x.json')).toThrow(/x\.json:2: broken JSON: mismatched '}' \(expected ']'\)/);
    expect(() => splitJsonArray('[1,2] garbage', 'x.json')).toThrow(/after the closing/);
    expect(() => splitJsonArray('', 'x.json')).toThrow(/empty file/);
    expect(splitJsonArray('[ "a,]", {"b": [1, 2]} ]', 'x.json').map((r) => r.value)).toEqual(['a,]', { b: [1, 2] }]);
    await expect(readLlava(join(dir, 'does-not-exist.json'), { root })).rejects.toThrow(/cannot read/);
    await expect(readLlava(f, { root: join(dir, 'no-root') })).rejects.toThrow(/not a readable directory/);
  });
});

describe('readGrounding', () => {
  it('accepts COCO xywh and xyxy boxes, reads sizes from headers, rejects bad boxes', async () => {
    const recs = [
      { image: 'a.png', bbox: [0, 0, 20, 20], expression: 'the red half' },
      { image: 'a.png', bbox: [20, 0, 40, 20], bbox_format: 'xyxy', sentences: [{ sent: 'the blue half' }] },
      { image: 'a.png', bbox: [0, 0, -5, 10], expression: 'negative width' },
      { image: 'a.png', bbox: [30, 0, 20, 10], bbox_format: 'xyxy', expression: 'x2 < x1' },
      { image: 'a.png', bbox: [0, 0, 100, 10], expression: 'too wide' },
      { image: 'a.png', bbox: [0, 0, 10], expression: 'three numbers' },
      { image: 'a.png', bbox: [0, 0, 'ten', 10], expression: 'a string' },
      { image: 'a.png', bbox: [0, 0, 10, 10] },
      { image: '../secret.png', bbox: [0, 0, 10, 10], expression: 'escape' },
      { image: 'corrupt.png', bbox: [0, 0, 10, 10], expression: 'corrupt image' },
      { image: 'a.png', bbox: [0, 0, 10, 10], width: 50, height: 20, expression: 'wrong size' },
    ];
    const f = write('refs.jsonl', recs.map((r) => JSON.stringify(r)).join('\n'));
    const { records, issues } = await readGrounding(f, { root, checkImages: 'header', onError: 'skip', onIssue: () => {} });
    expect(records.map((r) => r.box)).toEqual([[0, 0, 20, 20], [20, 0, 40, 20]]);
    expect(records[0]).toMatchObject({ width: 40, height: 20, expressions: ['the red half'] });
    expect(records[1]!.expressions).toEqual(['the blue half']);
    const msg = issues.map((i) => `${i.line} ${i.field ?? '-'}: ${i.message}`);
    expect(msg).toHaveLength(9);
    expect(msg[0]).toMatch(/^3 bbox: .*non-positive width or height/);
    expect(msg[1]).toMatch(/^4 bbox: .*x2 > x1/);
    expect(msg[2]).toMatch(/^5 bbox: .*past the image width 40/);
    expect(msg[3]).toMatch(/^6 bbox: expected exactly 4 numbers/);
    expect(msg[4]).toMatch(/^7 bbox\.2: expected a number/);
    expect(msg[5]).toMatch(/^8 expression: expected a referring expression/);
    expect(msg[6]).toMatch(/^9 image: .*escapes/);
    expect(msg[7]).toMatch(/^10 image: .*cannot read image header/);
    expect(msg[8]).toMatch(/^11 width: record says 50x20 but the image is 40x20/);
    await expect(readGrounding(f, { root, checkImages: 'header' })).rejects.toThrow(/refs\.jsonl:3: record 2 field 'bbox'/);
  });

  it('formats boxes as 0-999 text, optionally on the padded square', () => {
    expect(boxToText([0, 0, 20, 20], 40, 20)).toBe('[0,0,500,999]');
    expect(boxToText([0, 0, 20, 20], 40, 20, { padToSquare: true })).toBe('[0,250,500,749]');
  });
});

describe('readCaptions and loadImage', () => {
  it('reads caption pairs and reports missing captions', async () => {
    const f = write('caps.jsonl', [JSON.stringify({ image: 'a.png', caption: 'red and blue' }), JSON.stringify({ image: 'sub/b.jpg', captions: ['x', 'y'] }), JSON.stringify({ image: 'a.png' })].join('\n'));
    const { records, issues } = await readCaptions(f, { root, onError: 'skip', onIssue: () => {} });
    expect(records.map((r) => r.captions)).toEqual([['red and blue'], ['x', 'y']]);
    expect(issues).toMatchObject([{ line: 3, field: 'caption' }]);
  });

  it('decodes, pads to square and normalises; corrupt and missing files are typed errors', async () => {
    const img = await loadImage(join(root, 'a.png'), { size: 8 });
    expect(img.shape).toEqual([8, 8, 3]);
    expect([img.originalWidth, img.originalHeight]).toEqual([40, 20]);
    // top row is padding (grey), middle-left is red, middle-right is blue
    const at = (y: number, x: number) => Array.from(img.data.slice((y * 8 + x) * 3, (y * 8 + x) * 3 + 3)).map((v) => Math.round(v * 100) / 100);
    expect(at(0, 0)).toEqual([0.5, 0.5, 0.5]);
    expect(at(4, 1)).toEqual([1, 0, 0]);
    expect(at(4, 6)).toEqual([0, 0, 1]);
    const clip = await loadImage(join(root, 'a.png'), { size: [4, 6], fit: 'squash', normalize: 'clip' });
    expect(clip.shape).toEqual([4, 6, 3]);
    expect(clip.data[0]).toBeCloseTo((1 - CLIP_MEAN[0]) / CLIP_STD[0], 2);
    await expect(loadImage(join(root, 'corrupt.png'), { size: 8 })).rejects.toMatchObject({ code: 'BAD_FILE', message: expect.stringMatching(/corrupt\.png: cannot decode image/) });
    await expect(loadImage(join(root, 'missing.png'), { size: 8 })).rejects.toMatchObject({ code: 'IO_ERROR' });
    await expect(loadImage(join(root, 'a.png'), { size: 0 })).rejects.toThrow(/positive integer/);
  });
});

describe('writeImagePng', () => {
  it('round-trips a ShapesWorld rendering through loadImage within 8-bit quantisation', async () => {
    const sw = new ShapesWorld({ seed: 3 });
    const ex = sw.task('vqa', 'test')[0]!;
    const px = sw.renderImage(ex.inputs[0]!.scene);
    const size = Math.round(Math.sqrt(px.length / 3));
    const file = join(mkdtempSync(join(tmpdir(), 'png-')), 'scene.png');
    await writeImagePng(file, px, size);
    const back = await loadImage(file, { size, fit: 'pad', normalize: 'none' });
    let maxErr = 0;
    for (let i = 0; i < px.length; i++) maxErr = Math.max(maxErr, Math.abs(back.data[i]! - px[i]!));
    expect(maxErr).toBeLessThanOrEqual(0.5 / 255 + 1e-6);
    await expect(writeImagePng(file, px.subarray(1), size)).rejects.toThrow(/is not \[/);
  });
});

describe("checkImages: 'decode'", () => {
  it('finds a truncated image whose header reads fine, as a bad record (skip drops it, fail names it)', async () => {
    const full = await sharp(Buffer.alloc(64 * 64 * 3, 200), { raw: { width: 64, height: 64, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer();
    writeFileSync(join(root, 'truncated.png'), full.subarray(0, Math.floor(full.length / 2)));
    const f = write('trunc.json', JSON.stringify([good('ok', 'a.png'), good('cut', 'truncated.png')]));
    const header = await readLlava(f, { root, checkImages: 'header' });
    expect(header.records.map((r) => r.id)).toEqual(['ok', 'cut']); // the header alone passes it
    const issues: ReadIssue[] = [];
    const r = await readLlava(f, { root, checkImages: 'decode', onError: 'skip', onIssue: (i) => issues.push(i) });
    expect(r.records.map((x) => x.id)).toEqual(['ok']);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ index: 1, field: 'image' });
    expect(issues[0]!.message).toMatch(/truncated\.png: cannot decode image/);
    await expect(readLlava(f, { root, checkImages: 'decode' })).rejects.toThrow(/trunc\.json:1: record 1 field 'image': .*truncated\.png: cannot decode image/);
  });
});
