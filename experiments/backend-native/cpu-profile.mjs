// node experiments/backend-native/cpu-profile.mjs [adapter|full] [ROWS]: CPU time per kernel (name + input shapes) over a few
// training steps on the native backend, by process.cpuUsage around each kernel. With
// ADAPTORKIT_NATIVE_THREADS=1 it stays readable while other jobs load the machine (tf.profile's wall
// times do not).
import { initBackend, tf } from '@adaptorkit/core';
import { buildTrainer } from './model.mjs';
const mode = process.argv[2] ?? 'adapter';
await initBackend('native', {log:false});
const stats = new Map(); let on = false;
const cpu = () => { const c = process.cpuUsage(); return (c.user + c.system) / 1000; };
for (const k of tf.getKernelsForBackend('native')) {
  const f = k.kernelFunc;
  tf.unregisterKernel(k.kernelName, 'native');
  tf.registerKernel({ ...k, kernelFunc: (args) => {
    if (!on) return f(args);
    const t0 = cpu(); const r = f(args); const dt = cpu() - t0;
    const key = k.kernelName + ' ' + JSON.stringify(Object.values(args.inputs).map((t) => t?.shape));
    const e = stats.get(key) ?? { ms: 0, n: 0 }; e.ms += dt; e.n++; stats.set(key, e); return r; } });
}
const t = buildTrainer(mode);
for (let i = 0; i < 2; i++) t.step();
const S = 4; on = true; const c0 = cpu();
for (let i = 0; i < S; i++) t.step();
const total = (cpu() - c0) / S; on = false;
const rows = [...stats].map(([k, e]) => [k, e.ms / S, e.n / S]).sort((a, b) => b[1] - a[1]);
const kt = rows.reduce((a, r) => a + r[1], 0);
const byName = new Map(); for (const [k, ms, n] of rows) { const nm = k.split(' ')[0]; const e = byName.get(nm) ?? [0, 0]; e[0] += ms; e[1] += n; byName.set(nm, e); }
console.log(`cpu/step ${total.toFixed(0)} ms, in kernels ${kt.toFixed(0)} ms, outside ${(total - kt).toFixed(0)} ms`);
console.log([...byName].sort((a, b) => b[1][0] - a[1][0]).slice(0, 16).map(([n, [ms, c]]) => `${n} ${ms.toFixed(1)}/${c}`).join(' | '));
for (const [k, ms, n] of rows.slice(0, Number(process.argv[3] ?? 30))) console.log(ms.toFixed(1).padStart(7), String(n).padStart(4), k);
