/** What an unknown config key is near: the keys a zod schema allows at a path (through defaults, optionals, pipes, unions, lazies), and the closest one. Used by method configs here and by the trainer's run configs. */
import type { z } from 'zod';

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
  valueType?: z.ZodType;
  getter?: () => z.ZodType;
}

const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** The object schemas `s` may be at this point (through defaults, optionals, pipes, unions). */
function objects(s: z.ZodType, depth = 0): Def[] {
  if (depth > 20) return [];
  const d = defOf(s);
  if (d.type === 'object') return [d];
  if (d.innerType) return objects(d.innerType, depth + 1);
  if (d.type === 'pipe') return [...(d.in ? objects(d.in, depth + 1) : []), ...(d.out ? objects(d.out, depth + 1) : [])];
  if (d.type === 'union' && d.options) return d.options.flatMap((o) => objects(o, depth + 1));
  if (d.type === 'lazy' && d.getter) return objects(d.getter(), depth + 1);
  return [];
}

function child(s: z.ZodType, key: string | number, depth = 0): z.ZodType[] {
  if (depth > 20) return [];
  const d = defOf(s);
  if (d.innerType) return child(d.innerType, key, depth + 1);
  if (d.type === 'pipe') return [...(d.in ? child(d.in, key, depth + 1) : []), ...(d.out ? child(d.out, key, depth + 1) : [])];
  if (d.type === 'union' && d.options) return d.options.flatMap((o) => child(o, key, depth + 1));
  if (d.type === 'lazy' && d.getter) return child(d.getter(), key, depth + 1);
  if (d.type === 'object' && typeof key === 'string' && d.shape && Object.hasOwn(d.shape, key)) return [d.shape[key]!];
  if (d.type === 'array' && typeof key === 'number' && d.element) return [d.element];
  if (d.type === 'record' && d.valueType) return [d.valueType];
  return [];
}

/** Keys of the object schema at `path` inside `schema` (undefined when none is found there). */
export function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] | undefined {
  let at: z.ZodType[] = [schema];
  for (const k of path) {
    if (typeof k === 'symbol') return undefined;
    at = at.flatMap((s) => child(s, k));
  }
  const keys = new Set(at.flatMap(objects).flatMap((d) => Object.keys(d.shape ?? {})));
  return keys.size ? [...keys].sort() : undefined;
}

/** Edit distance (insert, delete, substitute, swap of neighbours). */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  const d: number[][] = Array.from({ length: m + 1 }, (_, i) => Array.from({ length: n + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= m; i++) {
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[m]![n]!;
}

/** The known key closest to `key`, when it is close enough to be a typo (case differences count as near). */
export function nearest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const dist = k.toLowerCase() === key.toLowerCase() ? 0.5 : editDistance(key.toLowerCase(), k.toLowerCase());
    if (dist < bestD) {
      bestD = dist;
      best = k;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}
