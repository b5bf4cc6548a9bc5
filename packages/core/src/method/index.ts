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
export { parseMethodConfig, closest } from './config.js';
export { withAdapterFiles } from './adapted.js';
export { frozenBaseline, fullBaseline } from './baselines.js';
export { idsTensor, labelsTensor, imagesPerRow, imageRows, lastPosition, promptRows, withImages } from './batch.js';
