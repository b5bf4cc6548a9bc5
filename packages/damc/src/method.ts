/**
 * DAMC and NaiveMC as AdaptorMethods (kind composition: trained one modality at a time, composed
 * afterwards with composeModels): the plain values the trainer lists in its registry. attach puts
 * routed LoRA on the frozen LLM plus the image modality branch (frozen vision encoder -> trainable
 * projector, with boundary embeddings). The DamcModel expands each placeholder itself, so batches
 * carry ONE placeholder per image (tokensPerInput.image = 1), and it takes right-padded rows.
 */
import { AdaptorkitError, imagesPerRow, MLPProjector, parseMethodConfig, promptRows, sequenceNll, tf, withAdapterFiles, type GenerativeBase, type GenerativeMethod, type GenerativeModel, type MethodBatch, type Module, type Sampling, type VisionEncoder } from '@adaptorkit/core';
import { attachDamc } from './attach.js';
import { damcConfigSchema, type DamcConfig } from './config.js';
import type { DamcBatch, DamcModel } from './model.js';

const PAPER = { title: 'Model Composition for Multimodal Large Language Models', authors: 'Chen, Hu, Li, Li, Liu, Sun, Liu', venue: 'ACL 2024', url: 'https://arxiv.org/abs/2402.12750' };

/** Penultimate-layer patch features of the frozen vision encoder (class token dropped), as LLaVA: [B, N, dv]. */
function visionFeatures(enc: Module, pixels: tf.Tensor): tf.Tensor {
  return (enc as VisionEncoder).patchFeatures(pixels);
}

/** DamcModel.generate decodes greedily: sampling settings are refused, not ignored. */
function greedyOnly(s: Sampling | undefined): undefined {
  if (s?.temperature) throw new AdaptorkitError('UNSUPPORTED', `DAMC runs decode greedily (temperature ${s.temperature} was asked): drop --temperature`);
  return undefined;
}

/** Right-padded rows -> DamcBatch (ids row-major, lengths). */
function rowsBatch(rows: readonly (readonly number[])[], padId: number, inputs?: Record<string, tf.Tensor>): DamcBatch {
  const B = rows.length;
  const T = Math.max(1, ...rows.map((r) => r.length));
  const ids = new Int32Array(B * T).fill(padId);
  rows.forEach((r, b) => ids.set(r, b * T));
  return { ids, B, T, lengths: rows.map((r) => r.length), ...(inputs ? { inputs } : {}) };
}

function attach(name: string, mode: DamcConfig['mode'], base: GenerativeBase, raw: unknown): GenerativeModel {
  const parsed = parseMethodConfig(damcConfigSchema, raw, 'method.config');
  if (parsed.modality !== 'image') {
    throw new AdaptorkitError(
      'UNSUPPORTED',
      `method.config.modality: '${parsed.modality}': the trainer's ShapesWorld tasks have single-modality training data for images only; ` +
        'train a sound or points model with `adaptorkit compose` (apps/trainer/src/compose/)',
    );
  }
  const placeholderId = base.placeholderIds.image;
  if (placeholderId === undefined) throw new AdaptorkitError('INVALID_CONFIG', 'the tokenizer has no <image> placeholder');
  const dv = base.vision.config.hiddenSize;
  const { model, config } = attachDamc(base.lm, { ...(raw as object), mode }, {
    encoder: base.vision,
    projector: new MLPProjector(dv, base.lm.config.hiddenSize, 2),
    placeholderId,
    encode: visionFeatures,
  });
  const m: DamcModel = model;
  const batchOf = (b: MethodBatch): DamcBatch => {
    const images = imagesPerRow(b);
    return { ids: b.ids, B: b.B, T: b.T, labels: b.labels, lengths: b.lengths, ...(images ? { inputs: { image: images } } : {}) };
  };
  return withAdapterFiles({
    module: m,
    trainable: () => m.namedParameters().filter(([, p]) => p.trainable),
    totalParameters: () => m.countParameters(),
    tokensPerInput: { image: 1 },
    loss: (b, training, maskSeed) => {
      if (maskSeed !== undefined) m.reseedMasks(maskSeed);
      return m.loss(batchOf(b), { training }); // runs inside the loop's tidy
    },
    generate: (b, maxNewTokens, sampling) => {
      greedyOnly(sampling);
      // evaluation batches are left-padded; the DamcModel takes right-padded rows
      const images = imagesPerRow(b);
      const d = rowsBatch(promptRows(b), base.padId, images ? { image: images } : undefined);
      try {
        return m.generate(d, { maxNewTokens, eosId: base.eosId });
      } finally {
        for (const t of Object.values(d.inputs ?? {})) t.dispose();
      }
    },
    nextTokenLogits: (b) => {
      const d = batchOf(b);
      try {
        return m.nextTokenLogits(d);
      } finally {
        for (const t of Object.values(d.inputs ?? {})) t.dispose();
      }
    },
    textNll: (ids) => {
      const { logits } = m.forward({ ids: ids.dataSync() as Int32Array, B: ids.shape[0], T: ids.shape[1] });
      const r = sequenceNll(logits, ids, base.padId);
      logits.dispose();
      return { nll: r.nll * r.tokens, tokens: r.tokens };
    },
    generateText: (rows, maxNewTokens, sampling) => greedyOnly(sampling) ?? m.generate(rowsBatch(rows, base.padId), { maxNewTokens, eosId: base.eosId }),
    describe: () => ({ method: name, config }),
  });
}

export const damcNaiveMethod: GenerativeMethod<typeof damcConfigSchema> = {
  name: 'damc-naive',
  kind: 'composition',
  paper: PAPER,
  description: 'NaiveMC: LoRA on every LLM linear map, one delta for all tokens, image projector + boundary embeddings.',
  configSchema: damcConfigSchema,
  attach: (base, config) => attach('damc-naive', 'naive', base, config),
};

export const damcDecoupledMethod: GenerativeMethod<typeof damcConfigSchema> = {
  name: 'damc-decoupled',
  kind: 'composition',
  paper: PAPER,
  description: 'DAMC: LoRA on every LLM linear map with a text delta and an image delta routed per position, image projector + boundary embeddings.',
  configSchema: damcConfigSchema,
  attach: (base, config) => attach('damc-decoupled', 'decoupled', base, config),
};
