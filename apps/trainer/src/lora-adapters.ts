/**
 * Adapter folders the CLI can put onto a plain HF base: PEFT LoRA adapters as they are, and
 * adaptorkit adapters with LoRA-shaped deltas (damc-naive / damc-decoupled runs), converted to PEFT
 * on the fly. adaptorkit's other methods change the structure of the model, not its weights, and
 * are refused with the reason.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { AdaptorkitError, adapterBasePath, adapterFiles, isPeftAdapterDir, readAdapterConfig, readPeftConfig } from '@adaptorkit/core';
import { LORA_METHODS, exportDamcPeft } from '@adaptorkit/damc';
import { exists } from './fsutil.js';

/** Why an adaptorkit method's adapter cannot become a weight change of the base. */
export const NOT_MERGEABLE: Record<string, string> = {
  iaa: 'IAA inserts whole new decoder layers (with their own attention and MLP) between the frozen layers, and gives the multimodal path its own embedding copy, norm and head; there is no base weight they could be added to',
  frozen: "the frozen-LLM baseline trains only the vision projector (and the multimodal path's own embedding/norm/head), which are not part of the language model's weights",
  full: "a full fine-tune's run trains a separate multimodal path (embedding, every layer's copy, norm, head) beside the text model; it is not a delta on the base",
  mma: "MMA's adapters are mixtures of up-projections weighted by a router that reads a per-input modality token: the change depends on the input, so it is not one fixed weight delta (and the modality token is an extra position)",
  mwa: "MWA adds new modules beside the frozen ones (new-knowledge extractors: Down -> ReLU -> Up per layer and modality; the alignment enhancer FFN): nonlinear extra paths, not a weight delta of an existing layer",
};

export interface ResolvedLora {
  /** A PEFT adapter folder (a temporary one for converted adaptorkit adapters). */
  peftDir: string;
  kind: 'peft' | 'adaptorkit';
  /** The base folder the adapter names (relative paths resolved), if it names one that exists. */
  base?: string;
  /** Remove temporary files. */
  cleanup(): void;
  /** What was left out (adaptorkit adapters: the modality branch). */
  note?: string;
}

/**
 * Resolve an adapter folder to a PEFT LoRA adapter. `delta` picks the DAMC delta (default: text for
 * decoupled runs, shared for naive ones).
 */
export async function resolveLoraAdapter(dir: string, opts: { delta?: string } = {}): Promise<ResolvedLora> {
  if (!(await exists(dir))) throw new AdaptorkitError('IO_ERROR', `adapter folder ${dir} does not exist`);
  if (await isPeftAdapterDir(dir)) {
    const c = await readPeftConfig(dir);
    const b = c.base_model_name_or_path ? path.resolve(dir, c.base_model_name_or_path) : undefined;
    return { peftDir: dir, kind: 'peft', ...(b && (await exists(path.join(b, 'config.json'))) ? { base: b } : {}), cleanup: () => undefined };
  }
  if (!(await exists(adapterFiles(dir).config))) {
    throw new AdaptorkitError('IO_ERROR', `${dir} holds neither a PEFT adapter (adapter_config.json) nor an adaptorkit adapter (adaptorkit_adapter.json); for a run folder pass its final/ folder`);
  }
  const file = await readAdapterConfig(dir);
  if (!(LORA_METHODS as readonly string[]).includes(file.method)) {
    const why = NOT_MERGEABLE[file.method] ?? `method '${file.method}' has no LoRA-shaped deltas`;
    throw new AdaptorkitError(
      'UNSUPPORTED',
      `${dir}: a '${file.method}' adapter cannot be merged into (or put onto) the base as a LoRA: ${why}. ` +
        `Only LoRA-shaped adapters can (PEFT LoRA, ${LORA_METHODS.join(', ')}); use \`adaptorkit generate <run>\` to run this one`,
    );
  }
  const delta = opts.delta ?? (file.method === 'damc-naive' ? 'shared' : 'text');
  const tmp = mkdtempSync(path.join(tmpdir(), 'adaptorkit-peft-'));
  try {
    await exportDamcPeft(dir, tmp, { deltas: [delta] });
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const b = adapterBasePath(dir, file);
  return {
    peftDir: path.join(tmp, delta),
    kind: 'adaptorkit',
    ...(b && (await exists(path.join(b, 'config.json'))) ? { base: b } : {}),
    cleanup: () => rmSync(tmp, { recursive: true, force: true }),
    note: `took the '${delta}' LoRA delta of the ${file.method} adapter; its modality branch (projector, boundary embeddings) is not part of a text model and was left out`,
  };
}
