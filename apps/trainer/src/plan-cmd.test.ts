/** `adaptorkit plan` on a run YAML counts exactly what training trains (shape-only bases vs the real setup). */
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@adaptorkit/core';
import { loadRunConfigFile } from './config/run-config.js';
import { planTarget } from './plan-cmd.js';
import { shippedBasesDir } from '@adaptorkit/shapes-bases';
import { setup } from './train.js';

const example = (f: string): string => fileURLToPath(new URL(`../../../examples/${f}`, import.meta.url));

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

describe('adaptorkit plan', () => {
  it.each(['iaa-shapes.yaml', 'mma-shapes.yaml', 'damc-shapes.yaml'])('%s: the trainable count of the run, without loading a weight', async (f) => {
    const out = await planTarget(example(f), { seq: 64 });
    const cfg = await loadRunConfigFile(example(f));
    const env = await setup(cfg, () => {});
    const trainable = env.system.trainable().reduce((s, [, p]) => s + p.size, 0);
    const total = env.system.totalParameters();
    env.system.module.dispose();
    expect(out).toContain(`parameters: ${total.toLocaleString('en-US')} (trainable ${trainable.toLocaleString('en-US')},`);
    expect(out).toMatch(new RegExp(`memory \\(float32, batch ${cfg.train.batchSize} x seq 64\\)`));
  });

  it('takes an HF folder or its config.json, and names what is missing', async () => {
    const dir = `${shippedBasesDir()}/lm`;
    const a = await planTarget(dir);
    expect(a).toMatch(/^parameters: 770,944 \(trainable 770,944\)/);
    expect(await planTarget(`${dir}/config.json`)).toBe(a);
    await expect(planTarget('/no/such/folder')).rejects.toThrow(/plan: \/no\/such\/folder does not exist/);
    await expect(planTarget(shippedBasesDir())).rejects.toThrow(/has no config\.json/);
  });
});
