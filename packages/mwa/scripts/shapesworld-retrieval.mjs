// ShapesWorld image-text retrieval: full fine-tuning vs extractors only vs MWA (extractors + enhancer)
// on a frozen, contrastively pretrained tiny Multiway Transformer.
//
//   npx turbo run build --filter=@adaptorkit/mwa
//   node packages/mwa/scripts/shapesworld-retrieval.mjs [--backend auto] [--pretrain-steps 300] [--adapt-steps 150]
//
// 1. Pretrain a tiny Multiway base from scratch on ShapesWorld (seed 0, default rendering) retrieval
//    captions with the symmetric contrastive loss (every parameter trains).
// 2. Downstream domain: a different ShapesWorld (seed 1, heavier pixel noise and clutter). From the
//    same pretrained checkpoint, train three variants for the same number of steps:
//    full fine-tune (all parameters), extractors only (MWA without enhancer), MWA (defaults).
// 3. Score R@1/5/10 image->text and text->image on the downstream test split; report trainable %
//    and mean step time (forward + backward + update, first step excluded).
// Prints a Markdown table. CPU-sized: a few minutes on 2 cores with the native or wasm backend.
import { initBackend, manualSeed, tf } from '@adaptorkit/core';
import { ShapesWorld } from '@adaptorkit/data';
import {
  MultiwayTransformer,
  attachMwa,
  disposeBatch,
  evaluateRetrieval,
  shapesWorldMultiwayShape,
  shapesWorldRetrievalBatch,
  trainContrastive,
} from '@adaptorkit/mwa';

const args = process.argv.slice(2);
const opt = (k, d) => {
  const i = args.indexOf(`--${k}`);
  return i >= 0 ? args[i + 1] : d;
};
const backendPref = opt('backend', 'auto');
const pretrainSteps = Number(opt('pretrain-steps', '300'));
const adaptSteps = Number(opt('adapt-steps', '150'));
const batchSize = Number(opt('batch', '32'));
const nTest = Number(opt('test', '300'));
const MAX_LEN = 48;

const info = await initBackend(backendPref, { log: false });
console.log(`backend: ${info.name}${info.detail ? ` (${info.detail})` : ''}`);

const source = new ShapesWorld({ seed: 0 });
const target = new ShapesWorld({ seed: 1, image: { noise: 0.08, clutter: 1.0 } });

const base = {
  ...shapesWorldMultiwayShape(source),
  dim: 64,
  numLayers: 2,
  numHeads: 4,
  maxTextLen: MAX_LEN,
  patchSize: 8,
  sharedAttention: false,
};
const mwaBottleneck = 8; // b/d = 1/8
const srcTrain = source.retrieval('train');
const tgtTrain = target.retrieval('train');
const tgtTest = target.retrieval('test', nTest);

/** A batch sampler over `pairs` (seeded, reshuffled every epoch); disposes the previous batch. */
function sampler(world, pairs, seed) {
  let order = [];
  let pos = 0;
  let state = seed >>> 0;
  const rand = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296);
  let prev;
  return () => {
    if (prev) disposeBatch(prev);
    const picked = [];
    while (picked.length < batchSize) {
      if (pos >= order.length) {
        order = pairs.map((_, i) => i);
        for (let i = order.length - 1; i > 0; i--) {
          const j = Math.floor(rand() * (i + 1));
          [order[i], order[j]] = [order[j], order[i]];
        }
        pos = 0;
      }
      picked.push(pairs[order[pos++]]);
    }
    prev = shapesWorldRetrievalBatch(world, picked, { maxLen: MAX_LEN });
    return prev;
  };
}

const testBatch = shapesWorldRetrievalBatch(target, tgtTest, { maxLen: MAX_LEN });
const evalOn = (m) => evaluateRetrieval(m, testBatch, { batchSize: 100 });

// ---- 1. pretrain the base
manualSeed(0);
const pre = new MultiwayTransformer(base);
const t0 = performance.now();
const preRun = trainContrastive(pre, sampler(source, srcTrain, 1), {
  params: pre.parameters(),
  steps: pretrainSteps,
  lr: 1e-3,
  warmupSteps: Math.round(pretrainSteps * 0.05),
  weightDecay: 0.05,
});
const preSec = (performance.now() - t0) / 1000;
const srcTestBatch = shapesWorldRetrievalBatch(source, source.retrieval('test', nTest), { maxLen: MAX_LEN });
const srcScore = evaluateRetrieval(pre, srcTestBatch, { batchSize: 100 });
disposeBatch(srcTestBatch);
console.log(
  `pretrained ${pretrainSteps} steps x ${batchSize} in ${preSec.toFixed(0)} s: loss ${mean(preRun.losses.slice(0, 10)).toFixed(3)} -> ${mean(preRun.losses.slice(-10)).toFixed(3)}; ` +
    `source test R@1 i->t ${pct(srcScore.imageToText.r1)} t->i ${pct(srcScore.textToImage.r1)}`,
);
const checkpoint = new Map([...pre.stateDict()].map(([k, v]) => [k, v.clone()]));
const fresh = () => {
  manualSeed(0);
  const m = new MultiwayTransformer(base);
  m.loadStateDict(checkpoint);
  return m;
};

const rows = [];
const zero = fresh();
rows.push(row('frozen pretrained base (zero-shot)', evalOn(zero), 0, zero.countParameters(), undefined, undefined));
zero.dispose();

// ---- 2. the three variants, same data order, same steps
const variants = [
  { name: 'full fine-tune', lr: 3e-4, setup: (m) => ({ params: m.unfreeze().parameters() }) },
  { name: 'extractors only', lr: 2e-3, setup: (m) => ({ params: attachMwa(m, { extractor: { bottleneck: mwaBottleneck }, enhancer: { enabled: false } }).trainableParameters() }) },
  { name: 'MWA (extractors + enhancer)', lr: 2e-3, setup: (m) => ({ params: attachMwa(m, { extractor: { bottleneck: mwaBottleneck } }).trainableParameters() }) },
];
for (const v of variants) {
  const m = fresh();
  const baseCount = m.countParameters();
  const { params } = v.setup(m);
  const trainable = params.reduce((n, p) => n + p.size, 0);
  const r = trainContrastive(m, sampler(target, tgtTrain, 2), {
    params,
    steps: adaptSteps,
    lr: v.lr,
    warmupSteps: Math.round(adaptSteps * 0.1),
    weightDecay: 0.05,
  });
  rows.push(row(v.name, evalOn(m), trainable, baseCount, r.stepMs, mean(r.losses.slice(-10))));
  m.dispose();
}

console.log(`\ndownstream: ShapesWorld seed 1 (noise 0.08, clutter 1.0), ${adaptSteps} steps x ${batchSize}, test ${nTest} pairs; backend ${info.name}\n`);
console.log('| variant | i->t R@1 | R@5 | R@10 | t->i R@1 | R@5 | R@10 | trainable | % of base | ms/step | final loss |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
disposeBatch(testBatch);

function row(name, s, trainable, baseCount, stepMs, loss) {
  const cells = [
    name,
    pct(s.imageToText.r1), pct(s.imageToText.r5), pct(s.imageToText.r10),
    pct(s.textToImage.r1), pct(s.textToImage.r5), pct(s.textToImage.r10),
    trainable.toLocaleString('en-US'),
    `${((100 * trainable) / baseCount).toFixed(2)}%`,
    stepMs === undefined ? '-' : stepMs.toFixed(0),
    loss === undefined ? '-' : loss.toFixed(3),
  ];
  return `| ${cells.join(' | ')} |`;
}
function pct(x) {
  return (100 * x).toFixed(1);
}
function mean(a) {
  return a.reduce((s, x) => s + x, 0) / Math.max(1, a.length);
}
