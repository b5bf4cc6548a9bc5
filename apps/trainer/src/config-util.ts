/**
 * YAML config files validated by zod: an invalid field is reported with its path and what is
 * allowed, an unknown one with the nearest known key. Every config the trainer reads (a run YAML,
 * a run folder's config.yaml, demo specs, `--set` values) goes through parseYamlText: aliases
 * bounded (no alias bombs), duplicate keys refused, and the keys `__proto__`, `constructor`,
 * `prototype` refused anywhere, so a config can never reach Object.prototype.
 */
import { promises as fs } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { AdaptorkitError, knownKeysAt, nearest } from '@adaptorkit/core';

/** Keys that could reach an object's prototype if a config were ever merged naively. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Aliases one YAML document may expand (yaml's maxAliasCount): a config needs a handful; a bomb needs thousands. */
export const MAX_YAML_ALIASES = 100;
const MAX_DEPTH = 64;

/** Throws INVALID_CONFIG when `value` holds a forbidden key (or nests deeper than any config does). */
export function checkKeys(value: unknown, where: string, at: string[] = []): void {
  if (value === null || typeof value !== 'object') return;
  if (at.length > MAX_DEPTH) throw new AdaptorkitError('INVALID_CONFIG', `${where}: ${at.join('.')}: nested deeper than ${MAX_DEPTH} levels`);
  for (const k of Object.keys(value)) {
    const p = [...at, k];
    if (FORBIDDEN_KEYS.has(k)) throw new AdaptorkitError('INVALID_CONFIG', `${where}: ${p.join('.')}: the key '${k}' is not allowed in a config`);
    checkKeys((value as Record<string, unknown>)[k], where, p);
  }
}

/** Parse YAML text from `where` (a file name or 'the --set value ...') with the safe settings above. */
export function parseYamlText(text: string, where: string): unknown {
  let value: unknown;
  try {
    value = parseYaml(text, { maxAliasCount: MAX_YAML_ALIASES, uniqueKeys: true });
  } catch (e) {
    const msg = ((e as Error).message.split('\n')[0] ?? '').replace(/:\s*$/, '');
    throw new AdaptorkitError('INVALID_CONFIG', `${where} is not valid YAML: ${msg}`, { cause: e });
  }
  checkKeys(value, where);
  return value;
}

/** One line per problem: `method.config.depths: expected number, received string`. */
export function formatZodError(err: z.ZodError, where: string, schema?: z.ZodType): string {
  const lines = err.issues.map((i) => {
    const p = i.path.length ? i.path.join('.') : '(root)';
    let msg = i.message;
    const extra = i as unknown as { values?: unknown[]; options?: unknown[]; keys?: string[] };
    if (i.code === 'unrecognized_keys' && extra.keys) {
      const known = schema ? knownKeysAt(schema, i.path) : undefined;
      return extra.keys
        .map((k) => {
          const full = [...i.path, k].join('.');
          const hint = known ? nearest(k, known) : undefined;
          return `  ${full}: unknown key${hint ? ` (did you mean '${[...i.path, hint].join('.')}'?)` : known ? ` (allowed: ${known.join(', ')})` : ''}`;
        })
        .join('\n');
    }
    const allowed = extra.values ?? extra.options;
    if (Array.isArray(allowed) && !msg.includes('expected one of')) msg += ` (allowed: ${allowed.map(String).join(', ')})`;
    return `  ${p}: ${msg}`;
  });
  return `invalid config in ${where}:\n${lines.join('\n')}`;
}

export function parseWith<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
  checkKeys(value, where);
  const r = schema.safeParse(value);
  if (!r.success) throw new AdaptorkitError('INVALID_CONFIG', formatZodError(r.error, where, schema));
  return r.data;
}

/** Read a YAML file into a plain object (no validation beyond parseYamlText's). */
export async function readYaml(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new AdaptorkitError('IO_ERROR', `cannot read config ${file}: ${(e as Error).message}`);
  }
  return parseYamlText(text, file) ?? {};
}

/**
 * Apply `key.path=value` overrides (from CLI flags) to a config object. Values are parsed as YAML
 * scalars, so `train.steps=200` is a number and `method.config.depths=[0,2]` a list. Keys are
 * plain identifiers joined by dots; a forbidden key or a value that is not YAML is an error.
 */
export function applyOverrides(obj: unknown, overrides: readonly string[]): unknown {
  checkKeys(obj, 'config');
  const root = (obj && typeof obj === 'object' ? structuredClone(obj) : {}) as Record<string, unknown>;
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new AdaptorkitError('INVALID_ARGUMENT', `--set '${o}' must look like key.path=value`);
    const keys = o.slice(0, eq).split('.');
    for (const k of keys) {
      if (!/^[A-Za-z0-9_-]+$/.test(k)) throw new AdaptorkitError('INVALID_ARGUMENT', `--set '${o}': key '${k}' is not a config key (letters, digits, _ and - joined by dots)`);
      if (FORBIDDEN_KEYS.has(k)) throw new AdaptorkitError('INVALID_ARGUMENT', `--set '${o}': the key '${k}' is not allowed in a config`);
    }
    const value = parseYamlText(o.slice(eq + 1), `--set '${o}': the value`);
    let cur: Record<string, unknown> = root;
    keys.slice(0, -1).forEach((k) => {
      if (!Object.hasOwn(cur, k) || typeof cur[k] !== 'object' || cur[k] === null) cur[k] = {};
      cur = cur[k] as Record<string, unknown>;
    });
    cur[keys[keys.length - 1]!] = value;
  }
  return root;
}
