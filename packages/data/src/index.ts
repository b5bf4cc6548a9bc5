// @adaptorkit/data — ShapesWorld, readers for LLaVA / RefCOCO / caption data, image decoding, batching.
export * from './tokenizer.js';
export * from './shapesworld/world.js';
export * from './shapesworld/render.js';
export * from './shapesworld/text.js';
export * from './shapesworld/tasks.js';
export * from './shapesworld/generate.js';
export * from './scoring.js';
export * from './baselines.js';
export * from './batching.js';
export * from './readers/issues.js';
export * from './readers/paths.js';
export * from './readers/records.js';
export * from './readers/image.js';
export * from './readers/datasets.js';
export * from './readers/open-inside.js';
