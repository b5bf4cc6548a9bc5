// One bench measurement in its own process: node experiments/backend-native/train.mjs BACKEND MODE STEPS WARMUP
// Prints one JSON line: step times, peak RSS, the backend's detail line.
import { initBackend, tf } from '@adaptorkit/core';
import { buildTrainer, MODEL, SHAPE } from './model.mjs';

const [backend = 'native', mode = 'adapter', stepsArg = '5', warmArg = '1'] = process.argv.slice(2);
const info = await initBackend(/** @type {import('@adaptorkit/core').BackendPreference} */ (backend), { log: false }).catch((err) => {
  // one line, the last on stderr: run.mjs and scripts/gpu-check.sh quote it as why the row did not run
  console.error(String(err?.message ?? err).split('\n')[0]);
  process.exit(2);
});
const t = buildTrainer(mode);
const stepMs = [];
const cpuMs = []; // user + system CPU time of the process per step (all threads)
let loss = NaN;
for (let i = 0; i < Number(warmArg) + Number(stepsArg); i++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  loss = t.step();
  if (i >= Number(warmArg)) {
    stepMs.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpuMs.push((c.user + c.system) / 1000);
  }
}
const out = {
  backend,
  mode,
  stepMs,
  cpuMs,
  loss,
  trainable: t.trainable,
  peakRssMb: process.resourceUsage().maxRSS / 1024,
  numTensors: tf.memory().numTensors,
  detail: info.detail ?? (info.name === 'wasm' ? `SIMD ${info.simd ? 'on' : 'off'}, threads ${info.threads ? 'on' : 'off'}` : ''),
  model: MODEL,
  shape: SHAPE,
};
t.dispose();
console.log(JSON.stringify(out));
