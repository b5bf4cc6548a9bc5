#!/usr/bin/env node
/**
 * Continue training a ShapesWorld LM with the scene-QA objective: each step, next-token loss on 16
 * windows of 64 tokens of the LM's pretraining stream plus an answer-only loss on 32 scene-QA
 * examples (`sceneQALoss`), AdamW (weight decay 0.1, betas 0.9 / 0.95) at a constant lr. This is
 * the second and third stage of the "staged LM" of packages/mma/README.md:
 *
 *   npx adaptorkit pretrain examples/pretrain-shapes-sceneqa-lines.yaml              # stage 1 -> /tmp/staged/s1/lm
 *   node packages/shapes-bases/scripts/continue-sceneqa.mjs /tmp/staged/s1/lm /tmp/staged/s2 --steps 900 --lr 1e-3
 *   node packages/shapes-bases/scripts/continue-sceneqa.mjs /tmp/staged/s2 /tmp/staged/lm --steps 2400 --lr 2e-3
 *
 * Usage: node packages/shapes-bases/scripts/continue-sceneqa.mjs <inLmDir> <outLmDir> [--steps N] [--lr x]
 * Needs the built packages (npm run build). Run from the repository root.
 */
import { AdamW, disposeGrads, initBackend, maskedCrossEntropy, Rng, tf, valueAndGrads } from '@adaptorkit/core';
import { ShapesWorld } from '@adaptorkit/data';
import { lmPretrainStream, loadBases, saveLM, sceneQALoss } from '@adaptorkit/shapes-bases';

const argv = process.argv.slice(2);
const pos = [];
const o = { steps: 900, lr: 1e-3 };
for (let i = 0; i < argv.length; i++) {
  if (argv[i].startsWith('--')) o[argv[i].slice(2)] = Number(argv[++i]);
  else pos.push(argv[i]);
}
if (pos.length !== 2) throw new Error('usage: continue-sceneqa.mjs <inLmDir> <outLmDir> [--steps N] [--lr x]');
const [inDir, outDir] = pos;
await initBackend('auto', { log: false });
const { lm, vision } = await loadBases(inDir, 'shapesworld');
vision.dispose();
const sw = new ShapesWorld({ seed: 0 });
const tok = sw.tokenizer;
const qa = sw.sceneQA(30000);
const stream = lmPretrainStream(sw);
const named = lm.namedTrainableParameters();
const opt = new AdamW([{ params: named.map(([, p]) => p), weightDecay: 0.1 }], { lr: o.lr, betas: [0.9, 0.95] });
const rng = new Rng(5);
const t0 = Date.now();
for (let s = 1; s <= o.steps; s++) {
  const { loss, grads } = valueAndGrads(() => {
    const rows = new Int32Array(16 * 64);
    for (let b = 0; b < 16; b++) {
      const start = rng.int(stream.length - 65);
      rows.set(stream.subarray(start, start + 64), b * 64);
    }
    const ids = tf.tensor2d(rows, [16, 64], 'int32');
    const qaIdx = Array.from({ length: 32 }, () => rng.int(qa.length));
    return tf.add(maskedCrossEntropy(lm.forward({ ids }).logits, ids), sceneQALoss(lm, tok, qa, qaIdx));
  }, named.map(([, p]) => p));
  opt.step(grads);
  disposeGrads(grads);
  if (s % 100 === 0 || s === o.steps) console.log(`step ${s}/${o.steps} loss ${loss.toFixed(3)} (${((Date.now() - t0) / s).toFixed(0)} ms/step)`);
}
await saveLM(outDir, lm, { adaptorkit_continue_sceneqa: { from: inDir, steps: o.steps, lr: o.lr } });
console.log(`saved ${outDir}`);
