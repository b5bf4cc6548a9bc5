/**
 * The composition experiment's questions: the common-attribute question over a fixed modality set
 * (as @adaptorkit/data's 'common' task builds it), and the direct count question.
 */
import { Rng } from '@adaptorkit/core';
import { COLOURS, IMAGE_TOKEN, LETTERS, SHAPES, SOUND_TOKEN, numberWord, sampleScene, withArticle, type Scene, type ShapesWorld } from '@adaptorkit/data';
import type { ComposeOptions } from './options.js';

export type ComposeModality = 'image' | 'sound';

export interface ComposeExample {
  id: string;
  template: string;
  inputs: { modality: ComposeModality; scene: Scene }[];
  prompt: string;
  answer: string;
}

export interface ComposeData {
  image: { train: ComposeExample[]; test: ComposeExample[] };
  sound: { train: ComposeExample[]; test: ComposeExample[] };
  common: { val: ComposeExample[]; test: ComposeExample[] };
}

const placeholders = (modalities: readonly ComposeModality[]): string => modalities.map((m) => (m === 'image' ? IMAGE_TOKEN : SOUND_TOKEN)).join(' ');

/**
 * The common-attribute question over the given modalities, as @adaptorkit/data's sampleCommon builds
 * it (same prompt, same option phrases, distractors that fail for at least one input), but with the
 * modality set fixed. With one modality it is that modality's single-modality task.
 */
export function sampleCommonOver(rng: Rng, modalities: readonly ComposeModality[]): Omit<ComposeExample, 'id'> {
  const kind = rng.pick(['shape', 'colour', 'count'] as const);
  const values: readonly string[] = kind === 'shape' ? SHAPES : kind === 'colour' ? COLOURS : ['1', '2', '3', '4'];
  const gold = rng.pick(values);
  const holds = (scene: Scene, v: string): boolean =>
    kind === 'shape' ? scene.objects.some((o) => o.shape === v) : kind === 'colour' ? scene.objects.some((o) => o.colour === v) : scene.objects.length === Number(v);
  const scenes = modalities.map(() =>
    kind === 'count' ? sampleScene(rng, { count: Number(gold) }) : sampleScene(rng, { include: [kind === 'shape' ? { shape: gold as Scene['objects'][number]['shape'] } : { colour: gold as Scene['objects'][number]['colour'] }] }),
  );
  const distractors = rng.shuffle(values.filter((v) => v !== gold && !scenes.every((s) => holds(s, v)))).slice(0, 3);
  const options = rng.shuffle([gold, ...distractors]);
  const phrase = (v: string): string =>
    kind === 'shape' ? `they all contain a ${v}` : kind === 'colour' ? `they all contain ${withArticle(v)} object` : `they all have ${numberWord(Number(v))} ${v === '1' ? 'object' : 'objects'}`;
  const listed = options.map((v, i) => `${LETTERS[i]}. ${phrase(v)}.`).join(' ');
  return {
    template: `${kind}_${modalities.join('_')}`,
    inputs: modalities.map((modality, i) => ({ modality, scene: scenes[i]! })),
    prompt: `${placeholders(modalities)} what do these inputs have in common? ${listed} answer with the letter.`,
    answer: LETTERS[options.indexOf(gold)]!,
  };
}

function countSplit(seed: number, k: number, n: number, modalities: readonly ComposeModality[]): ComposeExample[] {
  const rng = new Rng((seed * 7919 + 200 + k) >>> 0);
  return Array.from({ length: n }, (_, i) => {
    const c = 1 + rng.int(4);
    return {
      id: `count-${k}-${i}`,
      template: `count_${modalities.join('_')}`,
      inputs: modalities.map((modality) => ({ modality, scene: sampleScene(rng, { count: c }) })),
      prompt: `${placeholders(modalities)} how many objects are there?`,
      answer: numberWord(c),
    };
  });
}

/** Every split the experiment trains and scores on (deterministic in the seed). */
export function composeData(sw: ShapesWorld, o: ComposeOptions): ComposeData {
  const split = (name: string, k: number, n: number, modalities: readonly ComposeModality[]): ComposeExample[] => {
    const rng = new Rng((o.seed * 7919 + k) >>> 0);
    return Array.from({ length: n }, (_, i) => ({ id: `${name}-${i}`, ...sampleCommonOver(rng, modalities) }));
  };
  const imageSound = (e: { template: string }) => e.template.endsWith('_image_sound');
  const asCompose = (e: ReturnType<ShapesWorld['task']>[number]): ComposeExample => ({ ...e, inputs: e.inputs.map((x) => ({ modality: x.modality as ComposeModality, scene: x.scene })) });
  const data: ComposeData =
    o.task === 'count'
      ? {
        image: { train: countSplit(o.seed, 1, o.train, ['image']), test: countSplit(o.seed, 2, o.test, ['image']) },
        sound: { train: countSplit(o.seed, 3, o.train, ['sound']), test: countSplit(o.seed, 4, o.test, ['sound']) },
        common: { val: countSplit(o.seed, 5, 200, ['image', 'sound']), test: countSplit(o.seed, 6, o.joint, ['image', 'sound']) },
      }
      : {
        image: { train: split('image-train', 1, o.train, ['image']), test: split('image-test', 2, o.test, ['image']) },
        sound: { train: split('sound-train', 3, o.train, ['sound']), test: split('sound-test', 4, o.test, ['sound']) },
        // the multi-modal task itself: @adaptorkit/data's 'common' split, the image + sound examples
        common: {
          val: sw.task('common', 'val', 1200).filter(imageSound).map(asCompose),
          test: sw.task('common', 'test', 2000).filter(imageSound).map(asCompose),
        },
      };
  if (o.diag) {
    const direct = (k: number, n: number): ComposeExample[] => {
      const rng = new Rng((o.seed * 7919 + 100 + k) >>> 0);
      return Array.from({ length: n }, (_, i) => {
        const c = 1 + rng.int(4);
        const scene = sampleScene(rng, { count: c });
        return { id: `direct-${k}-${i}`, template: 'count_sound', inputs: [{ modality: 'sound', scene }], prompt: `${SOUND_TOKEN} how many objects are there?`, answer: numberWord(c) };
      });
    };
    data.sound = { train: direct(1, o.train), test: direct(2, o.test) };
  }
  return data;
}
