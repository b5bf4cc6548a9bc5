export * from './errors.js';
export * from './backend/init.js';
export { registerMissingKernels } from './backend/kernels.js';
export { Rng } from './train/rng.js';
