/** The one registry of methods the trainer can run: plain values, no global registration. */
import { AdaptorkitError } from '@adaptorkit/core';
import { frozenEntry, fullEntry, iaaEntry } from './iaa.js';
import { mmaEntry } from './mma.js';
import type { MethodEntry } from './types.js';

export const METHODS: readonly MethodEntry[] = [frozenEntry, fullEntry, iaaEntry, mmaEntry];

export function methodByName(name: string): MethodEntry {
  const m = METHODS.find((e) => e.name === name);
  if (!m) throw new AdaptorkitError('INVALID_CONFIG', `method.name: unknown method '${name}' (allowed: ${METHODS.map((e) => e.name).join(', ')})`);
  return m;
}

export type { Bases, MethodEntry, TrainSystem } from './types.js';
