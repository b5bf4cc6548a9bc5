import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, initBackend, Parameter, tf, trainLoop } from '../index.js';

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

/** w [3] fitting y = x . [1, -2, 3] on 8 fixed points; loss of rows [from, to). */
function problem(): { w: Parameter; loss: (from: number, to: number) => tf.Scalar } {
  const w = new Parameter([3], { kind: 'zeros' });
  const x = tf.tensor2d([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1], [2, 0, 1]]);
  const y = tf.matMul(x, tf.tensor2d([[1], [-2], [3]]));
  const loss = (from: number, to: number): tf.Scalar =>
    tf.mean(tf.square(tf.sub(tf.matMul(tf.slice(x, [from, 0], [to - from, 3]), tf.reshape(w.value, [3, 1])), tf.slice(y, [from, 0], [to - from, 1])))) as tf.Scalar;
  return { w, loss };
}

describe('trainLoop (core)', () => {
  it('fits a toy problem; two accumulated half-batches give the same weights as the whole batch', async () => {
    const a = problem();
    const ra = await trainLoop({ named: [['w', a.w]], loss: () => a.loss(0, 8), steps: 30, lr: 0.1, schedule: 'constant' });
    expect(ra.losses[29]!).toBeLessThan(ra.losses[0]! * 0.1);
    const b = problem();
    await trainLoop({ named: [['w', b.w]], loss: (_s, micro) => b.loss(4 * micro, 4 * micro + 4), steps: 30, lr: 0.1, schedule: 'constant', accumulation: 2 });
    const wa = a.w.value.dataSync();
    const wb = b.w.value.dataSync();
    wa.forEach((v, i) => expect(wb[i]!).toBeCloseTo(v, 5));
    ra.optimizer.dispose();
  });

  it('stops on a non-finite loss, naming the step; onStep can stop early', async () => {
    const p = problem();
    await expect(trainLoop({ named: [['w', p.w]], loss: (s) => (s === 2 ? tf.scalar(Number.NaN) : p.loss(0, 8)), steps: 5, lr: 0.1 })).rejects.toThrow(/loss became NaN at step 3/);
    const r = await trainLoop({ named: [['w', p.w]], loss: () => p.loss(0, 8), steps: 10, lr: 0.1, onStep: ({ step }) => step === 4 });
    expect(r.stepsRun).toBe(4);
    expect(r.stoppedEarly).toBe(true);
    r.optimizer.dispose();
  });

  it('a loss that throws on a later micro-batch leaves no accumulated gradient behind', async () => {
    const p = problem();
    const opt = new AdamW([p.w], { lr: 0.1 });
    const before = tf.memory().numTensors;
    const boom = (_s: number, micro: number): tf.Scalar => {
      if (micro === 1) throw new Error('bad batch');
      return p.loss(0, 4);
    };
    await expect(trainLoop({ named: [['w', p.w]], loss: boom, steps: 3, lr: 0.1, accumulation: 2, optimizer: opt })).rejects.toThrow(/bad batch/);
    expect(tf.memory().numTensors).toBe(before);
    opt.dispose();
  });
});
