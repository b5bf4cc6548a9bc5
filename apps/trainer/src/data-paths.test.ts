/** Issue 23: a LLaVA run's image files are re-checked when decoded, not only when the records were read. */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import type { HFTokenizer } from '@adaptorkit/core';
import { writeImagePng } from '@adaptorkit/data';
import { llavaSource } from './sources.js';

it('an image swapped for a link to a file outside the dataset root after the run started is refused', async () => {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'adaptorkit-datapaths-'));
  const root = path.join(tmp, 'data');
  await fs.mkdir(path.join(root, 'images'), { recursive: true });
  const px = new Float32Array(8 * 8 * 3).fill(0.5);
  for (let i = 0; i < 3; i++) await writeImagePng(path.join(root, 'images', `${i}.png`), px, 8);
  await writeImagePng(path.join(tmp, 'secret.png'), px, 8);
  const records = [0, 1, 2].map((i) => ({ id: `r${i}`, image: `images/${i}.png`, conversations: [{ from: 'human', value: '<image>\nWhat?' }, { from: 'gpt', value: 'grey' }] }));
  await fs.writeFile(path.join(root, 'chat.json'), JSON.stringify(records));
  const tok = { padId: 0, eosId: 1, vocabSize: 10 } as unknown as HFTokenizer; // prefetch never encodes
  const source = await llavaSource(tok, { json: path.join(root, 'chat.json'), imageRoot: root, onError: 'fail', heldOut: 1, imageSize: 8, normalize: 'none', imageTokenId: 5, cacheImages: 1 });
  const train = source.examples('train', 'llava');
  await source.prefetch([train[0]!]); // decoded while the file is still the checked one
  const second = path.join(root, 'images', '1.png');
  await fs.rm(second);
  await fs.symlink(path.join(tmp, 'secret.png'), second);
  await expect(source.prefetch([train[1]!])).rejects.toThrow(/symbolic link/);
});
