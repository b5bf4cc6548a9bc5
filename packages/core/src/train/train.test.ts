import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/init.js';
import { BottleneckProjector } from '../models/projectors.js';
import type { ForwardContext } from '../nn/context.js';
import { Linear } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { manualSeed } from '../nn/parameter.js';
import { expectBitIdentical, expectFlatTensorCount, snapshotParameters, tinyCausalLM, tinyVisionEncoder } from '../testing/index.js';
import { valueAndGrads } from './grad.js';
import { maskedCrossEntropy, symmetricInfoNCE } from './losses.js';
import { AdamW, clipGradNorm, defaultParamGroups, disposeGrads, globalNorm, GradAccumulator, scheduledLr } from './optim.js';

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

/** A residual bottleneck adapter with a zero-initialised up-projection. */
class Adapter extends Module {
  readonly down: Linear;
  readonly up: Linear;
  constructor(d: number, r: number) {
    super();
    this.down = this.child('down', new Linear(d, r, { bias: true }));
    this.up = this.child('up', new Linear(r, d, { bias: true, init: { kind: 'zeros' } }));
  }
  forward(x: tf.Tensor, _ctx?: ForwardContext): tf.Tensor {
    return tf.tidy(() => tf.add(x, this.up.forward(tf.relu(this.down.forward(x)))));
  }
}

describe('training with a frozen base', () => {
  it('trains an added adapter on a tiny CausalLM: loss falls, frozen weights bit-identical, tensors flat', async () => {
    const lm = tinyCausalLM(11);
    lm.freeze();
    const frozen = snapshotParameters(lm.namedParameters());
    manualSeed(5);
    for (const layer of lm.model.layers) layer.setAdapter('preAttn', new Adapter(32, 8));
    const trainable = lm.namedTrainableParameters();
    expect(trainable.every(([n]) => n.includes('.preAttn.'))).toBe(true);
    expect(lm.countParameters({ trainable: true })).toBe(2 * (32 * 8 + 8 + 8 * 32 + 32));

    // a fixed batch the base gets wrong: learn to continue a repeating pattern
    const ids = tf.tensor2d([[1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3], [5, 6, 7, 5, 6, 7, 5, 6, 7, 5, 6, 7]], [2, 12], 'int32');
    const opt = new AdamW(defaultParamGroups(trainable, 0.01), { lr: 3e-2 });
    const params = trainable.map(([, p]) => p);
    const losses: number[] = [];
    await expectFlatTensorCount(() => {
      const { loss, grads } = valueAndGrads(() => maskedCrossEntropy(lm.forward({ ids }).logits!, ids), params);
      clipGradNorm(grads, 1.0);
      opt.step(grads);
      disposeGrads(grads);
      losses.push(loss);
    }, 20);
    expect(losses[19]!, losses.join(', ')).toBeLessThan(losses[0]! * 0.7);
    for (const [name, p] of lm.namedParameters()) {
      const snap = frozen.get(name);
      if (snap) expectBitIdentical(p.value, snap, name);
    }
    ids.dispose();
    opt.dispose();
    lm.dispose();
  });

  it('trains a head on a frozen VisionEncoder: loss falls, encoder bit-identical', () => {
    const vis = tinyVisionEncoder(12);
    vis.freeze();
    const frozen = snapshotParameters(vis.namedParameters());
    manualSeed(3);
    const head = new BottleneckProjector(32, 16, 2, 'gelu');
    const pixels = tf.randomNormal([8, 16, 16, 3], 0, 1, 'float32', 1);
    const labels = tf.tensor1d([0, 1, 0, 1, 1, 0, 1, 0], 'int32');
    const opt = new AdamW(head, { lr: 1e-2, weightDecay: 0 });
    const losses: number[] = [];
    for (let i = 0; i < 30; i++) {
      const { loss, grads } = valueAndGrads(
        () =>
          tf.tidy(() => {
            const logits = head.forward(vis.forward(pixels).pooled) as tf.Tensor2D; // [8, 2]
            return tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 2), logits) as tf.Scalar;
          }),
        head.trainableParameters(),
      );
      opt.step(grads);
      disposeGrads(grads);
      losses.push(loss);
    }
    expect(losses[29]!).toBeLessThan(losses[0]! * 0.5);
    for (const [name, p] of vis.namedParameters()) expectBitIdentical(p.value, frozen.get(name)!, name);
    tf.dispose([pixels, labels]);
    opt.dispose();
    head.dispose();
    vis.dispose();
  });

  it('refuses frozen parameters in the optimizer and in valueAndGrads', () => {
    const lm = tinyCausalLM(0);
    lm.freeze();
    expect(() => new AdamW(lm.parameters(), { lr: 1 })).toThrow(/frozen parameter/);
    expect(() => valueAndGrads(() => tf.scalar(0), lm.parameters())).toThrow(/frozen parameter/);
    lm.dispose();
  });

  it('gives zero gradients when the loss depends on some or none of the parameters (an all-text batch, projector-only)', () => {
    const a = new Linear(3, 2);
    const b = new Linear(3, 2);
    const x = tf.ones([1, 3]);
    const before = tf.memory().numTensors;
    // depends on a only: b gets zeros
    const some = valueAndGrads(() => tf.sum(a.forward(x)) as tf.Scalar, [...a.trainableParameters(), ...b.trainableParameters()]);
    for (const p of b.trainableParameters()) expect(Array.from(some.grads.get(p)!.dataSync())).toEqual(new Array(p.value.size).fill(0));
    expect(Array.from(some.grads.get(a.trainableParameters()[0]!)!.dataSync()).some((v) => v !== 0)).toBe(true);
    disposeGrads(some.grads);
    // depends on none (tfjs' variableGrads throws here): the loss value and zeros for every parameter
    const none = valueAndGrads(() => tf.mul(tf.sum(x), 0.5) as tf.Scalar, a.trainableParameters());
    expect(none.loss).toBeCloseTo(1.5, 6);
    for (const p of a.trainableParameters()) expect(Array.from(none.grads.get(p)!.dataSync())).toEqual(new Array(p.value.size).fill(0));
    disposeGrads(none.grads);
    expect(() => valueAndGrads(() => a.forward(x) as unknown as tf.Scalar, a.trainableParameters())).toThrow(/loss must be a scalar, got shape \[1, 2\]/);
    expect(tf.memory().numTensors).toBe(before);
    // other errors still propagate
    expect(() => valueAndGrads(() => { throw new Error('boom'); }, a.trainableParameters())).toThrow('boom');
    tf.dispose([x]);
    a.dispose();
    b.dispose();
  });
});

describe('AdamW', () => {
  it('matches the PyTorch AdamW update computed by hand', () => {
    manualSeed(0);
    const lin = new Linear(1, 1, { init: { kind: 'constant', value: 1 } });
    const p = lin.weight;
    const opt = new AdamW([{ params: [p], weightDecay: 0.1 }], { lr: 0.1, betas: [0.9, 0.999], eps: 1e-8 });
    // two steps with gradients 0.5 then -1
    let w = 1;
    let m = 0;
    let v = 0;
    [0.5, -1].forEach((g, i) => {
      const t = i + 1;
      w *= 1 - 0.1 * 0.1;
      m = 0.9 * m + 0.1 * g;
      v = 0.999 * v + 0.001 * g * g;
      w -= (0.1 / (1 - 0.9 ** t)) * (m / (Math.sqrt(v) / Math.sqrt(1 - 0.999 ** t) + 1e-8));
      const grad = tf.tensor2d([[g]]);
      opt.step(new Map([[p, grad]]));
      grad.dispose();
    });
    expect(p.value.dataSync()[0]).toBeCloseTo(w, 6);
    opt.dispose();
    lin.dispose();
  });

  it('puts biases and 1-D tensors in the no-decay group', () => {
    const lm = tinyCausalLM(0, { attentionBias: true });
    const groups = defaultParamGroups(lm.namedParameters(), 0.05);
    const noDecay = groups.find((g) => g.name === 'no_decay')!;
    expect(noDecay.weightDecay).toBe(0);
    expect(noDecay.params.every((p) => p.shape.length === 1)).toBe(true);
    expect(noDecay.params.length).toBe(2 * 2 + 2 * 3 + 1); // norms + q/k/v biases + final norm
    lm.dispose();
  });

  it('saves and restores its state', () => {
    const lin = new Linear(2, 2);
    const opt = new AdamW([lin.weight], { lr: 0.1 });
    const g = tf.ones([2, 2]);
    opt.step(new Map([[lin.weight, g]]));
    const st = opt.state();
    const opt2 = new AdamW([lin.weight], { lr: 0.1 });
    opt2.loadState({ step: st.step, moments: st.moments.map((s) => ({ m: s.m.clone(), v: s.v.clone() })) });
    expect(opt2.stepCount).toBe(1);
    expect(Array.from(opt2.state().moments[0]!.m.dataSync())).toEqual(Array.from(st.moments[0]!.m.dataSync()));
    g.dispose();
    opt.dispose();
    opt2.dispose();
    lin.dispose();
  });
});

describe('schedules, clipping, accumulation', () => {
  it('warms up linearly then follows a cosine to the floor', () => {
    const o = { lr: 1, totalSteps: 110, warmupSteps: 10, minLrRatio: 0.1 };
    expect(scheduledLr(0, o)).toBeCloseTo(0.1);
    expect(scheduledLr(9, o)).toBeCloseTo(1);
    expect(scheduledLr(10, o)).toBeCloseTo(1);
    expect(scheduledLr(60, o)).toBeCloseTo(0.55);
    expect(scheduledLr(110, o)).toBeCloseTo(0.1);
    expect(scheduledLr(5, { lr: 2, totalSteps: 10, kind: 'constant' })).toBe(2);
  });

  it('clips by global norm', () => {
    const a = new Linear(1, 2);
    const g = new Map([[a.weight, tf.tensor2d([[3, 4]])]]);
    expect(clipGradNorm(g, 1)).toBeCloseTo(5);
    expect(globalNorm(g)).toBeCloseTo(1, 4);
    disposeGrads(g);
    a.dispose();
  });

  it('accumulated micro-batch gradients equal the full-batch gradient', () => {
    const lm = tinyCausalLM(21);
    const params = lm.trainableParameters().slice(0, 6);
    const ids = tf.tensor2d([[1, 2, 3, 4], [4, 3, 2, 1]], [2, 4], 'int32');
    const lossOf = (x: tf.Tensor) => () => maskedCrossEntropy(lm.forward({ ids: x }).logits!, x);
    const full = valueAndGrads(lossOf(ids), params);
    const acc = new GradAccumulator();
    for (let b = 0; b < 2; b++) {
      const one = tf.slice(ids, [b, 0], [1, 4]);
      const r = valueAndGrads(lossOf(one), params);
      acc.add(r.grads);
      disposeGrads(r.grads);
      one.dispose();
    }
    const mean = acc.take();
    for (const p of params) {
      const diff = tf.max(tf.abs(tf.sub(mean.get(p)!, full.grads.get(p)!))).dataSync()[0]!;
      expect(diff).toBeLessThan(1e-6);
    }
    disposeGrads(mean);
    disposeGrads(full.grads);
    ids.dispose();
    lm.dispose();
  });
});

describe('losses', () => {
  it('masked cross entropy ignores -100 labels and shifts by one', () => {
    // logits over 3 classes for 3 positions; labels shifted: position t predicts label t+1
    const logits = tf.tensor3d([[[1, 2, 3], [0, 0, 0], [5, 1, 1]]]);
    const labels = tf.tensor2d([[-100, 2, -100]], [1, 3], 'int32');
    const loss = maskedCrossEntropy(logits, labels);
    const expected = -(3 - Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)));
    expect(loss.dataSync()[0]).toBeCloseTo(expected, 5);
    const none = maskedCrossEntropy(logits, tf.fill([1, 3], -100, 'int32'));
    expect(Math.abs(none.dataSync()[0]!)).toBe(0);
    tf.dispose([logits, labels, loss, none]);
  });

  it('symmetric InfoNCE is low for matched pairs and ln(N) for uninformative ones', () => {
    const a = tf.eye(4);
    const low = symmetricInfoNCE(a, a, 100);
    expect(low.dataSync()[0]).toBeLessThan(1e-3);
    const flat = symmetricInfoNCE(tf.ones([4, 3]), tf.ones([4, 3]), 10);
    expect(flat.dataSync()[0]).toBeCloseTo(Math.log(4), 5);
    tf.dispose([a, low, flat]);
  });
});
