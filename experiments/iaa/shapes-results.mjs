// The IAA results on ShapesWorld, through the trainer CLI: frozen-LLM baseline (projector only) vs
// IAA vs full fine-tuning on VQA and grounding, and the insertion-depth ablation on VQA. Trains each
// run that is missing (or every run with --force), then prints Markdown tables of what the run
// folders hold: nothing below is typed in, every number is read from runs/<outputDir>/<name>/.
//
//   npm run build                                   (once)
//   ADAPTORKIT_NATIVE_THREADS=1 node experiments/iaa/shapes-results.mjs [--only main|ablation] [--force | --print-only] [--out runs/iaa-results]
//
// Each run is `npx adaptorkit train examples/<method>-shapes.yaml --set ...` (printed before it
// starts), so any single row can be reproduced by hand. The text-only prior row (the best a model
// that never looks at the image can do: majority answer per question template for VQA, the best
// constant box per template for grounding) is computed here from the same test examples.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { bestConstantBoxBaseline, majorityAnswerBaseline, scoreTask, ShapesWorld } from '@adaptorkit/data';
import { resolveDepths } from '@adaptorkit/iaa';

const args = process.argv.slice(2);
const opt = (k, d) => {
  const i = args.indexOf(`--${k}`);
  return i >= 0 ? args[i + 1] : d;
};
const force = args.includes('--force');
const printOnly = args.includes('--print-only'); // only print what the run folders hold
const only = opt('only', 'all');
const out = opt('out', 'runs/iaa-results');

// The rows. Every run uses its example config as shipped, except the task and (ablation) the depths.
const MAIN = [];
for (const task of ['vqa', 'grounding']) {
  for (const method of ['frozen', 'iaa', 'full']) MAIN.push({ name: `${method}-${task}`, task, method, config: `examples/${method}-shapes.yaml`, set: [`data.task=${task}`] });
}
// Insertion depths on the 4-layer ShapesWorld LM: none (embedding copy + norm + head + projector
// train, no insertion layer), one layer at the bottom or the top, two adjacent vs two spread, all four.
// [1,3] is the shipped iaa-shapes.yaml, i.e. the main table's iaa-vqa run.
const ABLATION = ['none', 'first:1', 'last:1', 'first:2', '[1,3]', 'every:1'].map((d) => ({
  name: d === '[1,3]' ? 'iaa-vqa' : `iaa-vqa-depths-${d.replace(/[^a-z0-9]+/gi, '')}`,
  depths: d,
  config: 'examples/iaa-shapes.yaml',
  set: ['data.task=vqa', `method.config.depths=${d}`],
}));
const rows = only === 'main' ? MAIN : only === 'ablation' ? ABLATION : [...MAIN, ...ABLATION.filter((a) => !MAIN.some((m) => m.name === a.name))];

const readJson = (f) => (existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) : undefined);

for (const r of printOnly ? [] : rows) {
  const dir = path.join(out, r.name);
  const done = readJson(path.join(dir, 'run.json'))?.status === 'completed' && existsSync(path.join(dir, 'eval.json'));
  if (done && !force) continue;
  const cmd = ['adaptorkit', 'train', r.config, ...r.set.flatMap((s) => ['--set', s]), '--set', `name=${r.name}`, '--set', `outputDir=${out}`];
  if (force && existsSync(dir)) spawnSync('rm', ['-rf', dir]);
  console.error(`$ npx ${cmd.join(' ')}`);
  const res = spawnSync('npx', cmd, { stdio: ['ignore', 'ignore', 'inherit'] });
  if (res.status !== 0) {
    console.error(`run ${r.name} failed (exit ${res.status}); its folder ${dir} says why`);
    process.exit(1);
  }
}

const sw = new ShapesWorld({ seed: 0 });
const pct = (x) => (x === undefined ? '-' : (100 * x).toFixed(1));
const fmtInt = (x) => (x === undefined ? '-' : x.toLocaleString('en-US'));
function load(r) {
  const dir = path.join(out, r.name);
  const info = readJson(path.join(dir, 'run.json'));
  const ev = readJson(path.join(dir, 'eval.json'));
  return { r, info, ev };
}
function prior(task, n) {
  const test = sw.task(task, 'test').slice(0, n);
  const train = sw.task(task, 'train');
  const p = task === 'grounding' ? bestConstantBoxBaseline(train, test, (e) => e.template) : majorityAnswerBaseline(train, test);
  return /** @type {import('@adaptorkit/data').AccuracyScore} */ (scoreTask(task, p, test)).accuracy;
}
function textCols(ev) {
  const t = ev?.textSkill?.perplexity, b = ev?.baseTextSkill?.perplexity;
  const same = t !== undefined && b !== undefined ? (t === b ? 'identical' : `${t > b ? '+' : ''}${(100 * (t / b - 1)).toFixed(1)}%`) : '-';
  return `${t === undefined ? '-' : t.toFixed(4)} | ${b === undefined ? '-' : b.toFixed(4)} | ${same}`;
}
const stepS = (info) => (info?.medianStepMs === undefined ? '-' : (info.medianStepMs / 1000).toFixed(2));

const first = rows.map(load).find((x) => x.info);
if (first) {
  const m = first.info.machine;
  console.log(`\nmachine: ${m.cpuModel}, ${m.cpus} CPUs, ${m.memoryGB} GB, node ${m.node}; backend ${first.info.backend.name} (${first.info.backend.detail ?? ''}); runs started ${first.info.startedAt.slice(0, 10)}`);
}

if (only !== 'ablation') {
  console.log('\n| task | method | accuracy % | text-only prior % | text ppl | base ppl | text vs base | trainable params | median s/step |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const x of MAIN.map(load)) {
    const task = x.r.task;
    const n = x.ev?.metrics?.n;
    const acc = x.ev ? `${pct(x.ev.metrics.accuracy)}${task === 'grounding' ? ` (IoU>=0.5; mean IoU ${x.ev.metrics.meanIoU.toFixed(3)}, parsed ${pct(x.ev.metrics.parsed)}%)` : ''} (n=${n})` : 'not run';
    console.log(`| ${task} | ${x.r.method} | ${acc} | ${x.ev ? pct(prior(task, n)) : '-'} | ${textCols(x.ev)} | ${fmtInt(x.info?.trainableParams)} | ${stepS(x.info)} |`);
  }
}
if (only !== 'main') {
  console.log('\n| insertion depths | after layers (of 0-3) | VQA accuracy % | text ppl vs base | trainable params | median s/step |');
  console.log('|---|---|---|---|---|---|');
  for (const x of ABLATION.map(load)) {
    const resolved = resolveDepths(x.r.depths.startsWith('[') ? JSON.parse(x.r.depths) : x.r.depths, 4).join(', ') || '-';
    const acc = x.ev ? `${pct(x.ev.metrics.accuracy)} (n=${x.ev.metrics.n})` : 'not run';
    const t = x.ev?.textSkill?.perplexity, b = x.ev?.baseTextSkill?.perplexity;
    console.log(`| ${x.r.depths} | ${resolved} | ${acc} | ${t === undefined ? '-' : t === b ? 'identical' : `${t.toFixed(4)} vs ${b?.toFixed(4)}`} | ${fmtInt(x.info?.trainableParams)} | ${stepS(x.info)} |`);
  }
}
