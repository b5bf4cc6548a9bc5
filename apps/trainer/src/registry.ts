/**
 * The methods the trainer can run: a list of the method packages' AdaptorMethod values (core's
 * contract), and nothing else. Adding a method is one package and one line here.
 */
import { AdaptorkitError, frozenBaseline, fullBaseline, type AdaptorMethod, type GenerativeMethod, type RetrievalMethod } from '@adaptorkit/core';
import { bottleneckMethod } from '@adaptorkit/bottleneck';
import { damcDecoupledMethod, damcNaiveMethod } from '@adaptorkit/damc';
import { iaaMethod } from '@adaptorkit/iaa';
import { mmaMethod } from '@adaptorkit/mma';
import { mwaMethod } from '@adaptorkit/mwa';

export const METHODS: readonly AdaptorMethod[] = [frozenBaseline(iaaMethod), fullBaseline(iaaMethod), iaaMethod, mmaMethod, mwaMethod, damcNaiveMethod, damcDecoupledMethod, bottleneckMethod];

function findMethod(name: string): AdaptorMethod {
  const m = METHODS.find((e) => e.name === name);
  if (!m) throw new AdaptorkitError('INVALID_CONFIG', `method.name: unknown method '${name}' (allowed: ${METHODS.map((e) => e.name).join(', ')})`);
  return m;
}

/** A generative (or composition) method, trained on instruction batches and scored by generation. */
export function methodByName(name: string): GenerativeMethod {
  const m = findMethod(name);
  if (m.kind === 'retrieval') {
    throw new AdaptorkitError('UNSUPPORTED', `method '${name}' is a retrieval method: it trains on image-text pairs (data.task: retrieval) through runRetrievalTrain, not through the generative path`);
  }
  return m;
}

/** The retrieval method named `name`, or undefined when the method is generative (unknown names throw). */
export function retrievalMethod(name: string): RetrievalMethod | undefined {
  const m = findMethod(name);
  return m.kind === 'retrieval' ? m : undefined;
}
