/**
 * The ShapesWorld composition experiment (issue #9), run by `adaptorkit compose` and by the demo's
 * DAMC group: one model for images and one for sound, each on its own copy of the same frozen base
 * LM (the shipped ShapesWorld LM) with its own encoder and projector, composed with NaiveMC and with
 * DAMC, scored on the multi-modal task (image + sound) and on each single-modality task.
 *
 * Setup (what is trained, what is frozen):
 *  - base LM: the shipped ShapesWorld LM (frozen; every model starts from the same weights).
 *  - image: the shipped ViT (frozen; its penultimate-layer patch features, class token dropped,
 *    2x2 average-pooled to 16 tokens, are computed once and cached) -> trainable 2-layer GELU MLP projector.
 *  - sound: a fixed short-time Fourier front end (window 32, hop 8, log magnitude, 4 frames per token
 *    -> 8 tokens of 68 values) -> a small TRAINABLE 2-layer MLP encoder (the paper's BEATs encoder is
 *    pretrained, ShapesWorld has none) -> trainable 2-layer GELU MLP projector.
 *  - LLM side: LoRA on all seven linear maps of all layers, r 16, alpha 32, dropout 0.05; learnable
 *    boundary embeddings per modality span. naive: one delta for all tokens; decoupled: text delta +
 *    modality delta routed per position.
 *  - training data of each model: its single-modality task only. No model ever sees two modalities.
 *  - composition: NaiveMC averages the naive deltas (1/2 each) everywhere; DAMC averages the text
 *    deltas (1/2 each) and keeps each modality delta on its own span; optionally the text
 *    coefficients are searched on the common task's val split.
 *  - metric: greedy first token after the prompt against the gold answer (spec's MCUB metric).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { AdamW, AdaptorkitError, MLPProjector, Rng, clipGradNorm, disposeGrads, initBackend, loadCausalLM, loadVisionEncoder, manualSeed, readSafetensors, scheduledLr, tf, valueAndGrads, writeSafetensors, type CausalLM, type Parameter } from '@adaptorkit/core';
import { IMAGE_TOKEN, SOUND_TOKEN, ShapesWorld } from '@adaptorkit/data';
import { attachDamc, composeModels, searchCoefficients, type DamcModel } from '@adaptorkit/damc';
import { shippedBasesDir } from '@adaptorkit/shapes-bases';
import { writeJsonAtomic } from '../fsutil.js';
import { ComposeFeatures, Cached, SoundEncoder } from './features.js';
import { parseComposeArgs, type ComposeMode, type ComposeOptions } from './options.js';
import { composeData, type ComposeData, type ComposeExample, type ComposeModality } from './tasks.js';

export interface Accuracy { acc: number; n: number; byKind: Record<string, number> }

/** One row of the experiment's output (what the demo picks its rows from). */
export interface ComposeRow {
  name: string;
  image?: Accuracy;
  sound?: Accuracy;
  common: Accuracy;
  coefficients?: number[];
  note?: string;
  metrics: Record<string, number>;
  trainableParams: number;
  totalParams: number;
  trainSeconds: number;
  medianStepMs: number;
  steps: number;
  peakRssMB: number;
}

export interface ComposeResult {
  meta: { date: string; backend: string; steps: number; batch: number; lr: number; rank: number; seed: number; argv?: readonly string[] };
  rows: ComposeRow[];
}

interface Trained { model: DamcModel; secs: number; nTrain: number; frozen: number; msPerStep: number }
type Facts = Pick<ComposeRow, 'trainableParams' | 'totalParams' | 'trainSeconds' | 'medianStepMs'>;

/** Run the experiment; `log` gets progress lines. */
export async function runCompose(o: ComposeOptions, log: (line: string) => void = console.log, argv?: readonly string[]): Promise<ComposeResult> {
  const backend = await initBackend('auto', { log: false });
  log(`backend ${backend.name} (${backend.detail ?? backend.package}); modes ${o.modes.join(',')}, steps ${o.steps}, batch ${o.batch}, lr ${o.lr}, rank ${o.rank}, seed ${o.seed}`);
  const sw = new ShapesWorld({ seed: o.seed });
  const tok = sw.tokenizer;
  const tokId = (t: string): number => {
    const v = tok.tokenToId(t);
    if (v === undefined) throw new Error(`tokenizer has no '${t}'`);
    return v;
  };
  const PH = { image: tokId(IMAGE_TOKEN), sound: tokId(SOUND_TOKEN) };
  const data: ComposeData = composeData(sw, o);
  log(`examples: image ${data.image.train.length}/${data.image.test.length}, sound ${data.sound.train.length}/${data.sound.test.length}, common(image+sound) val ${data.common.val.length} test ${data.common.test.length}`);

  const bases = shippedBasesDir('shapesworld');
  const lmDir = path.join(bases, 'lm');
  const lmParams = await (async () => {
    const lm = await loadCausalLM(lmDir); // its size only: the runs load their own copies
    const n = lm.countParameters();
    lm.dispose();
    return n;
  })();
  const vision = await loadVisionEncoder(path.join(bases, 'vision'));
  vision.freeze();
  const feats = new ComposeFeatures(sw, vision);
  const LORA = { rank: o.rank, alpha: 2 * o.rank, dropout: 0.05 };

  /** Accuracy of the greedy first answer token against the gold answer's first token. */
  const accuracy = (model: { nextTokenLogits: DamcModel['nextTokenLogits'] }, examples: readonly ComposeExample[], keep: readonly ComposeModality[]): Accuracy => {
    let right = 0;
    const byKind: Record<string, [number, number]> = {};
    for (let i = 0; i < examples.length; i += 64) {
      const chunk = examples.slice(i, i + 64);
      const batch = feats.batch(chunk, keep, false);
      const logits = model.nextTokenLogits(batch);
      const pred = tf.tidy(() => tf.argMax(logits, -1)).dataSync();
      logits.dispose();
      for (const t of Object.values(batch.inputs)) t.dispose();
      chunk.forEach((ex, j) => {
        const ok = pred[j] === tok.encode(ex.answer)[0];
        right += ok ? 1 : 0;
        const kind = o.task === 'count' ? 'count' : ex.template.split('_')[ex.template.startsWith('common_') ? 1 : 0]!;
        const k = (byKind[kind] ??= [0, 0]);
        k[0] += ok ? 1 : 0;
        k[1]++;
      });
    }
    return { acc: right / examples.length, n: examples.length, byKind: Object.fromEntries(Object.entries(byKind).map(([k, [r, n]]) => [k, +(r / n).toFixed(3)])) };
  };

  /** One modality's model on a fresh copy of the frozen LM, as trained (seeded: the same whichever process builds it). */
  const build = async (modality: ComposeModality, mode: ComposeMode): Promise<{ model: DamcModel; trainable: Parameter[] }> => {
    const lm = await loadCausalLM(lmDir);
    manualSeed(o.seed + (modality === 'image' ? 11 : 23));
    const spec =
      modality === 'image'
        ? { encoder: new Cached(), projector: new MLPProjector(feats.imgDim, lm.config.hiddenSize, 2), placeholderId: PH.image }
        : { encoder: new SoundEncoder(feats.sndDim, 128), projector: new MLPProjector(128, lm.config.hiddenSize, 2), placeholderId: PH.sound };
    const attached = attachDamc(lm, { mode: mode === 'decoupled' ? 'decoupled' : 'naive', modality, lora: LORA, trainEncoder: modality === 'sound', seed: o.seed }, spec);
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
    return { model, trainable };
  };
  // frozen parameters the model computes with: the base LM, plus the image encoder for the image model
  const frozenOf = (modality: ComposeModality): number => lmParams + (modality === 'image' ? vision.countParameters() : 0);

  const trainOne = async (modality: ComposeModality, mode: ComposeMode): Promise<Trained> => {
    const { model, trainable } = await build(modality, mode);
    const nTrain = trainable.reduce((s, p) => s + p.size, 0);
    const train = data[modality].train;
    if (modality === 'image') feats.cacheImages(train.map((e) => e.inputs[0]!.scene));
    const opt = new AdamW(trainable, { lr: o.lr });
    const rng = new Rng((o.seed * 31 + (modality === 'image' ? 1 : 2)) >>> 0);
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    let ema: number | undefined;
    for (let step = 0; step < o.steps; step++) {
      opt.lr = scheduledLr(step, { lr: o.lr, totalSteps: o.steps, warmupSteps: Math.min(20, o.steps / 10), kind: 'cosine', minLrRatio: 0.1 });
      const exs = Array.from({ length: o.batch }, () => train[rng.int(train.length)]!);
      const { loss, grads } = valueAndGrads(() => tf.tidy(() => model.loss(feats.batch(exs, [modality], true), { training: true })), trainable);
      clipGradNorm(grads, 1);
      opt.step(grads);
      disposeGrads(grads);
      ema = ema === undefined ? loss : 0.9 * ema + 0.1 * loss;
      if ((step + 1) % o.logEvery === 0 || step === 0) log(`  ${mode} ${modality} step ${step + 1}/${o.steps} loss ${loss.toFixed(4)} (ema ${ema.toFixed(4)})`);
    }
    const secs = (performance.now() - t0) / 1000;
    const cu = process.cpuUsage(c0);
    const cpu = (cu.user + cu.system) / 1e6;
    opt.dispose();
    log(`  ${mode} ${modality}: ${nTrain.toLocaleString()} trainable parameters, ${secs.toFixed(1)} s wall, ${cpu.toFixed(1)} s CPU (${((1000 * cpu) / o.steps).toFixed(0)} ms CPU/step)`);
    return { model, secs, nTrain, frozen: frozenOf(modality), msPerStep: (1000 * secs) / o.steps };
  };

  /** A trained model to a folder: every parameter the base LM does not hold (projector, encoder, LoRA factors, boundary embeddings) + its facts. */
  const saveTrained = async (dir: string, modality: ComposeModality, mode: ComposeMode, t: Trained): Promise<void> => {
    const own = new Map(t.model.namedParameters().filter(([n, p]) => p.trainable || n.includes('lora_')).map(([n, p]) => [n, p.value as tf.Tensor]));
    await fs.mkdir(dir, { recursive: true });
    await writeSafetensors(path.join(dir, 'model.safetensors'), own);
    await writeJsonAtomic(path.join(dir, 'trained.json'), { modality, mode, seed: o.seed, steps: o.steps, rank: o.rank, nTrain: t.nTrain, secs: t.secs, msPerStep: t.msPerStep });
  };
  const loadTrained = async (dir: string, modality: ComposeModality, mode: ComposeMode): Promise<Trained> => {
    const facts = JSON.parse(await fs.readFile(path.join(dir, 'trained.json'), 'utf8')) as { modality: string; mode: string; seed: number; steps: number; rank: number; nTrain: number; secs: number; msPerStep: number };
    if (facts.modality !== modality || facts.mode !== mode || facts.seed !== o.seed || facts.rank !== o.rank) {
      throw new AdaptorkitError('INVALID_ARGUMENT', `compose --from ${dir}: it holds a ${facts.mode} ${facts.modality} model (seed ${facts.seed}, rank ${facts.rank}); this run composes ${mode} ${modality} models (seed ${o.seed}, rank ${o.rank})`);
    }
    const { model } = await build(modality, mode);
    const { tensors } = await readSafetensors(path.join(dir, 'model.safetensors'));
    const named = new Map(model.namedParameters());
    for (const [n, t] of tensors) {
      const p = named.get(n);
      if (!p) throw new AdaptorkitError('MISSING_TENSOR', `compose --from ${dir}: the model has no parameter '${n}'`);
      p.assign(t, n);
      t.dispose();
    }
    return { model, secs: facts.secs, nTrain: facts.nTrain, frozen: frozenOf(modality), msPerStep: facts.msPerStep };
  };

  const rows: ComposeRow[] = [];
  const fmt = (r: Accuracy): string => `${(100 * r.acc).toFixed(1)}`;
  const finish = (r: Omit<ComposeRow, 'metrics' | 'steps' | 'peakRssMB' | keyof Facts>, facts: Facts): ComposeRow => {
    const metrics: Record<string, number> = {};
    for (const k of ['image', 'sound', 'common'] as const) if (r[k]) metrics[`${k}_acc`] = r[k].acc;
    // one composed model answers image-only, sound-only and joint questions: the mean of the three
    if (r.image && r.sound) metrics['all_acc'] = (r.image.acc + r.sound.acc + r.common.acc) / 3;
    return { ...r, metrics, ...facts, steps: o.steps, peakRssMB: 0 };
  };

  const runMode = async (mode: ComposeMode, given?: { image: Trained; sound: Trained }): Promise<void> => {
    const img = given?.image ?? (await trainOne('image', mode));
    const snd = given?.sound ?? (await trainOne('sound', mode));
    feats.cacheImages([...data.image.test, ...data.common.val, ...data.common.test].flatMap((e) => e.inputs.filter((i) => i.modality === 'image').map((i) => i.scene)));
    // facts every demo row reports: what was trained (a composed model: both models' trainable
    // parameters), its share of all parameters, training time
    const facts = (m: Trained): Facts => ({ trainableParams: m.nTrain, totalParams: m.nTrain + m.frozen, trainSeconds: m.secs, medianStepMs: m.msPerStep });
    const note = 'common: its own input only';
    const single = o.single
      ? [
        finish({ name: `image model (${mode})`, image: accuracy(img.model, data.image.test, ['image']), common: accuracy(img.model, data.common.test, ['image']), note }, facts(img)),
        finish({ name: `sound model (${mode})`, sound: accuracy(snd.model, data.sound.test, ['sound']), common: accuracy(snd.model, data.common.test, ['sound']), note }, facts(snd)),
      ]
      : [];
    const base: CausalLM = await loadCausalLM(lmDir);
    // frozen: every delta is zero, so either rule gives the base LM plus both encoder sides
    const c = composeModels(base, [img.model, snd.model], { method: mode === 'decoupled' ? 'damc' : 'naive' });
    const cname = { frozen: 'frozen LLM composed', naive: 'NaiveMC', decoupled: 'DAMC' }[mode];
    const composedFacts: Facts = { trainableParams: img.nTrain + snd.nTrain, totalParams: img.nTrain + snd.nTrain + img.frozen, trainSeconds: img.secs + snd.secs, medianStepMs: (img.msPerStep + snd.msPerStep) / 2 };
    const score = (name: string, note?: string): ComposeRow =>
      finish({
        name,
        image: accuracy(c.model, data.image.test, ['image']),
        sound: accuracy(c.model, data.sound.test, ['sound']),
        common: accuracy(c.model, data.common.test, ['image', 'sound']),
        coefficients: c.coefficients(),
        ...(note ? { note } : {}),
      }, composedFacts);
    const composed = [score(`${cname} (1/2, 1/2)`)];
    if (o.search && mode !== 'frozen') {
      const s = await searchCoefficients(c, o.grid, () => accuracy(c.model, data.common.val, ['image', 'sound']).acc);
      composed.push(score(`${cname}, searched`, `coefficients ${s.best.join(', ')} chosen on common val (${data.common.val.length} ex., acc ${(100 * s.score).toFixed(1)})`));
    }
    for (const r of [...single, ...composed]) {
      r.peakRssMB = Math.round(process.resourceUsage().maxRSS / 1024); // the process's peak so far
      rows.push(r);
      log(`${r.name.padEnd(26)} image ${r.image ? fmt(r.image) : '  - '}  sound ${r.sound ? fmt(r.sound) : '  - '}  common ${fmt(r.common)}  ${JSON.stringify({ image: r.image?.byKind, sound: r.sound?.byKind, common: r.common.byKind })}`);
    }
    // the composed model holds the base and shares the two models' deltas and branches (disposing twice is a no-op)
    for (const m of [c.model, img.model, snd.model]) m.dispose();
  };

  const meta = { date: new Date().toISOString(), backend: backend.name, steps: o.steps, batch: o.batch, lr: o.lr, rank: o.rank, seed: o.seed, ...(argv ? { argv } : {}) };
  const t0 = performance.now();
  try {
    if (o.diag) {
      const m = await trainOne('sound', o.modes[0] ?? 'naive');
      const r = accuracy(m.model, data.sound.test, ['sound']);
      log(`diag: sound model on "how many objects are there?": accuracy ${(100 * r.acc).toFixed(1)}% of ${r.n} (chance 25), ${m.secs.toFixed(0)} s`);
      m.model.dispose();
      return { meta, rows };
    }
    if (o.trainOnly) {
      // one phase of a split run (a queue flow): train one modality's model and save it
      const mode = o.modes[0]!;
      const t = await trainOne(o.trainOnly, mode);
      await saveTrained(o.save!, o.trainOnly, mode, t);
      t.model.dispose();
      log(`saved the ${mode} ${o.trainOnly} model to ${o.save}`);
      return { meta, rows };
    }
    if (o.from) {
      const mode = o.modes[0]!;
      await runMode(mode, { image: await loadTrained(o.from.image, 'image', mode), sound: await loadTrained(o.from.sound, 'sound', mode) });
      log(`total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      return { meta, rows };
    }
    for (const m of o.modes) await runMode(m);
    log(`total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    return { meta, rows };
  } finally {
    vision.dispose(); // runMode disposes the models it trained or loaded
  }
}

/** The rows as a Markdown table. */
export function composeTable(rs: readonly ComposeRow[]): string {
  const p = (r?: Accuracy): string => (r ? `${(100 * r.acc).toFixed(1)}` : '-');
  const lines = ['| model | image task | sound task | common (image + sound) | note |', '|---|---|---|---|---|'];
  for (const r of rs) lines.push(`| ${r.name} | ${p(r.image)} | ${p(r.sound)} | ${p(r.common)} | ${r.note ?? ''} |`);
  lines.push('', `accuracy %, greedy first token vs gold answer; chance 25; n = ${rs.find((r) => r.image)?.image?.n} / ${rs.find((r) => r.sound)?.sound?.n} / ${rs.find((r) => r.common)?.common.n}`);
  return lines.join('\n');
}

/** `adaptorkit compose [flags]`, or `adaptorkit compose --table a.json b.json` (one table from parallel runs). */
export async function composeCli(argv: readonly string[]): Promise<void> {
  if (argv[0] === '--table') {
    const { readFile } = await import('node:fs/promises');
    const rows = (await Promise.all(argv.slice(1).map(async (f) => (JSON.parse(await readFile(f, 'utf8')) as ComposeResult).rows))).flat();
    console.log(composeTable(rows));
    return;
  }
  const o = parseComposeArgs(argv);
  const result = await runCompose(o, console.log, argv);
  if (o.json) await writeJsonAtomic(o.json, result);
  console.log(`\n${composeTable(result.rows)}`);
}
