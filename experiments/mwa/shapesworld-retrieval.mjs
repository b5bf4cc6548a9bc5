// ShapesWorld image-text retrieval: frozen base vs full fine-tuning vs extractors only vs MWA
// (extractors + enhancer), all from the same contrastively pretrained tiny Multiway base.
//
//   npx turbo run build --filter=@adaptorkit/mwa
//   node experiments/mwa/shapesworld-retrieval.mjs [--base packages/shapes-bases/models/shapesworld/multiway | --pretrain-steps 600]
//        [--steps 150] [--batch 32] [--seeds 0] [--test 500] [--lr-full 3e-4] [--lr-adapter 1e-2] [--timing-rounds 20]
//
// 1. The base: loaded from a folder written by saveMultiway (default: the one the trainer ships,
//    made by packages/shapes-bases/scripts/pretrain-multiway.mjs: 600 steps on ShapesWorld seed 7 rendered clean), or, with
//    --pretrain-steps, pretrained here with the same recipe (pretrainShapesWorldBase).
// 2. Downstream: the default ShapesWorld (seed 0, noise 0.03, clutter 0.5): other scenes, another
//    rendering. Each variant trains --steps steps of --batch pairs from the same checkpoint in the
//    same batch order (cosine, 10% warmup, AdamW wd 0.05):
//    full fine-tune (every parameter), extractors only (MWA without enhancer), MWA (defaults except
//    the bottleneck, b = d/8 = 8 at d 64; the enhancer is the default d/4 = 16).
// 3. R@1/5/10 image->text and text->image on the first --test pairs of the downstream test split,
//    the mean over --seeds (adapter init / dropout / batch-order seeds), trainable %, and step time
//    (forward + backward + update) measured by interleaving the variants step by step in one
//    process (--timing-rounds rounds, median), so a busy shared machine slows them alike.
// Prints Markdown tables.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdamW, disposeGrads, initBackend, manualSeed, valueAndGrads } from '@adaptorkit/core';
import { ShapesWorld } from '@adaptorkit/data';
import { attachMwa } from '@adaptorkit/mwa';
import {
  MultiwayTransformer,
  SHAPESWORLD_BASE_COLOUR_GAINS,
  SHAPESWORLD_BASE_MAX_OBJECTS,
  SHAPESWORLD_BASE_WORLD,
  contrastiveLoss,
  disposeBatch,
  epochSampler,
  evaluateRetrieval,
  loadMultiway,
  pretrainShapesWorldBase,
  shapesWorldRetrievalBatch,
  trainContrastive,
} from '@adaptorkit/shapes-bases';

const args = process.argv.slice(2);
const opt = (k, d) => {
  const i = args.indexOf(`--${k}`);
  return i >= 0 ? args[i + 1] : d;
};
const here = path.dirname(fileURLToPath(import.meta.url));
const baseDir = opt('base', path.resolve(here, '../../../packages/shapes-bases/models/shapesworld/multiway'));
const pretrainSteps = Number(opt('pretrain-steps', '0'));
const steps = Number(opt('steps', '150'));
const batchSize = Number(opt('batch', '32'));
const seeds = opt('seeds', '0').split(',').map(Number);
const nTest = Number(opt('test', '500'));
const lrFull = Number(opt('lr-full', '3e-4'));
const lrAdapter = Number(opt('lr-adapter', '1e-2'));
const timingRounds = Number(opt('timing-rounds', '20'));
const bottleneck = 8;

const info = await initBackend(opt('backend', 'auto'), { log: false });
console.log(`backend: ${info.name}${info.detail ? ` (${info.detail})` : ''}`);

const target = new ShapesWorld({ seed: 0 });
const testBatch = shapesWorldRetrievalBatch(target, target.retrieval('test').slice(0, nTest));

// ---- 1. the base
let baseModel;
if (pretrainSteps > 0) {
  const r = pretrainShapesWorldBase(new ShapesWorld(SHAPESWORLD_BASE_WORLD), { steps: pretrainSteps, batchSize: 32, lr: 2e-3, seed: 0, maxObjects: SHAPESWORLD_BASE_MAX_OBJECTS, colourGains: SHAPESWORLD_BASE_COLOUR_GAINS, log: (l) => console.log(l) });
  baseModel = r.model;
  console.log(`pretrained the base here: ${pretrainSteps} steps, source val R@1 ${pct(r.valR1)}`);
} else {
  baseModel = await loadMultiway(baseDir);
  console.log(`base: ${path.relative(process.cwd(), baseDir)}`);
}
const baseConfig = baseModel.config;
const checkpoint = new Map([...baseModel.stateDict()].map(([k, v]) => [k, v.clone()]));
const baseCount = baseModel.countParameters();
baseModel.dispose();
/** A copy of the base (same weights, every parameter trainable until a variant freezes it). */
const fresh = () => {
  manualSeed(0);
  const m = new MultiwayTransformer(baseConfig);
  m.loadStateDict(checkpoint);
  return m;
};

const VARIANTS = [
  { name: 'full fine-tune', lr: lrFull, setup: (m) => m.unfreeze().parameters() },
  { name: 'extractors only', lr: lrAdapter, setup: (m, seed) => attachMwa(m, { extractor: { bottleneck }, enhancer: { enabled: false }, seed }).trainableParameters() },
  { name: 'MWA (extractors + enhancer)', lr: lrAdapter, setup: (m, seed) => attachMwa(m, { extractor: { bottleneck }, seed }).trainableParameters() },
];

// ---- 2. accuracy: every variant, every seed
const rows = [];
{
  const m = fresh();
  rows.push({ name: 'frozen pretrained base', scores: [evaluateRetrieval(m, testBatch, { batchSize: 100 })], trainable: 0, losses: [] });
  m.dispose();
}
for (const v of VARIANTS) {
  const scores = [];
  const finals = [];
  let trainable = 0;
  for (const seed of seeds) {
    const m = fresh();
    const params = v.setup(m, seed);
    trainable = params.reduce((n, p) => n + p.size, 0);
    const r = trainContrastive(m, epochSampler(target, target.retrieval('train'), batchSize, 100 + seed), { params, steps, lr: v.lr, warmupSteps: Math.round(steps * 0.1), weightDecay: 0.05 });
    scores.push(evaluateRetrieval(m, testBatch, { batchSize: 100 }));
    finals.push(mean(r.losses.slice(-20)));
    m.dispose();
    console.log(`${v.name} seed ${seed}: loss ${mean(r.losses.slice(0, 10)).toFixed(3)} -> ${finals[finals.length - 1].toFixed(3)}`);
  }
  rows.push({ name: v.name, lr: v.lr, scores, trainable, losses: finals });
}

// ---- 3. step time, interleaved
const timing = VARIANTS.map((v) => {
  const m = fresh();
  const params = v.setup(m, 0);
  return { v, m, params, opt: new AdamW([{ params, weightDecay: 0.05 }], { lr: v.lr }), ms: [] };
});
const timingBatches = epochSampler(target, target.retrieval('train'), batchSize, 999);
for (let round = 0; round < timingRounds + 2; round++) {
  const batch = timingBatches();
  for (const t of timing) {
    const t0 = performance.now();
    const { grads } = valueAndGrads(() => contrastiveLoss(t.m, batch, { training: true }), t.params);
    t.opt.step(grads);
    disposeGrads(grads);
    if (round >= 2) t.ms.push(performance.now() - t0); // two warm-up rounds
  }
}
const stepMs = new Map(timing.map((t) => [t.v.name, median(t.ms)]));
for (const t of timing) {
  t.opt.dispose();
  t.m.dispose();
}

console.log(`\nbase ${baseCount.toLocaleString('en-US')} parameters; downstream ShapesWorld seed 0 (default rendering), ${steps} steps x ${batchSize} pairs, ` +
  `test ${nTest} pairs, seeds ${seeds.join(',')}; lr full ${lrFull}, adapters ${lrAdapter}; backend ${info.name}\n`);
console.log('| variant | i→t R@1 | R@5 | R@10 | t→i R@1 | R@5 | R@10 | trainable | % of base | ms/step | vs full | final loss |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
const fullMs = stepMs.get('full fine-tune');
for (const r of rows) {
  const ms = stepMs.get(r.name);
  const cells = [
    r.name,
    ...[(s) => s.imageToText.r1, (s) => s.imageToText.r5, (s) => s.imageToText.r10, (s) => s.textToImage.r1, (s) => s.textToImage.r5, (s) => s.textToImage.r10].map((f) => spread(r.scores.map(f))),
    r.trainable.toLocaleString('en-US'),
    `${((100 * r.trainable) / baseCount).toFixed(2)}%`,
    ms === undefined ? '-' : ms.toFixed(0),
    ms === undefined ? '-' : `${((100 * ms) / fullMs).toFixed(0)}%`,
    r.losses.length ? mean(r.losses).toFixed(3) : '-',
  ];
  console.log(`| ${cells.join(' | ')} |`);
}
if (seeds.length > 1) console.log(`\ncells: mean over ${seeds.length} seeds (min-max)`);
disposeBatch(testBatch);

function spread(xs) {
  const m = pct(mean(xs));
  return xs.length > 1 ? `${m} (${pct(Math.min(...xs))}-${pct(Math.max(...xs))})` : m;
}
function pct(x) {
  return (100 * x).toFixed(1);
}
function mean(a) {
  return a.reduce((s, x) => s + x, 0) / Math.max(1, a.length);
}
function median(a) {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)] ?? 0;
}
