/**
 * tokenizer.json / tokenizer_config.json checked before @huggingface/tokenizers builds anything:
 *
 * - ids in range: vocabulary and added-token ids are integers in [0, 2^24), and an added token's id
 *   is at most the vocabulary's size + the added-token count + 65,536 (an id of 2^31-1 made the
 *   tokenizer build a 2^31-entry table: 111 s). Real tokenizers are dense: Llama 3's added tokens
 *   are 128000..128255 over a 128000-entry vocabulary.
 * - regexes (normalizer / pre-tokenizer / decoder `{ "Regex": ... }` patterns) that can backtrack
 *   exponentially are refused by a static check, never run: an unbounded quantifier (`*`, `+`,
 *   `{n,}`) over a group that itself holds an unbounded quantifier (`(a+)+`, `(\s*x)*`), or over a
 *   group of alternatives one of which equals or prefixes another (`(a|a)*`, `(a|ab)+`). JS
 *   regexes cannot be interrupted, so a time bound would need every encode in a worker; the real
 *   tokenizers' patterns (GPT-2, Llama 3, Qwen, Gemma) have star height 1 and pass. Patterns that
 *   are only polynomial (`\s+(?!\S)`, as in the originals) are accepted.
 * - nesting of normalizer / pre-tokenizer sequences is bounded (32 levels).
 */
import { AdaptorkitError } from '../errors.js';

export const MAX_TOKEN_ID = 2 ** 24;
export const MAX_REGEX_CHARS = 10_000;
export const MAX_TOKENIZER_NESTING = 32;
const ADDED_ID_SLACK = 65_536;

interface Atom {
  group: boolean;
  unbounded: boolean;
  alternatives: string[];
}

/** Why a regex can backtrack catastrophically (nested or overlapping-alternative repetition), or undefined. */
export function backtrackingRisk(pattern: string): string | undefined {
  if (pattern.length > MAX_REGEX_CHARS) return `it is ${pattern.length} characters long (limit ${MAX_REGEX_CHARS})`;
  interface Frame {
    start: number;
    unbounded: boolean;
    altStarts: number[];
  }
  const stack: Frame[] = [{ start: 0, unbounded: false, altStarts: [0] }];
  let last: Atom | undefined;
  let i = 0;
  const n = pattern.length;
  while (i < n) {
    const c = pattern[i]!;
    if (c === '\\') {
      const next = pattern[i + 1];
      i += 2;
      if ((next === 'p' || next === 'P' || next === 'u' || next === 'x') && pattern[i] === '{') {
        const close = pattern.indexOf('}', i);
        i = close < 0 ? n : close + 1;
      }
      last = { group: false, unbounded: false, alternatives: [] };
    } else if (c === '[') {
      i++;
      if (pattern[i] === '^') i++;
      if (pattern[i] === ']') i++;
      while (i < n && pattern[i] !== ']') i += pattern[i] === '\\' ? 2 : 1;
      i++;
      last = { group: false, unbounded: false, alternatives: [] };
    } else if (c === '(') {
      i++;
      if (pattern[i] === '?') {
        // (?: (?= (?! (?<= (?<! (?<name> (?i: (?i)
        i++;
        if (pattern[i] === '<' && pattern[i + 1] !== '=' && pattern[i + 1] !== '!') {
          const close = pattern.indexOf('>', i);
          i = close < 0 ? n : close + 1;
        } else {
          while (i < n && /[a-zA-Z<=!\-]/.test(pattern[i]!)) i++;
          if (pattern[i] === ':') i++;
          else if (pattern[i] === ')') {
            i++;
            last = undefined;
            continue;
          }
        }
      }
      stack.push({ start: i, unbounded: false, altStarts: [i] });
      last = undefined;
    } else if (c === ')') {
      const f = stack.length > 1 ? stack.pop()! : undefined;
      i++;
      if (!f) return 'it has an unbalanced )';
      const bounds = [...f.altStarts, i];
      const alternatives = f.altStarts.map((s, k) => pattern.slice(s, bounds[k + 1]! - 1));
      last = { group: true, unbounded: f.unbounded, alternatives };
      if (f.unbounded) stack[stack.length - 1]!.unbounded = true;
    } else if (c === '|') {
      i++;
      stack[stack.length - 1]!.altStarts.push(i);
      last = undefined;
    } else if (c === '*' || c === '+' || c === '{') {
      let unbounded = c !== '{';
      let end = i + 1;
      if (c === '{') {
        const m = /^\{(\d*)(,?)(\d*)\}/.exec(pattern.slice(i, i + 24));
        if (!m) {
          i++;
          last = { group: false, unbounded: false, alternatives: [] };
          continue;
        }
        unbounded = m[2] === ',' && (m[3] === '' || Number(m[3]) > 32);
        end = i + m[0].length;
      }
      if (unbounded && last) {
        if (last.group && last.unbounded) return `a repeated group contains another repetition near '${pattern.slice(Math.max(0, i - 20), end)}' (nested quantifiers)`;
        if (last.group && last.alternatives.length > 1) {
          const alts = last.alternatives;
          for (let a = 0; a < alts.length; a++) {
            for (let b = 0; b < alts.length; b++) {
              if (a !== b && alts[b]!.startsWith(alts[a]!)) return `a repeated group has overlapping alternatives '${alts[a]}' and '${alts[b]}'`;
            }
          }
        }
        stack[stack.length - 1]!.unbounded = true;
      }
      i = end;
      if (pattern[i] === '?' || pattern[i] === '+') i++; // lazy / possessive
      last = undefined;
    } else {
      i++;
      last = c === '?' ? undefined : { group: false, unbounded: false, alternatives: [] };
    }
  }
  if (stack.length > 1) return 'it has an unbalanced (';
  return undefined;
}

function bad(file: string, what: string): never {
  throw new AdaptorkitError('BAD_FILE', `${file}: ${what}`);
}

function isId(v: unknown, max: number): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v < max;
}

/** Every `{ Regex: pattern }` in the normalizer / pre_tokenizer / post_processor / decoder, with its path. */
function checkPipelines(tj: Record<string, unknown>, file: string): void {
  const walk = (v: unknown, at: string, depth: number): void => {
    if (depth > MAX_TOKENIZER_NESTING) bad(file, `'${at}' nests deeper than ${MAX_TOKENIZER_NESTING} levels`);
    if (Array.isArray(v)) {
      v.forEach((x, k) => walk(x, `${at}[${k}]`, depth + 1));
      return;
    }
    if (v === null || typeof v !== 'object') return;
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (k === 'Regex') {
        if (typeof x !== 'string') bad(file, `'${at}.Regex' must be a string`);
        const why = backtrackingRisk(x);
        if (why) bad(file, `regex at '${at}' is refused: ${why}; such a pattern can take exponential time on some inputs (see @adaptorkit/core README, hostile inputs)`);
      } else walk(x, `${at}.${k}`, depth + 1);
    }
  };
  for (const key of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) walk(tj[key], key, 0);
}

/** Validate tokenizer.json (and tokenizer_config.json's added_tokens_decoder) before building the tokenizer. */
export function validateTokenizerFiles(tj: Record<string, unknown>, tjFile: string, tc: Record<string, unknown>, tcFile: string): void {
  const model = tj.model;
  if (model === null || typeof model !== 'object' || Array.isArray(model)) bad(tjFile, `'model' must be an object`);
  const vocab = (model as Record<string, unknown>).vocab;
  let vocabCount = 0;
  let maxId = -1;
  if (Array.isArray(vocab)) {
    // Unigram: [[piece, score], ...], ids are positions
    if (vocab.length > MAX_TOKEN_ID) bad(tjFile, `model.vocab has ${vocab.length} entries (limit ${MAX_TOKEN_ID})`);
    vocab.forEach((e, k) => {
      if (!Array.isArray(e) || typeof e[0] !== 'string' || typeof e[1] !== 'number') bad(tjFile, `model.vocab[${k}] must be [piece, score]`);
    });
    vocabCount = vocab.length;
    maxId = vocab.length - 1;
  } else if (vocab !== null && typeof vocab === 'object') {
    for (const [tok, id] of Object.entries(vocab as Record<string, unknown>)) {
      if (!isId(id, MAX_TOKEN_ID)) bad(tjFile, `model.vocab[${JSON.stringify(tok.slice(0, 40))}] = ${JSON.stringify(id)} is not a token id in [0, ${MAX_TOKEN_ID})`);
      vocabCount++;
      if (id > maxId) maxId = id;
    }
  } else if (vocab !== undefined) bad(tjFile, `model.vocab must be an object or an array`);
  const merges = (model as Record<string, unknown>).merges;
  if (merges !== undefined && (!Array.isArray(merges) || merges.length > MAX_TOKEN_ID)) bad(tjFile, `model.merges must be an array of at most ${MAX_TOKEN_ID} merges`);
  const added = tj.added_tokens ?? [];
  if (!Array.isArray(added)) bad(tjFile, `'added_tokens' must be an array`);
  const idLimit = Math.min(MAX_TOKEN_ID, Math.max(vocabCount, maxId + 1) + added.length + ADDED_ID_SLACK);
  added.forEach((t: unknown, k) => {
    const o = t as { id?: unknown; content?: unknown } | null;
    if (o === null || typeof o !== 'object' || typeof o.content !== 'string') bad(tjFile, `added_tokens[${k}] must be an object with a string 'content'`);
    if (!isId(o.id, idLimit)) bad(tjFile, `added_tokens[${k}] ('${o.content.slice(0, 40)}') has id ${JSON.stringify(o.id)}, outside [0, ${idLimit}) for a ${vocabCount}-entry vocabulary`);
  });
  const decoder = tc.added_tokens_decoder;
  if (decoder !== undefined && decoder !== null) {
    if (typeof decoder !== 'object' || Array.isArray(decoder)) bad(tcFile, `'added_tokens_decoder' must be an object`);
    for (const key of Object.keys(decoder)) {
      if (!/^\d{1,9}$/.test(key) || Number(key) >= idLimit) bad(tcFile, `added_tokens_decoder key '${key.slice(0, 40)}' is not a token id in [0, ${idLimit})`);
    }
  }
  checkPipelines(tj, tjFile);
}
