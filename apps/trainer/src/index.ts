/** @adaptorkit/trainer: the pieces behind the `adaptorkit` CLI, usable from code. */
export * from './config.js';
export * from './config-util.js';
export * from './run-format.js';
export { trainLoop, type LoopOptions, type LoopResult } from './loop.js';
export { runTrain, loadRunConfig, type TrainOptions } from './train.js';
export { acquireRunLock, runLockHolder, type LockHolder, type ReleaseRunLock } from './run/lock.js';
export { runDirOf } from './run/folder.js';
export { buildBatch, type MMBatch, type MMInput, type BatchOptions } from './vl/batch.js';
export { shapesLMConfig, shapesVisionConfig, TextTower } from './shapes/bases.js';
export { pretrainLM, pretrainVision, sceneQALoss, lmPretrainStream, pixelsTensor, SHAPES_PIXEL_MEAN, SHAPES_PIXEL_STD } from './shapes/pretrain.js';
export { loadBases, saveLM, saveVision, shippedBasesDir, basePath, isShippedBase, SHIPPED_BASES } from './shapes/store.js';
export * from './report/index.js';
export { writeTinyHF, TINY_FAMILIES, type TinyFamily, type TinyHF } from './tiny-hf.js';
export { planTarget, planRun } from './plan-cmd.js';
