/**
 * `adaptorkit generate --base <hf-folder> --adapter a --adapter b:0.5 --prompt ...`: several LoRA
 * adapters on one frozen base in one process. Without weights every adapter is active and their
 * deltas add up (PEFT's set_adapter with a list); with weights they are combined into one adapter
 * by PEFT's add_weighted_adapter (`--combine cat`, the exact weighted sum of the deltas, by
 * default; `linear` for same-rank adapters, PEFT's factor-wise definition).
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import {
  AdaptorkitError, addWeightedAdapter, checkpointSource, generate, initBackend, loadCausalLM, loadPeftAdapter, loadTokenizer, peftConfigOf, setAdapter,
  type CausalLM, type Combination,
} from '@adaptorkit/core';
import { resolveLoraAdapter } from './lora-adapters.js';

export interface AdapterSpec {
  dir: string;
  weight?: number;
}

/** `dir` or `dir:weight` (the weight is the part after the last colon when it is a number). */
export function parseAdapterArg(s: string): AdapterSpec {
  const i = s.lastIndexOf(':');
  if (i > 0) {
    const w = s.slice(i + 1);
    if (w !== '' && Number.isFinite(Number(w))) return { dir: s.slice(0, i), weight: Number(w) };
  }
  return { dir: s };
}

export interface LoadedAdapters {
  lm: CausalLM;
  /** Adapter names, one per spec (from the folder names). */
  names: string[];
  /** What the forward applies now. */
  active: string[];
  notes: string[];
}

function uniqueName(dir: string, taken: Set<string>): string {
  const base = path.basename(path.resolve(dir)).replace(/[^A-Za-z0-9_]/g, '_') || 'adapter';
  let n = base;
  for (let k = 2; taken.has(n); k++) n = `${base}_${k}`;
  taken.add(n);
  return n;
}

/** Load `specs` onto one frozen base and make them (or their weighted combination) active. */
export async function loadAdaptersOnBase(base: string | undefined, specs: readonly AdapterSpec[], o: { combination?: Combination; delta?: string } = {}): Promise<LoadedAdapters> {
  const resolved = [];
  try {
    for (const s of specs) resolved.push(await resolveLoraAdapter(s.dir, { delta: o.delta }));
    const baseDir = base ?? resolved.find((r) => r.base)?.base;
    if (!baseDir) throw new AdaptorkitError('INVALID_ARGUMENT', 'generate: give --base <hf-folder> (no adapter names a base folder that exists here)');
    const lm = await loadCausalLM(baseDir);
    try {
      const taken = new Set<string>();
      const names: string[] = [];
      for (const [i, r] of resolved.entries()) {
        const name = uniqueName(specs[i]!.dir, taken);
        await loadPeftAdapter(lm, r.peftDir, { name });
        names.push(name);
      }
      const weighted = specs.some((s) => s.weight !== undefined) || o.combination !== undefined;
      let active = names;
      if (weighted && names.length > 0) {
        const combined = uniqueName('combined', taken);
        addWeightedAdapter(lm, names, specs.map((s) => s.weight ?? 1), combined, o.combination ?? 'cat', { rsLoRA: peftConfigOf(lm, names[0]!)?.use_rslora ?? false });
        active = [combined];
      }
      if (active.length) setAdapter(lm, active);
      return { lm, names, active, notes: resolved.flatMap((r) => (r.note ? [r.note] : [])) };
    } catch (e) {
      lm.dispose();
      throw e;
    }
  } finally {
    for (const r of resolved) r.cleanup();
  }
}

export interface AdapterGenerateOptions {
  base?: string;
  adapters: AdapterSpec[];
  combination?: Combination;
  delta?: string;
  prompt?: string;
  /** Token ids instead of a prompt (for bases without a tokenizer). */
  promptIds?: number[];
  maxNewTokens: number;
}

/** Greedy continuation of the prompt with the adapters on; text when the base has a tokenizer. */
export async function generateWithAdapters(o: AdapterGenerateOptions): Promise<{ tokens: number[]; text?: string; active: string[]; notes: string[] }> {
  const { lm, active, notes } = await loadAdaptersOnBase(o.base, o.adapters, { ...(o.combination ? { combination: o.combination } : {}), ...(o.delta ? { delta: o.delta } : {}) });
  try {
    const dir = o.base ?? checkpointSource(lm)!.path;
    const tok = existsSync(path.join(dir, 'tokenizer.json')) ? await loadTokenizer(dir) : undefined;
    let ids = o.promptIds;
    if (!ids) {
      if (o.prompt === undefined) throw new AdaptorkitError('INVALID_ARGUMENT', 'generate: give --prompt (or --prompt-ids)');
      if (!tok) throw new AdaptorkitError('INVALID_ARGUMENT', `generate: ${dir} has no tokenizer.json; give the prompt as --prompt-ids 1,2,3`);
      ids = tok.encode(o.prompt);
    }
    const eos = tok?.eosId;
    const r = generate(lm, ids, { maxNewTokens: o.maxNewTokens, ...(eos !== undefined ? { stop: [eos] } : {}) });
    const tokens = r.tokens[0] ?? [];
    return { tokens, ...(tok ? { text: tok.decode(tokens, { skipSpecialTokens: true }) } : {}), active, notes };
  } finally {
    lm.dispose();
  }
}

/** The CLI side of `generate --adapter ...` (cli.ts calls it). */
export async function adapterGenerateCommand(o: { prompt?: string; image?: string; maxNewTokens: number; base?: string; adapter: string[]; combine?: string; promptIds?: string }): Promise<void> {
  if (o.image) throw new AdaptorkitError('UNSUPPORTED', 'generate --adapter runs a text model (an HF base with LoRA adapters): --image needs a run folder');
  if (o.adapter.length === 0) throw new AdaptorkitError('INVALID_ARGUMENT', 'generate --base needs at least one --adapter');
  if (o.combine !== undefined && o.combine !== 'cat' && o.combine !== 'linear') throw new AdaptorkitError('INVALID_ARGUMENT', `--combine must be cat or linear, got ${o.combine}`);
  const promptIds = o.promptIds?.split(',').map((v) => {
    const n = Number(v.trim());
    if (!Number.isInteger(n) || n < 0) throw new AdaptorkitError('INVALID_ARGUMENT', `--prompt-ids: '${v}' is not a token id`);
    return n;
  });
  await initBackend('auto', { log: false });
  const r = await generateWithAdapters({
    adapters: o.adapter.map(parseAdapterArg),
    maxNewTokens: o.maxNewTokens,
    ...(o.base ? { base: o.base } : {}),
    ...(o.combine ? { combination: o.combine as Combination } : {}),
    ...(o.prompt !== undefined ? { prompt: o.prompt } : {}),
    ...(promptIds ? { promptIds } : {}),
  });
  for (const n of r.notes) console.error(`note: ${n}`);
  console.error(`(adapters active: ${r.active.join(', ')})`);
  console.log(r.text ?? r.tokens.join(' '));
}
