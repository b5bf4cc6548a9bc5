// Fuzz: a seeded, generated corpus of hostile safetensors files, config.json files and tokenizer
// folders (issue 23). Every case must finish within a few seconds, fail only with an
// AdaptorkitError, and never be accepted when the format's rules refuse it (an independent
// statement of the safetensors rules below is the oracle; accepted model folders must describe
// exactly the checkpoint's tensors; out-of-range ids and backtracking regexes must be refused).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdaptorkitError, initBackend } from '../index.js';
import { Rng } from '../train/rng.js';
import { loadCausalLM } from './hf.js';
import { SafetensorsFile } from './safetensors.js';
import { loadTokenizer } from './tokenizer.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures');
const CASE_MS = 3000;
let root: string;
beforeAll(async () => {
  await initBackend('cpu', { log: false });
  root = mkdtempSync(path.join(tmpdir(), 'akit-fuzz-'));
});

type Outcome = { ok: true } | { ok: false; error: unknown } | { hang: true };
async function run(fn: () => Promise<void>): Promise<{ out: Outcome; ms: number }> {
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<Outcome>((r) => (timer = setTimeout(() => r({ hang: true }), CASE_MS)));
  const out = await Promise.race([fn().then((): Outcome => ({ ok: true }), (error: unknown): Outcome => ({ ok: false, error })), hang]);
  clearTimeout(timer);
  return { out, ms: Date.now() - t0 };
}

/** Fails the case unless it finished in time and any failure is an AdaptorkitError. */
function checkOutcome(name: string, r: { out: Outcome; ms: number }): boolean {
  expect('hang' in r.out, `${name} hung`).toBe(false);
  expect(r.ms, `${name} took ${r.ms} ms`).toBeLessThan(CASE_MS);
  if ('ok' in r.out && !r.out.ok) {
    expect(r.out.error, `${name}: ${String(r.out.error)}`).toBeInstanceOf(AdaptorkitError);
    return false;
  }
  return true;
}

const HOSTILE_NUMS: unknown[] = [1e6, 2 ** 31 - 1, 2 ** 40, -1, 0, 1.5, '32', null, true, [], {}, 2 ** 53 + 2, 1e308, 'NaN', 'Infinity'];
const rawNum = (v: unknown): string => (v === 'NaN' || v === 'Infinity' ? (v as string) : JSON.stringify(v));

// ---------------------------------------------------------------- safetensors
const SIZES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** The safetensors rules, stated independently of the reader: does the format accept these bytes? */
function formatAccepts(buf: Buffer): boolean {
  if (buf.length < 8) return false;
  const n = buf.readBigUInt64LE(0);
  if (n > 100_000_000n || n > BigInt(buf.length - 8)) return false;
  let h: unknown;
  try {
    h = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + Number(n))));
  } catch {
    return false;
  }
  if (typeof h !== 'object' || h === null || Array.isArray(h)) return false;
  const dataLen = BigInt(buf.length - 8 - Number(n));
  const spans: [bigint, bigint][] = [];
  const uint = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  for (const [k, v] of Object.entries(h as Record<string, unknown>)) {
    if (k === '__metadata__') {
      if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string')) return false;
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) return false;
    if (typeof e.dtype !== 'string' || !(e.dtype in SIZES)) return false;
    if (!Array.isArray(e.shape) || !e.shape.every(uint)) return false;
    const o = e.data_offsets;
    if (!Array.isArray(o) || o.length !== 2 || !uint(o[0]) || !uint(o[1])) return false;
    const [b, end] = [BigInt(o[0] as number), BigInt(o[1] as number)];
    if (b > end || end > dataLen) return false;
    if ((e.shape as number[]).reduce((p, d) => p * BigInt(d), BigInt(SIZES[e.dtype]!)) !== end - b) return false;
    spans.push([b, end]);
  }
  spans.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : 1));
  let pos = 0n;
  for (const [b, e] of spans) {
    if (b !== pos) return false;
    pos = e;
  }
  return pos === dataLen;
}

function safetensorsCase(rng: Rng, i: number): { name: string; bytes: Buffer } {
  const dtypes = Object.keys(SIZES);
  const header: Record<string, Record<string, unknown>> = {};
  let off = 0;
  const count = 1 + rng.int(4);
  for (let t = 0; t < count; t++) {
    const dtype = dtypes[rng.int(dtypes.length)]!;
    const shape = Array.from({ length: rng.int(3) }, () => 1 + rng.int(4));
    const bytes = shape.reduce((p, d) => p * d, SIZES[dtype]!);
    header[`t${t}`] = { dtype, shape, data_offsets: [off, off + bytes] };
    off += bytes;
  }
  const data = Buffer.alloc(off); // zeros: every dtype's zero is valid (I64 0 fits int32)
  const names = Object.keys(header);
  const pick = (): Record<string, unknown> => header[names[rng.int(names.length)]!]!;
  let text: string | undefined;
  let lenOverride: bigint | undefined;
  let tail = 0;
  let cut = -1;
  const kind = rng.int(12);
  const ops = ['valid', 'shape', 'offsets', 'dtype', 'entry', 'metadata', 'truncate', 'length', 'trailing', 'flip', 'nesting', 'duplicate'];
  switch (ops[kind]) {
    case 'shape': {
      const e = pick();
      const s = [...(e.shape as number[]), 1];
      s[rng.int(s.length)] = HOSTILE_NUMS[rng.int(HOSTILE_NUMS.length)] as number;
      e.shape = rng.int(4) === 0 ? Array(17).fill(1) : s;
      break;
    }
    case 'offsets': {
      const e = pick();
      const o = [...(e.data_offsets as number[])];
      o[rng.int(2)] = rng.int(3) === 0 ? (HOSTILE_NUMS[rng.int(HOSTILE_NUMS.length)] as number) : o[rng.int(2)]! + rng.int(9) - 4;
      e.data_offsets = o;
      break;
    }
    case 'dtype':
      pick().dtype = ['f32', 'F8', 'Q4', 1, null, 'I64', 'F64', 'U8'][rng.int(8)];
      break;
    case 'entry':
      header[names[rng.int(names.length)]!] = [null, 1, 'x', [], { dtype: 'F32' }][rng.int(5)] as Record<string, unknown>;
      break;
    case 'metadata':
      (header as Record<string, unknown>).__metadata__ = [{ a: 'b' }, { a: 1 }, 'x', null, { a: { b: 'c' } }][rng.int(5)];
      break;
    case 'truncate':
      cut = rng.int(8 + JSON.stringify(header).length + off);
      break;
    case 'length':
      lenOverride = [0n, 1n, 2n ** 63n, 100_000_001n, BigInt(JSON.stringify(header).length + 1 + rng.int(5)), BigInt(JSON.stringify(header).length - 1 - rng.int(5))][rng.int(6)];
      break;
    case 'trailing':
      tail = 1 + rng.int(16);
      break;
    case 'nesting': {
      const d = 50_000 + rng.int(50_000);
      text = rng.int(2) === 0 ? `{"__metadata__":${'['.repeat(d)}` : `{"__metadata__":${'['.repeat(d)}${']'.repeat(d)}}`;
      break;
    }
    case 'duplicate':
      text = JSON.stringify(header).slice(0, -1) + `,"${names[0]}":${JSON.stringify(header[names[0]!])}}`;
      break;
  }
  let hb = Buffer.from(text ?? JSON.stringify(header));
  if (ops[kind] === 'flip') {
    hb = Buffer.from(hb);
    for (let f = 0; f < 1 + rng.int(3); f++) hb[rng.int(hb.length)] = rng.int(256);
  }
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lenOverride ?? BigInt(hb.length));
  let bytes = Buffer.concat([len, hb, data, Buffer.alloc(tail)]);
  if (cut >= 0) bytes = bytes.subarray(0, cut);
  return { name: `st-${i}-${ops[kind]}`, bytes };
}

describe('fuzz: generated hostile corpus', () => {
  it('safetensors: 160 seeded files agree with the format rules, read fully when accepted', async () => {
    const rng = new Rng(2301);
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 160; i++) {
      const c = safetensorsCase(rng, i);
      const f = path.join(root, `${c.name}.safetensors`);
      writeFileSync(f, c.bytes);
      const rules = formatAccepts(c.bytes) && !c.name.endsWith('duplicate');
      let limit = false;
      const r = await run(async () => {
        const st = await SafetensorsFile.open(f);
        try {
          for (const n of st.names()) (await st.read(n)).dispose();
        } finally {
          await st.close();
        }
      });
      if (checkOutcome(c.name, r)) {
        expect(rules, `${c.name} was accepted but the format refuses it`).toBe(true);
        accepted++;
      } else {
        const e = (r.out as { error: AdaptorkitError }).error;
        limit = /rank \d+ is larger than 16/.test(e.message); // an implementation limit, not a format rule
        expect(rules && !limit, `${c.name} was refused but the format accepts it: ${e.message}`).toBe(false);
        expect(e.code, c.name).toBe('BAD_FILE');
        refused++;
      }
    }
    expect(accepted).toBeGreaterThan(10); // the generator makes valid files too: acceptance is tested, not just refusal
    expect(refused).toBeGreaterThan(100);
  });

  it('config.json: 100 seeded mutations of a real folder are refused or describe exactly its tensors', async () => {
    const base = JSON.parse(readFileSync(path.join(FIXTURES, 'llama-f32', 'config.json'), 'utf8')) as Record<string, unknown>;
    const shapeKeys = ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'head_dim'];
    const otherKeys = ['max_position_embeddings', 'rope_theta', 'rms_norm_eps', 'num_experts', 'sliding_window', 'tie_word_embeddings', 'model_type'];
    const rng = new Rng(2302);
    const baseLm = await loadCausalLM(path.join(FIXTURES, 'llama-f32'));
    const baseCount = baseLm.countParameters();
    baseLm.dispose();
    for (let i = 0; i < 100; i++) {
      const dir = path.join(root, `cfg-${i}`);
      mkdirSync(dir);
      symlinkSync(path.join(FIXTURES, 'llama-f32', 'model.safetensors'), path.join(dir, 'model.safetensors'));
      let text: string;
      let mustRefuse = false;
      const k = rng.int(10);
      if (k < 6) {
        const key = k < 4 ? shapeKeys[rng.int(shapeKeys.length)]! : otherKeys[rng.int(otherKeys.length)]!;
        const v = rng.int(3) === 0 ? (base[key] as number) * 2 : HOSTILE_NUMS[rng.int(HOSTILE_NUMS.length)];
        text = JSON.stringify({ ...base, [key]: '@@' }).replace('"@@"', rawNum(v));
        mustRefuse = shapeKeys.includes(key) && v !== base[key];
      } else if (k === 6) {
        text = JSON.stringify({ ...base, text_config: { hidden_size: HOSTILE_NUMS[rng.int(4)], nested: JSON.parse('{"a":'.repeat(40) + '1' + '}'.repeat(40)) as unknown } });
        mustRefuse = true;
      } else if (k === 7) {
        const full = JSON.stringify(base);
        text = full.slice(0, rng.int(full.length));
        mustRefuse = true;
      } else if (k === 8) {
        text = ['', '[]', 'null', '7', '\uFEFF{}', '['.repeat(200_000), '{"model_type":"llama"}'][rng.int(7)]!;
        mustRefuse = true;
      } else {
        text = JSON.stringify(base);
        mustRefuse = true;
        if (rng.int(2) === 0) mkdirSync(path.join(dir, 'config.json'));
        else execFileSync('mkfifo', [path.join(dir, 'config.json')]);
      }
      if (k !== 9) writeFileSync(path.join(dir, 'config.json'), text);
      let count = -1;
      const r = await run(async () => {
        const lm = await loadCausalLM(dir);
        count = lm.countParameters();
        lm.dispose();
      });
      if (checkOutcome(`cfg-${i}`, r)) {
        expect(mustRefuse, `cfg-${i} was accepted: ${text.slice(0, 200)}`).toBe(false);
        expect(count).toBe(baseCount);
      }
    }
  });

  it('tokenizer folders: 100 seeded hostile tokenizer.json / tokenizer_config.json load, encode and render safely', async () => {
    const rng = new Rng(2303);
    const evil = ['(a+)+$', '(a*)*b', '(?:\\s*a)+!', '(a|a)*!', '(a|ab)+!', '((ab)*c)+', '(\\w+\\s?)*$', '(?:a+){2,}!'];
    const benign = ['\\s+', "'s|'t| ?\\p{L}+| ?\\p{N}+|\\s+(?!\\S)|\\s+", '[ab]+', '(?:ab)+', '\\p{N}{1,3}', '(', '[', 'a{2,1}'];
    const templates = ['{% for m in messages %}{{ m.content }}{% endfor %}', '{{ raise_exception("no") }}', '{% for m in messages %}', '{% for i in range(10**9) %}x{% endfor %}', '{% if x %}'.repeat(5000), '{{ ' + '('.repeat(3000) + '1' + ')'.repeat(3000) + ' }}', '{{ messages | tojson(indent=2) }}'];
    for (let i = 0; i < 100; i++) {
      const tj: Record<string, unknown> = {
        version: '1.0',
        normalizer: null,
        pre_tokenizer: { type: 'Whitespace' },
        post_processor: null,
        decoder: null,
        model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2, '!': 3 }, merges: ['a b'], unk_token: null, dropout: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false },
        added_tokens: [{ id: 4, content: '<eos>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false }],
      };
      const tc: Record<string, unknown> = { eos_token: '<eos>', chat_template: templates[0] };
      let mustRefuse = false;
      let raw: string | undefined;
      const k = rng.int(8);
      if (k === 0) {
        const id = [2 ** 31 - 1, -1, 1.5, '4', null, 2 ** 24, 5, 70_000][rng.int(8)];
        (tj.added_tokens as { id: unknown }[])[0]!.id = id;
        mustRefuse = typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= 70_000;
      } else if (k === 1) {
        const id = HOSTILE_NUMS[rng.int(HOSTILE_NUMS.length)];
        (tj.model as { vocab: Record<string, unknown> }).vocab.b = id;
        mustRefuse = typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= 2 ** 24;
      } else if (k === 2 || k === 3) {
        const bad = k === 2;
        const pattern = bad ? evil[rng.int(evil.length)]! : benign[rng.int(benign.length)]!;
        tj.pre_tokenizer = { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false }] };
        mustRefuse = bad;
      } else if (k === 4) {
        let p: unknown = { type: 'Whitespace' };
        const depth = rng.int(2) === 0 ? 3 : 40;
        for (let d = 0; d < depth; d++) p = { type: 'Sequence', pretokenizers: [p] };
        tj.pre_tokenizer = p;
        mustRefuse = depth > 30;
      } else if (k === 5) {
        tc.chat_template = templates[rng.int(templates.length)];
      } else if (k === 6) {
        raw = JSON.stringify(tj).slice(0, rng.int(200));
        mustRefuse = true;
      } else {
        tc.added_tokens_decoder = { [String([4, 2 ** 31, -1, 'x'][rng.int(4)])]: { content: '<eos>' } };
        mustRefuse = !('4' in (tc.added_tokens_decoder as object));
      }
      const dir = path.join(root, `tok-${i}`);
      mkdirSync(dir);
      writeFileSync(path.join(dir, 'tokenizer.json'), raw ?? JSON.stringify(tj));
      writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tc));
      let loaded = false;
      const r = await run(async () => {
        const tok = await loadTokenizer(dir);
        loaded = true;
        for (const s of ['a'.repeat(28) + '!', 'ab ab <eos>', 'a b\u0000\uD800 ']) tok.decode(tok.encode(s));
        tok.applyChatTemplate([{ role: 'user', content: 'ab' }]);
      });
      checkOutcome(`tok-${i}`, r);
      if (mustRefuse) expect(loaded, `tok-${i} was loaded: ${JSON.stringify(tj.pre_tokenizer).slice(0, 120)} ${JSON.stringify(tj.added_tokens).slice(0, 80)}`).toBe(false);
    }
  });

  it('non-regular files in every role: FIFOs, directories, /dev/zero, dangling symlinks are refused at once', async () => {
    const roles: { file: string; load: (dir: string) => Promise<unknown> }[] = [
      { file: 'model.safetensors', load: (d) => loadCausalLM(d) },
      { file: 'model.safetensors.index.json', load: (d) => loadCausalLM(d) },
      { file: 'config.json', load: (d) => loadCausalLM(d) },
      { file: 'tokenizer.json', load: (d) => loadTokenizer(d) },
      { file: 'tokenizer_config.json', load: (d) => loadTokenizer(d) },
    ];
    const kinds = ['fifo', 'dir', 'devzero', 'dangling', 'fifo-link'];
    let i = 0;
    for (const role of roles) {
      for (const kind of kinds) {
        const dir = path.join(root, `nonreg-${i++}`);
        mkdirSync(dir);
        writeFileSync(path.join(dir, 'config.json'), readFileSync(path.join(FIXTURES, 'llama-f32', 'config.json')));
        writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify({ version: '1.0', normalizer: null, pre_tokenizer: { type: 'Whitespace' }, post_processor: null, decoder: null, model: { type: 'WordLevel', vocab: { a: 0, '[UNK]': 1 }, unk_token: '[UNK]' }, added_tokens: [] }));
        writeFileSync(path.join(dir, 'tokenizer_config.json'), '{}');
        const f = path.join(dir, role.file);
        execFileSync('rm', ['-f', f]);
        if (kind === 'fifo') execFileSync('mkfifo', [f]);
        else if (kind === 'dir') mkdirSync(f);
        else if (kind === 'devzero') symlinkSync('/dev/zero', f);
        else if (kind === 'dangling') symlinkSync(path.join(dir, 'nowhere'), f);
        else {
          execFileSync('mkfifo', [path.join(dir, 'pipe')]);
          symlinkSync(path.join(dir, 'pipe'), f);
        }
        const name = `${role.file} as ${kind}`;
        const r = await run(async () => void (await role.load(dir)));
        // a dangling tokenizer_config.json is an absent one (it is optional)
        if (role.file === 'tokenizer_config.json' && kind === 'dangling') {
          expect(checkOutcome(name, r), `${name}: ${String((r.out as { error?: unknown }).error)}`).toBe(true);
          continue;
        }
        expect(checkOutcome(name, r), `${name} was accepted`).toBe(false);
        expect(['BAD_FILE', 'IO_ERROR'], name).toContain(((r.out as { error: AdaptorkitError }).error).code);
      }
    }
    expect(i).toBe(25);
  });
});
