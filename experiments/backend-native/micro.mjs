// Microbenchmarks behind numbers in the README (node --import ./experiments/backend-native/register-hooks.mjs experiments/backend-native/micro.mjs):
//  - kernels per training step of the bench model (experiments/backend-native/model.mjs, adapter mode), fused kernels on
//    and off (ADAPTORKIT_FUSED is read when core loads, so this toggles setFusedKernels instead);
//  - one elementwise product of two [8, 74, 352] tensors (operands of one shape: one long row);
//  - a weight-gradient product X^T dY ([512, 128]^T [512, 128]) with 0.2% denormal values in dY,
//    as a projector's gradient in a frozen-LM run had. Run once as is and once with
//    ADAPTORKIT_NATIVE_DENORMALS=keep to compare (and with ADAPTORKIT_NATIVE_THREADS=1 for one thread).
import { initBackend, setFusedKernels, tf } from '@adaptorkit/core';
import { buildTrainer } from './model.mjs';

const info = await initBackend('native', { log: false });
console.log(`backend ${info.name}: ${info.detail}`);

// kernel calls per step
const eng = tf.engine();
const orig = eng.runKernel.bind(eng);
let calls = 0;
let depth = 0;
eng.runKernel = (name, inputs, attrs) => {
  if (depth === 0) calls++;
  depth++;
  try {
    return orig(name, inputs, attrs);
  } finally {
    depth--;
  }
};
for (const fused of [false, true]) {
  setFusedKernels(fused);
  const t = buildTrainer('adapter');
  t.step();
  calls = 0;
  t.step();
  console.log(`kernel calls per adapter step, fused kernels ${fused ? 'on' : 'off'}: ${calls}`);
  t.dispose();
}
eng.runKernel = orig;

/** Median microseconds of fn over rounds of n calls (each result disposed). */
function time(fn, n = 300) {
  for (let i = 0; i < 30; i++) fn().dispose();
  const per = [];
  for (let r = 0; r < 7; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn().dispose();
    per.push(((performance.now() - t0) / n) * 1000);
  }
  return per.sort((a, b) => a - b)[3].toFixed(1);
}

const a = tf.randomNormal([8, 74, 352], 0, 1, 'float32', 1);
const b = tf.randomNormal([8, 74, 352], 0, 1, 'float32', 2);
console.log(`multiply [8, 74, 352] x [8, 74, 352]: ${time(() => tf.mul(a, b))} us`);

const x = tf.randomNormal([512, 128], 0, 1, 'float32', 3);
const dyv = tf.randomNormal([512, 128], 0, 1e-3, 'float32', 4).dataSync();
for (let i = 0; i < dyv.length; i += 500) dyv[i] = 1e-39 * (1 + (i % 7)); // 0.2% denormals
const dy = tf.tensor(dyv, [512, 128]);
console.log(`matMul [512, 128]^T x [512, 128], 0.2% denormals in the second: ${time(() => tf.matMul(x, dy, true, false))} us (denormals ${process.env.ADAPTORKIT_NATIVE_DENORMALS === 'keep' ? 'kept' : 'flushed'}, ${info.threads} thread(s))`);
