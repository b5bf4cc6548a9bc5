/**
 * IAA and the two LLaVA-style rows built on the same machinery:
 *  - iaa:    insertion layers (config from @adaptorkit/iaa);
 *  - frozen: the frozen-LLM baseline that trains only the projector;
 *  - full:   full fine-tuning of the LLM layers together with the projector and the multimodal
 *            embedding/norm/head (the text path shares the LLM layers, so its text skill moves).
 */
import { attachIaa, frozenBaselineConfig, type IaaModel } from '@adaptorkit/iaa';
import type { MMBatch } from '../vl/batch.js';
import { idsTensor, imagesPerRow, labelsTensor, promptRows, withImages } from './common.js';
import type { Bases, MethodEntry, TrainSystem } from './types.js';

function system(bases: Bases, model: IaaModel, method: string, config: unknown, fullLM: boolean): TrainSystem {
  if (fullLM) bases.lm.model.layers.unfreeze();
  const named = (): ReturnType<TrainSystem['trainable']> => [
    ...model.namedIaaParameters('mm').map(([n, p]) => [`iaa.${n}`, p] as [string, typeof p]),
    ...(fullLM ? bases.lm.model.layers.namedTrainableParameters().map(([n, p]) => [`model.layers.${n}`, p] as [string, typeof p]) : []),
  ];
  return {
    module: model,
    trainable: named,
    totalParameters: () => model.countParameters(),
    tokensPerInput: { image: model.imageTokens },
    loss: (b: MMBatch) => model.loss({ ids: idsTensor(b), labels: labelsTensor(b), task: 'mm', images: imagesPerRow(b) }),
    generate: (b, maxNewTokens, sampling) =>
      withImages(b, (images) => model.generate({ ...sampling, ids: promptRows(b), padId: bases.padId, task: 'mm', images, maxNewTokens, eosId: bases.eosId })),
    textNll: (ids) => {
      const r = model.perplexity(ids, { task: 'text', padId: bases.padId });
      return { nll: r.nll * r.tokens, tokens: r.tokens };
    },
    generateText: (rows, maxNewTokens, sampling) => model.generate({ ...sampling, ids: rows, padId: bases.padId, task: 'text', maxNewTokens, eosId: bases.eosId }),
    describe: () => ({ method, config }),
  };
}

const withImageToken = (bases: Bases, cfg: Record<string, unknown>): Record<string, unknown> => ({ imageTokenId: bases.placeholderIds.image, ...cfg });

export const iaaEntry: MethodEntry = {
  name: 'iaa',
  description: 'IAA: insertion layers inside the frozen LLM (multimodal workflow) beside the untouched text workflow.',
  build: (bases, cfg) => {
    const config = withImageToken(bases, cfg);
    return system(bases, attachIaa({ lm: bases.lm, vision: bases.vision }, config), 'iaa', config, false);
  },
};

export const frozenEntry: MethodEntry = {
  name: 'frozen',
  description: 'Frozen-LLM baseline: only the vision projector trains (LLaVA stage 1 with a frozen LLM).',
  build: (bases, cfg) => {
    const config = frozenBaselineConfig(withImageToken(bases, cfg));
    return system(bases, attachIaa({ lm: bases.lm, vision: bases.vision }, config), 'frozen', config, false);
  },
};

export const fullEntry: MethodEntry = {
  name: 'full',
  description: 'Full fine-tune: every LLM layer, the projector and the multimodal embedding/norm/head train.',
  build: (bases, cfg) => {
    const config = { ...frozenBaselineConfig(withImageToken(bases, cfg)), train: { insertionLayers: false, embedding: true, norm: true, head: true, projector: true } };
    return system(bases, attachIaa({ lm: bases.lm, vision: bases.vision }, config), 'full', config, true);
  },
};

