import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generate, initBackend, tf } from '@adaptorkit/core';
import { caption, IMAGE_TOKEN, ShapesWorld } from '@adaptorkit/data';
import { basePath, isShippedBase, loadBases, shippedBasesDir } from './store.js';

describe('shipped ShapesWorld bases', () => {
  it('resolves the shipped names to packages/shapes-bases/models and anything else to a user path', () => {
    expect(isShippedBase('shapesworld')).toBe(true);
    expect(isShippedBase('shapesworld-sceneqa')).toBe(true);
    expect(isShippedBase('./shapesworld-sceneqa')).toBe(false);
    expect(basePath('shapesworld-sceneqa', 'lm')).toBe(path.join(shippedBasesDir('shapesworld-sceneqa'), 'lm'));
    expect(basePath('shapesworld', 'vision')).toBe(path.join(shippedBasesDir(), 'vision'));
    expect(basePath('my/lm', 'lm')).toBe(path.resolve('my/lm'));
  });

  // The scene-QA LM is shipped because it can answer the VQA questions from a scene's caption (what a
  // perfect perception would hand it), which the default LM cannot; this guards the shipped weights.
  it('the scene-QA LM answers VQA questions from a caption, and not without it', async () => {
    await initBackend('auto', { log: false });
    const before = tf.memory().numTensors;
    const { lm, vision } = await loadBases('shapesworld-sceneqa', 'shapesworld-sceneqa');
    expect(vision.config.numLayers).toBe(4);
    vision.dispose();
    const sw = new ShapesWorld({ seed: 0 });
    const tok = sw.tokenizer;
    const test = sw.task('vqa', 'test', 120);
    const accuracy = (withCaption: boolean): number => {
      let hit = 0;
      for (const ex of test) {
        const q = ex.prompt.replace(IMAGE_TOKEN, '').trim();
        const ids = [tok.bosId, ...tok.encode(withCaption ? `${caption(ex.inputs[0]!.scene)} ${q}` : q)];
        const out = generate(lm, ids, { maxNewTokens: 4, stop: [tok.eosId] }).tokens[0]!;
        const end = out.indexOf(tok.eosId);
        if (tok.decode(end < 0 ? out : out.slice(0, end)).split('.')[0]!.trim() === ex.answer) hit++;
      }
      return hit / test.length;
    };
    const withCaption = accuracy(true);
    const questionOnly = accuracy(false);
    lm.dispose();
    // Measured on the first 400 test questions: 77.0% with the caption, 24.3% without.
    expect(withCaption).toBeGreaterThan(0.6);
    expect(withCaption - questionOnly).toBeGreaterThan(0.3);
    expect(tf.memory().numTensors).toBe(before);
  });
});
