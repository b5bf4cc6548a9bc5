// Peak-memory check of the streaming merge on 7B-shaped checkpoints (LLaMA-2-7B tensor shapes:
// vocab 32000, hidden 4096, intermediate 11008; fewer layers so the files stay small).
//
//   npx turbo run build --filter=@adaptorkit/damc
//   node experiments/damc/merge-rss.mjs [--layers 2] [--method ties] [--dir /tmp/damc-rss]
//
// The generator runs in a child process, so the merge process's peak RSS (VmHWM) counts only the
// merge. Files are written to --dir (not the repo) and removed at the end unless --keep.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (k, d) => { const i = args.indexOf(`--${k}`); return i >= 0 ? args[i + 1] : d; };
const layers = Number(opt('layers', '2'));
const method = opt('method', 'ties');
const dir = opt('dir', '/tmp/damc-rss');
const keep = args.includes('--keep');
const { safetensorsSink, mergeCheckpoints, parseMergeConfig } = await import('@adaptorkit/damc');

const V = 32000, D = 4096, F = 11008;
/** @returns {[string, number[]][]} */
function shapes() {
  /** @type {[string, number[]][]} */
  const s = [['model.embed_tokens.weight', [V, D]], ['model.norm.weight', [D]], ['lm_head.weight', [V, D]]];
  for (let i = 0; i < layers; i++) {
    const p = `model.layers.${i}.`;
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) s.push([`${p}self_attn.${n}.weight`, [D, D]]);
    s.push([`${p}mlp.gate_proj.weight`, [F, D]], [`${p}mlp.up_proj.weight`, [F, D]], [`${p}mlp.down_proj.weight`, [D, F]]);
    s.push([`${p}input_layernorm.weight`, [D]], [`${p}post_attention_layernorm.weight`, [D]]);
  }
  return s.sort(([a], [b]) => (a < b ? -1 : 1));
}

function rssHwmMiB() {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

if (args[0] === '--generate') {
  // child: write one model with seeded pseudo-random values (base + seed-dependent perturbation)
  const file = args[1];
  const seed = Number(args[2]);
  const sink = safetensorsSink(file);
  const list = shapes();
  await sink.begin(list.map(([name, shape]) => ({ name, shape, dtype: 'BF16' })));
  for (const [name, shape] of list) {
    const n = shape.reduce((a, b) => a * b, 1);
    const a = new Float32Array(n);
    let x = 0x9e3779b9 ^ (name.length * 2654435761);
    let y = (seed + 1) * 0x85ebca6b;
    for (let j = 0; j < n; j++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5; // shared "base" part
      y ^= y << 13; y ^= y >>> 17; y ^= y << 5; // per-model part
      a[j] = ((x | 0) / 2147483648) * 0.02 + (seed ? ((y | 0) / 2147483648) * 0.002 : 0);
    }
    await sink.write(name, a);
  }
  await sink.end();
  process.exit(0);
}

mkdirSync(dir, { recursive: true });
const files = ['base', 'a', 'b'].map((n) => path.join(dir, `${n}.safetensors`));
const t0 = Date.now();
files.forEach((f, i) => {
  if (existsSync(f)) return;
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--generate', f, String(i), '--layers', String(layers)], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`generating ${f} failed`);
});
const sizes = files.map((f) => statSync(f).size);
console.log(`generated ${files.length} checkpoints of ${(sizes[0] / 2 ** 30).toFixed(2)} GiB each (bf16, ${layers} layers of LLaMA-7B shape) in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

const base = rssHwmMiB();
const cfg = parseMergeConfig({
  merge_method: method,
  ...(method === 'linear' ? {} : { base_model: files[0] }),
  models: [{ model: files[1], parameters: { weight: 0.5, density: 0.5 } }, { model: files[2], parameters: { weight: 0.5, density: 0.5 } }],
  dtype: 'bfloat16',
});
const out = path.join(dir, 'merged.safetensors');
const rep = await mergeCheckpoints(cfg, out);
const peak = rssHwmMiB();
const largestMiB = (rep.largest * 4) / 2 ** 20;
console.log(JSON.stringify({
  method, layers, checkpointGiB: +(sizes[0] / 2 ** 30).toFixed(3), inputsGiB: +(sizes.reduce((a, b) => a + b, 0) / 2 ** 30).toFixed(3),
  outputGiB: +(statSync(out).size / 2 ** 30).toFixed(3), tensors: rep.tensors, seconds: rep.seconds,
  rssBeforeMergeMiB: Math.round(base), peakRssMiB: Math.round(peak), largestTensorF32MiB: Math.round(largestMiB),
  peakInLargestTensors: +((peak - base) / largestMiB).toFixed(2),
}, null, 1));
if (!keep) rmSync(dir, { recursive: true, force: true });
