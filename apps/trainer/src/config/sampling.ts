/** `--temperature --top-k --top-p --seed` (generate, chat) checked into decoding settings. */
import { AdaptorkitError } from '@adaptorkit/core';
import type { Sampling } from '@adaptorkit/core';

export interface SamplingFlags {
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  maxNewTokens?: number;
}

export function samplingOf(o: SamplingFlags): Sampling {
  const bad = (flag: string, want: string, v: unknown): never => {
    throw new AdaptorkitError('INVALID_ARGUMENT', `${flag} must be ${want}, got ${String(v)}`);
  };
  if (o.maxNewTokens !== undefined && !(Number.isInteger(o.maxNewTokens) && o.maxNewTokens > 0)) bad('--max-new-tokens', 'a positive integer', o.maxNewTokens);
  if (o.temperature !== undefined && !(o.temperature >= 0 && Number.isFinite(o.temperature))) bad('--temperature', 'a number >= 0', o.temperature);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) bad('--top-k', 'a non-negative integer', o.topK);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) bad('--top-p', 'in (0, 1]', o.topP);
  if (o.seed !== undefined && !(Number.isInteger(o.seed) && o.seed >= 0)) bad('--seed', 'a non-negative integer', o.seed);
  if ((o.topK !== undefined || o.topP !== undefined) && !o.temperature) bad('--top-k/--top-p', 'used with --temperature > 0 (decoding is greedy otherwise)', o.topK ?? o.topP);
  const s: Sampling = {};
  if (o.temperature !== undefined) s.temperature = o.temperature;
  if (o.topK !== undefined) s.topK = o.topK;
  if (o.topP !== undefined) s.topP = o.topP;
  if (o.seed !== undefined) s.seed = o.seed;
  return s;
}
