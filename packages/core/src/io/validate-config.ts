/**
 * A model folder checked before anything is allocated from its claims.
 *
 * 1. `validateConfigFields`: every size-like field of config.json (any `*_size`, `num_*`, `n_*`,
 *    `*_dim`, `vocab_size`, `head_dim`, `*_position_embeddings`, `*_layers`, `*_heads`, ... at any
 *    nesting level, so new families are covered without a list) must be a non-negative integer
 *    within a bound far above any published model. NaN, strings, fractions and 2^40 are refused
 *    with the field's path instead of surfacing as a RangeError or an out-of-memory.
 * 2. `preflightWeights`: the model is built shape-only (no weights allocated) and checked against
 *    the safetensors headers (names, shapes, float dtypes) with the loader's own checks. Only when
 *    every tensor the config implies is present with the right shape is the real model allocated,
 *    so what is allocated is bounded by what the files hold (their headers are checked against
 *    their sizes: shape x dtype = bytes).
 */
import { AdaptorkitError } from '../errors.js';
import type { Module } from '../nn/module.js';
import { shapeOnly } from '../nn/parameter.js';
import type { CheckpointReader } from './checkpoint.js';
import type { loadWeights, LoadWeightsOptions } from './hf.js'; // types only: hf.ts imports this file

/** Bounds on size-like config fields, first match wins (published models are far below each). */
export const CONFIG_BOUNDS: readonly { test: RegExp; max: number; what: string }[] = [
  { test: /vocab_size$/, max: 2 ** 24, what: 'a vocabulary size' },
  { test: /(position_embeddings|_length|_window|_context|seq_len)$/, max: 2 ** 31 - 1, what: 'a context length' },
  { test: /^(num_|n_)|_layers$|_heads$|_experts$|^num$/, max: 2 ** 16, what: 'a count' },
  { test: /(_size|_dim|^head_dim|^d_model|^d_ff|_channels)$/, max: 2 ** 20, what: 'a dimension' },
];
/** config.json nested deeper than this is refused (real configs nest 2-3 levels). */
export const MAX_CONFIG_DEPTH = 32;

/** Fields whose names look size-like but hold real numbers (DeepSeek's rope_scaling.mscale_all_dim 0.707). */
const NOT_A_SIZE = /scale|factor|ratio|eps|dropout|rate|coef|temperature|prob|multiplier|penalty/;

function boundFor(key: string): { max: number; what: string } | undefined {
  if (NOT_A_SIZE.test(key)) return undefined;
  return CONFIG_BOUNDS.find((b) => b.test.test(key));
}

/** Check every size-like field of a config.json object (and its nested configs). Throws INVALID_CONFIG naming the field. */
export function validateConfigFields(config: Record<string, unknown>, where = 'config.json'): void {
  const walk = (obj: Record<string, unknown>, prefix: string, depth: number): void => {
    if (depth > MAX_CONFIG_DEPTH) throw new AdaptorkitError('INVALID_CONFIG', `${where}: nesting deeper than ${MAX_CONFIG_DEPTH} levels at '${prefix}'`);
    for (const [key, v] of Object.entries(obj)) {
      const field = prefix ? `${prefix}.${key}` : key;
      if (v !== null && typeof v === 'object') {
        if (!Array.isArray(v)) walk(v as Record<string, unknown>, field, depth + 1);
        continue;
      }
      const b = boundFor(key);
      if (!b || v === null || v === undefined || typeof v === 'boolean') continue;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > b.max) {
        throw new AdaptorkitError(
          'INVALID_CONFIG',
          `${where}: field '${field}' must be ${b.what}, an integer in [0, ${b.max}], got ${JSON.stringify(v) ?? String(v)}; is this config.json damaged?`,
        );
      }
    }
  };
  walk(config, '', 0);
}

class PreflightPassed extends Error {}

const LAYER_INDEX = /\.(?:layers|layer|h|blocks)\.(\d+)\./;
const LAYER_COUNT_KEY = /^(num_hidden_layers|num_layers|n_layers?)$/;

/**
 * Cheap check before building anything: a layer count in config.json (at any nesting level) may
 * not exceed the layers the checkpoint has tensors for (`*.layers.N.*`, `*.h.N.*`, `*.blocks.N.*`).
 * Building even a shape-only model of 65,536 layers takes a while; this refuses it at once.
 */
export function checkLayerCounts(config: Record<string, unknown>, reader: CheckpointReader, where: string): void {
  let have = 0;
  for (const name of reader.names()) {
    const m = LAYER_INDEX.exec(name);
    if (m) have = Math.max(have, Number(m[1]) + 1);
  }
  const walk = (obj: Record<string, unknown>, prefix: string, depth: number): void => {
    if (depth > MAX_CONFIG_DEPTH) return;
    for (const [k, v] of Object.entries(obj)) {
      const field = prefix ? `${prefix}.${k}` : k;
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) walk(v as Record<string, unknown>, field, depth + 1);
      else if (LAYER_COUNT_KEY.test(k) && typeof v === 'number' && v > have) {
        throw new AdaptorkitError(
          'MISSING_TENSOR',
          `${where}: field '${field}' is ${v}, but checkpoint ${reader.dir} has tensors for ${have} layer(s); does config.json match the weights?`,
        );
      }
    }
  };
  walk(config, '', 0);
}

/**
 * Build the model shape-only and run the loader's checks (names, shapes) against the checkpoint
 * headers without allocating or reading any weight. Throws what loadWeights would throw. The loader
 * is passed in (hf.ts's loadWeights) so that this file does not import hf.ts, which imports it.
 */
export async function preflightWeights(
  load: typeof loadWeights,
  build: () => Module,
  reader: CheckpointReader,
  opts: LoadWeightsOptions,
  hfConfig?: Record<string, unknown>,
  where = 'config.json',
): Promise<void> {
  if (hfConfig && opts.strict !== false) checkLayerCounts(hfConfig, reader, where);
  const model = shapeOnly(build);
  for (const [name] of model.namedParameters()) {
    if (!reader.has(name)) continue;
    const dtype = reader.info(name).dtype;
    if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16' && dtype !== 'F64') {
      throw new AdaptorkitError('BAD_FILE', `checkpoint ${reader.dir}: tensor '${name}' has dtype ${dtype}; a weight must be a float tensor`);
    }
  }
  // loadWeights checks everything before its first read; a reader whose read() stops the load
  // runs exactly those checks and nothing else.
  const dry = Object.create(reader) as CheckpointReader;
  dry.read = () => Promise.reject(new PreflightPassed());
  try {
    await load(model, dry, opts);
  } catch (e) {
    if (!(e instanceof PreflightPassed)) throw e;
  }
}
