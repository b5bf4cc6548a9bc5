#!/usr/bin/env node
/**
 * The ShapesWorld composition experiment (issue #9): one model for images and one for sound, each
 * on its own copy of the same frozen base LM (the shipped ShapesWorld LM) with its own encoder and
 * projector, composed with NaiveMC and with DAMC, scored on the multi-modal common-attribute task
 * (image + sound) and on each single-modality task.
 *
 *   npx turbo run build --filter=@adaptorkit/damc
 *   nice -n 15 env ADAPTORKIT_NATIVE_THREADS=1 node experiments/damc/shapesworld-compose.mjs [--mode both|all|frozen,naive,decoupled] [--steps 300] [--json out.json]
 *   node experiments/damc/shapesworld-compose.mjs --table naive.json decoupled.json   # one table from two parallel runs
 *
 * Setup (what is trained, what is frozen):
 *  - base LM: packages/shapes-bases/models/shapesworld/lm (frozen; every model starts from the same weights).
 *  - image: the shipped CLIP ViT (frozen; its penultimate-layer patch features, class token dropped,
 *    2x2 average-pooled to 16 tokens, are computed once and cached) -> trainable 2-layer GELU MLP projector.
 *  - sound: a fixed short-time Fourier front end (window 32, hop 8, log magnitude, 4 frames per token
 *    -> 8 tokens of 68 values; not trained, like a mel front end) -> a small TRAINABLE 2-layer MLP encoder
 *    (trained jointly with its projector: the paper's BEATs encoder is pretrained, ShapesWorld has none)
 *    -> trainable 2-layer GELU MLP projector.
 *  - LLM side: LoRA on all seven linear maps of all 4 layers, r 16, alpha 32 (scale 2 as in the
 *    paper's 256/128), dropout 0.05; 5 + 5 learnable boundary embeddings per modality span.
 *    naive: one delta for all tokens; decoupled: text delta + modality delta routed per position.
 *  - training data of each model: its single-modality task only (the common-attribute question with
 *    ONE input of its modality; exactly one option holds). No model ever sees two modalities.
 *  - composition: NaiveMC averages the naive deltas (1/2 each) everywhere; DAMC averages the text
 *    deltas (1/2 each) and keeps each modality delta on its own span. Optionally (an extension) the
 *    text coefficients are searched on the common task's val split.
 *  - metric: greedy first token after the prompt against the gold letter (spec's MCUB metric).
 */
import * as path from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import {
  AdamW, Linear, MLPProjector, Module, Rng, activate, clipGradNorm, disposeGrads, initBackend,
  loadCausalLM, loadVisionEncoder, manualSeed, scheduledLr, tf, valueAndGrads, IGNORE_INDEX,
} from '@adaptorkit/core';
import {
  COLOURS, IMAGE_TOKEN, LETTERS, SHAPES, SOUND_TOKEN, ShapesWorld, encodeExample, numberWord, sampleScene, withArticle,
} from '@adaptorkit/data';
import { shippedBasesDir } from '@adaptorkit/shapes-bases';
import { composeModels, damcDecoupledMethod, damcNaiveMethod, searchCoefficients } from '@adaptorkit/damc';

const BASES = shippedBasesDir('shapesworld');

// ------------------------------------------------------------------ args
const argv = process.argv.slice(2);
const arg = (name, def) => {
  const i = argv.lastIndexOf(`--${name}`); // a repeated flag: the last one wins (the demo appends its smoke arguments)
  return i >= 0 ? argv[i + 1] : def;
};
if (argv[0] === '--table') {
  const rows = argv.slice(1).flatMap((f) => JSON.parse(readFileSync(f, 'utf8')).rows);
  printTable(rows);
  process.exit(0);
}
// --mode: comma list of frozen | naive | decoupled; 'both' = naive,decoupled; 'all' = frozen,naive,decoupled.
// frozen: the frozen-LLM baseline — each model trains only its encoder side (projector, boundary
// embeddings, the sound encoder), its LoRA factors stay at their init (B = 0: exactly the base LM),
// so composing them is exact and needs no merge rule.
const MODE = arg('mode', 'both');
const MODES = MODE === 'both' ? ['naive', 'decoupled'] : MODE === 'all' ? ['frozen', 'naive', 'decoupled'] : MODE.split(',');
for (const m of MODES) if (!['frozen', 'naive', 'decoupled'].includes(m)) throw new Error(`--mode: unknown mode '${m}' (frozen, naive, decoupled, both, all)`);
const STEPS = Number(arg('steps', 300));
const BATCH = Number(arg('batch', 16));
const LR = Number(arg('lr', 2e-3));
const RANK = Number(arg('rank', 16));
const N_TRAIN = Number(arg('train', 3000));
const N_TEST = Number(arg('test', 500));
const SEED = Number(arg('seed', 0));
const SEARCH = arg('search', 'yes') === 'yes';
// --single no: score only the composed models (the single models' own rows are left out)
const SINGLE = arg('single', 'yes') === 'yes';
const JSON_OUT = arg('json', undefined);
// --diag: train one sound model on a direct question instead ("how many objects are there?" ->
// a number word, first token scored): does the perception pipeline learn at all, apart from the
// multiple-choice letter format?
const DIAG = argv.includes('--diag');
// --task count: every model and the composition get a direct question instead of the letter choice:
// single modality "<x> how many objects are there?"; joint "<image> <sound> how many objects are
// there?" over two scenes with the same count (answer: the number word, first token scored).
const TASK = arg('task', 'common');

const log = (...a) => console.log(...a);
const backend = await initBackend('auto', { log: false });
log(`backend ${backend.name} (${backend.detail ?? backend.package}); mode ${MODE}, steps ${STEPS}, batch ${BATCH}, lr ${LR}, rank ${RANK}, seed ${SEED}`);

const sw = new ShapesWorld({ seed: SEED });
const tok = sw.tokenizer;
const tokId = (t) => {
  const v = tok.tokenToId(t);
  if (v === undefined) throw new Error(`tokenizer has no '${t}'`);
  return v;
};
const PH = { image: tokId(IMAGE_TOKEN), sound: tokId(SOUND_TOKEN) };
// every option letter must be one token (the metric scores the first answer token)
for (const l of LETTERS) if (tok.encode(l).length !== 1) throw new Error(`letter ${l} is not one token`);

// ------------------------------------------------------------------ tasks
/**
 * The common-attribute question over the given modalities, as @adaptorkit/data's sampleCommon builds
 * it (same prompt, same option phrases, distractors that fail for at least one input), but with the
 * modality set fixed. With one modality it is that modality's single-modality task.
 */
function sampleCommonOver(rng, modalities) {
  const kind = rng.pick(['shape', 'colour', 'count']);
  const values = kind === 'shape' ? SHAPES : kind === 'colour' ? COLOURS : ['1', '2', '3', '4'];
  const gold = rng.pick(values);
  const holds = (scene, v) =>
    kind === 'shape' ? scene.objects.some((o) => o.shape === v) : kind === 'colour' ? scene.objects.some((o) => o.colour === v) : scene.objects.length === Number(v);
  const scenes = modalities.map(() => (kind === 'count' ? sampleScene(rng, { count: Number(gold) }) : sampleScene(rng, { include: [kind === 'shape' ? { shape: gold } : { colour: gold }] })));
  const distractors = rng.shuffle(values.filter((v) => v !== gold && !scenes.every((s) => holds(s, v)))).slice(0, 3);
  const options = rng.shuffle([gold, ...distractors]);
  const phrase = (v) =>
    kind === 'shape' ? `they all contain a ${v}` : kind === 'colour' ? `they all contain ${withArticle(v)} object` : `they all have ${numberWord(Number(v))} ${v === '1' ? 'object' : 'objects'}`;
  const listed = options.map((v, i) => `${LETTERS[i]}. ${phrase(v)}.`).join(' ');
  const ph = modalities.map((m) => (m === 'image' ? IMAGE_TOKEN : SOUND_TOKEN)).join(' ');
  return {
    template: `${kind}_${modalities.join('_')}`,
    inputs: modalities.map((modality, i) => ({ modality, scene: scenes[i] })),
    prompt: `${ph} what do these inputs have in common? ${listed} answer with the letter.`,
    answer: LETTERS[options.indexOf(gold)],
  };
}

const split = (name, k, n, modalities) => {
  const rng = new Rng((SEED * 7919 + k) >>> 0);
  return Array.from({ length: n }, (_, i) => ({ id: `${name}-${i}`, ...sampleCommonOver(rng, modalities) }));
};
const commonData = () => ({
  image: { train: split('image-train', 1, N_TRAIN, ['image']), test: split('image-test', 2, N_TEST, ['image']) },
  sound: { train: split('sound-train', 3, N_TRAIN, ['sound']), test: split('sound-test', 4, N_TEST, ['sound']) },
  // the multi-modal task itself: @adaptorkit/data's 'common' split, the image + sound examples
  common: {
    val: sw.task('common', 'val', 1200).filter((e) => e.template.endsWith('_image_sound')),
    test: sw.task('common', 'test', 2000).filter((e) => e.template.endsWith('_image_sound')),
  },
});
const countSplit = (k, n, modalities) => {
  const rng = new Rng((SEED * 7919 + 200 + k) >>> 0);
  return Array.from({ length: n }, (_, i) => {
    const c = 1 + rng.int(4);
    const ph = modalities.map((m) => (m === 'image' ? IMAGE_TOKEN : SOUND_TOKEN)).join(' ');
    return {
      id: `count-${k}-${i}`, template: `count_${modalities.join('_')}`,
      inputs: modalities.map((modality) => ({ modality, scene: sampleScene(rng, { count: c }) })),
      prompt: `${ph} how many objects are there?`, answer: numberWord(c),
    };
  });
};
const data = TASK === 'count'
  ? {
    image: { train: countSplit(1, N_TRAIN, ['image']), test: countSplit(2, N_TEST, ['image']) },
    sound: { train: countSplit(3, N_TRAIN, ['sound']), test: countSplit(4, N_TEST, ['sound']) },
    common: { val: countSplit(5, 200, ['image', 'sound']), test: countSplit(6, Number(arg('joint', 500)), ['image', 'sound']) }, // --joint: joint test questions
  }
  : commonData();
if (DIAG) {
  const direct = (k, n) => {
    const rng = new Rng((SEED * 7919 + 100 + k) >>> 0);
    return Array.from({ length: n }, (_, i) => {
      const c = 1 + rng.int(4);
      const scene = sampleScene(rng, { count: c });
      return { id: `direct-${k}-${i}`, template: 'count_sound', inputs: [{ modality: 'sound', scene }], prompt: `${SOUND_TOKEN} how many objects are there?`, answer: numberWord(c) };
    });
  };
  data.sound = { train: direct(1, N_TRAIN), test: direct(2, N_TEST) };
}
log(`examples: image ${data.image.train.length}/${data.image.test.length}, sound ${data.sound.train.length}/${data.sound.test.length}, common(image+sound) val ${data.common.val.length} test ${data.common.test.length}`);

// ------------------------------------------------------------------ encoders
const lmDir = path.join(BASES, 'lm');
const lmParams = (await loadCausalLM(lmDir)).countParameters();
const vision = await loadVisionEncoder(path.join(BASES, 'vision'));
vision.freeze();
const IMG_TOKENS = 16;
const IMG_DIM = vision.config.hiddenSize;
const featCache = new WeakMap(); // scene -> Float32Array [16 * dv]

/** Frozen ViT features of these scenes, cached: penultimate layer, class token dropped, 2x2 average-pooled. */
function cacheImageFeatures(scenes) {
  const todo = [...new Set(scenes.filter((s) => !featCache.has(s)))];
  const size = vision.config.imageSize;
  for (let i = 0; i < todo.length; i += 64) {
    const chunk = todo.slice(i, i + 64);
    const buf = new Float32Array(chunk.length * size * size * 3);
    chunk.forEach((s, j) => {
      const img = sw.renderImage(s);
      for (let k = 0; k < img.length; k++) buf[j * img.length + k] = (img[k] - 0.5) / 0.25; // the trainer's normalisation
    });
    const f = tf.tidy(() => {
      const out = vision.forward(tf.tensor4d(buf, [chunk.length, size, size, 3]));
      const h = out.hiddenStates[out.hiddenStates.length - 2]; // [B, 1 + g*g, dv]
      const [B, n, dv] = h.shape;
      const g = Math.round(Math.sqrt(n - 1));
      const grid = tf.reshape(tf.slice(h, [0, 1, 0], [B, n - 1, dv]), [B, g, g, dv]);
      return tf.reshape(tf.avgPool(grid, 2, 2, 'valid'), [B, IMG_TOKENS, dv]); // [B, 16, dv]
    });
    const a = f.dataSync();
    f.dispose();
    chunk.forEach((s, j) => featCache.set(s, a.slice(j * IMG_TOKENS * IMG_DIM, (j + 1) * IMG_TOKENS * IMG_DIM)));
  }
}

// Sound front end: short-time Fourier magnitudes (fixed), grouped into tokens.
const WIN = 32, HOP = 8, BINS = WIN / 2 + 1, GROUP = 4;
const L = sw.config.sound.length;
const FRAMES = L / HOP;
const SND_TOKENS = FRAMES / GROUP;
const SND_DIM = GROUP * BINS;
const hann = Float64Array.from({ length: WIN }, (_, n) => 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / WIN));
const soundCache = new WeakMap();
function soundFeatures(scene) {
  let f = soundCache.get(scene);
  if (f) return f;
  const x = sw.renderSound(scene); // [L]
  f = new Float32Array(FRAMES * BINS); // [FRAMES, BINS] = [SND_TOKENS, GROUP * BINS]
  for (let t = 0; t < FRAMES; t++) {
    for (let k = 0; k < BINS; k++) {
      let re = 0, im = 0;
      for (let n = 0; n < WIN; n++) {
        const v = t * HOP + n < L ? x[t * HOP + n] * hann[n] : 0;
        re += v * Math.cos((2 * Math.PI * k * n) / WIN);
        im -= v * Math.sin((2 * Math.PI * k * n) / WIN);
      }
      f[t * BINS + k] = Math.log1p(Math.hypot(re, im));
    }
  }
  soundCache.set(scene, f);
  return f;
}

/** Pass-through "encoder" for cached frozen features. */
class Cached extends Module {
  forward(x) {
    return x;
  }
}

/** The small trainable sound encoder: per-token MLP over the STFT features. [B, T, 68] -> [B, T, 128] */
class SoundEncoder extends Module {
  constructor(inDim, dim) {
    super();
    this.fc1 = this.child('fc1', new Linear(inDim, dim, { bias: true }));
    this.fc2 = this.child('fc2', new Linear(dim, dim, { bias: true }));
  }
  forward(x) {
    return tf.tidy(() => this.fc2.forward(activate(this.fc1.forward(x), 'gelu')));
  }
}

// ------------------------------------------------------------------ batches
/** Examples -> DamcBatch. `keep`: the modalities the model has (other placeholders are dropped from the prompt). */
function makeBatch(examples, keep, withAnswer) {
  const rows = [];
  const inputs = Object.fromEntries(keep.map((m) => [m, []]));
  for (const ex of examples) {
    let prompt = ex.prompt;
    for (const [m, t] of [['image', IMAGE_TOKEN], ['sound', SOUND_TOKEN]]) if (!keep.includes(m)) prompt = prompt.replace(`${t} `, '');
    const enc = withAnswer ? encodeExample(tok, { prompt, answer: ex.answer }) : encodeExample(tok, { prompt, answer: '' }, { addEos: false });
    rows.push({ ids: enc.inputIds, labels: withAnswer ? enc.labels : enc.inputIds.map(() => IGNORE_INDEX) });
    for (const m of keep) {
      const input = ex.inputs.find((i) => i.modality === m);
      if (!input) throw new Error(`example ${ex.id} has no ${m} input`);
      inputs[m].push(m === 'image' ? featCache.get(input.scene) : soundFeatures(input.scene));
    }
  }
  const B = rows.length;
  const T = Math.max(...rows.map((r) => r.ids.length));
  const ids = new Int32Array(B * T).fill(tok.padId);
  const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
  rows.forEach((r, b) => {
    ids.set(r.ids, b * T);
    labels.set(r.labels, b * T);
  });
  const stack = (arrs, n, d) => {
    const buf = new Float32Array(arrs.length * n * d);
    arrs.forEach((a, i) => buf.set(a, i * n * d));
    return tf.tensor3d(buf, [arrs.length, n, d]);
  };
  const tensors = {};
  if (keep.includes('image')) tensors.image = stack(inputs.image, IMG_TOKENS, IMG_DIM);
  if (keep.includes('sound')) tensors.sound = stack(inputs.sound, SND_TOKENS, SND_DIM);
  return { ids, B, T, labels, lengths: rows.map((r) => r.ids.length), inputs: tensors };
}

/** Accuracy of the greedy first answer token against the gold letter. */
function accuracy(model, examples, keep) {
  let right = 0;
  const byKind = {};
  for (let i = 0; i < examples.length; i += 64) {
    const chunk = examples.slice(i, i + 64);
    const batch = makeBatch(chunk, keep, false);
    const logits = model.nextTokenLogits(batch);
    const pred = tf.tidy(() => tf.argMax(logits, -1)).dataSync();
    logits.dispose();
    for (const t of Object.values(batch.inputs)) t.dispose();
    chunk.forEach((ex, j) => {
      const ok = pred[j] === tok.encode(ex.answer)[0];
      right += ok ? 1 : 0;
      const kind = TASK === 'count' ? 'count' : ex.template.split('_')[ex.template.startsWith('common_') ? 1 : 0];
      byKind[kind] ??= [0, 0];
      byKind[kind][0] += ok ? 1 : 0;
      byKind[kind][1]++;
    });
  }
  return { acc: right / examples.length, n: examples.length, byKind: Object.fromEntries(Object.entries(byKind).map(([k, [r, n]]) => [k, +(r / n).toFixed(3)])) };
}

// ------------------------------------------------------------------ training
const LORA = { rank: RANK, alpha: 2 * RANK, dropout: 0.05 };

async function trainOne(modality, mode) {
  const lm = await loadCausalLM(lmDir);
  manualSeed(SEED + (modality === 'image' ? 11 : 23));
  const spec =
    modality === 'image'
      ? { encoder: new Cached(), projector: new MLPProjector(IMG_DIM, lm.config.hiddenSize, 2), placeholderId: PH.image }
      : { encoder: new SoundEncoder(SND_DIM, 128), projector: new MLPProjector(128, lm.config.hiddenSize, 2), placeholderId: PH.sound };
  const method = mode === 'decoupled' ? damcDecoupledMethod : damcNaiveMethod;
  const attached = method.attach(lm, { modality, lora: LORA, trainEncoder: modality === 'sound', seed: SEED }, spec);
  const { model } = attached;
  let { trainable } = attached;
  if (mode === 'frozen') {
    for (const l of model.loras) {
      l.lora_A.freeze();
      l.lora_B.freeze();
      // B = 0 and frozen: the delta is exactly zero, so give it coefficient 0 and it is not
      // computed at all (the LoRA products and their backward took ~30% of this mode's step)
      for (const d of l.deltas.values()) d.coefs = d.coefs.map(() => 0);
    }
    trainable = model.trainableParameters();
  }
  const nTrain = trainable.reduce((s, p) => s + p.size, 0);
  const train = data[modality].train;
  if (modality === 'image') cacheImageFeatures(train.map((e) => e.inputs[0].scene));
  const opt = new AdamW(trainable, { lr: LR });
  const rng = new Rng((SEED * 31 + (modality === 'image' ? 1 : 2)) >>> 0);
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let ema;
  for (let step = 0; step < STEPS; step++) {
    opt.lr = scheduledLr(step, { lr: LR, totalSteps: STEPS, warmupSteps: Math.min(20, STEPS / 10), kind: 'cosine', minLrRatio: 0.1 });
    const exs = Array.from({ length: BATCH }, () => train[rng.int(train.length)]);
    const { loss, grads } = valueAndGrads(() => tf.tidy(() => {
      const b = makeBatch(exs, [modality], true);
      return model.loss(b, { training: true });
    }), trainable);
    clipGradNorm(grads, 1);
    opt.step(grads);
    disposeGrads(grads);
    ema = ema === undefined ? loss : 0.9 * ema + 0.1 * loss;
    if ((step + 1) % Number(arg('logEvery', 50)) === 0 || step === 0) log(`  ${mode} ${modality} step ${step + 1}/${STEPS} loss ${loss.toFixed(4)} (ema ${ema.toFixed(4)})`);
  }
  const secs = (performance.now() - t0) / 1000;
  const cu = process.cpuUsage(c0);
  const cpu = (cu.user + cu.system) / 1e6;
  opt.dispose();
  log(`  ${mode} ${modality}: ${nTrain.toLocaleString()} trainable parameters, ${secs.toFixed(1)} s wall, ${cpu.toFixed(1)} s CPU (${((1000 * cpu) / STEPS).toFixed(0)} ms CPU/step)`);
  // frozen parameters the model computes with: the base LM, plus the image encoder for the image model
  const frozen = lmParams + (modality === 'image' ? vision.countParameters() : 0);
  return { model, secs, nTrain, frozen, msPerStep: (1000 * secs) / STEPS };
}

const rows = [];
const fmt = (r) => `${(100 * r.acc).toFixed(1)}`;

async function runMode(mode) {
  const img = await trainOne('image', mode);
  const snd = await trainOne('sound', mode);
  cacheImageFeatures([...data.image.test, ...data.common.val, ...data.common.test].flatMap((e) => e.inputs.filter((i) => i.modality === 'image').map((i) => i.scene)));
  // facts every demo row reports: what was trained (a composed model: both models' trainable
  // parameters), its share of all parameters, training time and the process's peak RSS so far
  const facts = (m) => ({ trainableParams: m.nTrain, totalParams: m.nTrain + m.frozen, trainSeconds: m.secs, medianStepMs: m.msPerStep });
  const single = SINGLE ? [
    { name: `image model (${mode})`, image: accuracy(img.model, data.image.test, ['image']), common: accuracy(img.model, data.common.test, ['image']), facts: facts(img) },
    { name: `sound model (${mode})`, sound: accuracy(snd.model, data.sound.test, ['sound']), common: accuracy(snd.model, data.common.test, ['sound']), facts: facts(snd) },
  ] : [];
  single.forEach((r) => r.note = 'common: its own input only');
  const base = await loadCausalLM(lmDir);
  // frozen: every delta is zero, so either rule gives the base LM plus both encoder sides
  const c = composeModels(base, [img.model, snd.model], { method: mode === 'decoupled' ? 'damc' : 'naive' });
  const cname = { frozen: 'frozen LLM composed', naive: 'NaiveMC', decoupled: 'DAMC' }[mode];
  const score = (name, note) => ({
    name,
    image: accuracy(c.model, data.image.test, ['image']),
    sound: accuracy(c.model, data.sound.test, ['sound']),
    common: accuracy(c.model, data.common.test, ['image', 'sound']),
    coefficients: c.coefficients(),
    ...(note ? { note } : {}),
  });
  const composed = [score(`${cname} (1/2, 1/2)`)];
  if (SEARCH && mode !== 'frozen') {
    const grid = (arg('grid', '0.5,1')).split(',').map(Number);
    const s = await searchCoefficients(c, grid, () => accuracy(c.model, data.common.val, ['image', 'sound']).acc);
    composed.push(score(`${cname}, searched`, `coefficients ${s.best.join(', ')} chosen on common val (${data.common.val.length} ex., acc ${(100 * s.score).toFixed(1)})`));
  }
  for (const r of composed) {
    r.facts = { trainableParams: img.nTrain + snd.nTrain, totalParams: img.nTrain + snd.nTrain + img.frozen, trainSeconds: img.secs + snd.secs, medianStepMs: (img.msPerStep + snd.msPerStep) / 2 };
  }
  for (const r of [...single, ...composed]) {
    r.metrics = Object.fromEntries(['image', 'sound', 'common'].filter((k) => r[k]).map((k) => [`${k}_acc`, r[k].acc]));
    // one composed model answers image-only, sound-only and joint questions: the mean of the three
    if (r.image && r.sound) r.metrics.all_acc = (r.image.acc + r.sound.acc + r.common.acc) / 3;
    Object.assign(r, r.facts, { steps: STEPS, peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024) });
    delete r.facts;
    rows.push(r);
    log(`${r.name.padEnd(26)} image ${r.image ? fmt(r.image) : '  - '}  sound ${r.sound ? fmt(r.sound) : '  - '}  common ${fmt(r.common)}  ${JSON.stringify({ image: r.image?.byKind, sound: r.sound?.byKind, common: r.common.byKind })}`);
  }
}

const t0 = performance.now();
if (DIAG) {
  const m = await trainOne('sound', MODES[0]);
  const r = accuracy(m.model, data.sound.test, ['sound']);
  log(`diag: sound model on "how many objects are there?": accuracy ${(100 * r.acc).toFixed(1)}% of ${r.n} (chance 25), ${m.secs.toFixed(0)} s`);
  process.exit(0);
}
for (const m of MODES) await runMode(m);
log(`total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
const meta = { date: new Date().toISOString(), backend: backend.name, steps: STEPS, batch: BATCH, lr: LR, rank: RANK, seed: SEED, argv };
if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ meta, rows }, null, 1));
printTable(rows);

function printTable(rs) {
  const p = (r) => (r ? `${(100 * r.acc).toFixed(1)}` : '-');
  console.log('\n| model | image task | sound task | common (image + sound) | note |\n|---|---|---|---|---|');
  for (const r of rs) console.log(`| ${r.name} | ${p(r.image)} | ${p(r.sound)} | ${p(r.common)} | ${r.note ?? ''} |`);
  const n = rs.find((r) => r.common)?.common.n;
  console.log(`\naccuracy %, greedy first token vs gold letter; chance 25; n = ${rs.find((r) => r.image)?.image.n} / ${rs.find((r) => r.sound)?.sound.n} / ${n}`);
}
