/**
 * train.recompute: layers — each decoder layer recomputed in the backward pass gives the same loss
 * and the same gradients as the stored path, for trainable adapters inside the layers (with
 * dropout, whose masks are replayed) and for a trainable tensor before them; tensors stay flat.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../backend/init.js';
import { compareClose, tinyCausalLM } from '../testing/index.js';
import { valueAndGrads } from '../train/grad.js';
import { maskedCrossEntropy } from '../train/losses.js';
import { Rng } from '../train/rng.js';
import type { ForwardContext } from './context.js';
import { Linear, dropout } from './layers.js';
import { Module } from './module.js';
import type { Parameter } from './parameter.js';
import { manualSeed } from './parameter.js';

class TinyAdapter extends Module {
  readonly down: Linear;
  readonly up: Linear;
  rng = new Rng(5);
  constructor(d: number) {
    super();
    this.down = this.child('down', new Linear(d, 4, { bias: true }));
    this.up = this.child('up', new Linear(4, d, { init: { kind: 'normal', std: 0.2 } }));
  }
  forward(x: tf.Tensor, ctx?: ForwardContext): tf.Tensor {
    return tf.tidy(() => tf.add(x, this.up.forward(dropout(tf.relu(this.down.forward(x)), 0.3, ctx, this.rng))));
  }
}

function setup() {
  const lm = tinyCausalLM(3);
  lm.freeze();
  manualSeed(9);
  const adapters: TinyAdapter[] = [];
  lm.model.layers.at(0).setAdapter('preAttn', (adapters[0] = new TinyAdapter(32)));
  lm.model.layers.at(1).setAdapter('preMlp', (adapters[1] = new TinyAdapter(32)));
  return { lm, adapters };
}

const backends = ['cpu'];
try {
  await initBackend('native', { log: false });
  backends.push('native');
} catch (e) {
  console.log(`[core] recompute tests on the native backend SKIPPED: ${(e as Error).message.split('\n')[0]}`);
}

describe.each(backends)('activation recomputation (recompute: layers) on %s', (backend) => {
  it('sets the backend', async () => {
    await tf.setBackend(backend);
  });

  it('gives the stored path’s losses and gradients, dropout included, with flat tensors', () => {
    const ids = tf.tensor2d([[3, 7, 1, 9, 4, 20, 2, 8], [5, 5, 6, 1, 0, 3, 9, 11]], [2, 8], 'int32');
    const results = (['none', 'layers'] as const).map((mode) => {
      const { lm, adapters } = setup();
      lm.recompute = mode;
      for (const a of adapters) a.rng = new Rng(5);
      const params: Parameter[] = lm.trainableParameters();
      expect(params.length).toBe(6);
      const out: { loss: number; grads: Float32Array[] }[] = [];
      let tensors = -1;
      for (let s = 0; s < 3; s++) {
        const { loss, grads } = valueAndGrads(() => maskedCrossEntropy(lm.forward({ ids, ctx: { training: true } }).logits!, ids), params);
        out.push({ loss, grads: params.map((p) => grads.get(p)!.dataSync().slice() as Float32Array) });
        tf.dispose([...grads.values()]);
        if (s === 1) tensors = tf.memory().numTensors;
        if (s === 2) expect(tf.memory().numTensors).toBe(tensors);
      }
      lm.dispose();
      return out;
    });
    const [stored, recomputedRun] = results as [typeof results[0], typeof results[0]];
    for (let s = 0; s < stored.length; s++) {
      expect(recomputedRun[s]!.loss).toBeCloseTo(stored[s]!.loss, 6);
      stored[s]!.grads.forEach((g, i) => {
        expect(g.some((v) => v !== 0), `grad ${i} is nonzero`).toBe(true);
        const c = compareClose(recomputedRun[s]!.grads[i]!, g, { atol: 1e-6, rtol: 1e-5 });
        expect(c.ok, `step ${s} grad ${i}: ${c.message}`).toBe(true);
      });
    }
    ids.dispose();
  });

  it('keeps fewer tensors alive for the backward pass', () => {
    const ids = tf.tensor2d([[3, 7, 1, 9, 4, 20, 2, 8]], [1, 8], 'int32');
    const held = (['none', 'layers'] as const).map((mode) => {
      const { lm } = setup();
      lm.recompute = mode;
      const params = lm.trainableParameters().map((p) => p.value);
      let peak = 0;
      // the tensors alive right after the forward (what the tape keeps for the backward pass)
      const { value, grads } = tf.engine().gradients(() => {
        const l = maskedCrossEntropy(lm.forward({ ids }).logits!, ids);
        peak = tf.memory().numBytes;
        return l;
      }, params);
      tf.dispose([value, ...grads]);
      lm.dispose();
      return peak;
    });
    expect(held[1]!).toBeLessThan(held[0]!);
    ids.dispose();
  });
});
