// matMul GFLOP/s through tfjs on one backend: node experiments/backend-native/matmul.mjs BACKEND
import { initBackend, tf } from '@adaptorkit/core';

const backend = process.argv[2] ?? 'native';
await initBackend(/** @type {import('@adaptorkit/core').BackendPreference} */ (backend), { log: false });
const res = {};
for (const n of [256, 512, 1024, 2048]) {
  const a = tf.randomUniform([n, n]);
  const b = tf.randomUniform([n, n]);
  tf.matMul(a, b).dispose(); // warm up
  const flop = 2 * n ** 3;
  const reps = Math.max(2, Math.min(50, Math.round((backend === 'native' ? 4e9 : 4e8) / flop)));
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) {
    const c = tf.matMul(a, b);
    c.dataSync();
    c.dispose();
  }
  const s = (performance.now() - t0) / 1000 / reps;
  res[n] = flop / s / 1e9;
  a.dispose();
  b.dispose();
}
console.log(JSON.stringify({ backend, gflops: res }));
