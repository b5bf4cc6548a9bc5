import { describe, expect, it } from 'vitest';
import { bucketBatches, collate, encodeExample, encodeSegments, IGNORE_INDEX, stackInputs, streamBatches } from './batching.js';
import { ShapesWorld } from './shapesworld/generate.js';

const world = new ShapesWorld({ seed: 3 });
const tok = world.tokenizer;

describe('batching', () => {
  it('labels only the answer and EOS, and records placeholder positions', () => {
    const e = encodeExample(tok, { prompt: '<image> what colour is the circle?', answer: 'red' });
    const ids = [...e.inputIds];
    expect(ids[0]).toBe(tok.bosId);
    expect(ids[1]).toBe(tok.tokenToId('<image>'));
    expect(ids.slice(-2)).toEqual([tok.tokenToId('red'), tok.eosId]);
    expect([...e.labels]).toEqual(ids.map((id, i) => (i >= ids.length - 2 ? id : IGNORE_INDEX)));
    expect(e.placeholders).toEqual([{ token: '<image>', position: 1 }]);
    expect(() => encodeSegments(tok, [{ text: 'a <image>', loss: true }])).toThrow(/placeholder/);
    expect(() => encodeExample(tok, { prompt: 'what is two plus two?', answer: 'four' }, { maxLength: 3 })).toThrow(/exceed maxLength 3/);
  });

  it('pads right or left and shifts placeholders', () => {
    const a = encodeExample(tok, { prompt: '<image> how many objects are there?', answer: 'two' });
    const b = encodeExample(tok, { prompt: 'what is one plus one?', answer: 'two' });
    const r = collate([a, b], { padId: tok.padId, padToMultipleOf: 8 });
    const T = r.shape[1];
    expect(T % 8).toBe(0);
    expect(r.inputIds.length).toBe(2 * T);
    expect([...r.attentionMask.slice(T, 2 * T)].filter((x) => x === 1).length).toBe(b.inputIds.length);
    expect(r.labels[T + b.inputIds.length]).toBe(IGNORE_INDEX);
    const l = collate([a, b], { padId: tok.padId, padSide: 'left' });
    const Tl = l.shape[1];
    expect(l.placeholders).toEqual([{ token: '<image>', row: 0, position: 1 + Tl - a.inputIds.length }]);
    expect(l.inputIds[l.placeholders[0]!.position]).toBe(tok.tokenToId('<image>'));
  });

  it('buckets by length, deterministically, covering every index once', () => {
    const lengths = Array.from({ length: 1000 }, (_, i) => (i * 7919) % 97);
    const b1 = bucketBatches(lengths, { batchSize: 16, seed: 1 });
    const b2 = bucketBatches(lengths, { batchSize: 16, seed: 1 });
    const b3 = bucketBatches(lengths, { batchSize: 16, seed: 2 });
    expect(b1).toEqual(b2);
    expect(b1).not.toEqual(b3);
    expect(b1.flat().sort((x, y) => x - y)).toEqual(lengths.map((_, i) => i));
    const spread = (b: number[]): number => Math.max(...b.map((i) => lengths[i]!)) - Math.min(...b.map((i) => lengths[i]!));
    const mean = b1.reduce((s, b) => s + spread(b), 0) / b1.length;
    expect(mean).toBeLessThan(10); // random batches would spread ~85
  });

  it('streams batches from an async source with bounded buffering', async () => {
    const examples = world.task('instruct', 'train', 300);
    async function* source() {
      for (const e of examples) yield e;
    }
    let rows = 0, batches = 0;
    for await (const batch of streamBatches(source(), { batchSize: 32, seed: 5, bufferSize: 100, encode: (e) => encodeExample(tok, e), collate: { padId: tok.padId } })) {
      rows += batch.shape[0];
      batches++;
      expect(batch.items.length).toBe(batch.shape[0]);
      // the stacked inputs line up with the placeholders
      const stacks = stackInputs(world, batch.items);
      const nImages = batch.placeholders.filter((p) => p.token === '<image>').length;
      expect(stacks.image?.shape[0] ?? 0).toBe(nImages);
      if (stacks.image) expect(stacks.image.shape).toEqual([nImages, 32, 32, 3]);
    }
    expect(rows).toBe(300);
    expect(batches).toBeGreaterThanOrEqual(10);
  });
});
