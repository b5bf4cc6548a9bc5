import { describe, expect, it } from 'vitest';
import { boxIoU, firstLetter, normalizeAnswer, parseBox, scoreCaption, scoreChoice, scoreExact, scoreGrounding, scoreRetrieval } from './scoring.js';

describe('scorers', () => {
  it('exact match normalises case, spaces and trailing punctuation', () => {
    expect(normalizeAnswer('  Red. ')).toBe('red');
    const s = scoreExact(['Red.', 'two', 'yes'], [{ template: 'a', answer: 'red' }, { template: 'b', answer: 'three' }, { template: 'a', answer: 'yes' }]);
    expect(s.accuracy).toBeCloseTo(2 / 3);
    expect(s.byTemplate).toEqual({ a: { accuracy: 1, n: 2 }, b: { accuracy: 0, n: 1 } });
    expect(() => scoreExact(['x'], [])).toThrow(/1 predictions for 0 examples/);
  });

  it('parses boxes and scores IoU >= 0.5', () => {
    expect(parseBox('the box is [ 10, 20,30 ,40] ok')).toEqual([10, 20, 30, 40]);
    expect(parseBox('[1,2,3]')).toBeUndefined();
    expect(boxIoU([0, 0, 10, 10], [0, 0, 10, 10])).toBe(1);
    expect(boxIoU([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(1 / 3);
    expect(boxIoU([0, 0, 10, 10], [20, 20, 30, 30])).toBe(0);
    const ex = [{ id: 'a', template: 't', box: [100, 100, 200, 200] as [number, number, number, number] }, { id: 'b', template: 't', box: [0, 0, 100, 100] as [number, number, number, number] }];
    const s = scoreGrounding(['[110,100,210,200]', 'no box'], ex);
    expect(s.accuracy).toBe(0.5);
    expect(s.parsed).toBe(0.5);
  });

  it('scores multiple choice by the first character', () => {
    expect(firstLetter(' b. because')).toBe('B');
    expect(firstLetter('The answer is A')).toBeUndefined();
    expect(scoreChoice(['A', 'C) x', 'answer: B'], [{ template: 't', answer: 'A' }, { template: 't', answer: 'C' }, { template: 't', answer: 'B' }]).accuracy).toBeCloseTo(2 / 3);
  });

  it('scores captions exactly and by object F1', () => {
    const gold = 'a large red circle at the top left and a small blue ring at the centre.';
    expect(scoreCaption([gold], [{ answer: gold }]).exactMatch).toBe(1);
    const half = scoreCaption(['a large red circle at the top left and a small green ring at the centre.'], [{ answer: gold }]);
    expect(half.exactMatch).toBe(0);
    expect(half.objectF1).toBeCloseTo(0.5);
    expect(half.attributeF1.position).toBe(1);
    expect(half.attributeF1.colour).toBeCloseTo(0.5);
  });

  it('computes R@1/5/10 in both directions, ties counting against the query', () => {
    const n = 20;
    const eye = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
    const perfect = scoreRetrieval(eye, { nImages: n, nTexts: n });
    expect(perfect.imageToText).toEqual({ r1: 1, r5: 1, r10: 1 });
    expect(perfect.textToImage).toEqual({ r1: 1, r5: 1, r10: 1 });
    const flat = scoreRetrieval(new Float32Array(n * n), { nImages: n, nTexts: n });
    expect(flat.rsum).toBe(0);
    // image i's text is i+1 (shifted): gold text ranks second for every image
    const shifted = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (j === (i + 1) % n ? 2 : j === i ? 1 : 0)));
    const s = scoreRetrieval(shifted, { nImages: n, nTexts: n });
    expect(s.imageToText).toEqual({ r1: 0, r5: 1, r10: 1 });
    // two texts per image
    const two = scoreRetrieval([[1, 0.9, 0, 0], [0, 0, 0.5, 1]], { nImages: 2, nTexts: 4, imageOfText: [0, 0, 1, 1] });
    expect(two.imageToText.r1).toBe(1);
    expect(two.textToImage.r1).toBe(1);
    expect(() => scoreRetrieval([1, 2, 3], { nImages: 2, nTexts: 2 })).toThrow(/expected nImages\*nTexts/);
  });
});
