// The papers' scale on one machine (issue 27): a LLaMA-shaped frozen base held in bf16 on the native
// backend, MMA adapters (LaVIN's setting: r 8, 2 branches, 2 groups; with a CLIP ViT-L/14 tower the
// trainable count is the paper's 3,781,296 at the 7B shape), a few AdamW steps at batch 1 x SEQ
// tokens, printing step time and peak RSS; then the PyTorch twin (torch_bf16_scale.py beside it) in a
// child process on the same shape and checkpoint.
//
//   nice node experiments/backend-native/bf16-scale.mjs [1b|3b|7b] [--steps 3] [--seq 256]
//        [--dtype bf16|f32] [--recompute layers|none] [--no-vision] [--no-torch] [--threads N]
//
// It first writes a random bf16 checkpoint (config.json + model.safetensors, streamed one tensor at
// a time) under /tmp/akit-bf16-bench-<shape>/ (kept for reruns; delete it when done). The vision
// tower is random float32 in memory (frozen), not loaded from disk. Memory: 7B needs ~14-22 GB.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, writeSync, closeSync, writeFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdamW, VisionEncoder, disposeGrads, initBackend, loadCausalLM, manualSeed, tf, valueAndGrads, weightStorage } from '@adaptorkit/core';
import { attachMma } from '@adaptorkit/mma';

const SHAPES = {
  // a smoke test of the script itself
  tiny: { hidden_size: 256, intermediate_size: 704, num_hidden_layers: 2, num_attention_heads: 4 },
  // TinyLlama-1.1B widths with full multi-head attention (as LLaMA-1), ~1.26B parameters
  '1b': { hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22, num_attention_heads: 32 },
  // OpenLLaMA-3B, ~3.4B
  '3b': { hidden_size: 3200, intermediate_size: 8640, num_hidden_layers: 26, num_attention_heads: 32 },
  // LLaMA-7B, 6,738,415,616
  '7b': { hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32 },
};
/** @type {import('@adaptorkit/core').VisionConfig} */
const VIT_L14 = { kind: 'clip', imageSize: 224, patchSize: 14, hiddenSize: 1024, intermediateSize: 4096, numLayers: 24, numHeads: 16 };

const argv = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const shapeName = argv.find((a) => a in SHAPES) ?? '1b';
const steps = Number(flag('steps', '3'));
const seq = Number(flag('seq', '256'));
const dtype = flag('dtype', 'bf16');
const recompute = flag('recompute', 'layers');
const vision = !argv.includes('--no-vision');
const threads = flag('threads', undefined);
const shape = SHAPES[shapeName];
const hf = { model_type: 'llama', vocab_size: 32000, rms_norm_eps: 1e-6, rope_theta: 10000, max_position_embeddings: 2048, num_key_value_heads: shape.num_attention_heads, tie_word_embeddings: false, torch_dtype: 'bfloat16', ...shape };

/** Random bf16 checkpoint, one tensor at a time (never the whole model in memory). */
function writeCheckpoint(dir) {
  const file = join(dir, 'model.safetensors');
  if (existsSync(file)) return file;
  mkdirSync(dir, { recursive: true });
  const d = hf.hidden_size, I = hf.intermediate_size, V = hf.vocab_size;
  /** @type {[string, number[]][]} */
  const t = [['model.embed_tokens.weight', [V, d]], ['model.norm.weight', [d]], ['lm_head.weight', [V, d]]];
  for (let l = 0; l < hf.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    for (const n of ['q', 'k', 'v', 'o']) t.push([`${p}.self_attn.${n}_proj.weight`, [d, d]]);
    t.push([`${p}.mlp.gate_proj.weight`, [I, d]], [`${p}.mlp.up_proj.weight`, [I, d]], [`${p}.mlp.down_proj.weight`, [d, I]]);
    t.push([`${p}.input_layernorm.weight`, [d]], [`${p}.post_attention_layernorm.weight`, [d]]);
  }
  const header = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const [name, s] of t) {
    const n = s.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: 'BF16', shape: s, data_offsets: [off, off + n] };
    off += n;
  }
  let h = Buffer.from(JSON.stringify(header));
  h = Buffer.concat([h, Buffer.alloc((8 - (h.length % 8)) % 8, 0x20)]);
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeSync(fd, len);
  writeSync(fd, h);
  let s = 12345 >>> 0;
  for (const [name, sh] of t) {
    const n = sh.reduce((a, b) => a * b, 1);
    const isNorm = sh.length === 1;
    const std = isNorm ? 0 : name.includes('embed') ? 0.02 : 1 / Math.sqrt(sh[1]);
    const chunk = 1 << 20;
    for (let i = 0; i < n; i += chunk) {
      const m = Math.min(chunk, n - i);
      const f = new Float32Array(m);
      for (let j = 0; j < m; j++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        f[j] = isNorm ? 1 : ((s / 2 ** 32) * 2 - 1) * std * 1.732; // uniform with this std
      }
      const u32 = new Uint32Array(f.buffer);
      const b = new Uint16Array(m);
      for (let j = 0; j < m; j++) b[j] = u32[j] >>> 16; // truncation is fine for random weights
      writeSync(fd, new Uint8Array(b.buffer));
    }
  }
  closeSync(fd);
  renameSync(tmp, file);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(hf));
  return file;
}

const dir = `/tmp/akit-bf16-bench-${shapeName}`;
const t0 = performance.now();
writeCheckpoint(dir);
writeFileSync(join(dir, 'config.json'), JSON.stringify(hf));
const writeS = (performance.now() - t0) / 1000;

if (threads) process.env.ADAPTORKIT_NATIVE_THREADS = threads;
const backend = await initBackend('native', { log: false });
const rss = () => process.memoryUsage().rss / 2 ** 30;
const t1 = performance.now();
const lm = await loadCausalLM(dir, { weightsDtype: dtype });
const loadS = (performance.now() - t1) / 1000;
const rssAfterLoad = rss();
manualSeed(0);
const vis = vision ? new VisionEncoder(VIT_L14) : undefined;
const IMG = 5;
const m = attachMma({ lm, vision: vis, imageTokenId: IMG }, { temperature: 10 });
lm.recompute = recompute;
const params = m.namedMmaParameters().map(([, p]) => p);
const trainable = params.reduce((a, p) => a + p.size, 0);
const opt = new AdamW(params, { lr: 1e-4, weightDecay: 0 });

const ids = new Int32Array(seq);
let s = 99;
ids[0] = 1;
for (let i = 1; i < seq; i++) {
  s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
  ids[i] = i <= (vision ? m.numVisualTokens : 0) ? IMG : 10 + (s % 31000);
}
const x = tf.tensor2d(ids, [1, seq], 'int32');
const images = vision ? tf.randomUniform([1, 224, 224, 3], 0, 1, 'float32', 3) : undefined;
const stepMs = [];
const cpuS = []; // user + system CPU time of the process per step (all threads): survives a loaded machine
const losses = [];
for (let i = 0; i < steps; i++) {
  const a = performance.now();
  const c0 = process.cpuUsage();
  const { loss, grads } = valueAndGrads(() => m.loss({ ids: x, labels: x, ...(images ? { images } : {}), ctx: { training: true } }), params);
  opt.step(grads);
  disposeGrads(grads);
  stepMs.push(performance.now() - a);
  const c = process.cpuUsage(c0);
  cpuS.push((c.user + c.system) / 1e6);
  losses.push(loss);
  console.error(`[adaptorkit] step ${i}: ${(stepMs[i] / 1000).toFixed(2)} s, loss ${loss.toFixed(4)}, rss ${rss().toFixed(2)} GiB`);
}
const st = weightStorage(lm);
const mine = {
  who: 'adaptorkit',
  shape: shapeName,
  backend: backend.name,
  detail: backend.detail,
  weightsDtype: dtype,
  recompute,
  vision,
  seq,
  trainable,
  lmParams: lm.countParameters(),
  weightGiB: { bf16: st.bf16Bytes / 2 ** 30, f32: st.f32Bytes / 2 ** 30 },
  checkpointWriteS: writeS,
  loadS,
  rssAfterLoadGiB: rssAfterLoad,
  stepS: stepMs.map((v) => v / 1000),
  cpuS,
  losses,
  peakRssGiB: process.resourceUsage().maxRSS / 2 ** 20,
};
console.log(JSON.stringify(mine));

if (!argv.includes('--no-torch')) {
  // the twin runs after this process freed nothing: run it as a child only where both fit (1b, 3b)
  const py = join(dirname(fileURLToPath(import.meta.url)), 'torch_bf16_scale.py');
  // the same OpenBLAS kernels for PyTorch as run.mjs gives it (OPENBLAS_CORETYPE is set by the addon's loader)
  const env = { ...process.env };
  if (existsSync('/usr/lib/x86_64-linux-gnu/openblas-openmp')) env.LD_LIBRARY_PATH = '/usr/lib/x86_64-linux-gnu/openblas-openmp';
  const r = spawnSync('/usr/bin/python3', [py, dir, String(steps), String(seq), recompute, threads ?? '2'], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  console.log(line);
  try {
    const t = JSON.parse(line);
    const med = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
    console.log(`ratio (torch / adaptorkit): median step ${(med(t.stepS) / med(mine.stepS)).toFixed(2)}x, CPU time per step ${(med(t.cpuS) / med(mine.cpuS)).toFixed(2)}x, peak RSS ${(t.peakRssGiB / mine.peakRssGiB).toFixed(2)}x`);
  } catch {
    console.log(`PyTorch twin failed (exit ${r.status}); it needs /usr/bin/python3 with torch (Debian: apt-get install python3-torch), or pass --no-torch`);
  }
}
