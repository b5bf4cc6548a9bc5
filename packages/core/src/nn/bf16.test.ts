/**
 * bf16-stored frozen weights (base.weightsDtype: bf16) on the native backend, against the same bf16
 * checkpoint upcast to float32: stored bits identical to the file's, logits and input gradients
 * equal to float tolerance, training losses tracking, and the kernels at sizes that cross blocks.
 * Skipped, with the reason, where the native backend is absent.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/init.js';
import { CheckpointReader } from '../io/checkpoint.js';
import { bf16ToF32, f32ToBf16 } from '../io/dtypes.js';
import { loadCausalLM, saveWeights } from '../io/hf.js';
import { mergedEntries } from '../io/merge-adapter.js';
import type { CausalLM } from '../models/causal-lm.js';
import { compareClose, tinyCausalLM } from '../testing/index.js';
import { valueAndGrads } from '../train/grad.js';
import { maskedCrossEntropy } from '../train/losses.js';
import { AdamW } from '../train/optim.js';
import { BF16_MATMUL, bf16Gather, packBf16 } from './bf16.js';
import type { Linear } from './layers.js';
import { LoraLinear } from './lora.js';
import { Parameter } from './parameter.js';
import { weightStorage } from './weight-storage.js';

let why: string | undefined;
try {
  await initBackend('native', { log: false });
} catch (e) {
  why = (e as Error).message.split('\n')[0];
  console.log(`[core] bf16 weight tests SKIPPED (native backend absent): ${why}`);
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A tiny LLaMA saved as a BF16 HF folder (tied or not). */
async function bf16Folder(tied: boolean): Promise<string> {
  const lm = tinyCausalLM(11, { vocabSize: 48, tieWordEmbeddings: tied });
  const dir = mkdtempSync(path.join(tmpdir(), 'akit-bf16-'));
  dirs.push(dir);
  await saveWeights(path.join(dir, 'model.safetensors'), lm, { dtype: 'BF16' });
  lm.dispose();
  const hf = {
    model_type: 'llama', vocab_size: 48, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4,
    num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 10000, max_position_embeddings: 128, tie_word_embeddings: tied,
  };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(hf));
  return dir;
}

function seeded(seed: number, n: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + ((hi - lo) * s) / 2 ** 32;
  });
}

describe.skipIf(why !== undefined)('bf16-stored frozen weights (native backend)', () => {
  for (const tied of [false, true]) {
    describe(tied ? 'tied embeddings' : 'separate lm_head', () => {
      let dir: string;
      let f32: CausalLM;
      let b16: CausalLM;
      beforeAll(async () => {
        dir = await bf16Folder(tied);
        f32 = await loadCausalLM(dir);
        b16 = await loadCausalLM(dir, { weightsDtype: 'bf16' });
      });
      afterAll(() => {
        f32.dispose();
        b16.dispose();
      });

      it('stores every Linear/Embedding weight as the checkpoint bits, exactly; norms stay float32', async () => {
        const reader = await CheckpointReader.open(dir);
        try {
          let bf = 0;
          for (const [name, p] of b16.namedParameters()) {
            const isMatrix = name.endsWith('_proj.weight') || name.endsWith('embed_tokens.weight') || name === 'lm_head.weight';
            expect(p.storage, name).toBe(isMatrix ? 'bf16' : 'f32');
            if (p.storage !== 'bf16') continue;
            bf++;
            const bytes = await reader.readBytes(name);
            const fileBits = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
            expect(Buffer.from(p.bf16Bits().buffer).equals(Buffer.from(fileBits.buffer, fileBits.byteOffset, fileBits.byteLength)), name).toBe(true);
            expect(p.trainable).toBe(false);
          }
          expect(bf).toBe(2 * 7 + 1 + (tied ? 0 : 1));
          const s = weightStorage(b16);
          const all = weightStorage(f32);
          expect(s.bf16Bytes * 2 + s.f32Bytes).toBe(all.f32Bytes);
        } finally {
          await reader.close();
        }
      });

      it('logits equal the float32-upcast model to float tolerance', () => {
        const ids = tf.tensor2d([[1, 5, 9, 2, 47, 0, 13]], [1, 7], 'int32');
        const a = f32.logits(ids);
        const b = b16.logits(ids);
        const c = compareClose(b, a, { atol: 1e-5, rtol: 1e-4 });
        expect(c.ok, c.message).toBe(true);
        tf.dispose([ids, a, b]);
      });

      it('gradients w.r.t. the input embeddings match', () => {
        const embeds = tf.tensor3d(seeded(3, 2 * 5 * 32), [2, 5, 32]);
        const r = tf.tensor3d(seeded(4, 2 * 5 * 48), [2, 5, 48]);
        const gradOf = (m: CausalLM) => tf.grad((e: tf.Tensor) => tf.sum(tf.mul(m.forward({ embeds: e }).logits!, r)))(embeds);
        const before = tf.memory().numTensors;
        const ga = gradOf(f32);
        const gb = gradOf(b16);
        expect(tf.memory().numTensors).toBe(before + 2);
        expect(tf.max(tf.abs(gb)).dataSync()[0]).toBeGreaterThan(0);
        const c = compareClose(gb, ga, { atol: 1e-4, rtol: 1e-4 });
        expect(c.ok, c.message).toBe(true);
        tf.dispose([embeds, r, ga, gb]);
      });

      it('a few training steps of a trainable float32 input bias track the float32 path, tensors flat', () => {
        const ids = tf.tensor2d([[3, 7, 1, 9, 4, 20, 2, 8]], [1, 8], 'int32');
        const losses = (m: CausalLM): number[] => {
          const bias = new Parameter([32], { kind: 'zeros' });
          const opt = new AdamW([bias], { lr: 0.05, weightDecay: 0 });
          const out: number[] = [];
          let tensors = -1;
          for (let s = 0; s < 5; s++) {
            const { loss, grads } = valueAndGrads(() => maskedCrossEntropy(m.forward({ embeds: tf.add(m.embed(ids), bias.value) }).logits!, ids), [bias]);
            opt.step(grads);
            out.push(loss);
            tf.dispose([...grads.values()]);
            if (s === 1) tensors = tf.memory().numTensors;
            if (s > 1) expect(tf.memory().numTensors).toBe(tensors);
          }
          opt.dispose();
          bias.dispose();
          return out;
        };
        const a = losses(f32);
        const b = losses(b16);
        expect(a[4]!).toBeLessThan(a[0]!);
        for (let i = 0; i < a.length; i++) expect(Math.abs(b[i]! - a[i]!), `step ${i}: ${b[i]} vs ${a[i]}`).toBeLessThan(1e-4 * Math.max(1, Math.abs(a[i]!)));
        ids.dispose();
      });

      it('a LoRA over a bf16-stored base Linear computes what it computes over the float32 one', () => {
        const wrap = (m: CausalLM) => {
          const l = new LoraLinear(m.model.layers.at(0).self_attn.getChild<Linear>('q_proj'));
          const a = l.addAdapter('x', 4, 2);
          a.A.weight.assign(tf.tensor2d(seeded(21, 32 * 4), [32, 4]));
          a.B.weight.assign(tf.tensor2d(seeded(22, 4 * 32), [4, 32]));
          l.active = ['x'];
          return l;
        };
        const x = tf.tensor3d(seeded(23, 3 * 32), [1, 3, 32]);
        const la = wrap(f32);
        const lb = wrap(b16);
        const ya = la.forward(x);
        const yb = lb.forward(x);
        const c = compareClose(yb, ya, { atol: 1e-5, rtol: 1e-4 });
        expect(c.ok, c.message).toBe(true);
        // merging the adapter into the weight (merge-adapter's path) reads the bf16 base through toExternal
        const merged = (l: LoraLinear) => mergedEntries(l).find((e) => e.name.endsWith('weight'))!.get();
        const [ma, mb] = [merged(la), merged(lb)];
        expect(mb.shape).toEqual([32, 32]);
        const cm = compareClose(mb, ma, { atol: 0, rtol: 0 });
        expect(cm.ok, cm.message).toBe(true);
        tf.dispose([x, ya, yb, ma, mb]);
      });

      it('refuses to make a bf16-stored weight trainable, and saves it back exactly', async () => {
        const p = b16.model.embed_tokens.weight;
        expect(() => {
          p.trainable = true;
        }).toThrow(/bf16/);
        expect(() => p.value).toThrow(/bf16/);
        const back = p.toExternal();
        const want = f32.model.embed_tokens.weight.toExternal();
        expect(Buffer.from(back.dataSync().buffer).equals(Buffer.from(want.dataSync().buffer))).toBe(true);
        tf.dispose([back, want]);
      });
    });
  }

  it('the kernels match float32 products across conversion blocks and odd sizes (both modes, gather)', () => {
    const [N, R, C] = [37, 1001, 603]; // R*C odd: the last int32 holds one bf16 value
    const bits = f32ToBf16(seeded(7, R * C));
    const w = tf.tensor2d(bf16ToF32(bits), [R, C]);
    const packed = tf.tensor1d(packBf16(bits), 'int32');
    const x0 = tf.tensor2d(seeded(8, N * C), [N, C]);
    const x1 = tf.tensor2d(seeded(9, N * R), [N, R]);
    const run = (x: tf.Tensor, mode: number) => tf.engine().runKernel(BF16_MATMUL, { x, w: packed }, { rows: R, cols: C, mode }) as tf.Tensor;
    const y0 = run(x0, 0);
    const y1 = run(x1, 1);
    const e0 = tf.matMul(x0, w, false, true);
    const e1 = tf.matMul(x1, w);
    for (const [y, e] of [[y0, e0], [y1, e1]] as const) {
      const c = compareClose(y, e, { atol: 1e-4, rtol: 1e-4 });
      expect(c.ok, c.message).toBe(true);
    }
    const ids = tf.tensor1d([0, R - 1, 500, 3], 'int32');
    const g = bf16Gather(packed, ids, R, C);
    expect(compareClose(g, tf.gather(w, ids), { atol: 0, rtol: 0 }).ok).toBe(true);
    expect(() => bf16Gather(packed, tf.tensor1d([R], 'int32'), R, C)).toThrow(/outside/);
    tf.dispose([w, packed, x0, x1, y0, y1, e0, e1, ids, g]);
  });

  it('is refused by name on a backend without bf16 kernels', async () => {
    const dir = await bf16Folder(false);
    await tf.setBackend('cpu');
    try {
      await expect(loadCausalLM(dir, { weightsDtype: 'bf16' })).rejects.toThrow(/native backend.*weightsDtype: f32/);
    } finally {
      await tf.setBackend('native');
    }
  });
});
