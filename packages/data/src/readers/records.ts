/**
 * Reading records with their line numbers from a JSON array file (.json) or JSON Lines (.jsonl).
 * A JSON array is split into its top-level elements first, so one malformed element is reported
 * (with its line) and can be skipped instead of losing the whole file. JSONL is streamed line by
 * line, so files larger than memory work with `iterateJsonl`.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { AdaptorkitError } from '@adaptorkit/core';
import { DataRecordError, type IssueSink } from './issues.js';

export interface RawRecord {
  /** Parsed value, or undefined when the text is not valid JSON (see `error`). */
  value?: unknown;
  /** Why the record's text is not valid JSON. */
  error?: string;
  line: number;
  index: number;
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return starts;
}

function lineOf(starts: readonly number[], offset: number): number {
  let lo = 0, hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((starts[mid] as number) <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}

/**
 * Split the text of a top-level JSON array into its elements' source spans. Throws BAD_FILE with
 * the line when the array itself is malformed (not an array, unbalanced brackets, unterminated
 * string, trailing garbage).
 */
export function splitJsonArray(text: string, file: string): RawRecord[] {
  const starts = lineStarts(text);
  const fail = (offset: number, msg: string): never => {
    throw new DataRecordError('BAD_FILE', { file, line: lineOf(starts, offset), index: -1, message: `broken JSON: ${msg}` });
  };
  let i = 0;
  while (i < text.length && /\s/.test(text.charAt(i))) i++;
  if (text.charCodeAt(0) === 0xfeff) i = Math.max(i, 1);
  if (text.charAt(i) !== '[') fail(i, `expected a JSON array of records ('[' ...), found ${i >= text.length ? 'an empty file' : `'${text.charAt(i)}'`}`);
  const out: RawRecord[] = [];
  const stack: string[] = [];
  let inString = false, elemStart = -1, stringStart = -1, closed = -1;
  const push = (end: number): void => {
    const src = text.slice(elemStart, end);
    const rec: RawRecord = { line: lineOf(starts, elemStart), index: out.length };
    try {
      rec.value = JSON.parse(src);
    } catch (e) {
      rec.error = `malformed JSON record: ${(e as Error).message}`;
    }
    out.push(rec);
  };
  for (i = i + 1; i < text.length; i++) {
    const c = text.charAt(i);
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      else if (c === '\n') fail(i, 'newline inside a string (unterminated string?)');
      continue;
    }
    if (c === '"') {
      inString = true;
      stringStart = i;
      if (elemStart < 0) elemStart = i;
    } else if (c === '{' || c === '[') {
      if (elemStart < 0) elemStart = i;
      stack.push(c === '{' ? '}' : ']');
    } else if (c === '}' || c === ']') {
      if (stack.length === 0) {
        if (c === '}') fail(i, "unexpected '}' at the top level of the array");
        if (elemStart >= 0) push(i);
        else if (out.length > 0) fail(i, "trailing ',' before ']'");
        closed = i;
        break;
      }
      const want = stack.pop();
      if (c !== want) fail(i, `mismatched '${c}' (expected '${want}')`);
    } else if (c === ',' && stack.length === 0) {
      if (elemStart < 0) fail(i, "empty element (two commas, or a comma after '[')");
      push(i);
      elemStart = -1;
    } else if (!/\s/.test(c) && elemStart < 0) {
      elemStart = i;
    }
  }
  if (inString) fail(stringStart, 'unterminated string');
  if (closed < 0) fail(text.length, "unterminated array (missing ']')");
  const rest = text.slice(closed + 1);
  if (/\S/.test(rest)) fail(closed + 1 + rest.search(/\S/), "unexpected content after the closing ']'");
  return out;
}

/** Stream the records of a JSONL file (blank lines skipped), with their line numbers. */
export async function* iterateJsonl(file: string): AsyncGenerator<RawRecord> {
  let stream;
  try {
    stream = createReadStream(file, { encoding: 'utf8' });
    await new Promise<void>((res, rej) => {
      stream!.once('open', () => res());
      stream!.once('error', rej);
    });
  } catch (e) {
    throw new AdaptorkitError('IO_ERROR', `${file}: cannot open (${(e as Error).message}).`, { cause: e });
  }
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  let line = 0, index = 0;
  for await (const text of rl) {
    line++;
    if (!/\S/.test(text)) continue;
    const rec: RawRecord = { line, index: index++ };
    try {
      rec.value = JSON.parse(text);
    } catch (e) {
      rec.error = `malformed JSON line: ${(e as Error).message}`;
    }
    yield rec;
  }
}

/** All records of a .json (array) or .jsonl file. */
export async function* iterateRecords(file: string): AsyncGenerator<RawRecord> {
  if (/\.jsonl$/i.test(file)) {
    yield* iterateJsonl(file);
    return;
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new AdaptorkitError('IO_ERROR', `${file}: cannot read (${(e as Error).message}).`, { cause: e });
  }
  yield* splitJsonArray(text, file);
}

/** Report a JSON-level error of a raw record; returns false when the record must be dropped. */
export function acceptRaw(rec: RawRecord, file: string, sink: IssueSink): rec is RawRecord & { value: unknown } {
  if (rec.error !== undefined) {
    sink.report({ file, line: rec.line, index: rec.index, message: rec.error });
    return false;
  }
  return true;
}
