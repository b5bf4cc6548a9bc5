// Leak check: 500 adapter-training steps of a small model on one backend; numTensors must stay
// constant and RSS must not grow more than 10% from step 50 to step 500. Exit code 1 on failure.
// node bench/leak.mjs [BACKEND] [STEPS]
import { AdamW, CausalLM, Linear, Module, disposeGrads, initBackend, maskedCrossEntropy, tf, valueAndGrads } from '@adaptorkit/core';

const backend = process.argv[2] ?? 'native';
const steps = Number(process.argv[3] ?? 500);
await initBackend(backend, { log: false });

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
for (let i = 1; i <= steps; i++) {
  const { grads } = valueAndGrads(() => maskedCrossEntropy(model.forward({ ids }).logits, ids), params);
  opt.step(grads);
  disposeGrads(grads);
  if (i === 50) {
    global.gc?.();
    base = rss();
    baseTensors = tf.memory().numTensors;
  }
}
global.gc?.();
const end = rss();
const tensors = tf.memory().numTensors;
const growth = (end - base) / base;
const ok = tensors === baseTensors && growth <= 0.1;
console.log(JSON.stringify({ backend, steps, rssAtStep50Mb: base, rssAtEndMb: end, rssGrowth: growth, numTensorsAtStep50: baseTensors, numTensorsAtEnd: tensors, ok }));
process.exit(ok ? 0 : 1);
