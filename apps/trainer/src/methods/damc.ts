/**
 * DAMC / NaiveMC training (Chen et al., ACL 2024) through @adaptorkit/damc: routed LoRA on the
 * frozen LLM plus the image modality branch (frozen vision encoder -> trainable projector, with
 * boundary embeddings). damc-decoupled trains a text delta and an image delta routed per position;
 * damc-naive one delta for every token. Composing several such runs is @adaptorkit/damc's
 * composeModels (see `adaptorkit compose`, src/compose/); the trainer trains one model.
 *
 * The DamcModel expands each placeholder itself, so batches carry ONE placeholder per image
 * (tokensPerInput.image = 1), and it takes right-padded rows with their lengths.
 */
import { AdaptorkitError, MLPProjector, sequenceNll, tf, type Module, type VisionEncoder } from '@adaptorkit/core';
import { damcDecoupledMethod, damcNaiveMethod, type DamcBatch, type DamcMethod, type DamcModel } from '@adaptorkit/damc';
import type { MMBatch } from '../vl/batch.js';
import { imagesPerRow, promptRows } from './common.js';
import type { Bases, MethodEntry, Sampling, TrainSystem } from './types.js';

/** Penultimate-layer patch features of the frozen vision encoder (class token dropped), as LLaVA: [B, N, dv]. */
function visionFeatures(enc: Module, pixels: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const out = (enc as VisionEncoder).forward(pixels);
    const h = out.hiddenStates[out.hiddenStates.length - 2]!; // [B, 1 + N, dv]
    const [B, n, dv] = h.shape;
    return (enc as VisionEncoder).config.kind === 'clip' ? tf.slice(h, [0, 1, 0], [B, n - 1, dv]) : h; // [B, N, dv]
  });
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

function system(bases: Bases, method: DamcMethod, cfg: Record<string, unknown>): TrainSystem {
  const modality = (cfg.modality as string | undefined) ?? 'image';
  if (modality !== 'image') {
    throw new AdaptorkitError(
      'UNSUPPORTED',
      `method.config.modality: '${modality}': the trainer's ShapesWorld tasks have single-modality training data for images only; ` +
        'train a sound or points model with `adaptorkit compose` (apps/trainer/src/compose/)',
    );
  }
  const placeholderId = bases.placeholderIds.image;
  if (placeholderId === undefined) throw new AdaptorkitError('INVALID_CONFIG', 'the tokenizer has no <image> placeholder');
  const dv = bases.vision.config.hiddenSize;
  const { model, config } = method.attach(bases.lm, cfg, {
    encoder: bases.vision,
    projector: new MLPProjector(dv, bases.lm.config.hiddenSize, 2),
    placeholderId,
    encode: visionFeatures,
  });
  const m: DamcModel = model;
  const batchOf = (b: MMBatch): DamcBatch => {
    const images = imagesPerRow(b);
    return { ids: b.ids, B: b.B, T: b.T, labels: b.labels, lengths: b.lengths, ...(images ? { inputs: { image: images } } : {}) };
  };
  const dispose = (d: DamcBatch): void => {
    for (const t of Object.values(d.inputs ?? {})) t.dispose();
  };
  return {
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
      const d = rowsBatch(promptRows(b), bases.padId, images ? { image: images } : undefined);
      try {
        return m.generate(d, { maxNewTokens, eosId: bases.eosId });
      } finally {
        dispose(d);
      }
    },
    textNll: (ids) => {
      const { logits } = m.forward({ ids: ids.dataSync() as Int32Array, B: ids.shape[0], T: ids.shape[1] });
      const r = sequenceNll(logits, ids, bases.padId);
      logits.dispose();
      return { nll: r.nll * r.tokens, tokens: r.tokens };
    },
    generateText: (rows, maxNewTokens, sampling) => greedyOnly(sampling) ?? m.generate(rowsBatch(rows, bases.padId), { maxNewTokens, eosId: bases.eosId }),
    describe: () => ({ method: method.name, config }),
  };
}

export const damcDecoupledEntry: MethodEntry = {
  name: 'damc-decoupled',
  description: 'DAMC: LoRA on every LLM linear map with a text delta and an image delta routed per position, image projector + boundary embeddings.',
  build: (bases, cfg) => system(bases, damcDecoupledMethod, cfg),
};

export const damcNaiveEntry: MethodEntry = {
  name: 'damc-naive',
  description: 'NaiveMC: LoRA on every LLM linear map, one delta for all tokens, image projector + boundary embeddings.',
  build: (bases, cfg) => system(bases, damcNaiveMethod, cfg),
};
