/** Method configs: validated by the method's strict zod schema, errors naming the path and what to do. */
import type { z } from 'zod';
import { AdaptorkitError } from '../errors.js';
import { knownKeysAt, nearest } from './keys.js';

/** Parse a method config; an invalid one throws INVALID_CONFIG naming each bad path (unknown keys with a "did you mean"). */
export function parseMethodConfig<S extends z.ZodType>(schema: S, raw: unknown, where: string): z.output<S> {
  const r = schema.safeParse(raw ?? {});
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => {
    const at = [where, ...i.path.map(String)].join('.');
    if (i.code === 'unrecognized_keys') {
      const known = knownKeysAt(schema, i.path) ?? [];
      return i.keys
        .map((k) => {
          const hint = nearest(k, known);
          return `${at}.${k}: unknown key${hint ? ` (did you mean '${hint}'?)` : ''}; allowed: ${known.join(', ')}`;
        })
        .join('\n  ');
    }
    return `${at}: ${i.message}`;
  });
  throw new AdaptorkitError('INVALID_CONFIG', `invalid ${where}:\n  ${lines.join('\n  ')}`);
}
