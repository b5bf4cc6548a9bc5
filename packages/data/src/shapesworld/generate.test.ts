import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ShapesWorld, type ShapesWorldData } from './generate.js';

function digest(world: ShapesWorld, data: ShapesWorldData, renderEvery = 1): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(data.tasks));
  h.update(JSON.stringify(data.retrieval));
  h.update(JSON.stringify(data.corpus));
  let k = 0;
  for (const splits of Object.values(data.tasks)) {
    for (const ex of [...splits.train, ...splits.val, ...splits.test]) {
      for (const input of ex.inputs) {
        if (k++ % renderEvery === 0) h.update(new Uint8Array(world.render(input).buffer));
      }
    }
  }
  return h.digest('hex');
}

describe('ShapesWorld generation', () => {
  it('generates the default splits (and renders every input) in under 30 s', () => {
    const t0 = performance.now();
    const world = new ShapesWorld({ seed: 1 });
    const data = world.generate();
    const t1 = performance.now();
    let inputs = 0;
    for (const splits of Object.values(data.tasks)) {
      for (const ex of [...splits.train, ...splits.val, ...splits.test]) {
        for (const input of ex.inputs) {
          world.render(input);
          inputs++;
        }
      }
    }
    for (const p of [...data.retrieval.train, ...data.retrieval.val, ...data.retrieval.test]) world.renderImage(p.scene);
    const t2 = performance.now();
    const examples = Object.values(data.tasks).reduce((s, t) => s + t.train.length + t.val.length + t.test.length, 0);
    console.log(`[data] default splits: ${examples} examples + ${data.retrieval.train.length + data.retrieval.val.length + data.retrieval.test.length} retrieval pairs + ${data.corpus.train.length + data.corpus.heldout.length} corpus lines generated in ${((t1 - t0) / 1000).toFixed(2)} s; rendering all ${inputs} task inputs + retrieval images took ${((t2 - t1) / 1000).toFixed(2)} s; total ${((t2 - t0) / 1000).toFixed(2)} s`);
    expect(t2 - t0).toBeLessThan(30_000);
    expect(data.tasks.vqa.train.length).toBe(6000);
  });

  it('is byte-identical for the same seed and differs for different seeds', () => {
    const sizes = { caption: { train: 200, val: 20, test: 20 }, vqa: { train: 300, val: 20, test: 20 }, grounding: { train: 200, val: 20, test: 20 },
      common: { train: 200, val: 20, test: 20 }, instruct: { train: 200, val: 20, test: 20 }, text: { train: 200, val: 20, test: 20 },
      retrieval: { train: 100, val: 10, test: 10 }, corpus: { train: 500, heldout: 50 } };
    const a = new ShapesWorld({ seed: 7, sizes }), b = new ShapesWorld({ seed: 7, sizes }), c = new ShapesWorld({ seed: 8, sizes });
    const da = digest(a, a.generate()), db = digest(b, b.generate()), dc = digest(c, c.generate());
    expect(da).toBe(db);
    expect(dc).not.toBe(da);
    // each stream is independent of the others' sizes: a bigger train split leaves test unchanged
    const bigger = new ShapesWorld({ seed: 7, sizes: { ...sizes, vqa: { train: 400, val: 20, test: 20 } } });
    expect(JSON.stringify(bigger.task('vqa', 'test'))).toBe(JSON.stringify(a.task('vqa', 'test')));
    // renders are pure functions of the scene
    const ex = a.task('common', 'val', 5)[4]!;
    for (const input of ex.inputs) expect(Buffer.from(a.render(input).buffer).equals(Buffer.from(b.render(input).buffer))).toBe(true);
  });

  it('validates its config and names the bad field', () => {
    expect(() => new ShapesWorld({ image: { size: 4 } })).toThrow(/image\.size/);
    expect(() => new ShapesWorld({ sizes: { vqa: { train: -1 } } })).toThrow(/sizes\.vqa\.train/);
  });
});
