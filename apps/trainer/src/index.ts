/** @adaptorkit/trainer: the pieces behind the `adaptorkit` CLI, usable from code. */
export * from './config.js';
export * from './config-util.js';
export * from './run-format.js';
export { trainLoop, type LoopOptions, type LoopResult } from '@adaptorkit/core';
export { runTrain, loadRunConfig, type TrainOptions } from './train.js';
export { acquireRunLock, runLockHolder, type LockHolder, type ReleaseRunLock } from './run/lock.js';
export { runDirOf } from './run/folder.js';
export { buildBatch, type MMBatch, type MMInput, type BatchOptions } from './vl/batch.js';
export { shapesLMConfig, shapesVisionConfig, TextTower } from '@adaptorkit/shapes-bases';
export { pretrainLM, pretrainVision, sceneQALoss, lmPretrainStream, pixelsTensor, SHAPES_PIXEL_MEAN, SHAPES_PIXEL_STD } from '@adaptorkit/shapes-bases';
export { loadBases, saveLM, saveVision, shippedBasesDir, basePath, isShippedBase, SHIPPED_BASES } from '@adaptorkit/shapes-bases';
export * from './report/index.js';
export { writeTinyHF, TINY_FAMILIES, type TinyFamily, type TinyHF } from './tiny-hf.js';
export { planTarget, planRun } from './plan-cmd.js';
