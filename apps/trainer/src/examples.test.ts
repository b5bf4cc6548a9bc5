/**
 * Every config in examples/ (what the READMEs tell users to run) parses, names a registered method,
 * and points at bases that exist: a typo in a shipped example fails here, not on a user's machine.
 */
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseWith, readYaml } from './config-util.js';
import { PretrainConfigSchema } from './config.js';
import { loadDemoSpec } from './demo.js';
import { METHODS } from './methods/index.js';
import { basePath, isShippedBase } from '@adaptorkit/shapes-bases';
import { loadRunConfig } from './train.js';

const dir = fileURLToPath(new URL('../../../examples/', import.meta.url));
const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();

describe('examples/', () => {
  it('holds the configs the READMEs name', () => {
    expect(files).toEqual(expect.arrayContaining(['demo.yaml', 'mma-shapes.yaml', 'mma-shapes-sceneqa.yaml', 'pretrain-shapes-sceneqa.yaml']));
  });

  it.each(files)('%s parses and its bases exist', async (f) => {
    const file = path.join(dir, f);
    if (f === 'demo.yaml') {
      const spec = await loadDemoSpec(file);
      for (const g of spec.groups) for (const r of g.rows) if ('config' in r && r.config) expect(files, `${g.id}/${r.id}`).toContain(r.config);
      return;
    }
    const raw = (await readYaml(file)) as Record<string, unknown>;
    if (!('method' in raw)) {
      parseWith(PretrainConfigSchema, raw, f);
      return;
    }
    const cfg = await loadRunConfig(file);
    expect(METHODS.map((m) => m.name), f).toContain(cfg.method.name);
    for (const part of ['lm', 'vision'] as const) {
      const spec = cfg.base[part];
      if (isShippedBase(spec)) expect(existsSync(path.join(basePath(spec, part), 'model.safetensors')), `${f}: base.${part}`).toBe(true);
    }
  });
});
