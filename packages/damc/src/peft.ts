/**
 * DAMC's LoRA deltas as PEFT adapters. Each named delta (`text` and the modality delta of a
 * decoupled model, `shared` of a naive one / the plain-LoRA baseline, or a composed delta) is one
 * PEFT LoRA adapter: `dW = s B A` on the same module paths (model.layers.i.self_attn.q_proj ...),
 * factors in PEFT's layout (A [r, in], B [out, r]), lora_alpha = s r.
 *
 * A composed delta with several parts (sum_i c_i s_i B_i A_i, composeModels) is written as PEFT's
 * `cat` combination: A = concat_rows(c_i s_i A_i), B = concat_cols(B_i), lora_alpha = r (scale 1);
 * its product is exactly the sum.
 *
 * What a PEFT file cannot carry is not written: the modality branch (encoder, projector, boundary
 * embeddings) and the per-position routing. A modality delta exported alone is the delta DAMC
 * applies on that modality's span only; merged into a base it changes every position.
 */
import * as path from 'node:path';
import {
  AdaptorkitError, adapterBasePath, adapterFiles, readAdapterConfig, readSafetensors, tf, writePeftAdapter,
  type Module, type PeftLayerFactors, type PeftLoraConfig,
} from '@adaptorkit/core';
import { parseDamcConfig } from './config.js';
import { RoutedLoRALinear } from './lora.js';

/** Methods whose adaptorkit adapters hold LoRA-shaped deltas. */
export const LORA_METHODS = ['damc-naive', 'damc-decoupled'] as const;

/** The LoRA factors of delta `delta` on every RoutedLoRALinear under `lm` (paths relative to `lm`). Dispose the result. */
export function deltaFactors(lm: Module, delta: string): PeftLayerFactors[] {
  const out: PeftLayerFactors[] = [];
  for (const [p, m] of lm.namedModules()) {
    if (!(m instanceof RoutedLoRALinear)) continue;
    const d = m.deltas.get(delta);
    if (!d) continue;
    const parts = d.parts.map((pt, i) => ({ pt, c: (d.coefs[i] ?? 1) * pt.scale }));
    const [A, B] = tf.tidy(() => {
      // stored A [in, r], B [r, out] -> PEFT A [r, in], B [out, r]
      if (parts.length === 1) return [tf.transpose(parts[0]!.pt.A.weight.value), tf.transpose(parts[0]!.pt.B.weight.value)];
      return [tf.concat(parts.map(({ pt, c }) => tf.mul(tf.transpose(pt.A.weight.value), c)), 0), tf.concat(parts.map(({ pt }) => tf.transpose(pt.B.weight.value)), 1)];
    });
    const r = A.shape[0]!;
    // one part: keep its scale as alpha = s r with the coefficient folded into A
    if (parts.length === 1 && parts[0]!.c !== parts[0]!.pt.scale) {
      const k = parts[0]!.c / parts[0]!.pt.scale;
      const a2 = tf.mul(A, k);
      A.dispose();
      out.push({ module: p, A: a2, B, alpha: parts[0]!.pt.scale * r });
    } else {
      out.push({ module: p, A, B, alpha: parts.length === 1 ? parts[0]!.pt.scale * r : r });
    }
  }
  return out;
}

function disposeFactors(fs: PeftLayerFactors[]): void {
  for (const f of fs) {
    f.A.dispose();
    f.B.dispose();
  }
}

/** target_modules for a DAMC LoRA selection: the list of names when every layer is adapted, else an exact regex (writePeftAdapter's default). */
function targetsFor(cfg: { lora: { layers: 'all' | number[]; targets: readonly string[] | { pattern: string } } }): string[] | undefined {
  return cfg.lora.layers === 'all' && Array.isArray(cfg.lora.targets) ? [...(cfg.lora.targets as string[])] : undefined;
}

/** Write delta `delta` of a live model (a DamcModel's language_model, or a composed one) as a PEFT adapter in `dir`. */
export async function saveDeltaAsPeft(dir: string, lm: Module, delta: string, opts: { baseModelNameOrPath?: string | null; targetModules?: string[] | string } = {}): Promise<PeftLoraConfig> {
  const fs = deltaFactors(lm, delta);
  try {
    if (fs.length === 0) throw new AdaptorkitError('INVALID_ARGUMENT', `no LoRA layer holds a delta named '${delta}'`);
    return await writePeftAdapter(dir, fs, opts);
  } finally {
    disposeFactors(fs);
  }
}

export interface ExportedDelta {
  delta: string;
  dir: string;
  config: PeftLoraConfig;
}

/**
 * Convert an adaptorkit DAMC adapter folder (a trainer run's `final/`) into PEFT adapters, file to
 * file: one folder per delta under `outDir` (`outDir/<delta>`), or only `deltas`. The adapter's
 * other tensors (projector, boundary embeddings) are not part of a PEFT LoRA and are left out.
 */
export async function exportDamcPeft(adapterDir: string, outDir: string, opts: { deltas?: string[] } = {}): Promise<ExportedDelta[]> {
  const file = await readAdapterConfig(adapterDir);
  if (!(LORA_METHODS as readonly string[]).includes(file.method)) {
    throw new AdaptorkitError('UNSUPPORTED', `${adapterDir}: method '${file.method}' has no LoRA deltas to export as PEFT (LoRA-shaped: ${LORA_METHODS.join(', ')}); it stays in adaptorkit's format`);
  }
  const cfg = parseDamcConfig(file.config);
  const re = /^language_model\.(.+)\.lora_([AB])\.([a-z][a-z0-9_]*)\.weight$/;
  const { tensors } = await readSafetensors(adapterFiles(adapterDir).weights);
  try {
    const byDelta = new Map<string, Map<string, { A?: tf.Tensor; B?: tf.Tensor }>>();
    for (const [n, t] of tensors) {
      const m = re.exec(n);
      if (!m) continue;
      const [, mod, ab, delta] = m as unknown as [string, string, 'A' | 'B', string];
      const mods = byDelta.get(delta) ?? new Map<string, { A?: tf.Tensor; B?: tf.Tensor }>();
      const e = mods.get(mod) ?? {};
      e[ab] = t;
      mods.set(mod, e);
      byDelta.set(delta, mods);
    }
    const want = opts.deltas ?? [...byDelta.keys()];
    const missing = want.filter((d) => !byDelta.has(d));
    if (missing.length) throw new AdaptorkitError('INVALID_ARGUMENT', `${adapterDir}: no delta named ${missing.join(', ')} (has: ${[...byDelta.keys()].join(', ') || 'none'})`);
    const base = adapterBasePath(adapterDir, file);
    const out: ExportedDelta[] = [];
    for (const delta of want) {
      const layers: PeftLayerFactors[] = [];
      for (const [mod, e] of byDelta.get(delta)!) {
        if (!e.A || !e.B) throw new AdaptorkitError('MISSING_TENSOR', `${adapterDir}: delta '${delta}' at ${mod} lacks its lora_${e.A ? 'B' : 'A'} tensor`);
        const r = e.A.shape[0]!;
        layers.push({ module: mod, A: e.A, B: e.B, alpha: (cfg.lora.alpha / cfg.lora.rank) * r });
      }
      const dir = path.join(outDir, delta);
      const config = await writePeftAdapter(dir, layers, {
        baseModelNameOrPath: base === null ? null : path.relative(path.resolve(dir), base).split(path.sep).join('/'),
        ...(targetsFor(cfg) ? { targetModules: targetsFor(cfg)! } : {}),
      });
      out.push({ delta, dir, config });
    }
    return out;
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}
