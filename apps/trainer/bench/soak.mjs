#!/usr/bin/env node
/**
 * Soak: a long run with periodic evaluation, sampling RSS, the V8 heap and tf.memory().numTensors
 * every 50 steps, to show memory stays flat (issue 23: RSS rose 251 -> 374 MB over 300 steps with eval
 * every 50). Not a unit test: it takes minutes. Build first (npx turbo run build --filter=@adaptorkit/trainer...).
 *
 *   nice node apps/trainer/bench/soak.mjs [--steps 2000] [--eval-every 50] [--method iaa] [--backend auto] [--out DIR]
 *
 * Samples every 50 steps; prints one line per sample and a JSON summary; exits 1 when the median RSS
 * of the last quarter of the run is more than 10% above that of the second quarter (the first is
 * warm-up), or numTensors is not flat.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { tf } from '@adaptorkit/core';
import { parseWith, runTrain, RunConfigSchema } from '../dist/index.js';

const { values: a } = parseArgs({
  options: {
    steps: { type: 'string', default: '2000' },
    'eval-every': { type: 'string', default: '50' },
    method: { type: 'string', default: 'iaa' },
    backend: { type: 'string', default: 'auto' },
    out: { type: 'string' },
    'eval-examples': { type: 'string', default: '100' },
  },
});
const steps = Number(a.steps);
const evalEvery = Number(a['eval-every']);
const out = a.out ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'adaptorkit-soak-')));
const cfg = parseWith(RunConfigSchema, {
  name: 'soak',
  backend: a.backend,
  outputDir: out,
  method: { name: a.method, config: a.method === 'iaa' ? { depths: [1, 3] } : {} },
  data: { task: 'vqa', evalExamples: Number(a['eval-examples']) },
  train: { steps, batchSize: 16, lr: 1e-3, warmupSteps: 20, clipNorm: 1, evalEvery, saveEvery: 500 },
}, 'soak');

const samples = [];
const t0 = performance.now();
const mb = (b) => Math.round(b / 2 ** 20);
await runTrain(cfg, {
  noEval: true,
  log: (line) => {
    // sampled at the progress line of every 50th step (before that step's evaluation, if any)
    const m = /^step (\d+)\//.exec(line);
    if (!m || Number(m[1]) % 50 !== 0) return;
    const u = process.memoryUsage();
    const s = { step: Number(m[1]), rssMB: mb(u.rss), heapUsedMB: mb(u.heapUsed), heapTotalMB: mb(u.heapTotal), externalMB: mb(u.external), numTensors: tf.memory().numTensors, seconds: Math.round((performance.now() - t0) / 1000) };
    samples.push(s);
    console.log(JSON.stringify(s));
  },
});
// RSS follows V8's heap, which grows between major collections and shrinks after them (a sawtooth
// of tens of MB here), so windows are compared by their medians, not single samples: the second
// quarter of the run (after warm-up) against the last quarter.
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const q = Math.floor(samples.length / 4);
if (q < 1) throw new Error('too few samples: run at least 200 steps');
const warm = samples.slice(q, 2 * q);
const last = samples.slice(samples.length - q);
const rssWarm = median(warm.map((s) => s.rssMB));
const rssLast = median(last.map((s) => s.rssMB));
const offHeap = (s) => s.rssMB - s.heapTotalMB - s.externalMB; // native memory outside V8's heap and buffers
const growth = (rssLast - rssWarm) / rssWarm;
const tensorsFlat = samples.slice(1).every((s) => s.numTensors === samples[0].numTensors);
const summary = {
  steps, evalEvery, method: a.method, backend: a.backend, samples: samples.length,
  warmSteps: `${warm[0].step}-${warm[warm.length - 1].step}`, lastSteps: `${last[0].step}-${last[last.length - 1].step}`,
  rssMedianWarmMB: rssWarm, rssMedianLastMB: rssLast, rssGrowthPct: +(100 * growth).toFixed(1),
  rssMinMB: Math.min(...samples.map((s) => s.rssMB)), rssMaxMB: Math.max(...samples.map((s) => s.rssMB)),
  offHeapMedianWarmMB: median(warm.map(offHeap)), offHeapMedianLastMB: median(last.map(offHeap)),
  heapTotalRangeMB: [Math.min(...samples.map((s) => s.heapTotalMB)), Math.max(...samples.map((s) => s.heapTotalMB))],
  numTensors: [...new Set(samples.map((s) => s.numTensors))], seconds: Math.round((performance.now() - t0) / 1000), node: process.version, cpus: os.cpus().length,
};
console.log(JSON.stringify(summary));
if (!(growth < 0.1) || !tensorsFlat) {
  console.error(`soak: ${!(growth < 0.1) ? `RSS grew ${(100 * growth).toFixed(1)}% after warm-up` : 'numTensors not flat'}`);
  process.exit(1);
}
