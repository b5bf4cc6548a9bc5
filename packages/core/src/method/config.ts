/** Method configs: validated by the method's strict zod schema, errors naming the path and what to do. */
import type { z } from 'zod';
import { AdaptorkitError } from '../errors.js';

/** Closest of `names` to `key` (edit distance <= 2), for "did you mean" hints. */
export function closest(key: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bd = 3;
  for (const n of names) {
    const d = editDistance(key.toLowerCase(), n.toLowerCase());
    if (d < bd) {
      bd = d;
      best = n;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** Known keys of the object schema at `path` inside `schema` (for hints), when it is one. */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let s: unknown = schema;
  for (const p of [...path, undefined]) {
    for (let guard = 0; guard < 8; guard++) {
      const def = (s as { def?: { type?: string; innerType?: unknown; in?: unknown } }).def;
      if (def?.innerType) s = def.innerType;
      else if (def?.type === 'pipe' && def.in) s = def.in;
      else break;
    }
    const shape = (s as { shape?: Record<string, unknown> }).shape;
    if (p === undefined) return shape ? Object.keys(shape) : [];
    if (!shape) return [];
    s = shape[String(p)];
  }
  return [];
}

/** Parse a method config; an invalid one throws INVALID_CONFIG naming each bad path (unknown keys with a "did you mean"). */
export function parseMethodConfig<S extends z.ZodType>(schema: S, raw: unknown, where: string): z.output<S> {
  const r = schema.safeParse(raw ?? {});
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => {
    const at = [where, ...i.path.map(String)].join('.');
    if (i.code === 'unrecognized_keys') {
      const known = keysAt(schema, i.path);
      return i.keys
        .map((k) => {
          const hint = closest(k, known);
          return `${at}.${k}: unknown key${hint ? ` (did you mean '${hint}'?)` : ''}; allowed: ${known.join(', ')}`;
        })
        .join('\n  ');
    }
    return `${at}: ${i.message}`;
  });
  throw new AdaptorkitError('INVALID_CONFIG', `invalid ${where}:\n  ${lines.join('\n  ')}`);
}
