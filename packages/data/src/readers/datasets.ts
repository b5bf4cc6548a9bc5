/**
 * Readers for the formats the field already uses:
 *   LLaVA instruction JSON   [{ id, image?, conversations: [{ from: 'human'|'gpt'|'system', value }] }]
 *   RefCOCO-style grounding  { id?, image, bbox: [4 numbers], bbox_format?: 'xywh'|'xyxy', width?, height?,
 *                              expression? | expressions? | sentences? }   (COCO bbox is [x, y, w, h])
 *   image-caption            { id?, image, caption? | captions? }
 * Each file may be a JSON array (.json) or JSON Lines (.jsonl). Image paths are relative to
 * `root` and may not leave it. Every bad record is reported with file, line and field.
 */
import { stat } from 'node:fs/promises';
import { z } from 'zod';
import { AdaptorkitError } from '@adaptorkit/core';
import { IMAGE_TOKEN } from '../tokenizer.js';
import { checkImageDecodes, imageSize } from './image.js';
import { IssueSink, type ReadOptions, type ReadResult } from './issues.js';
import { checkInsideRoot } from './paths.js';
import { acceptRaw, iterateRecords, type RawRecord } from './records.js';

export interface DatasetReadOptions extends ReadOptions {
  /** Folder the records' image paths are relative to. */
  root: string;
  /**
   * How much to check each image while reading: 'exists' (default) stats the file, 'header' also
   * reads its header with sharp (catches many corrupt files), 'decode' decodes it whole (catches
   * truncated and corrupt data too, so a bad image is a bad record, never a failure at batch time),
   * 'none' trusts the paths.
   */
  checkImages?: 'none' | 'exists' | 'header' | 'decode';
}

interface Ctx {
  file: string;
  rec: RawRecord;
  sink: IssueSink;
}

function zodIssue(ctx: Ctx, err: z.ZodError): void {
  const first = err.issues[0];
  ctx.sink.report({
    file: ctx.file, line: ctx.rec.line, index: ctx.rec.index,
    field: first && first.path.length > 0 ? first.path.join('.') : undefined,
    message: first ? first.message : 'invalid record',
  });
}

async function checkRoot(root: string): Promise<void> {
  try {
    const s = await stat(root);
    if (!s.isDirectory()) throw new Error('not a directory');
  } catch (e) {
    throw new AdaptorkitError('IO_ERROR', `dataset root ${root} is not a readable directory (${(e as Error).message}).`, { cause: e });
  }
}

/** Resolve and check a record's image; reports and returns undefined when it is unusable. */
async function resolveImage(ctx: Ctx, opts: DatasetReadOptions, p: unknown, field = 'image'): Promise<{ path: string; width?: number; height?: number } | undefined> {
  const r = checkInsideRoot(opts.root, p);
  if (r.problem !== undefined || r.resolved === undefined) {
    ctx.sink.report({ file: ctx.file, line: ctx.rec.line, index: ctx.rec.index, field, message: r.problem ?? 'bad path' });
    return undefined;
  }
  const check = opts.checkImages ?? 'exists';
  if (check === 'none') return { path: r.resolved };
  try {
    const s = await stat(r.resolved);
    if (!s.isFile()) throw new Error('not a regular file');
  } catch (e) {
    ctx.sink.report({ file: ctx.file, line: ctx.rec.line, index: ctx.rec.index, field, message: `image ${r.resolved} is missing (${(e as Error).message})` }, 'IO_ERROR');
    return undefined;
  }
  if (check === 'header' || check === 'decode') {
    try {
      if (check === 'decode') await checkImageDecodes(r.resolved);
      return { path: r.resolved, ...(await imageSize(r.resolved)) }; // header sizes: EXIF-rotated as the annotations are
    } catch (e) {
      ctx.sink.report({ file: ctx.file, line: ctx.rec.line, index: ctx.rec.index, field, message: (e as Error).message });
      return undefined;
    }
  }
  return { path: r.resolved };
}

type OneRecord<T> = (ctx: Ctx, value: unknown) => Promise<T | undefined>;

/** Stream good records; issues go to `sink` (skip mode) or throw (fail mode). */
async function* iterateDataset<T>(file: string, opts: DatasetReadOptions, sink: IssueSink, one: OneRecord<T>): AsyncGenerator<T> {
  await checkRoot(opts.root);
  for await (const rec of iterateRecords(file)) {
    const ctx: Ctx = { file, rec, sink };
    if (!acceptRaw(rec, file, sink)) continue;
    const out = await one(ctx, rec.value);
    if (out !== undefined) yield out;
  }
}

async function readAll<T>(file: string, opts: DatasetReadOptions, one: OneRecord<T>): Promise<ReadResult<T>> {
  const sink = new IssueSink(opts);
  const records: T[] = [];
  for await (const r of iterateDataset(file, opts, sink, one)) records.push(r);
  return { records, issues: sink.issues };
}

// ---------------------------------------------------------------- LLaVA

const TurnSchema = z.object({
  from: z.enum(['human', 'gpt', 'system'], { error: "expected 'human', 'gpt' or 'system'" }),
  value: z.string({ error: 'expected a string' }),
});
export const LlavaRecordSchema = z.object({
  id: z.union([z.string(), z.number()], { error: 'expected a string or number id' }),
  image: z.string({ error: 'expected a relative image path string' }).optional(),
  conversations: z.array(TurnSchema, { error: 'expected an array of {from, value} turns' }).min(2, { error: 'expected at least one human and one gpt turn' }),
});

export type Role = 'system' | 'user' | 'assistant';
export interface Turn {
  role: Role;
  text: string;
}

export interface LlavaSample {
  id: string;
  /** Absolute image path inside the root, or undefined for a text-only record. */
  image?: string;
  turns: Turn[];
  /** Where the record came from, for error messages downstream. */
  source: { file: string; line: number; index: number };
}

/** Read a LLaVA-style instruction file (.json array or .jsonl). */
export async function readLlava(file: string, opts: DatasetReadOptions): Promise<ReadResult<LlavaSample>> {
  return readAll(file, opts, llavaRecord(opts));
}

/**
 * Stream a LLaVA file record by record (a .jsonl file is never held in memory whole); bad records
 * are reported through opts.onIssue in 'skip' mode or thrown in 'fail' mode.
 */
export function streamLlava(file: string, opts: DatasetReadOptions): AsyncGenerator<LlavaSample> {
  return iterateDataset(file, opts, new IssueSink(opts), llavaRecord(opts));
}

function llavaRecord(opts: DatasetReadOptions): OneRecord<LlavaSample> {
  return async (ctx, value) => {
    const parsed = LlavaRecordSchema.safeParse(value);
    if (!parsed.success) return void zodIssue(ctx, parsed.error);
    const r = parsed.data;
    const where = { file: ctx.file, line: ctx.rec.line, index: ctx.rec.index };
    const bad = (field: string, message: string): undefined => void ctx.sink.report({ ...where, field, message });
    const turns = r.conversations.filter((t) => t.from !== 'system');
    if (r.conversations.findIndex((t) => t.from === 'system') > 0) return bad('conversations', 'a system turn may only come first');
    for (let i = 0; i < turns.length; i++) {
      const want = i % 2 === 0 ? 'human' : 'gpt';
      if (turns[i]?.from !== want) return bad(`conversations`, `turns must alternate human, gpt, ...; turn ${i} is '${turns[i]?.from}', expected '${want}'`);
    }
    if (turns.length % 2 !== 0) return bad('conversations', 'the last turn must be from gpt (an answer to train on)');
    const placeholders = r.conversations.reduce((n, t) => n + t.value.split(IMAGE_TOKEN).length - 1, 0);
    if (r.image !== undefined) {
      if (placeholders !== 1) return bad('conversations', `a record with an image needs exactly one '${IMAGE_TOKEN}' placeholder, found ${placeholders}`);
      const at = r.conversations.findIndex((t) => t.value.includes(IMAGE_TOKEN));
      if (r.conversations[at]?.from !== 'human') return bad(`conversations.${at}.value`, `'${IMAGE_TOKEN}' must be in a human turn`);
    } else if (placeholders !== 0) {
      return bad('image', `the conversation has '${IMAGE_TOKEN}' but the record has no image`);
    }
    let image: string | undefined;
    if (r.image !== undefined) {
      const img = await resolveImage(ctx, opts, r.image);
      if (!img) return undefined;
      image = img.path;
    }
    const role = (f: 'human' | 'gpt' | 'system'): Role => (f === 'human' ? 'user' : f === 'gpt' ? 'assistant' : 'system');
    return { id: String(r.id), image, turns: r.conversations.map((t) => ({ role: role(t.from), text: t.value })), source: where };
  };
}

// ---------------------------------------------------------------- RefCOCO-style grounding

const num = z.number({ error: 'expected a number' }).refine(Number.isFinite, { error: 'expected a finite number' });
export const GroundingRecordSchema = z.object({
  id: z.union([z.string(), z.number()]).optional(),
  image: z.string({ error: 'expected a relative image path string' }),
  bbox: z.array(num, { error: 'expected [x, y, w, h] (or [x1, y1, x2, y2] with bbox_format "xyxy")' }).length(4, { error: 'expected exactly 4 numbers' }),
  bbox_format: z.enum(['xywh', 'xyxy']).default('xywh'),
  width: z.number().int().positive().optional(),
  height: z.number().int().positive().optional(),
  expression: z.string().min(1).optional(),
  expressions: z.array(z.string().min(1)).min(1).optional(),
  sentences: z.array(z.union([z.string().min(1), z.object({ sent: z.string().min(1) })])).min(1).optional(),
});

export interface GroundingSample {
  id: string;
  image: string;
  expressions: string[];
  /** [x1, y1, x2, y2] in pixels of the original image. */
  box: [number, number, number, number];
  /** Original image size (from the record, or read from the image header). */
  width?: number;
  height?: number;
  source: { file: string; line: number; index: number };
}

/** Read RefCOCO-style referring-expression boxes (.json array or .jsonl). */
export async function readGrounding(file: string, opts: DatasetReadOptions): Promise<ReadResult<GroundingSample>> {
  return readAll(file, opts, async (ctx, value) => {
    const parsed = GroundingRecordSchema.safeParse(value);
    if (!parsed.success) return void zodIssue(ctx, parsed.error);
    const r = parsed.data;
    const where = { file: ctx.file, line: ctx.rec.line, index: ctx.rec.index };
    const bad = (field: string, message: string): undefined => void ctx.sink.report({ ...where, field, message });
    const expressions = [
      ...(r.expression ? [r.expression] : []), ...(r.expressions ?? []),
      ...(r.sentences ?? []).map((s) => (typeof s === 'string' ? s : s.sent)),
    ];
    if (expressions.length === 0) return bad('expression', 'expected a referring expression (expression, expressions or sentences)');
    const [a, b, c, d] = r.bbox as [number, number, number, number];
    const box: [number, number, number, number] = r.bbox_format === 'xywh' ? [a, b, a + c, b + d] : [a, b, c, d];
    if (box[0] < 0 || box[1] < 0) return bad('bbox', `box ${JSON.stringify(r.bbox)} has a negative coordinate`);
    if (!(box[2] > box[0] && box[3] > box[1])) {
      return bad('bbox', r.bbox_format === 'xywh'
        ? `box ${JSON.stringify(r.bbox)} has non-positive width or height (format xywh: [x, y, w, h])`
        : `box ${JSON.stringify(r.bbox)} needs x2 > x1 and y2 > y1 (format xyxy)`);
    }
    const img = await resolveImage(ctx, opts, r.image);
    if (!img) return undefined;
    const width = r.width ?? img.width, height = r.height ?? img.height;
    if (img.width !== undefined && r.width !== undefined && (img.width !== r.width || img.height !== r.height)) {
      return bad('width', `record says ${r.width}x${r.height} but the image is ${img.width}x${img.height}`);
    }
    const tol = 1; // annotation tools round; allow one pixel
    if (width !== undefined && box[2] > width + tol) return bad('bbox', `box ${JSON.stringify(box)} (xyxy) extends past the image width ${width}`);
    if (height !== undefined && box[3] > height + tol) return bad('bbox', `box ${JSON.stringify(box)} (xyxy) extends past the image height ${height}`);
    return { id: String(r.id ?? ctx.rec.index), image: img.path, expressions, box, width, height, source: where };
  });
}

/**
 * A pixel box [x1, y1, x2, y2] as text `[x1,y1,x2,y2]` normalised to integers 0..999. With
 * `padToSquare` the coordinates refer to the image padded to a centred square (LLaVA-style).
 */
export function boxToText(box: readonly [number, number, number, number], width: number, height: number, opts: { padToSquare?: boolean } = {}): string {
  if (!(width > 0 && height > 0)) throw new AdaptorkitError('INVALID_ARGUMENT', `boxToText: image size must be positive, got ${width}x${height}.`);
  let [x1, y1, x2, y2] = box;
  let w = width, h = height;
  if (opts.padToSquare) {
    const s = Math.max(width, height);
    const ox = (s - width) / 2, oy = (s - height) / 2;
    x1 += ox; x2 += ox; y1 += oy; y2 += oy;
    w = s; h = s;
  }
  const q = (v: number, n: number): number => Math.min(999, Math.max(0, Math.round((v / n) * 999)));
  return `[${q(x1, w)},${q(y1, h)},${q(x2, w)},${q(y2, h)}]`;
}

// ---------------------------------------------------------------- image-caption pairs

export const CaptionRecordSchema = z.object({
  id: z.union([z.string(), z.number()]).optional(),
  image: z.string({ error: 'expected a relative image path string' }),
  caption: z.string().min(1, { error: 'expected a non-empty caption' }).optional(),
  captions: z.array(z.string().min(1, { error: 'expected non-empty captions' })).min(1).optional(),
});

export interface CaptionSample {
  id: string;
  image: string;
  captions: string[];
  source: { file: string; line: number; index: number };
}

/** Read image-caption pairs (.jsonl or .json array), e.g. for retrieval. */
export async function readCaptions(file: string, opts: DatasetReadOptions): Promise<ReadResult<CaptionSample>> {
  return readAll(file, opts, async (ctx, value) => {
    const parsed = CaptionRecordSchema.safeParse(value);
    if (!parsed.success) return void zodIssue(ctx, parsed.error);
    const r = parsed.data;
    const where = { file: ctx.file, line: ctx.rec.line, index: ctx.rec.index };
    const captions = [...(r.caption ? [r.caption] : []), ...(r.captions ?? [])];
    if (captions.length === 0) return void ctx.sink.report({ ...where, field: 'caption', message: 'expected caption (string) or captions (array of strings)' });
    const img = await resolveImage(ctx, opts, r.image);
    if (!img) return undefined;
    return { id: String(r.id ?? ctx.rec.index), image: img.path, captions, source: where };
  });
}
