// @adaptorkit/damc — model composition (NaiveMC / DAMC) and mergekit-style merge methods.
export * from './config.js';
export * from './lora.js';
export * from './model.js';
export * from './attach.js';
export * from './compose.js';
export * from './method.js';
export * from './merge/methods.js';
export * from './merge/config.js';
export * from './merge/io.js';
export * from './merge/merge.js';
export * from './merge/sparsify.js';
export * from './merge/plan.js';
export * from './merge/folder.js';
export * from './peft.js';
