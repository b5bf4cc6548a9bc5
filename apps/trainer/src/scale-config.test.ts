/** base.weightsDtype and train.recompute: schema defaults and refusals, and bf16 refused off the native backend. */
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@adaptorkit/core';
import { RunConfigSchema } from './config.js';
import { loadBases } from '@adaptorkit/shapes-bases';

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

describe('base.weightsDtype / train.recompute', () => {
  it('default to f32 / none and refuse other values by path', () => {
    const c = RunConfigSchema.parse({ name: 'x', method: { name: 'mma' } });
    expect(c.base.weightsDtype).toBe('f32');
    expect(c.train.recompute).toBe('none');
    const bad = RunConfigSchema.safeParse({ name: 'x', method: { name: 'mma' }, base: { weightsDtype: 'f16' }, train: { recompute: 'all' } });
    expect(bad.success).toBe(false);
    const paths = bad.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toContain('base.weightsDtype');
    expect(paths).toContain('train.recompute');
  });

  it('bf16 is refused on a backend without bf16 kernels, naming the setting', async () => {
    await expect(loadBases('shapesworld', 'shapesworld', { weightsDtype: 'bf16' })).rejects.toThrow(/base\.weightsDtype: bf16 needs the native backend/);
  });
});
