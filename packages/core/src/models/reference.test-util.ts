/**
 * An independent, deliberately naive float64 LLaMA forward written from the HF definition with
 * plain loops (no tfjs), used only by tests to check CausalLM's numerics.
 */
import type { CausalLM } from './causal-lm.js';

type Mat = Float64Array<ArrayBufferLike>; // row-major

function get(lm: CausalLM, name: string): { data: Float64Array; shape: number[] } {
  const p = lm.namedParameters().find(([n]) => n === name)?.[1];
  if (!p) throw new Error(`no parameter ${name}`);
  // work in HF layout ([out, in] for Linear) to stay independent of our storage choice
  const t = p.toExternal();
  const data = Float64Array.from(t.dataSync());
  const shape = t.shape;
  t.dispose();
  return { data, shape };
}

/** y[t, o] = sum_i x[t, i] * W[o, i] (+ b[o]) with W in HF [out, in] layout. */
function lin(x: Mat, T: number, W: { data: Float64Array; shape: number[] }, b?: Float64Array): Mat {
  const [out, inF] = W.shape as [number, number];
  const y = new Float64Array(T * out);
  for (let t = 0; t < T; t++)
    for (let o = 0; o < out; o++) {
      let s = b ? b[o]! : 0;
      for (let i = 0; i < inF; i++) s += x[t * inF + i]! * W.data[o * inF + i]!;
      y[t * out + o] = s;
    }
  return y;
}

function rmsnorm(x: Mat, T: number, d: number, w: Float64Array, eps: number): Mat {
  const y = new Float64Array(T * d);
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let i = 0; i < d; i++) ss += x[t * d + i]! ** 2;
    const r = 1 / Math.sqrt(ss / d + eps);
    for (let i = 0; i < d; i++) y[t * d + i] = x[t * d + i]! * r * w[i]!;
  }
  return y;
}

/** Logits [T, V] for one sequence of ids. */
export function referenceLlamaLogits(lm: CausalLM, ids: number[]): Float64Array {
  const c = lm.config;
  const T = ids.length;
  const d = c.hiddenSize;
  const H = c.numHeads;
  const Hkv = c.numKVHeads;
  const hd = c.headDim;
  const E = get(lm, 'model.embed_tokens.weight');
  let h: Mat = new Float64Array(T * d);
  ids.forEach((id, t) => h.set(E.data.subarray(id * d, (id + 1) * d), t * d));
  // rotary: inv_freq[i] = theta^(-2i/hd); rotate_half pairs i with i + hd/2
  const half = hd / 2;
  const rope = (v: Mat, heads: number): void => {
    for (let t = 0; t < T; t++)
      for (let hh = 0; hh < heads; hh++)
        for (let i = 0; i < half; i++) {
          const ang = t * Math.pow(c.ropeTheta, (-2 * i) / hd);
          const base = t * heads * hd + hh * hd;
          const x1 = v[base + i]!;
          const x2 = v[base + i + half]!;
          v[base + i] = x1 * Math.cos(ang) - x2 * Math.sin(ang);
          v[base + i + half] = x2 * Math.cos(ang) + x1 * Math.sin(ang);
        }
  };
  for (let l = 0; l < c.numLayers; l++) {
    const pre = `model.layers.${l}.`;
    const x = rmsnorm(h, T, d, get(lm, pre + 'input_layernorm.weight').data, c.rmsNormEps);
    const q = lin(x, T, get(lm, pre + 'self_attn.q_proj.weight'));
    const k = lin(x, T, get(lm, pre + 'self_attn.k_proj.weight'));
    const v = lin(x, T, get(lm, pre + 'self_attn.v_proj.weight'));
    rope(q, H);
    rope(k, Hkv);
    const attn = new Float64Array(T * H * hd);
    for (let hh = 0; hh < H; hh++) {
      const kv = Math.floor(hh / (H / Hkv)); // HF repeat_kv
      for (let i = 0; i < T; i++) {
        const scores: number[] = [];
        for (let j = 0; j <= i; j++) {
          let s = 0;
          for (let e = 0; e < hd; e++) s += q[i * H * hd + hh * hd + e]! * k[j * Hkv * hd + kv * hd + e]!;
          scores.push(s / Math.sqrt(hd));
        }
        const m = Math.max(...scores);
        const ex = scores.map((s) => Math.exp(s - m));
        const z = ex.reduce((a, b) => a + b, 0);
        for (let e = 0; e < hd; e++) {
          let acc = 0;
          for (let j = 0; j <= i; j++) acc += (ex[j]! / z) * v[j * Hkv * hd + kv * hd + e]!;
          attn[i * H * hd + hh * hd + e] = acc;
        }
      }
    }
    const o = lin(attn, T, get(lm, pre + 'self_attn.o_proj.weight'));
    for (let i = 0; i < h.length; i++) h[i]! += o[i]!;
    const x2 = rmsnorm(h, T, d, get(lm, pre + 'post_attention_layernorm.weight').data, c.rmsNormEps);
    const g = lin(x2, T, get(lm, pre + 'mlp.gate_proj.weight'));
    const u = lin(x2, T, get(lm, pre + 'mlp.up_proj.weight'));
    for (let i = 0; i < g.length; i++) g[i] = (g[i]! / (1 + Math.exp(-g[i]!))) * u[i]!;
    const dn = lin(g, T, get(lm, pre + 'mlp.down_proj.weight'));
    for (let i = 0; i < h.length; i++) h[i]! += dn[i]!;
  }
  h = rmsnorm(h, T, d, get(lm, 'model.norm.weight').data, c.rmsNormEps);
  const head = c.tieWordEmbeddings ? E : get(lm, 'lm_head.weight');
  return lin(h, T, head);
}
