#!/usr/bin/env node
/**
 * How well a ShapesWorld base LM answers the VQA test questions from text alone: with the scene's
 * caption before the question (what a perfect perception would hand it) and without it (the
 * question alone). Greedy decoding up to the end token or a full stop, exact match, per template.
 *
 * Usage: node experiments/mma/lm-scene-qa.mjs [lmDir|shapesworld] [--n 400]
 * Needs the built packages (npm run build). Run from the repository root.
 */
import { initBackend, generate, tf } from '@adaptorkit/core';
import { caption, IMAGE_TOKEN, ShapesWorld } from '@adaptorkit/data';
import { loadBases } from '@adaptorkit/shapes-bases';

const argv = process.argv.slice(2);
let lmSpec = 'shapesworld', n = 400;
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--n') n = Number(argv[++i]);
  else lmSpec = argv[i];
}
await initBackend('auto', { log: false });
const { lm, vision } = await loadBases(lmSpec, 'shapesworld');
vision.dispose();
const sw = new ShapesWorld({ seed: 0 });
const tok = sw.tokenizer;
const test = sw.task('vqa', 'test', n);
const score = (withCaption) => {
  const by = new Map();
  let hit = 0;
  for (const ex of test) {
    const q = ex.prompt.replace(IMAGE_TOKEN, '').trim();
    const text = withCaption ? `${caption(ex.inputs[0].scene)} ${q}` : q;
    const ids = [tok.bosId, ...tok.encode(text)];
    const out = generate(lm, ids, { maxNewTokens: 4, stop: [tok.eosId] }).tokens[0];
    const end = out.indexOf(tok.eosId);
    const said = tok.decode(end < 0 ? out : out.slice(0, end)).split('.')[0].trim(); // answers are 1-2 words ("top left")
    const ok = said === ex.answer ? 1 : 0;
    hit += ok;
    const t = by.get(ex.template) ?? [0, 0];
    by.set(ex.template, [t[0] + ok, t[1] + 1]);
  }
  const per = [...by.entries()].map(([t, [h, c]]) => `${t} ${((100 * h) / c).toFixed(0)}`).join(', ');
  console.log(`${withCaption ? 'caption + question' : 'question only    '}: ${((100 * hit) / test.length).toFixed(1)}% of ${test.length}  (${per})`);
};
score(true);
score(false);
lm.dispose();
console.log(`tensors left: ${tf.memory().numTensors}`);
