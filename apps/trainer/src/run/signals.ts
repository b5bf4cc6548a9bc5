/**
 * Stop signals during a run: SIGINT, SIGTERM and SIGHUP all ask the run to finish its step, write a
 * checkpoint and end `interrupted` (exit code 128 + the signal's number). A second signal while
 * that happens stops at once, after recording `interrupted` in run.json synchronously.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import * as path from 'node:path';

export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** 128 + the signal number, as a shell reports a process stopped by it (130 for SIGINT). */
export const signalExitCode = (sig: StopSignal): number => 128 + constants.signals[sig];

export interface StopWatch {
  /** The first stop signal received, if any. */
  readonly signal: StopSignal | undefined;
  /** Stop listening (call when the run ends). */
  dispose(): void;
}

/**
 * Listen for stop signals: the first calls `onStop`; a second calls `onForce` (synchronous work
 * only) and exits the process.
 */
export function watchStopSignals(onStop: (sig: StopSignal) => void, onForce: (sig: StopSignal) => void): StopWatch {
  let first: StopSignal | undefined;
  const handler = (sig: StopSignal): void => {
    if (first === undefined) {
      first = sig;
      onStop(sig);
      return;
    }
    try {
      onForce(sig);
    } finally {
      process.exit(signalExitCode(sig));
    }
  };
  const bound = STOP_SIGNALS.map((s) => [s, () => handler(s)] as const);
  for (const [s, h] of bound) process.on(s, h);
  return {
    get signal() {
      return first;
    },
    dispose() {
      for (const [s, h] of bound) process.removeListener(s, h);
    },
  };
}

/** Write a JSON file synchronously (temp + rename): for a process about to exit. */
export function writeJsonSyncAtomic(file: string, value: unknown): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-0`); // named as core's atomic writes, so cleanTempFiles finds it
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, file);
}
