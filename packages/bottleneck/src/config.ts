/** Bottleneck-adapter config: a strict schema (unknown keys refused), defaults and help text here. */
import { z } from 'zod';

export const bottleneckConfigSchema = z
  .strictObject({
    size: z.number().int().min(1).default(16).describe('Bottleneck width m of each adapter: d -> m -> d (Houlsby et al.: 8 to 256).'),
    activation: z.enum(['gelu', 'relu', 'silu']).default('gelu').describe('Nonlinearity between the down- and the up-projection.'),
    positions: z
      .array(z.enum(['attention', 'ffn']))
      .min(1)
      .default(['attention', 'ffn'])
      .describe("Where in each layer: after the attention output and/or after the FFN output, before each residual add (Houlsby: both)."),
    layers: z
      .union([z.literal('all'), z.array(z.number().int().min(0)).min(1)])
      .default('all')
      .describe("Decoder layers (0-based) that get adapters, or 'all'."),
    initStd: z.number().min(0).default(0.01).describe('Std of the (truncated normal) down-projection init; the up-projection starts at zero, so the adapted model starts equal to the base.'),
    projectorDepth: z.number().int().min(1).default(2).describe('Linear layers of the trainable vision projector (LLaVA: 2, GELU between).'),
    imageTokenId: z.number().int().min(0).optional().describe('Token id of the image placeholder (the trainer fills it in from the tokenizer).'),
    seed: z.number().int().min(0).default(0).describe('Seed of the adapters\' and the projector\'s initial weights.'),
  })
  .describe('Bottleneck adapters (Houlsby et al., ICML 2019) after the attention and the FFN of every layer of a frozen LLM, plus a vision projector.');

export type BottleneckConfig = z.infer<typeof bottleneckConfigSchema>;
export type BottleneckConfigInput = z.input<typeof bottleneckConfigSchema>;
