import { describe, expect, it } from 'vitest';
import { Rng } from '@adaptorkit/core';
import { bestConstantBoxBaseline, majorityAnswerBaseline, uniformChance } from '../baselines.js';
import { boxIoU, scoreChoice, scoreExact, scoreGrounding } from '../scoring.js';
import { ShapesWorld } from './generate.js';
import { objectBox } from './render.js';
import { caption, numberWord, parseCaption } from './text.js';
import { GROUNDING_TEMPLATES, sampleCommon, sampleGrounding, sampleVqa, toBox999, VQA_ANSWER_COUNT, VQA_TEMPLATES, type VqaTemplate } from './tasks.js';
import { POSITIONS, positionOf, sampleScene } from './world.js';

describe('ShapesWorld tasks are correct by construction', () => {
  it('VQA answers agree with the scene', () => {
    const rng = new Rng(3);
    for (let i = 0; i < 400; i++) {
      const t = VQA_TEMPLATES[i % VQA_TEMPLATES.length] as VqaTemplate;
      const ex = sampleVqa(rng, t);
      const objs = ex.inputs[0]!.scene.objects;
      const q = ex.prompt;
      expect(q.startsWith('<image> ')).toBe(true);
      if (t === 'count_all') expect(ex.answer).toBe(numberWord(objs.length));
      if (t === 'colour') {
        const shape = /the (\w+)\?/.exec(q)![1];
        const hits = objs.filter((o) => o.shape === shape);
        expect(hits.length).toBe(1);
        expect(ex.answer).toBe(hits[0]!.colour);
      }
      if (t === 'position') {
        const [, colour, shape] = /the (\w+) (\w+)\?/.exec(q)!;
        const hits = objs.filter((o) => o.shape === shape && o.colour === colour);
        expect(hits.length).toBe(1);
        expect(ex.answer).toBe(positionOf(hits[0]!));
      }
      if (t === 'exist') {
        const [, colour, shape] = /an? (\w+) (\w+)\?/.exec(q)!;
        expect(ex.answer).toBe(objs.some((o) => o.shape === shape && o.colour === colour) ? 'yes' : 'no');
      }
      expect(objs.length).toBeGreaterThanOrEqual(1);
      expect(objs.length).toBeLessThanOrEqual(4);
    }
  });

  it('grounding refers to exactly one object and answers its box', () => {
    const rng = new Rng(4);
    for (let i = 0; i < 200; i++) {
      const ex = sampleGrounding(rng, GROUNDING_TEMPLATES[i % 4]!);
      const objs = ex.inputs[0]!.scene.objects;
      const ious = objs.map((o) => boxIoU(toBox999(objectBox(o)), ex.box!));
      expect(ious.filter((v) => v === 1).length).toBe(1);
      expect(ex.answer).toMatch(/^\[\d{1,3},\d{1,3},\d{1,3},\d{1,3}\]$/);
    }
  });

  it('"what in common" has exactly one option true for every input', () => {
    const rng = new Rng(5);
    for (let i = 0; i < 200; i++) {
      const ex = sampleCommon(rng);
      expect(ex.inputs.length).toBeGreaterThanOrEqual(2);
      expect(ex.choices!.length).toBe(4);
      const holds = (c: string): boolean => ex.inputs.every(({ scene }) => {
        let m = /contain an? (\w+) object$/.exec(c);
        if (m) return scene.objects.some((o) => o.colour === m![1]);
        m = /contain a (\w+)$/.exec(c);
        if (m) return scene.objects.some((o) => o.shape === m![1]);
        m = /have (\w+) objects?$/.exec(c);
        return numberWord(scene.objects.length) === m![1];
      });
      const trueOnes = ex.choices!.map((c, k) => (holds(c) ? 'ABCD'[k] : '')).filter(Boolean);
      expect(trueOnes).toEqual([ex.answer]);
      if (ex.inputs.some((x) => x.modality === 'points')) expect(ex.template).not.toMatch(/colour/);
    }
  });

  it('scene-QA examples answer their question from their own caption, with no unknown words', () => {
    const sw = new ShapesWorld({ seed: 0 });
    const qa = sw.sceneQA(300);
    expect(sw.sceneQA(300)).toEqual(qa); // deterministic
    expect(new Set(qa.map((e) => e.prompt)).size).toBeGreaterThan(290);
    expect(new Set(qa.map((e) => e.template))).toEqual(new Set(VQA_TEMPLATES));
    const form = /^(.*?\.) ((?:what|how|where|is) [^?]*\?)$/;
    let counted = 0;
    for (const ex of qa) {
      const m = form.exec(ex.prompt);
      expect(m, ex.prompt).not.toBeNull();
      const [, cap, q] = m!;
      const objs = parseCaption(cap!);
      expect(objs.unparsed, ex.prompt).toEqual([]);
      if (ex.template === 'count_all') {
        expect(ex.answer).toBe(numberWord(objs.objects.length));
        counted++;
      }
      const colourOf = /^what colour is the (\w+)\?$/.exec(q!);
      if (colourOf) expect(ex.answer).toBe(objs.objects.find((o) => o.shape === colourOf[1])!.colour);
      const where = /^where is the (\w+) (\w+)\?$/.exec(q!);
      if (where) expect(ex.answer).toBe(objs.objects.find((o) => o.colour === where[1] && o.shape === where[2])!.position);
      expect([...sw.tokenizer.encode(`${ex.prompt} ${ex.answer}`)]).not.toContain(sw.tokenizer.unkId);
    }
    expect(counted).toBeGreaterThan(10);
  });

  it('captions parse back to the scene', () => {
    const rng = new Rng(6);
    for (let i = 0; i < 100; i++) {
      const s = sampleScene(rng);
      const p = parseCaption(caption(s));
      expect(p.unparsed).toEqual([]);
      expect(p.objects.map((o) => o.position)).toEqual(s.objects.map((o) => POSITIONS[o.cell]));
    }
  });
});

describe('ShapesWorld is not solvable from text alone', () => {
  it('text-only baselines score near chance on VQA, grounding and "in common"', () => {
    const world = new ShapesWorld({ seed: 0 });
    const vqaTrain = world.task('vqa', 'train'), vqaTest = world.task('vqa', 'test');
    const chance = uniformChance(vqaTest, (t) => VQA_ANSWER_COUNT[t as VqaTemplate]);
    const byTemplate = scoreExact(majorityAnswerBaseline(vqaTrain, vqaTest), vqaTest);
    const byQuestion = scoreExact(majorityAnswerBaseline(vqaTrain, vqaTest, (e) => e.prompt), vqaTest);
    // a bag-of-words lookup: the majority answer per (template, sorted word set) is the same as per question here
    const grTrain = world.task('grounding', 'train'), grTest = world.task('grounding', 'test');
    const grQuestion = scoreGrounding(bestConstantBoxBaseline(grTrain, grTest), grTest);
    const grTemplate = scoreGrounding(bestConstantBoxBaseline(grTrain, grTest, (e) => e.template), grTest);
    // chance for grounding: a random training box for each test question
    const rng = new Rng(9);
    const randomBox = scoreGrounding(grTest.map(() => { const b = grTrain[rng.int(grTrain.length)]!.box!; return `[${b.join(',')}]`; }), grTest);
    const cTrain = world.task('common', 'train'), cTest = world.task('common', 'test');
    const common = scoreChoice(majorityAnswerBaseline(cTrain, cTest, (e) => e.prompt.replace(/<\w+>/g, '')), cTest);
    const commonLetter = scoreChoice(majorityAnswerBaseline(cTrain, cTest, () => ''), cTest);
    const fmt = (x: number): string => (100 * x).toFixed(1);
    console.log(`[data] text-only baselines on the test splits (seed 0):
  VQA (n=${vqaTest.length}): uniform chance ${fmt(chance)}%, majority per template ${fmt(byTemplate.accuracy)}%, majority per exact question ${fmt(byQuestion.accuracy)}%
    per template (majority per template): ${Object.entries(byTemplate.byTemplate).map(([k, v]) => `${k} ${fmt(v.accuracy)}% (chance ${fmt(1 / VQA_ANSWER_COUNT[k as VqaTemplate])}%)`).join(', ')}
  grounding (n=${grTest.length}, Acc@IoU0.5): random training box ${fmt(randomBox.accuracy)}%, best constant box per template ${fmt(grTemplate.accuracy)}%, per exact question ${fmt(grQuestion.accuracy)}%
  in common (n=${cTest.length}, 4 options): majority letter ${fmt(commonLetter.accuracy)}%, majority letter per question text ${fmt(common.accuracy)}%`);
    expect(byTemplate.accuracy).toBeLessThan(chance + 0.05);
    expect(byQuestion.accuracy).toBeLessThan(chance + 0.05);
    expect(grQuestion.accuracy).toBeLessThan(0.2);
    expect(grTemplate.accuracy).toBeLessThan(0.2);
    expect(common.accuracy).toBeLessThan(0.31);
    expect(commonLetter.accuracy).toBeLessThan(0.31);
  });
});

describe('retrieval pairs', () => {
  it('have unique captions within a split', () => {
    const pairs = new ShapesWorld({ seed: 0 }).retrieval('train');
    expect(new Set(pairs.map((p) => p.text)).size).toBe(pairs.length);
  });
});
