/**
 * The generic baselines every comparison needs, derived from any generative method that says how
 * (its `baselines` configs):
 *   frozen   the frozen-LLM baseline: only the connector (e.g. the vision projector) trains
 *   full     full fine-tuning: every layer of the base LM trains, with the connector and what the
 *            method's full config unfreezes (its text path shares the LM layers, so it moves)
 * They are plain AdaptorMethod values, registered like any method.
 */
import { AdaptorkitError } from '../errors.js';
import type { Parameter } from '../nn/parameter.js';
import { withAdapterFiles } from './adapted.js';
import type { GenerativeMethod, GenerativeModel } from './contract.js';

function baselinesOf(m: GenerativeMethod): NonNullable<GenerativeMethod['baselines']> {
  if (!m.baselines) throw new AdaptorkitError('UNSUPPORTED', `method '${m.name}' declares no baseline configs: frozen / full baselines need a method with \`baselines\``);
  return m.baselines;
}

function renamed(model: GenerativeModel, name: string, extraTrainable: () => [string, Parameter][] = () => []): GenerativeModel {
  return withAdapterFiles<GenerativeModel>({
    ...model,
    trainable: () => [...model.trainable(), ...extraTrainable()],
    describe: () => ({ method: name, config: model.describe().config }),
  });
}

/** The frozen-LLM baseline on `m`'s machinery: only the connector trains. */
export function frozenBaseline(m: GenerativeMethod): GenerativeMethod {
  const b = baselinesOf(m);
  return {
    name: 'frozen',
    kind: 'generative',
    paper: { title: 'Visual Instruction Tuning (LLaVA), stage 1 with a frozen LLM', authors: 'Liu, Li, Wu, Lee', venue: 'NeurIPS 2023', url: 'https://arxiv.org/abs/2304.08485' },
    description: 'Frozen-LLM baseline: only the vision projector trains (LLaVA stage 1 with a frozen LLM).',
    configSchema: m.configSchema,
    attach: (base, config) => renamed(m.attach(base, b.frozen(config)), 'frozen'),
  };
}

/** Full fine-tuning on `m`'s machinery: every base LM layer trains too (named `model.layers.*`). */
export function fullBaseline(m: GenerativeMethod): GenerativeMethod {
  const b = baselinesOf(m);
  return {
    name: 'full',
    kind: 'generative',
    paper: { title: 'Visual Instruction Tuning (LLaVA), stage 2: full fine-tuning', authors: 'Liu, Li, Wu, Lee', venue: 'NeurIPS 2023', url: 'https://arxiv.org/abs/2304.08485' },
    description: 'Full fine-tune: every LLM layer, the projector and the multimodal embedding/norm/head train.',
    configSchema: m.configSchema,
    attach: (base, config) => {
      const model = m.attach(base, b.full(config));
      base.lm.model.layers.unfreeze();
      return renamed(model, 'full', () => base.lm.model.layers.namedTrainableParameters().map(([n, p]) => [`model.layers.${n}`, p] as [string, Parameter]));
    },
  };
}
