export type {
  AdaptedModel,
  AdaptorMethod,
  BaseLocator,
  GenerativeBase,
  GenerativeMethod,
  GenerativeModel,
  MethodBatch,
  MethodInput,
  MethodKind,
  Paper,
  RetrievalBatch,
  RetrievalEncoder,
  RetrievalMethod,
  RetrievalModel,
  Sampling,
} from './contract.js';
export { parseMethodConfig } from './config.js';
export { knownKeysAt, nearest } from './keys.js';
export { withAdapterFiles } from './adapted.js';
export { frozenBaseline, fullBaseline } from './baselines.js';
export { idsTensor, labelsTensor, imagesPerRow, imageRows, lastPosition, promptRows, withImages } from './batch.js';
