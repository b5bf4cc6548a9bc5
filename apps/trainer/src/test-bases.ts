/** Test fixture: tiny seeded ShapesWorld-vocabulary bases (LM + CLIP tower) written in HF layout. */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CausalLM, manualSeed, VisionEncoder } from '@adaptorkit/core';
import { ShapesWorld } from '@adaptorkit/data';
import { saveLM, saveVision } from '@adaptorkit/shapes-bases';

export async function writeTinyBases(prefix: string): Promise<{ tmp: string; lmDir: string; visionDir: string }> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  const vocab = new ShapesWorld({ seed: 0 }).tokenizer.vocabSize;
  manualSeed(1);
  const lm = new CausalLM({ vocabSize: vocab, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKVHeads: 2, maxPositionEmbeddings: 256 });
  const vision = new VisionEncoder({ kind: 'clip', imageSize: 32, patchSize: 8, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4 });
  const lmDir = path.join(tmp, 'bases', 'lm');
  const visionDir = path.join(tmp, 'bases', 'vision');
  await saveLM(lmDir, lm);
  await saveVision(visionDir, vision);
  lm.dispose();
  vision.dispose();
  return { tmp, lmDir, visionDir };
}
