#!/usr/bin/env node
/**
 * Linear probe of a ShapesWorld vision encoder: can the shape and colour of the object in each cell
 * of the 3 x 3 scene grid be read from the encoder's patch tokens (averaged per cell)? Trains a
 * softmax regression per attribute on 1,500 VQA training images and scores 400 test images, for the
 * penultimate and the last layer. "on-object" counts occupied cells only.
 *
 *   npm run build
 *   node experiments/trainer/vision-probe.mjs packages/shapes-bases/models/shapesworld/vision   # the shipped encoder
 *   node experiments/trainer/vision-probe.mjs random                                    # same architecture, random init (seed 0)
 */
import { initBackend, loadVisionEncoder, manualSeed, tf, VisionEncoder } from '@adaptorkit/core';
import { ShapesWorld, SHAPES, COLOURS } from '@adaptorkit/data';

await initBackend('auto', { log: false });
const sw = new ShapesWorld({ seed: 7 });
const dir = process.argv[2] ?? 'packages/shapes-bases/models/shapesworld/vision';
const v = dir === 'random' ? (manualSeed(0), new VisionEncoder((await loadVisionEncoder('packages/shapes-bases/models/shapesworld/vision')).config)) : await loadVisionEncoder(dir);
const L = v.config.numLayers;
const train = sw.task('vqa', 'train').slice(0, 1500), test = sw.task('vqa', 'test').slice(0, 400);
function feats(exs, which) {
  const X = [], S = [], C = [];
  for (let i = 0; i < exs.length; i += 100) {
    const chunk = exs.slice(i, i + 100);
    const px = tf.tensor4d(Float32Array.from(chunk.flatMap((e) => Array.from(sw.renderImage(e.inputs[0].scene), (x) => (x - 0.5) / 0.25))), [chunk.length, 32, 32, 3]);
    const out = v.forward(px);
    const h = tf.slice(out.hiddenStates[which], [0, 1, 0], [-1, 64, -1]); // drop class token
    const g = tf.reshape(h, [chunk.length, 8, 8, -1]);
    // 3x3 grid cells over an 8x8 patch grid: pool patches whose centre is in the cell
    const arr = g.arraySync();
    chunk.forEach((e, b) => {
      for (let cell = 0; cell < 9; cell++) {
        const cx = cell % 3, cy = Math.floor(cell / 3);
        const acc = new Float32Array(g.shape[3]); let n = 0;
        for (let py = 0; py < 8; py++) for (let pxi = 0; pxi < 8; pxi++) {
          if (Math.floor(((pxi + 0.5) / 8) * 3) === cx && Math.floor(((py + 0.5) / 8) * 3) === cy) { arr[b][py][pxi].forEach((x, k) => (acc[k] += x)); n++; }
        }
        X.push(Array.from(acc, (x) => x / n));
        const o = e.inputs[0].scene.objects.find((o) => o.cell === cell);
        S.push(o ? SHAPES.indexOf(o.shape) : SHAPES.length);
        C.push(o ? COLOURS.indexOf(o.colour) : COLOURS.length);
      }
    });
    tf.dispose([px, /** @type {any} */ (out), h, g]); // the whole VisionOutput: every hidden state
  }
  return { X: tf.tensor2d(X), S, C };
}
function probe(tr, te, ytr, yte, k) {
  const d = tr.shape[1];
  const mean = tf.mean(tr, 0), std = tf.add(tf.sqrt(tf.moments(tr, 0).variance), 1e-5);
  const ntr = tf.div(tf.sub(tr, mean), std), nte = tf.div(tf.sub(te, mean), std);
  const W = tf.variable(tf.zeros([d, k])), bb = tf.variable(tf.zeros([k]));
  const opt = tf.train.adam(0.01);
  const Y = tf.oneHot(tf.tensor1d(ytr, 'int32'), k);
  for (let i = 0; i < 300; i++) opt.minimize(() => tf.losses.softmaxCrossEntropy(Y, tf.add(tf.matMul(ntr, W), bb)));
  const pred = tf.argMax(tf.add(tf.matMul(nte, W), bb), 1).dataSync();
  let hit = 0, hitObj = 0, nObj = 0; pred.forEach((p, i) => { hit += Number(p === yte[i]); if (yte[i] < k - 1) { nObj++; hitObj += Number(p === yte[i]); } });
  return `all ${(100 * hit / yte.length).toFixed(1)}% on-object ${(100 * hitObj / nObj).toFixed(1)}%`;
}
for (const which of [L - 1, L]) {
  const a = feats(train, which), b = feats(test, which);
  console.log(`${dir} hidden ${which}: shape ${probe(a.X, b.X, a.S, b.S, SHAPES.length + 1)} | colour ${probe(a.X, b.X, a.C, b.C, COLOURS.length + 1)}`);
}
