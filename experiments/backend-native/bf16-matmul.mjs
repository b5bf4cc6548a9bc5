// bf16-stored weight products against float32 ones on the native backend (one LLaMA-7B projection):
//   node experiments/backend-native/bf16-matmul.mjs [N=256] [K=4096] [M=4096] [reps=5]
// Prints median ms for y = x W^T (forward) and dx = dy W (input gradient), float32 W vs packed bf16 W.
import { BF16_MATMUL, f32ToBf16, bf16ToF32, initBackend, packBf16, tf } from '@adaptorkit/core';

const [N = 256, K = 4096, M = 4096, reps = 5] = process.argv.slice(2).map(Number);
await initBackend('native', { log: false });
const rnd = (n) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
const bits = f32ToBf16(rnd(M * K));
const w = tf.tensor2d(bf16ToF32(bits), [M, K]); // [out, in]
const wT = tf.transpose(w); // [in, out]: how a float32 Linear stores it
const packed = tf.tensor1d(packBf16(bits), 'int32');
const x = tf.tensor2d(rnd(N * K), [N, K]);
const dy = tf.tensor2d(rnd(N * M), [N, M]);
const time = (f) => {
  const t = [];
  for (let i = 0; i < reps + 1; i++) {
    const a = performance.now();
    const y = f();
    y.dataSync();
    t.push(performance.now() - a);
    y.dispose();
  }
  return t.slice(1).sort((p, q) => p - q)[Math.floor(reps / 2)];
};
const out = {
  shape: { N, K, M },
  forwardF32Ms: time(() => tf.matMul(x, wT)),
  forwardBf16Ms: time(() => tf.engine().runKernel(BF16_MATMUL, { x, w: packed }, { rows: M, cols: K, mode: 0 })),
  inputGradF32Ms: time(() => tf.matMul(dy, wT, false, true)),
  inputGradBf16Ms: time(() => tf.engine().runKernel(BF16_MATMUL, { x: dy, w: packed }, { rows: M, cols: K, mode: 1 })),
};
console.log(JSON.stringify(out));
