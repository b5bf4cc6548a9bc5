// node experiments/backend-native/webgpu-profile.mjs [webgpu|webgpu:cpu] [adapter|full] [STEPS]: where a webgpu training step
// of the benchmark model spends its time. Prints one JSON line:
//   stepMs        wall time per step (median)
//   kernels       kernel calls per step
//   dispatchMs    time in those calls: each is a round trip to the device thread, which records the
//                 GPU work and answers with the output shape (the GPU runs it later, asynchronously)
//   readMs        time waiting for reads (the loss): the GPU finishing the queued work, plus the copy
//   otherMs       the rest: JS in tfjs (autodiff, AdamW bookkeeping)
//   roundTripUs   one trivial kernel's round trip (the floor of dispatch cost per kernel)
//   top           the kernels with the most dispatch time
import { initBackend, tf } from '@adaptorkit/core';
import { buildTrainer } from './model.mjs';

const [pref = 'webgpu', mode = 'adapter', stepsArg = '3'] = process.argv.slice(2);
const info = await initBackend(/** @type {import('@adaptorkit/core').BackendPreference} */ (pref), { log: false });
/** @type {any} the proxy backend's runKernel is wrapped to time each round trip */
const b = tf.backend();
const acc = { kernels: 0, dispatchMs: 0, readMs: 0, byName: new Map() };
const runKernel = b.runKernel.bind(b);
b.runKernel = (name, inputs, attrs) => {
  const t0 = performance.now();
  try {
    return runKernel(name, inputs, attrs);
  } finally {
    const ms = performance.now() - t0;
    acc.kernels++;
    acc.dispatchMs += ms;
    const e = acc.byName.get(name) ?? { ms: 0, n: 0 };
    e.ms += ms;
    e.n++;
    acc.byName.set(name, e);
  }
};
const readSync = b.readSync.bind(b);
b.readSync = (dataId) => {
  const t0 = performance.now();
  try {
    return readSync(dataId);
  } finally {
    acc.readMs += performance.now() - t0;
  }
};
const t = buildTrainer(mode);
t.step(); // shaders compile on the first step
const steps = Number(stepsArg);
const wall = [];
acc.kernels = acc.dispatchMs = acc.readMs = 0;
acc.byName.clear();
for (let i = 0; i < steps; i++) {
  const t0 = performance.now();
  t.step();
  wall.push(performance.now() - t0);
}
// one trivial kernel's round trip
const x = tf.scalar(1);
const n = 200;
const r0 = performance.now();
for (let i = 0; i < n; i++) tf.neg(x).dispose();
const roundTripUs = ((performance.now() - r0) / n) * 1000;
x.dispose();
t.dispose();
const sorted = [...wall].sort((a, c) => a - c);
const per = (v) => v / steps;
const stepMs = sorted[sorted.length >> 1];
console.log(
  JSON.stringify({
    measure: 'webgpu-profile',
    backend: pref,
    adapter: info.adapter?.name,
    mode,
    stepMs,
    kernels: per(acc.kernels),
    dispatchMs: per(acc.dispatchMs),
    readMs: per(acc.readMs),
    otherMs: wall.reduce((a, c) => a + c, 0) / steps - per(acc.dispatchMs) - per(acc.readMs),
    roundTripUs,
    top: [...acc.byName].sort((a, c) => c[1].ms - a[1].ms).slice(0, 8).map(([name, e]) => ({ name, calls: per(e.n), ms: per(e.ms) })),
  }),
);
