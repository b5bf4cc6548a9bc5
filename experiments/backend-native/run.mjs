// `npm run bench` (npm run -w @adaptorkit/experiments bench): trains the issue-5 benchmark model on each available
// backend and, when python3 has torch, the PyTorch twin (experiments/backend-native/torch_bench.py) in the same run;
// prints a table and writes experiments/backend-native/results/latest.json with the machine info.
//   BENCH_QUICK=1   fewer steps (smoke run)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.env.BENCH_QUICK === '1';
const HOOKS = ['--import', join(here, 'register-hooks.mjs')];
const { SHAPE } = await import('./model.mjs');
const tokens = SHAPE.batch * SHAPE.seq;

function node(args, extra = [], env = {}) {
  const r = spawnSync(process.execPath, [...extra, ...HOOKS, ...args], { encoding: 'utf8', cwd: here, maxBuffer: 1 << 26, env: { ...process.env, ...env } });
  const line = (r.stdout ?? '').trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!line) return { error: `${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ') || `exit ${r.status}`}` };
  return { ...JSON.parse(line), exit: r.status };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The OpenBLAS core type the native backend picks (src/addon.ts), used for PyTorch's OpenBLAS too. */
function openblasCore() {
  if (process.env.OPENBLAS_CORETYPE) return process.env.OPENBLAS_CORETYPE;
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags')) ?? '';
    const f = new Set(line.split(':')[1]?.trim().split(/\s+/) ?? []);
    if (f.has('avx512f') && f.has('avx512bw') && f.has('avx512vl')) return f.has('avx512_bf16') ? 'Cooperlake' : 'SkylakeX';
    if (f.has('avx2') && f.has('fma')) return 'Haswell';
  } catch {}
  return undefined;
}

function findTorchPython() {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
    if (r.status === 0) return { py, version: r.stdout.trim() };
  }
  return undefined;
}

const loadAtStart = os.loadavg();
const runs = [];
const oneThread = [];
const notes = [];
const plan = [
  { backend: 'native', mode: 'adapter', steps: quick ? 3 : 10, warm: 2 },
  { backend: 'native', mode: 'full', steps: quick ? 3 : 10, warm: 2 },
  { backend: 'wasm', mode: 'adapter', steps: quick ? 1 : 3, warm: 1 },
  { backend: 'wasm', mode: 'full', steps: quick ? 1 : 2, warm: 1 },
  // One thread each, native and PyTorch: CPU time per step is the comparison that survives other
  // processes on the machine (with 2 threads, waits for a descheduled thread and OpenMP's spinning
  // inflate wall and CPU time alike).
  { backend: 'native', mode: 'adapter', steps: quick ? 3 : 6, warm: 2, oneThread: true },
  { backend: 'native', mode: 'full', steps: quick ? 3 : 6, warm: 2, oneThread: true },
];
notes.push('cpu (pure JS) backend skipped: minutes per step at this size');
// WebGPU when it starts: a real GPU (backend 'webgpu'); BENCH_WEBGPU=cpu runs it on Mesa's CPU renderer
// instead ('webgpu:cpu': seconds per step, a correctness check, not a speed). Labelled with the adapter.
const webgpuPref = process.env.BENCH_WEBGPU === 'cpu' ? 'webgpu:cpu' : 'webgpu';
const webgpuSlow = webgpuPref === 'webgpu:cpu';
plan.push(
  { backend: webgpuPref, mode: 'adapter', steps: webgpuSlow ? 1 : quick ? 3 : 10, warm: webgpuSlow ? 1 : 2 },
  { backend: webgpuPref, mode: 'full', steps: webgpuSlow ? 1 : quick ? 3 : 10, warm: webgpuSlow ? 1 : 2 },
);

for (const p of plan) {
  process.stderr.write(`bench: ${p.backend} ${p.mode} (${p.steps} steps${p.oneThread ? ', 1 thread' : ''})...\n`);
  const r = node(['train.mjs', p.backend, p.mode, String(p.steps), String(p.warm)], [], p.oneThread ? { ADAPTORKIT_NATIVE_THREADS: '1' } : {});
  if (r.error) {
    notes.push(`${p.backend} ${p.mode}: not run (${r.error})`);
    if (p.backend.startsWith('webgpu')) break; // both webgpu rows are last: the second fails the same way
    continue;
  }
  // webgpu rows carry their adapter: "webgpu [NVIDIA H200]"
  const label = p.backend.startsWith('webgpu') ? `webgpu [${/^adapter (.+?)(?: \(| via )/.exec(r.detail ?? '')?.[1] ?? '?'}]` : p.backend;
  (p.oneThread ? oneThread : runs).push({ name: label, mode: p.mode, medianMs: median(r.stepMs), stepMs: r.stepMs, cpuMs: r.cpuMs, medianCpuMs: median(r.cpuMs), peakRssMb: r.peakRssMb, detail: r.detail, trainable: r.trainable });
}

const torch = findTorchPython();
let torchEnv;
if (!torch) notes.push('PyTorch: python3 with torch not found (Debian: apt-get install python3-torch libopenblas0-openmp)');
else {
  torchEnv = /** @type {Record<string, string>} */ ({});
  const ompDir = '/usr/lib/x86_64-linux-gnu/openblas-openmp';
  if (existsSync(ompDir)) torchEnv.LD_LIBRARY_PATH = ompDir;
  const core = openblasCore();
  if (core) torchEnv.OPENBLAS_CORETYPE = core;
  for (const [mode, threads] of /** @type {[string, number][]} */ ([['adapter', 2], ['full', 2], ['adapter', 1], ['full', 1]])) {
    process.stderr.write(`bench: pytorch ${mode} (${threads} thread${threads > 1 ? 's' : ''})...\n`);
    const steps = threads === 1 ? (quick ? 3 : 6) : quick ? 3 : 10;
    const r = spawnSync(torch.py, [join(here, 'torch_bench.py'), mode, String(steps), '2', String(threads)], { encoding: 'utf8', env: { ...process.env, ...torchEnv } });
    const line = (r.stdout ?? '').trim().split('\n').pop();
    if (r.status !== 0 || !line) {
      notes.push(`pytorch ${mode} ${threads} threads: failed (${(r.stderr ?? '').trim().split('\n').pop()})`);
      continue;
    }
    const j = JSON.parse(line);
    (threads === 1 ? oneThread : runs).push({ name: 'pytorch', mode, medianMs: median(j.step_ms), stepMs: j.step_ms, cpuMs: j.cpu_ms, medianCpuMs: median(j.cpu_ms), peakRssMb: j.peak_rss_mb, detail: `torch ${j.torch}, ${j.threads} threads, ${Object.entries(torchEnv).map(([k, v]) => `${k}=${v}`).join(' ')}`, trainable: j.trainable });
  }
}

process.stderr.write('bench: matMul GFLOP/s...\n');
const gflops = {};
for (const b of ['native', 'wasm']) {
  const r = node(['matmul.mjs', b]);
  if (!r.error) gflops[b] = r.gflops;
}
process.stderr.write('bench: leak check (500 steps, small model, native)...\n');
const leak = node(['leak.mjs', 'native', '500'], ['--expose-gc', '--min-semi-space-size=16']);

// ---- table ----
const rows = [];
for (const mode of ['adapter', 'full']) {
  const ref = runs.find((r) => r.name === 'pytorch' && r.mode === mode);
  for (const r of runs.filter((x) => x.mode === mode)) {
    r.tokensPerS = tokens / (r.medianMs / 1000);
    r.ratioToPytorch = ref ? r.medianMs / ref.medianMs : undefined;
    rows.push([mode === 'adapter' ? 'adapters' : 'full FT', r.name, `${(r.medianMs / 1000).toFixed(3)} s`, r.medianCpuMs !== undefined ? `${(r.medianCpuMs / 1000).toFixed(3)} s` : '-', r.tokensPerS.toFixed(0), `${r.peakRssMb.toFixed(0)} MB`, r.ratioToPytorch ? `${r.ratioToPytorch.toFixed(2)}x` : '-']);
  }
}
const head = ['training', 'backend', 'median step', 'CPU/step', 'tokens/s', 'peak RSS', 'vs PyTorch'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const fmt = (r) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
console.log(`\nbenchmark model: 4-layer d=256 LLaMA-style, vocab 4096, batch ${SHAPE.batch} x seq ${SHAPE.seq}, AdamW (${os.cpus().length} cores, ${os.cpus()[0]?.model})`);
console.log(fmt(head));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const r of rows) console.log(fmt(r));
if (oneThread.length) {
  console.log('\none thread each (ADAPTORKIT_NATIVE_THREADS=1, torch.set_num_threads(1)); CPU time per step, medians:');
  for (const mode of ['adapter', 'full']) {
    const ref = oneThread.find((r) => r.name === 'pytorch' && r.mode === mode);
    for (const r of oneThread.filter((x) => x.mode === mode)) {
      r.cpuRatioToPytorch = ref ? r.medianCpuMs / ref.medianCpuMs : undefined;
      console.log(`  ${(mode === 'adapter' ? 'adapters' : 'full FT').padEnd(8)} ${r.name.padEnd(7)} CPU ${(r.medianCpuMs / 1000).toFixed(3)} s  wall ${(r.medianMs / 1000).toFixed(3)} s  ${r.cpuRatioToPytorch ? `${r.cpuRatioToPytorch.toFixed(2)}x PyTorch's CPU time` : ''}`);
    }
  }
}
const load = os.loadavg();
console.log(`\nload average (1/5/15 min) at the start: ${loadAtStart.map((x) => x.toFixed(2)).join(' / ')}, at the end: ${load.map((x) => x.toFixed(2)).join(' / ')} (${os.cpus().length} cores)`);
console.log('\nmatMul GFLOP/s (tf.matMul, n x n):');
for (const [b, g] of Object.entries(gflops)) console.log(`  ${b.padEnd(7)} ${Object.entries(g).map(([n, v]) => `${n}: ${v.toFixed(1)}`).join('  ')}`);
if (leak.error) console.log(`\nleak check: failed to run (${leak.error})`);
else console.log(`\nleak check (native, ${leak.steps} steps, baseline after ${leak.warmupSteps}, ${leak.nodeFlags}): numTensors ${leak.numTensorsAtStep50} -> ${leak.numTensorsAtEnd}, RSS ${leak.rssAtStep50Mb.toFixed(0)} -> ${leak.rssAtEndMb.toFixed(0)} MB (${(100 * leak.rssGrowth).toFixed(1)}%), V8 heapTotal ${leak.atStep50.heapTotalMb.toFixed(0)} -> ${leak.atEnd.heapTotalMb.toFixed(0)} MB, external ${leak.atStep50.externalMb.toFixed(0)} -> ${leak.atEnd.externalMb.toFixed(0)} MB, pool ${leak.atStep50.pooledMb.toFixed(0)} -> ${leak.atEnd.pooledMb.toFixed(0)} MB: ${leak.ok ? 'ok' : 'FAILED'}`);
for (const n of notes) console.log(`note: ${n}`);

const result = {
  date: new Date().toISOString(),
  machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, memGb: os.totalmem() / 2 ** 30, platform: `${os.platform()} ${os.release()}`, node: process.version, loadavgAtStart: loadAtStart, loadavg: os.loadavg() },
  model: (await import('./model.mjs')).MODEL,
  shape: SHAPE,
  runs,
  oneThread,
  matmulGflops: gflops,
  leak,
  notes,
};
const dir = join(here, 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'latest.json'), JSON.stringify(result, null, 2) + '\n');
console.log(`\nwrote ${join('experiments', 'backend-native', 'results', 'latest.json')}`);
const nativeAdapter = runs.find((r) => r.name === 'native' && r.mode === 'adapter');
if (leak.ok === false) process.exitCode = 1;
if (nativeAdapter?.ratioToPytorch !== undefined && nativeAdapter.ratioToPytorch > 2) console.log('note: native adapter training is more than 2x PyTorch in this run');
