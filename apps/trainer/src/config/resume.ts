/**
 * What `--resume` may change. A resumed run continues the same optimisation, so its config must be
 * the one the run started with, except for these keys (also listed in the trainer README):
 *   train.steps         train longer (or stop earlier); the lr schedule is recomputed for the new length
 *   train.evalEvery     how often the val split is scored
 *   train.saveEvery     how often a checkpoint is written
 *   train.keepCheckpoints  how many checkpoints are kept
 *   data.evalExamples, data.textEvalExamples  how much the final evaluation scores
 *   backend             where the rest runs (another machine may have another backend)
 *   name, outputDir     the run folder itself (it may have been moved)
 * Any other difference is refused, naming each key with its old and new value.
 */
import { AdaptorkitError } from '@adaptorkit/core';
import type { RunConfig } from '../config.js';

export const RESUMABLE_KEYS = [
  'train.steps',
  'train.evalEvery',
  'train.saveEvery',
  'train.keepCheckpoints',
  'data.evalExamples',
  'data.textEvalExamples',
  'backend',
  'name',
  'outputDir',
] as const;

/** Leaves of a JSON-like value as dotted paths (arrays compared whole). */
function leaves(v: unknown, at: string, out: Map<string, string>): Map<string, string> {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) leaves(x, at ? `${at}.${k}` : k, out);
  } else if (v !== undefined) out.set(at, JSON.stringify(v));
  return out;
}

const resumable = (key: string): boolean => RESUMABLE_KEYS.some((k) => key === k || key.startsWith(`${k}.`));

/** Throws INVALID_CONFIG when `now` differs from the run's saved config in a key that may not change on resume. */
export function checkResumeConfig(saved: RunConfig, now: RunConfig, where: string): void {
  const a = leaves(saved, '', new Map());
  const b = leaves(now, '', new Map());
  const keys = [...new Set([...a.keys(), ...b.keys()])].filter((k) => !resumable(k)).sort();
  const changed = keys.filter((k) => a.get(k) !== b.get(k));
  if (!changed.length) return;
  const lines = changed.map((k) => `  ${k}: was ${a.get(k) ?? '(unset)'}, now ${b.get(k) ?? '(unset)'}`);
  throw new AdaptorkitError(
    'INVALID_CONFIG',
    `--resume: the config differs from the one ${where} started with:\n${lines.join('\n')}\n` +
      `only ${RESUMABLE_KEYS.join(', ')} may change on resume; undo the change, or start a new run (another name) from this config`,
  );
}
