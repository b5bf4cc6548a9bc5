/**
 * Synthetic run folders in the exact run-folder format, for the report's tests and for the README's
 * sample image (scripts/sample-report.ts). The numbers are made up (seeded curves), not measured.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { stringify as toYaml } from 'yaml';
import type { EvalLine, EvalResult, MetricsLine, RunInfo, StepLine } from '../run-format.js';

/** mulberry32: a tiny seeded PRNG so fixtures are the same every time. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FixtureRun {
  info: RunInfo;
  lines: MetricsLine[];
  final?: EvalResult;
  config?: Record<string, unknown>;
}

const MACHINE = { hostname: 'lab-01', platform: 'linux', arch: 'x64', cpus: 2, cpuModel: 'Example CPU @ 2.4GHz', memoryGB: 8, node: 'v20.20.2' };
const T0 = Date.parse('2025-01-01T10:00:00Z');

interface CurveSpec {
  name: string;
  method: string;
  seed: number;
  steps: number;
  /** Steps actually done (less than steps for an unfinished run). */
  done?: number;
  start: number;
  end: number;
  evalEvery: number;
  acc: [number, number];
  trainable: number;
  ms: number;
}

function curveRun(c: CurveSpec): { info: RunInfo; lines: MetricsLine[] } {
  const r = rng(c.seed);
  const lines: MetricsLine[] = [];
  const done = c.done ?? c.steps;
  for (let s = 1; s <= done; s++) {
    const t = s / c.steps;
    const loss = c.end + (c.start - c.end) * Math.exp(-5 * t) * (1 + 0.25 * (r() - 0.5)) + 0.05 * (r() - 0.5);
    const lr = 1e-3 * (s < 10 ? s / 10 : 0.5 * (1 + Math.cos((Math.PI * (s - 10)) / (c.steps - 10))));
    const step: StepLine = { kind: 'step', step: s, loss, lr, gradNorm: 1 + r(), ms: c.ms * (0.9 + 0.2 * r()), time: new Date(T0 + s * c.ms).toISOString() };
    lines.push(step);
    if (s % c.evalEvery === 0) {
      const acc = c.acc[0] + (c.acc[1] - c.acc[0]) * (1 - Math.exp(-4 * t)) + 0.02 * (r() - 0.5);
      const ev: EvalLine = { kind: 'eval', step: s, split: 'val', metrics: { accuracy: acc, perplexity: Math.exp(loss) }, time: step.time };
      lines.push(ev);
    }
  }
  const info: RunInfo = {
    name: c.name,
    method: c.method,
    status: done < c.steps ? 'running' : 'completed',
    backend: { name: 'cpu', package: '@tensorflow/tfjs-backend-cpu', gpu: false },
    machine: MACHINE,
    seed: c.seed,
    startedAt: new Date(T0).toISOString(),
    ...(done < c.steps ? {} : { finishedAt: new Date(T0 + c.steps * c.ms + 5000).toISOString() }),
    step: done,
    totalSteps: c.steps,
    trainableParams: c.trainable,
    totalParams: 1_234_567,
    trainablePercent: (100 * c.trainable) / 1_234_567,
    medianStepMs: c.ms,
    peakRssMB: 412 + c.seed,
    trainSeconds: (done * c.ms) / 1000,
  };
  return { info, lines };
}

function samples(correct: number, hostile: boolean): EvalResult['samples'] {
  const qs = [
    ['What colour is the circle?', 'red', 'blue'],
    ['How many squares are there?', 'three', 'two'],
    ['Is the triangle left of the star?', 'yes', 'no'],
    ['What shape is at the top?', 'a star', 'a circle'],
  ] as const;
  const out: NonNullable<EvalResult['samples']> = qs.map(([prompt, answer, wrong], i) => ({ prompt: `<image>\n${prompt}`, answer, prediction: i < correct ? answer : wrong }));
  if (hostile) out.push({ prompt: '<img src=x onerror="console.error(\'xss\')"> & </td></table>', answer: '<b>bold</b>', prediction: '<script>console.error("xss")</script>' });
  return out;
}

function config(method: string, lr: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    base: { lm: 'shapes-lm-small', vision: 'shapes-vit-small' },
    method: { name: method, config: extra },
    data: { task: 'vqa', batchSize: 16 },
    optimizer: { lr, weightDecay: 0.01 },
    train: { steps: 120, evalEvery: 20, seed: 1 },
  };
}

/**
 * Three completed runs (IAA, MMA with routing weights, a frozen baseline) and optionally a running one.
 * `hostile` adds HTML in a run name and in samples, to test escaping.
 */
export function fixtureRuns(opts: { hostile?: boolean; unfinished?: boolean } = {}): FixtureRun[] {
  const iaa = curveRun({ name: 'iaa-shapes', method: 'iaa', seed: 1, steps: 120, start: 4.2, end: 0.35, evalEvery: 20, acc: [0.2, 0.86], trainable: 98_304, ms: 48 });
  const mma = curveRun({ name: 'mma-shapes', method: 'mma', seed: 2, steps: 120, start: 4.2, end: 0.5, evalEvery: 20, acc: [0.2, 0.79], trainable: 21_770, ms: 36 });
  const frozen = curveRun({ name: opts.hostile ? 'frozen <script>console.error("xss")</script>' : 'frozen-baseline', method: 'frozen', seed: 3, steps: 120, start: 4.2, end: 2.9, evalEvery: 40, acc: [0.2, 0.31], trainable: 4_160, ms: 22 });
  const layers = 6;
  mma.info.extras = {
    routing: {
      text: Array.from({ length: layers }, (_, l) => { const w = 0.92 - 0.05 * l; return [w, 1 - w]; }),
      image: Array.from({ length: layers }, (_, l) => { const w = 0.12 + 0.04 * l; return [w, 1 - w]; }),
    },
  };
  const runs: FixtureRun[] = [
    { ...iaa, config: config('iaa', 1e-3, { depths: [2, 4], width: 64 }),
      final: { step: 120, split: 'test', task: 'vqa', metrics: { accuracy: 0.85, perplexity: 1.42 }, textSkill: { perplexity: 8.31, textTaskAccuracy: 0.72 }, samples: samples(4, !!opts.hostile) } },
    { ...mma, config: config('mma', 1e-3, { rank: 8, tau: 5 }),
      final: { step: 120, split: 'test', task: 'vqa', metrics: { accuracy: 0.78, perplexity: 1.66 }, textSkill: { perplexity: 8.31, textTaskAccuracy: 0.72 }, samples: samples(3, false) } },
    { ...frozen, config: config('frozen', 2e-3),
      final: { step: 120, split: 'test', task: 'vqa', metrics: { accuracy: 0.3, perplexity: 17.9 }, textSkill: { perplexity: 8.31, textTaskAccuracy: 0.72 }, samples: samples(1, false) } },
  ];
  if (opts.unfinished) {
    const run = curveRun({ name: 'mwa-shapes', method: 'mwa', seed: 4, steps: 120, done: 50, start: 4.2, end: 0.4, evalEvery: 20, acc: [0.2, 0.8], trainable: 55_000, ms: 60 });
    runs.push({ ...run, config: config('mwa', 1e-3, { rank: 16 }) });
  }
  return runs;
}

/** Write run folders under `root` (root/<name-slug>/), returning their paths in order. */
export async function writeFixtureRuns(root: string, runs: readonly FixtureRun[]): Promise<string[]> {
  const dirs: string[] = [];
  for (const [i, r] of runs.entries()) {
    const dir = path.join(root, `${i}-${r.info.name.replace(/[^a-zA-Z0-9-]+/g, '_')}`);
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'run.json'), `${JSON.stringify(r.info, null, 2)}\n`);
    await fs.writeFile(path.join(dir, 'metrics.jsonl'), r.lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
    if (r.final) await fs.writeFile(path.join(dir, 'eval.json'), `${JSON.stringify(r.final, null, 2)}\n`);
    if (r.config) await fs.writeFile(path.join(dir, 'config.yaml'), toYaml(r.config));
    dirs.push(dir);
  }
  return dirs;
}
