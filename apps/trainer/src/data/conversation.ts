/**
 * How a conversation becomes text with assistant-only loss (data.template):
 *   'model'    the LM's own chat template (tokenizer_config.json), rendered by the tokenizer;
 *   'llava_v1' LLaVA v1 / Vicuna: "<system> USER: <q> ASSISTANT: <a></s>USER: ...";
 *   'plain'    turns one after another (LLaVA's pretraining format): "<q>\n<a></s>\n...".
 *
 * With a chat template the whole conversation is rendered once and each assistant turn is found
 * in it: the trained span starts where the template's generation prompt for that turn ends (when
 * the render of the turns before it, with add_generation_prompt, is a prefix of the whole; else at
 * the turn's text) and ends after the special token that closes the turn (<|im_end|>, <|eot_id|>,
 * <end_of_turn>): the model learns to answer and to stop, never to write the user's turns. Those
 * closing tokens are the stop ids of generation. Templates that think (Qwen3) are rendered with
 * enable_thinking false, so the empty think block is part of the prompt, not of the answer.
 */
import { AdaptorkitError, type HFTokenizer } from '@adaptorkit/core';
import type { Segment } from '@adaptorkit/data';

export type Role = 'system' | 'user' | 'assistant';
export interface Turn {
  role: Role;
  text: string;
}

export const TEMPLATE_KINDS = ['auto', 'model', 'llava_v1', 'plain'] as const;
export type TemplateKind = (typeof TEMPLATE_KINDS)[number];

/** LLaVA v1's default system line (conv_vicuna_v1). */
export const LLAVA_V1_SYSTEM = "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.";

export interface ConversationFormat {
  readonly kind: Exclude<TemplateKind, 'auto'>;
  /** Whether encoding prepends the tokenizer's BOS (chat templates write their own). */
  readonly addBos: boolean;
  /** The whole conversation as segments, loss on each assistant turn (and the token that closes it). */
  segments(turns: readonly Turn[]): Segment[];
  /** Text that asks for the next assistant turn after `turns` (which end with a user turn). */
  prompt(turns: readonly Turn[]): string;
  /** Token ids that end an assistant turn (generation stops at any of them). */
  readonly stopIds: readonly number[];
}

/** Template variables a chat template gets beyond messages (no thinking: answers come straight). */
const EXTRA = { enable_thinking: false };

function specialStrings(tok: HFTokenizer): { text: string; id: number }[] {
  const out: { text: string; id: number }[] = [];
  for (const id of tok.specialIds) {
    const text = tok.idToToken(id);
    if (text) out.push({ text, id });
  }
  return out.sort((a, b) => b.text.length - a.text.length); // longest first
}

function chatTemplateFormat(tok: HFTokenizer): ConversationFormat {
  const specials = specialStrings(tok);
  const stops = new Set<number>();
  const render = (turns: readonly Turn[], gen: boolean): string =>
    tok.applyChatTemplate(turns.map((t) => ({ role: t.role, content: t.text })), { addGenerationPrompt: gen, extra: EXTRA });
  const segments = (turns: readonly Turn[]): Segment[] => {
    const full = render(turns, false);
    const segs: Segment[] = [];
    let cursor = 0; // chars of `full` already in segs
    let search = 0; // where the next turn's text is looked for
    turns.forEach((t, i) => {
      const text = t.text.trim();
      if (t.role !== 'assistant') {
        const at = text ? full.indexOf(text, search) : -1;
        if (at >= 0) search = at + text.length;
        return;
      }
      if (!text) throw new AdaptorkitError('INVALID_ARGUMENT', `assistant turn ${i} is empty: nothing to train on`);
      const before = render(turns.slice(0, i), true);
      let start = before.length >= search && full.startsWith(before) ? before.length : -1;
      const at = full.indexOf(text, Math.max(search, start));
      if (at < 0) throw new AdaptorkitError('UNSUPPORTED', `the chat template of ${tok.source} does not write assistant turn ${i} as given (it changes its text): use data.template llava_v1 or plain`);
      if (start < 0 || start > at) start = at;
      let end = at + text.length;
      const ws = /^\s*/.exec(full.slice(end))![0].length;
      const close = specials.find((s) => full.startsWith(s.text, end + ws));
      if (close) {
        end += ws + close.text.length;
        stops.add(close.id);
      }
      if (start > cursor) segs.push({ text: full.slice(cursor, start), loss: false });
      segs.push({ text: full.slice(start, end), loss: true });
      cursor = end;
      search = end;
    });
    if (cursor < full.length) segs.push({ text: full.slice(cursor), loss: false });
    return segs;
  };
  // The closing token of an assistant turn, found once on a probe conversation.
  segments([{ role: 'user', text: 'hi' }, { role: 'assistant', text: 'hello' }]);
  if (tok.eosId !== undefined && !stops.size) stops.add(tok.eosId);
  return { kind: 'model', addBos: false, segments, prompt: (turns) => render(turns, true), stopIds: [...stops] };
}

function eosText(tok: HFTokenizer): string {
  return tok.eosId !== undefined ? (tok.idToToken?.(tok.eosId) ?? '') : '';
}

function llavaV1Format(tok: HFTokenizer): ConversationFormat {
  const eos = eosText(tok);
  const head = (turns: readonly Turn[]): string => (turns[0]?.role === 'system' ? turns[0].text : LLAVA_V1_SYSTEM);
  const segments = (turns: readonly Turn[]): Segment[] => {
    const segs: Segment[] = [];
    let pending = `${head(turns)} `;
    for (const t of turns) {
      if (t.role === 'system') continue;
      if (t.role === 'user') pending += `USER: ${t.text} ASSISTANT:`;
      else {
        segs.push({ text: pending, loss: false });
        segs.push({ text: ` ${t.text}${eos}`, loss: true });
        pending = '';
      }
    }
    if (pending) segs.push({ text: pending, loss: false });
    return segs;
  };
  return { kind: 'llava_v1', addBos: true, segments, prompt: (turns) => segments(turns).map((s) => s.text).join(''), stopIds: tok.eosId !== undefined ? [tok.eosId] : [] };
}

function plainFormat(tok: HFTokenizer): ConversationFormat {
  const eos = eosText(tok);
  const segments = (turns: readonly Turn[]): Segment[] => {
    const segs: Segment[] = [];
    let pending = '';
    for (const t of turns) {
      if (t.role === 'assistant') {
        segs.push({ text: pending, loss: false });
        segs.push({ text: `${t.text}${eos}`, loss: true });
        pending = '\n';
      } else pending += `${t.text}\n`;
    }
    if (pending && pending !== '\n') segs.push({ text: pending, loss: false });
    return segs.filter((s) => s.text !== '');
  };
  return { kind: 'plain', addBos: true, segments, prompt: (turns) => segments(turns).map((s) => s.text).join(''), stopIds: tok.eosId !== undefined ? [tok.eosId] : [] };
}

/** The format data.template names ('auto': the model's chat template when it has one, else llava_v1). */
export function conversationFormat(tok: HFTokenizer, kind: TemplateKind): ConversationFormat {
  const k = kind === 'auto' ? (tok.chatTemplate ? 'model' : 'llava_v1') : kind;
  if (k === 'model') {
    if (!tok.chatTemplate) throw new AdaptorkitError('INVALID_CONFIG', `data.template: 'model' but ${tok.source}/tokenizer_config.json has no chat_template; use llava_v1 or plain`);
    return chatTemplateFormat(tok);
  }
  return k === 'llava_v1' ? llavaV1Format(tok) : plainFormat(tok);
}
