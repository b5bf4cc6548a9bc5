/**
 * Merge the active LoRA adapters of a model into its base weights and write an HF folder
 * (PEFT's merge_and_unload, written out): for every adapted Linear W' = W + sum_a s_a B_a A_a (in
 * checkpoint layout, [out, in]), a lora_only bias replaces the base bias, and a module-to-save copy
 * replaces its module. The model itself is not changed (the sums are computed per tensor while the
 * shard holding it is written).
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AdaptorkitError } from '../errors.js';
import { LoraLinear, ModuleCopies } from '../nn/lora.js';
import type { Module } from '../nn/module.js';
import type { Parameter } from '../nn/parameter.js';
import { checkpointSource } from './hf.js';
import { writeHfFolder, type HfDtype, type HfFolderReport, type HfTensorEntry } from './hf-folder.js';

function ownerOf(model: Module, modPath: string): Module {
  let m = model;
  for (const p of modPath ? modPath.split('.') : []) m = m.getChild(p);
  return m;
}

/** The model's weights with the active adapters folded in, as HF tensor entries (names without LoRA parts). */
export function mergedEntries(model: Module): HfTensorEntry[] {
  const out: HfTensorEntry[] = [];
  const skip = /(^|\.)(lora_A|lora_B|lora_bias|modules_to_save)\./;
  for (const [name, p] of model.namedParameters()) {
    if (skip.test(name)) continue;
    const dot = name.lastIndexOf('.');
    const modPath = dot < 0 ? '' : name.slice(0, dot);
    const pn = name.slice(dot + 1);
    if (modPath.endsWith('.base_layer') || modPath === 'base_layer') {
      const wrapperPath = modPath.slice(0, -'.base_layer'.length);
      const w = ownerOf(model, wrapperPath);
      if (w instanceof LoraLinear) {
        const hfName = `${wrapperPath}.${pn}`;
        if (pn === 'weight') {
          out.push({
            name: hfName,
            shape: p.externalShape,
            get: () =>
              tf.tidy(() => {
                // toExternal: the checkpoint layout [out, in], also for a bf16-stored base (which has no float32 value)
                let v = p.toExternal();
                for (const a of w.applied()) v = tf.add(v, tf.transpose(w.deltaWeight(a))); // delta [in, out] -> [out, in]
                return v;
              }),
          });
        } else if (pn === 'bias') {
          out.push({ name: hfName, shape: p.externalShape, get: () => tf.tidy(() => tf.clone(w.currentBias()!)) });
        } else {
          throw new AdaptorkitError('UNSUPPORTED', `mergedEntries: unexpected parameter '${name}' in a LoRA base layer`);
        }
        continue;
      }
    }
    const copies = ModuleCopies.existing(ownerOf(model, modPath));
    const active = copies?.active;
    const src: Parameter = active !== undefined ? copies!.get(active).getParam(pn) : p;
    out.push({ name, shape: p.externalShape, get: () => src.toExternal() });
  }
  return out;
}

export interface MergeToFolderOptions {
  /** The base's config.json object (default: the one loadCausalLM read). */
  config?: Record<string, unknown>;
  dtype?: HfDtype;
  maxShardBytes?: number;
  /** Copy tokenizer files from here (default: the folder the base was loaded from). */
  tokenizerFrom?: string;
  metadata?: Record<string, string>;
}

/** Write `model` with its active adapters merged as an HF folder in `dir`. */
export async function mergeAdaptersToFolder(model: Module, dir: string, opts: MergeToFolderOptions = {}): Promise<HfFolderReport> {
  const src = checkpointSource(model);
  const config = opts.config ?? (src?.hfConfig as Record<string, unknown> | undefined);
  if (!config) throw new AdaptorkitError('INVALID_ARGUMENT', 'mergeAdaptersToFolder: the model was not loaded with loadCausalLM; pass its config.json object as `config`');
  const tokenizerFrom = opts.tokenizerFrom ?? src?.path;
  return writeHfFolder(path.resolve(dir), mergedEntries(model), {
    config,
    ...(opts.dtype ? { dtype: opts.dtype } : {}),
    ...(opts.maxShardBytes ? { maxShardBytes: opts.maxShardBytes } : {}),
    ...(tokenizerFrom ? { tokenizerFrom } : {}),
    ...(opts.metadata ? { metadata: opts.metadata } : {}),
  });
}
