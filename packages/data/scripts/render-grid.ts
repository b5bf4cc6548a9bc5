// Renders a grid of ShapesWorld scenes to assets/shapesworld-grid.png (for the README).
// Run: npm run -w @adaptorkit/data sample-grid
// (bundled from source with esbuild, which tsup ships, so it runs on plain Node 20 without a build)
// Row 1-3: default 32x32 images, shown 3x enlarged (nearest neighbour) so every pixel is visible.
// Row 4: the same first scenes rendered natively at 96x96 (the renderer takes any size).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { Rng } from '@adaptorkit/core';
import { caption, renderImage, sampleScene } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'assets', 'shapesworld-grid.png'); // here = dist/, after bundling
const cols = 8, rows = 3, cell = 96, gap = 4;
const rng = new Rng(2024);
const scenes = Array.from({ length: cols * rows }, () => sampleScene(rng));

const W = cols * (cell + gap) + gap, H = (rows + 1) * (cell + gap) + gap;
const canvas = new Uint8Array(W * H * 3).fill(255);
function blit(img: Float32Array, size: number, scale: number, ox: number, oy: number): void {
  for (let y = 0; y < size * scale; y++) {
    for (let x = 0; x < size * scale; x++) {
      const s = (Math.floor(y / scale) * size + Math.floor(x / scale)) * 3;
      const d = ((oy + y) * W + ox + x) * 3;
      for (let c = 0; c < 3; c++) canvas[d + c] = Math.round((img[s + c] as number) * 255);
    }
  }
}
scenes.forEach((scene, i) => {
  const r = Math.floor(i / cols), c = i % cols;
  blit(renderImage(scene, { size: 32 }), 32, 3, gap + c * (cell + gap), gap + r * (cell + gap));
});
for (let c = 0; c < cols; c++) {
  blit(renderImage(scenes[c]!, { size: 96 }), 96, 1, gap + c * (cell + gap), gap + rows * (cell + gap));
}
mkdirSync(dirname(out), { recursive: true });
const png = await sharp(Buffer.from(canvas), { raw: { width: W, height: H, channels: 3 } }).png({ compressionLevel: 9, palette: true, colours: 64, dither: 0 }).toBuffer();
writeFileSync(out, png);
console.log(`wrote ${out} (${W}x${H}, ${(png.length / 1024).toFixed(1)} KiB)`);
console.log('first row, left to right:');
for (let c = 0; c < cols; c++) console.log(`  ${c + 1}. ${caption(scenes[c]!)}`);
