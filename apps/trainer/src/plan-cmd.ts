/**
 * `adaptorkit plan <target>`: parameters and memory without loading a weight. The target is an HF
 * model folder, its config.json, or a run YAML; for a run, the method is attached to shape-only
 * bases (built from base.lm / base.vision config.json, no tensors allocated), so the trainable
 * count is exactly the one `train` will report, for a 7B base in milliseconds.
 */
import { mmaOnFrozenLM } from './plan-mma.js';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { AdaptorkitError, CausalLM, causalLMConfigFromHF, plan, shapeOnly, VisionEncoder, visionConfigFromHF } from '@adaptorkit/core';
import type { HFConfig } from '@adaptorkit/core';
import { readYaml } from './config-util.js';
import type { RunConfig } from './config.js';
import { loadRunConfigFile } from './config/run-config.js';
import { methodByName, retrievalMethod } from './registry.js';
import { baseFolder } from '@adaptorkit/shapes-bases';

export interface PlanFlags {
  batch?: number;
  seq?: number;
  /** How frozen weights are held (a run: base.weightsDtype). */
  weightsDtype?: 'f32' | 'bf16';
  /** Activation recomputation (a run: train.recompute). */
  recompute?: 'none' | 'layers';
  /** An HF model: count LaVIN's MMA adapters on a frozen base instead of full fine-tuning. */
  mma?: boolean;
}

const GiB = 1024 ** 3;
const gib = (b: number): string => (b >= GiB / 10 ? `${(b / GiB).toFixed(2)} GiB` : `${(b / 2 ** 20).toFixed(1)} MiB`);
const num = (n: number): string => n.toLocaleString('en-US');

async function readConfigJson(file: string, key: string): Promise<HFConfig> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new AdaptorkitError('IO_ERROR', `${key}: cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as HFConfig;
  } catch (e) {
    throw new AdaptorkitError('BAD_FILE', `${file} is not a JSON config object: ${(e as Error).message}`);
  }
}

/** What the trainer would train for this run, counted on shape-only bases, with a memory estimate. */
export async function planRun(cfg: RunConfig, flags: PlanFlags = {}): Promise<string> {
  if (retrievalMethod(cfg.method.name)) {
    throw new AdaptorkitError('UNSUPPORTED', `plan: '${cfg.method.name}' is a retrieval method on a Multiway base; see its package (planMwa) for its counts`);
  }
  const lmDir = await baseFolder(cfg.base.lm, 'lm');
  const visionDir = await baseFolder(cfg.base.vision, 'vision');
  const lmHF = await readConfigJson(path.join(lmDir, 'config.json'), 'base.lm');
  const visionHF = await readConfigJson(path.join(visionDir, 'config.json'), 'base.vision');
  const lmCfg = causalLMConfigFromHF(lmHF, path.join(lmDir, 'config.json'));
  const visionCfg = visionConfigFromHF(visionHF, path.join(visionDir, 'config.json'));
  const entry = methodByName(cfg.method.name);
  const { trainable, total, tokensPerImage } = shapeOnly(() => {
    const lm = new CausalLM(lmCfg);
    const vision = new VisionEncoder(visionCfg);
    // ids only name positions here: nothing is embedded in a shape-only plan
    const system = entry.attach({ lm, vision, placeholderIds: { image: cfg.data.llava?.imageTokenId ?? 0 }, padId: 0, eosId: 0 }, cfg.method.config);
    return { trainable: system.trainable().reduce((s, [, p]) => s + p.size, 0), total: system.totalParameters(), tokensPerImage: system.tokensPerInput.image ?? 0 };
  });
  const B = flags.batch ?? cfg.train.batchSize;
  const T = flags.seq ?? Math.min(cfg.data.maxLength ?? lmCfg.maxPositionEmbeddings ?? 2048, 2048);
  const lmPlan = plan(lmHF, { batchSize: B, seqLen: T, trainable: 'all', weightsDtype: flags.weightsDtype ?? cfg.base.weightsDtype ?? 'f32', recompute: flags.recompute ?? cfg.train.recompute ?? 'none' });
  const weights = 4 * total;
  const gradients = 4 * trainable;
  const optimizer = 8 * trainable;
  const activations = lmPlan.bytes.activations;
  return [
    `run ${cfg.name}: method ${cfg.method.name}`,
    `  base.lm:     ${lmDir} (${String(lmHF.model_type)}, ${num(lmPlan.parameters)} parameters, context ${lmCfg.maxPositionEmbeddings ?? '?'})`,
    `  base.vision: ${visionDir} (${visionCfg.kind}, ${tokensPerImage} token${tokensPerImage === 1 ? '' : 's'} per image in the LM)`,
    `parameters: ${num(total)} (trainable ${num(trainable)}, ${((100 * trainable) / total).toFixed(3)}%)`,
    `memory (float32, batch ${B} x seq ${T}):`,
    `  weights: ${gib(weights)}`,
    `  gradients: ${gib(gradients)}`,
    `  optimizer (AdamW): ${gib(optimizer)}`,
    `  activations (estimate: the LM's whole backward, an upper bound for adaptors): ${gib(activations)}`,
    `  training total: ${gib(weights + gradients + optimizer + activations)}`,
  ].join('\n');
}

/** The plan of an HF folder, a config.json, a bare config YAML, or a run YAML. */
export async function planTarget(target: string, flags: PlanFlags = {}): Promise<string> {
  const st = await fs.stat(target).catch(() => undefined);
  if (!st) throw new AdaptorkitError('INVALID_ARGUMENT', `plan: ${target} does not exist (give an HF model folder, its config.json, or a run YAML)`);
  let hf: HFConfig;
  if (st.isDirectory()) {
    const file = path.join(target, 'config.json');
    if (!(await fs.stat(file).catch(() => undefined))) throw new AdaptorkitError('INVALID_ARGUMENT', `plan: ${target} has no config.json (give an HF model folder, its config.json, or a run YAML)`);
    hf = await readConfigJson(file, 'plan');
  } else if (target.endsWith('.json')) {
    hf = await readConfigJson(target, 'plan');
  } else {
    const raw = await readYaml(target);
    if (raw && typeof raw === 'object' && 'method' in raw) return planRun(await loadRunConfigFile(target), flags);
    hf = raw as HFConfig;
  }
  return plan(hf as never, {
    batchSize: flags.batch ?? 1, seqLen: flags.seq ?? 2048, weightsDtype: flags.weightsDtype ?? 'f32', recompute: flags.recompute ?? 'none',
    ...(flags.mma ? { trainable: mmaOnFrozenLM } : {}),
  }).summary;
}
