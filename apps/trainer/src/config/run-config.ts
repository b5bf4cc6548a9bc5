/**
 * From a run YAML (+ `--set` overrides) to a validated RunConfig whose paths are absolute:
 * paths written in the file resolve against the file's folder, paths given by `--set` against the
 * working directory (where the user typed them). The method's own config is checked here too, so
 * a typo anywhere is refused before anything is loaded or written.
 */
import * as path from 'node:path';
import { z } from 'zod';
import { AdaptorkitError } from '@adaptorkit/core';
import { applyOverrides, formatZodError, parseWith, readYaml } from '../config-util.js';
import { RunConfigSchema, type RunConfig } from '../config.js';
import { METHODS } from '../registry.js';
import { isShippedBase } from '@adaptorkit/shapes-bases';

/** Each registered method's config schema, from the registry (the frozen/full baselines take IAA's). */
export const METHOD_CONFIG_SCHEMAS: Record<string, z.ZodType> = Object.fromEntries(METHODS.map((m) => [m.name, m.configSchema as z.ZodType]));

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined);

/** Rewrite the relative paths of a raw config against `dir` (only string values: the schema judges the rest). */
export function resolveRawPaths(raw: unknown, dir: string): unknown {
  const r = obj(raw);
  if (!r) return raw;
  const abs = (o: Obj | undefined, key: string, keepNames: (s: string) => boolean = () => false): void => {
    const v = o?.[key];
    if (o && typeof v === 'string' && v !== '' && !keepNames(v)) o[key] = path.resolve(dir, v);
  };
  abs(r, 'outputDir');
  abs(obj(r.base), 'lm', isShippedBase);
  abs(obj(r.base), 'vision', isShippedBase);
  const llava = obj(obj(r.data)?.llava);
  for (const k of ['json', 'imageRoot', 'evalJson']) abs(llava, k);
  const method = obj(r.method);
  if (method?.name === 'mwa') abs(obj(method.config), 'base', (s) => s === 'shapesworld');
  return raw;
}

/** Validate `method.config` against the method's schema (errors name `method.config.<key>`). */
export function checkMethodConfig(cfg: RunConfig, where: string): void {
  const schema = METHOD_CONFIG_SCHEMAS[cfg.method.name];
  if (!schema) return; // unknown names are refused by the registry, naming the allowed ones
  const wrapper = z.object({ method: z.object({ config: schema }) });
  const r = wrapper.safeParse({ method: { config: cfg.method.config } });
  if (!r.success) throw new AdaptorkitError('INVALID_CONFIG', formatZodError(r.error, where, wrapper));
}

/** Parse a raw run config (already read) with its file's folder for relative paths. */
export function resolveRunConfig(raw: unknown, file: string, overrides: readonly string[] = [], where = file): RunConfig {
  const dir = path.dirname(path.resolve(file));
  const merged = applyOverrides(resolveRawPaths(structuredClone(raw ?? {}), dir), overrides);
  const cfg = parseWith(RunConfigSchema, merged, where);
  // what is still relative came from --set (or is the default outputDir): the working directory
  cfg.outputDir = path.resolve(cfg.outputDir);
  if (!isShippedBase(cfg.base.lm)) cfg.base.lm = path.resolve(cfg.base.lm);
  if (!isShippedBase(cfg.base.vision)) cfg.base.vision = path.resolve(cfg.base.vision);
  const l = cfg.data.llava;
  if (l) {
    l.json = path.resolve(l.json);
    l.imageRoot = path.resolve(l.imageRoot);
    if (l.evalJson) l.evalJson = path.resolve(l.evalJson);
  }
  checkMethodConfig(cfg, where);
  return cfg;
}

/** Read and resolve a run YAML. */
export async function loadRunConfigFile(file: string, overrides: readonly string[] = []): Promise<RunConfig> {
  return resolveRunConfig(await readYaml(file), file, overrides);
}
