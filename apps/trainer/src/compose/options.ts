/**
 * Options of the ShapesWorld composition experiment (`adaptorkit compose`), read from argv the way
 * the demo passes them: `--name value`, and a repeated flag's last value wins (the demo appends its
 * smoke arguments after the normal ones).
 */
import { AdaptorkitError } from '@adaptorkit/core';

export type ComposeMode = 'frozen' | 'naive' | 'decoupled';
export const COMPOSE_MODES: readonly ComposeMode[] = ['frozen', 'naive', 'decoupled'];

export interface ComposeOptions {
  /** The modes to run, in order. frozen: each model trains only its encoder side (LoRA factors stay at B = 0). */
  modes: ComposeMode[];
  steps: number;
  batch: number;
  lr: number;
  rank: number;
  /** Training / test examples per single-modality task. */
  train: number;
  test: number;
  /** Joint (image + sound) test questions of the count task. */
  joint: number;
  seed: number;
  /** Search the text coefficients on the common val split (not under frozen). */
  search: boolean;
  /** The coefficient grid of the search. */
  grid: number[];
  /** Also score the single models (not only the composed ones). */
  single: boolean;
  /** 'common': the letter-choice common-attribute question; 'count': "how many objects are there?". */
  task: 'common' | 'count';
  /** Train one sound model on a direct count question and report its accuracy only. */
  diag: boolean;
  logEvery: number;
  /** Write { meta, rows } here. */
  json?: string;
  /** Split run, phase 1: train only this modality's model (one mode) and save it to `save`. */
  trainOnly?: 'image' | 'sound';
  save?: string;
  /** Split run, phase 2: compose the models saved in these folders (one mode) instead of training. */
  from?: { image: string; sound: string };
}

/** Parse argv (without node and the command). INVALID_ARGUMENT names the bad flag. */
export function parseComposeArgs(argv: readonly string[]): ComposeOptions {
  const arg = (name: string, def: string): string => {
    const i = argv.lastIndexOf(`--${name}`);
    const v = i >= 0 ? argv[i + 1] : undefined;
    return v ?? def;
  };
  const num = (name: string, def: number): number => {
    const v = Number(arg(name, String(def)));
    if (!Number.isFinite(v)) throw new AdaptorkitError('INVALID_ARGUMENT', `compose: --${name} must be a number, got '${arg(name, '')}'`);
    return v;
  };
  const yes = (name: string, def: 'yes' | 'no'): boolean => {
    const v = arg(name, def);
    if (v !== 'yes' && v !== 'no') throw new AdaptorkitError('INVALID_ARGUMENT', `compose: --${name} must be yes or no, got '${v}'`);
    return v === 'yes';
  };
  const mode = arg('mode', 'both');
  const modes = (mode === 'both' ? ['naive', 'decoupled'] : mode === 'all' ? [...COMPOSE_MODES] : mode.split(',')) as ComposeMode[];
  for (const m of modes) {
    if (!COMPOSE_MODES.includes(m)) throw new AdaptorkitError('INVALID_ARGUMENT', `compose: --mode: unknown mode '${m}' (frozen, naive, decoupled, both, all)`);
  }
  const task = arg('task', 'common');
  if (task !== 'common' && task !== 'count') throw new AdaptorkitError('INVALID_ARGUMENT', `compose: --task must be common or count, got '${task}'`);
  const json = arg('json', '');
  const trainOnly = arg('train-only', '');
  const save = arg('save', '');
  const from = arg('from', '');
  if (trainOnly && trainOnly !== 'image' && trainOnly !== 'sound') throw new AdaptorkitError('INVALID_ARGUMENT', `compose: --train-only must be image or sound, got '${trainOnly}'`);
  if (trainOnly && !save) throw new AdaptorkitError('INVALID_ARGUMENT', 'compose: --train-only needs --save <folder>');
  if ((trainOnly || from) && modes.length !== 1) throw new AdaptorkitError('INVALID_ARGUMENT', `compose: --train-only and --from take one --mode, got ${modes.join(',')}`);
  const fromDirs = from ? from.split(',') : [];
  if (from && fromDirs.length !== 2) throw new AdaptorkitError('INVALID_ARGUMENT', `compose: --from takes <image model folder>,<sound model folder>, got '${from}'`);
  return {
    modes,
    steps: num('steps', 300),
    batch: num('batch', 16),
    lr: num('lr', 2e-3),
    rank: num('rank', 16),
    train: num('train', 3000),
    test: num('test', 500),
    joint: num('joint', 500),
    seed: num('seed', 0),
    search: yes('search', 'yes'),
    grid: arg('grid', '0.5,1').split(',').map(Number),
    single: yes('single', 'yes'),
    task,
    diag: argv.includes('--diag'),
    logEvery: num('logEvery', 50),
    ...(json ? { json } : {}),
    ...(trainOnly ? { trainOnly: trainOnly as 'image' | 'sound', save } : {}),
    ...(from ? { from: { image: fromDirs[0]!, sound: fromDirs[1]! } } : {}),
  };
}
