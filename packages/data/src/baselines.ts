/**
 * Text-only baselines: what a model that never looks at the other modality can score. Used to
 * show the ShapesWorld tasks need the image (see the package README for measured numbers).
 */
import type { Box, Example } from './shapesworld/tasks.js';
import { formatBox } from './shapesworld/tasks.js';
import { boxIoU } from './scoring.js';

function majority(values: readonly string[]): string {
  const counts = new Map<string, number>();
  let best = '', bestN = -1;
  for (const v of values) {
    const n = (counts.get(v) ?? 0) + 1;
    counts.set(v, n);
    // ties -> the lexicographically first, so the baseline is deterministic
    if (n > bestN || (n === bestN && v < best)) {
      best = v;
      bestN = n;
    }
  }
  return best;
}

/**
 * Majority answer per key (e.g. the template, or the exact question text) learned on `train`,
 * falling back to the template's majority, then the global majority, for keys never seen.
 */
export function majorityAnswerBaseline(
  train: readonly Example[], test: readonly Example[], key: (e: Example) => string = (e) => e.template,
): string[] {
  const byKey = new Map<string, string[]>(), byTemplate = new Map<string, string[]>();
  for (const e of train) {
    (byKey.get(key(e)) ?? byKey.set(key(e), []).get(key(e)))?.push(e.answer);
    (byTemplate.get(e.template) ?? byTemplate.set(e.template, []).get(e.template))?.push(e.answer);
  }
  const global = majority(train.map((e) => e.answer));
  const cacheK = new Map<string, string>(), cacheT = new Map<string, string>();
  return test.map((e) => {
    const k = key(e);
    const ks = byKey.get(k);
    if (ks) return cacheK.get(k) ?? (cacheK.set(k, majority(ks)), cacheK.get(k) as string);
    const ts = byTemplate.get(e.template);
    if (ts) return cacheT.get(e.template) ?? (cacheT.set(e.template, majority(ts)), cacheT.get(e.template) as string);
    return global;
  });
}

/**
 * Text-only grounding: for each question text (falling back to its template), the training box
 * that has IoU >= 0.5 with the most training boxes of that question (the best constant guess).
 */
export function bestConstantBoxBaseline(train: readonly Example[], test: readonly Example[], key: (e: Example) => string = (e) => e.prompt): string[] {
  const groups = new Map<string, Box[]>();
  const all: Box[] = [];
  for (const e of train) {
    if (!e.box) continue;
    (groups.get(key(e)) ?? groups.set(key(e), []).get(key(e)))?.push(e.box);
    all.push(e.box);
  }
  const best = (boxes: readonly Box[]): Box => {
    // candidates: a sample of the group's own boxes (all of them for small groups)
    const cands = boxes.length > 200 ? boxes.filter((_, i) => i % Math.ceil(boxes.length / 200) === 0) : boxes;
    let top: Box = cands[0] ?? [0, 0, 999, 999], topN = -1;
    for (const c of cands) {
      let n = 0;
      for (const b of boxes) if (boxIoU(c, b) >= 0.5) n++;
      if (n > topN) {
        top = c;
        topN = n;
      }
    }
    return top;
  };
  const globalBest = best(all);
  const cache = new Map<string, Box>();
  return test.map((e) => {
    const k = key(e);
    let b = cache.get(k);
    if (!b) {
      const g = groups.get(k);
      b = g && g.length > 0 ? best(g) : globalBest;
      cache.set(k, b);
    }
    return formatBox(b);
  });
}

/** Accuracy of guessing uniformly among each template's possible answers (expected value). */
export function uniformChance(test: readonly Example[], answersPerTemplate: (template: string) => number): number {
  if (test.length === 0) return 0;
  return test.reduce((s, e) => s + 1 / answersPerTemplate(e.template), 0) / test.length;
}
