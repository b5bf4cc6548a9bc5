/**
 * MMA config: the routed adapter's shape, the router, where adapters sit, which vision depths
 * give visual tokens and the projection. Defaults are LaVIN-7B (spec/mma.md).
 */
import { z } from 'zod';
import { AdaptorkitError, parseMethodConfig } from '@adaptorkit/core';

const DEPTH_PRESET = /^(spread:[1-9]\d*|every:[1-9]\d*|last)$/;

export const visualDepthsSchema = z
  .union([
    z
      .array(z.number().int().min(1))
      .min(1)
      .refine((a) => new Set(a).size === a.length, { message: 'visual token depths must not repeat' }),
    z.string().regex(DEPTH_PRESET, { message: "expected a list of block numbers (1-based) or a preset: 'spread:n', 'every:k', 'last'" }),
  ])
  .default('spread:6')
  .describe(
    'Vision blocks whose class-token output becomes one visual token each, numbered 1..L ("after block k"). ' +
      "'spread:n' = round(i*L/n) for i = 1..n (the paper: 'spread:6' on ViT-L's 24 blocks = 4, 8, 12, 16, 20, 24; on an encoder with " +
      "fewer than n blocks, every block once); 'every:k' = k, 2k, ... <= L; 'last' = L.",
  );

const ADAPTER_FIELDS = {
  rank: z.number().int().min(1).default(8).describe('Hidden width r of the shared down-projection d -> r (LaVIN: 8).'),
  groups: z
    .number()
    .int()
    .min(1)
    .default(2)
    .describe('Groups of each up-projection r -> d: group g maps hidden slice g to output slice g (LaVIN: 2). Must divide r and the model width.'),
  branches: z
    .number()
    .int()
    .min(1)
    .default(2)
    .describe('Number of up-projection branches mixed by the router (LaVIN: 2). 1 = the router-off ablation: a plain adapter, no router.'),
  temperature: z.number().positive().default(10).describe('Router softmax temperature tau: w = softmax(router(x) / tau) (LaVIN-7B: 10, LaVIN-13B: 5).'),
  scale: z.number().default(1).describe('Scale s of the adapter output: z + s * sum_i w_i B_i(h) (LaVIN: 1).'),
  dropout: z.number().min(0).lt(1).default(0.1).describe('Dropout on the r-dim hidden h, active in training only (LaVIN: 0.1).'),
};

export const mmaConfigSchema = z
  .strictObject({
    ...ADAPTER_FIELDS,
    placement: z
      .enum(['preAttn', 'preMlp', 'both'])
      .default('preAttn')
      .describe("Where the LLM adapters sit in every decoder block: on the attention RMSNorm output ('preAttn', LaVIN), on the FFN RMSNorm output ('preMlp'), or both."),
    routing: z
      .enum(['sample', 'token'])
      .default('sample')
      .describe(
        "'sample' (LaVIN): one routing decision per sequence, from the adapter's input at position 0 (the modality token; the class token in the " +
          "vision encoder). 'token': every position routes on its own input.",
      ),
    hardRouting: z
      .boolean()
      .default(false)
      .describe('At inference (ctx.training false), replace the soft weights by a one-hot of the argmax branch. Training always uses soft weights.'),
    visionAdapters: z.boolean().default(true).describe('Put a routed adapter in every vision-encoder block, on the first LayerNorm output (LaVIN: yes).'),
    visualDepths: visualDepthsSchema,
    patchTokens: z
      .object({
        depth: z.number().int().min(1).describe('Vision block (1-based, "after block k") whose patch tokens are used; CLIP\'s last block trains only its class token, so the penultimate is the usual choice.'),
        pool: z.number().int().min(1).default(1).describe('Average-pool the g x g patch grid by this factor (g / pool must be whole): (g / pool)^2 tokens.'),
        cells: z
          .number()
          .int()
          .min(1)
          .optional()
          .describe('Instead of pool: average the patches whose centre lies in each cell of a cells x cells grid (cells^2 tokens; any grid size, e.g. 3 for the 3 x 3 ShapesWorld scene grid on 8 x 8 patches).'),
        perCell: z
          .number()
          .int()
          .min(1)
          .default(1)
          .describe(
            'Tokens per pooled patch (or cell). 1: the patch tokens share the class tokens\' projection. k > 1: their own projection ' +
              'Linear(dv -> projectorHidden) -> act -> Linear(-> k d) gives k consecutive tokens each, so one object can read like several words.',
          ),
      })
      .strict()
      .refine((p) => p.cells === undefined || p.pool === 1, { message: 'set either pool or cells, not both', path: ['cells'] })
      .optional()
      .describe(
        'Beyond the paper (off = LaVIN): after the class tokens, also give the LLM the patch tokens of one vision block, pooled, through the same projection. ' +
          'For small encoders whose class tokens do not carry the scene (packages/mma/README.md).',
      ),
    projectorHidden: z.number().int().min(1).default(128).describe('Bottleneck width of the visual projection Linear(dv -> k) -> SiLU -> Linear(k -> d) (LaVIN: 128).'),
    projectorAct: z
      .enum(['silu', 'gelu', 'gelu_tanh', 'quick_gelu', 'relu', 'identity'])
      .default('silu')
      .describe("Activation of the visual projection (LaVIN code: 'silu'; the paper text says SwiGLU)."),
    modalityInitStd: z
      .number()
      .positive()
      .default(1)
      .describe('Std of the normal init of the modality embedding [2, d] (PyTorch nn.Embedding default: 1, as in LaVIN).'),
    imageTokenId: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Token id of the image placeholder; the data pipeline expands each image into numVisualTokens of them. Can also be given to attachMma.'),
    seed: z.number().int().min(0).default(0).describe('Seed of the initial MMA weights and of the dropout masks.'),
  })
  .describe('MMA: mixture-of-modality adapters with a router and a modality token (LaVIN, Luo et al., NeurIPS 2023).');

export type MmaConfig = z.infer<typeof mmaConfigSchema>;
export type MmaConfigInput = z.input<typeof mmaConfigSchema>;

/** Parse a config; an invalid one throws INVALID_CONFIG naming the path of the bad field. */
export function parseMmaConfig(input: unknown = {}): MmaConfig {
  const c = parseMethodConfig(mmaConfigSchema, input, 'mma config');
  if (c.rank % c.groups !== 0) {
    throw new AdaptorkitError('INVALID_CONFIG', `mma config: groups: ${c.groups} does not divide rank ${c.rank}; choose groups that divide the adapter rank`);
  }
  return c;
}

/** Resolve visual-token depths (1-based block numbers) against an encoder with `numLayers` blocks. */
export function resolveVisualDepths(spec: MmaConfig['visualDepths'], numLayers: number): number[] {
  const L = numLayers;
  if (Array.isArray(spec)) {
    spec.forEach((k, i) => {
      if (k < 1 || k > L) {
        throw new AdaptorkitError('INVALID_CONFIG', `mma config: visualDepths.${i}: block ${k} is outside 1..${L} (the vision encoder has ${L} blocks; depths are 1-based, "after block k")`);
      }
    });
    return [...spec].sort((a, b) => a - b);
  }
  if (spec === 'last') return [L];
  const [kind, arg] = spec.split(':') as [string, string];
  const n = Number(arg);
  if (kind === 'every') {
    const out: number[] = [];
    for (let k = n; k <= L; k += n) out.push(k);
    if (out.length === 0) throw new AdaptorkitError('INVALID_CONFIG', `mma config: visualDepths: 'every:${n}' selects nothing on an encoder with ${L} blocks`);
    return out;
  }
  const m = Math.min(n, L);
  return [...new Set(Array.from({ length: m }, (_, i) => Math.round(((i + 1) * L) / m)))];
}
