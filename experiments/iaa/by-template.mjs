// Per-template scores of finished trainer runs (frozen / full / iaa on a ShapesWorld VQA or
// grounding task), beside the text-only prior of each template: does a run actually look at the
// image, and on which questions? The trainer's eval.json keeps only the overall numbers.
//
//   npm run build            (once)
//   node experiments/iaa/by-template.mjs runs/iaa-shapes-vqa [runs/frozen-shapes-vqa ...] [--n 200]
//
// Loads each run's config.yaml, attaches its method to the shipped bases exactly as the trainer's
// registry does (frozen = projector only; full = LLM layers + the multimodal parts; iaa), loads
// final/ and greedily decodes the first n test examples (n = the run's data.evalExamples by
// default, so the overall number equals eval.json's). Prints a Markdown table.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { initBackend, loadAdapter } from '@adaptorkit/core';
import {
  bestConstantBoxBaseline, encodeExample, IMAGE_TOKEN, majorityAnswerBaseline, scoreTask, ShapesWorld,
} from '@adaptorkit/data';
import { attachIaa, frozenBaselineConfig } from '@adaptorkit/iaa';
import { loadBases, pixelsTensor } from '@adaptorkit/shapes-bases';
import { parseWith, RunConfigSchema } from '@adaptorkit/trainer';

const MAX_NEW = { vqa: 6, grounding: 24 };
const args = process.argv.slice(2);
const nIdx = args.indexOf('--n');
const nOverride = nIdx >= 0 ? Number(args[nIdx + 1]) : undefined;
const runs = args.filter((a, i) => !a.startsWith('--') && (nIdx < 0 || i !== nIdx + 1));
if (runs.length === 0) {
  console.error('usage: node experiments/iaa/by-template.mjs <run dir>... [--n N]');
  process.exit(2);
}

await initBackend('auto', { log: false });

/** The trainer's method glue for frozen / full / iaa (apps/trainer/src/methods/iaa.ts), rebuilt. */
function build(bases, method, cfg, imageTokenId) {
  const withTok = { imageTokenId, ...cfg };
  if (method === 'iaa') return attachIaa(bases, withTok);
  if (method === 'frozen') return attachIaa(bases, frozenBaselineConfig(withTok));
  if (method === 'full') {
    const m = attachIaa(bases, { ...frozenBaselineConfig(withTok), train: { insertionLayers: false, embedding: true, norm: true, head: true, projector: true } });
    bases.lm.model.layers.unfreeze();
    return m;
  }
  throw new Error(`by-template: method '${method}' is not one of frozen, full, iaa`);
}

const rowsOut = [];
for (const dir of runs) {
  const cfg = parseWith(RunConfigSchema, parseYaml(await fs.readFile(path.join(dir, 'config.yaml'), 'utf8')), dir);
  const task = /** @type {import('@adaptorkit/data').TaskName} */ (cfg.data.task);
  const sw = new ShapesWorld({ seed: cfg.data.worldSeed });
  const tok = sw.tokenizer;
  const bases = await loadBases(cfg.base.lm, cfg.base.vision);
  const imageTokenId = tok.tokenToId(IMAGE_TOKEN);
  const model = build(bases, cfg.method.name, cfg.method.config, imageTokenId);
  await loadAdapter(path.join(dir, 'final'), model);
  const n = nOverride ?? cfg.data.evalExamples;
  const test = sw.task(task, 'test').slice(0, n);
  const preds = [];
  for (let i = 0; i < test.length; i += 32) {
    const chunk = test.slice(i, i + 32);
    // prompt rows (BOS + prompt, no answer, no EOS) with the <image> placeholder expanded to the
    // model's image tokens, and the frozen encoder's normalised pixels: what the trainer's eval feeds
    const rows = chunk.map((e) => {
      const enc = encodeExample(tok, { prompt: e.prompt, answer: '' }, { addEos: false });
      return Array.from(enc.inputIds).flatMap((id) => (id === imageTokenId ? Array(model.imageTokens).fill(id) : [id]));
    });
    const images = pixelsTensor(chunk.map((e) => sw.render(e.inputs[0])), sw.config?.image?.size ?? 32); // [B, H, W, 3]
    const out = model.generate({ ids: rows, padId: tok.padId, task: 'mm', images, maxNewTokens: MAX_NEW[task] ?? 16, eosId: tok.eosId });
    images.dispose();
    preds.push(...out.map((ids) => tok.decode(ids)));
  }
  const s = scoreTask(task, preds, test);
  rowsOut.push({ dir, task, s });
  model.dispose?.();
}

// Text-only prior per template: majority answer per template (VQA) / best constant box per template (grounding), from train.
function prior(task, sw, test) {
  const train = sw.task(task, 'train');
  const p = task === 'grounding' ? bestConstantBoxBaseline(train, test, (e) => e.template) : majorityAnswerBaseline(train, test);
  return /** @type {any} */ (scoreTask(task, p, test));
}

const byTask = new Map();
for (const r of rowsOut) (byTask.get(r.task) ?? byTask.set(r.task, []).get(r.task)).push(r);
for (const [task, rs] of byTask) {
  const sw = new ShapesWorld({ seed: 0 });
  const n = rs[0].s.n;
  const pr = prior(task, sw, sw.task(task, 'test').slice(0, n));
  const templates = Object.keys(pr.byTemplate);
  const pct = (x) => (x === undefined ? '-' : `${(100 * x).toFixed(1)}`);
  console.log(`\n${task}, first ${n} test examples: accuracy % per template (n per template in the header)\n`);
  console.log(`| run | all | ${templates.map((t) => `${t} (${pr.byTemplate[t].n})`).join(' | ')} |`);
  console.log(`|---|---|${templates.map(() => '---').join('|')}|`);
  console.log(`| text-only prior | ${pct(pr.accuracy)} | ${templates.map((t) => pct(pr.byTemplate[t]?.accuracy)).join(' | ')} |`);
  for (const r of rs) {
    const extra = task === 'grounding' ? ` (mean IoU ${r.s.meanIoU.toFixed(3)}, parsed ${pct(r.s.parsed)}%)` : '';
    console.log(`| ${path.basename(r.dir)}${extra} | ${pct(r.s.accuracy)} | ${templates.map((t) => pct(r.s.byTemplate[t]?.accuracy)).join(' | ')} |`);
  }
}
