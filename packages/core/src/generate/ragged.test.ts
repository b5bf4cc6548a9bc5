import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/init.js';
import { leftPadRows, padKeyMask } from './ragged.js';

beforeAll(async () => {
  await initBackend('cpu', { log: false });
});

describe('ragged prompts', () => {
  it('left-pads rows and masks exactly the pad keys', () => {
    const { ids, pads } = leftPadRows([[5, 6, 7], [8]], 0);
    expect(pads).toEqual([0, 2]);
    expect(Array.from(ids.dataSync())).toEqual([5, 6, 7, 0, 0, 8]);
    const m = padKeyMask(pads, 4, 1); // a prefix token at key 0, then the padded prompt
    expect(m.shape).toEqual([2, 1, 1, 4]);
    expect(Array.from(m.dataSync())).toEqual([0, 0, 0, 0, 0, -1e9, -1e9, 0]);
    expect(() => leftPadRows([], 0, 'x')).toThrow(/x: no prompts given/);
    expect(() => leftPadRows([[], []], 0)).toThrow(/every prompt is empty/);
    tf.dispose([ids, m]);
  });
});
