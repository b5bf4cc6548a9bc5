/** The one registry of methods the trainer can run: plain values, no global registration. */
import { AdaptorkitError } from '@adaptorkit/core';
import { damcDecoupledEntry, damcNaiveEntry } from './damc.js';
import { frozenEntry, fullEntry, iaaEntry } from './iaa.js';
import { mmaEntry } from './mma.js';
import { mwaEntry } from './mwa.js';
import type { AnyMethodEntry, MethodEntry, RetrievalMethodEntry } from './types.js';

export const METHODS: readonly AnyMethodEntry[] = [frozenEntry, fullEntry, iaaEntry, mmaEntry, mwaEntry, damcNaiveEntry, damcDecoupledEntry];

function findMethod(name: string): AnyMethodEntry {
  const m = METHODS.find((e) => e.name === name);
  if (!m) throw new AdaptorkitError('INVALID_CONFIG', `method.name: unknown method '${name}' (allowed: ${METHODS.map((e) => e.name).join(', ')})`);
  return m;
}

/** A generative method (trained on instruction batches, scored by generation). */
export function methodByName(name: string): MethodEntry {
  const m = findMethod(name);
  if (m.kind === 'retrieval') {
    throw new AdaptorkitError('UNSUPPORTED', `method '${name}' is a retrieval method: it trains on image-text pairs (data.task: retrieval) through runRetrievalTrain, not through the generative path`);
  }
  return m;
}

/** The retrieval entry named `name`, or undefined when the method is generative (unknown names throw). */
export function retrievalMethod(name: string): RetrievalMethodEntry | undefined {
  const m = findMethod(name);
  return m.kind === 'retrieval' ? m : undefined;
}

export type { AnyMethodEntry, Bases, MethodEntry, RetrievalBatch, RetrievalEncoder, RetrievalMethodEntry, RetrievalSystem, Sampling, TrainSystem } from './types.js';
