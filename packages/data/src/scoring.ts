/**
 * Exact scorers for the ShapesWorld tasks (and anything shaped like them).
 */
import { AdaptorkitError } from '@adaptorkit/core';
import { parseCaption, type ParsedObject } from './shapesworld/text.js';
import type { Box, Example } from './shapesworld/tasks.js';

/** Trim, lowercase, collapse whitespace, drop trailing punctuation. */
export function normalizeAnswer(s: string): string {
  return s.trim().toLowerCase().replace(/\s+/g, ' ').replace(/[\s.,!?;:]+$/, '');
}

function checkLengths(what: string, preds: readonly unknown[], golds: readonly unknown[]): void {
  if (preds.length !== golds.length) {
    throw new AdaptorkitError('INVALID_ARGUMENT', `${what}: got ${preds.length} predictions for ${golds.length} examples; pass one prediction per example, in order.`);
  }
}

export interface AccuracyScore {
  accuracy: number;
  n: number;
  /** Accuracy per template (question type). */
  byTemplate: Record<string, { accuracy: number; n: number }>;
}

function byTemplate(examples: readonly Pick<Example, 'template'>[], correct: readonly boolean[]): AccuracyScore {
  const groups: Record<string, { hit: number; n: number }> = {};
  let hit = 0;
  examples.forEach((e, i) => {
    const g = (groups[e.template] ??= { hit: 0, n: 0 });
    g.n++;
    if (correct[i]) {
      g.hit++;
      hit++;
    }
  });
  const out: AccuracyScore['byTemplate'] = {};
  for (const [k, g] of Object.entries(groups).sort()) out[k] = { accuracy: g.hit / g.n, n: g.n };
  return { accuracy: examples.length ? hit / examples.length : 0, n: examples.length, byTemplate: out };
}

/** Exact match after `normalizeAnswer` (VQA, text tasks, instruct). */
export function scoreExact(preds: readonly string[], examples: readonly Pick<Example, 'template' | 'answer'>[]): AccuracyScore {
  checkLengths('scoreExact', preds, examples);
  return byTemplate(examples, examples.map((e, i) => normalizeAnswer(preds[i] as string) === normalizeAnswer(e.answer)));
}

// ---------------------------------------------------------------- grounding

/** The first `[x1,y1,x2,y2]` in the text (numbers may have spaces or decimals), or undefined. */
export function parseBox(text: string): Box | undefined {
  const m = /\[\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*\]/.exec(text);
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
}

/** Intersection over union of two [x1,y1,x2,y2] boxes (0 for degenerate boxes). */
export function boxIoU(a: readonly number[], b: readonly number[]): number {
  const [ax1, ay1, ax2, ay2] = a as [number, number, number, number];
  const [bx1, by1, bx2, by2] = b as [number, number, number, number];
  const iw = Math.min(ax2, bx2) - Math.max(ax1, bx1);
  const ih = Math.min(ay2, by2) - Math.max(ay1, by1);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const ua = Math.max(0, ax2 - ax1) * Math.max(0, ay2 - ay1) + Math.max(0, bx2 - bx1) * Math.max(0, by2 - by1) - inter;
  return ua > 0 ? inter / ua : 0;
}

export interface GroundingScore extends AccuracyScore {
  /** Mean IoU (unparseable predictions count 0). */
  meanIoU: number;
  /** Fraction of predictions with a parseable box. */
  parsed: number;
}

/** Accuracy at IoU >= threshold (default 0.5) against each example's `box`. */
export function scoreGrounding(preds: readonly string[], examples: readonly Pick<Example, 'template' | 'box' | 'id'>[], threshold = 0.5): GroundingScore {
  checkLengths('scoreGrounding', preds, examples);
  let sum = 0, parsed = 0;
  const ok = examples.map((e, i) => {
    if (!e.box) throw new AdaptorkitError('INVALID_ARGUMENT', `scoreGrounding: example ${e.id} has no gold box.`);
    const p = parseBox(preds[i] as string);
    if (!p) return false;
    parsed++;
    const iou = boxIoU(p, e.box);
    sum += iou;
    return iou >= threshold;
  });
  return { ...byTemplate(examples, ok), meanIoU: examples.length ? sum / examples.length : 0, parsed: examples.length ? parsed / examples.length : 0 };
}

// ---------------------------------------------------------------- captioning

export interface CaptionScore {
  /** Exact match of the normalised caption. */
  exactMatch: number;
  /** F1 over objects, an object matching only if size, colour, shape and position all match. */
  objectF1: number;
  /** F1 per attribute (multiset match of that attribute's values). */
  attributeF1: { size: number; colour: number; shape: number; position: number };
  n: number;
}

function multisetF1(pred: readonly string[], gold: readonly string[]): [number, number, number] {
  const counts = new Map<string, number>();
  for (const g of gold) counts.set(g, (counts.get(g) ?? 0) + 1);
  let tp = 0;
  for (const p of pred) {
    const c = counts.get(p) ?? 0;
    if (c > 0) {
      tp++;
      counts.set(p, c - 1);
    }
  }
  return [tp, pred.length, gold.length];
}

/** Captions scored exactly: whole-caption match, and micro-F1 over parsed objects/attributes. */
export function scoreCaption(preds: readonly string[], examples: readonly Pick<Example, 'answer'>[]): CaptionScore {
  checkLengths('scoreCaption', preds, examples);
  const key = (o: ParsedObject): string => `${o.size}|${o.colour}|${o.shape}|${o.position}`;
  const acc = { obj: [0, 0, 0], size: [0, 0, 0], colour: [0, 0, 0], shape: [0, 0, 0], position: [0, 0, 0] } as Record<string, [number, number, number]>;
  let exact = 0;
  examples.forEach((e, i) => {
    const pred = preds[i] as string;
    if (normalizeAnswer(pred) === normalizeAnswer(e.answer)) exact++;
    const p = parseCaption(pred).objects, g = parseCaption(e.answer).objects;
    const add = (k: string, f: (o: ParsedObject) => string): void => {
      const [tp, np, ng] = multisetF1(p.map(f), g.map(f));
      const a = acc[k] as [number, number, number];
      a[0] += tp; a[1] += np; a[2] += ng;
    };
    add('obj', key);
    add('size', (o) => o.size);
    add('colour', (o) => o.colour);
    add('shape', (o) => o.shape);
    add('position', (o) => o.position);
  });
  const f1 = (k: string): number => {
    const [tp, np, ng] = acc[k] as [number, number, number];
    return np + ng === 0 ? 0 : (2 * tp) / (np + ng);
  };
  return {
    exactMatch: examples.length ? exact / examples.length : 0,
    objectF1: f1('obj'),
    attributeF1: { size: f1('size'), colour: f1('colour'), shape: f1('shape'), position: f1('position') },
    n: examples.length,
  };
}

// ---------------------------------------------------------------- multiple choice

/** The first non-space character if it is a letter A-D (case-insensitive), else undefined. */
export function firstLetter(text: string): string | undefined {
  const c = text.trimStart().charAt(0).toUpperCase();
  return 'ABCD'.includes(c) && c !== '' ? c : undefined;
}

/** Multiple choice scored by the first answer character against the gold letter (as MCUB). */
export function scoreChoice(preds: readonly string[], examples: readonly Pick<Example, 'template' | 'answer'>[]): AccuracyScore {
  checkLengths('scoreChoice', preds, examples);
  return byTemplate(examples, examples.map((e, i) => firstLetter(preds[i] as string) === e.answer.trim().toUpperCase()));
}

// ---------------------------------------------------------------- retrieval

export interface RecallAtK {
  r1: number;
  r5: number;
  r10: number;
}
export interface RetrievalScore {
  imageToText: RecallAtK;
  textToImage: RecallAtK;
  /** Mean of the six recalls. */
  rsum: number;
}

export interface RetrievalScoreOptions {
  nImages: number;
  nTexts: number;
  /** For each text, the index of its image (default: text i belongs to image i; needs nTexts = nImages). */
  imageOfText?: readonly number[];
}

/**
 * Recall@1/5/10 in both directions from a similarity matrix `scores` [nImages, nTexts] (row-major
 * flat array, or rows). Ties count against the query (a constant matrix scores 0), so the result is
 * never flattered by ordering.
 */
export function scoreRetrieval(scores: ArrayLike<number> | readonly ArrayLike<number>[], opts: RetrievalScoreOptions): RetrievalScore {
  const { nImages: I, nTexts: T } = opts;
  const flat: ArrayLike<number> = isRows(scores) ? flatten(scores, I, T) : scores;
  if (flat.length !== I * T) {
    throw new AdaptorkitError('INVALID_ARGUMENT', `scoreRetrieval: scores has ${flat.length} entries, expected nImages*nTexts = ${I}*${T} = ${I * T}.`);
  }
  const owner = opts.imageOfText ?? (I === T ? Array.from({ length: T }, (_, i) => i) : undefined);
  if (!owner || owner.length !== T) {
    throw new AdaptorkitError('INVALID_ARGUMENT', `scoreRetrieval: imageOfText must list the image of each of the ${T} texts (needed when nTexts != nImages).`);
  }
  const s = (i: number, t: number): number => flat[i * T + t] as number;
  const ranksI2T: number[] = [];
  for (let i = 0; i < I; i++) {
    // rank of the best-scoring gold text: number of non-gold texts scoring >= it
    let best = -Infinity;
    for (let t = 0; t < T; t++) if (owner[t] === i && s(i, t) > best) best = s(i, t);
    if (best === -Infinity) continue; // an image without texts is not a query
    let rank = 0;
    for (let t = 0; t < T; t++) if (owner[t] !== i && s(i, t) >= best) rank++;
    ranksI2T.push(rank);
  }
  const ranksT2I: number[] = [];
  for (let t = 0; t < T; t++) {
    const g = owner[t] as number;
    const gs = s(g, t);
    let rank = 0;
    for (let i = 0; i < I; i++) if (i !== g && s(i, t) >= gs) rank++;
    ranksT2I.push(rank);
  }
  const recall = (ranks: number[]): RecallAtK => {
    const at = (k: number): number => (ranks.length ? ranks.filter((r) => r < k).length / ranks.length : 0);
    return { r1: at(1), r5: at(5), r10: at(10) };
  };
  const imageToText = recall(ranksI2T), textToImage = recall(ranksT2I);
  const rsum = (imageToText.r1 + imageToText.r5 + imageToText.r10 + textToImage.r1 + textToImage.r5 + textToImage.r10) / 6;
  return { imageToText, textToImage, rsum };
}

function isRows(x: ArrayLike<number> | readonly ArrayLike<number>[]): x is readonly ArrayLike<number>[] {
  return x.length > 0 && typeof (x as ArrayLike<unknown>)[0] === 'object';
}

function flatten(rows: readonly ArrayLike<number>[], I: number, T: number): Float64Array {
  if (rows.length !== I) throw new AdaptorkitError('INVALID_ARGUMENT', `scoreRetrieval: ${rows.length} rows, expected nImages = ${I}.`);
  const out = new Float64Array(I * T);
  rows.forEach((r, i) => {
    if (r.length !== T) throw new AdaptorkitError('INVALID_ARGUMENT', `scoreRetrieval: row ${i} has ${r.length} entries, expected nTexts = ${T}.`);
    for (let t = 0; t < T; t++) out[i * T + t] = r[t] as number;
  });
  return out;
}

// ---------------------------------------------------------------- one entry point

export type TaskScore = AccuracyScore | GroundingScore | CaptionScore;

/** Score predictions for a ShapesWorld task by its own metric. */
export function scoreTask(task: Example['task'], preds: readonly string[], examples: readonly Example[]): TaskScore {
  switch (task) {
    case 'caption': return scoreCaption(preds, examples);
    case 'grounding': return scoreGrounding(preds, examples);
    case 'common': return scoreChoice(preds, examples);
    case 'vqa': case 'instruct': case 'text': return scoreExact(preds, examples);
  }
}
