/**
 * HF tokenizers from a local folder: tokenizer.json (+ tokenizer_config.json) through
 * @huggingface/tokenizers, with the special tokens of tokenizer_config.json and its chat template
 * (rendered by @huggingface/jinja with transformers' settings, see jinja-template.ts).
 *
 * `HFTokenizer` satisfies @adaptorkit/data's TextTokenizer contract: `encode(text)` adds no
 * BOS/EOS (pass { addSpecialTokens: true } for the tokenizer's own post-processing), `decode(ids)`
 * drops special tokens unless asked to keep them.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { AdaptorkitError } from '../errors.js';
import { ChatTemplate } from './jinja-template.js';
import type { HFConfig } from './hf-config.js';
import { readJson } from './hf.js';
import { validateTokenizerFiles } from './validate-tokenizer.js';

export interface ChatMessage {
  role: string;
  content: string;
}

/**
 * A message as chat templates read it: content may be a list of parts (`{ type: 'text', text }`,
 * `{ type: 'image' }`), and templates read other fields (tool_calls, reasoning_content, name ...).
 */
export type ChatTemplateMessage = { role: string; content?: unknown; [key: string]: unknown };

export interface ChatTemplateOptions {
  /** Default true: end with the header of an assistant turn. */
  addGenerationPrompt?: boolean;
  /** Tool schemas (JSON-schema function descriptions, as transformers passes them). */
  tools?: readonly unknown[];
  /** Documents for retrieval-augmented templates. */
  documents?: readonly unknown[];
  /** Other variables the template reads (e.g. Qwen3's enable_thinking). */
  extra?: Record<string, unknown>;
}

const SPECIAL_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;

/** The special-tokens map transformers passes to chat templates (tokens that are set, additional_special_tokens). */
export function templateSpecialTokens(config: HFConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of SPECIAL_KEYS) {
    const s = tokenString(config[k]);
    if (s !== undefined) out[k] = s;
  }
  const extra = config.additional_special_tokens;
  if (Array.isArray(extra)) out.additional_special_tokens = extra.map((t) => tokenString(t) ?? null);
  return out;
}

export interface SpecialTokens {
  bos?: string;
  eos?: string;
  pad?: string;
  unk?: string;
}

/** tokenizer_config.json stores tokens as strings or as AddedToken objects ({ content }). */
function tokenString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

export class HFTokenizer {
  /** One more than the largest id (added tokens included). */
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly unkId: number | undefined;
  /** pad_token's id; falls back to eos (common for LLaMA), then 0. */
  readonly padId: number;
  readonly specialTokens: SpecialTokens;
  /** Ids of all special added tokens (dropped by decode by default). */
  readonly specialIds: ReadonlySet<number>;
  readonly chatTemplate: ChatTemplate | undefined;

  constructor(
    readonly inner: Tokenizer,
    readonly config: HFConfig,
    readonly source = '(memory)',
  ) {
    const vocab = inner.get_vocab(true);
    let max = -1;
    for (const id of vocab.values()) if (id > max) max = id;
    this.vocabSize = max + 1;
    this.specialTokens = {
      bos: tokenString(config.bos_token),
      eos: tokenString(config.eos_token),
      pad: tokenString(config.pad_token),
      unk: tokenString(config.unk_token),
    };
    const id = (t: string | undefined): number | undefined => (t === undefined ? undefined : inner.token_to_id(t));
    this.bosId = id(this.specialTokens.bos);
    this.eosId = id(this.specialTokens.eos);
    this.unkId = id(this.specialTokens.unk);
    this.padId = id(this.specialTokens.pad) ?? this.eosId ?? 0;
    const specials = new Set<number>();
    for (const [i, t] of inner.get_added_tokens_decoder()) if (t.special) specials.add(i);
    for (const i of [this.bosId, this.eosId, this.unkId, id(this.specialTokens.pad)]) if (i !== undefined) specials.add(i);
    this.specialIds = specials;
    let tpl = config.chat_template;
    if (Array.isArray(tpl)) tpl = (tpl as { name?: string; template?: string }[]).find((t) => t.name === 'default')?.template;
    const where = source === '(memory)' ? 'tokenizer_config.json' : path.join(source, 'tokenizer_config.json');
    this.chatTemplate = typeof tpl === 'string' ? new ChatTemplate(tpl, where) : undefined;
  }

  /** Text -> ids. Default: no special tokens added (the TextTokenizer contract). */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    return this.inner.encode(text, { add_special_tokens: opts.addSpecialTokens ?? false }).ids;
  }

  /** Ids -> text; special tokens are dropped unless skipSpecialTokens is false. */
  decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    for (const i of ids) {
      if (!Number.isInteger(i) || i < 0 || i >= this.vocabSize) throw new AdaptorkitError('INVALID_ARGUMENT', `decode: id ${i} is outside the vocabulary [0, ${this.vocabSize})`);
    }
    if (ids.length === 0) return '';
    return this.inner.decode([...ids], { skip_special_tokens: opts.skipSpecialTokens ?? true });
  }

  tokenToId(token: string): number | undefined {
    return this.inner.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.inner.id_to_token(id);
  }

  /**
   * Render messages with the tokenizer's chat template (tokenizer_config.json `chat_template`),
   * with the variables transformers passes: messages, tools, documents, add_generation_prompt,
   * the special tokens, then `extra`. The result is text with the special tokens written out;
   * encode it with encode(text) (no extra BOS: templates that want one write bos_token themselves).
   * A template that cannot be parsed is an AdaptorkitError('BAD_FILE') naming tokenizer_config.json.
   */
  applyChatTemplate(messages: readonly (ChatMessage | ChatTemplateMessage)[], opts: ChatTemplateOptions = {}): string {
    if (!this.chatTemplate) {
      throw new AdaptorkitError('UNSUPPORTED', `${this.source}: tokenizer_config.json has no chat_template; format the prompt yourself`);
    }
    return this.chatTemplate.render({
      messages,
      tools: opts.tools ?? null,
      documents: opts.documents ?? null,
      add_generation_prompt: opts.addGenerationPrompt ?? true,
      ...templateSpecialTokens(this.config),
      ...opts.extra,
    });
  }
}

/** Load tokenizer.json (+ tokenizer_config.json when present) from a local folder. */
export async function loadTokenizer(dir: string): Promise<HFTokenizer> {
  const tjPath = path.join(dir, 'tokenizer.json');
  const tj = await readJson(tjPath, 'tokenizer.json');
  const tcPath = path.join(dir, 'tokenizer_config.json');
  const hasConfig = await fsp
    .access(tcPath)
    .then(() => true)
    .catch(() => false);
  const tc = hasConfig ? await readJson(tcPath, 'tokenizer_config.json') : {};
  validateTokenizerFiles(tj, tjPath, tc, tcPath); // ids in range, no backtracking regexes (validate-tokenizer.ts)
  let inner: Tokenizer;
  try {
    inner = new Tokenizer(tj, tc);
  } catch (e) {
    throw new AdaptorkitError('UNSUPPORTED', `${tjPath}: @huggingface/tokenizers cannot build this tokenizer: ${(e as Error).message}`, { cause: e });
  }
  return new HFTokenizer(inner, tc, dir);
}
