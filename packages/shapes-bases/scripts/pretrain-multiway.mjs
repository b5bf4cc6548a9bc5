// Pretrain the ShapesWorld Multiway base (src/base.ts) and save it as a folder (config.json +
// model.safetensors). The trainer ships the output as packages/shapes-bases/models/shapesworld/multiway:
//
//   npx turbo run build --filter=@adaptorkit/mwa
//   node packages/shapes-bases/scripts/pretrain-multiway.mjs --out packages/shapes-bases/models/shapesworld/multiway [--steps 600] [--batch 32] [--lr 0.002] [--seed 0]
import { initBackend } from '@adaptorkit/core';
import { ShapesWorld } from '@adaptorkit/data';
import { SHAPESWORLD_BASE_COLOUR_GAINS, SHAPESWORLD_BASE_MAX_OBJECTS, SHAPESWORLD_BASE_WORLD, pretrainShapesWorldBase, saveMultiway } from '@adaptorkit/shapes-bases';

const args = process.argv.slice(2);
const opt = (k, d) => {
  const i = args.indexOf(`--${k}`);
  return i >= 0 ? args[i + 1] : d;
};
const out = opt('out');
if (!out) {
  console.error('pass --out <folder> (the trainer ships packages/shapes-bases/models/shapesworld/multiway)');
  process.exit(2);
}
const steps = Number(opt('steps', '600'));
const batchSize = Number(opt('batch', '32'));
const lr = Number(opt('lr', '0.002'));
const seed = Number(opt('seed', '0'));
const backend = await initBackend(opt('backend', 'auto'));
const world = new ShapesWorld(SHAPESWORLD_BASE_WORLD);
const t0 = performance.now();
const { model, losses, valR1 } = pretrainShapesWorldBase(world, { steps, batchSize, lr, seed, maxObjects: SHAPESWORLD_BASE_MAX_OBJECTS, colourGains: SHAPESWORLD_BASE_COLOUR_GAINS, log: (l) => console.log(l) });
const seconds = Math.round((performance.now() - t0) / 1000);
const last = losses.slice(-20);
await saveMultiway(out, model, {
  adaptorkit_pretrain: {
    seed,
    backend: backend.name,
    world: SHAPESWORLD_BASE_WORLD,
    maxObjects: SHAPESWORLD_BASE_MAX_OBJECTS,
    colourGains: SHAPESWORLD_BASE_COLOUR_GAINS,
    command: `node packages/shapes-bases/scripts/pretrain-multiway.mjs --out ${out} --steps ${steps} --batch ${batchSize} --lr ${lr} --seed ${seed}`,
  },
  adaptorkit_final_loss: last.reduce((a, b) => a + b, 0) / last.length,
  adaptorkit_val_r1: valR1,
  adaptorkit_seconds: seconds,
});
console.log(`saved the Multiway base to ${out} in ${seconds} s (source val image->text R@1 ${(100 * valR1).toFixed(1)}%)`);
model.dispose();
