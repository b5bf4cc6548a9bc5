// @adaptorkit/damc — model composition (NaiveMC / DAMC) and mergekit-style merge methods.
export * from './merge/methods.js';
export * from './merge/config.js';
export * from './merge/io.js';
export * from './merge/merge.js';
