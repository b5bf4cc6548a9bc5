/** YAML config files validated by zod: an invalid field is reported with its path and what is allowed. */
import { promises as fs } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { AdaptorkitError } from '@adaptorkit/core';

/** One line per problem: `method.config.depths: expected number, received string`. */
export function formatZodError(err: z.ZodError, where: string): string {
  const lines = err.issues.map((i) => {
    const p = i.path.length ? i.path.join('.') : '(root)';
    let msg = i.message;
    const extra = i as unknown as { values?: unknown[]; options?: unknown[] };
    const allowed = extra.values ?? extra.options;
    if (Array.isArray(allowed) && !msg.includes('expected one of')) msg += ` (allowed: ${allowed.map(String).join(', ')})`;
    return `  ${p}: ${msg}`;
  });
  return `invalid config in ${where}:\n${lines.join('\n')}`;
}

export function parseWith<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new AdaptorkitError('INVALID_CONFIG', formatZodError(r.error, where));
  return r.data;
}

/** Read a YAML file into a plain object (no validation). */
export async function readYaml(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new AdaptorkitError('IO_ERROR', `cannot read config ${file}: ${(e as Error).message}`);
  }
  try {
    return parseYaml(text) ?? {};
  } catch (e) {
    throw new AdaptorkitError('INVALID_CONFIG', `${file} is not valid YAML: ${(e as Error).message}`);
  }
}

/**
 * Apply `key.path=value` overrides (from CLI flags) to a config object. Values are parsed as YAML
 * scalars, so `train.steps=200` is a number and `method.config.depths=[0,2]` a list.
 */
export function applyOverrides(obj: unknown, overrides: readonly string[]): unknown {
  const root = (obj && typeof obj === 'object' ? structuredClone(obj) : {}) as Record<string, unknown>;
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new AdaptorkitError('INVALID_ARGUMENT', `override '${o}' must look like key.path=value`);
    const keys = o.slice(0, eq).split('.');
    const value = parseYaml(o.slice(eq + 1));
    let cur: Record<string, unknown> = root;
    keys.slice(0, -1).forEach((k) => {
      if (cur[k] === undefined || typeof cur[k] !== 'object' || cur[k] === null) cur[k] = {};
      cur = cur[k] as Record<string, unknown>;
    });
    cur[keys[keys.length - 1]!] = value;
  }
  return root;
}
