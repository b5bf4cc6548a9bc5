// node experiments/backend-native/profile.mjs [native|wasm|cpu] [adapter|full]: where one training step spends its time.
import { initBackend, tf } from '@adaptorkit/core';
import { buildTrainer } from './model.mjs';
const backend = process.argv[2] ?? 'native';
const mode = process.argv[3] ?? 'adapter';
await initBackend(/** @type {import('@adaptorkit/core').BackendPreference} */ (backend));
const t = buildTrainer(mode);
for (let i = 0; i < 2; i++) t.step();
let t0 = performance.now();
const N = 3;
for (let i = 0; i < N; i++) t.step();
console.log(`${backend} ${mode}: ${((performance.now() - t0) / N).toFixed(1)} ms/step`);
const prof = await tf.profile(() => { t.step(); });
const by = new Map();
for (const k of prof.kernels) {
  const e = by.get(k.name) ?? { ms: 0, n: 0 };
  e.ms += k.kernelTimeMs; e.n++;
  by.set(k.name, e);
}
const rows = [...by].sort((a, b) => b[1].ms - a[1].ms);
const total = rows.reduce((a, [, e]) => a + e.ms, 0);
console.log(`kernels total ${total.toFixed(1)} ms, ${prof.kernels.length} calls`);
for (const [n, e] of rows.slice(0, 25)) console.log(n.padEnd(22), e.ms.toFixed(1).padStart(8), 'ms', String(e.n).padStart(5), 'calls', (100 * e.ms / total).toFixed(1).padStart(5), '%');
const slow = prof.kernels.map((k) => /** @type {{ name: string, kernelTimeMs: number, inputShapes: number[][], outputShapes: number[][] }} */ (/** @type {unknown} */ (k))).filter((k) => k.kernelTimeMs > 20).sort((a, b) => b.kernelTimeMs - a.kernelTimeMs).slice(0, 15);
for (const k of slow) console.log(k.name, k.kernelTimeMs.toFixed(1), JSON.stringify(k.inputShapes), JSON.stringify(k.outputShapes));
