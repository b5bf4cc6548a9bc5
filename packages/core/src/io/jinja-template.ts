/**
 * Chat templates (tokenizer_config.json `chat_template`) rendered by @huggingface/jinja, the Jinja
 * engine transformers.js uses, with transformers' settings: trim_blocks + lstrip_blocks, `tojson`
 * as json.dumps(ensure_ascii=False, indent, separators, sort_keys), `raise_exception`,
 * `strftime_now`. adaptorkit writes no Jinja of its own.
 *
 * Parsing is lazy: a template that cannot be parsed never stops a tokenizer from loading; the first
 * render (or `check()`) fails with an AdaptorkitError naming the file the template came from.
 * Nesting is bounded before the parser runs (a 20,000-deep template would overflow the stack).
 */
import { Environment, Interpreter, Template, tokenize } from '@huggingface/jinja';
import { AdaptorkitError } from '../errors.js';

/** Templates longer than this are refused (real chat templates are a few KB; the largest known ~30 KB). */
export const MAX_TEMPLATE_CHARS = 1_000_000;
/** Deepest nesting of blocks ({% if/for/macro/... %}), brackets and unary operators accepted. */
export const MAX_TEMPLATE_DEPTH = 100;

const BLOCK_OPENERS = new Set(['if', 'for', 'macro', 'call', 'filter', 'generation', 'raw']);
const OPENERS = new Set(['OpenParen', 'OpenSquareBracket', 'OpenCurlyBracket']);
const CLOSERS = new Set(['CloseParen', 'CloseSquareBracket', 'CloseCurlyBracket']);

/** The deepest nesting in a template's token stream (blocks + brackets + chained unary operators). */
export function templateDepth(source: string): number {
  const tokens = tokenize(source, { lstrip_blocks: true, trim_blocks: true });
  let depth = 0;
  let max = 0;
  let unary = 0;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    // runs of prefix operators (`not not not x`, `- - 1`) recurse in the parser like brackets
    if (t.type === 'UnaryOperator' || t.type === 'AdditiveBinaryOperator' || (t.type === 'Identifier' && t.value === 'not')) {
      unary++;
      max = Math.max(max, depth + unary);
      continue;
    }
    unary = 0;
    if (OPENERS.has(t.type)) depth++;
    else if (CLOSERS.has(t.type)) depth--;
    else if (t.type === 'OpenStatement') {
      const kw = tokens[i + 1];
      if (kw?.type === 'Identifier') {
        if (BLOCK_OPENERS.has(kw.value)) depth++;
        else if (kw.value.startsWith('end')) depth--;
        // a block `{% set x %}...{% endset %}` has no '=' before '%}'
        else if (kw.value === 'set') {
          let j = i + 2;
          while (j < tokens.length && tokens[j]!.type !== 'CloseStatement' && tokens[j]!.type !== 'Equals') j++;
          if (tokens[j]?.type === 'CloseStatement') depth++;
        }
      }
    }
    max = Math.max(max, depth);
  }
  return max;
}

export interface RenderVars {
  messages: readonly unknown[];
  add_generation_prompt?: boolean;
  [key: string]: unknown;
}

export class ChatTemplate {
  private parsed: Template | undefined;
  private failure: AdaptorkitError | undefined;

  /** `where`: the file the template came from (e.g. /models/x/tokenizer_config.json), named in every error. */
  constructor(
    readonly source: string,
    readonly where = 'chat_template',
  ) {}

  /** Parse now (render does it on first use). Throws AdaptorkitError('BAD_FILE') naming the file. */
  check(): void {
    this.template();
  }

  private template(): Template {
    if (this.parsed) return this.parsed;
    if (this.failure) throw this.failure;
    try {
      if (this.source.length > MAX_TEMPLATE_CHARS) throw new Error(`it is ${this.source.length} characters long (limit ${MAX_TEMPLATE_CHARS})`);
      const depth = templateDepth(this.source);
      if (depth > MAX_TEMPLATE_DEPTH) throw new Error(`it nests ${depth} levels deep (limit ${MAX_TEMPLATE_DEPTH})`);
      this.parsed = new Template(this.source);
      return this.parsed;
    } catch (e) {
      const why = e instanceof RangeError ? 'it nests too deeply' : (e as Error).message;
      this.failure = new AdaptorkitError(
        'BAD_FILE',
        `${this.where}: chat_template cannot be parsed: ${why}. Fix or remove chat_template there, or format the prompt yourself`,
        { cause: e },
      );
      throw this.failure;
    }
  }

  /**
   * Render with transformers' variables: `messages`, `add_generation_prompt`, `tools`, `documents`,
   * the special tokens, and any extra keys the template reads (e.g. Qwen3's `enable_thinking`).
   * `raise_exception(...)` in the template becomes AdaptorkitError('INVALID_ARGUMENT').
   */
  render(vars: RenderVars): string {
    const tpl = this.template();
    try {
      // transformers' globals; the render variables override them, as render kwargs do in jinja2
      const env = new Environment();
      const all: Record<string, unknown> = { ...TEMPLATE_GLOBALS, ...vars };
      for (const [k, v] of Object.entries(all)) env.set(k, v);
      return new Interpreter(env).run(tpl.parsed).value as string;
    } catch (e) {
      if (e instanceof TemplateRaised) {
        throw new AdaptorkitError('INVALID_ARGUMENT', `chat template of ${this.where} refused the messages: ${e.message}`);
      }
      const why = e instanceof RangeError ? 'it recursed too deeply' : (e as Error).message;
      throw new AdaptorkitError('BAD_FILE', `${this.where}: chat_template failed to render: ${why}`, { cause: e });
    }
  }
}

class TemplateRaised extends Error {}

/** range() results longer than this are refused (a hostile `range(10**9)` would exhaust memory). */
export const MAX_TEMPLATE_RANGE = 1_000_000;

function boundedRange(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (![start, stop, step].every(Number.isInteger) || step === 0) throw new Error('range() needs integer arguments and a non-zero step');
  const n = Math.max(0, Math.ceil((stop - start) / step));
  if (n > MAX_TEMPLATE_RANGE) throw new Error(`range() of ${n} items is over the ${MAX_TEMPLATE_RANGE}-item limit`);
  return Array.from({ length: n }, (_, i) => start + i * step);
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** Python's datetime.now().strftime for the C locale's common directives (what chat templates use). */
export function strftimeNow(format: string, now = new Date()): string {
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const h12 = now.getHours() % 12 || 12;
  const table: Record<string, string> = {
    Y: String(now.getFullYear()),
    y: p2(now.getFullYear() % 100),
    m: p2(now.getMonth() + 1),
    d: p2(now.getDate()),
    e: String(now.getDate()).padStart(2, ' '),
    B: MONTHS[now.getMonth()]!,
    b: MONTHS[now.getMonth()]!.slice(0, 3),
    A: DAYS[now.getDay()]!,
    a: DAYS[now.getDay()]!.slice(0, 3),
    H: p2(now.getHours()),
    I: p2(h12),
    p: now.getHours() < 12 ? 'AM' : 'PM',
    M: p2(now.getMinutes()),
    S: p2(now.getSeconds()),
    '%': '%',
  };
  return format.replace(/%(.)/g, (all, c: string) => table[c] ?? all);
}

const TEMPLATE_GLOBALS: Record<string, unknown> = {
  true: true,
  false: false,
  none: null,
  True: true,
  False: false,
  None: null,
  range: boundedRange,
  strftime_now: strftimeNow,
  raise_exception: (message: unknown): never => {
    throw new TemplateRaised(String(message));
  },
};
