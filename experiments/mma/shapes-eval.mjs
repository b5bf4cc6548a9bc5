#!/usr/bin/env node
/**
 * Score an MMA run of the trainer on ShapesWorld 'instruct' (mixed text-only and image
 * instructions) with the breakdown the package README reports, and print measured numbers:
 *
 *   - image questions (the VQA templates of the instruct test split) and text-only instructions,
 *     scored separately (exact match), plus captions;
 *   - text-only baselines on the same image questions: the same trained model with the image
 *     withheld (a text-only instruction: no visual tokens, modality row 0), the frozen LM with the
 *     image withheld, the majority answer per exact question text learned on the instruct train
 *     split (the best a model that never sees the image can memorise), and uniform chance;
 *   - held-out text perplexity (the 200 corpus lines the trainer scores) through the adapted text
 *     path and through the frozen base LM, and the frozen-vs-adapted text-task accuracy;
 *   - routing weights per layer (mean and spread of branch 0 over samples) for text-only and
 *     image instructions, LLM and vision encoder.
 *
 * Usage: node experiments/mma/shapes-eval.mjs <runDir> [--n 400] [--json out.json] [--checkpoint step-000200]
 * (--checkpoint scores an intermediate checkpoint of the run instead of its final adapter)
 * Needs the built packages (npm run build) and a run folder written by `adaptorkit train`
 * with method mma. Run from the repository root.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { initBackend, loadAdapter, readSafetensors, tf } from '@adaptorkit/core';
import { encodeExample, IMAGE_TOKEN, majorityAnswerBaseline, scoreExact, ShapesWorld, VQA_ANSWER_COUNT, VQA_TEMPLATES } from '@adaptorkit/data';
import { attachMma, TEXT_MODALITY } from '@adaptorkit/mma';
import { loadBases, pixelsTensor } from '@adaptorkit/shapes-bases';

const MAX_NEW = { vqa: 6, caption: 48, text: 8 };

function args(argv) {
  const o = { run: undefined, n: 400, json: undefined, checkpoint: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--n') o.n = Number(argv[++i]);
    else if (a === '--json') o.json = argv[++i];
    else if (a === '--checkpoint') o.checkpoint = argv[++i];
    else if (!o.run) o.run = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (!o.run) throw new Error('usage: shapes-eval.mjs <runDir> [--n 400] [--json out.json]');
  return o;
}

/**
 * Build the MMA model of a run config on freshly loaded bases; `adapterDir` loads a saved adapter,
 * `checkpointDir` the trainer's checkpoint (trainable.safetensors in the stored layout).
 */
async function buildModel(cfg, sw, adapterDir, checkpointDir, extra = {}) {
  const { lm, vision } = await loadBases(cfg.base?.lm ?? 'shapesworld', cfg.base?.vision ?? 'shapesworld');
  const imageTokenId = sw.tokenizer.tokenToId(IMAGE_TOKEN);
  const model = attachMma({ lm, vision, imageTokenId }, { imageTokenId, ...(cfg.method?.config ?? {}), ...extra });
  if (checkpointDir) {
    const { tensors } = await readSafetensors(path.join(checkpointDir, 'trainable.safetensors'));
    const named = model.namedMmaParameters();
    if (named.length !== tensors.size) throw new Error(`${checkpointDir}: ${tensors.size} tensors for ${named.length} MMA parameters`);
    for (const [n, p] of named) {
      const t = tensors.get(n);
      if (!t) throw new Error(`${checkpointDir}: no tensor ${n}`);
      p.assign(t, n);
    }
    tf.dispose([...tensors.values()]);
  } else if (adapterDir) await loadAdapter(adapterDir, model, { allowBaseMismatch: Object.keys(extra).length > 0 }); // extra: inference-only options (hardRouting)
  return model;
}

/**
 * Prompt-only inputs as the trainer builds them: BOS + prompt, each image placeholder expanded to
 * numVisualTokens ids -> (ragged rows, images [B,H,W,3] normalised or undefined, modality per row).
 * `blank`: grey images instead of the scenes.
 */
function promptInputs(sw, model, examples, blank = false) {
  const tok = sw.tokenizer;
  const imageId = tok.tokenToId(IMAGE_TOKEN);
  const rows = [];
  const pics = [];
  for (const ex of examples) {
    const enc = encodeExample(tok, { prompt: ex.prompt, answer: '' }, { addEos: false });
    const ids = [];
    for (const id of enc.inputIds) {
      if (id === imageId) for (let j = 0; j < model.numVisualTokens; j++) ids.push(id);
      else ids.push(id);
    }
    rows.push(ids);
    const img = ex.inputs.find((i) => i.modality === 'image');
    pics.push(img ? sw.render(img) : undefined);
  }
  const modality = pics.map((p) => (p ? 1 : TEXT_MODALITY));
  let images;
  const first = pics.find(Boolean);
  if (first) {
    const size = Math.round(Math.sqrt(first.length / 3));
    const grey = new Float32Array(size * size * 3).fill(0.5);
    images = pixelsTensor(pics.map((p) => (blank || !p ? grey : p)), size);
  }
  return { rows, images, modality };
}

function answer(sw, model, examples, maxNew, o = {}) {
  const preds = [];
  for (let i = 0; i < examples.length; i += 32) {
    const chunk = examples.slice(i, i + 32);
    const { rows, images, modality } = promptInputs(sw, model, chunk, o.blank);
    try {
      const { tokens } = model.generate({ ids: rows, images, modality, maxNewTokens: maxNew, eosId: sw.tokenizer.eosId, padId: sw.tokenizer.padId });
      preds.push(...tokens.map((t) => sw.tokenizer.decode(t)));
    } finally {
      images?.dispose();
    }
  }
  return preds;
}

/** The same question as a text-only instruction: the image placeholder removed, no image. */
const withoutImage = (e) => ({ ...e, prompt: e.prompt.replace(IMAGE_TOKEN, '').replace(/\s+/g, ' ').trim(), inputs: [] });

function perplexity(sw, model, lines, adapters) {
  const tok = sw.tokenizer;
  let nll = 0;
  let tokens = 0;
  for (let i = 0; i < lines.length; i += 50) {
    const rows = lines.slice(i, i + 50).map((l) => [tok.bosId, ...tok.encode(l), tok.eosId]);
    const T = Math.max(...rows.map((r) => r.length));
    const buf = new Int32Array(rows.length * T).fill(tok.padId);
    rows.forEach((r, b) => buf.set(r, b * T));
    const ids = tf.tensor2d(buf, [rows.length, T], 'int32');
    const r = model.perplexity(ids, { padId: tok.padId, adapters });
    ids.dispose();
    nll += r.nll * r.tokens;
    tokens += r.tokens;
  }
  return Math.exp(nll / tokens);
}

/** Mean and standard deviation of branch-0 weight per layer over `examples`. */
function routing(sw, model, examples) {
  const per = { lm: [], vision: [] };
  for (let i = 0; i < examples.length; i += 32) {
    const { rows, images, modality } = promptInputs(sw, model, examples.slice(i, i + 32));
    const T = Math.max(...rows.map((r) => r.length));
    const buf = new Int32Array(rows.length * T).fill(sw.tokenizer.padId);
    rows.forEach((r, b) => buf.set(r, b * T)); // right-padded: routing reads position 0 only
    const ids = tf.tensor2d(buf, [rows.length, T], 'int32');
    const rep = model.routingWeights({ ids, images, modality });
    ids.dispose();
    images?.dispose();
    for (const tower of ['lm', 'vision']) {
      rep[tower].forEach((l, k) => {
        per[tower][k] ??= [];
        per[tower][k].push(...l.weights.map((w) => w[0]));
      });
    }
  }
  const stat = (xs) => {
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    return { mean: m, std: Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length) };
  };
  return { lm: per.lm.map(stat), vision: per.vision.map(stat) };
}

const pct = (x) => `${(100 * x).toFixed(1)}%`;

async function main() {
  const o = args(process.argv.slice(2));
  const cfg = parseYaml(await fs.readFile(path.join(o.run, 'config.yaml'), 'utf8'));
  const run = JSON.parse(await fs.readFile(path.join(o.run, 'run.json'), 'utf8'));
  const backend = await initBackend(cfg.backend ?? 'auto', { log: () => {} });
  const t0 = performance.now();
  const sw = new ShapesWorld({ seed: cfg.data?.worldSeed ?? 0 });
  const load = (extra) =>
    o.checkpoint ? buildModel(cfg, sw, undefined, path.join(o.run, 'checkpoints', o.checkpoint), extra) : buildModel(cfg, sw, path.join(o.run, 'final'), undefined, extra);
  const model = await load({});
  const frozen = await buildModel(cfg, sw, undefined); // zero-initialised ups = the frozen base, exactly

  const test = sw.task('instruct', 'test').slice(0, o.n);
  const vqaSet = new Set(VQA_TEMPLATES);
  const img = test.filter((e) => e.inputs.length > 0 && vqaSet.has(/** @type {any} */ (e.template)));
  const cap = test.filter((e) => e.template === 'caption');
  const txt = test.filter((e) => e.inputs.length === 0);
  const train = sw.task('instruct', 'train');

  const acc = (preds, ex) => scoreExact(preds, ex);
  const r = {
    run: o.run,
    backend: backend.name,
    steps: o.checkpoint ? Number(o.checkpoint.replace(/\D/g, '')) : run.step,
    branches: cfg.method?.config?.branches ?? 2,
    trainableParams: run.trainableParams,
    medianStepMs: run.medianStepMs,
    trainSeconds: run.trainSeconds,
    n: { image: img.length, caption: cap.length, text: txt.length },
  };
  const imgPreds = answer(sw, model, img, MAX_NEW.vqa);
  r.image = acc(imgPreds, img);
  r.imageSamples = img.slice(0, 24).map((e, i) => ({ template: e.template, prompt: e.prompt, answer: e.answer, prediction: imgPreds[i] }));
  r.imageWithheld = acc(answer(sw, model, img.map(withoutImage), MAX_NEW.vqa), img);
  r.imageBlank = acc(answer(sw, model, img, MAX_NEW.vqa, { blank: true }), img);
  r.frozenNoImage = acc(answer(sw, frozen, img.map(withoutImage), MAX_NEW.vqa), img);
  r.majorityPerQuestion = acc(majorityAnswerBaseline(train, img, (e) => e.prompt), img);
  r.chance = img.reduce((a, e) => a + 1 / VQA_ANSWER_COUNT[e.template], 0) / img.length;
  r.caption = acc(answer(sw, model, cap, MAX_NEW.caption), cap);
  r.text = acc(answer(sw, model, txt, MAX_NEW.text), txt);
  r.textFrozen = acc(answer(sw, frozen, txt, MAX_NEW.text), txt);
  r.textMajority = acc(majorityAnswerBaseline(train, txt, (e) => e.prompt), txt);
  const lines = sw.corpus('heldout').slice(0, 200);
  r.pplBase = perplexity(sw, model, lines, false);
  r.pplAdapted = perplexity(sw, model, lines, true);
  const branches = cfg.method?.config?.branches ?? 2;
  if (branches > 1) {
    // the same adapter with one-hot (argmax) routing at inference: no soft leak of the other branch
    const hard = await load({ hardRouting: true });
    r.pplAdaptedHard = perplexity(sw, hard, lines, true);
    r.textHard = acc(answer(sw, hard, txt, MAX_NEW.text), txt);
    r.imageHard = acc(answer(sw, hard, img, MAX_NEW.vqa), img);
    hard.dispose?.();
  }
  r.routing = r.branches > 1 ? { text: routing(sw, model, txt.slice(0, 64)), image: routing(sw, model, img.slice(0, 64)) } : undefined;
  r.evalSeconds = (performance.now() - t0) / 1000;

  console.log(`run ${o.run}: ${r.steps} steps, branches ${r.branches}, ${r.trainableParams} trainable, median step ${(r.medianStepMs / 1000).toFixed(2)} s, backend ${r.backend}`);
  console.log(`instruct test (first ${o.n}): ${img.length} image questions, ${cap.length} captions, ${txt.length} text-only instructions`);
  console.log(`image questions: MMA ${pct(r.image.accuracy)} | same model, image withheld ${pct(r.imageWithheld.accuracy)} | grey image ${pct(r.imageBlank.accuracy)} | frozen LM, no image ${pct(r.frozenNoImage.accuracy)} | majority per question text ${pct(r.majorityPerQuestion.accuracy)} | chance ${pct(r.chance)}`);
  console.log(`  by template (MMA / majority per question): ${Object.entries(r.image.byTemplate).map(([k, v]) => `${k} ${pct(v.accuracy)}/${pct(r.majorityPerQuestion.byTemplate[k]?.accuracy ?? 0)} (n ${v.n})`).join(', ')}`);
  console.log(`captions (exact): ${pct(r.caption.accuracy)}`);
  console.log(`text-only instructions: MMA ${pct(r.text.accuracy)} | frozen LM ${pct(r.textFrozen.accuracy)} | majority per question text ${pct(r.textMajority.accuracy)}`);
  console.log(`held-out text perplexity: frozen base ${r.pplBase.toFixed(4)} | MMA text path ${r.pplAdapted.toFixed(4)} (${(100 * (r.pplAdapted / r.pplBase - 1)).toFixed(1)}%)`);
  if (r.pplAdaptedHard !== undefined) {
    console.log(`hard (argmax) routing at inference: text perplexity ${r.pplAdaptedHard.toFixed(4)}, text-only instructions ${pct(r.textHard.accuracy)}, image questions ${pct(r.imageHard.accuracy)}`);
  }
  if (r.routing) {
    const f = (s) => `${s.mean.toFixed(3)}±${s.std.toFixed(3)}`;
    console.log('routing, weight of branch 0 (mean±std over samples) per LLM layer: text-only | image');
    r.routing.text.lm.forEach((s, k) => console.log(`  lm ${k}: ${f(s)} | ${f(r.routing.image.lm[k])}`));
    console.log(`  vision (image inputs) per block: ${r.routing.image.vision.map(f).join(', ')}`);
  }
  console.log(`eval ${r.evalSeconds.toFixed(1)} s`);
  if (o.json) await fs.writeFile(o.json, JSON.stringify(r, null, 2));
  model.dispose?.();
  frozen.dispose?.();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
