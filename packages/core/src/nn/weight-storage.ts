/** How a module's weights are held: bytes by storage dtype (what `base.weightsDtype` changed). */
import type { Module } from './module.js';

export interface WeightStorage {
  /** Parameters (tensors) held as float32 variables, and their bytes. */
  f32Tensors: number;
  f32Bytes: number;
  /** Parameters held as packed bf16 bits, and their bytes. */
  bf16Tensors: number;
  bf16Bytes: number;
}

/** One line for logs: what base.weightsDtype bf16 kept (a float32 checkpoint keeps nothing in bf16). */
export function describeWeightStorage(m: Module): string {
  const s = weightStorage(m);
  const gib = (b: number) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : `${(b / 2 ** 20).toFixed(1)} MiB`);
  return `weights: ${s.bf16Tensors} tensors in bf16 (${gib(s.bf16Bytes)}), ${s.f32Tensors} in float32 (${gib(s.f32Bytes)})${s.bf16Tensors === 0 ? ': the checkpoint has no BF16 Linear/Embedding tensors to keep' : ''}`;
}

export function weightStorage(m: Module): WeightStorage {
  const s: WeightStorage = { f32Tensors: 0, f32Bytes: 0, bf16Tensors: 0, bf16Bytes: 0 };
  for (const p of m.parameters()) {
    if (!p.allocated) continue;
    if (p.storage === 'bf16') {
      s.bf16Tensors++;
      s.bf16Bytes += 2 * p.size;
    } else {
      s.f32Tensors++;
      s.f32Bytes += 4 * p.size;
    }
  }
  return s;
}
