import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadImage, writeImagePng } from './image.js';
import { readInsideRoot } from './open-inside.js';

let tmp = '';
let root = '';

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'adaptorkit-open-inside-'));
  root = path.join(tmp, 'data');
  await fs.mkdir(path.join(root, 'images'), { recursive: true });
  await writeImagePng(path.join(root, 'images', 'a.png'), new Float32Array(4 * 4 * 3).fill(0.5), 4);
  await writeImagePng(path.join(tmp, 'outside.png'), new Float32Array(4 * 4 * 3).fill(0.9), 4);
});

describe('dataset files re-checked when opened', () => {
  it('reads a regular file inside the root', async () => {
    expect((await readInsideRoot(root, path.join(root, 'images', 'a.png'))).length).toBeGreaterThan(0);
    const img = await loadImage(path.join(root, 'images', 'a.png'), { size: 4, root });
    expect(img.data[0]).toBeCloseTo(0.5, 1);
  });

  it('refuses a file swapped for a symlink to a file outside the root after the records were checked', async () => {
    const f = path.join(root, 'images', 'swapped.png');
    await fs.copyFile(path.join(root, 'images', 'a.png'), f);
    await loadImage(f, { size: 4, root }); // fine before the swap
    await fs.rm(f);
    await fs.symlink(path.join(tmp, 'outside.png'), f);
    await expect(readInsideRoot(root, f)).rejects.toThrow(/symbolic link/);
    await expect(loadImage(f, { size: 4, root })).rejects.toThrow(/symbolic link/);
  });

  it('refuses a path through a linked folder that leads outside the root', async () => {
    await fs.symlink(tmp, path.join(root, 'up'));
    await expect(readInsideRoot(root, path.join(root, 'up', 'outside.png'))).rejects.toThrow(/outside the dataset root/);
  });

  it('refuses a directory and a FIFO without hanging', async () => {
    await expect(readInsideRoot(root, path.join(root, 'images'))).rejects.toThrow(/not a regular file/);
    const fifo = path.join(root, 'images', 'fifo.png');
    execFileSync('mkfifo', [fifo]);
    await expect(readInsideRoot(root, fifo)).rejects.toThrow(/not a regular file/);
  });
});
