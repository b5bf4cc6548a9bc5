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
