/**
 * Checkpoints of a run folder: checkpoints/step-NNNNNN/ = trainable.safetensors +
 * optimizer.safetensors + state.json, written into step-NNNNNN.tmp-PID and renamed, so a crash
 * never leaves half of one under the final name. Only the newest train.keepCheckpoints are kept;
 * temp folders a killed writer left behind are removed when the next writer takes the run lock.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { AdamW, AdaptorkitError, readSafetensors, tf, writeSafetensors } from '@adaptorkit/core';
import type { Parameter } from '@adaptorkit/core';
import { writeJsonAtomic } from '../fsutil.js';
import { readCheckpointState, type CheckpointState } from './files.js';

const STEP_DIR = /^step-\d{6,}$/;

export const checkpointName = (step: number): string => `step-${String(step).padStart(6, '0')}`;

export async function saveCheckpoint(dir: string, step: number, named: [string, Parameter][], opt: AdamW): Promise<string> {
  const final = path.join(dir, 'checkpoints', checkpointName(step));
  const tmp = `${final}.tmp-${process.pid}`;
  try {
    await fs.rm(tmp, { recursive: true, force: true });
    await fs.mkdir(tmp, { recursive: true });
    await writeSafetensors(path.join(tmp, 'trainable.safetensors'), new Map(named.map(([n, p]) => [n, p.value as tf.Tensor])));
    const st = opt.state();
    const moments = new Map<string, tf.Tensor>();
    st.moments.forEach((m, i) => {
      moments.set(`${i}.m`, m.m);
      moments.set(`${i}.v`, m.v);
    });
    await writeSafetensors(path.join(tmp, 'optimizer.safetensors'), moments);
    await writeJsonAtomic(path.join(tmp, 'state.json'), { step: st.step, losses: step } satisfies CheckpointState);
    await fs.rm(final, { recursive: true, force: true });
    await fs.rename(tmp, final);
  } catch (e) {
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    if (e instanceof AdaptorkitError) throw e;
    throw new AdaptorkitError('IO_ERROR', `writing checkpoint ${final} failed: ${(e as Error).message}`, { cause: e });
  }
  return final;
}

/** The run's checkpoint folders (step-NNNNNN), oldest first. */
export async function listCheckpoints(dir: string): Promise<string[]> {
  const root = path.join(dir, 'checkpoints');
  let names: string[];
  try {
    names = await fs.readdir(root);
  } catch {
    return [];
  }
  return names
    .filter((n) => STEP_DIR.test(n))
    .sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)))
    .map((n) => path.join(root, n));
}

export async function latestCheckpoint(dir: string): Promise<string | undefined> {
  const all = await listCheckpoints(dir);
  return all[all.length - 1];
}

/** Keep the newest `keep` checkpoints (0 keeps all); returns the removed folders. */
export async function pruneCheckpoints(dir: string, keep: number): Promise<string[]> {
  if (keep <= 0) return [];
  const all = await listCheckpoints(dir);
  const old = all.slice(0, Math.max(0, all.length - keep));
  for (const c of old) await fs.rm(c, { recursive: true, force: true });
  return old;
}

/**
 * Remove what killed writers left: checkpoints/step-N.tmp-PID folders and `.name.tmp-*` files of
 * atomic writes. Call it holding the run lock (no other writer can be mid-write then).
 */
export async function cleanTempFiles(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const sub of [path.join(dir, 'checkpoints'), dir]) {
    let names: string[];
    try {
      names = await fs.readdir(sub);
    } catch {
      continue;
    }
    for (const n of names) {
      if (/^step-\d+\.tmp-\d+$/.test(n) || /^\..+\.tmp-\d+-[0-9a-f]+$/.test(n)) {
        await fs.rm(path.join(sub, n), { recursive: true, force: true });
        removed.push(path.join(sub, n));
      }
    }
  }
  return removed;
}

export async function loadCheckpoint(ckpt: string, named: [string, Parameter][], opt: AdamW, totalSteps: number): Promise<number> {
  const state = await readCheckpointState(ckpt, totalSteps);
  const { tensors } = await readSafetensors(path.join(ckpt, 'trainable.safetensors'));
  const { tensors: mom } = await readSafetensors(path.join(ckpt, 'optimizer.safetensors'));
  try {
    for (const [n, p] of named) {
      const t = tensors.get(n);
      if (!t) throw new AdaptorkitError('MISSING_TENSOR', `checkpoint ${ckpt} has no tensor '${n}' (was it written by a different config?)`);
      p.assign(t, n);
    }
    const moments = named.map((_, i) => ({ m: mom.get(`${i}.m`), v: mom.get(`${i}.v`) }));
    if (moments.some((m) => !m.m || !m.v)) throw new AdaptorkitError('BAD_FILE', `checkpoint ${ckpt}: optimizer state does not match the trainable parameters`);
    opt.loadState({ step: state.step, moments: moments as { m: tf.Tensor; v: tf.Tensor }[] });
  } finally {
    tf.dispose([...tensors.values(), ...mom.values()]);
  }
  return state.step;
}
