#!/usr/bin/env node
/**
 * Diagnostic: can a frozen ShapesWorld LM answer VQA from ONE token per grid cell when the cell's
 * content is given exactly? Each of the 9 cells becomes a one-hot of (shape | empty, colour | empty,
 * size | empty), mapped to the LM width by a trainable Linear (the only trainable weights); the 9
 * tokens replace the image, row-major, after <bos>; the loss is answer-only on the `vqa` train split.
 * If this stays near the answer prior, the limit is the LM reading one token per object (not the
 * vision encoder); if it gets high, the limit is what the encoder's tokens carry or how fast an
 * adaptor learns to map them.
 *
 * `--tokens 3` gives each cell three tokens instead (size, colour, shape: the shape of a caption's words).
 *
 * Usage: node experiments/mma/oracle-cells.mjs <lmDir|shapesworld> [--tokens 1|3] [--steps 600] [--lr 3e-3] [--batch 32] [--n 400]
 * Needs the built packages (npm run build). Run from the repository root.
 */
import { AdamW, disposeGrads, generate, initBackend, IGNORE_INDEX, Linear, maskedCrossEntropy, Rng, tf, valueAndGrads } from '@adaptorkit/core';
import { COLOURS, encodeExample, IMAGE_TOKEN, majorityAnswerBaseline, SHAPES, ShapesWorld, SIZES, VQA_TEMPLATES } from '@adaptorkit/data';
import { loadBases } from '@adaptorkit/shapes-bases';

const o = { lm: 'shapesworld', steps: 600, lr: 3e-3, batch: 32, n: 400, tokens: 1 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a.startsWith('--')) o[a.slice(2)] = Number(argv[++i]);
  else o.lm = a;
}
await initBackend('auto', { log: false });
const { lm, vision } = await loadBases(o.lm, 'shapesworld');
vision.dispose();
lm.freeze();
const sw = new ShapesWorld({ seed: 0 });
const tok = sw.tokenizer;
const F = SHAPES.length + 1 + COLOURS.length + 1 + SIZES.length + 1;
// --tokens 1: one token per cell from all its features; --tokens 3: three tokens per cell (size,
// colour, shape, like the words of a caption), each its own Linear of the cell's features
const K = o.tokens;
if (K !== 1 && K !== 3) throw new Error('--tokens must be 1 or 3');
const projs = Array.from({ length: K }, () => new Linear(F, lm.config.hiddenSize));
const cellFeatures = (scene) => {
  const f = new Float32Array(9 * F);
  for (let c = 0; c < 9; c++) {
    const obj = scene.objects.find((x) => x.cell === c);
    const s = obj ? SHAPES.indexOf(obj.shape) : SHAPES.length;
    const col = obj ? COLOURS.indexOf(obj.colour) : COLOURS.length;
    const z = obj ? SIZES.indexOf(obj.size) : SIZES.length;
    f[c * F + s] = 1;
    f[c * F + SHAPES.length + 1 + col] = 1;
    f[c * F + SHAPES.length + 1 + COLOURS.length + 1 + z] = 1;
  }
  return f;
};
const question = (ex) => ex.prompt.replace(IMAGE_TOKEN, '').trim();
/** cell features [B * 9, F] -> [B, 9 * K, d], cell-major (cell 0's K tokens first) */
const cellTokens = (f, B) => {
  const d = lm.config.hiddenSize;
  const per = projs.map((p) => tf.reshape(p.forward(f), [B * 9, 1, d]));
  return tf.reshape(K === 1 ? per[0] : tf.concat(per, 1), [B, 9 * K, d]);
};
/** [bos] 9 cell tokens, question (+ answer) -> embeds [B, T, d] and labels [B, T]. */
const batch = (exs, withAnswer) => {
  const enc = exs.map((ex) => encodeExample(tok, { prompt: question(ex), answer: withAnswer ? ex.answer : '' }, { addBos: false, addEos: withAnswer }));
  const T = Math.max(...enc.map((e) => e.inputIds.length));
  const ids = new Int32Array(exs.length * T).fill(tok.padId);
  const P = 1 + 9 * K;
  const labels = new Int32Array(exs.length * (T + P)).fill(IGNORE_INDEX);
  enc.forEach((e, b) => {
    ids.set(e.inputIds, b * T);
    labels.set(e.labels, b * (T + P) + P);
  });
  const feats = new Float32Array(exs.length * 9 * F);
  exs.forEach((ex, b) => feats.set(cellFeatures(ex.inputs[0].scene), b * 9 * F));
  const B = exs.length;
  const embeds = tf.concat([
    lm.embed(tf.fill([B, 1], tok.bosId, 'int32')),
    cellTokens(tf.tensor2d(feats, [B * 9, F]), B),
    lm.embed(tf.tensor2d(ids, [B, T], 'int32')),
  ], 1);
  return { embeds, labels: tf.tensor2d(labels, [B, T + 1 + 9 * K], 'int32') };
};
const train = sw.task('vqa', 'train');
const test = sw.task('vqa', 'test', o.n);
/** @type {[string, import('@adaptorkit/core').Parameter][]} */
const named = projs.flatMap((p, k) => p.namedTrainableParameters().map(([n, q]) => /** @type {[string, import('@adaptorkit/core').Parameter]} */ ([`${k}.${n}`, q])));
const opt = new AdamW([{ params: named.map(([, p]) => p), weightDecay: 0 }], { lr: o.lr, betas: [0.9, 0.999] });
const rng = new Rng(11);
const t0 = Date.now();
const evaluate = () => {
  const by = new Map();
  let hit = 0;
  for (let i = 0; i < test.length; i += 50) {
    const exs = test.slice(i, i + 50);
    exs.forEach((ex) => {
      const said = tf.tidy(() => {
        const { embeds } = batch([ex], false);
        // drop the trailing answer-less positions: the prompt ends at the question
        const out = generate(lm, [], { prefixEmbeds: embeds, maxNewTokens: 4, stop: [tok.eosId] }).tokens[0];
        const end = out.indexOf(tok.eosId);
        return tok.decode(end < 0 ? out : out.slice(0, end)).split('.')[0].trim();
      });
      const ok = said === ex.answer ? 1 : 0;
      hit += ok;
      const t = by.get(ex.template) ?? [0, 0];
      by.set(ex.template, [t[0] + ok, t[1] + 1]);
    });
  }
  return `${((100 * hit) / test.length).toFixed(1)}% (${VQA_TEMPLATES.map((t) => `${t} ${by.has(t) ? ((100 * by.get(t)[0]) / by.get(t)[1]).toFixed(0) : '-'}`).join(', ')})`;
};
console.log(`oracle cells (${K} token${K > 1 ? 's' : ''} per cell) -> ${o.lm}: ${named.reduce((n, [, p]) => n + p.size, 0)} trainable, ${o.steps} steps, lr ${o.lr}, batch ${o.batch}`);
for (let s = 1; s <= o.steps; s++) {
  const exs = Array.from({ length: o.batch }, () => train[rng.int(train.length)]);
  const { loss, grads } = valueAndGrads(() => {
    const { embeds, labels } = batch(exs, true);
    return maskedCrossEntropy(lm.forward({ embeds }).logits, labels);
  }, named.map(([, p]) => p));
  opt.step(grads);
  disposeGrads(grads);
  if (s % 100 === 0 || s === o.steps) console.log(`step ${s} loss ${loss.toFixed(3)} (${((Date.now() - t0) / s).toFixed(0)} ms/step)${s % 300 === 0 || s === o.steps ? ` test ${evaluate()}` : ''}`);
}
const prior = majorityAnswerBaseline(train, test, (e) => e.prompt);
console.log(`majority answer per question text: ${((100 * prior.filter((a, i) => a === test[i].answer).length) / test.length).toFixed(1)}%`);
