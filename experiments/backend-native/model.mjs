// The benchmark model (issue 5): a frozen 4-layer d=256 LLaMA-style CausalLM from @adaptorkit/core
// with a bottleneck adapter after every layer, or fully trainable (full fine-tune). AdamW.
// The PyTorch twin is experiments/backend-native/torch_bench.py: keep the two in step.
import { AdamW, CausalLM, Linear, Module, disposeGrads, maskedCrossEntropy, tf, valueAndGrads, manualSeed } from '@adaptorkit/core';

export const MODEL = { vocabSize: 4096, hiddenSize: 256, intermediateSize: 704, numLayers: 4, numHeads: 4, maxPositionEmbeddings: 512 };
export const SHAPE = { batch: 8, seq: 128, adapterDim: 64 };

/** x + up(silu(down(x))): the bottleneck adapter. */
class BottleneckAdapter extends Module {
  constructor(dim, r) {
    super();
    this.down = this.child('down', new Linear(dim, r));
    this.up = this.child('up', new Linear(r, dim));
  }
  forward(x) {
    return tf.tidy(() => {
      const h = this.down.forward(x);
      return tf.add(x, this.up.forward(tf.mul(h, tf.sigmoid(h))));
    });
  }
}

/** Builds model + optimizer + a fixed batch; returns step() -> loss and dispose(). */
export function buildTrainer(mode, seed = 0) {
  manualSeed?.(seed);
  const model = new CausalLM(MODEL);
  if (mode === 'adapter') {
    model.freeze();
    for (let i = 0; i < MODEL.numLayers; i++) model.model.layers.at(i).setAdapter('post', new BottleneckAdapter(MODEL.hiddenSize, SHAPE.adapterDim));
  }
  const params = model.trainableParameters();
  const opt = new AdamW(mode === 'adapter' ? params : model, { lr: 1e-4, weightDecay: 0.01 });
  const { batch: B, seq: T } = SHAPE;
  const ids = new Int32Array(B * T);
  let s = 12345 + seed;
  for (let i = 0; i < ids.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    ids[i] = s % MODEL.vocabSize;
  }
  const x = tf.tensor2d(ids, [B, T], 'int32');
  const step = () => {
    const { loss, grads } = valueAndGrads(() => maskedCrossEntropy(model.forward({ ids: x }).logits, x), params);
    opt.step(grads);
    disposeGrads(grads);
    return loss;
  };
  const dispose = () => {
    opt.dispose();
    model.dispose();
    x.dispose();
  };
  return { step, dispose, trainable: params.reduce((a, p) => a + p.size, 0) };
}
