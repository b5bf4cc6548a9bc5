/**
 * Shape-only planning: trainable-parameter counts of an IAA layout on any LLaMA + ViT config,
 * without allocating a weight (a Llama-3-8B plan takes milliseconds).
 */
import { CausalLM, VisionEncoder, resolveCausalLMConfig, shapeOnly, type CausalLMConfig, type VisionConfig } from '@adaptorkit/core';
import { parseIaaConfig, type IaaConfigInput } from './config.js';
import { attachIaa, type IaaPartCounts } from './model.js';

export interface IaaPlan {
  /** Resolved insertion depths. */
  depths: number[];
  /** Trainable parameters of each task set, by part. */
  perTask: Record<string, IaaPartCounts>;
  /** All trainable parameters (every task set). */
  trainable: number;
  /** The same without the projectors. */
  trainableBeforeProjector: number;
  /** Frozen LLM + vision tower parameters. */
  frozen: number;
  /** Decoder blocks one multimodal forward runs (frozen + inserted). */
  multimodalBlocks: number;
}

export function planIaa(base: { lm: CausalLMConfig; vision: VisionConfig }, config: IaaConfigInput = {}): IaaPlan {
  const cfg = parseIaaConfig(config);
  return shapeOnly(() => {
    const m = attachIaa({ lm: new CausalLM(base.lm), vision: new VisionEncoder(base.vision) }, cfg);
    const perTask: Record<string, IaaPartCounts> = {};
    for (const t of m.taskNames) perTask[t] = m.countIaaParameters(t);
    const all = Object.values(perTask);
    const trainable = all.reduce((a, c) => a + c.total, 0);
    const projector = all.reduce((a, c) => a + c.projector, 0);
    return {
      depths: [...m.depths],
      perTask,
      trainable,
      trainableBeforeProjector: trainable - projector,
      frozen: m.lm.countParameters() + m.vision.countParameters(),
      multimodalBlocks: m.lm.numLayers + m.depths.length,
    };
  });
}

/**
 * The spec's arithmetic for one task set with every part trained, before the projector:
 * n (2 d^2 + 2 d d_kv + 3 d f + 2 d) + V d + d + V d  (attention biases / MLP biases added when
 * the config has them).
 */
export function iaaParameterFormula(lm: CausalLMConfig, numInserted: number): number {
  const c = resolveCausalLMConfig(lm);
  const d = c.hiddenSize;
  const dq = c.numHeads * c.headDim;
  const dkv = c.numKVHeads * c.headDim;
  const f = c.intermediateSize;
  const V = c.vocabSize;
  const attn = 2 * d * dq + 2 * d * dkv + (c.attentionBias ? dq + 2 * dkv : 0);
  const mlp = 3 * d * f + (c.mlpBias ? 2 * f + d : 0);
  const layer = attn + mlp + 2 * d;
  return numInserted * layer + V * d + d + V * d;
}
