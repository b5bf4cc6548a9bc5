// Regression tests for issue 23's hostile model folders: each finding is refused with a clear
// AdaptorkitError before anything is allocated from the file's claims, and nothing hangs.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdaptorkitError, initBackend, tf } from '../index.js';
import { CheckpointReader } from './checkpoint.js';
import { loadCausalLM, loadVisionEncoder } from './hf.js';
import { SafetensorsFile, MAX_TENSORS } from './safetensors.js';
import { loadTokenizer } from './tokenizer.js';
import { validateConfigFields } from './validate-config.js';
import { backtrackingRisk } from './validate-tokenizer.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures');
let root: string;
beforeAll(async () => {
  await initBackend('cpu', { log: false });
  root = mkdtempSync(path.join(tmpdir(), 'akit-hostile-'));
});

/** The outcome of a promise within ms: its error, 'ok', or 'timeout' (a hang). */
async function outcome(p: Promise<unknown>, ms = 5000): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise((r) => (timer = setTimeout(() => r('timeout'), ms)));
  try {
    return await Promise.race([p.then(() => 'ok', (e: unknown) => e), t]);
  } finally {
    clearTimeout(timer);
  }
}

function expectRefused(got: unknown, code: string, re: RegExp): void {
  expect(got).toBeInstanceOf(AdaptorkitError);
  expect((got as AdaptorkitError).code).toBe(code);
  expect((got as Error).message).toMatch(re);
}

/** Most tensor bytes alive at once (above the start) while fn runs: every new tensor is tracked by the engine. */
async function peakBytes(fn: () => Promise<void>): Promise<number> {
  const engine = tf.engine() as unknown as { trackTensor: (...a: unknown[]) => unknown };
  const orig = engine.trackTensor;
  const start = tf.memory().numBytes;
  let peak = start;
  engine.trackTensor = function (this: unknown, ...a: unknown[]) {
    const r = orig.apply(this, a);
    peak = Math.max(peak, tf.memory().numBytes);
    return r;
  };
  try {
    await fn();
  } finally {
    engine.trackTensor = orig;
  }
  return peak - start;
}

let n = 0;
function llamaFolder(patch: Record<string, unknown> = {}): string {
  const dir = path.join(root, `llama-${n++}`);
  cpSync(path.join(FIXTURES, 'llama-f32'), dir, { recursive: true });
  const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, ...patch }));
  return dir;
}

describe('config.json bounded and cross-checked before allocation', () => {
  it('num_hidden_layers 1e6, vocab_size 2^31-1, hidden_size 2^40, NaN and strings are INVALID_CONFIG naming the field', async () => {
    for (const [patch, field] of [
      [{ num_hidden_layers: 1e6 }, 'num_hidden_layers'],
      [{ vocab_size: 2 ** 31 - 1 }, 'vocab_size'],
      [{ hidden_size: 2 ** 40 }, 'hidden_size'],
      [{ intermediate_size: '64' }, 'intermediate_size'],
      [{ head_dim: 8.5 }, 'head_dim'],
      [{ rope_scaling: { rope_type: 'llama3', factor: 8, original_max_position_embeddings: -1 } }, 'rope_scaling.original_max_position_embeddings'],
    ] as const) {
      const dir = llamaFolder(patch);
      const got = await outcome(loadCausalLM(dir));
      expectRefused(got, 'INVALID_CONFIG', new RegExp(`${path.join(dir, 'config.json')}: field '${field.replace('.', '\\.')}'`));
    }
    const nan = llamaFolder();
    writeFileSync(path.join(nan, 'config.json'), readFileSync(path.join(nan, 'config.json'), 'utf8').replace('"vocab_size":96', '"vocab_size":NaN'));
    expectRefused(await outcome(loadCausalLM(nan)), 'BAD_FILE', /not valid JSON/);
  });

  it('real configs pass the bounds: fixtures, shipped bases, and published configs with size-like real numbers', () => {
    const dirs = ['llama-f32', 'llama-bf16-sharded', 'qwen2-f16-tied', 'clip', 'siglip'].map((d) => path.join(FIXTURES, d));
    const bases = path.resolve(FIXTURES, '../../shapes-bases/models');
    for (const b of ['shapesworld/lm', 'shapesworld/vision', 'shapesworld/multiway', 'shapesworld-sceneqa/lm', 'shapesworld-sceneqa/vision']) dirs.push(path.join(bases, b));
    // the real published configs in the tree (Qwen2.5, Qwen3, Mistral, Gemma 1/2/3, Phi-3, SigLIP so400m)
    const published = path.join(FIXTURES, 'published-configs');
    if (existsSync(published)) for (const d of readdirSync(published)) if (existsSync(path.join(published, d, 'config.json'))) dirs.push(path.join(published, d));
    for (const d of readdirSync(FIXTURES)) if (existsSync(path.join(FIXTURES, d, 'config.json')) && !dirs.includes(path.join(FIXTURES, d))) dirs.push(path.join(FIXTURES, d));
    expect(dirs.length).toBeGreaterThan(15);
    for (const d of dirs) validateConfigFields(JSON.parse(readFileSync(path.join(d, 'config.json'), 'utf8')) as Record<string, unknown>, d);
    // excerpts of published configs (DeepSeek-V2-Lite, Phi-3-mini-128k, Gemma 3 4B, CLIP ViT-B/32 with generation keys)
    validateConfigFields({ model_type: 'deepseek_v2', hidden_size: 2048, qk_rope_head_dim: 64, v_head_dim: 128, n_routed_experts: 64, routed_scaling_factor: 1.0, rope_scaling: { type: 'yarn', factor: 40, mscale: 0.707, mscale_all_dim: 0.707, original_max_position_embeddings: 4096, beta_fast: 32 } });
    validateConfigFields({ model_type: 'phi3', sliding_window: 262144, max_position_embeddings: 131072, rope_scaling: { type: 'longrope', long_factor: [1.07, 1.1], short_factor: [1.0] }, partial_rotary_factor: 1.0 });
    validateConfigFields({ model_type: 'gemma3', text_config: { head_dim: 256, query_pre_attn_scalar: 256, sliding_window: 1024, sliding_window_pattern: 6, rope_scaling: { factor: 8.0, rope_type: 'linear' }, final_logit_softcapping: null, vocab_size: 262208 }, vision_config: { image_size: 896, patch_size: 14, num_channels: 3 }, mm_tokens_per_image: 256 });
    validateConfigFields({ model_type: 'clip', text_config: { max_length: 20, min_length: 0, num_beams: 1, length_penalty: 1.0, no_repeat_ngram_size: 0, chunk_size_feed_forward: 0, max_position_embeddings: 77, projection_dim: 512, initializer_factor: 1.0 }, logit_scale_init_value: 2.6592 });
  });

  it('a config within bounds that the weights do not match is refused with no weight allocated', async () => {
    // 1000 layers / a 1M x 65536 embedding would be allocated and zero-filled before the check on main
    for (const patch of [{ num_hidden_layers: 3 }, { num_hidden_layers: 1000 }, { vocab_size: 1_000_000, hidden_size: 65_536, head_dim: 16_384 }]) {
      let got: unknown;
      const t0 = Date.now();
      const prof = await peakBytes(async () => {
        got = await outcome(loadCausalLM(llamaFolder(patch)));
      });
      expect(got).toBeInstanceOf(AdaptorkitError);
      expect(['SHAPE_MISMATCH', 'MISSING_TENSOR']).toContain((got as AdaptorkitError).code);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(prof, JSON.stringify(patch)).toBe(0); // on main every parameter was allocated first
    }
    // the fixture itself loads, allocating its weights
    const ok = await peakBytes(async () => (await loadCausalLM(llamaFolder())).dispose());
    expect(ok).toBeGreaterThan(90_000);
  });

  it('a vision tower is preflighted too', async () => {
    const dir = path.join(root, 'clip');
    cpSync(path.join(FIXTURES, 'clip'), dir, { recursive: true });
    const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as { vision_config: Record<string, unknown> };
    cfg.vision_config.num_hidden_layers = 5000;
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
    const got = await outcome(loadVisionEncoder(dir));
    expect(got).toBeInstanceOf(AdaptorkitError);
    expectRefused(got, 'MISSING_TENSOR', /field 'vision_config\.num_hidden_layers' is 5000, but checkpoint .* has tensors for \d+ layer/);
  });
});

describe('non-regular files are refused, never opened for a blocking read', () => {
  it('a FIFO named model.safetensors, config.json or tokenizer.json is BAD_FILE at once (it hung every loader)', async () => {
    const st = llamaFolder();
    execFileSync('rm', [path.join(st, 'model.safetensors')]);
    execFileSync('mkfifo', [path.join(st, 'model.safetensors')]);
    expectRefused(await outcome(loadCausalLM(st)), 'BAD_FILE', /model\.safetensors is a FIFO \(named pipe\), not a regular file/);
    expectRefused(await outcome(SafetensorsFile.open(path.join(st, 'model.safetensors'))), 'BAD_FILE', /FIFO/);
    const cfg = llamaFolder();
    execFileSync('rm', [path.join(cfg, 'config.json')]);
    execFileSync('mkfifo', [path.join(cfg, 'config.json')]);
    expectRefused(await outcome(loadCausalLM(cfg)), 'BAD_FILE', /config\.json is a FIFO/);
    const tok = path.join(root, 'tok-fifo');
    mkdirSync(tok);
    execFileSync('mkfifo', [path.join(tok, 'tokenizer.json')]);
    expectRefused(await outcome(loadTokenizer(tok)), 'BAD_FILE', /tokenizer\.json is a FIFO/);
  });

  it('a directory named model.safetensors is BAD_FILE, not a raw EISDIR', async () => {
    const dir = llamaFolder();
    execFileSync('rm', [path.join(dir, 'model.safetensors')]);
    mkdirSync(path.join(dir, 'model.safetensors'));
    expectRefused(await outcome(CheckpointReader.open(dir)), 'BAD_FILE', /model\.safetensors is a directory/);
  });
});

describe('large safetensors headers are parsed in bounded time and memory', () => {
  it(`a header of more than ${MAX_TENSORS} tensors is refused before JSON.parse`, async () => {
    const count = MAX_TENSORS * 3;
    const parts: string[] = [];
    for (let i = 0; i < count; i++) parts.push(`"t${i}":{"dtype":"U8","shape":[1],"data_offsets":[${i},${i + 1}]}`);
    const hb = Buffer.from(`{${parts.join(',')}}`);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(hb.length));
    const f = path.join(root, 'many.safetensors');
    writeFileSync(f, Buffer.concat([len, hb, Buffer.alloc(count)]));
    const t0 = Date.now();
    expectRefused(await outcome(SafetensorsFile.open(f)), 'BAD_FILE', new RegExp(`more than ${MAX_TENSORS} tensors`));
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});

function tinyTokenizer(patch: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: '1.0',
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: null,
    decoder: null,
    model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2, '!': 3 }, merges: ['a b'], unk_token: null, dropout: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false },
    added_tokens: [{ id: 4, content: '<eos>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false }],
    ...patch,
  };
}
function tokFolder(tj: Record<string, unknown>, tc: Record<string, unknown> = { eos_token: '<eos>' }): string {
  const dir = path.join(root, `tok-${n++}`);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tj));
  writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tc));
  return dir;
}

describe('tokenizer files validated', () => {
  it('a valid tiny tokenizer loads', async () => {
    const tok = await loadTokenizer(tokFolder(tinyTokenizer()));
    expect(tok.encode('ab a<eos>')).toEqual([2, 0, 4]);
    expect(tok.eosId).toBe(4);
  });

  it('an added-token id of 2^31-1 (111 s to load on main) or a negative / fractional vocabulary id is BAD_FILE', async () => {
    const huge = tinyTokenizer({ added_tokens: [{ id: 2 ** 31 - 1, content: '<x>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false }] });
    expectRefused(await outcome(loadTokenizer(tokFolder(huge))), 'BAD_FILE', /added_tokens\[0\] \('<x>'\) has id 2147483647, outside \[0, /);
    const neg = tinyTokenizer();
    (neg.model as { vocab: Record<string, number> }).vocab.b = -1;
    expectRefused(await outcome(loadTokenizer(tokFolder(neg))), 'BAD_FILE', /model\.vocab\["b"\] = -1/);
    expectRefused(await outcome(loadTokenizer(tokFolder(tinyTokenizer(), { added_tokens_decoder: { '99999999': { content: 'x' } } }))), 'BAD_FILE', /added_tokens_decoder key/);
  });

  it('a pre-tokenizer regex that backtracks exponentially is refused at load (it hung train on main)', async () => {
    const evil = tinyTokenizer({ pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: '(a+)+$' }, behavior: 'Isolated', invert: false }] } });
    const got = await outcome(loadTokenizer(tokFolder(evil)));
    expectRefused(got, 'BAD_FILE', /regex at 'pre_tokenizer\.pretokenizers\[0\]\.pattern' is refused: .*nested quantifiers/);
  });

  it('the static regex check: real tokenizer patterns pass, exponential ones are refused', () => {
    const real = [
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", // Llama 3
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", // GPT-2
      '[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:\'s|\'t|\'re|\'ve|\'m|\'ll|\'d)?', // o200k style
      '(?:ab)+c', '(a|b)*', '(\\d{1,3})+', // repetition with disjoint or bounded inner parts
    ];
    for (const p of real) expect(backtrackingRisk(p), p).toBeUndefined();
    for (const p of ['(a+)+$', '(a*)*b', '(?:\\s*x)+', '((ab)*c)+', '(a|a)*b', '(a|ab)+c', '(x+x+)+y', '(?:a+){2,}', '(\\w+\\s?)*$']) {
      expect(backtrackingRisk(p), p).toBeDefined();
    }
  });

  it('a 20,000-deep chat template does not stop loading; using it is a BAD_FILE naming tokenizer_config.json', async () => {
    const deep = '{% if x %}'.repeat(20_000) + 'y' + '{% endif %}'.repeat(20_000);
    const dir = tokFolder(tinyTokenizer(), { eos_token: '<eos>', chat_template: deep });
    const tok = await loadTokenizer(dir);
    expect(() => tok.applyChatTemplate([{ role: 'user', content: 'a' }])).toThrow(new RegExp(`${path.join(dir, 'tokenizer_config.json')}: chat_template cannot be parsed: it nests`));
  });
});
