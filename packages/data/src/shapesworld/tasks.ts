/**
 * ShapesWorld tasks. Every example is a prompt with modality placeholders (`<image>`, `<sound>`,
 * `<points>`, in the order of `inputs`) and an exact short answer. Questions are built
 * answer-first: the template and its words are drawn independently of the answer, which is
 * drawn uniformly, and the scene is then constructed to make that answer true. So the question
 * text carries no information about the answer; the other modality has to be looked at.
 */
import { Rng } from '@adaptorkit/core';
import { IMAGE_TOKEN, POINTS_TOKEN, SOUND_TOKEN } from '../tokenizer.js';
import { objectBox } from './render.js';
import { caption, numberWord, PLURAL, sampleTextQA, TEXT_TASK_KINDS, withArticle } from './text.js';
import {
  COLOURS, POSITIONS, SHAPES, SIZES, sampleScene,
  type Colour, type Scene, type SceneObject, type Shape,
} from './world.js';

export type Modality = 'image' | 'sound' | 'points';
export const MODALITY_TOKENS: Record<Modality, string> = { image: IMAGE_TOKEN, sound: SOUND_TOKEN, points: POINTS_TOKEN };

export interface ModalityInput {
  modality: Modality;
  scene: Scene;
}

export type TaskName = 'caption' | 'vqa' | 'grounding' | 'common' | 'instruct' | 'text';
export const TASK_NAMES: readonly TaskName[] = ['caption', 'vqa', 'grounding', 'common', 'instruct', 'text'];

/** A box [x1, y1, x2, y2] in integer coordinates 0..999 of the (square) canvas. */
export type Box = [number, number, number, number];

export interface Example {
  /** `${task}-${split}-${index}` */
  id: string;
  task: TaskName;
  /** Question template (e.g. 'colour', 'count_shape', 'ref_colour_shape', 'arithmetic'). */
  template: string;
  /** Non-text inputs, in the order their placeholders appear in `prompt`; empty for text-only. */
  inputs: ModalityInput[];
  prompt: string;
  answer: string;
  /** grounding: the gold box. */
  box?: Box;
  /** common: option texts for A..D. */
  choices?: string[];
}

/** An image-text pair for retrieval; pair i's image matches pair i's text. */
export interface RetrievalPair {
  id: string;
  scene: Scene;
  text: string;
}

export const VQA_TEMPLATES = ['colour', 'shape', 'size', 'count_all', 'count_shape', 'count_colour', 'position', 'exist'] as const;
export type VqaTemplate = (typeof VQA_TEMPLATES)[number];
/** How many answers each VQA template can have (uniform-guess chance = 1 / this). */
export const VQA_ANSWER_COUNT: Record<VqaTemplate, number> = {
  colour: COLOURS.length, shape: SHAPES.length, size: SIZES.length, count_all: 4, count_shape: 4, count_colour: 4,
  position: POSITIONS.length, exist: 2,
};

export const GROUNDING_TEMPLATES = ['ref_colour_shape', 'ref_size_shape', 'ref_colour', 'ref_shape'] as const;
export type GroundingTemplate = (typeof GROUNDING_TEMPLATES)[number];

type Draft = Omit<Example, 'id' | 'task'>;

function withImage(scene: Scene, question: string): Pick<Example, 'inputs' | 'prompt'> {
  return { inputs: [{ modality: 'image', scene }], prompt: `${IMAGE_TOKEN} ${question}` };
}

function otherColour(rng: Rng, c: Colour): Colour {
  return rng.pick(COLOURS.filter((x) => x !== c));
}
function otherShape(rng: Rng, s: Shape): Shape {
  return rng.pick(SHAPES.filter((x) => x !== s));
}

/** One VQA question about a freshly built scene. */
export function sampleVqa(rng: Rng, template: VqaTemplate): Draft {
  const shape = rng.pick(SHAPES), colour = rng.pick(COLOURS), size = rng.pick(SIZES);
  switch (template) {
    case 'colour': {
      const scene = sampleScene(rng, { include: [{ shape, colour }], other: (o) => o.shape !== shape });
      return { template, ...withImage(scene, `what colour is the ${shape}?`), answer: colour };
    }
    case 'shape': {
      const scene = sampleScene(rng, { include: [{ shape, colour }], other: (o) => o.colour !== colour });
      return { template, ...withImage(scene, `what shape is the ${colour} object?`), answer: shape };
    }
    case 'size': {
      const scene = sampleScene(rng, { include: [{ shape, colour, size }], other: (o) => o.shape !== shape || o.colour !== colour });
      return { template, ...withImage(scene, `what size is the ${colour} ${shape}?`), answer: size };
    }
    case 'count_all': {
      const n = 1 + rng.int(4);
      const scene = sampleScene(rng, { count: n });
      return { template, ...withImage(scene, 'how many objects are there?'), answer: numberWord(n) };
    }
    case 'count_shape': {
      const k = rng.int(4);
      const scene = sampleScene(rng, { include: Array.from({ length: k }, () => ({ shape })), other: (o) => o.shape !== shape });
      return { template, ...withImage(scene, `how many ${PLURAL[shape]} are there?`), answer: numberWord(k) };
    }
    case 'count_colour': {
      const k = rng.int(4);
      const scene = sampleScene(rng, { include: Array.from({ length: k }, () => ({ colour })), other: (o) => o.colour !== colour });
      return { template, ...withImage(scene, `how many ${colour} objects are there?`), answer: numberWord(k) };
    }
    case 'position': {
      const cell = rng.int(9);
      const scene = sampleScene(rng, { include: [{ shape, colour, cell }], other: (o) => o.shape !== shape || o.colour !== colour });
      return { template, ...withImage(scene, `where is the ${colour} ${shape}?`), answer: POSITIONS[cell] as string };
    }
    case 'exist': {
      const yes = rng.next() < 0.5;
      const include = yes
        ? [{ shape, colour }]
        // Near misses make "no" need looking: same shape in another colour, or same colour on another shape.
        : rng.next() < 0.75 ? [rng.next() < 0.5 ? { shape, colour: otherColour(rng, colour) } : { shape: otherShape(rng, shape), colour }] : [];
      const scene = sampleScene(rng, { include, other: (o) => yes || o.shape !== shape || o.colour !== colour });
      return { template, ...withImage(scene, `is there ${withArticle(colour)} ${shape}?`), answer: yes ? 'yes' : 'no' };
    }
  }
}

/** Normalise a unit-coordinate box to integers 0..999. */
export function toBox999(b: readonly [number, number, number, number]): Box {
  return b.map((v) => Math.min(999, Math.max(0, Math.round(v * 999)))) as Box;
}

export function formatBox(b: Box): string {
  return `[${b[0]},${b[1]},${b[2]},${b[3]}]`;
}

/** One referring expression with a unique referent, answered by its box. */
export function sampleGrounding(rng: Rng, template: GroundingTemplate): Draft {
  const shape = rng.pick(SHAPES), colour = rng.pick(COLOURS), size = rng.pick(SIZES);
  let scene: Scene;
  let expr: string;
  let match: (o: SceneObject) => boolean;
  switch (template) {
    case 'ref_colour_shape':
      match = (o) => o.shape === shape && o.colour === colour;
      scene = sampleScene(rng, { include: [{ shape, colour }], other: (o) => !(o.shape === shape && o.colour === colour) });
      expr = `the ${colour} ${shape}`;
      break;
    case 'ref_size_shape':
      match = (o) => o.shape === shape && o.size === size;
      scene = sampleScene(rng, { include: [{ shape, size }], other: (o) => !(o.shape === shape && o.size === size) });
      expr = `the ${size} ${shape}`;
      break;
    case 'ref_colour':
      match = (o) => o.colour === colour;
      scene = sampleScene(rng, { include: [{ colour }], other: (o) => o.colour !== colour });
      expr = `the ${colour} object`;
      break;
    case 'ref_shape':
      match = (o) => o.shape === shape;
      scene = sampleScene(rng, { include: [{ shape }], other: (o) => o.shape !== shape });
      expr = `the ${shape}`;
      break;
  }
  const target = scene.objects.find(match) as SceneObject;
  const box = toBox999(objectBox(target));
  return { template, ...withImage(scene, `find ${expr}. answer with its box.`), answer: formatBox(box), box };
}

export function sampleCaption(rng: Rng): Draft {
  const scene = sampleScene(rng);
  return { template: 'caption', ...withImage(scene, 'describe the image.'), answer: caption(scene) };
}

/** Which attributes each modality shows: points have no colour, sound has no position. */
const COMMON_MODALITY_SETS: readonly Modality[][] = [
  ['image', 'sound'], ['image', 'points'], ['sound', 'points'], ['image', 'sound', 'points'],
];
export const LETTERS = ['A', 'B', 'C', 'D'] as const;

/**
 * "What do these inputs have in common?" over 2-3 modalities, each showing its own scene.
 * Exactly one option holds for every input; the distractors are of the same kind (so the options'
 * words give nothing away) and each fails for at least one input.
 */
export function sampleCommon(rng: Rng): Draft {
  const modalities = rng.pick(COMMON_MODALITY_SETS);
  const kinds: ('shape' | 'colour' | 'count')[] = modalities.includes('points') ? ['shape', 'count'] : ['shape', 'colour', 'count'];
  const kind = rng.pick(kinds);
  const values: readonly string[] = kind === 'shape' ? SHAPES : kind === 'colour' ? COLOURS : ['1', '2', '3', '4'];
  const gold = rng.pick(values);
  const holds = (scene: Scene, v: string): boolean =>
    kind === 'shape' ? scene.objects.some((o) => o.shape === v)
      : kind === 'colour' ? scene.objects.some((o) => o.colour === v)
        : scene.objects.length === Number(v);
  const scenes = modalities.map(() =>
    kind === 'count' ? sampleScene(rng, { count: Number(gold) })
      : sampleScene(rng, { include: [kind === 'shape' ? { shape: gold as Shape } : { colour: gold as Colour }] }));
  const distractors = rng.shuffle(values.filter((v) => v !== gold && !scenes.every((s) => holds(s, v)))).slice(0, 3);
  const options = rng.shuffle([gold, ...distractors]);
  const phrase = (v: string): string =>
    kind === 'shape' ? `they all contain a ${v}` : kind === 'colour' ? `they all contain ${withArticle(v)} object`
      : `they all have ${numberWord(Number(v))} ${v === '1' ? 'object' : 'objects'}`;
  const choices = options.map(phrase);
  const letter = LETTERS[options.indexOf(gold)] as string;
  const placeholders = modalities.map((m) => MODALITY_TOKENS[m]).join(' ');
  const listed = choices.map((c, i) => `${LETTERS[i]}. ${c}.`).join(' ');
  return {
    template: `common_${kind}_${modalities.join('_')}`,
    inputs: modalities.map((modality, i) => ({ modality, scene: scenes[i] as Scene })),
    prompt: `${placeholders} what do these inputs have in common? ${listed} answer with the letter.`,
    answer: letter,
    choices,
  };
}

export function sampleText(rng: Rng): Draft {
  const qa = sampleTextQA(rng, rng.pick(TEXT_TASK_KINDS));
  return { template: qa.template, inputs: [], prompt: qa.prompt, answer: qa.answer };
}

/** A VQA question asked about a scene given as text: `prompt` is the caption and the question. */
export interface SceneQA {
  template: VqaTemplate;
  prompt: string;
  answer: string;
}

/**
 * A VQA question about a scene described in text: the scene's caption, then the question (without
 * the image placeholder), e.g. "a small red circle at the top left. what colour is the circle?"
 * -> "red". Text that teaches an LM to answer every VQA template from a description, so that an
 * adaptor only has to supply the perception.
 */
export function sampleSceneQA(rng: Rng): SceneQA {
  const template = rng.pick(VQA_TEMPLATES);
  const d = sampleVqa(rng, template);
  const question = d.prompt.replace(IMAGE_TOKEN, '').trim();
  return { template, prompt: `${caption(d.inputs[0]!.scene)} ${question}`, answer: d.answer };
}

/** Text-only and image instructions mixed half and half (for routing, e.g. MMA). */
export function sampleInstruct(rng: Rng): Draft {
  if (rng.next() < 0.5) return sampleText(rng);
  return rng.next() < 0.2 ? sampleCaption(rng) : sampleVqa(rng, rng.pick(VQA_TEMPLATES));
}

/** Generate `n` examples of a task from `rng`. */
export function sampleTask(rng: Rng, task: TaskName, n: number, split: string): Example[] {
  const out: Example[] = [];
  for (let i = 0; i < n; i++) {
    let d: Draft;
    switch (task) {
      case 'caption': d = sampleCaption(rng); break;
      case 'vqa': d = sampleVqa(rng, rng.pick(VQA_TEMPLATES)); break;
      case 'grounding': d = sampleGrounding(rng, rng.pick(GROUNDING_TEMPLATES)); break;
      case 'common': d = sampleCommon(rng); break;
      case 'instruct': d = sampleInstruct(rng); break;
      case 'text': d = sampleText(rng); break;
    }
    out.push({ id: `${task}-${split}-${i}`, task, ...d });
  }
  return out;
}

export function sampleRetrieval(rng: Rng, n: number, split: string): RetrievalPair[] {
  const out: RetrievalPair[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    // Captions are unique within a split, so every text has exactly one matching image.
    let scene = sampleScene(rng);
    for (let tries = 0; seen.has(caption(scene)) && tries < 100; tries++) scene = sampleScene(rng);
    seen.add(caption(scene));
    out.push({ id: `retrieval-${split}-${i}`, scene, text: caption(scene) });
  }
  return out;
}
