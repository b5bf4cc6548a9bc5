// Leak check: 500 adapter-training steps of a small model on one backend; numTensors must stay
// constant and RSS must not grow more than 10% from step 50 (the baseline, after a 50-step warm-up)
// to the last step. Exit code 1 on failure.
// node --expose-gc --min-semi-space-size=16 experiments/backend-native/leak.mjs [BACKEND] [STEPS]
// --min-semi-space-size=16 starts V8's young generation at the size it grows to anyway under this
// allocation rate (16 MB semi-spaces, Node 20's maximum): without it, heapTotal grows ~16 MB between
// steps 50 and 150 and then stays flat, which reads as +11-28% RSS on this small process without
// being a leak. RSS is sampled every 50 steps after a full GC (needs --expose-gc). heapTotal, external and pooled bytes are printed with RSS so the cause of any
// growth can be told apart.
import { AdamW, CausalLM, Linear, Module, disposeGrads, initBackend, maskedCrossEntropy, tf, valueAndGrads } from '@adaptorkit/core';

const backend = process.argv[2] ?? 'native';
const steps = Number(process.argv[3] ?? 500);
await initBackend(/** @type {import('@adaptorkit/core').BackendPreference} */ (backend), { log: false });

class Adapter extends Module {
  constructor(d, r) {
    super();
    this.down = this.child('down', new Linear(d, r));
    this.up = this.child('up', new Linear(r, d));
  }
  forward(x) {
    return tf.tidy(() => tf.add(x, this.up.forward(tf.relu(this.down.forward(x)))));
  }
}
const model = new CausalLM({ vocabSize: 512, hiddenSize: 64, intermediateSize: 160, numLayers: 2, numHeads: 4 });
model.freeze();
for (let i = 0; i < 2; i++) model.model.layers.at(i).setAdapter('post', new Adapter(64, 16));
const params = model.trainableParameters();
const opt = new AdamW(params, { lr: 1e-3 });
const ids = tf.tensor2d(Int32Array.from({ length: 4 * 32 }, (_, i) => (i * 37) % 512), [4, 32], 'int32');
const rss = () => process.memoryUsage().rss / 2 ** 20;
let base;
let baseTensors;
let baseMem;
const samples = [];
const mem = () => {
  const m = process.memoryUsage();
  return { heapTotalMb: m.heapTotal / 2 ** 20, externalMb: m.external / 2 ** 20, pooledMb: (/** @type {any} */ (tf.backend()).pool?.bytes ?? 0) / 2 ** 20 };
};
for (let i = 1; i <= steps; i++) {
  const { grads } = valueAndGrads(() => maskedCrossEntropy(model.forward({ ids }).logits, ids), params);
  opt.step(grads);
  disposeGrads(grads);
  // Sample live memory every 50 steps, each after a full GC: garbage that V8 has not yet collected
  // is not a leak (without these collections, when V8 runs its major GCs decides whether old space
  // holds 10 MB or 25 MB of dead objects at the last step); anything still reachable survives them.
  if (i % 50 === 0) {
    global.gc?.();
    samples.push([i, Math.round(rss())]);
  }
  if (i === 50) {
    base = rss();
    baseTensors = tf.memory().numTensors;
    baseMem = mem();
  }
}
global.gc?.();
const end = rss();
const tensors = tf.memory().numTensors;
const growth = (end - base) / base;
const ok = tensors === baseTensors && growth <= 0.1;
const semi = process.execArgv.find((a) => a.startsWith('--min-semi-space-size'));
console.log(JSON.stringify({ backend, steps, warmupSteps: 50, nodeFlags: semi ?? null, rssSamplesMb: samples, rssAtStep50Mb: base, rssAtEndMb: end, rssGrowth: growth, numTensorsAtStep50: baseTensors, numTensorsAtEnd: tensors, atStep50: baseMem, atEnd: mem(), ok }));
process.exit(ok ? 0 : 1);
