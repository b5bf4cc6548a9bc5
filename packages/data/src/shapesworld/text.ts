/**
 * ShapesWorld language: the vocabulary, captions (and their parser, for exact scoring), the
 * text corpus for pretraining a tiny LM, and the exact-answer text-only tasks.
 */
import { Rng } from '@adaptorkit/core';
import { SPECIAL_TOKENS, WordTokenizer } from '../tokenizer.js';
import {
  COLOURS, POSITIONS, SHAPES, SIZES, positionOf, sampleScene,
  type Colour, type Scene, type SceneObject, type Shape, type Size,
} from './world.js';

export const NUMBER_WORDS = [
  'zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten',
  'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen', 'twenty',
] as const;

export const PLURAL: Record<Shape, string> = {
  circle: 'circles', square: 'squares', triangle: 'triangles', diamond: 'diamonds', cross: 'crosses', ring: 'rings',
};

export function numberWord(n: number): string {
  const w = NUMBER_WORDS[n];
  if (w === undefined) throw new RangeError(`numberWord: ${n} is outside 0..20`);
  return w;
}

/** Every word the templates use besides attributes and numbers. */
const TEMPLATE_WORDS = `a an the at is are there what colour shape size how many objects object where
  find answer with its box letter do these inputs have in common they all contain of and so
  plus minus picture shows which bigger smaller than or to describe image sound points yes no
  question short word one`;

/** The ShapesWorld vocabulary: SPECIAL_TOKENS first, then a fixed, sorted list of words. */
export function shapesWorldVocab(): string[] {
  const words = new Set<string>();
  const add = (w: string): void => void words.add(w);
  TEMPLATE_WORDS.split(/\s+/).filter(Boolean).forEach(add);
  [...SHAPES, ...COLOURS, ...SIZES, ...Object.values(PLURAL), ...NUMBER_WORDS].forEach(add);
  POSITIONS.forEach((p) => p.split(' ').forEach(add));
  const rest = [...words].sort();
  const punct = ['.', ',', '?', ':', '[', ']'];
  const digits = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
  const letters = ['A', 'B', 'C', 'D'];
  return [...SPECIAL_TOKENS, ...punct, ...digits, ...letters, ...rest];
}

/** The word-level tokenizer over `shapesWorldVocab()`. */
export function shapesWorldTokenizer(): WordTokenizer {
  return new WordTokenizer(shapesWorldVocab());
}

/** 'a' or 'an' followed by the word ('an orange', 'a red'). */
export function withArticle(word: string): string {
  return `${/^[aeiou]/.test(word) ? 'an' : 'a'} ${word}`;
}

export function objectPhrase(o: Pick<SceneObject, 'size' | 'colour' | 'shape'>): string {
  return `a ${o.size} ${o.colour} ${o.shape}`;
}

/** "x", "x and y", "x, y and z". */
export function listPhrase(items: readonly string[]): string {
  if (items.length <= 1) return items[0] ?? '';
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** The canonical caption: every object with size, colour, shape and position, in reading order. */
export function caption(scene: Scene): string {
  return `${listPhrase(scene.objects.map((o) => `${objectPhrase(o)} at the ${positionOf(o)}`))}.`;
}

export interface ParsedObject {
  size: Size;
  colour: Colour;
  shape: Shape;
  position: string;
}

const OBJ_RE = new RegExp(`^an? (${SIZES.join('|')}) (${COLOURS.join('|')}) (${SHAPES.join('|')}) at the (${POSITIONS.join('|')})$`);

/** Parse a caption back into objects; unparseable parts are returned as `unparsed`. */
export function parseCaption(text: string): { objects: ParsedObject[]; unparsed: string[] } {
  const body = text.trim().toLowerCase().replace(/\s+/g, ' ').replace(/[.\s]+$/, '');
  const parts = body.split(/, | and /).map((p) => p.trim()).filter(Boolean);
  const objects: ParsedObject[] = [];
  const unparsed: string[] = [];
  for (const p of parts) {
    const m = OBJ_RE.exec(p);
    if (m) objects.push({ size: m[1] as Size, colour: m[2] as Colour, shape: m[3] as Shape, position: m[4] as string });
    else unparsed.push(p);
  }
  return { objects, unparsed };
}

// ---------------------------------------------------------------- text-only exact-answer tasks

export type TextTaskKind = 'arithmetic' | 'text_count' | 'text_colour' | 'text_compare';
export const TEXT_TASK_KINDS: readonly TextTaskKind[] = ['arithmetic', 'text_count', 'text_colour', 'text_compare'];

export interface TextQA {
  template: TextTaskKind;
  prompt: string;
  answer: string;
}

function describeBriefly(objs: readonly Pick<SceneObject, 'size' | 'colour' | 'shape'>[], withSize: boolean): string {
  return `the picture shows ${listPhrase(objs.map((o) => (withSize ? objectPhrase(o) : `${withArticle(o.colour)} ${o.shape}`)))}.`;
}

/** One text-only question with an exact short answer; answers are balanced by construction. */
export function sampleTextQA(rng: Rng, kind: TextTaskKind): TextQA {
  switch (kind) {
    case 'arithmetic': {
      if (rng.next() < 0.5) {
        const a = rng.int(11), b = rng.int(11);
        return { template: kind, prompt: `what is ${numberWord(a)} plus ${numberWord(b)}?`, answer: numberWord(a + b) };
      }
      const a = rng.int(11), b = rng.int(a + 1);
      return { template: kind, prompt: `what is ${numberWord(a)} minus ${numberWord(b)}?`, answer: numberWord(a - b) };
    }
    case 'text_count': {
      const k = rng.int(4); // answer 0..3, uniform
      const byShape = rng.next() < 0.5;
      const shape = rng.pick(SHAPES), colour = rng.pick(COLOURS);
      const scene = sampleScene(rng, {
        include: Array.from({ length: k }, () => (byShape ? { shape } : { colour })),
        other: (o) => (byShape ? o.shape !== shape : o.colour !== colour),
      });
      const objs = rng.shuffle([...scene.objects]);
      const q = byShape ? `how many ${PLURAL[shape]} are there?` : `how many ${colour} objects are there?`;
      return { template: kind, prompt: `${describeBriefly(objs, false)} ${q}`, answer: numberWord(k) };
    }
    case 'text_colour': {
      const shape = rng.pick(SHAPES);
      const scene = sampleScene(rng, { include: [{ shape }], other: (o) => o.shape !== shape });
      const target = scene.objects.find((o) => o.shape === shape) as SceneObject;
      const objs = rng.shuffle([...scene.objects]);
      return { template: kind, prompt: `${describeBriefly(objs, false)} what colour is the ${shape}?`, answer: target.colour };
    }
    case 'text_compare': {
      const [s1, s2] = rng.shuffle([...SHAPES]) as [Shape, Shape];
      const big = rng.next() < 0.5 ? s1 : s2;
      const objs = [
        { size: (big === s1 ? 'large' : 'small') as Size, colour: rng.pick(COLOURS), shape: s1 },
        { size: (big === s2 ? 'large' : 'small') as Size, colour: rng.pick(COLOURS), shape: s2 },
      ];
      const smaller = rng.next() < 0.5;
      const q = `which is ${smaller ? 'smaller' : 'bigger'}, the ${s1} or the ${s2}?`;
      const answer = smaller ? (big === s1 ? s2 : s1) : big;
      return { template: kind, prompt: `${describeBriefly(objs, true)} ${q}`, answer: `the ${answer}` };
    }
  }
}

// ---------------------------------------------------------------- pretraining corpus

function describeScene(rng: Rng, scene: Scene): string {
  const o = rng.pick(scene.objects);
  switch (rng.int(4)) {
    case 0:
      return `the picture shows ${caption(scene)}`;
    case 1:
      return `there is ${objectPhrase(o)} at the ${positionOf(o)}.`;
    case 2:
      return `${caption(scene)}`;
    default:
      return `the ${o.colour} ${o.shape} is at the ${positionOf(o)}.`;
  }
}

function compareSentence(rng: Rng, scene: Scene): string | undefined {
  if (scene.objects.length < 2) return undefined;
  const [a, b] = rng.shuffle([...scene.objects]) as [SceneObject, SceneObject];
  if (rng.next() < 0.5 && a.size !== b.size) {
    const rel = a.size === 'large' ? 'bigger' : 'smaller';
    return `the ${a.size} ${a.colour} ${a.shape} is ${rel} than the ${b.size} ${b.colour} ${b.shape}.`;
  }
  const ax = a.cell % 3, bx = b.cell % 3;
  if (ax !== bx) {
    return `the ${a.colour} ${a.shape} is ${ax < bx ? 'left' : 'right'} of the ${b.colour} ${b.shape}.`;
  }
  return `the ${a.colour} ${a.shape} and the ${b.colour} ${b.shape} are at the ${positionOf(a)} and the ${positionOf(b)}.`;
}

function countingSentence(rng: Rng, scene: Scene): string {
  const counts = new Map<Shape, number>();
  for (const o of scene.objects) counts.set(o.shape, (counts.get(o.shape) ?? 0) + 1);
  const parts = [...counts.entries()].map(([s, n]) => `${numberWord(n)} ${n === 1 ? s : PLURAL[s]}`);
  const n = scene.objects.length;
  if (rng.next() < 0.5) {
    const first = counts.values().next().value ?? 1;
    return `there ${first === 1 ? 'is' : 'are'} ${listPhrase(parts)}, so there ${n === 1 ? 'is one object' : `are ${numberWord(n)} objects`}.`;
  }
  return `${caption(scene)} there ${n === 1 ? 'is one object' : `are ${numberWord(n)} objects`}.`;
}

function arithmeticSentence(rng: Rng): string {
  const a = rng.int(11), b = rng.int(11);
  if (rng.next() < 0.5) return `${numberWord(a)} plus ${numberWord(b)} is ${numberWord(a + b)}.`;
  const [hi, lo] = a >= b ? [a, b] : [b, a];
  return `${numberWord(hi)} minus ${numberWord(lo)} is ${numberWord(hi - lo)}.`;
}

/** `n` corpus lines: descriptions, comparisons, counting, arithmetic and text QA (prompt + answer). */
export function sampleCorpus(rng: Rng, n: number): string[] {
  const out: string[] = [];
  while (out.length < n) {
    const scene = sampleScene(rng);
    const r = rng.int(10);
    let line: string | undefined;
    if (r < 3) line = describeScene(rng, scene);
    else if (r < 5) line = compareSentence(rng, scene);
    else if (r < 7) line = countingSentence(rng, scene);
    else if (r < 8) line = arithmeticSentence(rng);
    else {
      const qa = sampleTextQA(rng, rng.pick(TEXT_TASK_KINDS));
      line = `${qa.prompt} ${qa.answer}.`;
    }
    if (line !== undefined) out.push(line);
  }
  return out;
}
