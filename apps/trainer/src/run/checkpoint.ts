/**
 * Checkpoints of a run folder: checkpoints/step-NNNNNN/ holds the trainable parameters
 * (trainable.safetensors), the AdamW moments (optimizer.safetensors) and state.json. Written to a
 * temp folder and renamed, so a crash never leaves half of one.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { AdaptorkitError, readSafetensors, tf, writeSafetensors } from '@adaptorkit/core';
import type { AdamW, Parameter } from '@adaptorkit/core';
import { exists, readJson, writeJsonAtomic } from '../fsutil.js';

interface CheckpointState {
  step: number;
  losses: number;
}

export async function saveCheckpoint(dir: string, step: number, named: [string, Parameter][], opt: AdamW): Promise<string> {
  const final = path.join(dir, 'checkpoints', `step-${String(step).padStart(6, '0')}`);
  const tmp = `${final}.tmp-${process.pid}`;
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
  return final;
}

export async function latestCheckpoint(dir: string): Promise<string | undefined> {
  const root = path.join(dir, 'checkpoints');
  if (!(await exists(root))) return undefined;
  const names = (await fs.readdir(root)).filter((n) => /^step-\d{6}$/.test(n)).sort();
  const last = names[names.length - 1];
  return last ? path.join(root, last) : undefined;
}

export async function loadCheckpoint(ckpt: string, named: [string, Parameter][], opt: AdamW): Promise<number> {
  const { tensors } = await readSafetensors(path.join(ckpt, 'trainable.safetensors'));
  const byName = new Map(named);
  for (const [n, p] of byName) {
    const t = tensors.get(n);
    if (!t) throw new AdaptorkitError('MISSING_TENSOR', `checkpoint ${ckpt} has no tensor '${n}' (was it written by a different config?)`);
    p.assign(t, n);
  }
  const state = await readJson<CheckpointState>(path.join(ckpt, 'state.json'));
  const { tensors: mom } = await readSafetensors(path.join(ckpt, 'optimizer.safetensors'));
  const moments = named.map((_, i) => ({ m: mom.get(`${i}.m`)!, v: mom.get(`${i}.v`)! }));
  if (moments.some((m) => !m.m || !m.v)) throw new AdaptorkitError('BAD_FILE', `checkpoint ${ckpt}: optimizer state does not match the trainable parameters`);
  opt.loadState({ step: state.step, moments });
  tf.dispose([...tensors.values(), ...mom.values()]);
  return state.step;
}
