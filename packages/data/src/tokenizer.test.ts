import { describe, expect, it } from 'vitest';
import { ShapesWorld } from './shapesworld/generate.js';
import { shapesWorldTokenizer } from './shapesworld/text.js';
import { joinWords, SPECIAL_TOKENS, splitWords, WordTokenizer } from './tokenizer.js';

describe('WordTokenizer', () => {
  const tok = shapesWorldTokenizer();

  it('has the special tokens first and a small vocabulary', () => {
    expect(tok.vocab.slice(0, SPECIAL_TOKENS.length)).toEqual([...SPECIAL_TOKENS]);
    expect([tok.padId, tok.bosId, tok.eosId, tok.unkId]).toEqual([0, 1, 2, 3]);
    expect(tok.tokenToId('<image>')).toBe(4);
    expect(tok.vocabSize).toBeLessThan(200);
  });

  it('round-trips canonical text, boxes and placeholders', () => {
    for (const s of ['<image> what colour is the circle?', '[12,345,0,999]', 'two plus three is five.',
      'a large red circle at the top left, a small blue ring at the centre and a large green cross at the bottom.',
      '<image> <sound> what do these inputs have in common? A. they all contain a ring. B. they all contain a cross. answer with the letter.']) {
      expect(tok.decode(tok.encode(s))).toBe(s);
    }
    expect(splitWords('[1,23]')).toEqual(['[', '1', ',', '2', '3', ']']);
    expect(joinWords(['a', ',', 'b', '.'])).toBe('a, b.');
  });

  it('maps unknown words to <unk>, drops pad/bos/eos when decoding, and rejects bad ids', () => {
    expect(tok.encode('a zebra')).toEqual([tok.tokenToId('a'), tok.unkId]);
    expect(tok.decode([tok.bosId, tok.tokenToId('red')!, tok.eosId, tok.padId])).toBe('red');
    expect(() => tok.decode([10_000])).toThrow(/outside the vocabulary/);
    expect(() => new WordTokenizer(['<bos>'])).toThrow(/vocab\[0\] must be '<pad>'/);
  });

  it('covers every word ShapesWorld generates', () => {
    const world = new ShapesWorld({ seed: 11 });
    const texts: string[] = [...world.corpus('train', 3000), ...world.retrieval('train', 200).map((p) => p.text)];
    for (const t of ['caption', 'vqa', 'grounding', 'common', 'instruct', 'text'] as const) {
      for (const e of world.task(t, 'train', 600)) texts.push(e.prompt, e.answer);
    }
    const unknown = new Set(texts.flatMap((t) => tok.unknownWords(t)));
    expect([...unknown]).toEqual([]);
    for (const t of texts.slice(0, 2000)) expect(tok.decode(tok.encode(t))).toBe(t);
  });
});
